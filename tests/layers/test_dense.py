"""Dense and Flatten: closed forms, finite-difference gradients, Flatten's channels-last order, and errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyseg.gradcheck import check_layer
from tinyseg.layers import Dense, Flatten

FAST = settings(deadline=None, max_examples=25)


def make_dense(d_in, units, activation=None, use_bias=True, seed=0, dtype="float64"):
    layer = Dense(units, activation=activation, use_bias=use_bias, dtype=dtype)
    layer.build((d_in,))
    rng = np.random.default_rng(seed)               # variance 1/d_in: pre-activations O(1), no saturation
    layer.set_weights([rng.standard_normal(p.shape) / np.sqrt(d_in) for p in layer.params.values()])
    return layer


def test_dense_forward_is_x_at_w_plus_b():
    layer = make_dense(2, 3)
    layer.set_weights([np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), np.array([0.5, -0.5, 1.0])])
    y = layer.forward(np.array([[1.0, 1.0], [2.0, -1.0]]))
    np.testing.assert_array_equal(y, [[1 + 4 + 0.5, 2 + 5 - 0.5, 3 + 6 + 1],
                                      [2 - 4 + 0.5, 4 - 5 - 0.5, 6 - 6 + 1]])


def test_dense_backward_closed_form():
    """dW = x^T G, db = sum_n G[n], dx = G W^T (module docstring), written out with einsum."""
    rng = np.random.default_rng(0)
    layer = make_dense(4, 3, seed=1)
    x = rng.standard_normal((5, 4))
    g = rng.standard_normal((5, 3))
    layer.forward(x)
    dx = layer.backward(g)
    np.testing.assert_allclose(layer.grads["kernel"], np.einsum("ni,nj->ij", x, g), rtol=1e-13)
    np.testing.assert_allclose(layer.grads["bias"], np.einsum("nj->j", g), rtol=1e-13)
    np.testing.assert_allclose(dx, np.einsum("nj,ij->ni", g, layer.params["kernel"]), rtol=1e-13)


@FAST
@given(n=st.integers(1, 5), d_in=st.integers(1, 12), units=st.integers(1, 6),
       activation=st.sampled_from([None, "sigmoid", "tanh", "softmax"]), use_bias=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_dense_gradients_match_finite_differences(n, d_in, units, activation, use_bias, seed):
    layer = make_dense(d_in, units, activation, use_bias, seed=seed)
    x = np.random.default_rng(seed + 1).standard_normal((n, d_in))
    report = check_layer(layer, x, max_entries=None, seed=seed % 1000)
    assert report.max_rel_error < 1e-6, str(report)
    assert report.n_checked == n * d_in + d_in * units + (units if use_bias else 0)


def test_dense_relu_gradients_fixed_seed():
    layer = make_dense(6, 5, "relu", seed=11)
    x = np.random.default_rng(12).standard_normal((4, 6))
    z = layer.forward_linear(x)
    assert np.abs(z).min() > 1e-4 and (z < 0).any() and (z > 0).any()   # far from the kink, both sides
    report = check_layer(layer, x, max_entries=None)
    assert report.max_rel_error < 1e-6, str(report)


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "softmax"])
def test_dense_backward_does_not_mutate_grad_and_keeps_float32(activation):
    layer = make_dense(4, 3, activation, dtype="float32")
    y = layer.forward(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    assert y.dtype == np.float32
    grad = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    kept = grad.copy()
    dx = layer.backward(grad)
    np.testing.assert_array_equal(grad, kept)
    assert dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())


def test_dense_errors():
    for units in (0, -1, 2.5, "3", True, None):
        with pytest.raises(ValueError, match="units must be a positive integer"):
            Dense(units)
    with pytest.raises(ValueError, match=r"put a Flatten\(\) before it"):
        Dense(3).forward(np.zeros((2, 4, 4, 1), np.float32))
    layer = Dense(3)
    layer.forward(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"expected \(batch,\) \+ \(4,\)"):
        layer.forward(np.zeros((2, 5), np.float32))
    with pytest.raises(TypeError, match=r"astype\('float32'\)"):
        layer.forward(np.zeros((2, 4), np.float64))
    with pytest.raises(ValueError, match="grad has shape"):
        layer.backward(np.zeros((2, 4), np.float32))


# ------------------------------------------------------------------------------------------------------------
# Flatten.
# ------------------------------------------------------------------------------------------------------------
def test_flatten_is_c_order_channel_fastest():
    x = np.arange(2 * 2 * 3 * 4, dtype=np.float32).reshape(2, 2, 3, 4)       # (N, H, W, C)
    y = Flatten().forward(x)
    assert y.shape == (2, 24)
    np.testing.assert_array_equal(y[0, :4], x[0, 0, 0, :])       # first come the 4 channels of pixel (0, 0)
    np.testing.assert_array_equal(y[0, 4:8], x[0, 0, 1, :])      # then pixel (0, 1)
    for h in range(2):
        for w in range(3):
            for c in range(4):
                assert y[1, (h * 3 + w) * 4 + c] == x[1, h, w, c]


@settings(deadline=None, max_examples=20)
@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=4), seed=st.integers(0, 1000))
def test_flatten_backward_inverts_forward(shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    layer = Flatten(dtype="float64")
    y = layer.forward(x)
    assert y.shape == (shape[0], int(np.prod(shape[1:])))
    np.testing.assert_array_equal(layer.backward(y), x)
    g = np.random.default_rng(seed + 1).standard_normal(y.shape)
    np.testing.assert_array_equal(layer.backward(g).reshape(y.shape), g)    # and the gradient keeps the order
    report = check_layer(layer, x, max_entries=None)
    assert report.max_rel_error < 1e-6 and report.n_checked == x.size


def test_flatten_refuses_a_wrong_gradient_shape():
    layer = Flatten()
    layer.forward(np.zeros((2, 3, 3, 2), np.float32))
    with pytest.raises(ValueError, match="grad has shape"):
        layer.backward(np.zeros((2, 17), np.float32))
