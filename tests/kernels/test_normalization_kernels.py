"""The batch-norm kernels (tinyseg/kernels/normalization.py): Numba against the NumPy twins, twins against the
formulas written out in plain NumPy float64, and the row blocks' edges (M not a multiple of the block size)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import use_backend
from tinyseg.kernels import normalization as kn

FAST = settings(deadline=None, max_examples=30)


def both(fn, *args):
    """fn(*args) with the Numba kernels and with the NumPy twins."""
    with use_backend("numba"):
        fast = fn(*args)
    with use_backend("numpy"):
        twin = fn(*args)
    return fast, twin


# Row counts around the block size, so the last block is full, partial, or the only one.
ROWS = st.sampled_from([1, 2, 7, kn._BLOCK_ROWS - 1, kn._BLOCK_ROWS, kn._BLOCK_ROWS + 1, 3 * kn._BLOCK_ROWS + 5])


@st.composite
def data(draw, n_arrays):
    m, c = draw(ROWS), draw(st.integers(1, 9))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    offset = draw(st.sampled_from([0.0, 3.0, -50.0]))       # a mean far from 0 tests the centred formulas
    arrays = [(rng.standard_normal((m, c)) * 2 + offset).astype(dtype) for _ in range(n_arrays)]
    vectors = [rng.standard_normal(c) for _ in range(4)]
    return arrays, vectors


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-10)


@FAST
@given(data(1))
def test_mean_var_matches_twin_and_definition(d):
    (x,), _ = d
    (mu, var), (mu_t, var_t) = both(kn.channel_mean_var, x)
    x64 = x.astype(np.float64)
    assert mu.dtype == np.float64 and var.dtype == np.float64
    np.testing.assert_allclose(mu, mu_t, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(var, var_t, rtol=1e-6 if x.dtype == np.float32 else 1e-12, atol=1e-10)
    np.testing.assert_allclose(mu, x64.mean(axis=0), **tol(x.dtype))
    np.testing.assert_allclose(var, x64.var(axis=0), **tol(x.dtype))


@FAST
@given(data(1))
def test_affine_matches_twin_and_definition(d):
    (x,), (mu, a, b, _) = d
    y, y_t = both(kn.channel_affine, x, mu, a, b)
    assert y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_allclose(y, y_t, **tol(x.dtype))
    np.testing.assert_allclose(y, a * (x.astype(np.float64) - mu) + b, **tol(x.dtype))


@FAST
@given(data(2))
def test_grad_sums_match_twin_and_definition(d):
    (g, x), (mu, s, _, _) = d
    s = np.abs(s) + 0.1                                        # 1 / sigma is positive
    (sg, sgx), (sg_t, sgx_t) = both(kn.channel_grad_sums, g, x, mu, s)
    np.testing.assert_allclose(sg, sg_t, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(sgx, sgx_t, rtol=1e-5, atol=1e-3 if x.dtype == np.float32 else 1e-9)
    g64, x64 = g.astype(np.float64), x.astype(np.float64)
    np.testing.assert_allclose(sg, g64.sum(axis=0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sgx, (g64 * (x64 - mu) * s).sum(axis=0),
                               rtol=1e-5, atol=1e-3 if x.dtype == np.float32 else 1e-9)


@FAST
@given(data(2))
def test_batchnorm_input_grad_matches_twin_and_definition(d):
    (g, x), (mu, inv_sigma, gain, mean_g) = d
    mean_gx = gain[::-1].copy()
    dx, dx_t = both(kn.batchnorm_input_grad, g, x, mu, inv_sigma, gain, mean_g, mean_gx)
    assert dx.dtype == x.dtype and dx.shape == x.shape
    np.testing.assert_allclose(dx, dx_t, **tol(x.dtype))
    xhat = (x.astype(np.float64) - mu) * inv_sigma
    np.testing.assert_allclose(dx, gain * (g - mean_g - xhat * mean_gx), **tol(x.dtype))


def test_float32_statistics_keep_their_digits():
    """A million float32 values around 1000 with spread 1: float64 accumulation gets the variance right."""
    rng = np.random.default_rng(0)
    x = (1000 + rng.standard_normal((2**20, 2))).astype(np.float32)
    with use_backend("numba"):
        mu, var = kn.channel_mean_var(x)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mu, x64.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(var, x64.var(axis=0), rtol=1e-5)


def test_blocks_of_unequal_size_combine_to_the_whole_statistics():
    """channel_mean_var combines per-block means and squared deviations: with blocks of 1024, 1024 and 452
    rows whose means differ, the result is the mean and variance of all rows."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2500, 3)) + np.linspace(0, 40, 2500)[:, None]       # a drifting mean
    with use_backend("numba"):
        mu, var = kn.channel_mean_var(x)
    np.testing.assert_allclose(mu, x.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(var, x.var(axis=0), rtol=1e-12)
