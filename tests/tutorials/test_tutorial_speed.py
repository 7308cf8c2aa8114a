"""Tutorial 5 (convolution speed) runs in its --quick mode and draws its chart. No timing is asserted."""
import os
import subprocess
import sys

from tests import helpers
from tests.tutorial_kit import ENV, definitions

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
    assert "Numba im2col is " in out and " on the tiny problem and " in out      # the computed conclusion


def test_tutorial_05_conclusion_follows_its_numbers():
    """The sentence tutorial 5 prints is computed from its timings, never typed (issue 25: it said "Numba gains
    little or loses" while its own numbers said 2-3x faster)."""
    conclude = definitions("05_convolution_speed.py")["numba_conclusion"]
    faster = conclude({"numpy": 3.0, "numba": 1.0}, {"numpy": 30.0, "numba": 10.0})
    assert "3.0x faster than NumPy on the tiny problem" in faster and "about the same lead on both" in faster
    slower = conclude({"numpy": 1.0, "numba": 2.0}, {"numpy": 40.0, "numba": 10.0})
    assert "2.0x slower than NumPy on the tiny problem" in slower and "4.0x faster than NumPy on the layer" in slower
    assert "lead grows with the work" in slower
    tie = conclude({"numpy": 1.0, "numba": 0.95}, {"numpy": 1.0, "numba": 1.05})
    assert tie.count("as fast as NumPy") == 2
    assert "little or loses" not in (helpers.REPO / "tutorials" / "05_convolution_speed.py").read_text()
