"""Conv2D and Conv2DTranspose against naive loop references, each other, finite differences and PyTorch.

The references below are written from the definitions, not from the library:

    convolution:  y[n, i, j, f] = b[f] + sum_{a, b, c} xpad[n, i*sh + a, j*sw + b, c] * K[a, b, c, f]
    transposed:   every input pixel x[n, i, j, :] adds K[a, b] @ x[n, i, j, :] to output pixel
                  (i*sh + a - pad_top, j*sw + b - pad_left), for every kernel offset (a, b)

and the output sizes from Keras's rules, restated here in TensorFlow's own words:

    'valid':  ceil((H - KH + 1) / sh)       'same': ceil(H / sh), total pad max((OH-1)*sh + KH - H, 0),
                                                     the odd row going to the bottom (right)
    transposed 'valid': H*sh + max(KH - sh, 0)      transposed 'same': H*sh
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.edge_cases import conv_cases, examples
from tests.helpers import (
    band_bytes,
    conv_kernel_from_torch,
    conv_kernel_to_torch,
    conv_transpose_kernel_from_torch,
    conv_transpose_kernel_to_torch,
    nchw_to_nhwc,
    nhwc_to_nchw,
    rel_error,
    torch_errors,
)
from tests.layers import conv_kit
from tests.layers.conv_kit import random_input
from tinyseg.gradcheck import check_layer
from tinyseg.kernels import convolution
from tinyseg.layers import Conv2D, Conv2DTranspose

FAST = settings(deadline=None, max_examples=25)
TORCH = settings(deadline=None, max_examples=15)


# ------------------------------------------------------------------------------------------------------------
# Geometry, restated independently of geometry.py.
# ------------------------------------------------------------------------------------------------------------
def keras_conv_size(size, kernel, stride, padding):
    """(out, pad_before, pad_after) for one axis."""
    if padding == "valid":
        return math.ceil((size - kernel + 1) / stride), 0, 0
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def keras_deconv_size(size, kernel, stride, padding):
    return size * stride + max(kernel - stride, 0) if padding == "valid" else size * stride


# ------------------------------------------------------------------------------------------------------------
# Naive references.
# ------------------------------------------------------------------------------------------------------------
def conv_reference(x, kernel, bias, strides, padding):
    """Six loops (n, i, j, f, a, b), the channel sum as a dot product: the definition, nothing more."""
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    sh, sw = strides
    oh, pt, pb = keras_conv_size(h, kh, sh, padding)
    ow, pl, pr = keras_conv_size(w, kw, sw, padding)
    xp = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=x.dtype)
    xp[:, pt:pt + h, pl:pl + w, :] = x
    y = np.zeros((n, oh, ow, f), dtype=x.dtype)
    for s in range(n):
        for i in range(oh):
            for j in range(ow):
                for o in range(f):
                    total = 0.0 if bias is None else bias[o]
                    for a in range(kh):
                        for b in range(kw):
                            total += np.dot(xp[s, i * sh + a, j * sw + b, :], kernel[a, b, :, o])
                    y[s, i, j, o] = total
    return y


def conv_transpose_reference(x, kernel, bias, strides, padding):
    """Scatter: each input pixel paints the kernel, weighted by its channels, onto the output."""
    n, h, w, c = x.shape
    kh, kw, f, _ = kernel.shape                       # Keras's transposed layout (KH, KW, filters, C)
    sh, sw = strides
    oh, ow = keras_deconv_size(h, kh, sh, padding), keras_deconv_size(w, kw, sw, padding)
    # the pads of the forward convolution (OH, OW) -> (H, W) that this one runs backwards
    _, pt, _ = keras_conv_size(oh, kh, sh, padding)
    _, pl, _ = keras_conv_size(ow, kw, sw, padding)
    y = np.zeros((n, oh, ow, f), dtype=x.dtype)
    for s in range(n):
        for i in range(h):
            for j in range(w):
                for a in range(kh):
                    for b in range(kw):
                        yi, yj = i * sh + a - pt, j * sw + b - pl
                        if 0 <= yi < oh and 0 <= yj < ow:
                            y[s, yi, yj, :] += kernel[a, b] @ x[s, i, j, :]
    if bias is not None:
        y += bias
    return y


# ------------------------------------------------------------------------------------------------------------
# Drawn configurations.
# ------------------------------------------------------------------------------------------------------------
@st.composite
def conv_configs(draw, max_size=7, padding=None, strides=None):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = strides or (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = padding or draw(st.sampled_from(["valid", "same"]))
    lo_h, lo_w = (kh, kw) if padding == "valid" else (1, 1)
    h = draw(st.integers(lo_h, max(lo_h, max_size)))
    w = draw(st.integers(lo_w, max(lo_w, max_size)))
    return dict(n=draw(st.integers(1, 2)), h=h, w=w, c=draw(st.integers(1, 3)), filters=draw(st.integers(1, 3)),
                kernel_size=(kh, kw), strides=(sh, sw), padding=padding, seed=draw(st.integers(0, 2**32 - 1)))


def make_conv(cfg, cls=Conv2D, activation=None, use_bias=True, dtype="float64"):
    """A built layer with random weights (a random bias too, so a missing bias term shows).

    Kernel entries have variance 1/fan_in, so pre-activations are O(1) and tanh/sigmoid do not saturate (a
    saturated unit has a derivative too small for finite differences to measure to 1e-6)."""
    layer = cls(cfg["filters"], cfg["kernel_size"], strides=cfg["strides"], padding=cfg["padding"],
                activation=activation, use_bias=use_bias, dtype=dtype)
    layer.build((cfg["h"], cfg["w"], cfg["c"]))
    rng = np.random.default_rng(cfg["seed"] + 1)
    fan_in = int(np.prod(layer.kernel_size)) * cfg["c"]
    layer.set_weights([rng.standard_normal(p.shape) * (fan_in ** -0.5 if k == "kernel" else 0.5)
                       for k, p in layer.params.items()])
    return layer


# ------------------------------------------------------------------------------------------------------------
# Forward against the references.
# ------------------------------------------------------------------------------------------------------------
@FAST
@given(cfg=conv_configs(), use_bias=st.booleans())
@examples([dict(cfg=c, use_bias=b) for c in conv_cases() for b in (True, False)])
def test_conv2d_forward_matches_naive_loops(cfg, use_bias):
    layer = make_conv(cfg, use_bias=use_bias)
    x = random_input(cfg)
    y = layer.forward(x)
    oh, _, _ = keras_conv_size(cfg["h"], cfg["kernel_size"][0], cfg["strides"][0], cfg["padding"])
    ow, _, _ = keras_conv_size(cfg["w"], cfg["kernel_size"][1], cfg["strides"][1], cfg["padding"])
    assert y.shape == (cfg["n"], oh, ow, cfg["filters"])
    assert layer.output_shape == (oh, ow, cfg["filters"])
    want = conv_reference(x, layer.params["kernel"], layer.params.get("bias"), cfg["strides"], cfg["padding"])
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("size, kernel, stride, expected_out, expected_pads", [
    (5, 3, 1, 5, (1, 1)),        # odd kernel, stride 1: symmetric
    (5, 2, 1, 5, (0, 1)),        # even kernel: the extra pad goes after (bottom / right)
    (6, 3, 2, 3, (0, 1)),        # (3-1)*2 + 3 - 6 = 1: all of it after
    (7, 4, 2, 4, (1, 2)),        # (4-1)*2 + 4 - 7 = 3: 1 before, 2 after
    (5, 1, 3, 2, (0, 0)),        # the windows never reach the border: no pad at all
])
def test_same_padding_puts_the_extra_row_at_the_bottom(size, kernel, stride, expected_out, expected_pads):
    assert keras_conv_size(size, kernel, stride, "same") == (expected_out,) + expected_pads
    layer = Conv2D(1, (kernel, 1), strides=(stride, 1), padding="same", use_bias=False, dtype="float64")
    layer.build((size, 1, 1))
    layer.set_weights([np.ones((kernel, 1, 1, 1))])
    x = np.arange(1, size + 1, dtype=np.float64).reshape(1, size, 1, 1)
    y = layer.forward(x)[0, :, 0, 0]
    before = expected_pads[0]
    # window i sums rows i*stride - before ... i*stride - before + kernel - 1 that lie inside the image
    want = [sum(x[0, r, 0, 0] for r in range(i * stride - before, i * stride - before + kernel) if 0 <= r < size)
            for i in range(expected_out)]
    np.testing.assert_array_equal(y, want)


@FAST
@given(cfg=conv_configs(max_size=5), use_bias=st.booleans())
@examples([dict(cfg=c, use_bias=b) for c in conv_cases() for b in (True, False)])
def test_conv2d_transpose_forward_matches_naive_scatter(cfg, use_bias):
    layer = make_conv(cfg, cls=Conv2DTranspose, use_bias=use_bias)
    x = random_input(cfg)
    y = layer.forward(x)
    kh, kw = cfg["kernel_size"]
    sh, sw = cfg["strides"]
    oh = keras_deconv_size(cfg["h"], kh, sh, cfg["padding"])
    ow = keras_deconv_size(cfg["w"], kw, sw, cfg["padding"])
    assert y.shape == (cfg["n"], oh, ow, cfg["filters"])
    assert layer.params["kernel"].shape == (kh, kw, cfg["filters"], cfg["c"])
    want = conv_transpose_reference(x, layer.params["kernel"], layer.params.get("bias"), cfg["strides"],
                                     cfg["padding"])
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


def test_conv2d_transpose_2x2_stride_2_paints_blocks():
    # one channel in, one out, kernel [[1, 2], [3, 4]]: each pixel v becomes the block v * kernel
    layer = Conv2DTranspose(1, 2, strides=2, use_bias=False, dtype="float64")
    layer.build((2, 2, 1))
    layer.set_weights([np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 2, 1, 1)])
    y = layer.forward(np.array([[1.0, 10.0], [100.0, 0.0]]).reshape(1, 2, 2, 1))
    np.testing.assert_array_equal(y[0, :, :, 0], [[1, 2, 10, 20],
                                                  [3, 4, 30, 40],
                                                  [100, 200, 0, 0],
                                                  [300, 400, 0, 0]])


@FAST
@given(cfg=conv_configs(max_size=4))
@examples([dict(cfg=c) for c in conv_cases()])
def test_conv2d_transpose_is_the_adjoint_of_conv2d(cfg):
    """<conv(x), y> = <x, convT(y)> with the same kernel K (KH, KW, C, F), no bias.

    The drawn h, w are the *transposed* layer's input size (the convolution's output); the convolution's input
    size is then the transposed layer's output size, so the two layers map between the same two spaces.
    """
    kh, kw = cfg["kernel_size"]
    sh, sw = cfg["strides"]
    big_h = keras_deconv_size(cfg["h"], kh, sh, cfg["padding"])
    big_w = keras_deconv_size(cfg["w"], kw, sw, cfg["padding"])
    c, f = cfg["c"], cfg["filters"]
    rng = np.random.default_rng(cfg["seed"])
    kernel = rng.standard_normal((kh, kw, c, f))

    conv = Conv2D(f, (kh, kw), strides=(sh, sw), padding=cfg["padding"], use_bias=False, dtype="float64")
    conv.build((big_h, big_w, c))
    conv.set_weights([kernel])
    assert conv.output_shape == (cfg["h"], cfg["w"], f)

    convt = Conv2DTranspose(c, (kh, kw), strides=(sh, sw), padding=cfg["padding"], use_bias=False,
                            dtype="float64")
    convt.build((cfg["h"], cfg["w"], f))
    convt.set_weights([kernel])                     # (KH, KW, C, F): C = its filters, F = its input channels
    assert convt.output_shape == (big_h, big_w, c)

    x = rng.standard_normal((cfg["n"], big_h, big_w, c))
    y = rng.standard_normal((cfg["n"], cfg["h"], cfg["w"], f))
    lhs_terms = (conv.forward(x) * y).ravel().tolist()
    rhs_terms = (x * convt.forward(y)).ravel().tolist()
    scale = max(math.fsum(abs(t) for t in lhs_terms), 1.0)
    assert abs(math.fsum(lhs_terms) - math.fsum(rhs_terms)) <= 1e-10 * scale


def im2col_reference(x, layer):
    """(N, OH, OW, KH*KW*C): the padded window under each output pixel, for a stride-1 'same' layer."""
    kh, kw = layer.kernel_size
    pt, pb, pl, pr = layer.pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh, ow = layer.output_shape[:2]
    return np.stack([xp[:, i:i + kh, j:j + kw, :].reshape(x.shape[0], -1) for i in range(oh) for j in range(ow)],
                    axis=1).reshape(x.shape[0], oh, ow, -1)


def test_batch_size_may_change_between_calls():
    """The im2col buffer Conv2D keeps between steps must follow the batch size (last batch of an epoch)."""
    cfg = dict(n=3, h=5, w=5, c=2, filters=3, kernel_size=3, strides=1, padding="same", seed=9)
    layer = make_conv(cfg)
    rng = np.random.default_rng(0)
    for n in (3, 1, 3, 2):
        x = rng.standard_normal((n, 5, 5, 2))
        y = layer.forward(x)
        np.testing.assert_allclose(y, conv_reference(x, layer.params["kernel"], layer.params["bias"], (1, 1),
                                                     "same"), rtol=1e-12, atol=1e-12)
        g = rng.standard_normal(y.shape)
        layer.backward(g)
        want = np.einsum("nijf,nijk->kf", g, im2col_reference(x, layer)).reshape(layer.params["kernel"].shape)
        np.testing.assert_allclose(layer.grads["kernel"], want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [Conv2D, Conv2DTranspose])
@pytest.mark.parametrize("filters", [2, 5])               # the backward's im2col narrower and wider than the forward's
def test_a_second_backward_after_one_forward_gives_the_same_gradients(cls, filters):
    """The backward reuses the forward's im2col buffer; a second backward must not read what it left there."""
    cfg = dict(n=2, h=5, w=5, c=3, filters=filters, kernel_size=3, strides=1, padding="same", seed=4)
    layer = make_conv(cfg, cls=cls)
    y = layer.forward(random_input(cfg))
    rng = np.random.default_rng(1)
    g1, g2 = rng.standard_normal(y.shape), rng.standard_normal(y.shape)
    dx1, k1 = layer.backward(g1), layer.grads["kernel"].copy()
    layer.backward(g2)
    dx1_again = layer.backward(g1)
    np.testing.assert_allclose(dx1_again, dx1, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(layer.grads["kernel"], k1, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("n, oh, rows_per_band", [(3, 5, 1), (3, 5, 2), (3, 5, 4), (3, 5, 5), (3, 5, 7),
                                                   (3, 5, 12), (4, 1, 3), (1, 6, 100)])
def test_bands_cover_every_output_row_once_in_order(n, oh, rows_per_band):
    """Concatenated in order, the bands are exactly the N*OH output rows, each band a consecutive run."""
    row_bytes = 10
    with band_bytes(rows_per_band * row_bytes):
        bands = list(convolution.bands(n, oh, row_bytes))
    covered = [(i, y) for i0, i1, y0, y1 in bands for i in range(i0, i1) for y in range(y0, y1)]
    assert covered == [(i, y) for i in range(n) for y in range(oh)]
    assert all(i1 - i0 == 1 or (y0, y1) == (0, oh) for i0, i1, y0, y1 in bands)
    assert max((i1 - i0) * (y1 - y0) for i0, i1, y0, y1 in bands) <= max(rows_per_band, 1)


@FAST
@given(cfg=conv_configs(max_size=7), size=st.integers(1, 3000), cls=st.sampled_from([Conv2D, Conv2DTranspose]))
@examples([dict(cfg=c, size=1, cls=cls) for c in conv_cases() for cls in (Conv2D, Conv2DTranspose)])
def test_banded_work_gives_the_numbers_of_one_band(cfg, size, cls):
    """Output, kernel gradient and input gradient with bands of `size` bytes (1: one output row a band) equal
    those of one band for everything."""
    layer = make_conv(cfg, cls=cls)
    x = random_input(cfg)
    g = np.random.default_rng(cfg["seed"] + 2).standard_normal((cfg["n"],) + layer.output_shape)
    results = []
    for band in (2**62, size):
        with band_bytes(band):
            y = layer.forward(x, training=True)
            dx = layer.backward(g)
            results.append((y, dx, layer.grads["kernel"].copy()))
    for one, banded in zip(*results):
        np.testing.assert_allclose(banded, one, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------------------
# Gradients.
# ------------------------------------------------------------------------------------------------------------
@FAST
@given(cfg=conv_configs(max_size=6), activation=st.sampled_from([None, "tanh", "sigmoid"]),
       use_bias=st.booleans(), transpose=st.booleans())
@examples([dict(cfg=c, activation="tanh", use_bias=True, transpose=t) for c in conv_cases() for t in (False, True)])
def test_gradients_match_finite_differences(cfg, activation, use_bias, transpose):
    if transpose:
        cfg = dict(cfg, h=min(cfg["h"], 4), w=min(cfg["w"], 4))
    layer = make_conv(cfg, cls=Conv2DTranspose if transpose else Conv2D, activation=activation,
                      use_bias=use_bias)
    report = check_layer(layer, random_input(cfg), seed=cfg["seed"] % 1000)
    assert report.max_rel_error < 1e-6, str(report)
    assert set(report.per_array) == {"input", "kernel"} | ({"bias"} if use_bias else set())


@FAST
@given(cfg=conv_configs(max_size=6), use_bias=st.booleans())
@examples([dict(cfg=c, use_bias=True) for c in conv_cases()])
def test_a_training_forward_keeps_an_rgb_im2col_for_the_kernel_gradient(cfg, use_bias):
    """In training, a Conv2D on fewer than FEW_CHANNELS channels keeps its forward's im2col for the kernel
    gradient (kernels/convolution.py, keep_cols): the gradients pass the finite-difference check that way,
    equal those of a forward that kept nothing, and a second backward (the im2col is used once) gives them
    again."""
    from tinyseg.kernels.im2col import FEW_CHANNELS
    assert cfg["c"] < FEW_CHANNELS                          # the drawn images have few channels
    layer = make_conv(cfg, use_bias=use_bias)
    x = random_input(cfg)
    report = check_layer(layer, x, training=True, seed=cfg["seed"] % 1000)
    assert report.max_rel_error < 1e-6, str(report)
    y = layer.forward(x, training=True)
    assert layer.saved.cols is not None
    g = np.random.default_rng(cfg["seed"]).standard_normal(y.shape)
    layer.backward(g)
    kept = {k: v.copy() for k, v in layer.grads.items()}
    assert layer.saved.cols is None
    layer.backward(g)                                       # copies im2col again
    for k in kept:
        np.testing.assert_allclose(layer.grads[k], kept[k], rtol=1e-13, atol=1e-13)
    layer.forward(x, training=False)                        # an inference forward keeps nothing
    assert layer.saved.cols is None


@TORCH
@given(cfg=conv_configs(max_size=6))
@examples([dict(cfg=c) for c in conv_cases()])
def test_a_training_rgb_convolution_with_its_kept_im2col_matches_pytorch(cfg):
    """The kept-im2col path (a training forward on few channels) against PyTorch's Conv2d."""
    pytest.importorskip("torch")
    layer = make_conv(cfg)
    errors = torch_errors(layer, random_input(cfg), training=True)
    assert max(errors.values()) <= 1e-10, errors


@pytest.mark.parametrize("cls", [Conv2D, Conv2DTranspose])
def test_gradients_with_relu_fixed_seed(cls):
    # ReLU has a kink at 0; a fixed seed keeps every pre-activation far (>> h = 1e-6) from it
    cfg = dict(n=2, h=5, w=6, c=3, filters=4, kernel_size=(3, 2), strides=(2, 1), padding="same", seed=7)
    conv_kit.assert_relu_gradients_check(make_conv(cfg, cls=cls, activation="relu"), random_input(cfg))


@pytest.mark.parametrize("cls", [Conv2D, Conv2DTranspose])
@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "softmax"])
def test_backward_does_not_mutate_the_gradient_it_is_given(cls, activation):
    cfg = dict(n=2, h=4, w=4, c=2, filters=3, kernel_size=3, strides=1, padding="same", seed=3)
    conv_kit.assert_backward_leaves_grad_alone(make_conv(cfg, cls=cls, activation=activation), random_input(cfg))


@pytest.mark.parametrize("cls", [Conv2D, Conv2DTranspose])
@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "softmax"])
def test_float32_stays_float32(cls, activation):
    cfg = dict(n=2, h=5, w=5, c=3, filters=4, kernel_size=3, strides=2, padding="same", seed=5)
    layer = make_conv(cfg, cls=cls, activation=activation, dtype="float32")
    assert all(p.dtype == np.float32 for p in layer.params.values())
    y = layer.forward(random_input(cfg, np.float32))
    assert y.dtype == np.float32
    dx = layer.backward(np.ones_like(y))
    assert dx.dtype == np.float32
    assert {k: g.dtype for k, g in layer.grads.items()} == {"kernel": np.float32, "bias": np.float32}
    assert all(p.dtype == np.float32 for p in layer.params.values())


