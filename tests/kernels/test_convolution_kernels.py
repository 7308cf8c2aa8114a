"""The banded convolution (tinyseg/kernels/convolution.py) against its definition, on both ways of copying a
band: the full im2col, and the kernel rows (im2row) that every kernel row of the window shares.

    y      = im2col(x) @ Kmat                 dL/dKmat = im2col(x)^T @ G

The definition is computed from the NumPy twin im2col_numpy in float64; the banded kernels run in float64
too, so only the order of the additions differs.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.edge_cases import examples, padded_window_cases
from tests.helpers import band_bytes, use_backend
from tests.strategies import padded_windows, seeds
from tinyseg.kernels import convolution
from tinyseg.kernels.im2col import im2col_numpy


@st.composite
def problems(draw):
    win = draw(padded_windows(max_side=9, max_kernel=3, max_stride=2, max_dilation=2, max_pad=2))
    n, f = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    c = draw(st.sampled_from([3, 12]))           # 12: KW*C >= 32 for KW = 3, the kernel-rows way
    band_bytes = draw(st.sampled_from([200, 2000, 4 * 2**20]))     # bands of 1 row, a few rows, whole images
    return dict(win=win, x_shape=(n, *win["hw"], c), f=f, band_bytes=band_bytes, seed=draw(seeds),
                backend=draw(st.sampled_from(["numba", "numpy"])))


def _problem(p):
    rng = np.random.default_rng(p["seed"])
    (kh, kw), (oh, ow) = p["win"]["kernel"], p["win"]["out_hw"]
    x = rng.standard_normal(p["x_shape"])
    kernel = rng.standard_normal((kh, kw, p["x_shape"][3], p["f"]))
    g = rng.standard_normal((p["x_shape"][0], oh, ow, p["f"]))
    cols = im2col_numpy(x, kh, kw, *p["win"]["strides"], p["win"]["pads"], (oh, ow), dilation=p["win"]["dilation"])
    return x, kernel, g, cols


@settings(deadline=None, max_examples=60)
@given(p=problems())
@examples([dict(p=dict(win=win, x_shape=(2, *win["hw"], c), f=3, band_bytes=size, seed=i, backend=backend))
           for i, win in enumerate(padded_window_cases()) for c in (3, 12) for backend in ("numba", "numpy")
           for size in (200, 4 * 2**20)])
def test_forward_and_kernel_gradient_are_the_im2col_products(p):
    x, kernel, g, cols = _problem(p)
    w = p["win"]
    f = p["f"]
    with use_backend(p["backend"]), band_bytes(p["band_bytes"]):
        y = convolution.conv2d(x, kernel, w["strides"], w["pads"], w["out_hw"], dilation=w["dilation"])
        dk, db = convolution.conv2d_kernel_grad(x, g, w["kernel"], w["strides"], w["pads"], dilation=w["dilation"],
                                                bias=True)
    np.testing.assert_allclose(y.reshape(-1, f), cols @ kernel.reshape(-1, f), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dk, cols.T @ g.reshape(-1, f), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(db, g.sum(axis=(0, 1, 2)), rtol=1e-10, atol=1e-10)


def test_which_way_a_band_is_copied():
    """Kernel rows for a wide window over bands within one image at SH = 1; the full im2col otherwise."""
    def way(x_shape, ksize=(3, 3), strides=(1, 1), out_hw=None):
        x = np.zeros(x_shape, np.float32)
        plan = convolution.band_plan(x, ksize, out_hw or x_shape[1:3])
        return convolution.by_kernel_rows(x, plan, ksize, strides)
    assert way((4, 128, 128, 16))                         # the U-Net's 16-channel layers
    assert not way((4, 128, 128, 3))                      # RGB: KW*C = 9
    assert not way((32, 15, 15, 32), out_hw=(13, 13))     # the seed CNN: bands of many small images
    assert not way((4, 128, 128, 16), strides=(2, 2), out_hw=(64, 64))
    assert not way((4, 128, 128, 16), ksize=(1, 1))


def test_a_kept_im2col_of_the_wrong_shape_is_refused():
    """conv2d_kernel_grad(cols=...) reads the forward's im2col; one of another shape (another input, another
    kernel) is refused by name, before any product."""
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((2, 5, 5, 3)), rng.standard_normal((2, 5, 5, 4))
    y, cols = convolution.conv2d(x, rng.standard_normal((3, 3, 3, 4)), (1, 1), (1, 1, 1, 1), (5, 5),
                                 keep_cols=True)
    assert cols.shape == (50, 27)
    with pytest.raises(ValueError, match=r"conv2d_kernel_grad: cols must be im2col\(x\) of shape \(50, 27\), got"):
        convolution.conv2d_kernel_grad(x, g, (3, 3), (1, 1), (1, 1, 1, 1), cols=cols[:, :18])
