"""Tutorial 14 (training memory, float16 and int8 weights) runs in its --quick mode on street pictures it draws
itself (no CamVid needed): its three pictures read back at a sensible size and draw what they say (one bar a
layer, two a kernel), the memory it measures is its formula's, and every number it prints is the one its own
files and measurements give."""
import contextlib
import io
import json
import os
import re

import numpy as np
import pytest
from matplotlib.image import imread

from tests.tutorial_kit import run_in_process

SCRIPT = "14_too_little_compute.py"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("t14")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as monkeypatch, contextlib.redirect_stdout(printed):
        names = run_in_process(SCRIPT, monkeypatch, "--quick", "--out", str(out))
    return names, out, printed.getvalue(), json.loads((out / "summary.json").read_text())


def test_quick_run_draws_its_streets_and_three_pictures(quick_run):
    _, out, printed, _ = quick_run
    assert (out / "synthetic-camvid" / "trainannot").is_dir() and "no CamVid" in printed
    for name, (min_width, min_height) in {"memory_per_layer.png": (900, 350), "memory_growth.png": (700, 300),
                                          "quantization.png": (1000, 350)}.items():
        picture = imread(out / name)
        height, width = picture.shape[:2]
        assert width >= min_width and height >= min_height, (name, picture.shape)
        assert picture[..., :3].std() > 0.01, f"{name} is blank"


def test_the_memory_each_layer_keeps_is_the_formula(quick_run):
    names, _, printed, summary = quick_run
    rows = summary["memory"]["rows"]
    assert len(rows) == len(names["model"].layers)
    assert all(formula == measured > 0 for *_, formula, measured in rows), [r for r in rows if r[3] != r[4]]
    assert f"formula = measured, to the byte, for {len(rows)} of {len(rows)} layers" in printed
    # counted once, the formula and the arrays agree at every batch and size, and grow as N and as H x W
    for key in ("batch", "pixels"):
        at, measured, formula = (np.array(v, float) for v in zip(*summary["memory"]["growth"][key]))
        np.testing.assert_array_equal(measured, formula)
        np.testing.assert_allclose(measured / at, measured[0] / at[0], rtol=0.1 if key == "pixels" else 0.01)
    assert summary["memory"]["kept_total"] < summary["memory"]["step_peak"]


def test_the_pictures_draw_one_bar_a_layer_and_two_a_kernel(quick_run):
    names, _, _, summary = quick_run
    ax = names["memory_per_layer"].axes[0]
    heights = [p.get_height() for p in ax.patches if p.get_height() > 0]
    np.testing.assert_allclose(heights, [r[4] / 2 ** 20 for r in summary["memory"]["rows"]])
    left = names["quantization"].axes[0]
    assert len(left.patches) == 2 * len(summary["kernels"]) > 0
    lines = [line for ax in names["memory_growth"].axes for line in ax.get_lines()]
    assert len(lines) == 6                  # measured, formula and the weights, in each panel


def test_every_printed_number_is_its_own(quick_run):
    names, out, printed, summary = quick_run
    results = summary["results"]
    sizes = {name: os.path.getsize(out / f"weights-{name}.npz") for name in ("float32", "float16", "int8")}
    assert {name: results[name]["file_bytes"] for name in sizes} == sizes
    assert sizes["int8"] < sizes["float16"] < sizes["float32"]
    assert results["float32"]["worst_error"] == 0
    assert 0 < results["float16"]["worst_error"] <= 2 ** -11 < results["int8"]["worst_error"]
    base, int8 = results["float32"]["mean_iou"], results["int8"]["mean_iou"]
    assert (f"the file is {sizes['int8'] / sizes['float32']:.1%} of float32's, mean IoU {base:.4f} -> {int8:.4f} "
            f"({int8 - base:+.4f})") in printed
    ratio = summary["timing"]["predict int8"] / summary["timing"]["predict float32"]
    assert f"prediction takes {ratio:.2f} times as long" in printed
    errors = summary["errors"]
    better = sum(c < t for c, t in zip(errors["per channel"], errors["per tensor"]))
    assert f"per channel has the smaller error in {better} of {len(summary['kernels'])} kernels" in printed
    match = re.search(r"one training step, batch (\d+): tracemalloc's peak ([\d.]+) MB", printed)
    assert match and float(match.group(2)) == pytest.approx(summary["memory"]["step_peak"] / 2 ** 20, abs=0.05)
