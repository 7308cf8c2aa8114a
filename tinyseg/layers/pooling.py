"""Pooling: summarise each window of every channel (or each whole channel) by its maximum or its mean.

MaxPooling2D and AveragePooling2D slide a window over the image:

    x: (N, H, W, C)  ->  y: (N, OH, OW, C)          windows of pool_size (KH, KW), moved by strides (sh, sw)

    OH = (H - KH) // sh + 1   for padding='valid'   (the window never leaves the image)
    OH = ceil(H / sh)         for padding='same'    (pads (top, bottom) from geometry.conv_geometry; the odd
                                                     extra row goes at the bottom, the extra column at the right)
    and the same for OW with (W, KW, sw, left/right).

Window (i, j) covers input rows i*sh - top + a (a = 0 .. KH-1) and columns j*sw - left + b (b = 0 .. KW-1).
Padded positions are ignored, as in Keras: they never win a max and are not counted in a mean.

    max:      y[n,i,j,c] = max_{(a,b) real} x[n, i*sh - top + a, j*sw - left + b, c]
              dx         = dy[n,i,j,c] sent to the one pixel that held the maximum (the first in row-major
                           (a, b) order on a tie); a pixel that is the maximum of several overlapping windows
                           receives the sum
    average:  y[n,i,j,c] = (1 / count[i,j]) * sum_{(a,b) real} x[n, i*sh - top + a, j*sw - left + b, c]
              dx         = every real pixel of window (i, j) receives dy[n,i,j,c] / count[i,j]
              count[i,j] = number of real (non-padded) pixels in window (i, j)

GlobalMaxPooling2D and GlobalAveragePooling2D take the whole image as one window (a classifier's head after
the last convolution block):

    x: (N, H, W, C)  ->  y: (N, C),  or (N, 1, 1, C) with keepdims=True

    max:      y[n,c]       = max_{h,w} x[n,h,w,c]
              dx[n,h,w,c]  = dy[n,c] at the first maximum of channel c in row-major (h, w) order, 0 elsewhere
    average:  y[n,c]       = (1 / (H W)) sum_{h,w} x[n,h,w,c]
              dx[n,h,w,c]  = dy[n,c] / (H W) at every pixel

None of these layers has parameters. The window loops live in kernels/pooling.py (Numba, with a NumPy twin
for each); a global pooling is one NumPy reduction over (H, W).
"""
import numpy as np

from ..kernels.pooling import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from .base import Layer
from .convolution import check_image_shape
from .geometry import check_padding, conv_geometry, pair