# ------------------------------------------------------------------------------------------------------------
# Errors a learner will meet.
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [Conv2D, Conv2DTranspose])
def test_input_errors(cls):
    layer = cls(4, 3, padding="same")                           # float32, Keras's default
    with pytest.raises(ValueError, match=r"expects images \(batch, H, W, C\)"):
        layer.forward(np.zeros((2, 8, 8), np.float32))

    layer = cls(4, 3, padding="same")
    layer.forward(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"shape \(2, 8, 8, 2\), expected \(batch,\) \+ \(8, 8, 3\)"):
        layer.forward(np.zeros((2, 8, 8, 2), np.float32))

    with pytest.raises(TypeError, match=r"dtype float64 .* computes in float32; cast with "
                                        r"x\.astype\('float32'\) or create the layer with dtype='float64'"):
        layer.forward(np.zeros((2, 8, 8, 3), np.float64))

    with pytest.raises(TypeError, match=r"dtype uint8"):
        layer.forward(np.zeros((2, 8, 8, 3), np.uint8))

    with pytest.raises(ValueError, match=r"grad has shape"):
        layer.backward(np.zeros((2, 3, 3, 4), np.float32))


def test_valid_padding_refuses_an_input_smaller_than_the_kernel():
    with pytest.raises(ValueError, match=r"input size 2 is smaller than the window 3"):
        Conv2D(1, 3).forward(np.zeros((1, 2, 5, 1), np.float32))


