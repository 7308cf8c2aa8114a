"""Conv2D's dilation_rate (atrous convolution): output sizes and pads, the forward against loops, gradients
against finite differences, the input gradient's stride-1 fast path against the col2im path, PyTorch
(float64, 1e-10) and Keras 3 (float32, 1e-5), config and errors. im2col/col2im with dilation: test_im2col.py.

    y[n, i, j, f] = b[f] + sum_{a, b, c} xpad[n, i*sh + a*dh, j*sw + b*dw, c] * K[a, b, c, f]

with the effective kernel (K - 1)*d + 1 in Keras's 'valid' and 'same' rules (see conv_kit.py).
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.edge_cases import conv_cases, examples, window_cases
from tests.helpers import KERAS_TOL, PARITY_TOL, import_keras, keras_agrees, torch_errors, use_backend
from tests.layers import conv_kit
from tests.layers.conv_kit import keras_size, random_input, random_weights
from tests.strategies import dilated_conv_configs
from tinyseg.gradcheck import check_layer
from tinyseg.kernels import convolution
from tinyseg.kernels.im2col import col2im
from tinyseg.layers import Conv2D
from tinyseg.layers.geometry import conv_geometry
from tinyseg.reference import conv2d as conv_reference

FAST = settings(deadline=None, max_examples=25)


def dilated_configs(max_size=9, strided=True):
    """A Conv2D problem with a dilation; strides only when the dilation is 1 on both axes (Keras's rule)."""
    return dilated_conv_configs(max_size=max_size, strides="undilated" if strided else "none")


def make_layer(cfg, activation=None, use_bias=True, dtype="float64"):
    layer = Conv2D(cfg["filters"], cfg["kernel_size"], strides=cfg["strides"], padding=cfg["padding"],
                   dilation_rate=cfg["dilation_rate"], activation=activation, use_bias=use_bias, dtype=dtype)
    layer.build((cfg["h"], cfg["w"], cfg["c"]))
    random_weights(layer, np.random.default_rng(cfg["seed"] + 1))
    return layer


# ------------------------------------------------------------------------------------------------------------
# Geometry and the forward
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size, kernel, dilation, padding, expected_out, expected_pads", [
    (7, 3, 2, "valid", 3, (0, 0)),        # span 5: windows start at 0, 1, 2
    (7, 3, 2, "same", 7, (2, 2)),         # total pad span - 1 = 4, split evenly
    (6, 2, 3, "same", 6, (1, 2)),         # span 4: total 3, the odd one after
    (5, 3, 3, "same", 5, (3, 3)),         # span 7 > size: pads wider than the image is fine
    (5, 1, 4, "valid", 5, (0, 0)),        # a 1-tap kernel has nothing to space out
])
def test_output_size_and_pads_use_the_effective_kernel(size, kernel, dilation, padding, expected_out,
                                                       expected_pads):
    assert keras_size(size, kernel, 1, padding, dilation) == (expected_out,) + expected_pads
    (oh, _), (pt, pb, _, _) = conv_geometry((size, 4), (kernel, 1), (1, 1), padding, (dilation, 1))
    assert (oh, (pt, pb)) == (expected_out, expected_pads)


def test_worked_example_on_a_row():
    # x = 1..7 in one row, a 1x3 kernel of ones with dilation 2: window j sums x[j], x[j + 2], x[j + 4]
    x = np.arange(1.0, 8.0).reshape(1, 1, 7, 1)
    layer = Conv2D(1, (1, 3), dilation_rate=(1, 2), use_bias=False, dtype="float64")
    layer.build(x.shape[1:])
    layer.set_weights([np.ones((1, 3, 1, 1))])
    np.testing.assert_array_equal(layer.forward(x).ravel(), [1 + 3 + 5, 2 + 4 + 6, 3 + 5 + 7])
    # 'same': pads (2, 2), so window j reads x[j - 2], x[j], x[j + 2], zero outside the row
    layer = Conv2D(1, (1, 3), dilation_rate=(1, 2), padding="same", use_bias=False, dtype="float64")
    layer.build(x.shape[1:])
    layer.set_weights([np.ones((1, 3, 1, 1))])
    np.testing.assert_array_equal(layer.forward(x).ravel(), [4, 6, 9, 12, 15, 10, 12])


