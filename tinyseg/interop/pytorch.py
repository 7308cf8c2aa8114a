"""PyTorch interop: the same network with the same weights as a `torch.nn.Module`, and back.

torch is imported inside the functions that need it, so tinyseg itself imports without it
(install it with `pip install -e '.[compare]'`).

    module = to_torch(model)                     # torch.nn.Module: NCHW in, logits out (see below), model's dtype
    sd = torch_state_dict(model)                 # {name: tensor} that module.load_state_dict(sd) accepts
    load_torch_state_dict(model, module.state_dict())      # and back, after training in torch
    grads = torch_gradients(model)               # the model's last gradients, named and laid out as param.grad
    layer_to_torch(layer)                        # one layer as one module
    merge_layer_to_torch(layer)                  # a merge layer (Add, ..., Concatenate): forward takes a list
    to_torch_optimizer(model.optimizer, module.parameters()), to_torch_loss(model.loss), targets_to_torch(...)

The module returns logits: model.call(x, logits=True), the scores before the last layer's activation, because
PyTorch's losses (nn.CrossEntropyLoss, nn.BCEWithLogitsLoss) take logits, as tinyseg's fused losses do.
`to_torch(model, logits=False)` keeps the final activation and then equals model.predict. Its name is in
`module.output_activation` ('softmax', 'sigmoid', ...). Images go in as NCHW; outputs come back as NCHW.

Every convention that differs lives in one function of the "Conventions" section below:

| What | tinyseg (Keras) | PyTorch | Converted by |
|---|---|---|---|
| image layout | NHWC `(N, H, W, C)` | NCHW `(N, C, H, W)` | `nhwc_to_nchw`, `nchw_to_nhwc` |
| Conv2D kernel | HWIO `(KH, KW, C_in, C_out)` | OIHW `(C_out, C_in, KH, KW)` | `conv_kernel_to_torch`: axes (3, 2, 0, 1) |
| Conv2D dilation | `dilation_rate=(dh, dw)` | `dilation=(dh, dw)` | `KerasConv2d(dilation=...)`; 'same' pads from the effective kernel `(K - 1)*d + 1` |
| DepthwiseConv2D kernel | `kernel` `(KH, KW, C, M)`, output channel `c*M + m` | `Conv2d(C, C*M, groups=C).weight` `(C*M, 1, KH, KW)`, the same channel order | `depthwise_kernel_to_torch`: reshape to `(KH, KW, C*M)`, axes (2, 0, 1), a unit axis |
| SeparableConv2D | `depthwise_kernel`, `pointwise_kernel` `(1, 1, C*M, F)`, `bias` | `KerasSeparableConv2d`: `depthwise.weight`, `pointwise.weight` `(F, C*M, 1, 1)`, `pointwise.bias` | `depthwise_kernel_to_torch`, `conv_kernel_to_torch` |
| Conv2DTranspose kernel | `(KH, KW, filters, C_in)` | `ConvTranspose2d.weight` `(C_in, filters, KH, KW)` | `conv_transpose_kernel_to_torch`: axes (3, 2, 0, 1), no flip (both are the adjoint of the convolution with that kernel) |
| Dense kernel | `(D_in, D_out)`, `y = x W + b` | `Linear.weight` `(D_out, D_in)`, `y = x W^T + b` | `dense_kernel_to_torch` |
| Flatten order | `(H, W, C)`: channel fastest | `(C, H, W)`: column fastest | `flatten_permutation`: the kernel rows of the Dense after a Flatten (and a 1-D BatchNorm between them) are permuted |
| 'same' padding | `out = ceil(H / s)`; pads from `geometry.conv_geometry`, an odd extra row/column at the bottom/right | `padding=p` pads both sides alike; `padding='same'` only for stride 1 | `keras_pads`; symmetric pads go to `padding=(top, left)`, otherwise `F.pad` first |
| pad widths | `(top, bottom, left, right)` | `F.pad(x, (left, right, top, bottom))`, last axis first | `torch_pad_widths` |
| transposed conv size | 'valid' `H*s + max(K - s, 0)`, 'same' `H*s` | `(H - 1)*s - 2p + K + output_padding` | `transposed_conv_crop`: `padding=0`, `output_padding = max(s - K, 0)`, then crop `(K - s)//2` rows at the top ('same') |
| max pooling, 'same' | padded cells never win | implicit `-inf` padding, symmetric, at most k/2 | `F.pad(x, ..., value=-inf)` when asymmetric |
| average pooling, 'same' | mean of the real pixels only | `count_include_pad=True` by default | `count_include_pad=False`; sums / counts when asymmetric |
| bilinear upsampling | half-pixel centres | `align_corners=False` | `nn.Upsample(mode='bilinear', align_corners=False)` |
| BatchNorm momentum | `moving = m*moving + (1 - m)*batch`, m = 0.99 | `running = (1 - p)*running + p*batch`, p = 0.1 | `bn_momentum_to_torch`: p = 1 - m |
| BatchNorm running variance | biased batch variance (divide by M) | unbiased (divide by M - 1) | `KerasBatchNorm` stores the biased one; a plain `nn.BatchNorm2d` would add `(1 - m) var / (M - 1)` per step |
| BatchNorm epsilon | 1e-3 | 1e-5 | copied from the layer |
| BatchNorm weights | gamma, beta, moving_mean, moving_variance | weight, bias, running_mean, running_var, num_batches_tracked | `layer_weights_to_torch`; num_batches_tracked is exported as 0 (unused with a fixed momentum) |
| softmax axis | last (channels) | `dim=1` (channels) | `nn.Softmax(dim=1)` |
| model output | `call(x)`: probabilities; `call(x, logits=True)`: logits | logits; losses apply the activation | `to_torch(model, logits=True)` |
| loss targets | one-hot `(N, H, W, K)`; labels `(N, H, W)` (or `(N, H, W, 1)`); masks `(N, H, W, 1)` | probabilities `(N, K, H, W)`; long labels `(N, H, W)`; masks `(N, 1, H, W)` | `targets_to_torch` |
| loss reduction | mean over the N*H*W predictions; with class weights / ignore_index, `sum w_y l / sum w_y` over the kept pixels | `reduction='mean'`: the same | `to_torch_loss` |
| every pixel ignored | loss 0, gradient 0 | nan (0 / 0) | not converted: avoid such batches when comparing |
| Dice loss | `DiceLoss`, `CEDiceLoss` | none built in | `TorchDiceLoss`, `TorchCEDiceLoss` (the same formula in torch ops) |
| SGD momentum | `v = mu v - lr g; theta += v` | `b = mu b + g; theta -= lr b` | `to_torch_optimizer`: equal (v = -lr b) while lr is constant |
| Nesterov | `theta += mu v - lr g` | `theta -= lr (g + mu b)` | equal likewise |
| Adam epsilon | 'keras': `lr_t m / (sqrt(v) + eps)`, eps 1e-7 | `lr m_hat / (sqrt(v_hat) + eps)`, eps 1e-8 | `Adam(epsilon_style='torch')` is exact; else `adam_epsilon_keras_to_torch`: eps_t = eps / sqrt(1 - b2^t) at step t |
| RMSprop epsilon | 'keras': `lr g / sqrt(d + eps)`, eps 1e-7 | `lr g / (sqrt(d) + eps)`, eps 1e-8 | `RMSprop(epsilon_style='torch')` is exact; no fixed torch eps reproduces Keras's (it would depend on d), so a Keras-style one is refused |
| RMSprop decay, momentum | `rho`; `s = mu s + lr g / sqrt(...)`, `theta -= s` | `alpha`; `b = mu b + g / (...)`, `theta -= lr b` | `to_torch_optimizer`: alpha = rho; equal (s = lr b) while lr is constant; centered alike |
| float type | `tinyseg.floatx()` | float32 by default | `to_torch` casts the module to the model's dtype |
| dropout | NumPy masks | torch masks | same rate; masks differ: compare with rate 0 or in inference |
| max-pool ties | first maximum in row-major window order | the same (CPU) | nothing to convert |
| global max-pool ties | dy to the first maximum in row-major (h, w) order | `amax` shares dy equally among tied maxima | `KerasGlobalMaxPool2d` (amax): compare on tie-free inputs |
| zero padding, cropping | `((top, bottom), (left, right))` | `nn.ZeroPad2d((left, right, top, bottom))`; slicing | `torch_pad_widths`; `KerasCropping2d` |
| Reshape | row-major over each sample's `(H, W, C)` values | row-major over `(C, H, W)` | `KerasReshape`: a 4-D input goes NCHW -> NHWC, is reshaped, and a 4-D result goes back to NCHW; other ranks are not permuted (as `nhwc_to_nchw`) |
| merge layers | Add, Subtract, Multiply, Average, Concatenate take a list; no broadcasting | `+`, `-`, `*` broadcast | `merge_layer_to_torch`: `KerasAdd`, ..., which refuse unequal shapes too |
| concatenation axis | Keras's axis of NHWC (-1 or 3: channels) | `dim` of NCHW (1: channels) | `nhwc_axis_to_nchw`: 1 -> 2, 2 -> 3, 3 -> 1 for images |
| weight initialisation | glorot-uniform kernels, zero biases | kaiming-uniform, uniform biases | weights are copied, so it does not matter |
| training mode | `forward(x, training=...)` per call | `module.train()` / `module.eval()` | tinyseg's training=False is `module.eval()` |

How close the two agree (measured by the tests in tests/test_parity_*.py, test_interop.py and
test_whole_run_parity.py). In float64: every layer's output and gradients, every loss and its gradient, 20
optimizer steps: within 1e-14 relative (tests require 1e-10); whole models' outputs and gradients within 1e-14;
50-step training runs' losses within 1e-15 (tests: 1e-9). In float32 each step agrees to ~1e-7, but a run is
chaotic at the level of single ReLU and max-pool decisions: a value within float32 rounding of its threshold
may be decided differently, a small layer's gradient then changes by percents and the loss curves part. Over
seeds 0-7 of four 50-step runs (seed CNN and a small U-Net, SGD and Adam), 18 of the 32 tinyseg float32 runs
and 12 of the 32 PyTorch float32 runs left their float64 curve by more than 1e-6: PyTorch in float32
disagrees with PyTorch in float64 as tinyseg does. tutorials/04_compare_with_pytorch.py draws it.
"""
import math
from collections import OrderedDict
from types import SimpleNamespace

