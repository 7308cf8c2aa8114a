"""The window loops of max and average pooling, channels-last: forward, backward, NumPy twins, Numba kernels.

The formulas, shapes and output sizes are in layers/pooling.py (stated there once); tinyseg/reference.py has
them as plain loops. What this module adds:

    max_pool2d(x)                 -> y, arg      arg[n, i, j, c] = u * KW + v of the window's maximum (int32):
                                                 the first in row-major (u, v) order on a tie, the only one
                                                 that receives the gradient
    max_pool2d_backward(dy, arg)  -> dx          each dy added to the pixel its arg points at
    avg_pool2d(x)                 -> y
    avg_pool2d_backward(dy)       -> dx

Every window holds at least one real pixel ('same' pads fewer than KH rows in all, so the first window
starts on row 0 at the latest and the last one starts before row H). Inputs are assumed free of NaN (a
NaN's place in a max is not defined here).

Each function has a plain NumPy twin (``*_numpy``) that defines what the Numba kernel must compute; the tests
prove them equal. The Numba forward kernels visit only the real part of each window; the backward kernels
gather (each input pixel sums what its windows send it) instead of scattering, so every input pixel is
written by one thread only and the threads never race, even when windows overlap. When they do not overlap
(strides == pool_size, the usual 2x2 / 2) max pooling's backward kernel lets each window write its own
block instead, which needs no search for the windows of a pixel: the same numbers, chosen inside
max_pool2d_backward.
"""
import numpy as np

from .bands import piece, run_pieces
from .config import get_backend, pjit
from .windows import real_taps, window_index


# ----------------------------------------------------------------------------------------------------------
# NumPy twins: one strided slice of the padded image per window offset (a, b).
# ----------------------------------------------------------------------------------------------------------
def _pad_hw(x, pads, value):
    """x padded with `value`: pads = (top, bottom, left, right) on the two spatial axes."""
    pt, pb, pl, pr = pads
    return np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=value)


def _window(xp, a, b, strides, out_hw):
    """The (N, OH, OW, C) view of the padded image xp that window offset (a, b) reads:
    element [n, i, j, c] is xp[n, a + i*sh, b + j*sw, c]."""
    (sh, sw), (oh, ow) = strides, out_hw
    return xp[:, a:a + sh * (oh - 1) + 1:sh, b:b + sw * (ow - 1) + 1:sw, :]


def _real_mask(in_hw, pads, dtype):
    """(1, H + pt + pb, W + pl + pr, 1): 1 on real pixels, 0 on padding."""
    return _pad_hw(np.ones((1,) + tuple(in_hw) + (1,), dtype=dtype), pads, 0)


def window_counts_numpy(in_hw, pool_size, strides, pads, out_hw, dtype=np.float64):
    """count[0, i, j, 0] = number of real pixels in window (i, j), shape (1, OH, OW, 1)."""
    real = _real_mask(in_hw, pads, dtype)
    count = np.zeros((1,) + tuple(out_hw) + (1,), dtype=dtype)
    for a in range(pool_size[0]):
        for b in range(pool_size[1]):
            count += _window(real, a, b, strides, out_hw)
    return count


def max_pool2d_numpy(x, pool_size, strides, pads, out_hw):
    """NumPy max pooling. Returns (y, arg), both (N, OH, OW, C); arg = a*KW + b of the first maximum."""
    kh, kw = pool_size
    n, h, w, c = x.shape
    xp = _pad_hw(x, pads, -np.inf)                   # -inf never beats a real pixel
    real = _real_mask((h, w), pads, bool)
    y = np.full((n,) + tuple(out_hw) + (c,), -np.inf, dtype=x.dtype)
    for a in range(kh):
        for b in range(kw):
            np.maximum(y, _window(xp, a, b, strides, out_hw), out=y)
    # Second pass: the first offset in scan order that holds the maximum (and is not padding) is the argmax.
    arg = np.full(y.shape, -1, dtype=np.int32)
    for a in range(kh):
        for b in range(kw):
            first = (arg < 0) & (_window(xp, a, b, strides, out_hw) == y) & _window(real, a, b, strides, out_hw)
            arg[first] = a * kw + b
    return y, arg


