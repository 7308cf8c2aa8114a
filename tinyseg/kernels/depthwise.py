"""Depthwise convolution for channels-last images: forward, input gradient, kernel gradient.

Each input channel c is convolved with its own M filters (M = the depth multiplier); channels never mix:

    x: (N, H, W, C)    K: (KH, KW, C, M)    y: (N, OH, OW, C*M)

    y[n, i, j, c*M + m] = sum_{u, v} xpad[n, i*sh + u*dh, j*sw + v*dw, c] * K[u, v, c, m]

Geometry (one spatial axis shown; sizes and pads come from layers/geometry.py with the effective kernel
(KH - 1)*dh + 1): output row i, tap u reads input row  h = i*sh - pad_top + u*dh;  rows outside 0 .. H-1
are padding and read as 0. The output channel of (c, m) is c*M + m, Keras's order (and PyTorch's for a
Conv2d with groups=C).

Backward, with G = dL/dy viewed as (N, OH, OW, C, M):

    dL/dK[u, v, c, m] = sum_{n, i, j} xpad[n, i*sh + u*dh, j*sw + v*dw, c] * G[n, i, j, c, m]
    dL/dx[n, h, w, c] = sum_{u, v, m} G[n, i, j, c, m] * K[u, v, c, m]
                        over the windows (i, j) whose tap (u, v) lands on (h, w):
                        i*sh - pad_top + u*dh = h  and  j*sw - pad_left + v*dw = w

(the input gradient is the transposed depthwise convolution of G, as for Conv2D).

Why no im2col: as a matrix product the depthwise convolution is block-diagonal (each channel meets only its
own filters), so im2col + matmul would multiply C times more numbers than needed, almost all by zero. The
direct loops here do only the KH*KW*C*M products per output pixel that the formula has.

Each function has a plain NumPy twin (``*_numpy``) that defines what the Numba kernel must compute, looping
over the KH*KW kernel taps with whole-array slicing over N, H, W, C; the tests prove them equal, and both
equal a plain loop written from the formula above. The Numba kernels work with one filter per channel
(a depth multiplier M is first brought to 1, see below) and keep the channel as their innermost loop, so
every tap is a multiply-add over C neighbouring numbers. The forward splits the output rows between
threads; the input gradient gathers (each input pixel sums what its windows send it, with the same
window_index as col2im), so every pixel of dx is written by one thread; the kernel gradient gives each
block of output rows its own float64 partial sums (a sum over every pixel of the batch would lose float32
digits), then adds the blocks.
"""
import numpy as np

from .bands import piece, run_pieces
from .config import get_backend, pjit
from .windows import window_index

_BLOCK_ROWS = 16            # output rows per block of kernel-gradient partial sums (fixed: same sums on any
                            # number of threads)


# ----------------------------------------------------------------------------------------------------------
# NumPy twins: one strided slice of the padded image per kernel tap (a, b).
# ----------------------------------------------------------------------------------------------------------
def _tap(xp, a, b, strides, dilation, out_hw):
    """The (N, OH, OW, C) view of the padded image xp that tap (a, b) reads:
    element [n, i, j, c] is xp[n, i*sh + a*dh, j*sw + b*dw, c]."""
    (sh, sw), (dh, dw), (oh, ow) = strides, dilation, out_hw
    top, left = a * dh, b * dw
    return xp[:, top:top + sh * (oh - 1) + 1:sh, left:left + sw * (ow - 1) + 1:sw, :]


def _pad(x, pads):
    pt, pb, pl, pr = pads
    return np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))


def depthwise_conv2d_numpy(x, kernel, strides, pads, out_hw, dilation=(1, 1)):
    """NumPy depthwise convolution: y (N, OH, OW, C*M) = sum over taps of window * K[a, b]."""
    kh, kw, c, m = kernel.shape
    xp = _pad(x, pads)
    y = np.zeros((x.shape[0],) + tuple(out_hw) + (c, m), dtype=np.result_type(x, kernel))
    for a in range(kh):
        for b in range(kw):
            y += _tap(xp, a, b, strides, dilation, out_hw)[..., None] * kernel[a, b]     # (N,OH,OW,C,1)*(C,M)
    return y.reshape(y.shape[:3] + (c * m,))


