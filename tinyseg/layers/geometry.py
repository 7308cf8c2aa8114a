"""Output-size rules shared by convolution and pooling (Keras's, per spatial axis).

    'valid':  out = (size - kernel) // stride + 1                  no padding
    'same':   out = ceil(size / stride)                            padding added so that this holds:
              total = max((out - 1) * stride + kernel - size, 0)
              before = total // 2,  after = total - before          (the extra row, if odd, goes after:
                                                                    bottom/right, as TensorFlow and Keras do)

A transposed convolution runs the rule backwards: it is the adjoint of the convolution that maps its
output size back to its input size:

    'valid':  out = size * stride + max(kernel - stride, 0)
    'same':   out = size * stride
"""
import math
import numbers

PADDINGS = ("valid", "same")


def check_padding(padding):
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


def conv_output_length(size, kernel, stride, padding):
    """Return (out, pad_before, pad_after) for one axis of a convolution or pooling."""
    if padding == "valid":
        if size < kernel:
            raise ValueError(f"input size {size} is smaller than the window {kernel} with padding='valid'")
        return (size - kernel) // stride + 1, 0, 0
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def conv_geometry(in_hw, kernel, strides, padding):
    """(OH, OW) and pads (top, bottom, left, right) for a 2-D window over an (H, W) input."""
    oh, pt, pb = conv_output_length(in_hw[0], kernel[0], strides[0], padding)
    ow, pl, pr = conv_output_length(in_hw[1], kernel[1], strides[1], padding)
    return (oh, ow), (pt, pb, pl, pr)


def deconv_output_length(size, kernel, stride, padding):
    """Output size of one axis of a transposed convolution (Keras's rule without output_padding)."""
    if padding == "valid":
        return size * stride + max(kernel - stride, 0)
    return size * stride
