"""What test_dilation.py and test_depthwise_separable.py share: the geometry restated from Keras's own
words, the depthwise loop references written from the formulas (not from the library; the dilated
convolution's own loops are tinyseg.reference.conv2d), random inputs and weights (scaled for the layers' fan-in),
and the checks that test_convolution.py runs too.
The comparisons with PyTorch and Keras are in tests/helpers.py.

    dilated convolution: y[n, i, j, f]     = b[f] + sum_{a, b, c} xpad[n, i*sh + a*dh, j*sw + b*dw, c] K[a, b, c, f]
    depthwise:           y[n, i, j, c*M+m] = b[c*M+m] + sum_{a, b} xpad[n, i*sh + a*dh, j*sw + b*dw, c] K[a, b, c, m]

    'valid': OH = floor((H - dh*(KH - 1) - 1) / sh) + 1          (keras.src.ops.operation_utils)
    'same':  OH = ceil(H / sh), total pad max((OH - 1)*sh + dh*(KH - 1) + 1 - H, 0), the odd one at the bottom
"""
import json
import math

import numpy as np

from tinyseg.gradcheck import check_layer


# ------------------------------------------------------------------------------------------------------------
# Geometry
# ------------------------------------------------------------------------------------------------------------
def keras_size(size, kernel, stride, padding, dilation=1):
    """(out, pad_before, pad_after) for one axis."""
    span = dilation * (kernel - 1) + 1
    if padding == "valid":
        return math.floor((size - span) / stride) + 1, 0, 0
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + span - size, 0)
    return out, total // 2, total - total // 2


def padded(x, kernel_hw, strides, padding, dilation):
    """x zero-padded as Keras pads it, and the output size (OH, OW)."""
    n, h, w, c = x.shape
    oh, pt, pb = keras_size(h, kernel_hw[0], strides[0], padding, dilation[0])
    ow, pl, pr = keras_size(w, kernel_hw[1], strides[1], padding, dilation[1])
    xp = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=x.dtype)
    xp[:, pt:pt + h, pl:pl + w, :] = x
    return xp, (oh, ow), (pt, pl)


# ------------------------------------------------------------------------------------------------------------
# Loop references
# ------------------------------------------------------------------------------------------------------------
def depthwise_reference(x, kernel, bias, strides, padding, dilation):
    """Loops over (n, i, j, c, m, a, b): each channel c with its own filters m, output channel c*M + m."""
    kh, kw, c, m = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    xp, (oh, ow), _ = padded(x, (kh, kw), strides, padding, dilation)
    y = np.zeros((x.shape[0], oh, ow, c * m), dtype=x.dtype)
    for s in range(x.shape[0]):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    for mm in range(m):
                        total = 0.0 if bias is None else bias[ch * m + mm]
                        for a in range(kh):
                            for b in range(kw):
                                total += xp[s, i * sh + a * dh, j * sw + b * dw, ch] * kernel[a, b, ch, mm]
                        y[s, i, j, ch * m + mm] = total
    return y


def depthwise_backward_reference(x, kernel, g, strides, padding, dilation):
    """(dL/dx, dL/dK) by scattering: every product x * K of the forward sends G back to both factors."""
    kh, kw, c, m = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    xp, (oh, ow), (pt, pl) = padded(x, (kh, kw), strides, padding, dilation)
    dxp = np.zeros_like(xp)
    dk = np.zeros_like(kernel)
    for s in range(x.shape[0]):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    for mm in range(m):
                        gv = g[s, i, j, ch * m + mm]
                        for a in range(kh):
                            for b in range(kw):
                                r, q = i * sh + a * dh, j * sw + b * dw
                                dxp[s, r, q, ch] += gv * kernel[a, b, ch, mm]
                                dk[a, b, ch, mm] += gv * xp[s, r, q, ch]
    h, w = x.shape[1:3]
    return dxp[:, pt:pt + h, pl:pl + w, :], dk


def random_input(cfg, dtype=np.float64):
    """A standard normal input (n, h, w, c) for a drawn layer problem, from its seed."""
    shape = (cfg["n"], cfg["h"], cfg["w"], cfg["c"])
    return np.random.default_rng(cfg["seed"]).standard_normal(shape).astype(dtype)


def random_weights(layer, rng):
    """Random values for every weight, scaled so that pre-activations are O(1) (tanh/sigmoid do not saturate);
    biases are random too, so a missing bias term shows."""
    weights = []
    for name in layer.weight_names():
        shape = layer.params[name].shape
        if name == "bias":
            scale = 0.5
        elif name == getattr(layer, "depthwise_key", None):       # each output sums KH*KW products
            scale = (shape[0] * shape[1]) ** -0.5
        else:                                           # kernel, pointwise_kernel: all but the last axis
            scale = int(np.prod(shape[:-1])) ** -0.5
        weights.append(rng.standard_normal(shape) * scale)
    layer.set_weights(weights)


# ------------------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------------------
def assert_relu_gradients_check(layer, x):
    """The gradient check of a layer whose activation is ReLU, at an x whose pre-activations all stand far
    (>> the step h = 1e-6) from the kink at 0, on both sides of it: checked first, so that a seed that put one
    near the kink fails here and not as a wrong gradient."""
    z = layer.forward_linear(x)
    assert np.abs(z).min() > 1e-4 and (z > 0).any() and (z < 0).any()
    report = check_layer(layer, x, max_entries=None)
    assert report.max_rel_error < 1e-6, str(report)


def assert_skipping_input_grad_keeps_parameter_grads(layer, x, methods=("backward",)):
    """A model's first layer skips dL/dx: each of layer's `methods` called as method(g, input_grad=False)
    returns None and leaves the parameter gradients of a full backward at x, exactly."""
    g = np.random.default_rng(0).standard_normal((x.shape[0],) + layer.output_shape)
    layer.forward(x)
    layer.backward(g)
    full = {k: v.copy() for k, v in layer.grads.items()}
    layer.forward(x)
    for name in methods:
        assert getattr(layer, name)(g, input_grad=False) is None, name
    assert list(layer.grads) == list(full)
    for k in full:
        np.testing.assert_array_equal(layer.grads[k], full[k])


def assert_backward_leaves_grad_alone(layer, x):
    """layer.backward(grad) after layer.forward(x) does not write into the grad it is given."""
    y = layer.forward(x)
    grad = np.random.default_rng(0).standard_normal(y.shape)
    kept = grad.copy()
    layer.backward(grad)
    np.testing.assert_array_equal(grad, kept)


def assert_rebuilds_through_json(layer, input_shape):
    """The layer made again from get_config() passed through JSON (as a model file stores it) has the same
    config, and with the same weights computes the same y on a float32 batch of input_shape."""
    config_ = layer.get_config()
    again = type(layer)(**json.loads(json.dumps(config_)))
    assert again.get_config() == config_
    layer.build(input_shape)
    again.build(input_shape)
    again.set_weights(layer.get_weights())
    x = np.random.default_rng(0).standard_normal((1,) + tuple(input_shape)).astype(np.float32)
    np.testing.assert_array_equal(again.forward(x), layer.forward(x))
