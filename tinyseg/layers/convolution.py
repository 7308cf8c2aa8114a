"""Conv2D and Conv2DTranspose: one is the other's backward.

Convolution (cross-correlation, as in every framework), channels-last:

    x: (N, H, W, C)    kernel K: (KH, KW, C, F)    bias b: (F,)    y: (N, OH, OW, F)

    y[n, i, j, f] = b[f] + sum_{a, b, c} xpad[n, i*sh + a*dh, j*sw + b*dw, c] * K[a, b, c, f]

    OH = (H - KH') // sh + 1 for padding='valid', ceil(H / sh) for 'same' (rules in geometry.py)

The dilation (dh, dw) is 1 unless asked for (Keras's `dilation_rate`): an atrous convolution, whose KH taps
sit dh rows apart, so the window spans KH' = (KH - 1)*dh + 1 rows (KW' likewise) with the same KH*KW*C
weights; KH' takes KH's place in the output-size and padding rules. As in Keras, Conv2D refuses a stride
above 1 together with a dilation above 1.

im2col turns it into one matrix product:

    cols = im2col(x)                   (N*OH*OW, KH*KW*C)   (the dilated taps of each window: still KH*KW*C)
    Kmat = K.reshape(KH*KW*C, F)
    y    = cols @ Kmat + b             (N*OH*OW, F) -> reshape (N, OH, OW, F)

Backward, with G = dL/dy reshaped to (N*OH*OW, F):

    dL/dKmat = cols^T @ G              (KH*KW*C, F)
    dL/db    = sum of G over its rows  (F,)
    dL/dx    = col2im(G @ Kmat^T)      (N, H, W, C)    <- a transposed convolution of G with the same K

(For stride 1, conv2d_transpose computes the same numbers as a convolution of G with the spatially flipped
kernel and the same dilation, which is faster; see its body.)

Bands. The whole cols matrix is KH*KW times the size of x (tens of MB in a U-Net's first layers); written to
memory and read back by the matmul it costs more than the arithmetic when F is small. So conv2d and
conv2d_kernel_grad build it one band of output rows at a time, a few MB that stay in the cache between the
im2col that writes them and the matmul that reads them:

    y[band]   = im2col(x)[band] @ Kmat                    one matmul per band, written into its rows of y
    dL/dKmat  = sum over bands of im2col(x)[band]^T @ G[band]

The numbers are those of the formulas above; only the order of the work changes.

The input-gradient line, dL/dx = col2im(G @ Kmat^T), is the whole definition of a transposed convolution: `conv2d_transpose` below is the adjoint
of `conv2d` (for every x and y, <conv2d(x), y> = <x, conv2d_transpose(y)>). So Conv2DTranspose.forward calls
conv2d_transpose, and its backward calls conv2d: a U-Net decoder is an encoder run backwards.
"""
import numpy as np

from .. import initializers, regularizers
from ..kernels.bands import add_bias_rows, matmul_rows, run_bands, scratch
from ..kernels.config import get_num_threads
from ..kernels.elementwise import add_bias
from ..kernels.im2col import col2im, im2col
from .activations import ActivatedLayer
from .base import channel_sum
from .geometry import check_padding, conv_geometry, deconv_output_length, effective_kernel, pair, positive_int


BAND_BYTES = 4 * 2**20      # size of one band of im2col rows: a cache-sized piece, yet a long matmul


