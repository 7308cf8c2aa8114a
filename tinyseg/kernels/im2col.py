"""im2col and col2im for channels-last images: the two copies that turn a convolution into one matmul.

Geometry shared by both (one spatial axis shown, the other is the same):

    output row i reads input rows  h = i * stride - pad_before + u * dilation,   u = 0 .. KH-1 (the tap)
    rows with h < 0 or h >= H are padding and read as 0.

The dilation (atrous convolution; 1 unless asked for) spaces the KH taps of a window `dilation` rows apart,
so a window spans (KH - 1) * dilation + 1 rows (effective_kernel) while cols keeps KH * KW * C columns.

im2col(x) -> cols
    x:    (N, H, W, C)
    cols: (N * OH * OW, KH * KW * C), row (n, i, j), column (u, v, c) in that order, which is exactly how a
          Keras kernel (KH, KW, C, F) flattens, so ``cols @ kernel.reshape(-1, F)`` is the convolution.
    With rows=(y0, y1) only output rows y0 <= i < y1 of each image are made: (N * (y1 - y0) * OW, ...), a
    band of the full matrix. A convolution works band by band (see kernels/convolution.py).

im2row(x) -> rows
    im2col along the width only, for whole input rows: rows[n, k, j, (v, c)] = x[n, first + k*step,
    j*SW - pad_left + v*DW, c] (0 outside x), shape (N, count, OW, KW * C). The im2col of kernel row u is
    made of these rows: output row i reads input row i*SH - pad_top + u*DH. With SH = 1, consecutive output
    rows read consecutive input rows, so the KH kernel rows share one array of rows, a third of the size of
    the full cols for a 3x3 kernel (kernels/convolution.py uses it that way).

col2im(cols) -> x
    The adjoint (transpose) of im2col: every entry of cols is added back to the input pixel it was copied
    from; pixels read by several windows get the sum. This is the backward of im2col, and the forward of a
    transposed convolution.

Each function has a plain NumPy twin (``*_numpy``) that defines what the Numba kernel must compute; tests prove
them equal. The Numba versions avoid building a padded copy and, for col2im, gather instead of scatter so
that every output pixel is written by one thread only.
"""
import numpy as np

from .bands import piece, run_pieces
from .config import get_backend, jit, pjit
from .windows import window_index


def effective_kernel(kernel, dilation):
    """(kernel - 1) * dilation + 1: how many input pixels a dilated window spans on one axis."""
    return (kernel - 1) * dilation + 1


# ----------------------------------------------------------------------------------------------------------
# NumPy twins: one strided slice per kernel offset (a, b).
# ----------------------------------------------------------------------------------------------------------
def im2col_numpy(x, kh, kw, sh, sw, pads, out_hw, out=None, rows=None, dilation=(1, 1)):
    """NumPy im2col. pads = (top, bottom, left, right); out_hw = (OH, OW); rows = (y0, y1) or None (all);
    dilation = (dh, dw)."""
    n, h, w, c = x.shape
    oh, ow = out_hw
    y0, y1 = rows or (0, oh)
    pt, pb, pl, pr = pads
    dh, dw = dilation
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    cols = np.empty((n, y1 - y0, ow, kh, kw, c), dtype=x.dtype)
    for a in range(kh):
        for b in range(kw):
            top, left = a * dh + sh * y0, b * dw         # padded-image position of offset (a, b) in window (y0, 0)
            cols[:, :, :, a, b, :] = xp[:, top:top + sh * (y1 - y0 - 1) + 1:sh, left:left + sw * (ow - 1) + 1:sw, :]
    cols = cols.reshape(n * (y1 - y0) * ow, kh * kw * c)
    if out is not None:
        out[...] = cols
        return out
    return cols


def im2row_numpy(x, kw, sw, pl, ow, first, count, step=1, dw=1, out=None):
    """NumPy im2row: input rows first, first + step, ... (count of them), windows along the width."""
    n, h, w, c = x.shape
    hs = first + step * np.arange(count)
    inside = (hs >= 0) & (hs < h)
    pr = max(0, (ow - 1) * sw - pl + (kw - 1) * dw + 1 - w)
    picked = np.zeros((n, count, w + pl + pr, c), dtype=x.dtype)
    picked[:, inside, pl:pl + w] = x[:, hs[inside]]
    rows = np.empty((n, count, ow, kw, c), dtype=x.dtype)
    for b in range(kw):
        rows[:, :, :, b, :] = picked[:, :, b * dw:b * dw + sw * (ow - 1) + 1:sw, :]
    rows = rows.reshape(n, count, ow, kw * c)
    if out is not None:
        out[...] = rows
        return out
    return rows


