"""What the tutorial tests share: where the tutorials are, how to read a percent-format file's cells, and how
to run a tutorial (in a subprocess, or in this process to get its Figure objects back)."""
import ast
import contextlib
import io
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
from matplotlib.colors import to_rgb
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
TUTORIALS = REPO / "tutorials"
# the tutorials import the tinyseg of this checkout, not whichever one is installed
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
CELL_MARKER = re.compile(r"^# %%(.*)$")


def tutorial_files():
    """The numbered tutorials, tutorials/NN_name.py, in order."""
    return sorted(p for p in TUTORIALS.glob("*.py") if re.fullmatch(r"\d\d_\w+\.py", p.name))


def cells(text):
    """[(kind, source)] of a percent-format script, kind 'markdown' or 'code', in file order. Lines before the
    first `# %%` marker come back as a cell of kind None (a notebook would show them nowhere)."""
    out = [(None, [])]
    for line in text.splitlines(keepends=True):
        m = CELL_MARKER.match(line.rstrip("\n"))
        if m:
            out.append(("markdown" if m.group(1).strip().startswith("[markdown]") else "code", []))
        else:
            out[-1][1].append(line)
    return [(kind, "".join(lines)) for kind, lines in out if kind is not None or "".join(lines).strip()]


def run(script, *args, timeout=600):
    """Run tutorials/<script> in a subprocess with this checkout's tinyseg; returns the CompletedProcess."""
    return subprocess.run([sys.executable, str(TUTORIALS / script), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=ENV, check=False)


def run_in_process(script, monkeypatch, *args):
    """Run tutorials/<script> in this process as `python script args` would, and return its globals: the
    Figures it drew are there by name. No code of the tutorial is changed or skipped."""
    monkeypatch.setattr(sys, "argv", [str(TUTORIALS / script), *args])
    monkeypatch.syspath_prepend(str(REPO))
    return runpy.run_path(str(TUTORIALS / script), run_name="__main__")


def run_quick_in_process(script, out):
    """Run tutorials/<script> --quick --out out in this process (run_in_process): (its globals, what it
    printed). For a module-scoped fixture, which cannot take the function-scoped monkeypatch."""
    import pytest
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as monkeypatch, contextlib.redirect_stdout(printed):
        names = run_in_process(script, monkeypatch, "--quick", "--out", str(out))
    return names, printed.getvalue()


def definitions(script):
    """A namespace with a tutorial's imports, function and class definitions and UPPER_CASE constants only
    (what `import` would give, had the tutorial no top-level work): for tests of its helper functions."""
    tree = ast.parse((TUTORIALS / script).read_text())

    def constant(node):
        names = [t for target in node.targets for t in ast.walk(target) if isinstance(t, ast.Name)]
        return bool(names) and all(n.id.isupper() for n in names)

    body = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                                                            ast.ClassDef))
            or (isinstance(node, ast.Assign) and constant(node))]
    namespace = {"__name__": Path(script).stem}
    exec(compile(ast.Module(body=body, type_ignores=[]), str(TUTORIALS / script), "exec"), namespace)
    return namespace


def read_png(path, min_width, min_height):
    """A picture a tutorial wrote, as RGB floats in [0, 1], after checking it is at least this large and not
    blank."""
    image = Image.open(path)
    assert image.size[0] >= min_width and image.size[1] >= min_height, (path.name, image.size)
    a = np.asarray(image.convert("RGB"), dtype=np.float64) / 255
    assert a.std() > 0.02, f"{path.name} is blank"
    return a


def holds_colour(picture, colour, tol=0.08, at_least=50):
    """Whether at least `at_least` pixels have (about) this colour."""
    return int((np.abs(picture - np.array(to_rgb(colour))).max(axis=-1) < tol).sum()) >= at_least
