"""Tutorial 7 runs in its quick mode on the street-like pictures it draws itself (no CamVid needed), and on a
CamVid layout given with --data."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests import helpers
from tests.tutorial_kit import definitions
from tinyseg.datasets.streets import write_streets

REPO = helpers.REPO
SCRIPT = REPO / "tutorials" / "07_camvid.py"
PICTURES = ["samples.png", "class_weights.png", "curves.png", "per_class_iou.png", "predictions.png",
            "weights_tradeoff.png"]


def run(*args):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run([sys.executable, str(SCRIPT), "--quick", *args], capture_output=True, text=True,
                          timeout=600, env=env)


def test_camvid_tutorial_draws_its_own_streets(tmp_path):
    result = run("--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    for name in PICTURES:
        assert (tmp_path / name).stat().st_size > 1000, name
    assert (tmp_path / "synthetic-camvid" / "trainannot").is_dir()
    assert "validation mean IoU" in result.stdout and "Bicyclist" in result.stdout
    # recall is called recall (the per-class table's last column), and the weights' trade-off is measured
    header = next(line for line in result.stdout.splitlines() if line.startswith("class") and "IoU" in line)
    assert header.split() == ["class", "IoU", "Dice", "precision", "recall", "support"], header
    assert re.search(r"^of the \d+ up-weighted classes \(w_c > 1\) in the validation images, the weights "
                     r"raised the recall of \d+", result.stdout, re.MULTILINE), result.stdout
    assert re.search(r"^mean recall \S+ -> \S+, mean precision \S+ -> \S+", result.stdout, re.MULTILINE)


def test_tradeoff_figure_draws_one_arrow_per_class_from_plain_to_weighted():
    figure = definitions("07_camvid.py")["tradeoff_figure"]
    before = {"recall": np.array([0.2, 0.9, np.nan]), "precision": np.array([0.8, 0.5, 0.3])}
    after = {"recall": np.array([0.6, 0.85, 0.1]), "precision": np.array([0.5, 0.6, 0.2])}
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    fig = figure(before, after, ["rare", "common", "absent"], colours, "t")
    ax = fig.axes[0]
    arrows = [a for a in ax.texts if getattr(a, "arrow_patch", None) is not None]
    assert [(a.xyann, a.xy) for a in arrows] == [((0.2, 0.8), (0.6, 0.5)), ((0.9, 0.5), (0.85, 0.6))]
    assert [t.get_text() for t in ax.texts if t.get_text()] == ["rare", "common"]     # no recall: left out
    assert "recall" in ax.get_xlabel() and "precision" in ax.get_ylabel()


def test_weights_conclusion_is_computed_from_recall_and_precision():
    conclude = definitions("07_camvid.py")["weights_conclusion"]
    names = ["Road", "Pole", "Sign", "Car"]
    weights = np.array([0.1, 5.0, 8.0, 2.0])
    before = {"recall": np.array([0.99, 0.0, 0.1, 0.5]), "precision": np.array([0.9, np.nan, 0.8, 0.7])}
    after = {"recall": np.array([0.9, 0.8, 0.6, 0.4]), "precision": np.array([0.95, 0.2, 0.5, 0.8])}
    lines = conclude(before, after, weights, names)
    assert lines[0] == ("of the 3 up-weighted classes (w_c > 1) in the validation images, the weights raised the "
                        "recall of 2 (Pole, Sign); of those, 1 lost precision (Sign) and 1 had never been "
                        "predicted without weights (Pole), so had no precision to lose")
    assert lines[1] == "of the 1 down-weighted classes (w_c < 1), 1 lost recall (Road)"
    assert lines[2] == "precision fell for Sign (0.80 -> 0.50)"
    assert len(lines) == 4 and "trade-off" in lines[3]
    same = conclude(before, before, weights, names)          # no change: no trade-off claimed
    assert "raised the recall of 0;" in same[0] and len(same) == 2


def test_camvid_tutorial_reads_a_layout_from_data(tmp_path):
    root = write_streets(str(tmp_path / "CamVid"), n_train=4, n_val=2, size=(40, 56), seed=3)
    label = np.asarray(Image.open(Path(root) / "trainannot" / "street_000.png"))
    assert label.max() <= 11
    result = run("--data", root, "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no --data" not in result.stdout and (tmp_path / "out" / "predictions.png").exists()
