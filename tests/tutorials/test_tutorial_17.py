"""Tutorial 17 (Winograd) runs with --quick in this process; its derived F(2, 3) matrices are Lavin and Gray's
(up to the sign the point at infinity moves), its 1-D and one-tile checks are exact to rounding, the error
figures say what its prose says (F(2x2) as exact as im2col, F(4x4) about a digit worse, F(5x5)/F(6x6) close
to F(4x4), the tiles needing +-3 much worse, float64 far below float32), and its two pictures show those
numbers. No timing is asserted: only that every layer shape was timed both ways."""
import json

import numpy as np
import pytest
from PIL import Image

from tests.tutorial_kit import definitions, run_in_process
from tinyseg.winograd import transform_matrices

SCRIPT = "17_winograd.py"


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory):
    out = tmp_path_factory.mktemp("t17")
    with pytest.MonkeyPatch.context() as monkeypatch:
        g = run_in_process(SCRIPT, monkeypatch, "--quick", "--out", str(out))
    return g, out


def test_f23_matrices_are_lavin_and_grays_built_from_the_points(tutorial):
    g, out = tutorial
    numbers = json.loads((out / "numbers.json").read_text())
    AT, G, BT = (np.array(numbers["f23"][k]) for k in ("AT", "G", "BT"))
    # Lavin & Gray's m1..m4 with m1 = (d0 - d2) g0 and m4 = (d1 - d3) g2 written as (d2 - d0)(-g0) and
    # (d3 - d1) g2: the same products, the sign of m4 moved into AT
    np.testing.assert_array_equal(AT, [[1, 1, 1, 0], [0, 1, -1, 1]])
    np.testing.assert_array_equal(G, [[-1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    np.testing.assert_array_equal(BT, [[-1, 0, 1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, -1, 0, 1]])
    assert numbers["f23_matrix_gap"] < 1e-12
    assert numbers["f23_1d_error"] < 1e-12
    assert all(e < 1e-12 for e in numbers["tile_errors"].values())


def test_its_derivation_matches_the_library_for_every_tile_size():
    ns = definitions(SCRIPT)
    from tinyseg.winograd import DEFAULT_POINTS
    for m in (2, 3, 4, 5, 6, 7, 8):
        ours = ns["winograd_from_points"](list(DEFAULT_POINTS[:m + 1]), m)
        for a, b in zip(ours, transform_matrices(m)):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    # and it is a derivation, not a copy: other points give other, still correct, matrices
    AT, G, BT = ns["winograd_from_points"]([0, 2, -3], 2)
    d, g = np.random.default_rng(0).standard_normal(4), np.random.default_rng(1).standard_normal(3)
    np.testing.assert_allclose(AT @ ((G @ g) * (BT @ d)), np.correlate(d, g, "valid"), atol=1e-12)


def test_the_error_numbers_say_what_the_prose_says(tutorial):
    g, out = tutorial
    numbers = json.loads((out / "numbers.json").read_text())
    ms = numbers["m_values"]
    f32 = dict(zip(ms, numbers["errors"]["float32"]))
    f64 = dict(zip(ms, numbers["errors"]["float64"]))
    im2col32 = numbers["baseline"]["float32"]["im2col"]
    assert ms == [2, 3, 4, 5, 6, 7, 8]
    assert f32[2] < 3 * im2col32 and f32[2] < 1e-6                  # F(2x2) about as exact as im2col
    assert 3 < f32[4] / f32[2] < 100 and f32[4] < 2e-5               # F(4x4): about a decimal digit more
    assert f32[6] < 5 * f32[4] and f32[5] < 5 * f32[4]              # +-1/2 widen the spread little
    assert f32[7] > 10 * f32[6] and f32[8] > 10 * f32[6]            # +-3 cost one to two more digits
    assert all(f64[m] < 1e-7 * f32[m] for m in ms) and max(f64.values()) < 1e-10
    assert numbers["baseline"]["float32"]["winograd"] < 2e-5         # the fast kernel, F(4x4)
    assert numbers["error_vs_amplification_correlation"] > 0.9
    sizes = numbers["sizes"]
    assert sizes["AT_max"][ms.index(8)] == 2187 and sizes["AT_max"][ms.index(2)] == 1
    assert [c["gain"] for c in numbers["counts"]][:3] == [2.25, 81 / 25, 4.0]


def test_the_pictures_show_those_numbers(tutorial):
    g, out = tutorial
    fig = g["error_fig"]
    left, right = fig.axes
    assert left.get_yscale() == "log" and right.get_yscale() == "log"
    lines = {line.get_label(): line for line in left.get_lines()}
    for dtype in ("float32", "float64"):
        line = lines[f"Winograd F(m x m, 3x3), {dtype}"]
        np.testing.assert_array_equal(line.get_xdata(), g["M_VALUES"])
        np.testing.assert_allclose(line.get_ydata(), g["errors"][dtype])
        assert lines[f"Conv2D im2col, {dtype}"].get_ydata()[0] == g["baseline"][dtype]["im2col"]
    assert len(right.get_lines()) == 4
    bars = [p for p in g["timing_fig"].axes[0].patches]
    assert len(bars) == 2 * len(g["layer_shapes"])
    ratios = sorted(b.get_height() for b in bars)
    expected = sorted(row[part]["ratio"] for row in g["timings"] for part in ("forward", "forward+backward"))
    np.testing.assert_allclose(ratios, expected)
    assert all(np.isfinite(r) and r > 0 for r in ratios)
    for name in ("error_growth.png", "timing.png"):
        image = Image.open(out / name)
        assert image.size[0] >= 700 and image.size[1] >= 400, (name, image.size)
        assert np.asarray(image.convert("RGB"), dtype=np.float64).std() > 5, f"{name} is blank"
