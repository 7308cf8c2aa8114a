"""MaxPooling2D and AveragePooling2D: summarise each window of every channel by its maximum or its mean.

    x: (N, H, W, C)  ->  y: (N, OH, OW, C)          windows of pool_size (KH, KW), moved by strides (sh, sw)

    OH = (H - KH) // sh + 1   for padding='valid'   (the window never leaves the image)
    OH = ceil(H / sh)         for padding='same'    (pads (top, bottom) from geometry.conv_geometry; the odd
                                                     extra row goes at the bottom, the extra column at the right)
    and the same for OW with (W, KW, sw, left/right).

Window (i, j) covers input rows i*sh - top + u (u = 0 .. KH-1) and columns j*sw - left + v (v = 0 .. KW-1).
Padded positions are ignored, as in Keras: they never win a max and are not counted in a mean.

    max:      y[n,i,j,c] = max_{(u,v) real} x[n, i*sh - top + u, j*sw - left + v, c]
              dx         = dy[n,i,j,c] sent to the one pixel that held the maximum (the first in row-major
                           (u, v) order on a tie); a pixel that is the maximum of several overlapping windows
                           receives the sum
    average:  y[n,i,j,c] = (1 / count[i,j]) * sum_{(u,v) real} x[n, i*sh - top + u, j*sw - left + v, c]
              dx         = every real pixel of window (i, j) receives dy[n,i,j,c] / count[i,j]
              count[i,j] = number of real (non-padded) pixels in window (i, j)

The max's derivative exists where the maximum is unique; on a tie the first maximum is one valid
subgradient (PyTorch's CPU max_pool2d makes the same choice). count[i, j] is Keras's rule for 'same'
padding (PyTorch's avg_pool2d calls it count_include_pad=False).

None of these layers has parameters. MaxPooling2D's forward and backward below are the max's lines in NumPy
(the windows of x side by side, their maximum and where it is; then col2im, which adds each window's values
back where they came from), after one guarded line (`if fast(): ...`) that hands the step to
kernels/pooling.py instead: the same numbers from loops that visit each window once, shared between threads
(TINYSEG_BACKEND=numpy skips it; tinyseg/backend.py). AveragePooling2D likewise, with a window sum over a count
in place of the maximum. tinyseg/reference.py has both as plain loops. Global pooling: global_pooling.py.
"""
import numpy as np

from ..backend import fast
from ..kernels import pooling as kernels
from ..kernels.im2col import col2im_numpy as col2im
from .base import Layer
from .geometry import check_image_shape, check_padding, check_same_batch, conv_geometry, pair


def windows(x, pool_size, strides, pads, out_hw, fill):
    """The pool windows of x (N, H, W, C) side by side: (N, OH, OW, C, KH*KW), entry a*KW + b of window (i, j)
    being x[n, i*sh - top + a, j*sw - left + b, c], or `fill` where that is padding."""
    (sh, sw), (oh, ow), (pt, pb, pl, pr) = strides, out_hw, pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    view = np.lib.stride_tricks.sliding_window_view(xp, pool_size, axis=(1, 2))     # (N, H', W', C, KH, KW)
    view = view[:, 0:sh * (oh - 1) + 1:sh, 0:sw * (ow - 1) + 1:sw]
    return view.reshape(view.shape[:4] + (-1,))


def set_pool_arguments(layer, pool_size, strides, padding):
    """Keras's pooling arguments, checked and set on the layer: pool_size and strides as (h, w) pairs, where
    strides=None means non-overlapping windows (one step per window), and padding 'valid' or 'same'."""
    layer.pool_size = pair(pool_size, f"{layer.name}: pool_size")
    layer.strides = layer.pool_size if strides is None else pair(strides, f"{layer.name}: strides")
    layer.padding = check_padding(padding)


class _Pooling2D(Layer):
    """What both pooling layers share: Keras's arguments, the output-size rule, the config."""

    geometry_attributes = Layer.geometry_attributes + ("pads",)

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        set_pool_arguments(self, pool_size, strides, padding)

    def geometry(self, input_shape):
        """((OH, OW), (top, bottom, left, right)) for an input of shape (H, W, C)."""
        check_image_shape(self, input_shape)
        try:
            return conv_geometry(input_shape[:2], self.pool_size, self.strides, self.padding)
        except ValueError as err:          # e.g. an image smaller than the window with padding='valid'
            raise ValueError(f"{self.name}: {err}") from None

    def compute_output_shape(self, input_shape):
        (oh, ow), self.pads = self.geometry(input_shape)
        return oh, ow, input_shape[2]

    def check_grad(self, grad):
        x_shape = self.saved_for_backward().x_shape
        super().check_grad(grad)
        check_same_batch(self, grad, x_shape)       # dx is indexed by the forward's batch

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}


