"""Tutorial 10 (optimizers, schedules, over-fitting) runs in its --quick mode with this checkout's tinyseg,
writes its three pictures at a sensible size, draws one loss line per optimizer run (and a training and a
validation line per over-fitting run), and opens as a notebook (percent format)."""
import json
import os
import re
import subprocess
import sys

from matplotlib.image import imread

from tests import helpers

REPO = str(helpers.REPO)
SCRIPT = os.path.join(REPO, "tutorials", "10_optimizers_and_schedules.py")


def test_tutorial_10_quick_writes_its_pictures_and_one_line_per_run(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    proc = subprocess.run([sys.executable, SCRIPT, "--quick", "--out", str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    for name, (min_width, min_height) in {"schedules.png": (500, 250), "optimizers.png": (800, 300),
                                          "overfitting.png": (800, 500)}.items():
        picture = imread(tmp_path / name)
        height, width = picture.shape[:2]
        assert width >= min_width and height >= min_height, (name, picture.shape)
        assert picture[..., :3].std() > 0.01, f"{name} is blank"
    curves = json.loads((tmp_path / "curves.json").read_text())
    runs = curves["optimizers"]["runs"]
    assert runs == ["SGD (lr 0.05)", "SGD + momentum 0.9", "RMSprop (lr 1e-3)", "Adam (lr 1e-3)",
                    "Adam, cosine + warm-up"]
    assert curves["optimizers"]["lines"] == len(runs)
    assert curves["overfitting"]["lines"] == 2 * len(curves["overfitting"]["runs"]) == 8
    assert all(0 < v < 10 for v in curves["optimizers"]["final_loss"].values())
    for run in runs:
        assert re.search(rf"^{re.escape(run)}\s+loss \d", proc.stdout, re.MULTILINE), run


def test_tutorial_10_is_in_percent_format():
    text = open(SCRIPT).read()
    lines = text.splitlines()
    assert lines[0] == "# %% [markdown]"
    cells = re.split(r"^# %%", text, flags=re.MULTILINE)[1:]
    markdown = [c for c in cells if c.startswith(" [markdown]")]
    code = [c for c in cells if not c.startswith(" [markdown]")]
    assert len(markdown) >= 5 and len(code) >= 5
    for cell in markdown:                      # prose only: every line a comment (or blank)
        body = cell.split("\n", 1)[1]
        assert all(line == "#" or line.startswith("# ") or not line.strip() for line in body.splitlines()), cell
