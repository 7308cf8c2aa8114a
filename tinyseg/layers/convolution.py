"""Conv2D and Conv2DTranspose: one is the other's backward.

Convolution (cross-correlation, as in every framework), channels-last:

    x: (N, H, W, C)    kernel K: (KH, KW, C, F)    bias b: (F,)    y: (N, OH, OW, F)

    y[n, i, j, f] = b[f] + sum_{a, b, c} xpad[n, i*sh + a, j*sw + b, c] * K[a, b, c, f]

    OH = (H - KH) // sh + 1 for padding='valid', ceil(H / sh) for 'same' (rules in geometry.py)

im2col turns it into one matrix product:

    cols = im2col(x)                   (N*OH*OW, KH*KW*C)
    Kmat = K.reshape(KH*KW*C, F)
    y    = cols @ Kmat + b             (N*OH*OW, F) -> reshape (N, OH, OW, F)

Backward, with G = dL/dy reshaped to (N*OH*OW, F):

    dL/dKmat = cols^T @ G              (KH*KW*C, F)
    dL/db    = sum of G over its rows  (F,)
    dL/dx    = col2im(G @ Kmat^T)      (N, H, W, C)    <- a transposed convolution of G with the same K

(For stride 1, conv2d_transpose computes the same numbers as a convolution of G with the spatially flipped
kernel, which is faster; see its body.)

The last line is the whole definition of a transposed convolution: `conv2d_transpose` below is the adjoint
of `conv2d` (for every x and y, <conv2d(x), y> = <x, conv2d_transpose(y)>). So Conv2DTranspose.forward calls
conv2d_transpose, and its backward calls conv2d: a U-Net decoder is an encoder run backwards.
"""
import numpy as np

from .. import initializers
from ..kernels.im2col import col2im, im2col
from .activations import ActivatedLayer
from .base import channel_sum
from .geometry import check_padding, conv_geometry, deconv_output_length, pair


def conv2d(x, kernel, strides, pads, out_hw, cols_buffer=None):
    """y = conv(x, kernel) without bias. Returns (y (N, OH, OW, F), cols) so backward can reuse cols."""
    kh, kw, c, f = kernel.shape
    cols = im2col(x, kh, kw, strides[0], strides[1], pads, out_hw, out=cols_buffer)
    y = cols @ kernel.reshape(kh * kw * c, f)
    return y.reshape(x.shape[0], out_hw[0], out_hw[1], f), cols


def conv2d_transpose(y, kernel, strides, pads, x_shape, scratch=None):
    """The adjoint of conv2d: maps y (N, OH, OW, F) back to shape x_shape (N, H, W, C).

    x = col2im(y.reshape(-1, F) @ Kmat^T); every output pixel of the convolution spreads its value, weighted
    by the kernel, over the input window it was computed from. `scratch`, if given, is a function
    (rows, cols) -> an array to hold the stride-1 path's im2col (a layer's reused buffer).
    """
    kh, kw, c, f = kernel.shape
    out_hw = y.shape[1:3]
    if strides == (1, 1) and min(pads) >= 0 and max(pads) <= min(kh, kw) - 1:
        # With stride 1 the adjoint is itself a convolution: of y with the kernel flipped in space and its
        # channel axes swapped, padded by (K - 1 - pad) on each side. im2col of y then replaces the large
        # (N*OH*OW, KH*KW*C) matrix and the col2im that would sum it back: about twice as fast.
        flipped = kernel[::-1, ::-1].transpose(0, 1, 3, 2)            # (KH, KW, F, C)
        pt, pb, pl, pr = pads
        back_pads = (kh - 1 - pt, kh - 1 - pb, kw - 1 - pl, kw - 1 - pr)
        cols = scratch(y.shape[0] * x_shape[1] * x_shape[2], kh * kw * f) if scratch else None
        return conv2d(y, np.ascontiguousarray(flipped), strides, back_pads, x_shape[1:3], cols)[0]
    cols = y.reshape(-1, f) @ kernel.reshape(kh * kw * c, f).T
    return col2im(cols, x_shape, kh, kw, strides[0], strides[1], pads, out_hw)