def depthwise_conv2d_input_grad_numpy(g, kernel, strides, pads, x_shape, dilation=(1, 1)):
    """NumPy dL/dx (x_shape): every tap adds sum_m G[..., c, m] * K[a, b, c, m] back to the pixels it read."""
    kh, kw, c, m = kernel.shape
    n, h, w, _ = x_shape
    pt, pb, pl, pr = pads
    g5 = g.reshape(g.shape[:3] + (c, m))
    dxp = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=np.result_type(g, kernel))
    for a in range(kh):
        for b in range(kw):
            target = _tap(dxp, a, b, strides, dilation, g.shape[1:3])      # a view: += writes into dxp
            target += (g5 * kernel[a, b]).sum(axis=-1)
    return np.ascontiguousarray(dxp[:, pt:pt + h, pl:pl + w, :])


def depthwise_conv2d_kernel_grad_numpy(x, g, ksize, strides, pads, dilation=(1, 1)):
    """NumPy dL/dK (KH, KW, C, M): per tap, sum over n, i, j of window[..., c] * G[..., c, m] (in float64)."""
    kh, kw = ksize
    c = x.shape[3]
    m = g.shape[3] // c
    xp = _pad(x, pads)
    g5 = g.reshape(g.shape[:3] + (c, m))
    grad = np.empty((kh, kw, c, m), dtype=np.result_type(x, g))
    for a in range(kh):
        for b in range(kw):
            grad[a, b] = np.einsum("nijc,nijcm->cm", _tap(xp, a, b, strides, dilation, g.shape[1:3]), g5,
                                   dtype=np.float64)
    return grad


# ----------------------------------------------------------------------------------------------------------
# Numba kernels, for one filter per channel (M = 1): with the channel as the innermost loop, each tap is one
# multiply-add over C contiguous numbers, which the compiler turns into vector instructions. (A loop over M
# inside the one over C would leave the compiler one multiply-add at a time.) A depth multiplier M > 1 is
# brought to M = 1 by the entry points below: it is the depthwise convolution of x with every channel
# repeated M times, channel c*M + m of the copy meeting filter K[:, :, c, m].
# ----------------------------------------------------------------------------------------------------------
@pjit
def _depthwise_numba(chunk, chunks, x, k, sh, sw, dh, dw, pt, pl, y):
    # y[i, yo, xo, c] = sum over the real taps (a, b) of x[i, hi, wi, c] * k[a, b, c]
    n, h, w, c = x.shape
    kh, kw = k.shape[0], k.shape[1]
    oh, ow = y.shape[1], y.shape[2]
    for row in range(*piece(n * oh, chunk, chunks)):     # one output row (image i, row yo) each
        i, yo = divmod(row, oh)
        for xo in range(ow):
            out = y[i, yo, xo]
            out[:] = 0
            for a in range(kh):
                hi = yo * sh - pt + a * dh
                if hi < 0 or hi >= h:
                    continue
                for b in range(kw):
                    wi = xo * sw - pl + b * dw
                    if wi < 0 or wi >= w:
                        continue
                    pix, kab = x[i, hi, wi], k[a, b]
                    for ch in range(c):
                        out[ch] += pix[ch] * kab[ch]


@pjit
def _depthwise_input_grad_numba(chunk, chunks, g, k, sh, sw, dh, dw, pt, pl, dx):
    # dx[i, hi, wi, c] = sum of g[i, yo, xo, c] * k[a, b, c] over the windows (yo, xo) whose tap (a, b) is (hi, wi)
    n, h, w, c = dx.shape
    kh, kw = k.shape[0], k.shape[1]
    oh, ow = g.shape[1], g.shape[2]
    for row in range(*piece(n * h, chunk, chunks)):      # one input row (image i, row hi) each: no write races
        i, hi = divmod(row, h)
        for wi in range(w):
            out = dx[i, hi, wi]
            out[:] = 0
            for a in range(kh):
                yo = window_index(hi, pt, a * dh, sh, oh)     # the window whose tap a lands on hi, or -1
                if yo < 0:
                    continue
                for b in range(kw):
                    xo = window_index(wi, pl, b * dw, sw, ow)
                    if xo < 0:
                        continue
                    gp, kab = g[i, yo, xo], k[a, b]
                    for ch in range(c):
                        out[ch] += gp[ch] * kab[ch]


