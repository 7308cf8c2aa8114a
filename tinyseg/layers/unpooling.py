"""MaxUnpooling2D: SegNet's decoder step, which puts each pooled value back where its window's maximum was.

    pooled p: (N, OH, OW, C)   the output of MaxPooling2D(pool_size, strides, padding) on x, or anything of
                               that shape computed from it (SegNet convolves it first)
    x:        (N, H, W, C)     the pooling's input: where each window's maximum is
    y:        (N, H, W, C)     the shape of x

    m(i, j)        = the pixel (h, w) of x's window (i, j) that holds its maximum (the first in row-major
                     order on a tie: MaxPooling2D's argmax, so the gradient of the pooling and the
                     place of the unpooled value agree)
    y[n, h, w, c]  = sum over the windows (i, j) with m(i, j) = (h, w) of p[n, i, j, c]   (0 at every other pixel)

    dL/dp[n, i, j, c] = dL/dy[n, m(i, j), c]        the gradient gathered at each window's maximum
    dL/dx             = 0                           m(i, j) is piecewise constant in x

Unpooling is the pooling's backward applied to values: the same scatter MaxPooling2D.backward sends dL/dy
with, so it reuses kernels/pooling.py's max_pool2d (for m) and max_pool2d_backward (for the scatter). Its
backward is the gather that is the scatter's transpose. Where windows do not overlap (strides >= pool_size,
SegNet's 2x2 / 2) each pixel is the maximum of at most one window and y equals PyTorch's
max_unpool2d(p, indices, output_size=(H, W)). Where they overlap, a pixel that is the maximum of several
windows gets their sum here (the transpose, which keeps dL/dp the plain gather above); PyTorch writes one of
them instead.

Why a merge layer of [pooled, pool_input] rather than Keras community code's MaxPoolingWithArgmax2D, which
returns [pooled, indices]: a node of tinyseg's graph (tinyseg/graph.py) has exactly one output tensor, so a
layer cannot hand a second array (the indices) to a later layer. The pooling's input, however, is a tensor of
the graph already (the skip SegNet keeps), and the indices are a function of it: recomputing each window's
argmax from it costs one pass of max pooling and needs no new kind of node. So a SegNet reads

    skip = x
    p = MaxPooling2D(2)(x)
    ...                                             # the encoder and decoder below this level
    y = MaxUnpooling2D(2)([p, skip])

`max_pool2d_with_argmax` below gives the indices themselves, numbered as PyTorch's
max_pool2d(return_indices=True) numbers them (h * W + w within each image and channel), for learners and for
the parity tests.
"""
import numpy as np

from ..kernels import pooling as kernels
from .geometry import check_padding, check_same_batch, conv_geometry, pair
from .merge_base import _Merge
from .pooling import set_pool_arguments, windows


def _geometry(name, in_hw, pool_size, strides, padding):
    """((OH, OW), pads) of the pooling over an (H, W) image, or a ValueError naming the layer."""
    try:
        return conv_geometry(in_hw, pool_size, strides, padding)
    except ValueError as err:          # an image smaller than the window with padding='valid'
        raise ValueError(f"{name}: pool_input: {err}") from None


def max_pool2d_with_argmax(x, pool_size=2, strides=None, padding="valid"):
    """(pooled, indices) of max pooling x (N, H, W, C), both (N, OH, OW, C).

    indices[n, i, j, c] = h * W + w of the pixel x[n, h, w, c] that holds window (i, j)'s maximum (int64, the
    first in row-major order on a tie): PyTorch's max_pool2d(return_indices=True) numbering, channels last.
    """
    pool_size = pair(pool_size, "max_pool2d_with_argmax: pool_size")
    strides = pool_size if strides is None else pair(strides, "max_pool2d_with_argmax: strides")
    (oh, ow), pads = _geometry("max_pool2d_with_argmax", x.shape[1:3], pool_size, strides, check_padding(padding))
    pooled, arg = kernels.max_pool2d(x, pool_size, strides, pads, (oh, ow))         # arg = a * KW + b
    a, b = np.divmod(arg.astype(np.int64), pool_size[1])
    rows = np.arange(oh)[None, :, None, None] * strides[0] - pads[0] + a          # h = i * sh - top + a
    cols = np.arange(ow)[None, None, :, None] * strides[1] - pads[2] + b          # w = j * sw - left + b
    return pooled, rows * x.shape[2] + cols


class MaxUnpooling2D(_Merge):
    """Max unpooling: `MaxUnpooling2D(pool_size=(2, 2), strides=None, padding='valid')([pooled, pool_input])`.

    pool_size, strides and padding are those of the MaxPooling2D that made `pooled` (strides=None means
    pool_size, as there). Shapes: [p (N, OH, OW, C), x (N, H, W, C)] -> y (N, H, W, C), where (OH, OW) must be
    the pooling's output size for (H, W). Formula and gradient: the module docstring.
    """

    n_inputs = 2

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        set_pool_arguments(self, pool_size, strides, padding)

    def _output_shape(self, shapes):
        (pooled, pool_input) = shapes
        if len(pool_input) != 3:
            raise ValueError(f"{self.name}: expects images [pooled (batch, OH, OW, C), pool_input (batch, H, W, "
                             f"C)], got shapes {pooled} and {pool_input} (without the batch axis)")
        out_hw, _ = _geometry(self.name, pool_input[:2], self.pool_size, self.strides, self.padding)
        if tuple(pooled) != tuple(out_hw) + (pool_input[2],):
            raise ValueError(f"{self.name}: pooled has shape (batch,) + {tuple(pooled)}, but pooling pool_input "
                             f"(batch,) + {tuple(pool_input)} with pool_size={self.pool_size}, strides="
                             f"{self.strides}, padding='{self.padding}' gives (batch,) + "
                             f"{tuple(out_hw) + (pool_input[2],)}")
        return tuple(pool_input)

    def forward(self, inputs, training=False):
        self.check_inputs(inputs)
        p, x = inputs
        out_hw, pads = _geometry(self.name, x.shape[1:3], self.pool_size, self.strides, self.padding)
        _, arg = kernels.max_pool2d(x, self.pool_size, self.strides, pads, out_hw)     # m(i, j) as a * KW + b
        self.save_for_backward(arg=arg, x_shape=x.shape, pads=pads, out_hw=out_hw)
        # y: each p[n, i, j, c] added at m(i, j), 0 elsewhere: max pooling's backward, applied to p
        return kernels.max_pool2d_backward(p, arg, x.shape, self.pool_size, self.strides, pads)

    def backward(self, grad):
        s = self.saved_for_backward()
        self.check_grad(grad)
        check_same_batch(self, grad, s.x_shape)
        # dL/dp[n, i, j, c] = g[n, m(i, j), c]: the entry arg of window (i, j) of g (padding never is an argmax)
        w = windows(grad, self.pool_size, self.strides, s.pads, s.out_hw, 0)          # (N, OH, OW, C, KH*KW)
        dp = np.take_along_axis(w, s.arg[..., None].astype(np.intp), axis=-1)[..., 0]
        return [dp, np.zeros(s.x_shape, dtype=grad.dtype)]                             # dL/dx = 0

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}


__all__ = ["MaxUnpooling2D", "max_pool2d_with_argmax"]