@pytest.mark.parametrize("kwargs, match", [
    (dict(filters=0, kernel_size=3), "filters must be a positive integer, got 0"),
    (dict(filters=-2, kernel_size=3), "filters must be a positive integer"),
    (dict(filters=2.5, kernel_size=3), "filters must be a positive integer"),
    (dict(filters=True, kernel_size=3), "filters must be a positive integer"),
    (dict(filters="8", kernel_size=3), "filters must be a positive integer"),
    (dict(filters=4, kernel_size=0), "kernel_size must be a positive integer or a pair"),
    (dict(filters=4, kernel_size=(3,)), "kernel_size must be a positive integer or a pair"),
    (dict(filters=4, kernel_size=(3, 3, 3)), "kernel_size must be a positive integer or a pair"),
    (dict(filters=4, kernel_size=(3, -1)), "kernel_size must be a positive integer or a pair"),
    (dict(filters=4, kernel_size=2.5), "kernel_size must be a positive integer or a pair"),
    (dict(filters=4, kernel_size=None), "kernel_size must be a positive integer or a pair"),
    (dict(filters=4, kernel_size=3, strides=0), "strides must be a positive integer or a pair"),
    (dict(filters=4, kernel_size=3, strides=(1, 1.5)), "strides must be a positive integer or a pair"),
    (dict(filters=4, kernel_size=3, padding="full"), "padding must be 'valid' or 'same', got 'full'"),
    (dict(filters=4, kernel_size=3, padding=None), "padding must be 'valid' or 'same'"),
    (dict(filters=4, kernel_size=3, activation="swish"), "activation must be one of"),
])
@pytest.mark.parametrize("cls", [Conv2D, Conv2DTranspose])
def test_bad_arguments(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_numpy_integers_are_accepted_like_python_integers():
    # filters=np.int64(4) is accepted; kernel_size and strides must be too (they come from np.arange in sweeps)
    layer = Conv2D(np.int64(4), np.int64(3), strides=np.int64(2))
    assert (layer.filters, layer.kernel_size, layer.strides) == (4, (3, 3), (2, 2))


def test_padding_names_are_case_insensitive_and_pairs_are_accepted():
    layer = Conv2D(2, (3, 1), strides=(2, 1), padding="SAME")
    assert (layer.kernel_size, layer.strides, layer.padding) == ((3, 1), (2, 1), "same")


# ------------------------------------------------------------------------------------------------------------
# PyTorch parity. The layout conversions are tinyseg.interop.conventions's, through tests.helpers:
#   images   NHWC (tinyseg, Keras)  <->  NCHW (PyTorch)
#   kernels  HWIO (KH, KW, C, F)    <->  OIHW (F, C, KH, KW)       for a convolution
#            (KH, KW, F, C)         <->  (C, F, KH, KW)            for a transposed convolution (both "in, out")
# ------------------------------------------------------------------------------------------------------------
def _torch_case(torch, layer, x, torch_forward, kernel_to_torch, kernel_from_torch):
    """Run the same forward and backward in both; return {name: relative error}."""
    y = layer.forward(x)
    grad = np.random.default_rng(1).standard_normal(y.shape)
    dx = layer.backward(grad)

    tx = torch.tensor(nhwc_to_nchw(x), requires_grad=True)
    tk = torch.tensor(kernel_to_torch(layer.params["kernel"]), requires_grad=True)
    tb = torch.tensor(layer.params["bias"], requires_grad=True)
    ty = torch_forward(tx, tk, tb)
    ty.backward(torch.tensor(nhwc_to_nchw(grad)))
    errors = {"output": rel_error(y, nchw_to_nhwc(ty.detach().numpy())),
              "input grad": rel_error(dx, nchw_to_nhwc(tx.grad.numpy())),
              "kernel grad": rel_error(layer.grads["kernel"], kernel_from_torch(tk.grad.numpy())),
              "bias grad": rel_error(layer.grads["bias"], tb.grad.numpy())}
    print(layer.name, {k: f"{v:.1e}" for k, v in errors.items()})
    return errors


@TORCH
@given(cfg=conv_configs(max_size=8, padding="valid"))
@examples([dict(cfg=c) for c in conv_cases(padding="valid")])
def test_conv2d_valid_with_strides_matches_pytorch(cfg):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    layer = make_conv(cfg)
    errors = _torch_case(torch, layer, random_input(cfg),
                         lambda x, k, b: F.conv2d(x, k, b, stride=cfg["strides"]),
                         conv_kernel_to_torch, conv_kernel_from_torch)
    assert max(errors.values()) <= 1e-10, errors


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")   # PyTorch's, harmless
@TORCH
@given(cfg=conv_configs(max_size=8, padding="same", strides=(1, 1)))
@examples([dict(cfg=c) for c in conv_cases(padding="same", strides=(1, 1))])
def test_conv2d_same_stride_1_matches_pytorch(cfg):
    """PyTorch's padding='same' (stride 1 only) also puts the odd pad of an even kernel at the bottom/right."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    layer = make_conv(cfg)
    errors = _torch_case(torch, layer, random_input(cfg),
                         lambda x, k, b: F.conv2d(x, k, b, padding="same"),
                         conv_kernel_to_torch, conv_kernel_from_torch)
    assert max(errors.values()) <= 1e-10, errors


@TORCH
@given(cfg=conv_configs(max_size=5))
@examples([dict(cfg=c) for c in conv_cases()])
def test_conv2d_transpose_matches_pytorch(cfg):
    """F.conv_transpose2d with no padding gives the full output, (H-1)*s + K rows; Keras's output is the
    window [pad_top, pad_top + OH) of it, zero-extended when K < s (rows no kernel reaches)."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    kh, kw = cfg["kernel_size"]
    sh, sw = cfg["strides"]
    oh = keras_deconv_size(cfg["h"], kh, sh, cfg["padding"])
    ow = keras_deconv_size(cfg["w"], kw, sw, cfg["padding"])
    _, pt, _ = keras_conv_size(oh, kh, sh, cfg["padding"])
    _, pl, _ = keras_conv_size(ow, kw, sw, cfg["padding"])

    def forward(x, k, b):
        full = F.conv_transpose2d(x, k, None, stride=(sh, sw))
        full = F.pad(full, (0, max(0, pl + ow - full.shape[3]), 0, max(0, pt + oh - full.shape[2])))
        return full[:, :, pt:pt + oh, pl:pl + ow] + b.reshape(1, -1, 1, 1)

    layer = make_conv(cfg, cls=Conv2DTranspose)
    errors = _torch_case(torch, layer, random_input(cfg), forward, conv_transpose_kernel_to_torch,
                         conv_transpose_kernel_from_torch)
    assert max(errors.values()) <= 1e-10, errors


# ------------------------------------------------------------------------------------------------------------
# The kernel-rows way of copying a band (kernels/convolution.py by_kernel_rows): wide windows (KW*C >= 32),
# bands within one image. The drawn problems above have few channels, so this path gets its own checks.
# ------------------------------------------------------------------------------------------------------------
ROWS_CFG = dict(n=2, h=6, w=7, c=12, filters=12, kernel_size=(3, 3), strides=(1, 1), padding="same", seed=11)


def _on_kernel_rows(layer, x):
    """Check that forward, kernel gradient and input gradient (the flipped convolution of a 12-channel G) all
    take the kernel-rows path at these band sizes."""
    from tinyseg.kernels import convolution as kc
    for arr in (x, np.zeros((x.shape[0],) + layer.output_shape)):
        assert kc.by_kernel_rows(arr, kc.band_plan(arr, layer.kernel_size, arr.shape[1:3]), layer.kernel_size,
                                 (1, 1))


@pytest.mark.parametrize("dilation", [1, 2])
def test_kernel_rows_gradients_match_finite_differences(dilation):
    cfg = ROWS_CFG
    layer = Conv2D(cfg["filters"], 3, padding="same", dilation_rate=dilation, activation="tanh", dtype="float64")
    layer.build((cfg["h"], cfg["w"], cfg["c"]))
    rng = np.random.default_rng(3)
    layer.set_weights([rng.standard_normal(p.shape) * (0.1 if k == "kernel" else 0.5) for k, p in layer.params.items()])
    x = random_input(cfg)
    with band_bytes(2000):                        # a few output rows a band: bands within one image
        _on_kernel_rows(layer, x)
        report = check_layer(layer, x, seed=5)
    assert report.max_rel_error < 1e-6, str(report)


@pytest.mark.parametrize("dilation", [1, 2])
def test_kernel_rows_match_pytorch(dilation):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    layer = Conv2D(ROWS_CFG["filters"], 3, padding="same", dilation_rate=dilation, dtype="float64")
    layer.build((ROWS_CFG["h"], ROWS_CFG["w"], ROWS_CFG["c"]))
    rng = np.random.default_rng(4)
    layer.set_weights([rng.standard_normal(p.shape) for p in layer.params.values()])
    x = random_input(ROWS_CFG)
    with band_bytes(2000):
        _on_kernel_rows(layer, x)
        errors = _torch_case(torch, layer, x, lambda x_, k, b: F.conv2d(x_, k, b, padding="same", dilation=dilation),
                             conv_kernel_to_torch, conv_kernel_from_torch)
    assert max(errors.values()) <= 1e-10, errors
