"""The per-channel passes of batch normalisation, on a (M, C) view of channels-last data.

BatchNormalization (layers/normalization.py has the math) needs, per channel c of x (M, C):

    channel_mean_var(x)                  -> mu, var                  the batch statistics
    channel_affine(x, mu, a, b)          -> a * (x - mu) + b         the forward, a = gamma / sigma, b = beta
    channel_grad_sums(g, x, mu, s)       -> sum(g), sum(g * xhat)    dL/dbeta, dL/dgamma; xhat = (x - mu) * s
    batchnorm_input_grad(g, x, mu, s, gain, mean_g, mean_gx)
                                         -> dL/dx                    the chain rule of the training backward

(x - mu is kept as a difference, never expanded into a * x - a * mu: when |mu| is much larger than sigma the
expanded form would cancel away float32 digits.)

Written with NumPy, every line of the layer's formulas is a separate pass over the data with a temporary
array; these kernels read each element once per pass, write nothing but their result, and share the rows
between threads. The sums are accumulated in float64 whatever the data type (the partial sums of each block
of rows, then the blocks), so float32 statistics of a million values keep their digits.

Each function has a plain NumPy twin (``*_numpy``) that defines what the Numba kernel must compute; tests
prove them equal.
"""
import numpy as np

from .bands import ceil_div, piece, run_pieces
from .config import get_backend, pjit

_BLOCK_ROWS = 1024          # rows per block of partial sums: a few blocks per thread, each cache-sized


def _blocks(m):
    return max(1, ceil_div(m, _BLOCK_ROWS))


# ----------------------------------------------------------------------------------------------------------
# NumPy twins
# ----------------------------------------------------------------------------------------------------------
def channel_mean_var_numpy(x):
    """mu, var (C,) float64 of x (M, C): the mean, then the mean squared deviation from it (two passes)."""
    mu = x.mean(axis=0, dtype=np.float64)
    d = x - mu.astype(x.dtype)
    return mu, (d * d).mean(axis=0, dtype=np.float64)


def channel_affine_numpy(x, mu, a, b):
    return (x - mu) * a + b


def channel_grad_sums_numpy(g, x, mu, inv_sigma):
    return g.sum(axis=0, dtype=np.float64), (g * ((x - mu) * inv_sigma)).sum(axis=0, dtype=np.float64)


def batchnorm_input_grad_numpy(g, x, mu, inv_sigma, gain, mean_g, mean_gx):
    xhat = (x - mu) * inv_sigma
    return gain * (g - mean_g - xhat * mean_gx)


# ----------------------------------------------------------------------------------------------------------
# Numba kernels: blocks of rows in parallel, each block's per-channel partial sums in its own row of `part`.
# ----------------------------------------------------------------------------------------------------------
# In each kernel a block's rows and its row of partial sums are sliced out first: indexed from 0, the
# compiler knows the indices are not negative and vectorises the loop over channels.
@pjit
def _block_mean_m2(chunk, chunks, x, mean, m2):
    m, c = x.shape
    r0, r1 = piece(mean.shape[0], chunk, chunks)      # this thread's blocks
    for blk in range(r0, r1):
        rows, mu, q = x[blk * _BLOCK_ROWS:min(m, (blk + 1) * _BLOCK_ROWS)], mean[blk], m2[blk]
        for r in range(rows.shape[0]):
            for ch in range(c):
                mu[ch] += rows[r, ch]
        for ch in range(c):
            mu[ch] /= rows.shape[0]
        for r in range(rows.shape[0]):                # the block again, from this core's cache this time
            for ch in range(c):
                d = rows[r, ch] - mu[ch]
                q[ch] += d * d


@pjit
def _partial_grad_sums(chunk, chunks, g, x, mu, inv_sigma, part_g, part_gx):
    m, c = x.shape
    r0, r1 = piece(part_g.shape[0], chunk, chunks)      # this thread's blocks
    for blk in range(r0, r1):
        lo, hi = blk * _BLOCK_ROWS, min(m, (blk + 1) * _BLOCK_ROWS)
        gs, xs, acc_g, acc_gx = g[lo:hi], x[lo:hi], part_g[blk], part_gx[blk]
        for r in range(xs.shape[0]):
            for ch in range(c):
                acc_g[ch] += gs[r, ch]
                acc_gx[ch] += gs[r, ch] * ((xs[r, ch] - mu[ch]) * inv_sigma[ch])


