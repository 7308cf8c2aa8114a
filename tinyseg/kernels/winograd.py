"""Winograd F(m x m, 3 x 3) convolution, fast: Numba tile transforms and OpenBLAS products, band by band.

The formulas and the NumPy version are in tinyseg/winograd.py; this module computes the same numbers
(up to rounding: only the order of the additions changes), in three steps per band of tiles:

    V = BT d B       _gather_tiles: the band's n x n input tiles -> (n^2, tiles, C)       (Numba)
    M = V @ U        n^2 products (tiles, C) @ (C, K), U = G g G^T transformed once      (OpenBLAS)
    y = AT M A       _scatter_tiles: -> the band's m x m output tiles of y (+ bias)      (Numba)

and the kernel gradient, the same tile formula run backwards (tinyseg/winograd.py derives it):

    V  = BT d B      _gather_tiles on the input tiles
    dM = A dY AT     _gather_tiles on the m x m tiles of G = dL/dy, with A in place of BT
    dU += V^T @ dM   n^2 products (C, tiles) @ (tiles, K), one partial sum per band
    dL/dK = G^T dU G (after the bands, in float64)

(Conv2D does not use this kernel gradient: im2col's measured faster on every shape tried, 32-128 channels,
because its products have a long inner dimension. It is kept, tested, for the A/B and for readers.)

The input gradient is a convolution too (of G with the kernel flipped and its channel axes swapped), so it
runs through `conv2d` unchanged.

Bands. A band is a run of consecutive tiles of the (N, TH, TW) grid. Its transformed tiles (n^2 rows of
tiles x C values) are a few hundred KB that stay in the cache of the core that wrote them while the products
read them, and the products' result stays there for the output transform. Bands are shared between
tinyseg's threads (kernels/bands.py), each with its own scratch buffers; every band writes its own tiles
of y, or its own partial sum of dU, so the numbers do not depend on the threads.

Transforms in Numba: the input tile is read once into a small buffer (zeros outside the image), then each
transform is two passes of small matrix products, with the channel loop innermost so that LLVM vectorises
it across channels, and the zero entries of the transform matrices (a third of BT's) skipped. The matrices
are arrays passed in, so the same two kernels serve every tile size and both directions.

The kernel transform U = G g G^T costs n^2 / 9 times the kernel's size in products per call: small, but a
step runs every 3x3 layer forward and backward. KernelTransforms keeps it until the kernel's values change.
"""
import numpy as np

from .. import winograd as twin
from .bands import ceil_div, run_bands, scratch
from .config import get_backend, get_num_threads, jit

M_TILE = 4                  # F(4x4, 3x3): 36 products for 16 outputs (tinyseg/winograd.py)
BAND_BYTES = 2**20          # transformed tiles of one band (n^2 * tiles * channels values): about L2's size


GROUP_VALUES = 512          # tiles are transformed several at a time, about this many values (tiles x channels)
                            # side by side: each pass of a transform is then one long loop, which LLVM
                            # vectorises, rather than many short ones that each pay their start-up