class _Convolution(ActivatedLayer):
    """What Conv2D and Conv2DTranspose share: arguments, checks, config."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(activation=activation, **kwargs)
        if not isinstance(filters, (int, np.integer)) or isinstance(filters, bool) or filters < 1:
            raise ValueError(f"{self.name}: filters must be a positive integer, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = pair(kernel_size, f"{self.name}: kernel_size")
        self.strides = pair(strides, f"{self.name}: strides")
        self.padding = check_padding(padding)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self._scratch = None

    def scratch(self, rows, cols):
        """A (rows, cols) view of this layer's im2col buffer, grown when needed and reused step after step.

        A fresh buffer of tens of MB costs a page fault per 4 KB on first touch, about as long as the im2col
        itself; so one buffer serves the forward's im2col and, once the kernel gradient has been taken from it,
        the backward's.
        """
        size = rows * cols
        if self._scratch is None or self._scratch.size < size or self._scratch.dtype != self.dtype:
            self._scratch = np.empty(size, dtype=self.dtype)
        return self._scratch[:size].reshape(rows, cols)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "use_bias": self.use_bias}

    def build(self, input_shape):
        out = super().build(input_shape)
        self.params["kernel"] = self.kernel_initializer(self.kernel_shape(self.input_shape[2]), self.dtype)
        if self.use_bias:
            self.params["bias"] = self.bias_initializer((self.filters,), self.dtype)
        return out


def check_image_shape(layer, input_shape):
    if len(input_shape) != 3:
        raise ValueError(f"{layer.name}: expects images (batch, H, W, C), got input shape (batch,) + "
                         f"{tuple(input_shape)}")


class Conv2D(_Convolution):
    """2-D convolution layer, Keras's `Conv2D(filters, kernel_size, strides, padding, activation, use_bias)`.

    Shapes: x (N, H, W, C) -> y (N, OH, OW, filters); kernel (KH, KW, C, filters); bias (filters,).
    Formula, output size and gradients: see the module docstring. Weights start as Keras's do:
    glorot-uniform kernel, zero bias.
    """

    def compute_output_shape(self, input_shape):
        check_image_shape(self, input_shape)
        (oh, ow), self.pads = conv_geometry(input_shape[:2], self.kernel_size, self.strides, self.padding)
        return oh, ow, self.filters

    def kernel_shape(self, channels):
        return self.kernel_size + (channels, self.filters)

    def forward_linear(self, x, training=False):
        self.check_input(x)
        self._x = x
        kh, kw = self.kernel_size
        oh, ow = self.output_shape[:2]
        cols = self.scratch(x.shape[0] * oh * ow, kh * kw * x.shape[3])
        y, self._cols = conv2d(x, self.params["kernel"], self.strides, self.pads, (oh, ow), cols_buffer=cols)
        if self.use_bias:
            y += self.params["bias"]
        return y

    def backward_linear(self, grad, input_grad=True):
        kernel = self.params["kernel"]
        g = grad.reshape(-1, self.filters)                          # (N*OH*OW, F)
        cols = self._cols
        if cols is None:                 # a second backward after one forward: the buffer was reused, redo it
            cols = conv2d(self._x, kernel, self.strides, self.pads, self.output_shape[:2],
                          cols_buffer=self.scratch(g.shape[0], kernel[..., 0].size))[1]
        self.grads["kernel"] = (cols.T @ g).reshape(kernel.shape)
        if self.use_bias:
            self.grads["bias"] = channel_sum(g)
        if not input_grad:
            return None
        self._cols = None                # from here on the scratch buffer holds the backward's im2col
        return conv2d_transpose(grad, kernel, self.strides, self.pads, self._x.shape, scratch=self.scratch)


class Conv2DTranspose(_Convolution):
    """Transposed convolution ("deconvolution"), Keras's `Conv2DTranspose(filters, kernel_size, strides, padding)`.

    Shapes: x (N, H, W, C) -> y (N, OH, OW, filters); kernel (KH, KW, filters, C) as in Keras; bias (filters,).
    Output size: OH = H*sh + max(KH - sh, 0) for 'valid', H*sh for 'same'.

    It is the adjoint of the Conv2D that maps (N, OH, OW, filters) to (N, H, W, C) with this kernel:

        y  = conv2d_transpose(x, K) + b         = col2im(x_flat @ Kmat^T) + b
        dx = conv2d(dy, K)                       = im2col(dy) @ Kmat            (a plain convolution)
        dK = im2col(dy)^T @ x_flat               (KH*KW*filters, C) -> (KH, KW, filters, C)
        db = sum of dy over N, OH, OW

    With kernel 2 and stride 2 every input pixel paints its own 2x2 block: a learned upsampling.
    """


    def compute_output_shape(self, input_shape):
        check_image_shape(self, input_shape)
        oh = deconv_output_length(input_shape[0], self.kernel_size[0], self.strides[0], self.padding)
        ow = deconv_output_length(input_shape[1], self.kernel_size[1], self.strides[1], self.padding)
        # the pads of the convolution (OH, OW) -> (H, W) that this layer is the adjoint of
        _, self.pads = conv_geometry((oh, ow), self.kernel_size, self.strides, self.padding)
        return oh, ow, self.filters

    def kernel_shape(self, channels):
        return self.kernel_size + (self.filters, channels)      # Keras's layout for a transposed kernel

    def forward_linear(self, x, training=False):
        self.check_input(x)
        self._x = x
        y = conv2d_transpose(x, self.params["kernel"], self.strides, self.pads,
                             (x.shape[0],) + self.output_shape)
        if self.use_bias:
            y += self.params["bias"]
        return y

    def backward_linear(self, grad, input_grad=True):
        kernel = self.params["kernel"]
        kh, kw = self.kernel_size
        h, w = self.input_shape[:2]
        cols = self.scratch(grad.shape[0] * h * w, kh * kw * self.filters)
        dx, cols = conv2d(grad, kernel, self.strides, self.pads, (h, w), cols_buffer=cols)   # cols = im2col(dy)
        x_flat = self._x.reshape(-1, self.input_shape[2])
        self.grads["kernel"] = (cols.T @ x_flat).reshape(kernel.shape)
        if self.use_bias:
            self.grads["bias"] = channel_sum(grad)
        return dx
