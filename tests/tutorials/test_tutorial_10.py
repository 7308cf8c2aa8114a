"""Tutorial 10 (optimizers, schedules, over-fitting) runs in its --quick mode with this checkout's tinyseg,
writes its three pictures at a sensible size, draws one loss line per optimizer run (and a training and a
validation line per over-fitting run), and opens as a notebook (percent format)."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.image import imread

from tests import helpers
from tests.tutorial_kit import run_in_process

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
    assert runs == ["SGD (lr 0.5)", "SGD + momentum 0.9 (lr 0.1)", "RMSprop (lr 3e-3)", "Adam (lr 3e-3)",
                    "Adam, cosine + warm-up (peak 3e-3)"]
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


def constant_floor(masks, num_classes):
    """The best val mean IoU of predicting one class c everywhere, counted here without tinyseg's metrics: class
    c's IoU is the share of pixels it holds, every other class present scores 0, absent classes are left out."""
    counts = np.bincount(masks.ravel(), minlength=num_classes)
    present = int((counts > 0).sum())
    return max(counts[c] / masks.size / (present if counts[c] else present + 1) for c in range(num_classes))


def test_tutorial_10_draws_what_a_constant_prediction_scores(tmp_path, monkeypatch, capsys):
    g = run_in_process("10_optimizers_and_schedules.py", monkeypatch, "--quick", "--out", str(tmp_path))
    out = capsys.readouterr().out
    floor = constant_floor(g["y_val"], 4)
    assert g["CONSTANT_IOU"] == pytest.approx(floor, abs=1e-12)
    printed = float(re.search(r"the best constant \(background everywhere\) scores (\S+)", out).group(1))
    assert printed == pytest.approx(floor, abs=5e-4)
    # the IoU panel draws it as a horizontal line, labelled with its value, beside one line per run
    iou_ax = g["iou_ax"]
    flat = [line for line in iou_ax.get_lines() if list(line.get_xdata()) == [0, 1]]      # axhline: axes x 0..1
    assert len(flat) == 1 and list(flat[0].get_ydata()) == pytest.approx([floor, floor])
    assert f"{floor:.2f}" in flat[0].get_label() and "everywhere" in flat[0].get_label()
    assert len(iou_ax.get_lines()) == len(g["RUNS"]) + 1
    assert iou_ax.get_ylim() == (0, 1)
    # the ranking printed under it: every run, best first, its ratio to the floor computed from its own score
    ranked = re.findall(r"^(.+?)\s+val mean IoU (\S+) = (\S+) x the floor", out, re.MULTILINE)
    assert sorted(name for name, *_ in ranked) == sorted(g["RUNS"])
    scores = [float(v) for _, v, _ in ranked]
    assert scores == sorted(scores, reverse=True)
    for _, score, ratio in ranked:
        assert float(ratio) == pytest.approx(float(score) / floor, abs=0.06)
    curves = json.loads((tmp_path / "curves.json").read_text())["optimizers"]
    assert curves["constant_val_mean_iou"] == pytest.approx(floor) and curves["constant_class"] == "background"
    assert set(curves["val_iou_per_class"]) == set(g["RUNS"])
    picture = imread(tmp_path / "optimizers.png")
    assert picture.shape[1] >= 900 and picture.shape[0] >= 300
