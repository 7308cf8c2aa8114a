"""Tutorial 7 runs in its quick mode on the street-like pictures it draws itself (no CamVid needed), and on a
CamVid layout given with --data."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests import helpers
from tests.tutorial_kit import definitions

REPO = helpers.REPO
SCRIPT = REPO / "tutorials" / "07_camvid.py"
PICTURES = ["samples.png", "class_weights.png", "curves.png", "per_class_iou.png", "predictions.png"]


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


def test_camvid_tutorial_reads_a_layout_from_data(tmp_path):
    # the tutorial is a notebook-style script (its work at the top level): take its definitions only
    write = definitions("07_camvid.py")["write_synthetic_camvid"]
    root = write(str(tmp_path / "CamVid"), n_train=4, n_val=2, size=(40, 56), seed=3)
    label = np.asarray(Image.open(Path(root) / "trainannot" / "street_000.png"))
    assert label.max() <= 11
    result = run("--data", root, "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no --data" not in result.stdout and (tmp_path / "out" / "predictions.png").exists()