@FAST
@given(cfg=dilated_configs(), use_bias=st.booleans(), backend=st.sampled_from(["numba", "numpy"]))
@examples([dict(cfg=c, use_bias=True, backend=b) for c in conv_cases(dilated=True) for b in ("numba", "numpy")])
def test_forward_matches_naive_loops(cfg, use_bias, backend):
    layer = make_layer(cfg, use_bias=use_bias)
    x = random_input(cfg)
    with use_backend(backend):
        y = layer.forward(x)
    want = conv_reference(x, layer.params["kernel"], layer.params.get("bias"), cfg["strides"], cfg["padding"],
                          cfg["dilation_rate"])
    assert y.shape == want.shape and layer.output_shape == want.shape[1:]
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------------------
# Gradients
# ------------------------------------------------------------------------------------------------------------
@FAST
@given(cfg=dilated_configs(max_size=7), activation=st.sampled_from([None, "tanh", "sigmoid"]),
       use_bias=st.booleans())
@examples([dict(cfg=c, activation="tanh", use_bias=True) for c in conv_cases(dilated=True)])
def test_gradients_match_finite_differences(cfg, activation, use_bias):
    layer = make_layer(cfg, activation=activation, use_bias=use_bias)
    report = check_layer(layer, random_input(cfg), seed=cfg["seed"] % 1000)
    print(report)
    assert report.max_rel_error < 1e-6, str(report)
    assert set(report.per_array) == {"input", "kernel"} | ({"bias"} if use_bias else set())


@FAST
@given(cfg=dilated_configs(strided=False))
@examples([dict(cfg=c) for c in conv_cases(dilated=True, strides=(1, 1))])
def test_stride_1_fast_input_gradient_equals_col2im(cfg):
    """The stride-1 input gradient is a convolution with the flipped kernel, the same dilation and pads
    K' - 1 - pad; it must equal the definition, col2im(G @ Kmat^T) with the dilated geometry."""
    layer = make_layer(cfg, use_bias=False)
    x = random_input(cfg)
    y = layer.forward(x)
    g = np.random.default_rng(cfg["seed"] + 2).standard_normal(y.shape)
    dx = layer.backward(g)
    kh, kw = cfg["kernel_size"]
    kmat = layer.params["kernel"].reshape(-1, cfg["filters"])
    want = col2im(g.reshape(-1, cfg["filters"]) @ kmat.T, x.shape, kh, kw, 1, 1, layer.pads, y.shape[1:3],
                  dilation=cfg["dilation_rate"])
    np.testing.assert_allclose(dx, want, rtol=1e-12, atol=1e-12)


@FAST
@given(n=st.integers(1, 2), size=st.tuples(st.integers(1, 9), st.integers(1, 9)),
       kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)), strides=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)), padding=st.sampled_from(["valid", "same"]),
       seed=st.integers(0, 2**32 - 1))
@examples([dict(n=2, size=hw, kernel=k, strides=s, dilation=d, padding=p, seed=i)
           for i, (hw, k, s, d, p) in enumerate(window_cases(dilated=True, strided_dilation=True))])
def test_conv2d_transpose_is_the_adjoint_of_dilated_strided_conv2d(n, size, kernel, strides, dilation, padding,
                                                                   seed):
    """<conv2d(x), y> = <x, conv2d_transpose(y)> for every stride and dilation, so both of its paths (stride
    1: flipped-kernel convolution; otherwise: col2im) are right under dilation. Conv2D itself never combines
    strides with dilation, but the functions do not care."""
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    if padding == "valid" and (size[0] < spans[0] or size[1] < spans[1]):
        size = (max(size[0], spans[0]), max(size[1], spans[1]))
    out_hw, pads = conv_geometry(size, kernel, strides, padding, dilation)
    rng = np.random.default_rng(seed)
    k = rng.standard_normal(kernel + (2, 3))
    x = rng.standard_normal((n,) + size + (2,))
    y = rng.standard_normal((n,) + out_hw + (3,))
    lhs = (convolution.conv2d(x, k, strides, pads, out_hw, dilation=dilation) * y).ravel().tolist()
    rhs = (x * convolution.conv2d_transpose(y, k, strides, pads, x.shape, dilation=dilation)).ravel().tolist()
    scale = max(math.fsum(abs(t) for t in lhs), 1.0)
    assert abs(math.fsum(lhs) - math.fsum(rhs)) <= 1e-10 * scale