class MaxPooling2D(_Pooling2D):
    """Max pooling, Keras's `MaxPooling2D(pool_size=(2, 2), strides=None, padding='valid')`.

    Shapes: x (N, H, W, C) -> y (N, OH, OW, C). Formula, output size and gradient: the module docstring.
    """

    def forward(self, x, training=False):
        self.check_input(x)
        if fast():      # the same y and argmax, from one visit of each window
            y, argmax = kernels.max_pool2d(x, self.pool_size, self.strides, self.pads, self.output_shape[:2])
        else:
            w = windows(x, self.pool_size, self.strides, self.pads, self.output_shape[:2], -np.inf)  # (..., C, KH*KW)
            y = w.max(axis=-1)                                       # the window maxima: padding never wins
            argmax = w.argmax(axis=-1).astype(np.int32)              # a*KW + b of the first maximum
        self.save_for_backward(x_shape=x.shape, argmax=argmax)      # where each maximum was: all backward needs
        return y

    def backward(self, grad):
        self.check_grad(grad)
        x_shape, argmax = self.saved.x_shape, self.saved.argmax
        if fast():      # the same dx, each input pixel gathering what its windows send it
            return kernels.max_pool2d_backward(grad, argmax, x_shape, self.pool_size, self.strides, self.pads)
        (kh, kw), (sh, sw), out_hw = self.pool_size, self.strides, self.output_shape[:2]
        # dy placed at each window's argmax, 0 at its other entries: (N, OH, OW, C, KH*KW)
        dw = np.where(argmax[..., None] == np.arange(kh * kw), grad[..., None], 0).astype(grad.dtype)
        # dx = col2im of those windows (col2im wants each window's row as (u, v, c): channels last)
        cols = dw.swapaxes(-1, -2).reshape(-1, kh * kw * x_shape[3])
        return col2im(cols, x_shape, kh, kw, sh, sw, self.pads, out_hw)


class AveragePooling2D(_Pooling2D):
    """Average pooling, Keras's `AveragePooling2D(pool_size=(2, 2), strides=None, padding='valid')`.

    Shapes: x (N, H, W, C) -> y (N, OH, OW, C). Formula, output size and gradient: the module docstring.
    """

    def forward(self, x, training=False):
        self.check_input(x)
        self.save_for_backward(x_shape=x.shape)
        if fast():      # the same y, from one visit of each window's real pixels
            return kernels.avg_pool2d(x, self.pool_size, self.strides, self.pads, self.output_shape[:2])
        total = windows(x, self.pool_size, self.strides, self.pads, self.output_shape[:2], 0).sum(axis=-1)
        return total / self.count(x.shape, x.dtype)                  # the window sums over the real pixels / count

    def backward(self, grad):
        self.check_grad(grad)
        x_shape = self.saved.x_shape
        if fast():      # the same dx, each input pixel gathering what its windows send it
            return kernels.avg_pool2d_backward(grad, x_shape, self.pool_size, self.strides, self.pads)
        (kh, kw), (sh, sw), out_hw = self.pool_size, self.strides, self.output_shape[:2]
        share = grad / self.count(x_shape, grad.dtype)                # dy / count: (N, OH, OW, C)
        # every entry of window (i, j) gets that share; col2im adds them back where they came from
        c = x_shape[3]
        cols = np.broadcast_to(share[..., None, :], share.shape[:3] + (kh * kw, c)).reshape(-1, kh * kw * c)
        return col2im(cols, x_shape, kh, kw, sh, sw, self.pads, out_hw)

    def count(self, x_shape, dtype):
        """count[0, i, j, 0]: the real (not padded) pixels of window (i, j), (1, OH, OW, 1)."""
        ones = np.ones((1,) + tuple(x_shape[1:3]) + (1,), dtype=dtype)
        return windows(ones, self.pool_size, self.strides, self.pads, self.output_shape[:2], 0).sum(axis=-1)


# Keras's short names for the same layers
MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D

__all__ = ["AveragePooling2D", "AvgPool2D", "MaxPool2D", "MaxPooling2D"]
