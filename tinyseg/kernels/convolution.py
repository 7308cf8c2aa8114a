"""The convolution's three steps, done band by band: what layers/conv2d.py calls, one function per step.

    conv2d(x, K)                   y     = im2col(x) @ Kmat (+ b)            the forward
    conv2d_kernel_grad(x, G)       dKmat = im2col(x)^T @ G,  db = sum of G   the kernel (and bias) gradient
    conv2d_transpose(G, K)         dx    = col2im(G @ Kmat^T)                the input gradient, and the
                                                                             forward of Conv2DTranspose

The formulas, shapes and output sizes are in layers/conv2d.py; tinyseg/reference.py has them as plain loops.
This module is about doing them fast; the numbers are those of the formulas, only the order of the work
changes.

Bands. The whole cols matrix is KH*KW times the size of x (tens of MB in a U-Net's first layers); written to
memory and read back by the matmul it costs more than the arithmetic when F is small. So conv2d and
conv2d_kernel_grad build it one band of output rows at a time, a few MB that stay in the cache between the
im2col that writes them and the matmul that reads them:

    y[band]   = im2col(x)[band] @ Kmat                    one matmul per band, written into its rows of y
    dL/dKmat  = sum over bands of im2col(x)[band]^T @ G[band]

The bands are shared between tinyseg's threads (kernels/bands.py: each thread copies a band into its own
scratch buffer and multiplies it); every band writes its own rows of y, or its own partial sum.

Stride 1. The adjoint conv2d_transpose is then itself a convolution, of G with the kernel flipped in space
(see its body), which replaces the large G @ Kmat^T matrix and the col2im that sums it back.
"""
import numpy as np

from .bands import add_bias_rows, ceil_div, even_share, matmul_rows, run_bands, scratch
from .config import get_num_threads
from .elementwise import add_bias
from .im2col import col2im, effective_kernel, im2col

BAND_BYTES = 4 * 2**20      # size of one band of im2col rows: a cache-sized piece, yet a long matmul


def bands(n, oh, row_bytes, min_bands=1):
    """Split the N*OH output rows into bands (i0, i1, y0, y1): images i0..i1-1, output rows y0..y1-1.

    row_bytes is the im2col size of one output row (OW*KH*KW*C values). A band is either part of one image
    or several whole images, so its rows are consecutive in the (N*OH*OW, ...) order. min_bands: make at
    least about this many bands when there are enough rows (one per thread), even if they are smaller.
    """
    rows = max(1, BAND_BYTES // row_bytes)
    rows = max(1, min(rows, ceil_div(n * oh, min_bands)))
    if rows >= oh:
        per = even_share(n, rows // oh)          # whole images per band
        for i in range(0, n, per):
            yield i, min(i + per, n), 0, oh
    else:
        rows = even_share(oh, rows)              # output rows per band, within one image
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
    """y = im2col(x) @ Kmat (+ bias, if given): x (N, H, W, C), kernel (KH, KW, C, F) -> y (N, OH, OW, F)."""
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
    """dL/dKmat = im2col(x)^T @ G: (KH*KW*C, F) for x (N, H, W, C) and G = dL/dy (N, OH, OW, F).

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
    """x = col2im(y @ Kmat^T) (+ bias, if given): the adjoint of conv2d, y (N, OH, OW, F) -> x_shape (N, H, W, C).

    Every output pixel of the convolution spreads its value, weighted by the kernel, over the input window
    it was computed from.
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
        # im2col of y then replaces the large (N*OH*OW, KH*KW*C) matrix and the col2im that would sum it back.
        flipped = kernel[::-1, ::-1].transpose(0, 1, 3, 2)            # (KH, KW, F, C)
        back_pads = (keh - 1 - pt, keh - 1 - pb, kew - 1 - pl, kew - 1 - pr)
        return conv2d(y, np.ascontiguousarray(flipped), strides, back_pads, x_shape[1:3], bias, dilation)
    cols = matmul_rows(np.ascontiguousarray(y).reshape(-1, f), kernel.reshape(kh * kw * c, f).T)
    x = col2im(cols, x_shape, kh, kw, strides[0], strides[1], pads, out_hw, dilation=dilation)
    if bias is not None:
        add_bias(x, bias)                                              # x += bias, in one parallel pass
    return x
