"""UpSampling2D: make an image fh times taller and fw times wider, without parameters.

    x: (N, H, W, C)  ->  y: (N, H*fh, W*fw, C)          size = (fh, fw), positive integers

interpolation='nearest' (Keras's default) copies every pixel into an fh x fw block:

    y[n, i, j, c]  = x[n, i // fh, j // fw, c]
    dx[n, h, w, c] = sum of dy[n, i, j, c] over the block i in [h*fh, (h+1)*fh), j in [w*fw, (w+1)*fw)

interpolation='bilinear' places output pixel centres at half-pixel positions of the input (as Keras, TF's
tf.image.resize and PyTorch's F.interpolate(align_corners=False) do) and mixes the two nearest inputs along
each axis:

    src = max((i + 0.5) / fh - 0.5, 0),  i0 = floor(src),  i1 = min(i0 + 1, H - 1),  t = src - i0
    (same along columns with j, fw, W, giving j0, j1, s)

    y[n,i,j,c] = (1-t)(1-s) x[n,i0,j0,c] + (1-t) s x[n,i0,j1,c] + t (1-s) x[n,i1,j0,c] + t s x[n,i1,j1,c]

It is linear: y = A_h x A_w^T per image and channel, with A_h (H*fh, H) and A_w (W*fw, W) holding those
weights, so its backward is the transpose, dx = A_h^T dy A_w: each input pixel collects every output's
gradient times the weight that output gave it.

In a U-Net decoder this is the fixed alternative to a learned Conv2DTranspose(kernel_size=2, strides=2).
The loops live in kernels/upsampling.py (Numba, with a NumPy twin for each).
"""
from ..kernels.upsampling import (
    upsample_bilinear,
    upsample_bilinear_backward,
    upsample_nearest,
    upsample_nearest_backward,
)
from .base import Layer
from .geometry import check_image_shape, pair

INTERPOLATIONS = {
    "nearest": (upsample_nearest, upsample_nearest_backward),
    "bilinear": (upsample_bilinear, upsample_bilinear_backward),
}


class UpSampling2D(Layer):
    """Keras's `UpSampling2D(size=(2, 2), interpolation='nearest')`; interpolation 'nearest' or 'bilinear'.

    Shapes: x (N, H, W, C) -> y (N, H*fh, W*fw, C). Formulas and gradients: see the module docstring.
    """

    def __init__(self, size=(2, 2), interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self.size = pair(size, f"{self.name}: size")
        if not isinstance(interpolation, str) or interpolation.lower() not in INTERPOLATIONS:
            raise ValueError(f"{self.name}: interpolation must be one of {sorted(INTERPOLATIONS)}, "
                             f"got {interpolation!r}")
        self.interpolation = interpolation.lower()
        self._forward, self._backward = INTERPOLATIONS[self.interpolation]

    def compute_output_shape(self, input_shape):
        check_image_shape(self, input_shape)
        h, w, c = input_shape
        return h * self.size[0], w * self.size[1], c

    def forward(self, x, training=False):
        self.check_input(x)
        return self._forward(x, self.size)

    def backward(self, grad):
        self.check_grad(grad)
        return self._backward(grad, self.size)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "interpolation": self.interpolation}