def col2im_numpy(cols, x_shape, kh, kw, sh, sw, pads, out_hw, out=None, dilation=(1, 1)):
    """NumPy col2im: add each column block back where im2col copied it from."""
    n, h, w, c = x_shape
    oh, ow = out_hw
    pt, pb, pl, pr = pads
    dh, dw = dilation
    cols6 = cols.reshape(n, oh, ow, kh, kw, c)
    xp = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=cols.dtype)
    for a in range(kh):
        for b in range(kw):
            top, left = a * dh, b * dw
            xp[:, top:top + sh * (oh - 1) + 1:sh, left:left + sw * (ow - 1) + 1:sw, :] += cols6[:, :, :, a, b, :]
    x = xp[:, pt:pt + h, pl:pl + w, :]
    if out is not None:
        out[...] = x
        return out
    return np.ascontiguousarray(x)


# ----------------------------------------------------------------------------------------------------------
# Numba kernels.
# ----------------------------------------------------------------------------------------------------------
# Below this many channels the copy loops over whole window rows (KW*C values at once); above it, per pixel.
FEW_CHANNELS = 8


@jit
def _few_channel_row(x, i, hi, kw, sw, dw, pl, ow, dst, base):
    """dst[xo, base + (b, c)] = x[i, hi, xo*sw - pl + b*dw, c] for xo < OW (0 outside x): what input row hi
    gives each of OW windows, for an image of few channels.

    A loop over 3 channels (an RGB image) spends most of its time starting and ending; with dw = 1 a window
    inside the row is KW*C consecutive values of x, copied in one loop instead.
    """
    n, h, w, c = x.shape
    span = kw * c
    if hi < 0 or hi >= h:
        for xo in range(ow):
            for j in range(span):
                dst[xo, base + j] = 0
        return
    src = x[i, hi].reshape(w * c)       # the input row as one run of W*C values
    for xo in range(ow):
        w0 = xo * sw - pl
        out = dst[xo, base:base + span]
        if dw == 1 and w0 >= 0 and w0 + kw <= w:
            window = src[w0 * c:w0 * c + span]
            for j in range(span):
                out[j] = window[j]
        else:
            for b in range(kw):
                wi = w0 + b * dw
                inside = 0 <= wi < w
                for ch in range(c):
                    out[b * c + ch] = src[wi * c + ch] if inside else 0


@jit
def _im2col_numba(x, kh, kw, sh, sw, dh, dw, pt, pl, y0, y1, ow, cols):
    # Serial on purpose: a convolution calls it once per band of a few MB, between two matmuls, on the
    # thread that runs the band (kernels/bands.py). Handing each band to another pool of threads while
    # OpenBLAS's threads still spin on the other cores costs more than the copy itself.
    n, h, w, c = x.shape
    band = y1 - y0
    for row in range(n * band):         # one output row (image i, row y) per iteration
        i = row // band
        y = y0 + row - i * band
        if c < FEW_CHANNELS:
            for a in range(kh):
                _few_channel_row(x, i, y * sh - pt + a * dh, kw, sw, dw, pl, ow, cols[row * ow:(row + 1) * ow],
                                 a * kw * c)
            continue
        for xo in range(ow):
            r = row * ow + xo
            for a in range(kh):
                hi = y * sh - pt + a * dh
                for b in range(kw):
                    wi = xo * sw - pl + b * dw
                    base = (a * kw + b) * c
                    if 0 <= hi < h and 0 <= wi < w:
                        for ch in range(c):
                            cols[r, base + ch] = x[i, hi, wi, ch]
                    else:
                        for ch in range(c):
                            cols[r, base + ch] = 0


@jit
def _im2row_numba(x, kw, sw, dw, pl, first, step, ow, rows):
    n, h, w, c = x.shape
    count = rows.shape[1]
    for i in range(n):
        for j in range(count):
            hi = first + j * step
            for xo in range(ow):
                for b in range(kw):
                    wi = xo * sw - pl + b * dw
                    base = b * c
                    if 0 <= hi < h and 0 <= wi < w:
                        for ch in range(c):
                            rows[i, j, xo, base + ch] = x[i, hi, wi, ch]
                    else:
                        for ch in range(c):
                            rows[i, j, xo, base + ch] = 0


