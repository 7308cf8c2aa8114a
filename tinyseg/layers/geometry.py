"""Shape checks and output-size rules shared by convolution and pooling (Keras's, per spatial axis).

    'valid':  out = (size - k) // stride + 1                       no padding
    'same':   out = ceil(size / stride)                            padding added so that this holds:
              total = max((out - 1) * stride + k - size, 0)
              before = total // 2,  after = total - before          (the extra row, if odd, goes after:
                                                                    bottom/right, as TensorFlow and Keras do)

    k is the window's effective size: a kernel of `kernel` taps with dilation d (atrous convolution, taps d
    pixels apart) spans k = (kernel - 1) * d + 1 input pixels; without dilation (d = 1), k = kernel.

A transposed convolution runs the rule backwards: it is the adjoint of the convolution that maps its
output size back to its input size:

    'valid':  out = size * stride + max(kernel - stride, 0)
    'same':   out = size * stride
"""
import math
import numbers

from ..kernels.im2col import effective_kernel  # (kernel - 1) * dilation + 1: a dilated window's span

PADDINGS = ("valid", "same")


def check_image_shape(layer, input_shape):
    """Refuse anything but images: input_shape (without the batch axis) must be (H, W, C)."""
    if len(input_shape) != 3:
        raise ValueError(f"{layer.name}: expects images (batch, H, W, C), got input shape (batch,) + "
                         f"{tuple(input_shape)}")


def check_padding(padding):
    """'valid' or 'same' (any case), lower-cased; a ValueError for anything else."""
    if not isinstance(padding, str) or padding.lower() not in PADDINGS:
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    return padding.lower()


def pair(value, argument):
    """Turn 3 or (3, 3) into (3, 3); refuse anything that is not one or two positive integers."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    try:
        a, b = value
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in (a, b)) or a < 1 or b < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"{argument} must be a positive integer or a pair of them, got {value!r}") from None
    return int(a), int(b)


def conv_output_length(size, kernel, stride, padding, dilation=1):
    """Return (out, pad_before, pad_after) for one axis of a convolution or pooling."""
    k = effective_kernel(kernel, dilation)
    if padding == "valid":
        if size < k:
            window = f"{k} (kernel {kernel}, dilation {dilation})" if dilation > 1 else f"{k}"
            raise ValueError(f"input size {size} is smaller than the window {window} with padding='valid'")
        return (size - k) // stride + 1, 0, 0
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + k - size, 0)
    return out, total // 2, total - total // 2


def conv_geometry(in_hw, kernel, strides, padding, dilation=(1, 1)):
    """(OH, OW) and pads (top, bottom, left, right) for a 2-D window over an (H, W) input."""
    oh, pt, pb = conv_output_length(in_hw[0], kernel[0], strides[0], padding, dilation[0])
    ow, pl, pr = conv_output_length(in_hw[1], kernel[1], strides[1], padding, dilation[1])
    return (oh, ow), (pt, pb, pl, pr)


def deconv_output_length(size, kernel, stride, padding):
    """Output size of one axis of a transposed convolution (Keras's rule without output_padding)."""
    if padding == "valid":
        return size * stride + max(kernel - stride, 0)
    return size * stride


def check_same_batch(layer, grad, x_shape):
    """A gradient must have the batch size of the forward it goes back through (dx is (N, ...) of that x)."""
    if grad.shape[0] != x_shape[0]:
        raise ValueError(f"{layer.name}: grad has batch size {grad.shape[0]} but the last forward had "
                         f"{x_shape[0]}")
