"""Tutorials 8 (backprop by hand) and 9 (what the network sees) run in their quick mode; their pictures are
read back: they exist, have a sensible size, and the saliency figure's panels are not blank."""
import os
import re
import subprocess
import sys

import numpy as np
from PIL import Image

from tests import helpers
from tests.tutorial_kit import run_in_process

REPO = helpers.REPO
TUTORIALS = REPO / "tutorials"


def run(script, out):
    # The tutorial must import the tinyseg under test (this checkout), not some other installed copy.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, str(TUTORIALS / script), "--quick", "--out", str(out)], cwd=REPO,
                            capture_output=True, text=True, timeout=600, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def picture(path, min_width, min_height):
    assert path.stat().st_size > 5000, path.name
    image = Image.open(path)
    assert image.size[0] >= min_width and image.size[1] >= min_height, (path.name, image.size)
    return np.asarray(image.convert("RGB"), dtype=np.float64) / 255


def test_backprop_by_hand(tmp_path):
    stdout = run("08_backprop_by_hand.py", tmp_path)
    for line in stdout.splitlines():
        if "loops vs Conv2D" in line:
            assert float(line.split()[-1]) < 1e-12, line
    errors = [float(m) for m in re.findall(r"largest relative error (\S+)", stdout)]
    assert len(errors) == 3 and max(errors) < 1e-6
    picture(tmp_path / "im2col.png", 900, 300)
    picture(tmp_path / "backward.png", 800, 300)


def test_what_the_network_sees(tmp_path):
    stdout = run("09_what_the_network_sees.py", tmp_path)
    assert "explaining class 1 (circle)" in stdout
    # both gradient maps end their colour scales at a percentile of |value|, below the largest value
    limits = re.findall(r"^(saliency|signed gradient): colour scale ends at the 99th percentile of \|value\|, "
                        r"(\S+); the largest is (\S+) ", stdout, re.MULTILINE)
    assert [name for name, *_ in limits] == ["saliency", "signed gradient"], stdout
    assert all(0 < float(limit) <= float(largest) for _, limit, largest in limits), limits
    saliency = picture(tmp_path / "saliency.png", 1200, 200)
    # one row of 6 panels (input, saliency, signed gradient, 3 Grad-CAM maps) between x = 2% and 98%
    h, w, _ = saliency.shape
    for k in range(6):
        left = 0.02 + 0.96 * k / 6
        crop = saliency[int(0.3 * h):int(0.7 * h), int(w * (left + 0.04)):int(w * (left + 0.12))]
        assert crop.std(axis=(0, 1)).max() > 0.02, f"panel {k} of saliency.png is blank"
    picture(tmp_path / "feature_maps.png", 800, 400)
    picture(tmp_path / "filters.png", 600, 200)
    picture(tmp_path / "training_histograms.png", 800, 800)
    picture(tmp_path / "init_lesson.png", 900, 600)
    # the lesson's numbers: x 0.01 collapses and x 10 explodes by layer 6
    finals = {m.group(1).strip(): float(m.group(2)) for m in
              re.finditer(r"^\s*(.+?): activation rms layer 1 \S+ -> layer 6 (\S+)", stdout, re.MULTILINE)}
    assert finals["glorot x 0.01"] < 1e-9 and finals["glorot x 10"] > 1e3
    assert 0.1 < finals["he_normal"] < 10


def test_backprop_panels_that_are_compared_share_one_colour_scale(tmp_path, monkeypatch):
    """Issue 25: in backward.png, G, G K^T and dL/dx (a number followed from one panel to the next) are on one
    colour scale with one colour bar; in im2col.png, every panel of x's values shares x's scale, and the
    product and y share theirs."""
    g = run_in_process("08_backprop_by_hand.py", monkeypatch, "--quick", "--out", str(tmp_path))

    def clims(fig, *starts):
        return [ax.get_images()[0].get_clim() for ax in fig.axes
                if ax.get_images() and ax.get_title().startswith(starts)]

    shared = clims(g["backward_fig"], "upstream G", "G.ravel()", "col2im")
    top = max(np.abs(a).max() for a in (g["G"], g["spread"], g["dx_matrix"]))
    assert len(shared) == 3 and set(shared) == {(-top, top)}, shared
    bars = [ax for ax in g["backward_fig"].axes if getattr(ax, "_colorbar", None) is not None]
    assert len(bars) == 2 and bars[0]._colorbar.vmax == top
    x_panels = [ax.get_images()[0].get_clim() for ax in g["im2col_fig"].axes
                if ax.get_images() and ax.get_images()[0].get_cmap().name == "Greys"]
    assert len(x_panels) == 1 + 9 + 1 and set(x_panels) == {(g["x"].min(), g["x"].max())}    # x, windows, cols
    y_panels = clims(g["im2col_fig"], "+ b", "reshaped")
    assert len(y_panels) == 2 and len(set(y_panels)) == 1
