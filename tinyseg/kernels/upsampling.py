"""Upsampling of channels-last images by integer factors size = (fh, fw): nearest and bilinear.

x (N, H, W, C) -> y (N, OH, OW, C),  OH = H * fh,  OW = W * fw.

Nearest (Keras's UpSampling2D default; every pixel becomes an fh x fw block):

    y[n, i, j, c]  = x[n, i // fh, j // fw, c]
    dx[n, h, w, c] = sum of dy over the block  i in [h*fh, (h+1)*fh),  j in [w*fw, (w+1)*fw)

Bilinear with half-pixel centres (Keras's UpSampling2D(interpolation='bilinear'), which is
tf.image.resize(..., 'bilinear') and equals PyTorch's F.interpolate(mode='bilinear', align_corners=False)).
Per axis, output index i samples the input at

    src = max((i + 0.5) / f - 0.5, 0)          (centre of output pixel i, in input pixel coordinates)
    i0  = floor(src),  i1 = min(i0 + 1, H - 1),  t = src - i0
    taps: weight 1 - t on row i0 and t on row i1

and the 2-D value mixes the four neighbours, columns first, then rows:

    y[n, i, j, c] = (1-t_i) * ((1-s_j) x[n, i0, j0, c] + s_j x[n, i0, j1, c])
                  +    t_i  * ((1-s_j) x[n, i1, j0, c] + s_j x[n, i1, j1, c])

Bilinear upsampling is linear and separable: with the interpolation matrices A_h (OH, H) and A_w (OW, W),
whose row i holds the two taps of output i,

    y[n, :, :, c]  = A_h  @ x[n, :, :, c]  @ A_w^T
    dx[n, :, :, c] = A_h^T @ dy[n, :, :, c] @ A_w              (the backward is the transpose)

Each function has a plain NumPy twin (``*_numpy``) that defines what the Numba kernel must compute; tests
prove them equal. The Numba backward kernels gather (every input pixel sums the outputs that read it) so that
each input pixel is written by one thread only.
"""
import functools

import numpy as np

from .bands import piece, run_pieces
from .config import get_backend, pjit


# ----------------------------------------------------------------------------------------------------------
# Bilinear taps and interpolation matrices, shared by both backends.
# ----------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def bilinear_taps(in_size, factor, dtype="float64"):
    """The taps of each output index along one axis: (i0, i1, w0, w1), each of length in_size * factor.

    Output i = w0[i] * input[i0[i]] + w1[i] * input[i1[i]] (formula in the module docstring). The weights are
    computed in float64 and then cast to `dtype`. The arrays are cached and read-only.
    """
    out = np.arange(in_size * factor)
    src = np.maximum((out + 0.5) / factor - 0.5, 0.0)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, in_size - 1)
    t = src - i0
    taps = (i0, i1, (1.0 - t).astype(dtype), t.astype(dtype))
    for arr in taps:
        arr.setflags(write=False)
    return taps


def interpolation_matrix(in_size, factor, dtype="float64"):
    """A (in_size * factor, in_size): row i holds output i's two taps, so that (along this axis) y = A @ x."""
    i0, i1, w0, w1 = bilinear_taps(in_size, factor, dtype)
    rows = np.arange(len(i0))
    a = np.zeros((len(i0), in_size), dtype=dtype)
    a[rows, i0] += w0
    a[rows, i1] += w1                  # separate statement: when i1 == i0 (at the border) the weights add
    return a


@functools.lru_cache(maxsize=64)
def _transposed_taps(in_size, factor, dtype="float64"):
    """A^T as compressed rows: input h is read by outputs idx[ptr[h]:ptr[h+1]] with weights wt[...]."""
    at = interpolation_matrix(in_size, factor, dtype).T
    h, i = np.nonzero(at)                              # row-major: grouped by input index h
    ptr = np.searchsorted(h, np.arange(in_size + 1))
    return ptr, i, at[h, i]