import numpy as np

from .. import losses as tl
from .. import optimizers as topt
from ..layers import (Activation, Add, Average, AveragePooling2D, BatchNormalization, Concatenate, Conv2D,
                      Conv2DTranspose, Cropping2D, Dense, DepthwiseConv2D, Dropout, Flatten, GlobalAveragePooling2D,
                      GlobalMaxPooling2D, MaxPooling2D, Multiply, Reshape, SeparableConv2D, Subtract, UpSampling2D,
                      ZeroPadding2D)
from ..layers.activations import ActivationLayer
from ..layers.geometry import conv_geometry, deconv_output_length
from ..graph import InputLayer
from ..models.model import Model, output_activation
from ..models.sequential import Sequential
from ..models.unet import UNet

INSTALL_HINT = "pip install -e '.[compare]'"


def _require_torch():
    """Import torch, or explain how to install it."""
    try:
        import torch
    except ImportError as err:
        raise ImportError(f"tinyseg.interop.pytorch needs PyTorch; install it with: {INSTALL_HINT}") from err
    return torch


# =========================================================================================================
# Conventions: each difference between Keras's and PyTorch's ways, in one function (NumPy; no torch needed)
# =========================================================================================================
def nhwc_to_nchw(x):
    """Images (N, H, W, C) -> (N, C, H, W); vectors (N, D) are returned unchanged. NumPy array or tensor."""
    if x.ndim != 4:
        return x
    return x.permute(0, 3, 1, 2) if hasattr(x, "permute") else x.transpose(0, 3, 1, 2)


def nchw_to_nhwc(x):
    """Images (N, C, H, W) -> (N, H, W, C); vectors (N, D) are returned unchanged. NumPy array or tensor."""
    if x.ndim != 4:
        return x
    return x.permute(0, 2, 3, 1) if hasattr(x, "permute") else x.transpose(0, 2, 3, 1)


def nhwc_axis_to_nchw(axis, rank):
    """A Keras axis (counting the batch) of an array of `rank` axes -> the same axis of its torch twin.

    Images (rank 4): 0 (batch) -> 0, 1 (H) -> 2, 2 (W) -> 3, 3 or -1 (C) -> 1. Other ranks keep their axes, as
    nhwc_to_nchw leaves those arrays alone.
    """
    if not -rank <= axis < rank:
        raise ValueError(f"nhwc_axis_to_nchw: axis {axis} is out of range for rank {rank}")
    axis %= rank
    return (0, 2, 3, 1)[axis] if rank == 4 else axis


def conv_kernel_to_torch(kernel):
    """Conv2D kernel HWIO (KH, KW, C_in, C_out) -> nn.Conv2d weight OIHW (C_out, C_in, KH, KW)."""
    return kernel.transpose(3, 2, 0, 1)


def conv_kernel_from_torch(weight):
    """nn.Conv2d weight OIHW (C_out, C_in, KH, KW) -> Conv2D kernel HWIO (KH, KW, C_in, C_out)."""
    return weight.transpose(2, 3, 1, 0)


def depthwise_kernel_to_torch(kernel):
    """DepthwiseConv2D kernel (KH, KW, C, M) -> nn.Conv2d(groups=C) weight (C*M, 1, KH, KW).

    Output channel c*M + m is filter m of input channel c in both: Keras's (C, M) flattens to c*M + m, and
    PyTorch's group c owns the output channels c*M .. c*M + M - 1.
    """
    kh, kw, c, m = kernel.shape
    return kernel.reshape(kh, kw, c * m).transpose(2, 0, 1)[:, None]


def depthwise_kernel_from_torch(weight, depth_multiplier):
    """nn.Conv2d(groups=C) weight (C*M, 1, KH, KW) -> DepthwiseConv2D kernel (KH, KW, C, M)."""
    cm, _, kh, kw = weight.shape
    return weight[:, 0].transpose(1, 2, 0).reshape(kh, kw, cm // depth_multiplier, depth_multiplier)


def conv_transpose_kernel_to_torch(kernel):
    """Conv2DTranspose kernel (KH, KW, filters, C_in) -> nn.ConvTranspose2d weight (C_in, filters, KH, KW).

    The same axis permutation as for Conv2D, and no flip: both frameworks define the transposed convolution as
    the adjoint of the convolution (filters -> C_in) whose kernel this is.
    """
    return kernel.transpose(3, 2, 0, 1)


def conv_transpose_kernel_from_torch(weight):
    """nn.ConvTranspose2d weight (C_in, filters, KH, KW) -> Conv2DTranspose kernel (KH, KW, filters, C_in)."""
    return weight.transpose(2, 3, 1, 0)


def flatten_permutation(shape):
    """The order in which PyTorch's NCHW Flatten lists the features that tinyseg's Flatten lists in (H, W, C).

    shape: (H, W, C), the Flatten's input without the batch axis. Returns perm of length H*W*C with

        torch_features[:, p] = tinyseg_features[:, perm[p]]        (perm[p] = (h*W + w)*C + c for p = (c*H + h)*W + w)
    """
    h, w, c = shape
    return np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).ravel()


def dense_kernel_to_torch(kernel, feature_perm=None):
    """Dense kernel (D_in, D_out) -> nn.Linear weight (D_out, D_in), rows taken in `feature_perm` order.

    y = x @ K  and  y = x_t @ W^T  agree when x_t = x[:, perm] and W = K[perm].T: the Dense after a Flatten
    sees PyTorch's (C, H, W) feature order, so its kernel rows are permuted with flatten_permutation.
    """
    rows = kernel if feature_perm is None else kernel[feature_perm]
    return rows.T


def dense_kernel_from_torch(weight, feature_perm=None):
    """nn.Linear weight (D_out, D_in) -> Dense kernel (D_in, D_out), undoing dense_kernel_to_torch."""
    rows = weight.T
    return rows if feature_perm is None else rows[np.argsort(feature_perm)]


def keras_pads(in_hw, kernel_size, strides, padding, dilation=(1, 1)):
    """Keras's pads (top, bottom, left, right) for a window over an (H, W) input (see layers/geometry.py):
    zero for 'valid'; for 'same' the total max((out - 1)*s + k - size, 0), the odd extra at the bottom/right,
    with k the effective kernel (kernel - 1)*dilation + 1."""
    return conv_geometry(tuple(int(d) for d in in_hw), kernel_size, strides, padding, dilation)[1]


