"""Reshaping layers: move values around without computing anything new, and without parameters.

ZeroPadding2D(padding) puts rows and columns of zeros around every image; Cropping2D(cropping) cuts rows and
columns away. Both take Keras's forms: an int p (p everywhere), a pair (p_h, p_w) (p_h rows at the top and at
the bottom, p_w columns at the left and at the right), or ((top, bottom), (left, right)).

    ZeroPadding2D   x (N, H, W, C) -> y (N, top + H + bottom, left + W + right, C)
                    y[n, top + i, left + j, c] = x[n, i, j, c],   zero on the border
                    dx[n, i, j, c] = dy[n, top + i, left + j, c]       (the border's gradient goes nowhere)

    Cropping2D      x (N, H, W, C) -> y (N, H - top - bottom, W - left - right, C)   (at least one row and
                    y[n, i, j, c] = x[n, top + i, left + j, c]                         column must remain)
                    dx = dy with `top` zero rows above, `bottom` below, `left`, `right` zero columns beside

Each is the other's transpose: the backward of padding is a crop, and the backward of cropping is a zero
padding, and the code says so by calling the same two functions, zero_pad2d and crop2d, both ways round.
(The original U-Net crops the encoder's features to the decoder's size before joining them: Cropping2D.)

Reshape(target_shape) reads each sample's values in row-major order (the last axis fastest, as NumPy and Keras
do) and lays them out in target_shape, given without the batch axis; one entry may be -1, which is worked out
from the size:

    x (N, d_1, ..., d_k) -> y (N, t_1, ..., t_m),      d_1 * ... * d_k = t_1 * ... * t_m
    y = x.reshape(N, t_1, ..., t_m),                   dx = dy.reshape(N, d_1, ..., d_k)

Every layer here returns a new array, forward and backward: NumPy's slices and reshapes are views that share
memory with their input, and an in-place edit of a view would silently change the array it came from.
"""
import numbers

import numpy as np

from .base import Layer
from .geometry import check_image_shape


def zero_pad2d(x, pads):
    """x (N, H, W, C) with `top` rows of zeros above it, `bottom` below, `left` and `right` columns beside."""
    (top, bottom), (left, right) = pads
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))


def crop2d(x, crops):
    """x (N, H, W, C) without its first `top` and last `bottom` rows, first `left` and last `right` columns.

    A copy, not a view of x."""
    (top, bottom), (left, right) = crops
    h, w = x.shape[1:3]
    return x[:, top:h - bottom, left:w - right, :].copy()


def two_pairs(value, argument):
    """Keras's padding/cropping forms -> ((top, bottom), (left, right)) of non-negative integers.

    p -> ((p, p), (p, p));   (p_h, p_w) -> ((p_h, p_h), (p_w, p_w));   ((t, b), (l, r)) as it is.
    """
    def count(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0

    if count(value):
        value = (value, value)
    try:
        a, b = value
        if count(a) and count(b):
            return (int(a), int(a)), (int(b), int(b))
        (t, bottom), (left, r) = a, b
        if all(count(v) for v in (t, bottom, left, r)):
            return (int(t), int(bottom)), (int(left), int(r))
    except (TypeError, ValueError):
        pass
    raise ValueError(f"{argument} must be a non-negative integer, a pair (rows, columns) of them, or "
                     f"((top, bottom), (left, right)), got {value!r}")


class ZeroPadding2D(Layer):
    """Keras's `ZeroPadding2D(padding=(1, 1))`: zeros around every image.

    Shapes: x (N, H, W, C) -> y (N, top + H + bottom, left + W + right, C), padding = ((top, bottom),
    (left, right)) (also an int, or (rows, columns) for both sides alike). Gradient: dx = the crop of dy.
    """

    def __init__(self, padding=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.padding = two_pairs(padding, f"{self.name}: padding")

    def compute_output_shape(self, input_shape):
        check_image_shape(self, input_shape)
        h, w, c = input_shape
        (top, bottom), (left, right) = self.padding
        return top + h + bottom, left + w + right, c

    def forward(self, x, training=False):
        self.check_input(x)
        return zero_pad2d(x, self.padding)

    def backward(self, grad):
        self.check_grad(grad)
        return crop2d(grad, self.padding)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


class Cropping2D(Layer):
    """Keras's `Cropping2D(cropping=((0, 0), (0, 0)))`: cut rows and columns off every image.

    Shapes: x (N, H, W, C) -> y (N, H - top - bottom, W - left - right, C), cropping = ((top, bottom),
    (left, right)) (also an int, or (rows, columns) for both sides alike); at least one row and one column
    must remain. Gradient: dx = dy zero-padded back to (N, H, W, C).
    """

    def __init__(self, cropping=((0, 0), (0, 0)), **kwargs):
        super().__init__(**kwargs)
        self.cropping = two_pairs(cropping, f"{self.name}: cropping")

    def compute_output_shape(self, input_shape):
        check_image_shape(self, input_shape)
        h, w, c = input_shape
        (top, bottom), (left, right) = self.cropping
        for what, size, cut in (("rows", h, top + bottom), ("columns", w, left + right)):
            if cut >= size:
                raise ValueError(f"{self.name}: cropping {self.cropping} removes {cut} {what} of an input with "
                                 f"{size} (input shape (batch, {h}, {w}, {c})); at least one must remain")
        return h - top - bottom, w - left - right, c

    def forward(self, x, training=False):
        self.check_input(x)
        return crop2d(x, self.cropping)

    def backward(self, grad):
        self.check_grad(grad)
        return zero_pad2d(grad, self.cropping)

    def get_config(self):
        return {**super().get_config(), "cropping": self.cropping}


class Reshape(Layer):
    """Keras's `Reshape(target_shape)`: each sample's values, in row-major order, laid out as target_shape.

    Shapes: x (N, d_1, ..., d_k) -> y (N,) + target_shape, where target_shape (without the batch axis) has as
    many values as d_1 * ... * d_k; one of its entries may be -1 (that many as the size leaves).
    Gradient: dx = dy reshaped back to x's shape.
    """

    fixed_size = True           # target_shape holds exactly this many values

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        ok = isinstance(target_shape, (tuple, list)) and len(target_shape) > 0 and all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) and (d > 0 or d == -1)
            for d in target_shape)
        if not ok or list(target_shape).count(-1) > 1:
            raise ValueError(f"{self.name}: target_shape must be a tuple of positive integers (without the "
                             f"batch axis), at most one of them -1, got {target_shape!r}")
        self.target_shape = tuple(int(d) for d in target_shape)

    def compute_output_shape(self, input_shape):
        size = int(np.prod(input_shape))
        known = int(np.prod([d for d in self.target_shape if d != -1]))
        if -1 in self.target_shape and size % known == 0:
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        if -1 not in self.target_shape and size == known:
            return self.target_shape
        shown = "(batch, " + ", ".join(str(d) for d in input_shape) + ")"
        raise ValueError(f"{self.name}: cannot reshape inputs of shape {shown}, {size} values per sample, into "
                         f"target_shape {self.target_shape}, " +
                         (f"whose other entries multiply to {known}, which does not divide {size}"
                          if -1 in self.target_shape else f"which holds {known}"))

    def forward(self, x, training=False):
        self.check_input(x)
        return x.reshape((x.shape[0],) + self.output_shape).copy()

    def backward(self, grad):
        self.check_grad(grad)
        return grad.reshape((grad.shape[0],) + self.input_shape).copy()

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}
