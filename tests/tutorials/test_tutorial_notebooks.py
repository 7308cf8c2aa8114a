"""Every tutorial is a percent-format notebook (issue 15): it opens in Jupytext / VS Code as cells of prose and
code, and its code cells, run in order, are the whole script. The README's tutorial list names each one.
These tests read the files only; the tutorials' runs are tested elsewhere (with --quick)."""
import ast
import re

import pytest

from tests.tutorial_kit import REPO, cells, tutorial_files

FILES = tutorial_files()


def test_the_tutorials_are_numbered_from_01_without_gaps():
    assert len(FILES) >= 10
    assert [p.name[:2] for p in FILES] == [f"{n:02d}" for n in range(1, len(FILES) + 1)], [p.name for p in FILES]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_tutorial_is_a_percent_format_notebook(path):
    text = path.read_text()
    parts = cells(text)
    assert parts[0][0] is not None, f"{path.name}: code or text before the first '# %%' cell marker"
    assert parts[0] == ("markdown", parts[0][1]), f"{path.name} should open with a markdown cell (its title)"
    assert parts[0][1].lstrip().startswith(f"# # Tutorial {int(path.name[:2])}"), parts[0][1][:80]
    markdown = [source for kind, source in parts if kind == "markdown"]
    code = [source for kind, source in parts if kind == "code"]
    assert len(markdown) >= 3 and len(code) >= 3, (path.name, len(markdown), len(code))
    for source in markdown:                   # prose only: comment lines (or blank lines between cells)
        lines = [line for line in source.splitlines() if line.strip()]
        assert lines, f"{path.name}: an empty markdown cell"
        bad = [line for line in lines if not (line == "#" or line.startswith("# "))]
        assert not bad, f"{path.name}: code in a markdown cell: {bad[:3]}"
    for source in code:                       # each cell stands alone: no statement split across two cells
        assert source.strip(), f"{path.name}: an empty code cell"
        compile(source, path.name, "exec")
    # the code cells, run in order, are the script: the same statements as the file itself
    assert ast.dump(ast.parse("".join(code))) == ast.dump(ast.parse(text)), path.name
    # the work happens in the cells, not in a main() called at the end (which a notebook would run as one cell)
    tree = ast.parse(text)
    assert not any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body), path.name
    assert "__main__" not in text, f"{path.name}: an `if __name__ == '__main__'` block"
    # the flags the tests use, and a notebook's kernel flags left unread
    assert '"--quick"' in text and '"--out"' in text, path.name
    assert "ipykernel" in text or "parse_known_args" in text, path.name


def readme_tutorials():
    """{file name: what it teaches} from the README's table under '## Tutorials'."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Tutorials\n", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `(\d\d_\w+\.py)` \| (.+?) \|$", section, re.MULTILINE))


def test_readme_lists_every_tutorial_with_what_it_teaches():
    listed = readme_tutorials()
    assert sorted(listed) == [p.name for p in FILES], sorted(set(listed) ^ {p.name for p in FILES})
    for name, teaches in listed.items():
        assert len(teaches.split()) >= 6, f"README: say what {name} teaches, not just {teaches!r}"


ARTICLE_CONCEPTS = ("convolution", "pooling", "dense", "ReLU, sigmoid, tanh", "cross-entropy", "gradient descent",
                    "accuracy", "recall", "the CIFAR-10 CNN", "too little data", "too little compute",
                    "explainability")


def test_readme_maps_each_of_the_articles_concepts_to_tutorials_that_exist():
    section = (REPO / "README.md").read_text().split("\n## Tutorials\n", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| ([^|`]+?) \| (.+?) \|$", section, re.MULTILINE))
    numbers = {p.name[:2] for p in FILES}
    for concept in ARTICLE_CONCEPTS:
        assert concept in rows, f"README's concept map has no row for {concept!r}"
        cited = re.findall(r"\b(\d\d)\b", rows[concept])
        assert cited and set(cited) <= numbers, (concept, cited)