@pjit
def _affine(chunk, chunks, x, mu, a, b, out):
    m, c = x.shape
    r0, r1 = piece(m, chunk, chunks)      # this thread's rows
    xs, outs = x[r0:r1], out[r0:r1]       # indices from 0: known not negative, so the loop vectorises
    for r in range(xs.shape[0]):
        for ch in range(c):
            outs[r, ch] = (xs[r, ch] - mu[ch]) * a[ch] + b[ch]


@pjit
def _batchnorm_input_grad(chunk, chunks, g, x, mu, inv_sigma, gain, mean_g, mean_gx, out):
    m, c = x.shape
    r0, r1 = piece(m, chunk, chunks)      # this thread's rows
    gs, xs, outs = g[r0:r1], x[r0:r1], out[r0:r1]
    for r in range(xs.shape[0]):
        for ch in range(c):
            xhat = (xs[r, ch] - mu[ch]) * inv_sigma[ch]
            outs[r, ch] = gain[ch] * (gs[r, ch] - mean_g[ch] - xhat * mean_gx[ch])


# ----------------------------------------------------------------------------------------------------------
# Public entry points. x, g: (M, C) of one float dtype; per-channel arguments: (C,).
# ----------------------------------------------------------------------------------------------------------
def channel_mean_var(x):
    """Per-channel mean and biased variance of x (M, C), both float64 (C,).

    One pass over x: each block of rows gets its own mean and sum of squared deviations from it (two passes
    over the block, the second from the cache), and the blocks are combined exactly (Chan et al.):
        mu = sum_b n_b mu_b / M,    M * var = sum_b (M2_b + n_b (mu_b - mu)^2).
    """
    if get_backend() == "numpy":
        return channel_mean_var_numpy(x)
    x = np.ascontiguousarray(x)
    m, c = x.shape
    mean, m2 = np.zeros((_blocks(m), c)), np.zeros((_blocks(m), c))
    run_pieces(_block_mean_m2, x, mean, m2)
    sizes = np.minimum(_BLOCK_ROWS, m - _BLOCK_ROWS * np.arange(len(mean)))[:, None]    # rows in each block
    mu = (sizes * mean).sum(axis=0) / m
    return mu, (m2.sum(axis=0) + (sizes * (mean - mu) ** 2).sum(axis=0)) / m


def channel_affine(x, mu, a, b):
    """a * (x - mu) + b per channel: x (M, C); mu, a, b (C,), cast to x's dtype. A new array."""
    mu, a, b = (v.astype(x.dtype, copy=False) for v in (mu, a, b))
    if get_backend() == "numpy":
        return channel_affine_numpy(x, mu, a, b)
    out = np.empty_like(x)
    run_pieces(_affine, np.ascontiguousarray(x), mu, a, b, out)
    return out


def channel_grad_sums(g, x, mu, inv_sigma):
    """sum(g) and sum(g * (x - mu) * inv_sigma) per channel, float64 (C,)."""
    mu, inv_sigma = mu.astype(x.dtype, copy=False), inv_sigma.astype(x.dtype, copy=False)
    if get_backend() == "numpy":
        return channel_grad_sums_numpy(g, x, mu, inv_sigma)
    m, c = x.shape
    part_g, part_gx = np.zeros((_blocks(m), c)), np.zeros((_blocks(m), c))
    run_pieces(_partial_grad_sums, np.ascontiguousarray(g), np.ascontiguousarray(x), mu, inv_sigma, part_g, part_gx)
    return part_g.sum(axis=0), part_gx.sum(axis=0)


def batchnorm_input_grad(g, x, mu, inv_sigma, gain, mean_g, mean_gx):
    """gain * (g - mean_g - xhat * mean_gx), xhat = (x - mu) * inv_sigma, per channel: g and x (M, C); the
    other arguments (C,), cast to x's dtype. One pass over g and x, no xhat stored. A new array."""
    vectors = [v.astype(x.dtype, copy=False) for v in (mu, inv_sigma, gain, mean_g, mean_gx)]
    if get_backend() == "numpy":
        return batchnorm_input_grad_numpy(g, x, *vectors)
    out = np.empty_like(x)
    run_pieces(_batchnorm_input_grad, np.ascontiguousarray(g), np.ascontiguousarray(x), *vectors, out)
    return out