def torch_pad_widths(pads):
    """(top, bottom, left, right) -> F.pad's order (left, right, top, bottom): the last axis first."""
    top, bottom, left, right = pads
    return left, right, top, bottom


def transposed_conv_crop(kernel_size, strides, padding):
    """How nn.ConvTranspose2d(padding=0) reproduces Keras's Conv2DTranspose, per axis:

    PyTorch's full output has (H - 1)*s + K + output_padding rows; Keras keeps `out` rows of it
    (deconv_output_length: H*s + max(K - s, 0) for 'valid', H*s for 'same'), starting at row `start`, the top
    pad of the convolution it is the adjoint of ((K - s)//2 for 'same' with K > s, else 0). When K < s the
    last s - K rows receive only the bias: output_padding = max(s - K, 0) adds them.

    Returns (start_top, start_left), (output_padding_h, output_padding_w).
    """
    starts, extra = [], []
    for k, s in zip(kernel_size, strides):
        starts.append(max(k - s, 0) // 2 if padding == "same" else 0)
        extra.append(max(s - k, 0))
    return tuple(starts), tuple(extra)


def bn_momentum_to_torch(momentum):
    """Keras's momentum m weighs the old moving average; PyTorch's weighs the new batch: p = 1 - m."""
    return 1.0 - momentum


def bn_momentum_from_torch(momentum):
    return 1.0 - momentum


def adam_epsilon_keras_to_torch(epsilon, beta_2, step):
    """The torch eps that makes step t (1, 2, ...) of a Keras-style Adam exact: eps / sqrt(1 - beta_2^t).

    Keras adds eps to sqrt(v), PyTorch to sqrt(v / (1 - beta_2^t)); Adam(epsilon_style='torch') avoids this.
    """
    return epsilon / math.sqrt(1.0 - beta_2 ** step)


def relative_error(a, b):
    """max|a - b| / max(max|a|, max|b|), 0 when both are zero: the error relative to the arrays' scale.

    Scale-wise rather than element-wise: an entry that is tiny because of cancellation (a batch-norm input
    gradient sums to zero per channel) would make an element-wise ratio meaningless.
    """
    a, b = to_numpy(a).astype(np.float64), to_numpy(b).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"relative_error: shapes differ, {a.shape} and {b.shape}")
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0))
    return 0.0 if scale == 0 else float(np.abs(a - b).max() / scale)


def to_numpy(x):
    """A tensor (detached, on the CPU) or anything array-like as a NumPy array."""
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def to_tensor(x, dtype=None, requires_grad=False):
    """A NumPy array as a new torch tensor (a copy; `dtype` a NumPy or torch dtype, default x's)."""
    torch = _require_torch()
    t = torch.tensor(np.ascontiguousarray(to_numpy(x)))
    if dtype is not None:
        t = t.to(torch_dtype(dtype))
    return t.requires_grad_(requires_grad)


def torch_dtype(dtype):
    """np.float32 / 'float64' / torch.float64 -> the torch dtype."""
    torch = _require_torch()
    if isinstance(dtype, torch.dtype):
        return dtype
    return {np.dtype("float32"): torch.float32, np.dtype("float64"): torch.float64}[np.dtype(dtype)]


# =========================================================================================================
# Weights, layer by layer: the names and layouts of every parameter
# =========================================================================================================
def _same(a):
    return a


def _weight_converters(layer, feature_perm=None):
    """{Keras weight name: (torch name, to_torch, from_torch)} for the layer's weights in get_weights() order.

    feature_perm: for a Dense or a 1-D BatchNorm after a Flatten, the flatten_permutation of its input features.
    """
    if isinstance(layer, (DepthwiseConv2D, SeparableConv2D)):
        # DepthwiseConv2D is one grouped nn.Conv2d; SeparableConv2D a module with two ('depthwise', 'pointwise'
        # holding the bias): see KerasSeparableConv2d
        depthwise, pointwise = ("depthwise.", "pointwise.") if isinstance(layer, SeparableConv2D) else ("", "")
        m = layer.depth_multiplier
        table = {layer.depthwise_key: (depthwise + "weight", depthwise_kernel_to_torch,
                                       lambda w: depthwise_kernel_from_torch(w, m)),
                 "pointwise_kernel": ("pointwise.weight", conv_kernel_to_torch, conv_kernel_from_torch),
                 "bias": (pointwise + "bias", _same, _same)}
        return OrderedDict((name, table[name]) for name in layer.weight_names())
    if isinstance(layer, Conv2DTranspose):
        kernel = ("weight", conv_transpose_kernel_to_torch, conv_transpose_kernel_from_torch)
    elif isinstance(layer, Conv2D):
        kernel = ("weight", conv_kernel_to_torch, conv_kernel_from_torch)
    elif isinstance(layer, Dense):
        kernel = ("weight", lambda k: dense_kernel_to_torch(k, feature_perm),
                  lambda w: dense_kernel_from_torch(w, feature_perm))
    else:
        kernel = None
    if feature_perm is None:
        per_channel = (_same, _same)
    else:                                   # a BatchNorm on flattened features normalises each feature
        per_channel = (lambda v: v[feature_perm], lambda v: v[np.argsort(feature_perm)])
    table = {
        "kernel": kernel,
        "bias": ("bias", _same, _same),
        "gamma": ("weight",) + per_channel,
        "beta": ("bias",) + per_channel,
        "moving_mean": ("running_mean",) + per_channel,
        "moving_variance": ("running_var",) + per_channel,
    }
    converters = OrderedDict()
    for name in layer.weight_names():
        if table.get(name) is None:
            raise TypeError(f"{layer.name}: no PyTorch conversion for weight '{name}' of a "
                            f"{type(layer).__name__}")
        converters[name] = table[name]
    return converters


def _layer_arrays(layer):
    """The layer's weights by Keras name (trained params and, for batch norm, the moving statistics)."""
    return {**layer.params, **getattr(layer, "state", {})}


def layer_weights_to_torch(layer, arrays=None, feature_perm=None):
    """{torch name: NumPy array in torch's layout} for one layer.

    arrays: {Keras name: array}; default the layer's weights. Pass `layer.grads` to convert gradients (a
    gradient is laid out as its parameter). Only the names present in `arrays` are converted.
    """
    arrays = _layer_arrays(layer) if arrays is None else arrays
    return OrderedDict((tname, np.ascontiguousarray(to_t(arrays[name])))
                       for name, (tname, to_t, _) in _weight_converters(layer, feature_perm).items()
                       if name in arrays)


def layer_weights_from_torch(layer, tensors, feature_perm=None):
    """The layer's weights in Keras's get_weights() order, from {torch name: tensor or array}."""
    out = []
    for name, (tname, _, from_t) in _weight_converters(layer, feature_perm).items():
        if tname not in tensors:
            raise KeyError(f"{layer.name}: missing '{tname}' (tinyseg's '{name}') in the torch weights")
        out.append(from_t(to_numpy(tensors[tname])))
    return out


# =========================================================================================================
# torch.nn modules that follow Keras's rules (defined on first use, so that torch is imported only then)
# =========================================================================================================
_MODULES = None
_MODULE_NAMES = ("KerasConv2d", "KerasSeparableConv2d", "KerasConvTranspose2d", "KerasLinear", "KerasMaxPool2d",
                 "KerasAvgPool2d", "KerasBatchNorm", "TorchUNet", "TorchGraph", "TorchDiceLoss", "TorchCEDiceLoss",
                 "KerasGlobalMaxPool2d", "KerasGlobalAvgPool2d", "KerasCropping2d", "KerasReshape", "KerasAdd",
                 "KerasSubtract", "KerasMultiply", "KerasAverage", "KerasConcatenate")


