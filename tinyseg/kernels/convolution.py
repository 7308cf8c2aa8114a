"""The convolution's three steps, done band by band: what layers/conv2d.py calls on its fast path.

    conv2d_forward(x, K, b)        y, and im2col(x) where it is worth keeping     Conv2D's forward
    conv2d_backward(x, cols, G, K) dKmat, db, dx                                  Conv2D's backward

are those of the layer, made of the three steps:

    conv2d(x, K)                   y     = im2col(x) @ Kmat (+ b)            the forward
    conv2d_kernel_grad(x, G)       dKmat = im2col(x)^T @ G,  db = sum of G   the kernel (and bias) gradient
    conv2d_transpose(G, K)         dx    = col2im(G @ Kmat^T)                the input gradient, and the
                                                                             forward of Conv2DTranspose

The formulas, shapes and output sizes are in layers/conv2d.py; tinyseg/reference.py has them as plain loops.
This module is about doing them fast; the numbers are those of the formulas, only the order of the work
changes.

Bands. The whole cols matrix is KH*KW times the size of x (tens of MB in a U-Net's first layers); written to
memory and read back by the matmul it costs more than the arithmetic when F is small. So conv2d and
conv2d_kernel_grad work one band of output rows at a time, a few MB that stay in the cache between the copy
that writes them and the matmul that reads them.

One kernel row at a time. Kmat's rows are ordered (u, v, c), so it is KH blocks K_u (KW*C, F), one per kernel
row u, and the columns of cols are the same KH blocks: cols_u, the windows of width KW that output row i reads
from input row i*SH - pad_top + u*DH. So

    y[band]      = sum over u of  cols_u[band] @ K_u
    dL/dK_u      = sum over bands of  cols_u[band]^T @ G[band]

With SH = 1 the KH blocks are the same input rows shifted by DH: within one image, one array of rows
(im2col.im2row, windows along the width only) holds them all, and cols_u is a view into it. For a 3x3 kernel
that copies a third of what the full cols would, and the KH products cost about what one product of the full
cols does. Where that does not pay (by_kernel_rows says when) a band copies its full cols, one block.

The bands are shared between tinyseg's threads (kernels/bands.py: each thread copies a band into its own
scratch buffers and multiplies it); every band writes its own rows of y, or its own partial sum.

Stride 1. The adjoint conv2d_transpose is then itself a convolution, of G with the kernel flipped in space
(see its body), which replaces the large G @ Kmat^T matrix and the col2im that sums it back.
"""
import numpy as np

from .bands import add_bias_rows, ceil_div, even_share, matmul_rows, run_bands, scratch
from .config import get_num_threads
from .elementwise import add_bias
from .im2col import FEW_CHANNELS, col2im, effective_kernel, im2col, im2row

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


def by_kernel_rows(x, plan, ksize, strides):
    """True if this convolution's bands copy their input rows once for all kernel rows (im2row), False if
    each band copies its full im2col. Kernel rows pay where a band lies within one image (SH = 1) and its
    width windows are wide: for an RGB layer (KW*C = 9) three products as narrow as that cost more than the
    copy they save, and a band of many small images would be many small products."""
    return strides[0] == 1 and ksize[0] > 1 and plan[0][3] - plan[0][2] == 1 and ksize[1] * x.shape[3] >= 32


def band_cols(x, plan_row, slot, ksize, strides, pads, out_hw, dilation, rows_of_kernel, kept=None):
    """The band's im2col as column blocks: [cols] (band rows * OW, KH*KW*C), or with rows_of_kernel its KH
    blocks [cols_0, ..., cols_KH-1], each (band rows * OW, KW*C) and a view into one array of input rows.
    Either way in the scratch buffer of the thread's slot (see the module docstring), or, given `kept` (the
    whole im2col, (N*OH*OW, KH*KW*C), without rows_of_kernel), in the band's rows of it."""
    start, rows, i0, i1, y0, y1 = plan_row
    (kh, kw), (dh, dw), c = ksize, dilation, x.shape[3]
    if (kh, kw) == (1, 1) and tuple(strides) == (1, 1) and not any(pads) and kept is None:
        return [x.reshape(-1, c)[start:start + rows]]         # a 1x1 window is the pixel: im2col(x) is x
    if not rows_of_kernel:
        out = scratch(slot, (rows, kh * kw * c), x.dtype) if kept is None else kept[start:start + rows]
        return [im2col(x[i0:i1], kh, kw, strides[0], strides[1], pads, out_hw, rows=(y0, y1), dilation=dilation,
                       out=out)]
    count, ow = y1 - y0 + (kh - 1) * dh, out_hw[1]          # the band's input rows, from kernel row 0's first
    inputs = im2row(x[i0:i1], kw, strides[1], pads[2], ow, y0 - pads[0], count, dw=dw,
                    out=scratch(slot, (1, count, ow, kw * c), x.dtype))
    return [inputs[0, a * dh:a * dh + y1 - y0].reshape(rows, kw * c) for a in range(kh)]


def conv2d_forward(x, kernel, bias, strides, pads, out_hw, dilation, training):
    """Conv2D's forward, fast: (z, cols). z = im2col(x) @ Kmat + bias (bias may be None); cols is the whole
    im2col for the backward where it is worth keeping, else None (the backward copies it again, band by band).

    Kept: in training, for an image of few channels (the RGB input), whose im2col is small (27 values a
    pixel) and costs as much to copy as to multiply. For wider layers it is KH*KW times the size of x.
    """
    if training and x.shape[-1] < FEW_CHANNELS:
        return conv2d(x, kernel, strides, pads, out_hw, bias, dilation, keep_cols=True)
    return conv2d(x, kernel, strides, pads, out_hw, bias, dilation), None


