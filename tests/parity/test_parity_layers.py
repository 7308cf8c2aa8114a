"""Every layer against PyTorch, through tinyseg.interop's converters: the tinyseg layer and
layer_to_torch(layer) get the same float64 input and the same upstream gradient; outputs and every gradient
(input, kernel, bias, gamma, beta) must agree to a relative error of 1e-10 (relative_error: max |a - b| over
the larger of max |a|, max |b|). Shapes, strides, paddings, kernel sizes and batch sizes are drawn by
hypothesis."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch", reason="PyTorch parity tests need torch: pip install -e '.[compare]'")

from tests.edge_cases import UPSAMPLING, examples, window_cases
from tests.helpers import PARITY_TOL, torch_errors
from tinyseg.interop import (  # noqa: E402
    bn_momentum_to_torch,
    dense_kernel_to_torch,
    layer_to_torch,
    nchw_to_nhwc,
    nhwc_to_nchw,
    relative_error,
    to_numpy,
    to_tensor,
    to_torch,
    torch_gradients,
)
from tinyseg.layers import (  # noqa: E402
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Conv2DTranspose,
    Dense,
    Dropout,
    Flatten,
    MaxPooling2D,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    UpSampling2D,
)
from tinyseg.models import Sequential  # noqa: E402

SETTINGS = settings(deadline=None, max_examples=20)
ACTIVATIONS = [None, "relu", "sigmoid", "tanh", "softmax"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def randomise_weights(layer, rng):
    """Random values for every weight (biases are zeros and gammas ones at first: they would test nothing)."""
    weights = [rng.standard_normal(w.shape) for w in layer.get_weights()]
    if isinstance(layer, BatchNormalization):            # moving_variance must stay positive
        weights[-1] = rng.uniform(0.5, 2.0, weights[-1].shape)
    layer.set_weights(weights)


def compare(layer, x, training=False, seed=0, module=None):
    """Run x through the layer and its torch module, forward and backward; return {what: relative error}."""
    rng = np.random.default_rng(seed)
    if not layer.built:
        layer.build(x.shape[1:])
    randomise_weights(layer, rng)
    return torch_errors(layer, x, training=training, module=module, rng=rng)


def assert_close(errors, expected_keys):
    assert set(expected_keys) <= set(errors), f"missing comparisons: {set(expected_keys) - set(errors)}"
    worst = max(errors.values())
    assert worst <= PARITY_TOL, errors


def image(rng, n, h, w, c):
    return rng.standard_normal((n, h, w, c))


@st.composite
def windows(draw, max_kernel=4, max_stride=3, extra=6):
    """(n, h, w, c), kernel (kh, kw), strides (sh, sw), padding: a valid window problem."""
    kh, kw = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    sh, sw = draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride))
    padding = draw(st.sampled_from(["valid", "same"]))
    low_h, low_w = (kh, kw) if padding == "valid" else (1, 1)
    shape = (draw(st.integers(1, 3)), draw(st.integers(low_h, low_h + extra)),
             draw(st.integers(low_w, low_w + extra)), draw(st.integers(1, 3)))
    return shape, (kh, kw), (sh, sw), padding


def window_edges(transposed=False):
    """tests/edge_cases.py's undilated windows as windows() draws them. test_conv2d_transpose takes an input of
    h - kh + 1 rows (w - kw + 1 columns), so for it the drawn sides are widened to give the case's own."""
    grow = (lambda hw, k: (hw[0] + k[0] - 1, hw[1] + k[1] - 1)) if transposed else (lambda hw, k: hw)
    return [((2,) + grow(hw, k) + (2,), k, s, p) for hw, k, s, _, p in window_cases()]


# --- convolutions ---------------------------------------------------------------------------------------
@SETTINGS
@given(windows(), st.integers(1, 4), st.booleans(), st.sampled_from(ACTIVATIONS), st.integers(0, 2**31))
@examples([(w, 3, True, None, i) for i, w in enumerate(window_edges())])
def test_conv2d(problem, filters, use_bias, activation, seed):
    shape, kernel, strides, padding = problem
    layer = Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=use_bias, activation=activation,
                   dtype="float64")
    errors = compare(layer, image(np.random.default_rng(seed), *shape), seed=seed)
    assert_close(errors, ["output", "input", "weight"] + (["bias"] if use_bias else []))


@SETTINGS
@given(windows(extra=4), st.integers(1, 4), st.booleans(), st.sampled_from(ACTIVATIONS), st.integers(0, 2**31))
@examples([(w, 3, True, None, i) for i, w in enumerate(window_edges(transposed=True))])
def test_conv2d_transpose(problem, filters, use_bias, activation, seed):
    (n, h, w, c), kernel, strides, padding = problem
    h, w = max(1, h - kernel[0] + 1), max(1, w - kernel[1] + 1)      # any input size works for a transpose
    layer = Conv2DTranspose(filters, kernel, strides=strides, padding=padding, use_bias=use_bias,
                            activation=activation, dtype="float64")
    errors = compare(layer, image(np.random.default_rng(seed), n, h, w, c), seed=seed)
    assert_close(errors, ["output", "input", "weight"] + (["bias"] if use_bias else []))