def __getattr__(name):
    """`from tinyseg.interop.pytorch import KerasConv2d` defines the modules (importing torch) on demand."""
    if name in _MODULE_NAMES:
        return getattr(torch_modules(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def torch_modules():
    """The torch.nn.Module classes below, defined (once) the first time they are asked for."""
    global _MODULES
    if _MODULES is None:
        _MODULES = _define_modules()
    return _MODULES


def _define_modules():
    torch = _require_torch()
    from torch import nn
    from torch.nn import functional as F

    def activation_module(name):
        """The torch module of a tinyseg activation name; softmax is over the channel axis, dim=1 in NCHW."""
        if name == "softmax":
            return nn.Softmax(dim=1)
        return {"linear": nn.Identity, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[name]()

    class KerasConv2d(nn.Conv2d):
        """nn.Conv2d with Keras's 'valid'/'same' padding (pads computed per input size from the effective
        kernel (K - 1)*dilation + 1; asymmetric 'same' pads go through F.pad) followed by an activation
        (nn.Identity for none). groups=C with C*M output channels is a DepthwiseConv2D."""

        def __init__(self, in_channels, out_channels, kernel_size, stride, keras_padding, bias,
                     activation="linear", dilation=1, groups=1):
            super().__init__(in_channels, out_channels, kernel_size, stride, padding=0, dilation=dilation,
                             groups=groups, bias=bias)
            self.keras_padding = keras_padding
            self.activation = activation_module(activation)

        def forward(self, x):
            top, bottom, left, right = keras_pads(x.shape[-2:], self.kernel_size, self.stride, self.keras_padding,
                                                  self.dilation)
            if top == bottom and left == right:           # PyTorch pads both sides alike: let it
                z = F.conv2d(x, self.weight, self.bias, self.stride, (top, left), self.dilation, self.groups)
            else:
                z = F.conv2d(F.pad(x, torch_pad_widths((top, bottom, left, right))), self.weight, self.bias,
                             self.stride, 0, self.dilation, self.groups)
            return self.activation(z)

        def extra_repr(self):
            return super().extra_repr() + f", keras_padding={self.keras_padding!r}"

    class KerasSeparableConv2d(nn.Module):
        """Keras's SeparableConv2D: `depthwise`, a KerasConv2d(C, C*M, groups=C, bias=False) with Keras's
        padding, then `pointwise`, an nn.Conv2d(C*M, F, 1) with the bias, then the activation.
        state_dict: depthwise.weight (C*M, 1, KH, KW), pointwise.weight (F, C*M, 1, 1), pointwise.bias (F,)."""

        def __init__(self, in_channels, filters, kernel_size, stride, keras_padding, bias, activation="linear",
                     depth_multiplier=1, dilation=1):
            super().__init__()
            cm = in_channels * depth_multiplier
            self.depthwise = KerasConv2d(in_channels, cm, kernel_size, stride, keras_padding, False,
                                         dilation=dilation, groups=in_channels)
            self.pointwise = nn.Conv2d(cm, filters, 1, bias=bias)
            self.activation = activation_module(activation)

        def forward(self, x):
            return self.activation(self.pointwise(self.depthwise(x)))

    class KerasConvTranspose2d(nn.ConvTranspose2d):
        """nn.ConvTranspose2d(padding=0) cropped to Keras's output size (transposed_conv_crop), then an
        activation."""

        def __init__(self, in_channels, out_channels, kernel_size, stride, keras_padding, bias,
                     activation="linear"):
            starts, output_padding = transposed_conv_crop(kernel_size, stride, keras_padding)
            super().__init__(in_channels, out_channels, kernel_size, stride, padding=0,
                             output_padding=output_padding, bias=bias)
            self.keras_padding = keras_padding
            self.crop_start = starts
            self.activation = activation_module(activation)

        def forward(self, x):
            z = super().forward(x)
            (top, left), (h, w) = self.crop_start, x.shape[-2:]
            oh = deconv_output_length(h, self.kernel_size[0], self.stride[0], self.keras_padding)
            ow = deconv_output_length(w, self.kernel_size[1], self.stride[1], self.keras_padding)
            return self.activation(z[:, :, top:top + oh, left:left + ow])

        def extra_repr(self):
            return super().extra_repr() + f", keras_padding={self.keras_padding!r}"

    class KerasLinear(nn.Linear):
        """nn.Linear followed by an activation (Keras's Dense(units, activation))."""

        def __init__(self, in_features, out_features, bias, activation="linear"):
            super().__init__(in_features, out_features, bias=bias)
            self.activation = activation_module(activation)

        def forward(self, x):
            return self.activation(super().forward(x))

    class KerasMaxPool2d(nn.MaxPool2d):
        """nn.MaxPool2d with Keras's padding: asymmetric 'same' pads are -inf cells that never win."""

        def __init__(self, pool_size, strides, keras_padding):
            super().__init__(pool_size, strides)
            self.keras_padding = keras_padding

        def extra_repr(self):
            return f"kernel_size={self.kernel_size}, stride={self.stride}, keras_padding={self.keras_padding!r}"

        def forward(self, x):
            top, bottom, left, right = keras_pads(x.shape[-2:], self.kernel_size, self.stride, self.keras_padding)
            if top == bottom and left == right:
                return F.max_pool2d(x, self.kernel_size, self.stride, (top, left))
            x = F.pad(x, torch_pad_widths((top, bottom, left, right)), value=-math.inf)
            return F.max_pool2d(x, self.kernel_size, self.stride)

    class KerasAvgPool2d(nn.AvgPool2d):
        """nn.AvgPool2d with Keras's padding: a window averages only its real (non-padded) pixels."""

        def __init__(self, pool_size, strides, keras_padding):
            super().__init__(pool_size, strides, count_include_pad=False)
            self.keras_padding = keras_padding

        def extra_repr(self):
            return f"kernel_size={self.kernel_size}, stride={self.stride}, keras_padding={self.keras_padding!r}"

        def forward(self, x):
            top, bottom, left, right = keras_pads(x.shape[-2:], self.kernel_size, self.stride, self.keras_padding)
            if top == bottom and left == right:
                return F.avg_pool2d(x, self.kernel_size, self.stride, (top, left), count_include_pad=False)
            widths = torch_pad_widths((top, bottom, left, right))
            sums = F.avg_pool2d(F.pad(x, widths), self.kernel_size, self.stride, divisor_override=1)
            ones = torch.ones((1, 1) + tuple(x.shape[-2:]), dtype=x.dtype, device=x.device)
            counts = F.avg_pool2d(F.pad(ones, widths), self.kernel_size, self.stride, divisor_override=1)
            return sums / counts

    class KerasBatchNorm(nn.BatchNorm2d):
        """nn.BatchNorm2d (also for (N, C) vectors) whose running_var averages the *biased* batch variance.

        momentum is PyTorch's (bn_momentum_to_torch of Keras's); normalisation and inference are
        nn.BatchNorm2d's own. Only the running-variance update differs (see the table in the module docstring).
        `scale=False` / `center=False` leave weight / bias out, as Keras leaves out gamma / beta.
        """

        def __init__(self, num_features, eps, momentum, scale=True, center=True):
            super().__init__(num_features, eps=eps, momentum=momentum)
            if not scale:
                self.weight = None
            if not center:
                self.bias = None

        def _check_input_dim(self, x):
            if x.dim() not in (2, 4):
                raise ValueError(f"KerasBatchNorm: expected (N, C) or (N, C, H, W) input, got {tuple(x.shape)}")

        def forward(self, x):
            if not self.training:
                return super().forward(x)                  # normalise with running_mean, running_var
            self._check_input_dim(x)
            dims = [0] + list(range(2, x.dim()))          # every axis but the channels
            with torch.no_grad():
                mean = x.mean(dims)
                var = x.var(dims, unbiased=False)         # biased, as Keras's moving_variance
                p = self.momentum
                self.running_mean.copy_((1 - p) * self.running_mean + p * mean)
                self.running_var.copy_((1 - p) * self.running_var + p * var)
                self.num_batches_tracked += 1
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)

    class KerasGlobalMaxPool2d(nn.Module):
        """Keras's GlobalMaxPooling2D on NCHW: the max over (H, W) -> (N, C), or (N, C, 1, 1) with keepdims.

        amax shares the gradient equally among tied maxima, where tinyseg gives it all to the first one."""

        def __init__(self, keepdims=False):
            super().__init__()
            self.keepdims = keepdims

        def forward(self, x):
            return x.amax(dim=(2, 3), keepdim=self.keepdims)

    class KerasGlobalAvgPool2d(nn.Module):
        """Keras's GlobalAveragePooling2D on NCHW: the mean over (H, W) -> (N, C), or (N, C, 1, 1)."""

        def __init__(self, keepdims=False):
            super().__init__()
            self.keepdims = keepdims

        def forward(self, x):
            return x.mean(dim=(2, 3), keepdim=self.keepdims)

    class KerasCropping2d(nn.Module):
        """Keras's Cropping2D on NCHW: cropping = ((top, bottom), (left, right)) rows and columns cut off."""

        def __init__(self, cropping):
            super().__init__()
            self.cropping = cropping

        def forward(self, x):
            (top, bottom), (left, right) = self.cropping
            h, w = x.shape[-2:]
            return x[:, :, top:h - bottom, left:w - right]

    class KerasReshape(nn.Module):
        """Keras's Reshape(target_shape) in tinyseg's value order: a reshape of NCHW images would read their
        values channel by channel, so 4-D inputs go to NHWC first, and 4-D results come back to NCHW."""

        def __init__(self, target_shape):
            super().__init__()
            self.target_shape = tuple(target_shape)

        def forward(self, x):
            if x.dim() == 4:
                x = x.permute(0, 2, 3, 1)
            y = x.reshape((x.shape[0],) + self.target_shape)
            return y.permute(0, 3, 1, 2) if y.dim() == 4 else y

    class _KerasMerge(nn.Module):
        """A merge of a list of tensors that, like the tinyseg layer, broadcasts nothing."""

        def check(self, inputs):
            shapes = [tuple(x.shape) for x in inputs]
            if len(shapes) < 2 or len(set(shapes)) != 1:
                raise ValueError(f"{type(self).__name__}: expects two or more tensors of one shape, got {shapes}")

    class KerasAdd(_KerasMerge):
        """x_1 + x_2 + ... + x_n."""

        def forward(self, inputs):
            self.check(inputs)
            y = inputs[0] + inputs[1]
            for x in inputs[2:]:
                y = y + x
            return y

    class KerasSubtract(_KerasMerge):
        """x_1 - x_2 (exactly two tensors)."""

        def forward(self, inputs):
            self.check(inputs)
            if len(inputs) != 2:
                raise ValueError(f"KerasSubtract: expects exactly 2 tensors, got {len(inputs)}")
            return inputs[0] - inputs[1]

    class KerasMultiply(_KerasMerge):
        """x_1 * x_2 * ... * x_n, element by element."""

        def forward(self, inputs):
            self.check(inputs)
            y = inputs[0] * inputs[1]
            for x in inputs[2:]:
                y = y * x
            return y

    class KerasAverage(_KerasMerge):
        """(x_1 + x_2 + ... + x_n) / n."""

        def forward(self, inputs):
            self.check(inputs)
            y = inputs[0] + inputs[1]
            for x in inputs[2:]:
                y = y + x
            return y / len(inputs)

    class KerasConcatenate(nn.Module):
        """Keras's Concatenate(axis) on NCHW tensors: `axis` is Keras's (of NHWC), converted per input rank."""

        def __init__(self, axis=-1):
            super().__init__()
            self.axis = axis

        def forward(self, inputs):
            return torch.cat(list(inputs), dim=nhwc_axis_to_nchw(self.axis, inputs[0].dim()))

        def extra_repr(self):
            return f"axis={self.axis} (Keras's, of NHWC)"

    class TorchUNet(nn.Module):
        """tinyseg's UNet in torch: the same blocks under the same names (encoders, pools, bottleneck, ups,
        decoders, head), NCHW, returning the head's output (logits unless built with logits=False)."""

        def __init__(self, encoders, pools, bottleneck, ups, decoders, head):
            super().__init__()
            self.encoders = nn.ModuleList(encoders)
            self.pools = nn.ModuleList(pools)
            self.bottleneck = bottleneck
            self.ups = nn.ModuleList(ups)
            self.decoders = nn.ModuleList(decoders)
            self.head = head

        def forward(self, x):
            skips = []
            for enc, pool in zip(self.encoders, self.pools):
                x = enc(x)
                skips.append(x)
                x = pool(x)
            x = self.bottleneck(x)
            for up, dec, skip in zip(self.ups, self.decoders, reversed(skips)):
                x = dec(torch.cat([up(x), skip], dim=1))  # channels: [upsampled | skip], as tinyseg
            return self.head(x)

    class TorchGraph(nn.Module):
        """A tinyseg graph model (Model(inputs, outputs)) in torch: one module per layer, under the layer's name
        (`self.layers[name]`), and a forward that runs the graph's calls in tinyseg's order on NCHW tensors.

        plan: [(output key, layer name, [input keys], list_input)] for every call; a layer called twice is
        one module called twice, so its weights are shared as in tinyseg.
        """

        def __init__(self, modules, plan, inputs, outputs, list_outputs):
            super().__init__()
            self.layers = nn.ModuleDict(modules)
            self.plan, self.input_keys, self.output_keys = plan, inputs, outputs
            self.list_outputs = list_outputs

        def forward(self, *xs):
            if len(xs) != len(self.input_keys):
                raise ValueError(f"TorchGraph: the model has {len(self.input_keys)} inputs, got {len(xs)}")
            values = dict(zip(self.input_keys, xs))
            for out, name, ins, list_input in self.plan:
                args = [values[k] for k in ins]
                values[out] = self.layers[name](args if list_input else args[0])
            outs = [values[k] for k in self.output_keys]
            return outs if self.list_outputs else outs[0]

    class TorchDiceLoss(nn.Module):
        """tinyseg's DiceLoss in torch ops (PyTorch has none): logits (N, K, H, W), labels (N, H, W).

            p = softmax(z, dim=1) (sigmoid for mode='binary'),  t = onehot(labels),  V = pixels not ignored
            D_k = (2 sum_V p_k t_k + s) / (sum_V p_k + sum_V t_k + s),   L = 1 - mean_k D_k
        """

        def __init__(self, smooth=1.0, ignore_index=None, mode="multiclass"):
            super().__init__()
            self.smooth, self.ignore_index, self.mode = smooth, ignore_index, mode

        def forward(self, logits, target):
            if self.ignore_index is None:
                valid = torch.ones_like(target, dtype=torch.bool)
            else:
                valid = target != self.ignore_index
            target = torch.where(valid, target, torch.zeros_like(target))
            if self.mode == "multiclass":
                p = torch.softmax(logits, dim=1)
                t = F.one_hot(target.long(), logits.shape[1]).movedim(-1, 1).to(logits.dtype)
            else:
                p = torch.sigmoid(logits)
                t = target.to(logits.dtype).unsqueeze(1)
            v = valid.unsqueeze(1).to(logits.dtype)
            dims = [0] + list(range(2, logits.dim()))
            inter = (p * t * v).sum(dims)
            total = (p * v).sum(dims) + (t * v).sum(dims)
            return 1 - ((2 * inter + self.smooth) / (total + self.smooth)).mean()

    class TorchCEDiceLoss(nn.Module):
        """ce_weight * nn.CrossEntropyLoss + dice_weight * TorchDiceLoss, on the same logits and labels."""

        def __init__(self, ce, dice, ce_weight, dice_weight):
            super().__init__()
            self.ce, self.dice, self.ce_weight, self.dice_weight = ce, dice, ce_weight, dice_weight

        def forward(self, logits, target):
            return self.ce_weight * self.ce(logits, target) + self.dice_weight * self.dice(logits, target)

    classes = dict(KerasConv2d=KerasConv2d, KerasSeparableConv2d=KerasSeparableConv2d,
                   KerasConvTranspose2d=KerasConvTranspose2d, KerasLinear=KerasLinear,
                   KerasMaxPool2d=KerasMaxPool2d, KerasAvgPool2d=KerasAvgPool2d, KerasBatchNorm=KerasBatchNorm,
                   TorchUNet=TorchUNet, TorchGraph=TorchGraph, TorchDiceLoss=TorchDiceLoss, TorchCEDiceLoss=TorchCEDiceLoss,
                   KerasGlobalMaxPool2d=KerasGlobalMaxPool2d, KerasGlobalAvgPool2d=KerasGlobalAvgPool2d,
                   KerasCropping2d=KerasCropping2d, KerasReshape=KerasReshape, KerasAdd=KerasAdd,
                   KerasSubtract=KerasSubtract, KerasMultiply=KerasMultiply, KerasAverage=KerasAverage,
                   KerasConcatenate=KerasConcatenate)
    for cls in classes.values():         # so pickle (torch.save of a whole module) finds them by name
        cls.__module__, cls.__qualname__ = __name__, cls.__name__
    return SimpleNamespace(activation_module=activation_module, **classes)


# =========================================================================================================
# Layers and models
# =========================================================================================================
def _activation_name(layer):
    return layer.activation.activation_name


MERGE_LAYERS = (Add, Subtract, Multiply, Average, Concatenate)      # several inputs: merge_layer_to_torch


def _new_module(layer, logits=False):
    """The torch module of one built tinyseg layer, with fresh (unconverted) weights.

    logits=True leaves out the layer's activation (what model.call(..., logits=True) does to the last layer).
    """
    m = torch_modules()                  # first: explains how to install torch if it is missing
    from torch import nn
    if not layer.built:
        raise ValueError(f"{layer.name}: build the layer first (give input_shape, or run it once) so its "
                         "weights exist")
    act = "linear" if logits else None
    if isinstance(layer, Conv2DTranspose):
        return m.KerasConvTranspose2d(layer.input_shape[-1], layer.filters, layer.kernel_size, layer.strides,
                                      layer.padding, layer.use_bias, act or _activation_name(layer))
    if isinstance(layer, Conv2D):
        return m.KerasConv2d(layer.input_shape[-1], layer.filters, layer.kernel_size, layer.strides,
                             layer.padding, layer.use_bias, act or _activation_name(layer), layer.dilation_rate)
    if isinstance(layer, DepthwiseConv2D):
        c = layer.input_shape[-1]
        return m.KerasConv2d(c, c * layer.depth_multiplier, layer.kernel_size, layer.strides, layer.padding,
                             layer.use_bias, act or _activation_name(layer), layer.dilation_rate, groups=c)
    if isinstance(layer, SeparableConv2D):
        return m.KerasSeparableConv2d(layer.input_shape[-1], layer.filters, layer.kernel_size, layer.strides,
                                      layer.padding, layer.use_bias, act or _activation_name(layer),
                                      layer.depth_multiplier, layer.dilation_rate)
    if isinstance(layer, Dense):
        return m.KerasLinear(layer.input_shape[0], layer.units, layer.use_bias, act or _activation_name(layer))
    if isinstance(layer, (ActivationLayer, Activation)):
        if logits:
            return nn.Identity()
        name = layer.activation_name if isinstance(layer, ActivationLayer) else _activation_name(layer)
        return m.activation_module(name)
    if isinstance(layer, MaxPooling2D):
        return m.KerasMaxPool2d(layer.pool_size, layer.strides, layer.padding)
    if isinstance(layer, AveragePooling2D):
        return m.KerasAvgPool2d(layer.pool_size, layer.strides, layer.padding)
    if isinstance(layer, UpSampling2D):
        if layer.interpolation == "bilinear":
            return nn.Upsample(scale_factor=layer.size, mode="bilinear", align_corners=False)
        return nn.Upsample(scale_factor=layer.size, mode="nearest")
    if isinstance(layer, BatchNormalization):
        return m.KerasBatchNorm(layer.input_shape[-1], layer.epsilon, bn_momentum_to_torch(layer.momentum),
                                scale=layer.scale, center=layer.center)
    if isinstance(layer, Flatten):
        return nn.Flatten()
    if isinstance(layer, Dropout):
        return nn.Dropout(layer.rate)
    if isinstance(layer, GlobalMaxPooling2D):
        return m.KerasGlobalMaxPool2d(layer.keepdims)
    if isinstance(layer, GlobalAveragePooling2D):
        return m.KerasGlobalAvgPool2d(layer.keepdims)
    if isinstance(layer, ZeroPadding2D):
        (top, bottom), (left, right) = layer.padding
        return nn.ZeroPad2d(torch_pad_widths((top, bottom, left, right)))
    if isinstance(layer, Cropping2D):
        return m.KerasCropping2d(layer.cropping)
    if isinstance(layer, Reshape):
        return m.KerasReshape(layer.target_shape)
    if isinstance(layer, MERGE_LAYERS):
        raise TypeError(f"{layer.name}: a {type(layer).__name__} takes a list of inputs, so it is no module of "
                        "a chain; merge_layer_to_torch(layer) gives its module, whose forward takes the list"
                        + (" (UNet's Concatenate is torch.cat inside TorchUNet)" if isinstance(layer, Concatenate)
                           else ""))
    raise TypeError(f"{layer.name}: no PyTorch module for a {type(layer).__name__} here")


def merge_layer_to_torch(layer):
    """The torch module of a merge layer: forward takes the list of the inputs' tensors (NCHW images), in the
    layer's order. Add -> KerasAdd, Subtract -> KerasSubtract, Multiply -> KerasMultiply, Average ->
    KerasAverage, Concatenate(axis) -> KerasConcatenate(axis). Merge layers have no weights to convert."""
    m = torch_modules()
    if isinstance(layer, Concatenate):
        return m.KerasConcatenate(layer.axis)
    modules = {Add: m.KerasAdd, Subtract: m.KerasSubtract, Multiply: m.KerasMultiply, Average: m.KerasAverage}
    for cls, module in modules.items():
        if isinstance(layer, cls):
            return module()
    raise TypeError(f"merge_layer_to_torch: {getattr(layer, 'name', layer)!r} is not a merge layer (one of "
                    f"{', '.join(c.__name__ for c in MERGE_LAYERS)}); use layer_to_torch")


def _to_state_dict(pairs):
    """{torch name: tensor} from (name, NumPy array) pairs."""
    torch = _require_torch()
    return OrderedDict((name, torch.tensor(np.ascontiguousarray(a))) for name, a in pairs)


def layer_to_torch(layer, logits=False, feature_perm=None):
    """One built tinyseg layer as a torch module with its weights (converted) in the layer's dtype.

    logits=True leaves out the layer's activation. feature_perm: see layer_weights_to_torch (a Dense or 1-D
    BatchNorm converted on its own, after a Flatten, needs flatten_permutation of the Flatten's input shape).
    """
    module = _new_module(layer, logits).to(torch_dtype(layer.dtype))
    state = _to_state_dict(layer_weights_to_torch(layer, feature_perm=feature_perm).items())
    if isinstance(layer, BatchNormalization):
        state["num_batches_tracked"] = module.num_batches_tracked.clone()
    module.load_state_dict(state)
    return module


def _feature_perms(layers):
    """For each layer of a Sequential: the flatten_permutation of its input features, or None.

    After a Flatten of (H, W, C) images the features are in PyTorch's (C, H, W) order until the next Dense,
    which maps them back to one order both frameworks share.
    """
    perm, perms = None, []
    for layer in layers:
        perms.append(perm)
        if isinstance(layer, Flatten):
            if len(layer.input_shape) == 3:
                perm = flatten_permutation(layer.input_shape)
            elif len(layer.input_shape) != 1:
                raise ValueError(f"{layer.name}: only (H, W, C) images or vectors can be flattened for PyTorch, "
                                 f"got input shape {layer.input_shape}")
        elif isinstance(layer, Dense):
            perm = None
        elif perm is not None and not isinstance(layer, (BatchNormalization, Dropout, ActivationLayer,
                                                          Activation)):
            raise ValueError(f"{layer.name}: a {type(layer).__name__} between a Flatten and the next Dense has "
                             "no PyTorch conversion (the features are in a different order there)")
    if perm is not None:
        raise ValueError("the model ends with flattened image features, which PyTorch orders (C, H, W) and "
                         "tinyseg (H, W, C): end it with a Dense layer to compare outputs")
    return perms


def _named_layers(model):
    """(torch module path, layer, feature_perm) for every layer that has a torch module, in model order."""
    if isinstance(model, UNet):
        out = [(f"encoders.{i}.{j}", layer) for i, block in enumerate(model.encoders)
               for j, layer in enumerate(block)]
        out += [(f"pools.{i}", pool) for i, pool in enumerate(model.pools)]
        out += [(f"bottleneck.{j}", layer) for j, layer in enumerate(model.bottleneck)]
        out += [(f"ups.{i}.{j}", layer) for i, block in enumerate(model.ups) for j, layer in enumerate(block)]
        out += [(f"decoders.{i}.{j}", layer) for i, block in enumerate(model.decoders)
                for j, layer in enumerate(block)]
        out.append(("head", model.head))
        return [(path, layer, None) for path, layer in out]
    if isinstance(model, Sequential):
        return [(str(i), layer, perm) for i, (layer, perm) in enumerate(zip(model.layers,
                                                                             _feature_perms(model.layers)))]
    if isinstance(model, Model) and model._graph is not None:
        perms = _graph_feature_perms(model)
        out = []
        for layer in model.layers:
            if isinstance(layer, InputLayer):
                continue
            if "." in layer.name or not layer.name:
                raise ValueError(f"{layer.name!r}: a layer name used as a torch module name must be non-empty "
                                 "and hold no '.'")
            out.append((f"layers.{layer.name}", layer, perms.get(layer)))
        return out
    raise TypeError(f"expected a built tinyseg Model (Sequential, UNet or Model(inputs, outputs)), got "
                    f"{type(model).__name__} (use layer_to_torch for a single layer)")


_PASS_FEATURES = (BatchNormalization, Dropout, ActivationLayer, Activation)   # keep a flattened feature order


def _graph_feature_perms(model):
    """{layer: flatten_permutation of its input features} for the layers that read flattened image features
    (a Dense or a 1-D BatchNorm after a Flatten, possibly through dropout, activations and elementwise merges
    of equally ordered features), as _feature_perms does for a chain."""
    graph = model._graph
    perm_of = {id(t): None for t in graph.inputs}       # tensor -> the torch order of its features, or None
    layer_perm = {}

    def record(layer, perm):
        if layer in layer_perm and not _same_perm(layer_perm[layer], perm):
            raise ValueError(f"{layer.name}: a layer shared by calls whose features are ordered differently has "
                             "no PyTorch conversion")
        layer_perm[layer] = perm

    for node in graph.nodes:
        layer, ins = node.layer, [perm_of[id(t)] for t in node.inputs]
        perm_in = ins[0]
        if any(not _same_perm(p, perm_in) for p in ins[1:]) or (perm_in is not None and
                                                                 isinstance(layer, Concatenate)):
            raise ValueError(f"{layer.name}: joins flattened image features, which PyTorch orders (C, H, W) and "
                             "tinyseg (H, W, C); join them after a Dense")
        if isinstance(layer, Flatten):
            if perm_in is not None:
                raise ValueError(f"{layer.name}: a Flatten of flattened features has no PyTorch conversion")
            perm_out = flatten_permutation(layer.input_shape) if len(layer.input_shape) == 3 else None
        elif isinstance(layer, Dense):
            record(layer, perm_in)
            perm_out = None
        elif isinstance(layer, _PASS_FEATURES) or layer.multiple_inputs:
            record(layer, perm_in)
            perm_out = perm_in
        elif perm_in is not None:
            raise ValueError(f"{layer.name}: a {type(layer).__name__} between a Flatten and the next Dense has "
                             "no PyTorch conversion (the features are in a different order there)")
        else:
            perm_out = None
        perm_of[id(node.output)] = perm_out
    if any(perm_of[id(t)] is not None for t in graph.outputs):
        raise ValueError("the model ends with flattened image features, which PyTorch orders (C, H, W) and "
                         "tinyseg (H, W, C): end it with a Dense layer to compare outputs")
    return {layer: p for layer, p in layer_perm.items() if p is not None}


def _same_perm(a, b):
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


def _graph_module(model, logits):
    """The TorchGraph of a functional model: a module per layer, and the plan of its calls."""
    m = torch_modules()
    graph = model._graph
    output_layers = {t.node.layer for t in graph.outputs}
    modules = {}
    for _, layer, _ in _named_layers(model):
        if logits and layer in output_layers and len(layer.inbound_nodes) > 1 and \
                sum(n.layer is layer for n in graph.nodes) > 1:
            raise ValueError(f"{layer.name}: the output layer is also called elsewhere in the graph; export "
                             "with logits=False")
        modules[layer.name] = merge_layer_to_torch(layer) if layer.multiple_inputs else \
            _new_module(layer, logits and layer in output_layers)
    key = {id(t): f"input_{i}" for i, t in enumerate(graph.inputs)}
    plan = []
    for i, node in enumerate(graph.nodes):
        key[id(node.output)] = f"t{i}"
        plan.append((f"t{i}", node.layer.name, [key[id(t)] for t in node.inputs], node.list_input))
    return m.TorchGraph(modules, plan, [key[id(t)] for t in graph.inputs], [key[id(t)] for t in graph.outputs],
                        model._list_outputs)


def _model_dtype(model):
    dtypes = {layer.dtype for layer in model.layers}
    if len(dtypes) != 1:
        raise ValueError(f"the model's layers mix dtypes {sorted(d.name for d in dtypes)}; PyTorch needs one")
    return dtypes.pop()


def to_torch(model, logits=True):
    """The torch.nn.Module that computes what `model` computes, with its weights converted.

    Input NCHW images (or (N, D) vectors); output NCHW (or (N, K)): model.call(x, logits=True) by default,
    which is what PyTorch's losses take; logits=False includes the final activation (= model.predict).
    Module structure and state_dict names: Sequential -> nn.Sequential, keys '<layer index>.weight', ...;
    UNet -> TorchUNet, keys 'encoders.<level>.<layer>.weight', 'ups.<i>.<j>...', 'head.weight'; any other
    Model(inputs, outputs) -> TorchGraph, keys 'layers.<layer name>.weight', ..., whose forward takes one NCHW
    tensor per input (module(x1, x2)) and returns one per output.
    The module is returned in training mode (PyTorch's default); call .eval() for tinyseg's training=False.
    """
    m = torch_modules()
    from torch import nn
    named = _named_layers(model)
    last = model.layers[-1] if isinstance(model, Sequential) else \
        model.outputs[0].node.layer if len(model.outputs) == 1 else None
    if not isinstance(model, (UNet, Sequential)):
        module = _graph_module(model, logits)
    elif isinstance(model, UNet):
        def block(layers):
            return nn.Sequential(*[_new_module(layer) for layer in layers])
        module = m.TorchUNet([block(b) for b in model.encoders], [_new_module(p) for p in model.pools],
                             block(model.bottleneck), [block(b) for b in model.ups],
                             [block(b) for b in model.decoders], _new_module(model.head, logits))
    else:
        module = nn.Sequential(*[_new_module(layer, logits and layer is last) for _, layer, _ in named])
    module.output_activation = output_activation(last) if last is not None else \
        [output_activation(t.node.layer) for t in model.outputs]
    module.to(torch_dtype(_model_dtype(model)))
    module.load_state_dict(torch_state_dict(model))
    return module


def _model_arrays(model):
    """(torch name, NumPy array) for every weight of the model, in to_torch(model).state_dict() order."""
    for path, layer, perm in _named_layers(model):
        for tname, array in layer_weights_to_torch(layer, feature_perm=perm).items():
            yield f"{path}.{tname}", array
        if isinstance(layer, BatchNormalization):
            yield f"{path}.num_batches_tracked", np.array(0)      # unused with a fixed momentum


def torch_state_dict(model):
    """The model's weights as an OrderedDict {torch name: tensor} for to_torch(model).load_state_dict().

    Layouts and names as in the module docstring's table; batch norms also get num_batches_tracked = 0.
    """
    return _to_state_dict(_model_arrays(model))


def torch_gradients(model):
    """The gradients of the model's last backward, as {torch parameter name: tensor} laid out as param.grad.

    Compare with {name: p.grad for name, p in module.named_parameters()} after a torch backward.
    """
    pairs = []
    for path, layer, perm in _named_layers(model):
        if layer.params:
            pairs += [(f"{path}.{t}", a) for t, a in
                      layer_weights_to_torch(layer, arrays=layer.grads, feature_perm=perm).items()]
    return _to_state_dict(pairs)


def load_torch_state_dict(model, state_dict):
    """Copy a PyTorch state_dict (from to_torch(model), possibly trained since) into the model's weights.

    Every key the model needs must be there and no other (num_batches_tracked is accepted and ignored: a Keras
    batch norm has a fixed momentum); the arrays are converted back to Keras's layouts and cast to the model's
    dtype. The model is changed only when every array has been found and converted.
    """
    named = _named_layers(model)
    expected = {name for name, _ in _model_arrays(model)}
    given = set(state_dict)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        raise KeyError(f"load_torch_state_dict: the state_dict does not match the model: missing {missing}, "
                       f"unexpected {unexpected}")
    all_weights = []
    for path, layer, perm in named:
        prefix = path + "."
        tensors = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        weights = layer_weights_from_torch(layer, tensors, perm)
        for w, own, name in zip(weights, layer.get_weights(), layer.weight_names()):
            if w.shape != own.shape:
                raise ValueError(f"load_torch_state_dict: {layer.name} '{name}' must have shape {own.shape} "
                                 f"(tinyseg's layout), got {w.shape} after conversion from the state_dict")
        all_weights.append(weights)
    for (_, layer, _), weights in zip(named, all_weights):
        if weights:
            layer.set_weights(weights)


# =========================================================================================================
# Losses and optimizers
# =========================================================================================================
def to_torch_loss(loss, dtype="float32"):
    """The torch loss module computing what the tinyseg loss computes, on to_torch(model)'s logits and
    targets_to_torch(loss, y_true). dtype: of the class weights (the model's dtype)."""
    m = torch_modules()
    from torch import nn
    if isinstance(loss, tl.CategoricalCrossentropy):
        module = nn.CrossEntropyLoss()                       # probability targets (N, K, ...) allowed
    elif isinstance(loss, tl.SparseCategoricalCrossentropy):
        module = _torch_ce(loss)
    elif isinstance(loss, tl.BinaryCrossentropy):
        module = nn.BCEWithLogitsLoss()
    elif isinstance(loss, tl.MeanSquaredError):
        module = nn.MSELoss()
    elif isinstance(loss, tl.DiceLoss):
        module = m.TorchDiceLoss(loss.smooth, loss.ignore_index, loss.mode)
    elif isinstance(loss, tl.CEDiceLoss):
        module = m.TorchCEDiceLoss(_torch_ce(loss.ce), m.TorchDiceLoss(loss.dice.smooth, loss.dice.ignore_index),
                                   loss.ce_weight, loss.dice_weight)
    else:
        raise TypeError(f"no PyTorch equivalent for the loss {type(loss).__name__}")
    return module.to(torch_dtype(dtype))


def _torch_ce(loss):
    _require_torch()
    from torch import nn
    weight = None if loss.class_weight is None else to_tensor(loss.class_weight)
    # PyTorch always ignores some index (-100 by default); tinyseg's None ignores nothing, and labels are >= 0
    ignore = -100 if loss.ignore_index is None else int(loss.ignore_index)
    return nn.CrossEntropyLoss(weight=weight, ignore_index=ignore)


def targets_to_torch(loss, y_true, dtype="float32"):
    """tinyseg targets for `loss` as the tensor its to_torch_loss module expects.

    one-hot / probability targets (N, [H, W,] K) -> (N, K, [H, W]) floats;  class labels (N, [H, W]) (a
    trailing axis of 1 dropped) -> int64;  binary masks (N, H, W) or (N, H, W, 1) -> (N, 1, H, W) floats;
    MSE targets: as y_pred, NCHW.
    """
    y = to_numpy(y_true)
    labels = isinstance(loss, (tl.SparseCategoricalCrossentropy, tl.CEDiceLoss, tl.DiceLoss))
    if labels and y.ndim in (2, 4) and y.shape[-1] == 1:
        y = y[..., 0]
    if isinstance(loss, tl.DiceLoss) and loss.mode == "binary":
        return to_tensor(y, dtype)                         # 0/1 (or soft) masks, compared with sigmoid(z)
    if labels:
        return to_tensor(y.astype(np.int64))
    if isinstance(loss, tl.BinaryCrossentropy) and y.ndim == 3:
        y = y[..., None]
    return to_tensor(nhwc_to_nchw(y), dtype)


def to_torch_optimizer(optimizer, params):
    """The torch.optim optimizer taking the same steps as the (fresh) tinyseg optimizer.

    SGD (momentum, Nesterov) -> torch.optim.SGD; Adam(epsilon_style='torch') -> torch.optim.Adam;
    AdamW(epsilon_style='torch') -> torch.optim.AdamW;
    RMSprop(epsilon_style='torch') -> torch.optim.RMSprop(alpha=rho, eps, momentum, centered). A Keras-style
    Adam or RMSprop has no fixed torch eps (see the optimizers module) and is refused.
    """
    torch = _require_torch()
    if optimizer.iterations:
        raise ValueError(f"to_torch_optimizer: the {optimizer.name} optimizer has already taken "
                         f"{optimizer.iterations} steps; its state is not converted, so convert a fresh one")
    # What a torch optimizer does not hold: a schedule (torch.optim.lr_scheduler steps it), clipping
    # (torch.nn.utils.clip_grad_norm_ / clip_grad_value_ before the step), and decoupled decay (only AdamW's)
    if isinstance(optimizer._learning_rate, topt.LearningRateSchedule):
        raise ValueError("to_torch_optimizer: a learning-rate schedule is not converted; give torch the rate with "
                         "a torch.optim.lr_scheduler (see tinyseg/schedules.py for the matching ones)")
    clipping = {k: getattr(optimizer, k) for k in ("clipnorm", "clipvalue", "global_clipnorm")
                if getattr(optimizer, k) is not None}
    if clipping:
        raise ValueError(f"to_torch_optimizer: {clipping} is not converted; torch clips before the step, with "
                         "torch.nn.utils.clip_grad_norm_ or clip_grad_value_")
    if isinstance(optimizer, topt.AdamW):
        if optimizer.epsilon_style != "torch":
            raise ValueError("to_torch_optimizer: create the AdamW with epsilon_style='torch' (Adam's epsilon)")
        return torch.optim.AdamW(params, lr=optimizer.learning_rate, betas=(optimizer.beta_1, optimizer.beta_2),
                                 eps=optimizer.epsilon, weight_decay=optimizer.weight_decay)
    if optimizer.weight_decay:
        raise ValueError(f"to_torch_optimizer: {optimizer.name}'s weight_decay is decoupled (theta -= lr*wd*theta); "
                         "torch's weight_decay of SGD, Adam and RMSprop adds wd*theta to the gradient instead")
    if isinstance(optimizer, topt.SGD):
        return torch.optim.SGD(params, lr=optimizer.learning_rate, momentum=optimizer.momentum,
                               nesterov=optimizer.nesterov)
    if isinstance(optimizer, topt.Adam):
        if optimizer.epsilon_style != "torch":
            raise ValueError("to_torch_optimizer: a Keras-style Adam adds epsilon before the bias correction, "
                             "which no fixed torch eps reproduces; create it with Adam(epsilon_style='torch') "
                             "(or set torch's eps to adam_epsilon_keras_to_torch(eps, beta_2, t) before step t)")
        return torch.optim.Adam(params, lr=optimizer.learning_rate, betas=(optimizer.beta_1, optimizer.beta_2),
                                eps=optimizer.epsilon)
    if isinstance(optimizer, topt.RMSprop):
        if optimizer.epsilon_style != "torch":
            raise ValueError("to_torch_optimizer: a Keras-style RMSprop adds epsilon inside the square root, "
                             "sqrt(v + eps), and torch outside it, sqrt(v) + eps: no fixed torch eps reproduces "
                             "it; create it with RMSprop(epsilon_style='torch')")
        return torch.optim.RMSprop(params, lr=optimizer.learning_rate, alpha=optimizer.rho, eps=optimizer.epsilon,
                                   momentum=optimizer.momentum, centered=optimizer.centered)
    raise TypeError(f"no PyTorch optimizer for {type(optimizer).__name__}")


# =========================================================================================================
# Comparing
# =========================================================================================================
def weight_differences(model, module):
    """{name: relative_error} between the model's weights and the module's state_dict, entry by entry."""
    mine = torch_state_dict(model)
    theirs = module.state_dict()
    return {name: relative_error(mine[name], theirs[name]) for name in mine
            if not name.endswith("num_batches_tracked")}


def gradient_differences(model, module):
    """{name: relative_error} between the model's last gradients and the module's param.grad."""
    mine = torch_gradients(model)
    return {name: relative_error(mine[name], p.grad) for name, p in module.named_parameters()}


__all__ = ["adam_epsilon_keras_to_torch", "bn_momentum_from_torch", "bn_momentum_to_torch",
           "conv_kernel_from_torch", "conv_kernel_to_torch", "conv_transpose_kernel_from_torch",
           "depthwise_kernel_from_torch", "depthwise_kernel_to_torch",
           "conv_transpose_kernel_to_torch", "dense_kernel_from_torch", "dense_kernel_to_torch",
           "flatten_permutation", "gradient_differences", "keras_pads", "layer_to_torch",
           "layer_weights_from_torch", "layer_weights_to_torch", "load_torch_state_dict", "merge_layer_to_torch",
           "nchw_to_nhwc", "nhwc_axis_to_nchw", "nhwc_to_nchw", "relative_error", "targets_to_torch", "to_numpy", "to_tensor", "to_torch",
           "to_torch_loss", "to_torch_optimizer", "torch_dtype", "torch_gradients", "torch_modules",
           "torch_pad_widths", "torch_state_dict", "transposed_conv_crop", "weight_differences"]
