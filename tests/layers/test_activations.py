"""Activations: closed forms, derivatives, numerical stability and the `activation=` names.

Where the library uses one formula, the tests use another that is mathematically equal:

    sigmoid(x) = (1 + tanh(x / 2)) / 2          sigmoid'(x) = 1 / (4 cosh^2(x / 2))
    tanh'(x)   = 1 / cosh^2(x)                  softmax(x)  = exp(x) / sum exp(x)   (no max subtracted; |x| small)
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinyseg.gradcheck import check_layer
from tinyseg.layers import Activation, Conv2D, Dense, Linear, ReLU, Sigmoid, Softmax, Tanh, activations

FAST = settings(deadline=None, max_examples=25)
LAYERS = [Linear, ReLU, Sigmoid, Tanh, Softmax]

# Overflow, 0/0 and division by zero must not happen. Underflow (exp(-1e4) -> 0) is the right answer, so allowed.
STRICT = dict(over="raise", invalid="raise", divide="raise", under="ignore")

shapes = hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=4)


def _x(shape, seed, scale=2.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


# ------------------------------------------------------------------------------------------------------------
# Closed forms.
# ------------------------------------------------------------------------------------------------------------
@FAST
@given(shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_forward_matches_closed_forms(shape, seed):
    x = _x(shape, seed)
    np.testing.assert_array_equal(ReLU(dtype="float64").forward(x), np.where(x > 0, x, 0.0))
    np.testing.assert_array_equal(Linear(dtype="float64").forward(x), x)
    # (1 + tanh) loses digits to cancellation where sigmoid is small, hence the absolute tolerance
    np.testing.assert_allclose(Sigmoid(dtype="float64").forward(x), (1 + np.tanh(x / 2)) / 2, rtol=1e-13,
                               atol=1e-16)
    np.testing.assert_allclose(Tanh(dtype="float64").forward(x), np.sinh(x) / np.cosh(x), rtol=1e-14)
    e = np.exp(x)
    np.testing.assert_allclose(Softmax(dtype="float64").forward(x), e / e.sum(axis=-1, keepdims=True),
                               rtol=1e-14)


@FAST
@given(shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_backward_matches_closed_form_derivatives(shape, seed):
    x = _x(shape, seed)
    g = _x(shape, seed + 1, 1.0)

    def back(cls):
        layer = cls(dtype="float64")
        layer.forward(x)
        return layer.backward(g)

    np.testing.assert_array_equal(back(ReLU), g * (x > 0))
    np.testing.assert_array_equal(back(Linear), g)
    np.testing.assert_allclose(back(Sigmoid), g / (4 * np.cosh(x / 2) ** 2), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(back(Tanh), g / np.cosh(x) ** 2, rtol=1e-12, atol=1e-15)
    # softmax: full Jacobian J_kj = p_k (delta_kj - p_j), applied row by row: dx = J^T g = J g (J is symmetric)
    p = np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)
    jac = np.einsum("...k,kj->...kj", p, np.eye(shape[-1])) - np.einsum("...k,...j->...kj", p, p)
    np.testing.assert_allclose(back(Softmax), np.einsum("...kj,...j->...k", jac, g), rtol=1e-12, atol=1e-15)


@FAST
@given(shape=shapes, cls=st.sampled_from([Linear, Sigmoid, Tanh, Softmax]), seed=st.integers(0, 2**32 - 1))
def test_gradients_match_finite_differences(shape, cls, seed):
    report = check_layer(cls(dtype="float64"), _x(shape, seed, 1.0), max_entries=None, seed=seed % 1000)
    assert report.max_rel_error < 1e-6, str(report)
    assert report.n_checked == int(np.prod(shape))


def test_relu_gradient_fixed_seed_away_from_the_kink():
    x = _x((3, 4, 5), 0)
    assert np.abs(x).min() > 1e-3
    report = check_layer(ReLU(dtype="float64"), x, max_entries=None)
    assert report.max_rel_error < 1e-6, str(report)


def test_relu_derivative_at_zero_is_zero():
    layer = ReLU(dtype="float64")
    layer.forward(np.array([[-1.0, 0.0, 1.0]]))
    np.testing.assert_array_equal(layer.backward(np.ones((1, 3))), [[0.0, 0.0, 1.0]])


# ------------------------------------------------------------------------------------------------------------
# Stability.
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_for_huge_inputs(dtype):
    x = np.array([[-1e30, -1e4, -1000.0, -50.0, 0.0, 50.0, 1000.0, 1e4, 1e30]], dtype=dtype)
    layer = Sigmoid(dtype=dtype)
    with np.errstate(**STRICT):
        y = layer.forward(x)
        dx = layer.backward(np.ones_like(x))
        y_fn = activations.sigmoid(x)
    assert y.dtype == dtype and dx.dtype == dtype
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    np.testing.assert_array_equal(y_fn, y)
    assert y[0, 0] == 0 and y[0, 1] == 0 and y[0, 4] == 0.5 and y[0, -2] == 1 and y[0, -1] == 1
    assert np.all(np.diff(y[0]) >= 0)
    # a tail of exp(-1000) is lost in float64 (it underflows), but exp(-50) must survive exactly, not as 0
    assert y[0, 3] > 0 and (dtype == np.float32 or np.isclose(y[0, 3], np.exp(-50.0), rtol=1e-14))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_is_stable_for_huge_inputs(dtype):
    x = np.array([[1e4, 0.0, -1e4],
                  [1e30, 1e30, -1e30],
                  [-1e4, -1e4, -1e4],
                  [1000.0, 999.0, 0.0]], dtype=dtype)
    layer = Softmax(dtype=dtype)
    with np.errstate(**STRICT):
        y = layer.forward(x)
        dx = layer.backward(np.ones_like(x))
    assert y.dtype == dtype and np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    np.testing.assert_array_equal(y[0], [1, 0, 0])
    np.testing.assert_array_equal(y[1], [0.5, 0.5, 0])
    np.testing.assert_allclose(y[2], [1 / 3] * 3, rtol=1e-6)
    e = np.exp(-1.0)
    np.testing.assert_allclose(y[3], [1 / (1 + e), e / (1 + e), 0], rtol=1e-6)
    np.testing.assert_allclose(dx, 0, atol=1e-6)                 # sum_k p_k = 1, so an all-ones dy has no effect


@FAST
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=5),
                    elements=st.floats(-1e6, 1e6)))
def test_softmax_rows_sum_to_one(x):
    with np.errstate(**STRICT):
        y = Softmax(dtype="float64").forward(x)
    assert np.all(y >= 0) and np.all(y <= 1)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    # the largest score gets the largest probability (ties after rounding allowed, so compare values)
    biggest = np.take_along_axis(y, np.argmax(x, axis=-1)[..., None], axis=-1)[..., 0]
    np.testing.assert_array_equal(biggest, y.max(axis=-1))


# ------------------------------------------------------------------------------------------------------------
# Not mutating, dtype.
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", LAYERS)
def test_backward_does_not_mutate_its_gradient(cls):
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 2.0]])          # negative entries: where a careless ReLU writes 0
    layer = cls(dtype="float64")
    layer.forward(x)
    grad = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    kept = grad.copy()
    dx = layer.backward(grad)
    np.testing.assert_array_equal(grad, kept)
    if np.shares_memory(dx, grad):                        # Linear hands on dy itself: a view nobody can write
        assert cls is Linear and not dx.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            dx[...] = 0
    else:
        dx[...] = 0                                       # what it returns is not the caller's array
    np.testing.assert_array_equal(grad, kept)


@pytest.mark.parametrize("cls", LAYERS)
def test_float32_stays_float32(cls):
    x = _x((2, 3, 3, 4), 0).astype(np.float32)
    layer = cls()
    y = layer.forward(x)
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == np.float32 and dx.dtype == np.float32


# ------------------------------------------------------------------------------------------------------------
# The `activation=` argument.
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, cls", [("relu", ReLU), ("sigmoid", Sigmoid), ("tanh", Tanh),
                                       ("softmax", Softmax), ("linear", Linear), (None, Linear),
                                       ("ReLU", ReLU), ("Softmax", Softmax)])
def test_activation_names(name, cls):
    assert type(Dense(3, activation=name).activation) is cls
    assert type(Conv2D(3, 3, activation=name).activation) is cls
    assert type(activations.get(name)) is cls


def test_activation_argument_is_applied():
    layer = Dense(2, activation="tanh", dtype="float64")
    layer.build((3,))
    x = np.random.default_rng(0).standard_normal((4, 3))
    np.testing.assert_allclose(layer.forward(x), np.tanh(layer.forward_linear(x)), rtol=1e-15)


def test_activation_layer_applies_the_named_function():
    x = _x((2, 5), 3)
    np.testing.assert_allclose(Activation("sigmoid", dtype="float64").forward(x), (1 + np.tanh(x / 2)) / 2,
                               rtol=1e-14)
    layer = Activation("relu", dtype="float64")
    layer.forward(x)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), (x > 0).astype(float))


def test_an_activation_instance_given_to_two_layers_does_not_mix_their_gradients():
    """activation= accepts a layer. If two layers get the same ReLU() they must not share its cache (the input
    mask of the last forward), or the first layer's backward silently uses the second layer's mask.
    Refusing to share the instance would be a fix too."""
    relu = ReLU(dtype="float64")
    first = Dense(3, activation=relu, dtype="float64")
    try:
        second = Dense(3, activation=relu, dtype="float64")
    except ValueError:
        return
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    for layer in (first, second):
        layer.build((3,))
        layer.set_weights([rng.standard_normal(p.shape) for p in layer.params.values()])
    y = first.forward(x)
    second.forward(-x)                                        # another input: another ReLU mask
    g = np.ones_like(y)
    np.testing.assert_allclose(first.backward(g), (g * (y > 0)) @ first.params["kernel"].T, rtol=1e-14)


@pytest.mark.parametrize("bad", ["swish", "gelu", "", 3, "relu6"])
def test_unknown_activation_names_are_refused(bad):
    with pytest.raises(ValueError, match=r"activation must be one of \['linear', 'relu', 'sigmoid', 'softmax', "
                                         r"'tanh'\] or None"):
        activations.get(bad)
    with pytest.raises(ValueError, match="activation must be one of"):
        Dense(3, activation=bad)
    with pytest.raises(ValueError, match="activation must be one of"):
        Activation(bad)


def test_activation_layers_check_their_gradient_shape():
    layer = ReLU()
    layer.forward(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="grad has shape"):
        layer.backward(np.zeros((2, 4), np.float32))