# ----------------------------------------------------------------------------------------------------------
# NumPy twins.
# ----------------------------------------------------------------------------------------------------------
def upsample_nearest_numpy(x, size):
    """Repeat every pixel fh times down and fw times across: (N, H, W, C) -> (N, H*fh, W*fw, C)."""
    return np.repeat(np.repeat(x, size[0], axis=1), size[1], axis=2)


def upsample_nearest_backward_numpy(grad, size):
    """Sum dy over each fh x fw block: (N, H*fh, W*fw, C) -> (N, H, W, C)."""
    n, oh, ow, c = grad.shape
    fh, fw = size
    return grad.reshape(n, oh // fh, fh, ow // fw, fw, c).sum(axis=(2, 4))


def upsample_bilinear_numpy(x, size):
    """Bilinear upsampling with half-pixel centres: (N, H, W, C) -> (N, H*fh, W*fw, C)."""
    n, h, w, c = x.shape
    i0, i1, wy0, wy1 = bilinear_taps(h, size[0], x.dtype.name)
    j0, j1, wx0, wx1 = bilinear_taps(w, size[1], x.dtype.name)
    cols = x[:, :, j0, :] * wx0[:, None] + x[:, :, j1, :] * wx1[:, None]          # (N, H, OW, C): columns
    return cols[:, i0] * wy0[:, None, None] + cols[:, i1] * wy1[:, None, None]    # (N, OH, OW, C): rows


def upsample_bilinear_backward_numpy(grad, size):
    """dx = A_h^T dy A_w per image and channel: (N, H*fh, W*fw, C) -> (N, H, W, C)."""
    n, oh, ow, c = grad.shape
    a_h = interpolation_matrix(oh // size[0], size[0], grad.dtype.name)
    a_w = interpolation_matrix(ow // size[1], size[1], grad.dtype.name)
    cols = np.einsum("jw,nijc->niwc", a_w, grad)        # adjoint of the column step: (N, OH, W, C)
    return np.einsum("ih,niwc->nhwc", a_h, cols)         # adjoint of the row step:    (N, H, W, C)


# ----------------------------------------------------------------------------------------------------------
# Numba kernels. Forward: one output row per parallel iteration; backward: one input row.
# ----------------------------------------------------------------------------------------------------------
@pjit
def _upsample_nearest_numba(chunk, chunks, x, fh, fw, y):
    n, oh, ow, c = y.shape
    for row in range(*piece(n * oh, chunk, chunks)):     # this thread's rows
        i, yo = divmod(row, oh)
        h = yo // fh
        for xo in range(ow):
            w = xo // fw
            for ch in range(c):
                y[i, yo, xo, ch] = x[i, h, w, ch]


@pjit
def _upsample_nearest_backward_numba(chunk, chunks, grad, fh, fw, dx):
    n, h, w, c = dx.shape
    for row in range(*piece(n * h, chunk, chunks)):     # this thread's rows
        i, hi = divmod(row, h)
        dx[i, hi] = 0                                  # this row of dx, before the outputs that read it add in
        for wi in range(w):
            for a in range(fh):
                for b in range(fw):
                    for ch in range(c):
                        dx[i, hi, wi, ch] += grad[i, hi * fh + a, wi * fw + b, ch]


@pjit
def _upsample_bilinear_numba(chunk, chunks, x, i0, i1, wy0, wy1, j0, j1, wx0, wx1, y):
    n, oh, ow, c = y.shape
    for row in range(*piece(n * oh, chunk, chunks)):     # this thread's rows
        i, yo = divmod(row, oh)
        top, bottom, p, q = i0[yo], i1[yo], wy0[yo], wy1[yo]
        for xo in range(ow):
            left, right, u, v = j0[xo], j1[xo], wx0[xo], wx1[xo]
            for ch in range(c):
                # same operations in the same order as the twin (columns, then rows), so results are equal
                upper = x[i, top, left, ch] * u + x[i, top, right, ch] * v
                lower = x[i, bottom, left, ch] * u + x[i, bottom, right, ch] * v
                y[i, yo, xo, ch] = upper * p + lower * q


@pjit
def _upsample_bilinear_backward_numba(chunk, chunks, grad, hptr, hidx, hwt, wptr, widx, wwt, dx):
    n, h, w, c = dx.shape
    for row in range(*piece(n * h, chunk, chunks)):     # this thread's rows
        i, hi = divmod(row, h)
        dx[i, hi] = 0                                  # this row of dx, before the outputs that read it add in
        for wi in range(w):
            for k in range(hptr[hi], hptr[hi + 1]):           # output rows that read input row hi
                yo, p = hidx[k], hwt[k]
                for m in range(wptr[wi], wptr[wi + 1]):       # output columns that read input column wi
                    xo, weight = widx[m], p * wwt[m]
                    for ch in range(c):
                        dx[i, hi, wi, ch] += weight * grad[i, yo, xo, ch]


# ----------------------------------------------------------------------------------------------------------
# Public entry points: pick the backend, allocate the output.
# ----------------------------------------------------------------------------------------------------------
def _output(x, size):
    """An empty (N, H*fh, W*fw, C) array for the upsampling of x (N, H, W, C) by size = (fh, fw)."""
    n, h, w, c = x.shape
    return np.empty((n, h * size[0], w * size[1], c), dtype=x.dtype)


def _input_grad(grad, size):
    """An empty (N, OH/fh, OW/fw, C) array for dL/dx, after checking that grad (N, OH, OW, C) is the gradient
    of an upsampling by size = (fh, fw)."""
    n, oh, ow, c = grad.shape
    if oh % size[0] or ow % size[1]:
        raise ValueError(f"grad of shape {grad.shape} is not an upsampling by size={tuple(size)}")
    return np.empty((n, oh // size[0], ow // size[1], c), dtype=grad.dtype)


def upsample_nearest(x, size):
    """Nearest-neighbour upsampling of x (N, H, W, C) by size = (fh, fw) -> (N, H*fh, W*fw, C)."""
    if get_backend() == "numpy":
        return upsample_nearest_numpy(x, size)
    y = _output(x, size)
    run_pieces(_upsample_nearest_numba, np.ascontiguousarray(x), size[0], size[1], y)
    return y


def upsample_nearest_backward(grad, size):
    """dL/dx (N, H, W, C) from dL/dy (N, H*fh, W*fw, C): the sum over each fh x fw block."""
    dx = _input_grad(grad, size)
    if get_backend() == "numpy":
        return upsample_nearest_backward_numpy(grad, size)
    run_pieces(_upsample_nearest_backward_numba, np.ascontiguousarray(grad), size[0], size[1], dx)
    return dx


def upsample_bilinear(x, size):
    """Bilinear (half-pixel, Keras/TF/PyTorch align_corners=False) upsampling of x (N, H, W, C) by size."""
    if get_backend() == "numpy":
        return upsample_bilinear_numpy(x, size)
    y = _output(x, size)
    run_pieces(_upsample_bilinear_numba, np.ascontiguousarray(x), *bilinear_taps(x.shape[1], size[0], x.dtype.name),
               *bilinear_taps(x.shape[2], size[1], x.dtype.name), y)
    return y


def upsample_bilinear_backward(grad, size):
    """dL/dx (N, H, W, C) from dL/dy (N, H*fh, W*fw, C): the transpose of the bilinear interpolation."""
    dx = _input_grad(grad, size)
    if get_backend() == "numpy":
        return upsample_bilinear_backward_numpy(grad, size)
    h, w = dx.shape[1:3]
    run_pieces(_upsample_bilinear_backward_numba, np.ascontiguousarray(grad),
               *_transposed_taps(h, size[0], grad.dtype.name), *_transposed_taps(w, size[1], grad.dtype.name), dx)
    return dx
