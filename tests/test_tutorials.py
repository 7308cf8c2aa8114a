"""Each tutorial runs in its tiny mode and writes its pictures."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
# the tutorials import the tinyseg of this checkout, not whichever one is installed
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TUTORIALS.parent), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.parametrize("script, pictures", [
    ("01_seed_cnn.py", ["curves.png", "predictions.png", "filters.png"]),
    ("02_unet_on_shapes.py", ["predictions.png", "curves.png", "confusion_matrix.png", "feature_maps.png"]),
    ("03_why_pixel_accuracy_misleads.py", ["scores.png", "confusion_all_background.png", "blobby.png"]),
    ("06_functional_api.py", ["model.png", "curves.png", "predictions.png"]),
])
def test_tutorial_runs_in_tiny_mode(tmp_path, script, pictures):
    result = subprocess.run([sys.executable, str(TUTORIALS / script), "--tiny", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=600, env=ENV)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in pictures:
        assert (tmp_path / name).stat().st_size > 1000, name


def test_metrics_tutorial_shows_accuracy_misleads(tmp_path):
    result = subprocess.run([sys.executable, str(TUTORIALS / "03_why_pixel_accuracy_misleads.py"), "--tiny",
                             "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, env=ENV)
    line = next(l for l in result.stdout.splitlines() if l.startswith("all background"))
    accuracy, mean_iou = (float(v) for v in line.split()[2:4])
    assert accuracy > 0.7 and mean_iou < 0.3
