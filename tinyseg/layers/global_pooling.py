"""GlobalMaxPooling2D and GlobalAveragePooling2D: the whole image as one window (a classifier's head after
the last convolution block).

    x: (N, H, W, C)  ->  y: (N, C),  or (N, 1, 1, C) with keepdims=True

    max:      y[n,c]       = max_{h,w} x[n,h,w,c]
              dx[n,h,w,c]  = dy[n,c] at the first maximum of channel c in row-major (h, w) order, 0 elsewhere
    average:  y[n,c]       = (1 / (H W)) sum_{h,w} x[n,h,w,c]
              dx[n,h,w,c]  = dy[n,c] / (H W) at every pixel

On a tie the max picks one valid subgradient, as MaxPooling2D does (PyTorch's amax would share dy among the
tied pixels instead). Each is one NumPy reduction over (H, W): no kernel needed.
"""
import numpy as np

from ..validation import flag
from .base import Layer
from .geometry import check_image_shape, check_same_batch


class _GlobalPooling2D(Layer):
    """What both global poolings share: Keras's `keepdims` argument, the output shape, the batch check."""

    def __init__(self, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.keepdims = flag(keepdims, f"{self.name}: keepdims")

    def compute_output_shape(self, input_shape):
        check_image_shape(self, input_shape)
        channels = input_shape[2]
        return (1, 1, channels) if self.keepdims else (channels,)

    def check_grad(self, grad):
        x_shape = self.saved_for_backward().x_shape
        super().check_grad(grad)
        check_same_batch(self, grad, x_shape)       # a grad of batch 1 must not be broadcast over dx

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalMaxPooling2D(_GlobalPooling2D):
    """Keras's `GlobalMaxPooling2D(keepdims=False)`: the maximum of each channel over the whole image.

    Shapes: x (N, H, W, C) -> y (N, C), or (N, 1, 1, C) with keepdims=True. Formula: the module docstring.
    """

    def forward(self, x, training=False):
        self.check_input(x)
        n, h, w, c = x.shape
        pixels = x.reshape(n, h * w, c)                       # pixel index h*W + w: row-major order
        # (N, C): where each maximum was; argmax returns the first one
        self.save_for_backward(x_shape=x.shape, argmax=pixels.argmax(axis=1))
        y = pixels.max(axis=1)
        return y.reshape((n,) + self.output_shape)

    def backward(self, grad):
        self.check_grad(grad)
        n, h, w, c = self.saved.x_shape
        dx = np.zeros((n, h * w, c), dtype=grad.dtype)
        np.put_along_axis(dx, self.saved.argmax[:, None, :], grad.reshape(n, 1, c), axis=1)
        return dx.reshape(self.saved.x_shape)


class GlobalAveragePooling2D(_GlobalPooling2D):
    """Keras's `GlobalAveragePooling2D(keepdims=False)`: the mean of each channel over the whole image.

    Shapes: x (N, H, W, C) -> y (N, C), or (N, 1, 1, C) with keepdims=True. Formula: the module docstring.
    """

    def forward(self, x, training=False):
        self.check_input(x)
        self.save_for_backward(x_shape=x.shape)
        return x.mean(axis=(1, 2), keepdims=self.keepdims)

    def backward(self, grad):
        self.check_grad(grad)
        n, h, w, c = self.saved.x_shape
        return np.broadcast_to(grad.reshape(n, 1, 1, c) / (h * w), self.saved.x_shape).copy()


# Keras's short names for the same layers
GlobalMaxPool2D = GlobalMaxPooling2D
GlobalAvgPool2D = GlobalAveragePooling2D
