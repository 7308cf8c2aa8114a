"""Winograd's F(m, 3): the transform matrices against the definition of a correlation, the NumPy version
(tinyseg/winograd.py) against the loop reference, and the Numba kernels (kernels/winograd.py) against the
NumPy version, band by band, in float64 (only the order of additions differs: 1e-12) and float32.

    1-D:  AT @ ((G @ g) * (BT @ d)) = [sum_k d[i + k] g[k] for i < m]
    2-D:  Y = AT [(G g G^T) * (BT d B)] A
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import rel_error, use_backend
from tests.strategies import seeds
from tinyseg import reference, winograd
from tinyseg.kernels import winograd as fast


def correlate(d, g, m):
    return np.array([sum(d[i + k] * g[k] for k in range(len(g))) for i in range(m)])


# ------------------------------------------------------------------------------------------------------------
# The matrices
# ------------------------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 4), seeds)
def test_matrices_compute_the_correlation(m, r, seed):
    if m + r - 2 > len(winograd.DEFAULT_POINTS):
        return
    AT, G, BT = winograd.transform_matrices(m, r)
    n = m + r - 1
    assert AT.shape == (m, n) and G.shape == (n, r) and BT.shape == (n, n)
    rng = np.random.default_rng(seed)
    d, g = rng.standard_normal(n), rng.standard_normal(r)
    assert rel_error(AT @ ((G @ g) * (BT @ d)), correlate(d, g, m)) < 1e-13


def test_matrices_of_f43_have_integer_input_transform():
    """With the points 0, +-1, +-2 the Lagrange denominators sit in G, so BT is integers (the usual F(4, 3))."""
    AT, G, BT = winograd.transform_matrices(4)
    assert np.array_equal(BT, np.round(BT)) and np.array_equal(AT, np.round(AT))
    assert np.allclose(G[:, 0] * np.array([4, -6, -6, 24, 24, 1]), [1, 1, 1, 1, 1, 0])


def test_other_points_work_too():
    AT, G, BT = winograd.transform_matrices(2, 3, points=(0.0, 0.5, -3.0))
    d, g = np.arange(4.0) - 1.5, np.array([0.3, -1.0, 2.0])
    assert rel_error(AT @ ((G @ g) * (BT @ d)), correlate(d, g, 2)) < 1e-13


@pytest.mark.parametrize("kwargs", [dict(m=0), dict(m=2, points=(0.0, 1.0)), dict(m=2, points=(0.0, 1.0, 1.0)),
                                    dict(m=12)])
def test_bad_arguments_are_named(kwargs):
    with pytest.raises(ValueError, match="transform_matrices"):
        winograd.transform_matrices(**kwargs)


@pytest.mark.parametrize("m", [2, 4])
def test_one_tile_loops_equal_the_matrix_formula(m):
    rng = np.random.default_rng(m)
    AT, G, BT = winograd.transform_matrices(m)
    d, g = rng.standard_normal((m + 2, m + 2)), rng.standard_normal((3, 3))
    direct = np.array([[np.sum(d[a:a + 3, b:b + 3] * g) for b in range(m)] for a in range(m)])
    tile = reference.winograd_tile(d, g, AT, G, BT)
    assert rel_error(tile, direct) < 1e-13
    assert rel_error(AT @ ((G @ g @ G.T) * (BT @ d @ BT.T)) @ AT.T, direct) < 1e-13


# ------------------------------------------------------------------------------------------------------------
# The whole convolution
# ------------------------------------------------------------------------------------------------------------
@st.composite
def problems(draw, max_side=11):
    padding = draw(st.sampled_from(["same", "valid"]))
    low = 1 if padding == "same" else 3
    return dict(shape=(draw(st.integers(1, 3)), draw(st.integers(low, max_side)), draw(st.integers(low, max_side)),
                       draw(st.integers(1, 19))),
                k=draw(st.integers(1, 11)), padding=padding, seed=draw(seeds))


def arrays(p, dtype=np.float64):
    rng = np.random.default_rng(p["seed"])
    x = rng.standard_normal(p["shape"]).astype(dtype)
    kernel = rng.standard_normal((3, 3, p["shape"][3], p["k"])).astype(dtype)
    return x, kernel, rng.standard_normal(p["k"]).astype(dtype)


@settings(max_examples=25, deadline=None)
@given(problems(max_side=8), st.sampled_from([2, 4]))
def test_numpy_winograd_equals_the_loops(p, m):
    x, kernel, bias = arrays(p)
    y = winograd.conv2d_winograd(x, kernel, p["padding"], m=m, bias=bias)
    assert rel_error(y, reference.conv2d(x, kernel, bias, padding=p["padding"])) < 1e-12
    g = np.random.default_rng(1).standard_normal(y.shape)
    for ours, loops in zip(winograd.conv2d_winograd_backward(x, kernel, g, p["padding"], m=m),
                           reference.conv2d_backward(x, kernel, g, padding=p["padding"])):
        assert rel_error(ours, loops) < 1e-12


@settings(max_examples=40, deadline=None)
@given(problems(), st.sampled_from([np.float64, np.float32]), st.sampled_from([2**19, 3000, 200]))
def test_numba_kernels_equal_numpy_twin(p, dtype, band_bytes):
    """The banded Numba forward and kernel gradient against the NumPy version, with bands of whole images,
    of a few tiles and of one tile (BAND_BYTES), and channel counts around the 8-tile groups."""
    x, kernel, bias = arrays(p, dtype)
    pads, out_hw = winograd.same_or_valid(p["padding"], x.shape[1:3])
    U = winograd.kernel_transform(kernel, winograd.transform_matrices(4)[1])
    old, fast.BAND_BYTES = fast.BAND_BYTES, band_bytes
    try:
        with use_backend("numba"):
            y = fast.conv2d(x, U, pads, out_hw, bias)
            g = np.random.default_rng(2).standard_normal(y.shape).astype(dtype)
            dk, db = fast.kernel_grad(x, g, pads, bias=True)
    finally:
        fast.BAND_BYTES = old
    tol = 1e-12 if dtype == np.float64 else 2e-5
    assert y.dtype == dtype and dk.dtype == dtype
    assert rel_error(y, winograd.winograd_products(x, U, pads, out_hw, 4) + bias) < tol
    assert rel_error(dk, winograd.winograd_kernel_grad(x, g, pads, 4)) < tol
    assert rel_error(db, g.sum(axis=(0, 1, 2))) < tol         # read off the tiles' position (1, 1)


def test_numpy_backend_runs_the_twin():
    p = dict(shape=(2, 6, 7, 5), k=3, padding="same", seed=3)
    x, kernel, bias = arrays(p)
    U = winograd.kernel_transform(kernel, winograd.transform_matrices(4)[1])
    with use_backend("numpy"):
        y = fast.conv2d(x, U, (1, 1, 1, 1), (6, 7), bias)
    assert rel_error(y, reference.conv2d(x, kernel, bias, padding="same")) < 1e-12


# ------------------------------------------------------------------------------------------------------------
# The kept kernel transform
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels, filters", [(1, 1), (5, 3), (16, 32)])
def test_kernel_transform_by_products_equals_the_einsum(channels, filters):
    kernel = np.random.default_rng(channels).standard_normal((3, 3, channels, filters))
    G = winograd.transform_matrices(4)[1]
    for g in (kernel, winograd.back_kernel(kernel)):        # a strided view too: the input gradient's kernel
        assert rel_error(fast.kernel_transform(g, G), winograd.kernel_transform(g, G)) < 1e-14


def test_kept_transform_follows_the_kernel():
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 3, 2, 4))
    kept = fast.KernelTransforms()
    G = winograd.transform_matrices(4)[1]
    first = kept.get(kernel, "forward")
    assert kept.get(kernel, "forward") is first                         # unchanged kernel: kept
    kernel[1, 2, 0, 3] += 1e-3                                          # an in-place update (an optimizer step)
    assert np.array_equal(kept.get(kernel, "forward"), winograd.kernel_transform(kernel, G))
    back = kept.get(kernel, "backward")
    assert np.array_equal(back, winograd.kernel_transform(winograd.back_kernel(kernel), G))
    kernel[...] = rng.standard_normal(kernel.shape)                      # set_weights writes in place too
    assert np.array_equal(kept.get(kernel, "backward"), winograd.kernel_transform(winograd.back_kernel(kernel), G))


def test_fast_kernels_refuse_another_tile_size():
    """The Numba transforms are F(4x4, 3x3)'s written out: an F(2x2, 3x3) kernel (4, 4, C, K) is refused by name."""
    U = winograd.kernel_transform(np.ones((3, 3, 2, 3)), winograd.transform_matrices(2)[1])
    with pytest.raises(ValueError, match=r"winograd conv2d: U must be F\(4x4, 3x3\)'s transformed kernel"):
        fast.conv2d(np.ones((1, 4, 4, 2)), U, (1, 1, 1, 1), (4, 4))