@pjit
def _col2im_numba(chunk, chunks, cols, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, x):
    n, h, w, c = x.shape
    for row in range(*piece(n * h, chunk, chunks)):     # one input row (image i, row hi) each: no write races
        i, hi = divmod(row, h)
        x[i, hi] = 0                                  # this row of x, before the windows add to it
        for wi in range(w):
            for a in range(kh):
                y = window_index(hi, pt, a * dh, sh, oh)  # the output row whose window puts tap a on hi
                if y < 0:
                    continue
                for b in range(kw):
                    xo = window_index(wi, pl, b * dw, sw, ow)
                    if xo < 0:
                        continue
                    r = (i * oh + y) * ow + xo
                    base = (a * kw + b) * c
                    for ch in range(c):
                        x[i, hi, wi, ch] += cols[r, base + ch]


# ----------------------------------------------------------------------------------------------------------
# Public entry points: pick the backend, allocate (or reuse) the output.
# ----------------------------------------------------------------------------------------------------------
def im2col(x, kh, kw, sh, sw, pads, out_hw, out=None, rows=None, dilation=(1, 1)):
    """Copy every (KH, KW) window of x (N, H, W, C) into a row of a (N*OH*OW, KH*KW*C) matrix.

    pads = (top, bottom, left, right) zero padding; out_hw = (OH, OW). rows = (y0, y1): only output rows
    y0 <= y < y1 of each image, (N*(y1-y0)*OW, KH*KW*C). `out`, if given, is filled and returned (layers pass
    a buffer they keep between steps: a fresh one costs a page fault per 4 KB on first touch).
    dilation = (dh, dw): the taps of a window are dh rows and dw columns apart.
    """
    n, h, w, c = x.shape
    oh, ow = out_hw
    y0, y1 = rows or (0, oh)
    if not 0 <= y0 < y1 <= oh:
        raise ValueError(f"im2col: rows must satisfy 0 <= y0 < y1 <= OH = {oh}, got {rows}")
    shape = (n * (y1 - y0) * ow, kh * kw * c)
    if out is None or out.shape != shape or out.dtype != x.dtype:
        out = np.empty(shape, dtype=x.dtype)
    if get_backend() == "numpy":
        return im2col_numpy(x, kh, kw, sh, sw, pads, out_hw, out=out, rows=(y0, y1), dilation=dilation)
    _im2col_numba(np.ascontiguousarray(x), kh, kw, sh, sw, dilation[0], dilation[1], pads[0], pads[2], y0, y1,
                  ow, out)
    return out


def im2row(x, kw, sw, pl, ow, first, count, step=1, dw=1, out=None):
    """The width windows of input rows first, first + step, ... of x (N, H, W, C): (N, count, OW, KW*C).

    rows[i, j, xo, (b, c)] = x[i, first + j*step, xo*sw - pl + b*dw, c], and 0 where that row or column is
    outside x (rows above or below it are the top and bottom padding). `out`, if given, is filled and returned.
    """
    n, h, w, c = x.shape
    for name, value in (("kw", kw), ("sw", sw), ("ow", ow), ("count", count), ("step", step), ("dw", dw)):
        if value < 1:
            raise ValueError(f"im2row: {name} must be a positive integer, got {value}")
    shape = (n, count, ow, kw * c)
    if out is None or out.shape != shape or out.dtype != x.dtype:
        out = np.empty(shape, dtype=x.dtype)
    if get_backend() == "numpy":
        return im2row_numpy(x, kw, sw, pl, ow, first, count, step, dw, out=out)
    _im2row_numba(np.ascontiguousarray(x), kw, sw, dw, pl, first, step, ow, out)
    return out


def col2im(cols, x_shape, kh, kw, sh, sw, pads, out_hw, out=None, dilation=(1, 1)):
    """Sum the rows of cols (N*OH*OW, KH*KW*C) back into an image of shape x_shape (N, H, W, C)."""
    x_shape = tuple(x_shape)
    if out is None or out.shape != x_shape or out.dtype != cols.dtype:
        out = np.empty(x_shape, dtype=cols.dtype)
    if get_backend() == "numpy":
        return col2im_numpy(cols, x_shape, kh, kw, sh, sw, pads, out_hw, out=out, dilation=dilation)
    run_pieces(_col2im_numba, np.ascontiguousarray(cols), kh, kw, sh, sw, dilation[0], dilation[1], pads[0], pads[2],
                  out_hw[0], out_hw[1], out)
    return out
