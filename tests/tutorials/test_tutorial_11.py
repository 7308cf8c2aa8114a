"""Tutorial 11 (the building blocks) runs in its --quick mode; the numbers its prose relies on are printed and
right (each block equals tinyseg's layer, every gradcheck passes, the tie goes to the first maximum, sigmoid
makes the gradient vanish and ReLU does not), and its four pictures are read back: their size, and what they
draw (the derivatives the layers compute, one line per activation, an arrow per max-pooling winner)."""
import re

import numpy as np
from matplotlib.patches import ConnectionPatch

from tests.tutorial_kit import holds_colour, read_png, run_in_process

SCRIPT = "11_building_blocks.py"



def test_tutorial_11_numbers_and_pictures(tmp_path, monkeypatch, capsys):
    g = run_in_process(SCRIPT, monkeypatch, "--quick", "--out", str(tmp_path))
    out = capsys.readouterr().out

    # activations: backward(1) is the derivative; the sigmoid's slope peaks at 0.25
    slopes = dict(re.findall(r"^(\w+)\s+f' from backward\(1\) vs the formula: largest difference \S+; "
                             r"largest f' = (\S+)", out, re.MULTILINE))
    assert {k: float(v) for k, v in slopes.items()} == {"ReLU": 1.0, "sigmoid": 0.25, "tanh": 1.0}
    # the vanishing gradient: sigmoid loses orders of magnitude over the stack, tanh and ReLU do not
    orders = {m.group(1): (float(m.group(2)), float(m.group(3))) for m in re.finditer(
        r"^(\w+)\s+from layer \d+ down to layer 1 the gradient is multiplied by (\S+) per layer on average: "
        r"(\S+) orders", out, re.MULTILINE)}
    assert set(orders) == {"sigmoid", "tanh", "relu"}
    assert orders["sigmoid"][0] <= 0.3 and orders["sigmoid"][1] < -4
    assert abs(orders["tanh"][1]) < 1 and abs(orders["relu"][1]) < 1
    # Dense by hand equals the layer
    dense = re.findall(r"^(\w+)\s+by hand vs tinyseg.layers.Dense: largest difference (\S+)", out, re.MULTILINE)
    assert [name for name, _ in dense] == ["y", "dx", "dW", "db"]
    assert all(float(v) < 1e-12 for _, v in dense)
    # the tie: all of G to the first maximum in row-major order, and the central difference sees G / 2
    assert "tinyseg sends G = 2 to (0, 3) (dL/dx = 2) and 0 to (1, 2)" in out
    assert g["dx_max"][0, 3] == 2 and g["dx_max"][1, 2] == 0
    ties = re.findall(r"central difference at the tie \((\d), (\d)\): (\S+) \(= G / 2\)", out)
    assert [(int(r), int(c)) for r, c, _ in ties] == [(0, 3), (1, 2)]
    assert all(abs(float(v) - 1.0) < 1e-6 for _, _, v in ties)
    # softmax cross-entropy: p - y equals central differences and tinyseg's backward
    close = re.search(r"p - y vs central differences: largest difference (\S+); vs tinyseg: (\S+)", out)
    assert float(close.group(1)) < 1e-8 and float(close.group(2)) < 1e-12
    # every block through gradcheck
    checks = re.findall(r"^gradcheck (\w+)\s+largest relative error (\S+) over (\d+) partial derivatives, "
                        r"(\d+) failed", out, re.MULTILINE)
    assert [name for name, *_ in checks] == ["ReLU", "sigmoid", "tanh", "Dense", "MaxPooling2D",
                                             "AveragePooling2D", "SparseCategoricalCrossentropy"]
    assert all(float(err) < 1e-6 and int(n) > 0 and failed == "0" for _, err, n, failed in checks)

    # activations.png: per panel the function and, dashed, the derivative that backward(1) gave
    panels = g["activations_fig"].axes
    assert len(panels) == 3
    for ax, (name, (_, slope)) in zip(panels, g["curves"].items()):
        dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert len(dashed) == 1, name
        np.testing.assert_allclose(dashed[0].get_ydata(), slope)
    assert max(panels[1].get_lines()[1].get_ydata()) == 0.25
    # vanishing_gradient.png: one line per activation, a point per layer, the measured norms on a log axis
    ax = g["vanishing_fig"].axes[0]
    assert ax.get_yscale() == "log"
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"sigmoid", "tanh", "relu"}
    for name, line in lines.items():
        np.testing.assert_allclose(line.get_ydata(), g["grad_norms"][name])
        assert len(line.get_xdata()) == g["DEPTH"]
    # pooling.png: one arrow per window, from G[i, j] to the pixel that received it (the nonzero dL/dx)
    arrows = [a for a in g["pooling_fig"].artists if isinstance(a, ConnectionPatch)]
    assert len(arrows) == 4
    received = {tuple(int(v) for v in a.xy2[::-1]) for a in arrows}
    assert received == {tuple(int(v) for v in rc) for rc in np.argwhere(g["dx_max"] != 0)}
    # cross_entropy.png: the -log p curve, and the bars of p - y
    curve = g["curve_ax"].get_lines()[0]
    np.testing.assert_allclose(curve.get_ydata(), -np.log(curve.get_xdata()))
    np.testing.assert_allclose([bar.get_height() for bar in g["bars_ax"].containers[2]], g["p"] - g["onehot"])

    for name, size in {"activations.png": (900, 250), "vanishing_gradient.png": (500, 300),
                       "pooling.png": (1000, 500), "cross_entropy.png": (900, 300)}.items():
        picture = read_png(tmp_path / name, *size)
        if name != "cross_entropy.png":
            assert holds_colour(picture, "C0") and holds_colour(picture, "C1"), name
    pooling = read_png(tmp_path / "pooling.png", 1000, 500)
    for colour in ("C2", "C3"):                              # the four windows' colours are all drawn
        assert holds_colour(pooling, colour), colour
