"""torch.nn modules that follow Keras's rules, so that a tinyseg model has an exact PyTorch twin.

This module imports torch at the top: the rest of tinyseg.interop imports it only inside the functions that
need it, so tinyseg itself runs without torch. Each module says which convention of conventions.py it keeps.
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

from ..layers.geometry import deconv_output_length
from .conventions import (
    keras_pads,
    nhwc_axis_to_nchw,
    torch_pad_widths,
    transposed_conv_crop,
)


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


class _KerasPadding:
    """What the two pools share: Keras's padding ('valid' or 'same'), and the pads it gives an input."""

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, keras_padding={self.keras_padding!r}"

    def pads(self, x):
        """(top, bottom, left, right) for this input's height and width."""
        return keras_pads(x.shape[-2:], self.kernel_size, self.stride, self.keras_padding)


class KerasMaxPool2d(_KerasPadding, nn.MaxPool2d):
    """nn.MaxPool2d with Keras's padding: asymmetric 'same' pads are -inf cells that never win."""

    def __init__(self, pool_size, strides, keras_padding):
        super().__init__(pool_size, strides)
        self.keras_padding = keras_padding

    def forward(self, x):
        top, bottom, left, right = self.pads(x)
        if top == bottom and left == right:
            return F.max_pool2d(x, self.kernel_size, self.stride, (top, left))
        x = F.pad(x, torch_pad_widths((top, bottom, left, right)), value=-math.inf)
        return F.max_pool2d(x, self.kernel_size, self.stride)


class KerasAvgPool2d(_KerasPadding, nn.AvgPool2d):
    """nn.AvgPool2d with Keras's padding: a window averages only its real (non-padded) pixels."""

    def __init__(self, pool_size, strides, keras_padding):
        super().__init__(pool_size, strides, count_include_pad=False)
        self.keras_padding = keras_padding

    def forward(self, x):
        top, bottom, left, right = self.pads(x)
        if top == bottom and left == right:
            return F.avg_pool2d(x, self.kernel_size, self.stride, (top, left), count_include_pad=False)
        widths = torch_pad_widths((top, bottom, left, right))
        sums = F.avg_pool2d(F.pad(x, widths), self.kernel_size, self.stride, divisor_override=1)
        ones = torch.ones((1, 1) + tuple(x.shape[-2:]), dtype=x.dtype, device=x.device)
        counts = F.avg_pool2d(F.pad(ones, widths), self.kernel_size, self.stride, divisor_override=1)
        return sums / counts


class KerasMaxUnpool2d(nn.Module):
    """tinyseg's MaxUnpooling2D on NCHW: forward([pooled, pool_input]) finds each window's argmax in
    pool_input with F.max_pool2d(return_indices=True) and puts pooled's values there with F.max_unpool2d.
    'valid' padding and windows that do not overlap (strides >= pool_size) only: there the two agree."""

    def __init__(self, pool_size, strides, keras_padding):
        super().__init__()
        if keras_padding != "valid" or any(s < k for s, k in zip(strides, pool_size)):
            raise ValueError(f"KerasMaxUnpool2d: only padding='valid' with strides >= pool_size has a PyTorch "
                             f"twin, got pool_size={pool_size}, strides={strides}, padding={keras_padding!r}")
        self.kernel_size, self.stride = tuple(pool_size), tuple(strides)

    def forward(self, inputs):
        pooled, pool_input = inputs
        _, indices = F.max_pool2d(pool_input, self.kernel_size, self.stride, return_indices=True)
        return F.max_unpool2d(pooled, indices, self.kernel_size, self.stride, output_size=pool_input.shape[-2:])


class KerasResizing(nn.Module):
    """Keras's Resizing(height, width, interpolation) on NCHW: crop (crop_to_aspect_ratio), then
    F.interpolate to (height, width): 'bilinear' with align_corners=False, 'nearest' as 'nearest-exact'."""

    def __init__(self, height, width, interpolation, crops=((0, 0), (0, 0))):
        super().__init__()
        self.size, self.crops = (height, width), crops
        self.mode = "bilinear" if interpolation == "bilinear" else "nearest-exact"

    def forward(self, x):
        (top, bottom), (left, right) = self.crops
        x = x[:, :, top:x.shape[-2] - bottom, left:x.shape[-1] - right]
        if self.mode == "bilinear":
            return F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return F.interpolate(x, size=self.size, mode=self.mode)


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


class _KerasGlobalPool2d(nn.Module):
    """A reduction over (H, W) of NCHW -> (N, C), or (N, C, 1, 1) with keepdims; `reduce` says which."""

    reduce = None

    def __init__(self, keepdims=False):
        super().__init__()
        self.keepdims = keepdims

    def forward(self, x):
        return self.reduce(x, dim=(2, 3), keepdim=self.keepdims)       # a builtin: not bound to self


class KerasGlobalMaxPool2d(_KerasGlobalPool2d):
    """Keras's GlobalMaxPooling2D on NCHW: the max over (H, W).

    amax shares the gradient equally among tied maxima, where tinyseg gives it all to the first one."""

    reduce = torch.amax


class KerasGlobalAvgPool2d(_KerasGlobalPool2d):
    """Keras's GlobalAveragePooling2D on NCHW: the mean over (H, W)."""

    reduce = torch.mean


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


class KerasAverage(KerasAdd):
    """(x_1 + x_2 + ... + x_n) / n: KerasAdd's sum, divided by n."""

    def forward(self, inputs):
        return super().forward(inputs) / len(inputs)


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