def test_conv_same_padding_is_asymmetric_and_converted():
    """Kernel 2 'same' pads only at the bottom/right: a symmetric torch padding would be off by one pixel."""
    layer = Conv2D(1, 2, padding="same", use_bias=False, dtype="float64")
    x = np.arange(9.0).reshape(1, 3, 3, 1)
    layer.build(x.shape[1:])
    layer.set_weights([np.ones((2, 2, 1, 1))])
    y = layer.forward(x)
    assert y[0, 0, 0, 0] == 0 + 1 + 3 + 4                            # the top-left window is not padded
    module = layer_to_torch(layer)
    assert relative_error(nhwc_to_nchw(y), module(to_tensor(nhwc_to_nchw(x)))) == 0


# --- pooling and upsampling -----------------------------------------------------------------------------
@SETTINGS
@given(windows(), st.booleans(), st.sampled_from([MaxPooling2D, AveragePooling2D]), st.integers(0, 2**31))
@examples([(w, default, cls, i) for i, w in enumerate(window_edges()) for default in (False, True)
           for cls in (MaxPooling2D, AveragePooling2D)])
def test_pooling(problem, default_strides, cls, seed):
    shape, pool, strides, padding = problem
    layer = cls(pool, strides=None if default_strides else strides, padding=padding, dtype="float64")
    errors = compare(layer, image(np.random.default_rng(seed), *shape), seed=seed)    # continuous: no ties
    assert_close(errors, ["output", "input"])


@SETTINGS
@given(st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), st.integers(1, 3)),
       st.tuples(st.integers(1, 4), st.integers(1, 4)), st.sampled_from(["nearest", "bilinear"]),
       st.integers(0, 2**31))
@examples([((2,) + hw + (2,), size, mode, i) for i, (hw, size) in enumerate(UPSAMPLING)
           for mode in ("nearest", "bilinear")])
def test_upsampling(shape, size, interpolation, seed):
    layer = UpSampling2D(size, interpolation=interpolation, dtype="float64")
    errors = compare(layer, image(np.random.default_rng(seed), *shape), seed=seed)
    assert_close(errors, ["output", "input"])


# --- dense, flatten, activations ------------------------------------------------------------------------
@SETTINGS
@given(st.integers(1, 5), st.integers(1, 9), st.integers(1, 6), st.booleans(), st.sampled_from(ACTIVATIONS),
       st.integers(0, 2**31))
def test_dense(n, d_in, units, use_bias, activation, seed):
    layer = Dense(units, use_bias=use_bias, activation=activation, dtype="float64")
    # Inputs scaled so no tanh/sigmoid saturates: at |z| ~ 10 the derivative 1 - y^2 is ~1e-8 and both
    # frameworks' last-bit differences in y become a 1e-7 relative difference of the whole (tiny) gradient.
    x = 0.3 * np.random.default_rng(seed).standard_normal((n, d_in))
    errors = compare(layer, x, seed=seed)
    assert_close(errors, ["output", "input", "weight"] + (["bias"] if use_bias else []))


@SETTINGS
@given(st.sampled_from([ReLU, Sigmoid, Tanh, Softmax, "linear", "relu", "softmax", "tanh", "sigmoid"]),
       st.booleans(), st.integers(0, 2**31))
def test_activations(kind, images, seed):
    layer = kind(dtype="float64") if isinstance(kind, type) else Activation(kind, dtype="float64")
    shape = (2, 3, 4, 5) if images else (3, 5)
    errors = compare(layer, np.random.default_rng(seed).standard_normal(shape) * 3, seed=seed)
    assert_close(errors, ["output", "input"])


@SETTINGS
@given(st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)), st.integers(1, 4), st.booleans(),
       st.integers(0, 2**31))
