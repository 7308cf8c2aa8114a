"""ReLU and bias-add kernels (tinyseg/kernels/elementwise.py): Numba against the NumPy twins on arrays of any shape,
layout and float dtype, with zeros, NaN and infinities among the values."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.helpers import use_backend
from tinyseg.kernels.elementwise import add_bias, add_bias_numpy, relu, relu_backward, relu_backward_numpy, relu_numpy


def arrays(dtype, shape):
    return hnp.arrays(dtype, shape, elements=st.floats(width=32, allow_nan=True, allow_infinity=True))


@settings(deadline=None, max_examples=50)
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]),
       shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=5), transpose=st.booleans())
def test_numba_matches_numpy_twin(data, dtype, shape, transpose):
    x, g = data.draw(arrays(dtype, shape)), data.draw(arrays(dtype, shape))
    if transpose:                                    # a non-contiguous view
        x, g = x.T, g.T
    with use_backend("numba"):
        y, dx = relu(x), relu_backward(g, x)
    assert y.dtype == dtype and dx.dtype == dtype and y.shape == x.shape and dx.shape == x.shape
    np.testing.assert_array_equal(y, relu_numpy(x))
    np.testing.assert_array_equal(dx, relu_backward_numpy(g, x))


def test_kink_and_nan():
    x = np.array([-1.0, -0.0, 0.0, 2.0, np.nan], dtype=np.float32)
    g = np.array([5.0, 5.0, 5.0, 5.0, 5.0], dtype=np.float32)
    with use_backend("numba"):
        np.testing.assert_array_equal(relu(x), [0, 0, 0, 2, np.nan])
        np.testing.assert_array_equal(relu_backward(g, x), [0, 0, 0, 5, 0])     # derivative 0 at the kink


@settings(deadline=None, max_examples=50)
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]),
       shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=5), transpose=st.booleans())
def test_add_bias_matches_numpy_twin_in_place(data, dtype, shape, transpose):
    y = data.draw(arrays(dtype, shape))
    if transpose:                                    # a non-contiguous view takes the NumPy path
        y = y.T
    b = data.draw(arrays(dtype, (y.shape[-1],)))
    want = add_bias_numpy(y.copy(), b)
    with use_backend("numba"):
        got = add_bias(y, b)
    assert got is y                                  # in place: no new array
    np.testing.assert_array_equal(y, want)


def test_add_bias_refuses_a_bias_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"add_bias: b must have shape \(3,\)"):
        add_bias(np.zeros((2, 3), np.float32), np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="add_bias"):
        add_bias(np.zeros((2, 3), np.float32), np.zeros((1, 3), np.float32))
