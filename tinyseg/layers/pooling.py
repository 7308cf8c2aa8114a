"""MaxPooling2D and AveragePooling2D: summarise each window of every channel by its maximum or its mean.

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

The max's derivative exists where the maximum is unique; on a tie the first maximum is one valid
subgradient (PyTorch's CPU max_pool2d makes the same choice). count[i, j] is Keras's rule for 'same'
padding (PyTorch's avg_pool2d calls it count_include_pad=False).

None of these layers has parameters. Each step is one call into kernels/pooling.py (the window loops, with
their NumPy twins); tinyseg/reference.py has them as plain loops. Global pooling: global_pooling.py.
"""
from ..kernels.pooling import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from .base import Layer
from .geometry import check_image_shape, check_padding, check_same_batch, conv_geometry, pair
from .global_pooling import GlobalAveragePooling2D, GlobalAvgPool2D, GlobalMaxPool2D, GlobalMaxPooling2D


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
        check_same_batch(self, grad, self._x_shape)       # the kernels index dx by the forward's batch

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}


class MaxPooling2D(_Pooling2D):
    """Max pooling, Keras's `MaxPooling2D(pool_size=(2, 2), strides=None, padding='valid')`.

    Shapes: x (N, H, W, C) -> y (N, OH, OW, C). Formula, output size and gradient: the module docstring.
    """

    def forward(self, x, training=False):
        self.check_input(x)
        self._x_shape = x.shape
        # y = the window maxima; argmax = where each one was (a*KW + b), which is all backward needs
        y, self._argmax = max_pool2d(x, self.pool_size, self.strides, self.pads, self.output_shape[:2])
        return y

    def backward(self, grad):
        self.check_grad(grad)
        # dx = each dy sent to its window's argmax, summed where windows overlap
        return max_pool2d_backward(grad, self._argmax, self._x_shape, self.pool_size, self.strides, self.pads)


class AveragePooling2D(_Pooling2D):
    """Average pooling, Keras's `AveragePooling2D(pool_size=(2, 2), strides=None, padding='valid')`.

    Shapes: x (N, H, W, C) -> y (N, OH, OW, C). Formula, output size and gradient: the module docstring.
    """

    def forward(self, x, training=False):
        self.check_input(x)
        self._x_shape = x.shape
        # y = the window sums over the real pixels, / count
        return avg_pool2d(x, self.pool_size, self.strides, self.pads, self.output_shape[:2])

    def backward(self, grad):
        self.check_grad(grad)
        # dx = dy / count spread over each window's real pixels, summed where windows overlap
        return avg_pool2d_backward(grad, self._x_shape, self.pool_size, self.strides, self.pads)


# Keras's short names for the same layers
MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D

__all__ = ["AveragePooling2D", "AvgPool2D", "GlobalAveragePooling2D", "GlobalAvgPool2D", "GlobalMaxPool2D",
           "GlobalMaxPooling2D", "MaxPool2D", "MaxPooling2D"]