def bands(n, oh, row_bytes, min_bands=1):
    """Split the N*OH output rows into bands (i0, i1, y0, y1): images i0..i1-1, output rows y0..y1-1.

    row_bytes is the im2col size of one output row (OW*KH*KW*C values). A band is either part of one image
    or several whole images, so its rows are consecutive in the (N*OH*OW, ...) order. min_bands: make at
    least about this many bands when there are enough rows (one per thread), even if they are smaller.
    """
    rows = max(1, BAND_BYTES // row_bytes)
    rows = max(1, min(rows, -(-n * oh // min_bands)))
    if rows >= oh:
        per = rows // oh
        per = -(-n // -(-n // per))              # images per band, as even as possible
        for i in range(0, n, per):
            yield i, min(i + per, n), 0, oh
    else:
        rows = -(-oh // -(-oh // rows))          # as many bands as needed, of (nearly) equal height
        for i in range(n):
            for y in range(0, oh, rows):
                yield i, i + 1, y, min(y + rows, oh)


def band_plan(x, ksize, out_hw):
    """The bands of a convolution of x, as (first row, number of rows, i0, i1, y0, y1) in N*OH*OW order."""
    (kh, kw), (oh, ow) = ksize, out_hw
    plan = []
    for i0, i1, y0, y1 in bands(x.shape[0], oh, ow * kh * kw * x.shape[3] * x.itemsize, get_num_threads()):
        plan.append(((i0 * oh + y0) * ow, (i1 - i0) * (y1 - y0) * ow, i0, i1, y0, y1))
    return plan


def band_im2col(x, plan_row, slot, ksize, strides, pads, out_hw, dilation):
    """im2col(x) for one band of the plan, written into the scratch buffer of the thread's slot."""
    _, rows, i0, i1, y0, y1 = plan_row
    (kh, kw), c = ksize, x.shape[3]
    return im2col(x[i0:i1], kh, kw, strides[0], strides[1], pads, out_hw, rows=(y0, y1), dilation=dilation,
                  out=scratch(slot, rows, kh * kw * c, x.dtype))


def conv2d(x, kernel, strides, pads, out_hw, bias=None, dilation=(1, 1)):
    """y = conv(x, kernel) (+ bias, if given): (N, OH, OW, F), one matmul per band of im2col rows.

    The bands are shared between threads (kernels/bands.py: each thread copies a band and multiplies it);
    every band writes its own rows of y.
    """
    kh, kw, c, f = kernel.shape
    x = np.ascontiguousarray(x)
    kmat = kernel.reshape(kh * kw * c, f)
    y = np.empty((x.shape[0] * out_hw[0] * out_hw[1], f), dtype=np.result_type(x, kernel))
    plan = band_plan(x, (kh, kw), out_hw)

    def band(k, slot):
        start, rows = plan[k][:2]
        out = y[start:start + rows]
        np.matmul(band_im2col(x, plan[k], slot, (kh, kw), strides, pads, out_hw, dilation), kmat, out=out)
        if bias is not None:
            add_bias_rows(out, bias)             # while the band's rows are still in this core's cache
    run_bands(band, len(plan))
    return y.reshape(x.shape[0], out_hw[0], out_hw[1], f)


def conv2d_kernel_grad(x, g, ksize, strides, pads, dilation=(1, 1), bias=False):
    """dL/dKmat = im2col(x)^T @ G: (KH*KW*C, F) for x (N, H, W, C) and G = dL/dy (N, OH, OW, F), band by band.

    Returns (dL/dKmat, dL/db), dL/db = the sum of G over its rows (F,) if bias is True, else None. Each band
    adds into its own partial sums, which are then added in band order: the same numbers on any thread count.
    """
    x = np.ascontiguousarray(x)
    g2 = np.ascontiguousarray(g).reshape(-1, g.shape[3])
    dtype = np.result_type(x, g)
    plan = band_plan(x, ksize, g.shape[1:3])
    parts = np.empty((len(plan), ksize[0] * ksize[1] * x.shape[3], g2.shape[1]), dtype=dtype)
    bias_parts = np.empty((len(plan), g2.shape[1]), dtype=dtype) if bias else None
    ones = np.ones(max(p[1] for p in plan), dtype=dtype) if bias else None

    def band(k, slot):
        start, rows = plan[k][:2]
        gb = g2[start:start + rows]
        cols = band_im2col(x, plan[k], slot, ksize, strides, pads, g.shape[1:3], dilation)
        np.matmul(cols.T, gb, out=parts[k])
        if bias:
            np.matmul(ones[:rows], gb, out=bias_parts[k])     # the bias gradient, from the band just read
    run_bands(band, len(plan))
    return parts.sum(axis=0), bias_parts.sum(axis=0) if bias else None


def conv2d_transpose(y, kernel, strides, pads, x_shape, bias=None, dilation=(1, 1)):
    """The adjoint of conv2d: maps y (N, OH, OW, F) back to shape x_shape (N, H, W, C) (+ bias, if given).

    x = col2im(y.reshape(-1, F) @ Kmat^T); every output pixel of the convolution spreads its value, weighted
    by the kernel, over the input window it was computed from.
    """
    kh, kw, c, f = kernel.shape
    (dh, dw), out_hw = dilation, y.shape[1:3]
    keh, kew = effective_kernel(kh, dh), effective_kernel(kw, dw)
    pt, pb, pl, pr = pads
    if strides == (1, 1) and min(pads) >= 0 and max(pt, pb) <= keh - 1 and max(pl, pr) <= kew - 1:
        # With stride 1 the adjoint is itself a convolution: of y with the kernel flipped in space and its
        # channel axes swapped, with the same dilation, padded by (K' - 1 - pad) on each side (K' the
        # effective kernel (K - 1)*d + 1). Per axis: the forward reads x[i + a*d - pt], so
        #     dx[h] = sum_a y[h - a*d + pt] K[a] = sum_a' ypad[h + a'*d] K[K-1-a'],  ypad top pad K' - 1 - pt.
        # im2col of y then replaces the large (N*OH*OW, KH*KW*C) matrix and the col2im that would sum it
        # back: about twice as fast.
        flipped = kernel[::-1, ::-1].transpose(0, 1, 3, 2)            # (KH, KW, F, C)
        back_pads = (keh - 1 - pt, keh - 1 - pb, kew - 1 - pl, kew - 1 - pr)
        return conv2d(y, np.ascontiguousarray(flipped), strides, back_pads, x_shape[1:3], bias, dilation)
    cols = matmul_rows(np.ascontiguousarray(y).reshape(-1, f), kernel.reshape(kh * kw * c, f).T)
    x = col2im(cols, x_shape, kh, kw, strides[0], strides[1], pads, out_hw, dilation=dilation)
    if bias is not None:
        add_bias(x, bias)                                              # x += bias, in one parallel pass
    return x


class _Convolution(ActivatedLayer):
    """What Conv2D and Conv2DTranspose share: arguments, checks, config."""

    regularizer_arguments = {"kernel": "kernel_regularizer", "bias": "bias_regularizer"}

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, **kwargs):
        super().__init__(activation=activation, **kwargs)
        self.kernel_regularizer = regularizers.get(kernel_regularizer, f"{self.name}: kernel_regularizer")
        self.bias_regularizer = regularizers.get(bias_regularizer, f"{self.name}: bias_regularizer")
        self.filters = positive_int(filters, f"{self.name}: filters")
        self.kernel_size = pair(kernel_size, f"{self.name}: kernel_size")
        self.strides = pair(strides, f"{self.name}: strides")
        self.padding = check_padding(padding)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "use_bias": self.use_bias,
                **regularizers.config_entries(self, self.regularizer_arguments.values())}

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


def check_strides_with_dilation(layer):
    """Keras's Conv2D refuses strides > 1 together with dilation_rate > 1 (TensorFlow's convolution has no
    such kernel); so does ours, with the same message, so a model written for one runs on the other."""
    if max(layer.strides) > 1 and max(layer.dilation_rate) > 1:
        raise ValueError(f"{layer.name}: strides > 1 is not supported together with dilation_rate > 1; got "
                         f"strides={layer.strides} and dilation_rate={layer.dilation_rate}")


class Conv2D(_Convolution):
    """2-D convolution layer, Keras's `Conv2D(filters, kernel_size, strides, padding, dilation_rate, activation,
    use_bias)`.

    Shapes: x (N, H, W, C) -> y (N, OH, OW, filters); kernel (KH, KW, C, filters); bias (filters,).
    Formula, output size and gradients: see the module docstring. Weights start as Keras's do:
    glorot-uniform kernel, zero bias. dilation_rate (int or pair, default 1) spaces the kernel's taps; with it
    above 1 the strides must be 1 (Keras's rule). kernel_regularizer, bias_regularizer (e.g.
    tinyseg.regularizers.L2(1e-4)) add a penalty on those weights to the training loss.
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", dilation_rate=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, activation=activation,
                         use_bias=use_bias, kernel_initializer=kernel_initializer,
                         bias_initializer=bias_initializer, **kwargs)
        self.dilation_rate = pair(dilation_rate, f"{self.name}: dilation_rate")
        check_strides_with_dilation(self)

    def get_config(self):
        return {**super().get_config(), "dilation_rate": self.dilation_rate}

    def compute_output_shape(self, input_shape):
        check_image_shape(self, input_shape)
        (oh, ow), self.pads = conv_geometry(input_shape[:2], self.kernel_size, self.strides, self.padding,
                                           self.dilation_rate)
        return oh, ow, self.filters

    def kernel_shape(self, channels):
        return self.kernel_size + (channels, self.filters)

    def forward_linear(self, x, training=False):
        self.check_input(x)
        self._x = x
        return conv2d(x, self.params["kernel"], self.strides, self.pads, self.output_shape[:2],
                      self.params.get("bias"), self.dilation_rate)

    def backward_linear(self, grad, input_grad=True):
        kernel = self.params["kernel"]
        grad = np.ascontiguousarray(grad)            # a view (from Concatenate's backward) is copied once
        dk, db = conv2d_kernel_grad(self._x, grad, self.kernel_size, self.strides, self.pads, self.dilation_rate,
                                    bias=self.use_bias)
        self.grads["kernel"] = dk.reshape(kernel.shape)
        if self.use_bias:
            self.grads["bias"] = db
        if not input_grad:
            return None
        return conv2d_transpose(grad, kernel, self.strides, self.pads, self._x.shape, dilation=self.dilation_rate)


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
    Keras's dilation_rate is left out here (a U-Net decoder does not use it); conv2d_transpose, the function,
    takes a dilation for Conv2D's backward.
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
        return conv2d_transpose(x, self.params["kernel"], self.strides, self.pads,
                                (x.shape[0],) + self.output_shape, self.params.get("bias"))

    def backward_linear(self, grad, input_grad=True):
        kernel = self.params["kernel"]
        grad = np.ascontiguousarray(grad)            # a view (from Concatenate's backward) is copied once
        dx = conv2d(grad, kernel, self.strides, self.pads, self.input_shape[:2])
        # dK = im2col(dy)^T @ x: the kernel gradient of the convolution dy -> x, with x in the place of G
        self.grads["kernel"] = conv2d_kernel_grad(grad, self._x, self.kernel_size, self.strides,
                                                  self.pads)[0].reshape(kernel.shape)
        if self.use_bias:
            self.grads["bias"] = channel_sum(grad)
        return dx
