"""The conventions where Keras (and tinyseg) and PyTorch differ, each converted by one function here.

This module needs only NumPy: read it without PyTorch installed. It is the one home of the table below;
the README's copy is CONVENTIONS_TABLE, checked equal by a test.

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

How close the two agree (measured by the tests in tests/parity/: test_parity_*.py, test_interop.py and
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

import numpy as np

from ..layers.geometry import conv_geometry

CONVENTIONS_TABLE = __doc__[__doc__.index("| What |"):__doc__.index("\n\n", __doc__.index("| What |"))]


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
