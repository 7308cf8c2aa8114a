"""Tutorial 04 (tinyseg vs PyTorch) runs in its quick mode, writes its plot and prints small differences."""
import os
import re
import subprocess
import sys

import pytest

from tests import helpers
from tests.tutorial_kit import ENV

pytest.importorskip("torch", reason="the comparison tutorial needs torch: pip install -e '.[compare]'")

TUTORIAL = os.path.join(helpers.REPO, "tutorials", "04_compare_with_pytorch.py")
LINE = re.compile(r"^(seed CNN|U-Net) (float32|float64): largest relative difference  loss (\S+)  outputs (\S+)  "
                  r"gradients (\S+)  weights (\S+)$", re.MULTILINE)
# after 5 steps: float64 agrees to rounding (Adam lifts weight noise to ~1e-13); float32 to ~1e-4 at worst
LIMITS = {"float64": 1e-9, "float32": 1e-3}


def test_tutorial_quick(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, os.path.abspath(TUTORIAL), "--quick", "--out", str(out)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300, env=ENV)
    assert result.returncode == 0, result.stderr
    png = out / "loss_curves.png"
    assert png.exists() and png.stat().st_size > 10_000
    rows = LINE.findall(result.stdout)
    assert {(net, dtype) for net, dtype, *_ in rows} == {(n, d) for n in ("seed CNN", "U-Net")
                                                         for d in ("float32", "float64")}, result.stdout
    worst = {}
    for net, dtype, *values in rows:
        values = [float(v) for v in values]
        assert max(values) <= LIMITS[dtype], f"{net} {dtype}: {values}\n{result.stdout}"
        worst[net, dtype] = max(values)
    for net in ("seed CNN", "U-Net"):          # float32's rounding shows; a float64 run that did not differ less
        assert worst[net, "float32"] > 100 * worst[net, "float64"], worst      # would mean it ran in float32