class _Pooling2D(Layer):
    """What both pooling layers share: Keras's arguments, the output-size rule, the config."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = pair(pool_size, f"{self.name}: pool_size")
        # Keras: strides=None means non-overlapping windows, one step per window
        self.strides = self.pool_size if strides is None else pair(strides, f"{self.name}: strides")
        self.padding = check_padding(padding)
        self._x_shape = None            # the last forward's input shape, which backward needs

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
        if self._x_shape is None:
            raise RuntimeError(f"{self.name}: backward() called before forward()")
        super().check_grad(grad)
        # the kernels index dx by the forward's batch: a grad for another batch must not reach them
        if grad.shape[0] != self._x_shape[0]:
            raise ValueError(f"{self.name}: grad has batch size {grad.shape[0]} but the last forward had "
                             f"{self._x_shape[0]}")

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}


class MaxPooling2D(_Pooling2D):
    """Max pooling, Keras's `MaxPooling2D(pool_size=(2, 2), strides=None, padding='valid')`.

    Shapes: x (N, H, W, C) -> y (N, OH, OW, C), OH = (H - KH) // sh + 1 ('valid') or ceil(H / sh) ('same').

        y[n,i,j,c] = max over the real pixels of window (i, j) of x[n, ., ., c]
        dL/dx      = dL/dy[n,i,j,c] placed on that window's argmax (first maximum in row-major order on a
                     tie), summed where windows overlap; zero everywhere else

    The derivative exists where the maximum is unique; on a tie this picks one valid subgradient (PyTorch's
    CPU max_pool2d makes the same choice).
    """

    def forward(self, x, training=False):
        self.check_input(x)
        self._x_shape = x.shape
        y, self._argmax = max_pool2d(x, self.pool_size, self.strides, self.pads, self.output_shape[:2])
        return y

    def backward(self, grad):
        self.check_grad(grad)
        return max_pool2d_backward(grad, self._argmax, self._x_shape, self.pool_size, self.strides, self.pads)


class AveragePooling2D(_Pooling2D):
    """Average pooling, Keras's `AveragePooling2D(pool_size=(2, 2), strides=None, padding='valid')`.

    Shapes: x (N, H, W, C) -> y (N, OH, OW, C), OH = (H - KH) // sh + 1 ('valid') or ceil(H / sh) ('same').

        y[n,i,j,c] = (1 / count[i,j]) * sum over the real pixels of window (i, j) of x[n, ., ., c]
        dL/dx      = each real pixel of window (i, j) receives dL/dy[n,i,j,c] / count[i,j], summed over
                     the windows that contain it

    count[i, j] is the number of real pixels in the window: with padding='same' a border window averages only
    what is inside the image (Keras's rule; PyTorch's avg_pool2d calls it count_include_pad=False).
    """

    def forward(self, x, training=False):
        self.check_input(x)
        self._x_shape = x.shape
        return avg_pool2d(x, self.pool_size, self.strides, self.pads, self.output_shape[:2])

    def backward(self, grad):
        self.check_grad(grad)
        return avg_pool2d_backward(grad, self._x_shape, self.pool_size, self.strides, self.pads)


class _GlobalPooling2D(Layer):
    """What both global poolings share: Keras's `keepdims` argument, the output shape, the batch check."""

    def __init__(self, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(keepdims, (bool, np.bool_)):
            raise ValueError(f"{self.name}: keepdims must be True or False, got {keepdims!r}")
        self.keepdims = bool(keepdims)
        self._x_shape = None

    def compute_output_shape(self, input_shape):
        check_image_shape(self, input_shape)
        channels = input_shape[2]
        return (1, 1, channels) if self.keepdims else (channels,)

    def check_grad(self, grad):
        if self._x_shape is None:
            raise RuntimeError(f"{self.name}: backward() called before forward()")
        super().check_grad(grad)
        # dx has the forward's batch: a grad of batch 1 must not be broadcast over it
        if grad.shape[0] != self._x_shape[0]:
            raise ValueError(f"{self.name}: grad has batch size {grad.shape[0]} but the last forward had "
                             f"{self._x_shape[0]}")

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalMaxPooling2D(_GlobalPooling2D):
    """Keras's `GlobalMaxPooling2D(keepdims=False)`: the maximum of each channel over the whole image.

    Shapes: x (N, H, W, C) -> y (N, C), or (N, 1, 1, C) with keepdims=True.

        y[n,c]  = max_{h,w} x[n,h,w,c]
        dL/dx   = dL/dy[n,c] at the first maximum of x[n,:,:,c] in row-major (h, w) order, zero elsewhere

    On a tie this picks one valid subgradient, as MaxPooling2D does (PyTorch's amax would share dy among the
    tied pixels instead).
    """

    def forward(self, x, training=False):
        self.check_input(x)
        n, h, w, c = self._x_shape = x.shape
        pixels = x.reshape(n, h * w, c)                       # pixel index h*W + w: row-major order
        self._argmax = pixels.argmax(axis=1)                  # (N, C); argmax returns the first maximum
        y = pixels.max(axis=1)
        return y.reshape((n,) + self.output_shape)

    def backward(self, grad):
        self.check_grad(grad)
        n, h, w, c = self._x_shape
        dx = np.zeros((n, h * w, c), dtype=grad.dtype)
        np.put_along_axis(dx, self._argmax[:, None, :], grad.reshape(n, 1, c), axis=1)
        return dx.reshape(self._x_shape)


class GlobalAveragePooling2D(_GlobalPooling2D):
    """Keras's `GlobalAveragePooling2D(keepdims=False)`: the mean of each channel over the whole image.

    Shapes: x (N, H, W, C) -> y (N, C), or (N, 1, 1, C) with keepdims=True.

        y[n,c]          = (1 / (H W)) sum_{h,w} x[n,h,w,c]
        dL/dx[n,h,w,c]  = dL/dy[n,c] / (H W)
    """

    def forward(self, x, training=False):
        self.check_input(x)
        self._x_shape = x.shape
        return x.mean(axis=(1, 2), keepdims=self.keepdims)

    def backward(self, grad):
        self.check_grad(grad)
        n, h, w, c = self._x_shape
        return np.broadcast_to(grad.reshape(n, 1, 1, c) / (h * w), self._x_shape).copy()


# Keras's short names for the same layers
MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
GlobalMaxPool2D = GlobalMaxPooling2D
GlobalAvgPool2D = GlobalAveragePooling2D
