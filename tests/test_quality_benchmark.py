"""benchmarks/quality.py runs end to end on data the test writes (a tiny CamVid layout, and the shapes) and
reports both frameworks. No quality is asserted for so few steps, only that the two start from the same
network and see the same batches: after a handful of steps their losses still agree closely."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import write_camvid

pytest.importorskip("torch")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_quality(*args):
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run([sys.executable, "-m", "benchmarks.quality", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_quality_on_a_tiny_camvid(tmp_path):
    root = write_camvid(tmp_path / "CamVid", n=4, size=(24, 32))
    out = tmp_path / "out"
    proc = run_quality("--data", str(root), "--steps", "3", "--size", "16", "24", "--depth", "2",
                       "--base-filters", "4", "--batch-size", "2", "--threads", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (out / "quality.md").read_text()
    assert "| tinyseg |" in table and "| PyTorch |" in table and "Bicyclist" in table
    doc = json.loads((out / "quality.json").read_text())
    assert set(doc["results"]) == {"tinyseg", "PyTorch"} and len(doc["losses"]["tinyseg"]) == 3
    np.testing.assert_allclose(doc["losses"]["tinyseg"], doc["losses"]["PyTorch"], rtol=1e-3)


def test_quality_on_the_shapes(tmp_path):
    proc = run_quality("--data", "shapes", "--steps", "2", "--size", "16", "16", "--depth", "2",
                       "--base-filters", "4", "--batch-size", "4", "--n-shapes", "16", "--threads", "1",
                       "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "built-in shapes" in (tmp_path / "quality.md").read_text()
