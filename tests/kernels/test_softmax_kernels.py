"""Softmax and log-softmax over the last axis (tinyseg/kernels/softmax.py): the Numba kernel against the NumPy
twins, the twins against the definition, and the guard against overflow."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import use_backend
from tinyseg.kernels.softmax import (
    log_softmax,
    log_softmax_numpy,
    softmax,
    softmax_and_log_softmax,
    softmax_and_log_softmax_numpy,
    softmax_numpy,
)


@settings(deadline=None, max_examples=40)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), dtype=st.sampled_from([np.float32, np.float64]),
       scale=st.sampled_from([1.0, 30.0]), seed=st.integers(0, 2**32 - 1))
def test_numba_matches_numpy_twin_and_definition(shape, dtype, scale, seed):
    z = (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)
    with use_backend("numba"):
        lp, p = log_softmax(z), softmax(z)
    assert lp.dtype == dtype and p.dtype == dtype and lp.shape == z.shape and p.shape == z.shape
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(lp, log_softmax_numpy(z), **tol)
    np.testing.assert_allclose(p, softmax_numpy(z), **tol)
    z64 = z.astype(np.float64)
    want = np.exp(z64) / np.exp(z64).sum(axis=-1, keepdims=True)      # safe here: |z| <= about 150
    np.testing.assert_allclose(p, want, **tol)
    np.testing.assert_allclose(p.sum(axis=-1), 1, **tol)
    # both from one pass: bit for bit what softmax and log_softmax give alone, and the twins' numbers
    with use_backend("numba"):
        p2, lp2 = softmax_and_log_softmax(z)
    np.testing.assert_array_equal(p2, p)
    np.testing.assert_array_equal(lp2, lp)
    p_t, lp_t = softmax_and_log_softmax_numpy(z)
    np.testing.assert_allclose(p2, p_t, **tol)
    np.testing.assert_allclose(lp2, lp_t, **tol)


def test_huge_logits_do_not_overflow():
    z = np.array([[1000.0, 0.0, -1000.0], [-5e4, -5e4, -5e4]], dtype=np.float32)
    for backend in ("numba", "numpy"):
        with use_backend(backend):
            lp, p = log_softmax(z), softmax(z)
        assert np.all(np.isfinite(lp)) and np.all(np.isfinite(p))
        np.testing.assert_allclose(lp[0], [0, -1000, -2000], atol=1e-3)
        np.testing.assert_allclose(p[1], [1 / 3] * 3, rtol=1e-6)
        with use_backend(backend):
            p2, lp2 = softmax_and_log_softmax(z)
        np.testing.assert_array_equal(p2, p)
        np.testing.assert_array_equal(lp2, lp)


def test_non_contiguous_input():
    z = np.random.default_rng(0).standard_normal((5, 8))[:, ::2]
    with use_backend("numba"):
        np.testing.assert_allclose(log_softmax(z), log_softmax_numpy(z), rtol=1e-13, atol=1e-13)
