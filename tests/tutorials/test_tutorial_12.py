"""Tutorial 12 (gradient descent you can watch) runs in its --quick mode; the numbers its prose relies on are
printed and right (alpha_crit = 2 / lambda_max, below it the loss falls and above it the loss grows, the right
rate beats the small one, momentum beats plain descent at the same rate), the paths are tinyseg's optimizers'
own, and its two pictures are read back: their size, and what they draw (the paths and the loss curves)."""
import re

import numpy as np

from tests.tutorial_kit import holds_colour, read_png, run_in_process
from tinyseg import optimizers

SCRIPT = "12_gradient_descent.py"



def test_tutorial_12_numbers_paths_and_pictures(tmp_path, monkeypatch, capsys):
    g = run_in_process(SCRIPT, monkeypatch, "--quick", "--out", str(tmp_path))
    out = capsys.readouterr().out
    A, theta_0, steps = g["A"], g["THETA_0"], g["STEPS"]

    # the critical rate, from the eigenvalues, and what happens on either side of it
    lam = np.linalg.eigvalsh(A)
    crit, best = (float(v) for v in re.search(r"alpha_crit = 2 / lambda_max = (\S+);  alpha\* = "
                                              r"2 / \(lambda_max \+ lambda_min\) = (\S+)", out).groups())
    assert crit == round(2 / lam[-1], 4) and best == round(2 / lam.sum(), 4)
    start, below, above = (float(v) for v in re.search(r"just below alpha_crit \(0.98 alpha_crit\) J goes (\S+) -> "
                                                       r"(\S+); just above \(1.02 alpha_crit\) -> (\S+)", out).groups())
    assert below < start < above
    finals = {m.group(1).strip(): float(m.group(2)) for m in re.finditer(
        r"^alpha = \S+ \((.+?)\): per-step factors .*; J after \d+ steps (\S+)$", out, re.MULTILINE)}
    assert finals["right"] < finals["too small"] < start < finals["too large"]

    # the paths are what tinyseg's optimizers do on this bowl (re-run here, step by step)
    def path_of(optimizer):
        theta, path = theta_0.copy(), [theta_0.copy()]
        for _ in range(steps):
            optimizer.apply_gradients([(A @ theta, theta)])
            path.append(theta.copy())
        return np.array(path)

    small = g["rates"]["too small"]
    expected = {"gradient descent (alpha too small)": optimizers.SGD(small),
                "momentum 0.9 (the same alpha)": optimizers.SGD(small, momentum=0.9),
                "RMSprop (alpha 0.2)": optimizers.RMSprop(0.2), "Adam (alpha 0.5)": optimizers.Adam(0.5)}
    assert list(g["paths"]) == list(expected)
    for name, optimizer in expected.items():
        np.testing.assert_allclose(g["paths"][name], path_of(optimizer), rtol=0, atol=1e-12, err_msg=name)
    # momentum's lesson: the same alpha, a much lower loss
    times = float(re.search(r"momentum ends at J = \S+, (\S+) times lower", out).group(1))
    assert times > 5

    # learning_rates.png: a path per rate on its contours, and the factor curves with alpha_crit marked
    panels = g["learning_rates_fig"].axes
    assert len(panels) == 4
    for ax, (name, path) in zip(panels, g["gd_paths"].items()):
        drawn = [line for line in ax.get_lines() if line.get_label() == name]
        assert len(drawn) == 1 and ax.collections, name        # the path, over the contours
        np.testing.assert_allclose(drawn[0].get_xydata(), path)
    assert any(np.allclose(line.get_xdata(), crit, atol=1e-4) for line in panels[3].get_lines())
    # optimizers_2d.png: four paths on contours, and one loss curve per run (plus the reference), log scale
    fig = g["optimizers_fig"]
    loss_ax = g["loss_ax"]
    assert loss_ax.get_yscale() == "log"
    curves = {line.get_label(): line.get_ydata() for line in loss_ax.get_lines()}
    for name, path in g["paths"].items():
        np.testing.assert_allclose(curves[name], 0.5 * np.einsum("ti,ij,tj->t", path, A, path))
    assert len([ax for ax in fig.axes if ax.collections]) == 4

    lr_png = read_png(tmp_path / "learning_rates.png", 1200, 300)
    opt_png = read_png(tmp_path / "optimizers_2d.png", 1200, 600)
    for colour in ("C0", "C2", "C3"):
        assert holds_colour(lr_png, colour), colour
    for colour in ("C0", "C1", "C4", "C5"):
        assert holds_colour(opt_png, colour), colour