def max_pool2d_backward_numpy(grad, arg, x_shape, pool_size, strides, pads):
    """NumPy max-pool backward: send each dy[n, i, j, c] to the pixel arg[n, i, j, c] points at."""
    kh, kw = pool_size
    n, h, w, c = x_shape
    pt, pb, pl, pr = pads
    out_hw = grad.shape[1:3]
    dxp = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=grad.dtype)
    for a in range(kh):
        for b in range(kw):
            target = _window(dxp, a, b, strides, out_hw)          # a view: += writes into dxp
            target += np.where(arg == a * kw + b, grad, 0)
    return np.ascontiguousarray(dxp[:, pt:pt + h, pl:pl + w, :])


def avg_pool2d_numpy(x, pool_size, strides, pads, out_hw):
    """NumPy average pooling over the real pixels of each window. Returns y (N, OH, OW, C)."""
    n, h, w, c = x.shape
    xp = _pad_hw(x, pads, 0)                         # zeros add nothing to the sum ...
    total = np.zeros((n,) + tuple(out_hw) + (c,), dtype=x.dtype)
    for a in range(pool_size[0]):
        for b in range(pool_size[1]):
            total += _window(xp, a, b, strides, out_hw)
    # ... and the count leaves them out of the mean, too.
    return total / window_counts_numpy((h, w), pool_size, strides, pads, out_hw, x.dtype)


def avg_pool2d_backward_numpy(grad, x_shape, pool_size, strides, pads):
    """NumPy average-pool backward: every pixel of window (i, j) receives dy[n, i, j, c] / count[i, j]."""
    n, h, w, c = x_shape
    pt, pb, pl, pr = pads
    out_hw = grad.shape[1:3]
    share = grad / window_counts_numpy((h, w), pool_size, strides, pads, out_hw, grad.dtype)
    dxp = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=grad.dtype)
    for a in range(pool_size[0]):
        for b in range(pool_size[1]):
            target = _window(dxp, a, b, strides, out_hw)
            target += share
    return np.ascontiguousarray(dxp[:, pt:pt + h, pl:pl + w, :])


# ----------------------------------------------------------------------------------------------------------
# Numba kernels. Forward: one output row (image i, row yo) per iteration; backward: one input row (image i,
# row hi), each pixel summing what the windows on it send.
# ----------------------------------------------------------------------------------------------------------
@pjit
def _max_pool2d_numba(chunk, chunks, x, kh, kw, sh, sw, pt, pl, y, arg):
    n, h, w, c = x.shape
    oh, ow = y.shape[1], y.shape[2]
    for row in range(*piece(n * oh, chunk, chunks)):     # this thread's rows
        i, yo = divmod(row, oh)
        top, a0, a1 = real_taps(yo, sh, pt, kh, h)      # the real rows of this window: 0 <= top + a < h
        for xo in range(ow):
            left, b0, b1 = real_taps(xo, sw, pl, kw, w)
            best, where = y[i, yo, xo], arg[i, yo, xo]  # this pixel's C maxima and their offsets
            first = x[i, top + a0, left + b0]           # the first real pixel starts the running maximum
            for ch in range(c):
                best[ch] = first[ch]
                where[ch] = a0 * kw + b0
            for a in range(a0, a1):
                for b in range(b0, b1):
                    v = x[i, top + a, left + b]
                    k = a * kw + b
                    for ch in range(c):
                        # a select, not an if: no branch to mispredict, and the channel loop vectorises.
                        # Strictly greater: on a tie the earlier (a, b) stays.
                        bigger = v[ch] > best[ch]
                        best[ch] = v[ch] if bigger else best[ch]
                        where[ch] = k if bigger else where[ch]


