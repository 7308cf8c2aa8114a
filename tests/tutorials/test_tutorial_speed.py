"""Tutorial 5 (convolution speed) runs in its --quick mode and draws its chart. No timing is asserted."""
import os
import subprocess
import sys

from tests import helpers
from tests.tutorial_kit import ENV

REPO = str(helpers.REPO)
SCRIPT = os.path.join(REPO, "tutorials", "05_convolution_speed.py")


def test_tutorial_05_quick_runs_and_writes_its_chart(tmp_path):
    proc = subprocess.run([sys.executable, SCRIPT, "--quick", "--out", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=600, env=ENV)
    assert proc.returncode == 0, proc.stderr[-4000:]
    png = tmp_path / "convolution_speed.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = proc.stdout
    assert "largest relative difference from the naive loop" in out      # the three methods were checked
    assert "naive loop" in out and "NumPy im2col" in out and "Numba im2col" in out