@FAST
@given(cfg=dilated_configs(), size=st.integers(1, 3000))
@examples([dict(cfg=c, size=1) for c in conv_cases(dilated=True)])
def test_banded_work_gives_the_numbers_of_one_band(cfg, size):
    layer = make_layer(cfg)
    x = random_input(cfg)
    g = np.random.default_rng(cfg["seed"] + 2).standard_normal((cfg["n"],) + layer.output_shape)
    results = []
    for band in (2**62, size):
        old, convolution.BAND_BYTES = convolution.BAND_BYTES, band
        try:
            y = layer.forward(x, training=True)
            results.append((y, layer.backward(g), layer.grads["kernel"].copy()))
        finally:
            convolution.BAND_BYTES = old
    for one, banded in zip(*results):
        np.testing.assert_allclose(banded, one, rtol=1e-12, atol=1e-12)


def test_first_layer_kernel_gradient_without_input_gradient():
    """Training skips dL/dx for a model's first layer (backward(g, input_grad=False)): the parameter
    gradients must be those of a full backward."""
    cfg = dict(n=2, h=7, w=6, c=3, filters=4, kernel_size=3, strides=1, dilation_rate=(2, 1), padding="same",
               seed=5)
    conv_kit.assert_skipping_input_grad_keeps_parameter_grads(make_layer(cfg, activation="tanh"), random_input(cfg))


# ------------------------------------------------------------------------------------------------------------
# Other frameworks
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("one_torch_thread")
@settings(deadline=None, max_examples=20)
@given(cfg=dilated_configs(), use_bias=st.booleans(), activation=st.sampled_from([None, "relu", "tanh", "softmax"]))
@examples([dict(cfg=c, use_bias=True, activation=None) for c in conv_cases(dilated=True)])
def test_matches_pytorch(cfg, use_bias, activation):
    layer = make_layer(cfg, activation=activation, use_bias=use_bias)
    errors = torch_errors(layer, random_input(cfg), seed=cfg["seed"] % 1000)
    print(errors)
    assert max(errors.values()) <= PARITY_TOL, errors


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")    # Keras's, harmless
@pytest.mark.parametrize("kernel, dilation, padding, size", [
    ((3, 3), (2, 2), "same", (9, 8)), ((2, 3), (3, 1), "same", (7, 7)), ((3, 2), (2, 3), "valid", (9, 10))])
def test_matches_keras(kernel, dilation, padding, size):
    keras = import_keras()
    x = np.random.default_rng(0).standard_normal((2,) + size + (3,)).astype(np.float32)
    theirs = keras.layers.Conv2D(4, kernel, padding=padding, dilation_rate=dilation)
    ours = Conv2D(4, kernel, padding=padding, dilation_rate=dilation)
    assert keras_agrees(theirs, ours, x) <= KERAS_TOL


# ------------------------------------------------------------------------------------------------------------
# Config and errors
# ------------------------------------------------------------------------------------------------------------
def test_get_config_has_dilation_rate_and_rebuilds_the_layer():
    layer = Conv2D(3, (3, 2), padding="same", dilation_rate=(2, 3), activation="relu", name="atrous")
    config_ = layer.get_config()
    assert config_["dilation_rate"] == (2, 3)
    conv_kit.assert_rebuilds_through_json(layer, (9, 9, 2))
    assert Conv2D(2, 3).get_config()["dilation_rate"] == (1, 1)


@pytest.mark.parametrize("strides, dilation", [(2, 2), ((1, 2), (2, 1)), ((2, 1), 3)])
def test_strides_with_dilation_are_refused_as_in_keras(strides, dilation):
    with pytest.raises(ValueError, match=r"strides > 1 is not supported together with dilation_rate > 1; "
                                         r"got strides=\(\d, \d\) and dilation_rate=\(\d, \d\)"):
        Conv2D(2, 3, strides=strides, dilation_rate=dilation)


@pytest.mark.parametrize("dilation", [0, -1, (2,), (1, 2, 3), (2, 0), 2.5, "2", None, True])
def test_bad_dilation_rate(dilation):
    with pytest.raises(ValueError, match="dilation_rate must be a positive integer or a pair of them"):
        Conv2D(2, 3, dilation_rate=dilation)


def test_valid_padding_refuses_an_input_smaller_than_the_dilated_window():
    with pytest.raises(ValueError, match=r"input size 4 is smaller than the window 5 \(kernel 3, dilation 2\)"):
        Conv2D(1, 3, dilation_rate=2).forward(np.zeros((1, 4, 8, 1), np.float32))


def test_float32_stays_float32():
    cfg = dict(n=2, h=6, w=6, c=2, filters=3, kernel_size=3, strides=1, dilation_rate=2, padding="same", seed=1)
    layer = make_layer(cfg, dtype="float32")
    y = layer.forward(random_input(cfg, np.float32))
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == layer.grads["kernel"].dtype == np.float32
