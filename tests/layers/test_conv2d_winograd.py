"""Conv2D's two algorithms, im2col and Winograd F(4x4, 3x3): both pass the float64 gradient check and agree
with PyTorch to 1e-10 in float64; the 'auto' rule; the argument's checks; and the kept kernel transform,
which must follow every change of the weights.

float32: Winograd's transforms multiply by entries up to 5 (BT) and 8 (AT) and by fractions (G), so each
output is a sum of larger terms that cancel; its rounding error grows with the tile size. Measured against a
float64 convolution, as max |err| / max |y| (outputs, input and kernel gradients, 32-128 channels, N(0, 1) data and
Glorot-scaled kernels): im2col 2e-7 to 4e-7, F(4x4, 3x3) 4e-6 to 6e-6 (a prototype measured the same on a
real U-Net's activations). The tests allow 2e-5 for Winograd and 2e-6 for im2col.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import PARITY_TOL, rel_error, torch_errors, use_backend
from tests.strategies import seeds
from tinyseg import reference
from tinyseg.gradcheck import check_layer
from tinyseg.layers import Conv2D

ALGORITHMS = ["im2col", "winograd"]


@st.composite
def problems(draw, max_side=10, max_channels=5):
    padding = draw(st.sampled_from(["same", "valid"]))
    low = 1 if padding == "same" else 3
    return dict(shape=(draw(st.integers(1, 2)), draw(st.integers(low, max_side)), draw(st.integers(low, max_side)),
                       draw(st.integers(1, max_channels))),
                filters=draw(st.integers(1, max_channels)), padding=padding, seed=draw(seeds))


def layer_and_input(p, algorithm, dtype="float64"):
    rng = np.random.default_rng(p["seed"])
    layer = Conv2D(p["filters"], 3, padding=p["padding"], algorithm=algorithm, dtype=dtype)
    layer.build(p["shape"][1:])
    layer.set_weights([rng.standard_normal(w.shape).astype(dtype) for w in layer.get_weights()])
    return layer, rng.standard_normal(p["shape"]).astype(dtype)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@settings(max_examples=12, deadline=None)
@given(problems(max_side=9, max_channels=3))
def test_gradient_check(algorithm, p):
    layer, x = layer_and_input(p, algorithm)
    report = check_layer(layer, x, seed=p["seed"] % 1000)
    assert layer.saved.winograd == (algorithm == "winograd")
    assert report.max_rel_error < 1e-6, str(report)
    assert set(report.per_array) == {"input", "kernel", "bias"}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@settings(max_examples=15, deadline=None)
@given(problems(max_side=13, max_channels=9))
def test_pytorch_parity(algorithm, p):
    pytest.importorskip("torch")
    layer, x = layer_and_input(p, algorithm)
    errors = torch_errors(layer, x, seed=p["seed"])
    assert max(errors.values()) < PARITY_TOL, errors


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_both_backends_equal_the_loops(backend):
    p = dict(shape=(2, 9, 7, 4), filters=3, padding="same", seed=4)
    layer, x = layer_and_input(p, "winograd")
    with use_backend(backend):
        y = layer.forward(x, training=True)
        g = np.random.default_rng(0).standard_normal(y.shape)
        dx = layer.backward(g)
    kernel, bias = layer.get_weights()
    assert rel_error(y, reference.conv2d(x, kernel, bias, padding="same")) < 1e-12
    dx_ref, dk_ref, db_ref = reference.conv2d_backward(x, kernel, g, padding="same")
    assert rel_error(dx, dx_ref) < 1e-12
    assert rel_error(layer.grads["kernel"], dk_ref) < 1e-12 and rel_error(layer.grads["bias"], db_ref) < 1e-12


@pytest.mark.parametrize("algorithm,tol", [("im2col", 2e-6), ("winograd", 2e-5)])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_float32_error_is_as_stated(algorithm, tol, padding):
    """float32 against the float64 convolution of the same numbers (module docstring: why Winograd's is larger)."""
    p = dict(shape=(2, 21, 18, 40), filters=36, padding=padding, seed=7)
    layer, x = layer_and_input(p, algorithm, dtype="float32")
    y = layer.forward(x)
    kernel, bias = (w.astype(np.float64) for w in layer.get_weights())
    exact = Conv2D(36, 3, padding=padding, algorithm="im2col", dtype="float64")
    exact.build(x.shape[1:])
    exact.set_weights([kernel, bias])
    y64 = exact.forward(x.astype(np.float64))
    assert rel_error(y, y64) < tol
    g = np.random.default_rng(1).standard_normal(y.shape)
    exact.backward(g)
    assert rel_error(layer.backward(g.astype(np.float32)), exact.backward(g)) < tol
    for name in ("kernel", "bias"):             # Winograd's kernel gradient runs the tiles backwards
        assert rel_error(layer.grads[name], exact.grads[name]) < tol, name


# ------------------------------------------------------------------------------------------------------------
# The argument and the rule
# ------------------------------------------------------------------------------------------------------------
def test_algorithm_is_checked_and_kept_in_the_config():
    with pytest.raises(ValueError, match="algorithm must be one of"):
        Conv2D(4, 3, algorithm="fft")
    with pytest.raises(ValueError, match="algorithm='winograd' needs"):
        Conv2D(4, 3, strides=2, algorithm="winograd")
    with pytest.raises(ValueError, match="algorithm='winograd' needs"):
        Conv2D(4, 5, algorithm="winograd")
    layer = Conv2D(4, 3, algorithm="winograd")
    assert layer.get_config()["algorithm"] == "winograd"
    assert Conv2D.from_config(layer.get_config()).algorithm == "winograd"
    assert Conv2D(4, 3).get_config()["algorithm"] == "auto"


@pytest.mark.parametrize("channels,filters,kwargs,expected", [
    (32, 32, {}, True), (64, 128, {}, True), (16, 32, {}, True), (32, 16, {}, True), (16, 16, {}, True),
    (8, 64, {}, False), (15, 16, {}, False), (3, 32, {}, False),
    (32, 32, dict(strides=2), False), (32, 32, dict(dilation_rate=2), False), (32, 32, dict(kernel_size=5), False),
    (3, 4, dict(algorithm="winograd"), True), (64, 64, dict(algorithm="im2col"), False)])
def test_auto_rule(channels, filters, kwargs, expected):
    kwargs = {"kernel_size": 3, **kwargs}
    layer = Conv2D(filters, padding="same", **kwargs)
    x = np.zeros((1, 8, 8, channels), np.float32)
    assert layer.uses_winograd(x) == expected
    layer.forward(x)
    assert layer.saved.winograd == expected
    with use_backend("numpy"):          # 'auto' runs the plain im2col lines there; a forced choice stays
        assert layer.uses_winograd(x) == (expected and layer.algorithm == "winograd")


# ------------------------------------------------------------------------------------------------------------
# The kept kernel transform never goes stale
# ------------------------------------------------------------------------------------------------------------
def im2col_twin(layer):
    twin = Conv2D(layer.filters, 3, padding=layer.padding, algorithm="im2col", dtype=layer.dtype)
    twin.build(layer.input_shape)
    twin.set_weights(layer.get_weights())
    return twin


def test_transform_follows_optimizer_steps_and_set_weights():
    from tinyseg.optimizers import SGD
    p = dict(shape=(2, 8, 8, 3), filters=4, padding="same", seed=1)
    layer, x = layer_and_input(p, "winograd")
    opt = SGD(learning_rate=0.1)
    for _ in range(3):                       # forward, backward, an in-place update: the next forward sees it
        y = layer.forward(x, training=True)
        assert rel_error(y, im2col_twin(layer).forward(x)) < 1e-12
        layer.backward(np.ones_like(y))
        opt.apply_gradients(zip([layer.grads[k] for k in layer.params], layer.params.values()))
    rng = np.random.default_rng(9)
    layer.set_weights([rng.standard_normal(w.shape) for w in layer.get_weights()])
    y = layer.forward(x, training=True)
    twin = im2col_twin(layer)
    assert rel_error(y, twin.forward(x, training=True)) < 1e-12
    g = rng.standard_normal(y.shape)
    assert rel_error(layer.backward(g), twin.backward(g)) < 1e-12