def test_flatten_then_dense(shape, units, batch_norm, seed):
    """The Dense after a Flatten (and a 1-D batch norm between) gets its rows permuted to torch's C, H, W order."""
    rng = np.random.default_rng(seed)
    layers = [Flatten(input_shape=shape, dtype="float64")]
    if batch_norm:
        layers.append(BatchNormalization(dtype="float64"))
    layers.append(Dense(units, dtype="float64"))
    model = Sequential(layers)
    for layer in model.layers:
        randomise_weights(layer, rng)
    module = to_torch(model)
    x = rng.standard_normal((3,) + shape)
    y = model.call(x, training=True)
    g = rng.standard_normal(y.shape)
    dx = model.backward(g)
    xt = to_tensor(nhwc_to_nchw(x), requires_grad=True)
    yt = module(xt)
    yt.backward(to_tensor(g))
    assert relative_error(y, yt) <= PARITY_TOL
    assert relative_error(nhwc_to_nchw(dx), xt.grad) <= PARITY_TOL
    grads = torch_gradients(model)
    params = dict(module.named_parameters())
    assert set(grads) == set(params)
    for name in params:
        assert relative_error(grads[name], params[name].grad) <= PARITY_TOL, name


def test_flatten_permutation_matters():
    """Without the row permutation the converted Dense would compute something else (the test above can fail)."""
    rng = np.random.default_rng(1)
    dense = Dense(3, dtype="float64")
    dense.build((2 * 2 * 3,))
    randomise_weights(dense, rng)
    x = rng.standard_normal((4, 2, 2, 3))
    wrong = to_tensor(nhwc_to_nchw(x)).flatten(1) @ to_tensor(dense_kernel_to_torch(dense.params["kernel"])).T
    right = dense.forward(x.reshape(4, -1)) - dense.params["bias"]
    assert relative_error(wrong, right) > 1e-2


def test_dropout_converts_to_nn_dropout():
    layer = Dropout(0.3, dtype="float64")
    layer.build((5,))
    module = layer_to_torch(layer)
    assert isinstance(module, torch.nn.Dropout) and module.p == 0.3
    x = np.random.default_rng(0).standard_normal((4, 5))
    assert relative_error(layer.forward(x), module.eval()(to_tensor(x))) == 0


# --- batch normalization --------------------------------------------------------------------------------
@SETTINGS
@given(st.booleans(), st.booleans(), st.floats(0.0, 1.0), st.sampled_from([1e-3, 1e-5, 0.1]), st.booleans(),
       st.booleans(), st.integers(2, 4), st.integers(0, 2**31))
def test_batch_normalization(images, training, momentum, epsilon, center, scale, n, seed):
    """Output and gradients in both modes, and the running statistics after two more training batches."""
    rng = np.random.default_rng(seed)
    shape = (n, 3, 2, 4) if images else (n, 4)
    layer = BatchNormalization(momentum=momentum, epsilon=epsilon, center=center, scale=scale, dtype="float64")
    x = rng.standard_normal(shape) * 2 + 1
    errors = compare(layer, x, training=training, seed=seed)
    assert_close(errors, ["output", "input"] + (["weight"] if scale else []) + (["bias"] if center else []))

    module = layer_to_torch(layer).train()
    for _ in range(2):
        xb = rng.standard_normal(shape) * 3 - 1
        layer.forward(xb, training=True)
        module(to_tensor(nhwc_to_nchw(xb)))
    assert relative_error(layer.state["moving_mean"], module.running_mean) <= PARITY_TOL
    assert relative_error(layer.state["moving_variance"], module.running_var) <= PARITY_TOL
    xb = rng.standard_normal(shape)
    assert relative_error(nhwc_to_nchw(layer.forward(xb)), module.eval()(to_tensor(nhwc_to_nchw(xb)))) <= PARITY_TOL


def test_plain_torch_batchnorm_differs_as_documented():
    """A plain nn.BatchNorm2d with momentum 1 - m normalises the same way, but its running_var averages the
    unbiased variance: after one batch it exceeds tinyseg's by (1 - m) * var / (M - 1)."""
    rng = np.random.default_rng(3)
    layer = BatchNormalization(momentum=0.9, dtype="float64")
    x = rng.standard_normal((2, 3, 3, 4)) * 2
    layer.build(x.shape[1:])
    plain = torch.nn.BatchNorm2d(4, eps=layer.epsilon, momentum=bn_momentum_to_torch(layer.momentum)).double()
    y = layer.forward(x, training=True)
    yt = plain(to_tensor(nhwc_to_nchw(x)))
    assert relative_error(nhwc_to_nchw(y), yt) <= PARITY_TOL
    m_count = 2 * 3 * 3
    var = x.reshape(-1, 4).var(axis=0)
    expected = layer.state["moving_variance"] + (1 - layer.momentum) * var / (m_count - 1)
    assert relative_error(expected, plain.running_var) <= PARITY_TOL
    assert relative_error(layer.state["moving_variance"], plain.running_var) > 1e-3


def test_nchw_nhwc_round_trip():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    assert np.array_equal(nchw_to_nhwc(nhwc_to_nchw(x)), x)
    assert np.array_equal(to_numpy(nchw_to_nhwc(nhwc_to_nchw(to_tensor(x)))), x)
    assert nhwc_to_nchw(x).shape == (2, 5, 3, 4)