@pjit
def _depthwise_kernel_grad_numba(chunk, chunks, x, g, sh, sw, dh, dw, pt, pl, part):
    # part (blocks, KH, KW, C) float64, zeroed: block `blk` sums output rows blk*_BLOCK_ROWS ... of the
    # N*OH rows, so no two threads ever add into the same numbers.
    n, h, w, c = x.shape
    _, kh, kw, _ = part.shape
    oh, ow = g.shape[1], g.shape[2]
    for blk in range(*piece(part.shape[0], chunk, chunks)):      # this thread's blocks
        acc = part[blk]
        for row in range(blk * _BLOCK_ROWS, min(n * oh, (blk + 1) * _BLOCK_ROWS)):
            i, yo = divmod(row, oh)
            for xo in range(ow):
                gp = g[i, yo, xo]
                for a in range(kh):
                    hi = yo * sh - pt + a * dh
                    if hi < 0 or hi >= h:
                        continue
                    for b in range(kw):
                        wi = xo * sw - pl + b * dw
                        if wi < 0 or wi >= w:
                            continue
                        pix, acc_ab = x[i, hi, wi], acc[a, b]
                        for ch in range(c):
                            acc_ab[ch] += np.float64(pix[ch]) * np.float64(gp[ch])


# ----------------------------------------------------------------------------------------------------------
# Public entry points: pick the backend, bring M to 1, allocate the outputs.
# ----------------------------------------------------------------------------------------------------------
def _one_filter_per_channel(x, kernel):
    """(x with every channel repeated M times (N, H, W, C*M), kernel as (KH, KW, C*M)): the same depthwise
    convolution with M = 1 (x itself when M = 1)."""
    kh, kw, c, m = kernel.shape
    x = np.ascontiguousarray(x) if m == 1 else np.repeat(x, m, axis=3)
    return x, np.ascontiguousarray(kernel).reshape(kh, kw, c * m)


def depthwise_conv2d(x, kernel, strides, pads, out_hw, dilation=(1, 1)):
    """Depthwise convolution of x (N, H, W, C) with kernel (KH, KW, C, M), no bias -> y (N, OH, OW, C*M).

    strides = (sh, sw), pads = (top, bottom, left, right), out_hw = (OH, OW), dilation = (dh, dw), as
    geometry.conv_geometry gives them.
    """
    if get_backend() == "numpy":
        return depthwise_conv2d_numpy(x, kernel, strides, pads, out_hw, dilation)
    kh, kw, c, m = kernel.shape
    y = np.empty((x.shape[0],) + tuple(out_hw) + (c * m,), dtype=np.result_type(x, kernel))
    xm, k = _one_filter_per_channel(x.astype(y.dtype, copy=False), kernel.astype(y.dtype, copy=False))
    run_pieces(_depthwise_numba, xm, k, strides[0], strides[1], dilation[0], dilation[1], pads[0], pads[2], y)
    return y


def depthwise_conv2d_input_grad(g, kernel, strides, pads, x_shape, dilation=(1, 1)):
    """dL/dx (x_shape = (N, H, W, C)) from G = dL/dy (N, OH, OW, C*M): the transposed depthwise convolution."""
    if get_backend() == "numpy":
        return depthwise_conv2d_input_grad_numpy(g, kernel, strides, pads, x_shape, dilation)
    kh, kw, c, m = kernel.shape
    dtype = np.result_type(g, kernel)
    k = np.ascontiguousarray(kernel, dtype=dtype).reshape(kh, kw, c * m)
    dx = np.empty(tuple(x_shape[:3]) + (c * m,), dtype=dtype)        # dL/d(x repeated M times)
    run_pieces(_depthwise_input_grad_numba, np.ascontiguousarray(g, dtype=dtype), k,
               strides[0], strides[1], dilation[0], dilation[1], pads[0], pads[2], dx)
    return dx if m == 1 else dx.reshape(tuple(x_shape) + (m,)).sum(axis=4)     # each copy's share, added


def depthwise_conv2d_kernel_grad(x, g, ksize, strides, pads, dilation=(1, 1)):
    """dL/dK (KH, KW, C, M) from x (N, H, W, C) and G = dL/dy (N, OH, OW, C*M), summed in float64."""
    if get_backend() == "numpy":
        return depthwise_conv2d_kernel_grad_numpy(x, g, ksize, strides, pads, dilation)
    c, cm = x.shape[3], g.shape[3]
    dtype = np.result_type(x, g)
    xm = np.ascontiguousarray(x, dtype=dtype) if cm == c else np.repeat(x.astype(dtype, copy=False), cm // c, axis=3)
    rows = g.shape[0] * g.shape[1]
    part = np.zeros((max(1, -(-rows // _BLOCK_ROWS)),) + tuple(ksize) + (cm,))
    run_pieces(_depthwise_kernel_grad_numba, xm, np.ascontiguousarray(g, dtype=dtype), strides[0], strides[1],
               dilation[0], dilation[1], pads[0], pads[2], part)
    return part.sum(axis=0).reshape(tuple(ksize) + (c, cm // c)).astype(dtype)