@jit
def _gather_tiles(x, T, step, top, left, t0, t1, th, tw, group, out):
    """out[i*n + j, (p - t0)*C + c] = sum_{a, b} T[i, a] T[j, b] x[img, ty*step - top + a, tx*step - left + b, c]
    for tiles p = t0 .. t1-1 of the (N, th, tw) grid (p = (img*th + ty)*tw + tx), x read as 0 outside.

    T (n, q): BT (n, n) for input tiles, A (n, m) for gradient tiles. out (n*n, >= (t1 - t0)*C): row i*n + j
    is position (i, j) of every tile, tile after tile, C channels each (a (tiles, C) matrix, flattened)."""
    n, q = T.shape
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    patch = np.empty((q, q, group * c), dtype=x.dtype)   # `group` tiles side by side: (a, b, tile*C + c)
    half = np.empty((n, q, group * c), dtype=x.dtype)    # T @ patch, along the tiles' rows
    acc = np.empty(group * c, dtype=x.dtype)             # one row of T @ patch @ T^T
    for p0 in range(t0, t1, group):
        count = min(group, t1 - p0)
        width = count * c
        for g in range(count):
            img, rest = (p0 + g) // (th * tw), (p0 + g) % (th * tw)
            r0, c0 = (rest // tw) * step - top, (rest % tw) * step - left
            for a in range(q):
                for b in range(q):
                    dst = patch[a, b, g * c:(g + 1) * c]      # loops, not dst[:] = ...: Numba's slice
                    if 0 <= r0 + a < h and 0 <= c0 + b < w:   # assignment costs more than these copies
                        src = x[img, r0 + a, c0 + b]
                        for ch in range(c):
                            dst[ch] = src[ch]
                    else:
                        for ch in range(c):
                            dst[ch] = 0.0
        for i in range(n):
            for b in range(q):
                dst = half[i, b]
                for e in range(width):
                    dst[e] = 0.0
            for a in range(q):
                t = T[i, a]
                if t != 0.0:                                 # a third of BT's entries are 0
                    for b in range(q):
                        dst, src = half[i, b], patch[a, b]
                        for e in range(width):
                            dst[e] += t * src[e]
        base = (p0 - t0) * c
        for i in range(n):
            for j in range(n):
                for e in range(width):
                    acc[e] = 0.0
                for b in range(q):
                    t = T[j, b]
                    if t != 0.0:
                        src = half[i, b]
                        for e in range(width):
                            acc[e] += t * src[e]
                dst = out[i * n + j, base:base + width]     # written once: it is read next by BLAS
                for e in range(width):
                    dst[e] = acc[e]


@jit
def _scatter_tiles(M, AT, t0, t1, th, tw, group, bias, y):
    """y[img, ty*m + a, tx*m + b, k] = bias[k] + sum_{i, j} AT[a, i] AT[b, j] M[i*n + j, (p - t0)*K + k] for
    tiles p = t0 .. t1-1 of the (N, th, tw) grid, the parts inside y only. AT (m, n); M (n*n, >= (t1-t0)*K),
    laid out as _gather_tiles's out."""
    m, n = AT.shape
    oh, ow, k = y.shape[1], y.shape[2], y.shape[3]
    half = np.empty((m, n, group * k), dtype=y.dtype)    # AT @ M, along the tiles' rows
    tile = np.empty((m, m, group * k), dtype=y.dtype)
    for p0 in range(t0, t1, group):
        count = min(group, t1 - p0)
        width, base = count * k, (p0 - t0) * k
        for a in range(m):
            for j in range(n):
                dst = half[a, j]
                for e in range(width):
                    dst[e] = 0.0
                for i in range(n):
                    t = AT[a, i]
                    if t != 0.0:
                        src = M[i * n + j, base:base + width]
                        for e in range(width):
                            dst[e] += t * src[e]
        for a in range(m):
            for b in range(m):
                dst = tile[a, b]
                for g in range(count):
                    for ch in range(k):
                        dst[g * k + ch] = bias[ch]
                for j in range(n):
                    t = AT[b, j]
                    if t != 0.0:
                        src = half[a, j]
                        for e in range(width):
                            dst[e] += t * src[e]
        for g in range(count):
            img, rest = (p0 + g) // (th * tw), (p0 + g) % (th * tw)
            r0, c0 = (rest // tw) * m, (rest % tw) * m
            for a in range(min(m, oh - r0)):
                for b in range(min(m, ow - c0)):
                    dst, src = y[img, r0 + a, c0 + b], tile[a, b, g * k:(g + 1) * k]
                    for ch in range(k):
                        dst[ch] = src[ch]


def _group(channels):
    return max(1, GROUP_VALUES // channels)


def _matrices(dtype, m=M_TILE):
    AT, G, BT = twin.transform_matrices(m)
    return AT.astype(dtype), G, BT.astype(dtype)


def _tile_bands(tiles, values_per_tile, itemsize, threads):
    """Consecutive tile ranges (t0, t1): about BAND_BYTES of transformed tiles each, at least two per thread
    where there are enough tiles (so that a thread slowed by another program takes fewer)."""
    per = max(1, BAND_BYTES // (values_per_tile * itemsize))
    per = max(1, min(per, ceil_div(tiles, 2 * threads)))
    count = ceil_div(tiles, per)
    per = ceil_div(tiles, count)
    return [(t0, min(t0 + per, tiles)) for t0 in range(0, tiles, per)]


def _band_buffer(slot, kind, n, rows, width, dtype):
    """A scratch buffer for a band's transformed tiles: (flat, matrices), the same memory seen as
    (n*n, stride*width) for the Numba kernels and as n*n matrices (rows, width) for the products. Its n*n
    blocks are not a multiple of 4 KB apart: otherwise the n*n rows that one tile touches all map to the same
    set of the L1 cache and evict each other."""
    stride = rows + (1 if (rows * width * np.dtype(dtype).itemsize) % 4096 == 0 else 0)
    buf = scratch(slot, (n * n, stride, width), dtype, kind=kind)
    return buf.reshape(n * n, stride * width), buf[:, :rows]


def conv2d(x, U, pads, out_hw, bias=None):
    """y = the 3x3 stride-1 convolution of x (N, H, W, C) whose transformed kernel is U (n, n, C, K), F(m x m,
    3 x 3), with the paddings `pads` (top, bottom, left, right) and output size out_hw: (N, OH, OW, K)."""
    n, c, k = U.shape[0], U.shape[2], U.shape[3]
    m = n - 2
    if get_backend() == "numpy":
        y = twin.winograd_products(x, U, pads, out_hw, m)
        return y if bias is None else y + bias
    AT, _, BT = _matrices(x.dtype, m)
    x = np.ascontiguousarray(x)
    Ub = np.ascontiguousarray(U.reshape(n * n, c, k), dtype=x.dtype)
    th, tw = twin.tile_grid(out_hw, m)
    y = np.empty((x.shape[0],) + tuple(out_hw) + (k,), dtype=x.dtype)
    b = np.zeros(k, x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    plan = _tile_bands(x.shape[0] * th * tw, n * n * max(c, k), x.itemsize, get_num_threads())

    def band(i, slot):
        t0, t1 = plan[i]
        V_flat, V = _band_buffer(slot, "winograd_in", n, t1 - t0, c, x.dtype)
        M_flat, M = _band_buffer(slot, "winograd_out", n, t1 - t0, k, x.dtype)
        _gather_tiles(x, BT, m, pads[0], pads[2], t0, t1, th, tw, _group(c), V_flat)  # V = BT d B
        np.matmul(V, Ub, out=M)                                                      # M = V @ U
        _scatter_tiles(M_flat, AT, t0, t1, th, tw, _group(k), b, y)                  # y = AT M A (+ b)
    run_bands(band, len(plan))
    return y


def kernel_grad(x, g, pads):
    """dL/dK (3, 3, C, K) of the 3x3 stride-1 convolution of x (N, H, W, C) with paddings `pads`, for
    G = g = dL/dy (N, OH, OW, K): the tile formula backwards (module docstring)."""
    if get_backend() == "numpy":
        return twin.winograd_kernel_grad(x, g, pads, M_TILE)
    m, n = M_TILE, M_TILE + 2
    AT, G, BT = _matrices(x.dtype, m)
    A = np.ascontiguousarray(AT.T)
    x, g = np.ascontiguousarray(x), np.ascontiguousarray(g)
    c, k, out_hw = x.shape[3], g.shape[3], g.shape[1:3]
    th, tw = twin.tile_grid(out_hw, m)
    plan = _tile_bands(x.shape[0] * th * tw, n * n * (c + k), x.itemsize, get_num_threads())
    parts = np.empty((len(plan), n * n, c, k), dtype=x.dtype)

    def band(i, slot):
        t0, t1 = plan[i]
        V_flat, V = _band_buffer(slot, "winograd_in", n, t1 - t0, c, x.dtype)
        dM_flat, dM = _band_buffer(slot, "winograd_out", n, t1 - t0, k, x.dtype)
        _gather_tiles(x, BT, m, pads[0], pads[2], t0, t1, th, tw, _group(c), V_flat)  # V = BT d B
        _gather_tiles(g, A, m, 0, 0, t0, t1, th, tw, _group(k), dM_flat)              # dM = A dY AT
        np.matmul(V.transpose(0, 2, 1), dM, out=parts[i])                  # dU (this band's part) = V^T @ dM
    run_bands(band, len(plan))
    dU = parts.sum(axis=0, dtype=np.float64).reshape(n, n, c, k)
    return np.einsum("ia,ijck,jb->abck", G, dU, G, optimize=True).astype(x.dtype)   # dL/dK = G^T dU G


class KernelTransforms:
    """U = G g G^T of one layer's kernel g, for the forward, and of its back kernel, for the input gradient;
    each made on first use and kept until the kernel's values change.

    The kernel changes in place (an optimizer's update, set_weights, loading a file), so a kept transform is
    only handed out after comparing the kernel with the copy it was made from: one pass over 9*C*K values,
    where the transform costs about 40 multiplications per value.
    """

    def __init__(self, m=M_TILE):
        self.m = m
        self.source, self.kept = None, {}

    def get(self, kernel, which):
        """The transform of `kernel` ('forward') or of twin.back_kernel(kernel) ('backward'), (n, n, ., .)."""
        if (self.source is None or self.source.shape != kernel.shape or self.source.dtype != kernel.dtype
                or not np.array_equal(self.source, kernel)):
            self.source, self.kept = np.array(kernel, copy=True), {}
        if which not in self.kept:
            g = kernel if which == "forward" else twin.back_kernel(kernel)
            G = twin.transform_matrices(self.m)[1]
            self.kept[which] = twin.kernel_transform(g, G).astype(kernel.dtype)
        return self.kept[which]