def conv2d_backward(x, cols, grad, kernel, strides, pads, dilation, bias, input_grad):
    """Conv2D's backward, fast: (dL/dK (KH, KW, C, F), dL/db (F,) or None without bias, dL/dx or None without
    input_grad), for G = grad (N, OH, OW, F) and the forward's x and cols (conv2d_forward)."""
    grad = np.ascontiguousarray(grad)            # a view (from Concatenate's backward) is copied once
    dk, db = conv2d_kernel_grad(x, grad, kernel.shape[:2], strides, pads, dilation, bias=bias, cols=cols)
    dx = conv2d_transpose(grad, kernel, strides, pads, x.shape, dilation=dilation) if input_grad else None
    return dk.reshape(kernel.shape), db, dx


def conv2d(x, kernel, strides, pads, out_hw, bias=None, dilation=(1, 1), keep_cols=False):
    """y = im2col(x) @ Kmat (+ bias, if given): x (N, H, W, C), kernel (KH, KW, C, F) -> y (N, OH, OW, F).

    keep_cols: return (y, cols) instead, cols the whole im2col (N*OH*OW, KH*KW*C) for conv2d_kernel_grad to
    reuse, or None where the bands copy rows of the kernel (then there is no whole im2col to keep).
    """
    kh, kw, c, f = kernel.shape
    x = np.ascontiguousarray(x)
    y = np.empty((x.shape[0] * out_hw[0] * out_hw[1], f), dtype=np.result_type(x, kernel))
    plan = band_plan(x, (kh, kw), out_hw)
    rows_of_kernel = by_kernel_rows(x, plan, (kh, kw), strides)
    kmats = np.ascontiguousarray(kernel).reshape(kh if rows_of_kernel else 1, -1, f)   # K_a, or all of Kmat
    kept = np.empty((y.shape[0], kh * kw * c), dtype=x.dtype) if keep_cols and not rows_of_kernel else None

    def band(k, slot):
        start, rows = plan[k][:2]
        blocks = band_cols(x, plan[k], slot, (kh, kw), strides, pads, out_hw, dilation, rows_of_kernel, kept)
        out = y[start:start + rows]
        np.matmul(blocks[0], kmats[0], out=out)                        # y = cols_0 @ K_0
        if len(blocks) > 1:
            part = scratch(slot, out.shape, y.dtype, kind="product")
            for a in range(1, len(blocks)):                            #   + cols_a @ K_a
                np.add(out, np.matmul(blocks[a], kmats[a], out=part), out=out)
        if bias is not None:
            add_bias_rows(out, bias)                                   # while the rows are in this core's cache
    run_bands(band, len(plan))
    y = y.reshape(x.shape[0], out_hw[0], out_hw[1], f)
    return (y, kept) if keep_cols else y


def conv2d_kernel_grad(x, g, ksize, strides, pads, dilation=(1, 1), bias=False, cols=None):
    """dL/dKmat = im2col(x)^T @ G: (KH*KW*C, F) for x (N, H, W, C) and G = dL/dy (N, OH, OW, F).

    Returns (dL/dKmat, dL/db), dL/db = the sum of G over its rows (F,) if bias is True, else None. Each band
    adds into its own partial sums, which are then added in band order. cols: im2col(x) as the forward kept
    it (conv2d(keep_cols=True)), read instead of copied again; None to copy it band by band.
    """
    f = g.shape[3]
    x = np.ascontiguousarray(x)
    g2 = np.ascontiguousarray(g).reshape(-1, f)
    dtype = np.result_type(x, g)
    plan = band_plan(x, ksize, g.shape[1:3])
    rows_of_kernel = by_kernel_rows(x, plan, ksize, strides) and cols is None
    if cols is not None and cols.shape != (g2.shape[0], ksize[0] * ksize[1] * x.shape[3]):
        raise ValueError(f"conv2d_kernel_grad: cols must be im2col(x) of shape "
                         f"{(g2.shape[0], ksize[0] * ksize[1] * x.shape[3])}, got {cols.shape}")
    blocks = ksize[0] if rows_of_kernel else 1
    parts = np.empty((len(plan), blocks, ksize[0] * ksize[1] * x.shape[3] // blocks, f), dtype=dtype)
    bias_parts = np.empty((len(plan), f), dtype=dtype) if bias else None
    ones = np.ones(max(p[1] for p in plan), dtype=dtype) if bias else None

    def band(k, slot):
        start, rows = plan[k][:2]
        gb = g2[start:start + rows]
        if cols is None:
            blocks = band_cols(x, plan[k], slot, ksize, strides, pads, g.shape[1:3], dilation, rows_of_kernel)
        else:
            blocks = [cols[start:start + rows]]                        # the forward's copy of this band
        for a, block in enumerate(blocks):
            np.matmul(block.T, gb, out=parts[k, a])                    # dL/dK_a = cols_a^T @ G
        if bias:
            np.matmul(ones[:rows], gb, out=bias_parts[k])     # the bias gradient, from the band just read
    run_bands(band, len(plan))
    return parts.sum(axis=0).reshape(-1, f), bias_parts.sum(axis=0) if bias else None


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
