"""Every repository path a tutorial names, in its prose or its code comments, exists (issue 25: a learner told
to read tinyseg/losses.py must find it). A path is a name with a slash that ends in .py or starts with one of
the repository's folders; it may be written from the repository root (tinyseg/graph.py) or from inside the
package (kernels/convolution.py, as the prose says once it is talking about tinyseg)."""
import re

import pytest

from tests.tutorial_kit import REPO, tutorial_files

FOLDERS = ("tinyseg", "tests", "benchmarks", "tutorials", "docs")
PATH = re.compile(r"(?<![\w./-])((?:[A-Za-z_][\w-]*/)+[\w-]+(?:\.py)?/?)")


def named_paths(text):
    """The repository paths named in `text`: slash-separated names ending in .py or starting with a
    repository folder (output folders such as tutorial-output/... and web addresses are not paths here)."""
    found = set()
    for m in PATH.finditer(text):
        path = m.group(1).rstrip("/")
        if "://" in text[max(0, m.start() - 8):m.end()] or ".org/" in path or ".io/" in path:
            continue
        if path.endswith(".py") or path.split("/")[0] in FOLDERS:
            found.add(path)
    return found


def exists(path):
    return (REPO / path).exists() or (REPO / "tinyseg" / path).exists()


def test_named_paths_finds_the_paths_in_prose():
    text = "# (tinyseg/losses.py, with t) read kernels/convolution.py; tutorial-output/x and see tinyseg/kernels/"
    assert named_paths(text) == {"tinyseg/losses.py", "kernels/convolution.py", "tinyseg/kernels"}
    assert not exists("tinyseg/losses.py") and exists("kernels/convolution.py") and exists("tinyseg/kernels")


@pytest.mark.parametrize("path", tutorial_files(), ids=lambda p: p.name)
def test_every_path_a_tutorial_names_exists(path):
    comments = "\n".join(line.split("#", 1)[1] for line in path.read_text().splitlines() if "#" in line)
    missing = sorted(p for p in named_paths(comments) if not exists(p))
    assert not missing, f"{path.name} names paths that do not exist: {missing}"
