"""The fast layers equal the plain-loop definitions of tinyseg/reference.py (float64, small drawn shapes)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.edge_cases import UPSAMPLING, examples
from tinyseg import reference
from tinyseg.layers import AveragePooling2D, BatchNormalization, Conv2D, Conv2DTranspose, MaxPooling2D, UpSampling2D
from tinyseg.losses import SparseCategoricalCrossentropy

SETTINGS = settings(deadline=None, max_examples=15)
TOL = dict(rtol=1e-10, atol=1e-12)


@st.composite
def images(draw, min_size=1, max_size=7, max_channels=3):
    n = draw(st.integers(1, 2))
    h, w = draw(st.integers(min_size, max_size)), draw(st.integers(min_size, max_size))
    c = draw(st.integers(1, max_channels))
    seed = draw(st.integers(0, 10_000))
    return np.random.default_rng(seed).standard_normal((n, h, w, c)), seed


def image(h, w, seed, n=2, c=2):
    """What images() draws: (x, its seed)."""
    return np.random.default_rng(seed).standard_normal((n, h, w, c)), seed


# Square kernels and strides (k, s, d) with their edges (tests/edge_cases.py): K - s odd and even, 'same'
# with strides, stride above the kernel, a dilated span, one window over the whole image.
CONV_EDGES = [((5, 4), 2, 1, 1, "same"), ((5, 7), 3, 2, 1, "same"), ((4, 4), 3, 1, 1, "same"),
              ((7, 5), 1, 2, 1, "valid"), ((7, 6), 2, 3, 1, "same"), ((5, 6), 2, 1, 2, "same"),
              ((3, 3), 3, 1, 1, "valid")]
TRANSPOSE_EDGES = [((3, 4), 2, 1, "same"), ((3, 2), 3, 2, "same"), ((2, 3), 3, 1, "same"), ((3, 3), 4, 1, "same"),
                   ((2, 3), 1, 3, "valid"), ((3, 2), 2, 3, "same"), ((2, 2), 3, 2, "valid")]
POOL_EDGES = [((5, 4), 2, 1, "same"), ((5, 7), 3, 2, "same"), ((4, 5), 3, 3, "same"), ((7, 5), 1, 3, "valid"),
              ((5, 7), 2, 3, "valid"), ((3, 3), 3, 1, "valid")]


def forward_backward(layer, x, rng):
    y = layer.forward(x, training=True)
    g = rng.standard_normal(y.shape)
    return y, g, layer.backward(g)


@SETTINGS
@given(data=images(min_size=3), f=st.integers(1, 3), k=st.integers(1, 3), s=st.integers(1, 2),
       d=st.integers(1, 2), padding=st.sampled_from(["valid", "same"]))
@examples([dict(data=image(*hw, seed=i), f=2, k=k, s=s, d=d, padding=p)
           for i, (hw, k, s, d, p) in enumerate(CONV_EDGES)])
def test_conv2d_equals_its_loops(data, f, k, s, d, padding):
    x, seed = data
    if s > 1 and d > 1:
        d = 1                                            # Keras refuses strides with dilation
    if padding == "valid" and min(x.shape[1:3]) < (k - 1) * d + 1:
        return
    rng = np.random.default_rng(seed)
    layer = Conv2D(f, k, strides=s, padding=padding, dilation_rate=d, dtype="float64")
    layer.build(x.shape[1:])
    layer.set_weights([rng.standard_normal(w.shape) for w in layer.get_weights()])
    y, g, dx = forward_backward(layer, x, rng)
    kernel, bias = layer.get_weights()
    np.testing.assert_allclose(y, reference.conv2d(x, kernel, bias, s, padding, d), **TOL)
    rdx, rdk, rdb = reference.conv2d_backward(x, kernel, g, s, padding, d)
    np.testing.assert_allclose(dx, rdx, **TOL)
    np.testing.assert_allclose(layer.grads["kernel"], rdk, **TOL)
    np.testing.assert_allclose(layer.grads["bias"], rdb, **TOL)


@SETTINGS
@given(data=images(max_size=5), f=st.integers(1, 3), k=st.integers(1, 3), s=st.integers(1, 3),
       padding=st.sampled_from(["valid", "same"]))
@examples([dict(data=image(*hw, seed=i), f=2, k=k, s=s, padding=p)
           for i, (hw, k, s, p) in enumerate(TRANSPOSE_EDGES)])
def test_conv2d_transpose_equals_its_loops(data, f, k, s, padding):
    x, seed = data
    rng = np.random.default_rng(seed)
    layer = Conv2DTranspose(f, k, strides=s, padding=padding, dtype="float64")
    layer.build(x.shape[1:])
    layer.set_weights([rng.standard_normal(w.shape) for w in layer.get_weights()])
    y, g, dx = forward_backward(layer, x, rng)
    kernel, bias = layer.get_weights()
    np.testing.assert_allclose(y, reference.conv2d_transpose(x, kernel, bias, s, padding), **TOL)
    rdx, rdk, rdb = reference.conv2d_transpose_backward(x, kernel, g, s, padding)
    np.testing.assert_allclose(dx, rdx, **TOL)
    np.testing.assert_allclose(layer.grads["kernel"], rdk, **TOL)
    np.testing.assert_allclose(layer.grads["bias"], rdb, **TOL)


@SETTINGS
@given(data=images(min_size=3), kind=st.sampled_from(["max", "avg"]), k=st.integers(1, 3),
       s=st.integers(1, 3), padding=st.sampled_from(["valid", "same"]))
@examples([dict(data=image(*hw, seed=i), kind=kind, k=k, s=s, padding=p)
           for i, (hw, k, s, p) in enumerate(POOL_EDGES) for kind in ("max", "avg")])
def test_pooling_equals_its_loops(data, kind, k, s, padding):
    x, seed = data
    rng = np.random.default_rng(seed)
    layer = (MaxPooling2D if kind == "max" else AveragePooling2D)(k, strides=s, padding=padding, dtype="float64")
    y, g, dx = forward_backward(layer, x, rng)
    ry, rdx = reference.pool2d(kind, x, g, k, s, padding)
    np.testing.assert_allclose(y, ry, **TOL)
    np.testing.assert_allclose(dx, rdx, **TOL)


@SETTINGS
@given(data=images(max_size=5), fh=st.integers(1, 3), fw=st.integers(1, 3),
       interpolation=st.sampled_from(["nearest", "bilinear"]))
@examples([dict(data=image(*hw, seed=i), fh=fh, fw=fw, interpolation=mode)
           for i, (hw, (fh, fw)) in enumerate(UPSAMPLING) for mode in ("nearest", "bilinear")])
def test_upsampling_equals_its_loops(data, fh, fw, interpolation):
    x, seed = data
    layer = UpSampling2D((fh, fw), interpolation=interpolation, dtype="float64")
    y, g, dx = forward_backward(layer, x, np.random.default_rng(seed))
    ry, rdx = reference.upsample(x, g, (fh, fw), interpolation)
    np.testing.assert_allclose(y, ry, **TOL)
    np.testing.assert_allclose(dx, rdx, **TOL)


@SETTINGS
@given(data=images(max_size=4))
def test_batch_norm_training_equals_its_loops(data):
    x, seed = data
    rng = np.random.default_rng(seed)
    layer = BatchNormalization(dtype="float64")
    layer.build(x.shape[1:])
    gamma, beta = rng.standard_normal((2, x.shape[-1]))
    layer.set_weights([gamma, beta, np.zeros(x.shape[-1]), np.ones(x.shape[-1])])
    y, g, dx = forward_backward(layer, x, rng)
    ry, rdx, rdgamma, rdbeta = reference.batch_norm(x, gamma, beta, g, layer.epsilon)
    np.testing.assert_allclose(y, ry, **TOL)
    np.testing.assert_allclose(dx, rdx, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(layer.grads["gamma"], rdgamma, **TOL)
    np.testing.assert_allclose(layer.grads["beta"], rdbeta, **TOL)


@pytest.mark.parametrize("ignore_index, weighted", [(None, False), (2, False), (None, True), (0, True)])
def test_softmax_cross_entropy_equals_its_loops(ignore_index, weighted):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 3, 4, 3)) * 3
    labels = rng.integers(0, 3, (2, 3, 4))
    weights = [0.5, 2.0, 1.0] if weighted else None
    loss = SparseCategoricalCrossentropy(class_weight=weights, ignore_index=ignore_index)
    value = loss.forward(labels, logits)
    ref_value, ref_grad = reference.softmax_cross_entropy(logits, labels, ignore_index, weights)
    assert value == pytest.approx(ref_value, rel=1e-12)
    np.testing.assert_allclose(loss.backward(), ref_grad, **TOL)


def test_a_reference_is_not_its_layer():
    """The loops catch what they are for: a convolution whose padding went to the wrong side."""
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    kernel = np.zeros((2, 2, 1, 1))
    kernel[0, 0] = 1.0                                   # y picks the window's top-left pixel
    y = reference.conv2d(x, kernel, None, 1, "same")
    assert y[0, :, :, 0].tolist()[0] == [0, 1, 2, 3]     # 'same' pads at the bottom/right: no shift