@pjit
def _max_pool2d_backward_numba(chunk, chunks, grad, arg, kh, kw, sh, sw, pt, pl, dx):
    n, h, w, c = dx.shape
    oh, ow = grad.shape[1], grad.shape[2]
    for row in range(*piece(n * h, chunk, chunks)):     # this thread's rows
        i, hi = divmod(row, h)
        dx[i, hi] = 0                                  # this row of dx, before the windows add to it
        for wi in range(w):
            out = dx[i, hi, wi]
            for a in range(kh):
                yo = window_index(hi, pt, a, sh, oh)    # the window that puts offset a on hi, or -1
                if yo < 0:
                    continue
                for b in range(kw):
                    xo = window_index(wi, pl, b, sw, ow)
                    if xo < 0:
                        continue
                    k = a * kw + b
                    g, won = grad[i, yo, xo], arg[i, yo, xo]
                    for ch in range(c):
                        out[ch] += g[ch] if won[ch] == k else 0     # a select again, as in the forward


@pjit
def _max_pool2d_backward_blocks_numba(chunk, chunks, grad, arg, kh, kw, pt, pl, dx):
    # Windows that do not overlap (strides == pool_size, the usual 2x2 / 2): each window writes its own block
    # of dx, every pixel once, and no pixel needs the window_index search. dx arrives zeroed: pixels that no
    # window covers ('valid' with H not a multiple of the stride) keep their 0.
    n, h, w, c = dx.shape
    oh, ow = grad.shape[1], grad.shape[2]
    for row in range(*piece(n * oh, chunk, chunks)):     # this thread's rows
        i, yo = divmod(row, oh)
        top, a0, a1 = real_taps(yo, kh, pt, kh, h)      # stride = pool size: the windows tile the image
        for xo in range(ow):
            left, b0, b1 = real_taps(xo, kw, pl, kw, w)
            g, won = grad[i, yo, xo], arg[i, yo, xo]
            for a in range(a0, a1):
                for b in range(b0, b1):
                    k = a * kw + b
                    out = dx[i, top + a, left + b]
                    for ch in range(c):
                        out[ch] = g[ch] if won[ch] == k else 0


@pjit
def _avg_pool2d_numba(chunk, chunks, x, kh, kw, sh, sw, pt, pl, y):
    n, h, w, c = x.shape
    oh, ow = y.shape[1], y.shape[2]
    for row in range(*piece(n * oh, chunk, chunks)):     # this thread's rows
        i, yo = divmod(row, oh)
        top, a0, a1 = real_taps(yo, sh, pt, kh, h)
        for xo in range(ow):
            left, b0, b1 = real_taps(xo, sw, pl, kw, w)
            for ch in range(c):
                y[i, yo, xo, ch] = 0
            for a in range(a0, a1):
                for b in range(b0, b1):
                    for ch in range(c):
                        # accumulate in the array (its dtype), not in a float64 local, so that float32
                        # rounds exactly as the NumPy twin does
                        y[i, yo, xo, ch] += x[i, top + a, left + b, ch]
            count = (a1 - a0) * (b1 - b0)
            for ch in range(c):
                y[i, yo, xo, ch] = y[i, yo, xo, ch] / count


@pjit
def _avg_pool2d_backward_numba(chunk, chunks, grad, kh, kw, sh, sw, pt, pl, dx):
    n, h, w, c = dx.shape
    scalar = dx.dtype.type                              # float32 or float64, as a function
    oh, ow = grad.shape[1], grad.shape[2]
    for row in range(*piece(n * h, chunk, chunks)):     # this thread's rows
        i, hi = divmod(row, h)
        dx[i, hi] = 0                                  # this row of dx, before the windows add to it
        for wi in range(w):
            for a in range(kh):
                yo = window_index(hi, pt, a, sh, oh)
                if yo < 0:
                    continue
                _, a0, a1 = real_taps(yo, sh, pt, kh, h)        # the real rows of window yo
                for b in range(kw):
                    xo = window_index(wi, pl, b, sw, ow)
                    if xo < 0:
                        continue
                    _, b0, b1 = real_taps(xo, sw, pl, kw, w)
                    count = (a1 - a0) * (b1 - b0)
                    for ch in range(c):
                        # round the share to dx's dtype before adding, as the twin's `share` array does
                        dx[i, hi, wi, ch] += scalar(grad[i, yo, xo, ch] / count)


# ----------------------------------------------------------------------------------------------------------
# Public entry points: pick the backend, allocate the outputs.
# ----------------------------------------------------------------------------------------------------------
def max_pool2d(x, pool_size, strides, pads, out_hw):
    """Max pooling of x (N, H, W, C) -> (y, arg), both (N, OH, OW, C); arg (int32) is what backward needs.

    pool_size = (KH, KW), strides = (sh, sw), pads = (top, bottom, left, right), out_hw = (OH, OW), as
    geometry.conv_geometry returns them. Padding is ignored; ties go to the first maximum in (a, b) order.
    """
    if get_backend() == "numpy":
        return max_pool2d_numpy(x, pool_size, strides, pads, out_hw)
    n, _, _, c = x.shape
    y = np.empty((n,) + tuple(out_hw) + (c,), dtype=x.dtype)
    arg = np.empty(y.shape, dtype=np.int32)
    run_pieces(_max_pool2d_numba, np.ascontiguousarray(x), pool_size[0], pool_size[1], strides[0], strides[1],
                      pads[0], pads[2], y, arg)
    return y, arg


def max_pool2d_backward(grad, arg, x_shape, pool_size, strides, pads):
    """dL/dx (x_shape) from dL/dy (N, OH, OW, C): each dy goes to its window's argmax; overlaps add."""
    if get_backend() == "numpy":
        return max_pool2d_backward_numpy(grad, arg, x_shape, pool_size, strides, pads)
    grad, arg = np.ascontiguousarray(grad), np.ascontiguousarray(arg)
    if tuple(strides) == tuple(pool_size):
        dx = np.zeros(tuple(x_shape), dtype=grad.dtype)
        run_pieces(_max_pool2d_backward_blocks_numba, grad, arg, pool_size[0], pool_size[1], pads[0], pads[2], dx)
        return dx
    dx = np.empty(tuple(x_shape), dtype=grad.dtype)
    run_pieces(_max_pool2d_backward_numba, grad, arg, pool_size[0], pool_size[1], strides[0], strides[1],
               pads[0], pads[2], dx)
    return dx


def avg_pool2d(x, pool_size, strides, pads, out_hw):
    """Average pooling of x (N, H, W, C) -> y (N, OH, OW, C), dividing by the real pixels of each window."""
    if get_backend() == "numpy":
        return avg_pool2d_numpy(x, pool_size, strides, pads, out_hw)
    n, _, _, c = x.shape
    y = np.empty((n,) + tuple(out_hw) + (c,), dtype=x.dtype)
    run_pieces(_avg_pool2d_numba, np.ascontiguousarray(x), pool_size[0], pool_size[1], strides[0], strides[1],
                      pads[0], pads[2], y)
    return y


def avg_pool2d_backward(grad, x_shape, pool_size, strides, pads):
    """dL/dx (x_shape) from dL/dy (N, OH, OW, C): each window spreads dy / count over its real pixels."""
    if get_backend() == "numpy":
        return avg_pool2d_backward_numpy(grad, x_shape, pool_size, strides, pads)
    dx = np.empty(tuple(x_shape), dtype=grad.dtype)
    run_pieces(_avg_pool2d_backward_numba, np.ascontiguousarray(grad), pool_size[0], pool_size[1],
               strides[0], strides[1], pads[0], pads[2], dx)
    return dx
