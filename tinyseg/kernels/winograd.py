"""Winograd F(4x4, 3x3) convolution, fast: Numba tile transforms and OpenBLAS products, band by band.

The formulas and the NumPy version (any tile size) are in tinyseg/winograd.py; this module computes the same
numbers for F(4x4, 3x3) (up to rounding: only the order of the additions changes), in three steps per band
of tiles:

    V = BT d B       _input_tiles: the band's 6 x 6 input tiles -> (36, tiles, C)            (Numba)
    M = V @ U        36 products (tiles, C) @ (C, K), U = G g G^T transformed once          (OpenBLAS)
    y = AT M A       _output_tiles: -> the band's 4 x 4 output tiles of y (+ bias)          (Numba)

and the kernel gradient, the same tile formula run backwards (tinyseg/winograd.py derives it):

    V  = BT d B      _input_tiles on the input tiles                                        (Numba)
    dM = A dY AT     _grad_tiles on the 4 x 4 tiles of G = dL/dy                            (Numba)
    dU += V^T @ dM   36 products (C, tiles) @ (tiles, K), one partial sum per thread        (OpenBLAS)
    dL/dK = G^T dU G after the bands; dL/db is read off dM on the way (_grad_tiles)

The input gradient is a convolution too (of G with the kernel flipped and its channel axes swapped), so it
runs through `conv2d` unchanged.

Bands. A band is a run of consecutive tiles of the (N, TH, TW) grid. Its transformed tiles (n^2 rows of
tiles x C values) are a few hundred KB that stay in the cache of the core that wrote them while the products
read them, and the products' result stays there for the output transform. Bands are shared between
tinyseg's threads (kernels/bands.py), each with its own scratch buffers; every band writes its own tiles
of y. The kernel gradient gives each thread a fixed share of the tiles, walked band by band into one partial
sum of dU per share (one per band would be n^2 C K values to add up per band, more than its products cost at
64 channels and up), which the share also transforms back, G^T dU_s G, so that the serial sum at the end adds
3x3 kernels rather than 6x6 tiles. Either way the numbers do not depend on which thread ran what.

Transforms in Numba: one function per direction, F(4, 3)'s matrices written out as sums (no matrix
arrays, no zero entries multiplied, no branch on the tile size). A group of tiles is read into a small
buffer (zeros outside the image), then each transform is two passes of 1-D sums, BT along the tiles' rows,
then along their columns. Each sum is its own loop over the group's tiles x channels: long, with one array
written and a few read, which is what LLVM vectorises (a loop writing several arrays makes it check every
pair for overlap, and past a few pairs it gives up and runs it one value at a time). Two more things keep
them vectorised: the constants are made in the arrays' own type (a float literal would make every float32
sum run in float64), and every array in those loops is indexed by the bare loop variable (an index such as
base + e makes Numba test it for a negative value, which stops LLVM). Both passes share one loop body,
which keeps the first-ever compile of the two kernels short.

The kernel transform U = G g G^T costs n^2 / 9 times the kernel's size in products per call: small, but a
step runs every 3x3 layer forward and backward. KernelTransforms keeps it until the kernel's values change.
"""
import numpy as np

from .. import winograd as twin
from .bands import ceil_div, run_bands, scratch
from .config import get_backend, get_num_threads, jit

M_TILE = 4                  # F(4x4, 3x3): 36 products for 16 outputs (tinyseg/winograd.py)
KERNEL_G = twin.transform_matrices(M_TILE)[1]   # F(4, 3)'s G (6, 3), made once: transform_matrices costs
                                                # a fraction of a small layer's kernel gradient per call
BAND_BYTES = 2**20          # transformed tiles of one band (n^2 * tiles * channels values): about L2's size


IN_GROUP_VALUES = 256       # tiles are transformed several at a time, about this many values (tiles x channels)
OUT_GROUP_VALUES = 512      # side by side: each pass of a transform is then a few long loops, which LLVM
                            # vectorises, rather than many short ones that each pay their start-up; the input
                            # transform's buffers are larger (6 x 6 rows, not 4 x 6), so it takes fewer


@jit
def _input_tiles(x, top, left, t0, t1, th, tw, group, out):
    """out[i*6 + j, (p - t0)*C + c] = (BT d_p B)[i, j] for channel c of the 6x6 input tile d_p of tiles
    p = t0 .. t1-1 of the (N, th, tw) grid (p = (img*th + ty)*tw + tx; d_p = x[img, 4ty - top + a, 4tx - left + b],
    read as 0 outside x). out (36, >= (t1 - t0)*C): row i*6 + j is position (i, j) of every tile, tile after
    tile, C channels each (a (tiles, C) matrix, flattened). BT is F(4, 3)'s (tinyseg/winograd.py), written out:

        BT = [[4,  0, -5,  0, 1, 0],      row 0: 4 d0 - 5 d2 + d4
              [0, -4, -4,  1, 1, 0],      row 1: d3 + d4 - 4 (d1 + d2)
              [0,  4, -4, -1, 1, 0],      row 2: d4 - d3 + 4 (d1 - d2)
              [0, -2, -1,  2, 1, 0],      row 3: d4 - d2 + 2 (d3 - d1)
              [0,  2, -1, -2, 1, 0],      row 4: d4 - d2 + 2 (d1 - d3)
              [0,  4,  0, -5, 0, 1]]      row 5: 4 d1 - 5 d3 + d5
    """
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    two, four, five = x.dtype.type(2.0), x.dtype.type(4.0), x.dtype.type(5.0)   # x's type: float32 stays float32
    patch = np.empty((6, 6, group * c), dtype=x.dtype)
    half = np.empty((6, 6, group * c), dtype=x.dtype)
    for p0 in range(t0, t1, group):
        count = min(group, t1 - p0)
        width = count * c
        for g in range(count):
            img, rest = (p0 + g) // (th * tw), (p0 + g) % (th * tw)
            r0, c0 = (rest // tw) * 4 - top, (rest % tw) * 4 - left
            for a in range(6):
                for b in range(6):
                    dst = patch[a, b, g * c:(g + 1) * c]      # loops, not dst[:] = ...: Numba's slice
                    if 0 <= r0 + a < h and 0 <= c0 + b < w:   # assignment costs more than these copies
                        src = x[img, r0 + a, c0 + b]
                        for ch in range(c):
                            dst[ch] = src[ch]
                    else:
                        for ch in range(c):
                            dst[ch] = 0.0
        base = (p0 - t0) * c
        for step in range(12):      # one loop body for both passes: half its machine code, half the compile
            if step < 6:            # half = BT @ patch, along the tiles' rows (column b = step)
                d0, d1, d2, d3 = patch[0, step], patch[1, step], patch[2, step], patch[3, step]
                d4, d5 = patch[4, step], patch[5, step]
                o0, o1, o2, o3 = half[0, step], half[1, step], half[2, step], half[3, step]
                o4, o5 = half[4, step], half[5, step]
            else:                   # out = half @ B, along their columns (row i = step - 6), each row written
                i = step - 6        # once: it is read next by BLAS
                d0, d1, d2, d3, d4, d5 = half[i, 0], half[i, 1], half[i, 2], half[i, 3], half[i, 4], half[i, 5]
                o0, o1 = out[i * 6, base:base + width], out[i * 6 + 1, base:base + width]
                o2, o3 = out[i * 6 + 2, base:base + width], out[i * 6 + 3, base:base + width]
                o4, o5 = out[i * 6 + 4, base:base + width], out[i * 6 + 5, base:base + width]
            for e in range(width):  # one array written per loop: LLVM vectorises these (module docstring)
                o0[e] = four * d0[e] - five * d2[e] + d4[e]
            for e in range(width):
                o1[e] = d3[e] + d4[e] - four * (d1[e] + d2[e])
            for e in range(width):
                o2[e] = d4[e] - d3[e] + four * (d1[e] - d2[e])
            for e in range(width):
                o3[e] = d4[e] - d2[e] + two * (d3[e] - d1[e])
            for e in range(width):
                o4[e] = d4[e] - d2[e] + two * (d1[e] - d3[e])
            for e in range(width):
                o5[e] = four * d1[e] - five * d3[e] + d5[e]


@jit
def _output_tiles(M, t0, t1, th, tw, group, bias, y):
    """y[img, 4ty + a, 4tx + b, k] = bias[k] + (AT M_p A)[a, b] for tiles p = t0 .. t1-1 of the (N, th, tw) grid,
    the parts inside y only, M_p the 6x6 values of tile p: M[i*6 + j, (p - t0)*K + k], laid out as
    _input_tiles's out. AT is F(4, 3)'s (tinyseg/winograd.py), written out:

        AT = [[1, 1,  1, 1,  1, 0],       row 0: m0 + m1 + m2 + m3 + m4
              [0, 1, -1, 2, -2, 0],       row 1: m1 - m2 + 2 (m3 - m4)
              [0, 1,  1, 4,  4, 0],       row 2: m1 + m2 + 4 (m3 + m4)
              [0, 1, -1, 8, -8, 1]]       row 3: m1 - m2 + 8 (m3 - m4) + m5
    """
    oh, ow, k = y.shape[1], y.shape[2], y.shape[3]
    two, four, eight = y.dtype.type(2.0), y.dtype.type(4.0), y.dtype.type(8.0)   # y's type: float32 stays float32
    half = np.empty((4, 6, group * k), dtype=y.dtype)    # AT @ M, along the tiles' rows
    tile = np.empty((4, 4, group * k), dtype=y.dtype)    # AT @ M @ A
    for p0 in range(t0, t1, group):
        count = min(group, t1 - p0)
        width, base = count * k, (p0 - t0) * k
        for step in range(10):      # one loop body for both passes: half its machine code, half the compile
            if step < 6:            # half = AT @ M, along the tiles' rows (column j = step)
                m0, m1, m2 = M[step, base:base + width], M[6 + step, base:base + width], M[12 + step, base:base + width]
                m3, m4 = M[18 + step, base:base + width], M[24 + step, base:base + width]
                m5 = M[30 + step, base:base + width]
                o0, o1, o2, o3 = half[0, step], half[1, step], half[2, step], half[3, step]
            else:                   # tile = half @ A, along their columns (row a = step - 6)
                a = step - 6
                m0, m1, m2, m3, m4, m5 = half[a, 0], half[a, 1], half[a, 2], half[a, 3], half[a, 4], half[a, 5]
                o0, o1, o2, o3 = tile[a, 0], tile[a, 1], tile[a, 2], tile[a, 3]
            for e in range(width):
                o0[e] = m0[e] + m1[e] + m2[e] + m3[e] + m4[e]
            for e in range(width):
                o1[e] = m1[e] - m2[e] + two * (m3[e] - m4[e])
            for e in range(width):
                o2[e] = m1[e] + m2[e] + four * (m3[e] + m4[e])
            for e in range(width):
                o3[e] = m1[e] - m2[e] + eight * (m3[e] - m4[e]) + m5[e]
        for g in range(count):
            img, rest = (p0 + g) // (th * tw), (p0 + g) % (th * tw)
            r0, c0 = (rest // tw) * 4, (rest % tw) * 4
            for a in range(min(4, oh - r0)):
                for b in range(min(4, ow - c0)):
                    dst, src = y[img, r0 + a, c0 + b], tile[a, b, g * k:(g + 1) * k]
                    for ch in range(k):
                        dst[ch] = src[ch] + bias[ch]


def _group(values, channels):
    return max(1, values // channels)


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
    """y = the 3x3 stride-1 convolution of x (N, H, W, C) whose transformed kernel is U (6, 6, C, K), F(4x4,
    3x3), with the paddings `pads` (top, bottom, left, right) and output size out_hw: (N, OH, OW, K)."""
    n, c, k = U.shape[0], U.shape[2], U.shape[3]
    if U.shape[:2] != (M_TILE + 2, M_TILE + 2):
        raise ValueError(f"winograd conv2d: U must be F(4x4, 3x3)'s transformed kernel (6, 6, C, K), got {U.shape}")
    if get_backend() == "numpy":
        y = twin.winograd_products(x, U, pads, out_hw, M_TILE)
        return y if bias is None else y + bias
    x = np.ascontiguousarray(x)
    Ub = np.ascontiguousarray(U.reshape(n * n, c, k), dtype=x.dtype)
    th, tw = twin.tile_grid(out_hw, M_TILE)
    y = np.empty((x.shape[0],) + tuple(out_hw) + (k,), dtype=x.dtype)
    b = np.zeros(k, x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    plan = _tile_bands(x.shape[0] * th * tw, n * n * max(c, k), x.itemsize, get_num_threads())

    def band(i, slot):
        t0, t1 = plan[i]
        V_flat, V = _band_buffer(slot, "winograd_in", n, t1 - t0, c, x.dtype)
        M_flat, M = _band_buffer(slot, "winograd_out", n, t1 - t0, k, x.dtype)
        _input_tiles(x, pads[0], pads[2], t0, t1, th, tw, _group(IN_GROUP_VALUES, c), V_flat)  # V = BT d B
        np.matmul(V, Ub, out=M)                                                                # M = V @ U
        _output_tiles(M_flat, t0, t1, th, tw, _group(OUT_GROUP_VALUES, k), b, y)  # y = AT M A (+ b)
    run_bands(band, len(plan))
    return y


@jit
def _grad_tiles(g, t0, t1, th, tw, group, out):
    """out[i*6 + j, (p - t0)*K + k] = (A dY_p AT)[i, j] for channel k of the 4x4 tile dY_p of G = g
    (N, OH, OW, K) of tiles p = t0 .. t1-1 of the (N, th, tw) grid (dY_p = g[img, 4ty + a, 4tx + b], read as 0
    where the tile overhangs G), laid out as _input_tiles's out. A = AT^T is F(4, 3)'s, written out:

        A = [[1,  0, 0,  0],      row 0: y0
             [1,  1, 1,  1],      row 1: y0 + y1 + y2 + y3
             [1, -1, 1, -1],      row 2: y0 - y1 + y2 - y3
             [1,  2, 4,  8],      row 3: y0 + 2 y1 + 4 y2 + 8 y3
             [1, -2, 4, -8],      row 4: y0 - 2 y1 + 4 y2 - 8 y3
             [0,  0, 0,  1]]      row 5: y3

    (Row 1 sums the tile, so out's position (1, 1) holds the sum of each tile: the bias gradient's share.)
    """
    oh, ow, k = g.shape[1], g.shape[2], g.shape[3]
    two, four, eight = g.dtype.type(2.0), g.dtype.type(4.0), g.dtype.type(8.0)   # g's type: float32 stays float32
    patch = np.empty((4, 4, group * k), dtype=g.dtype)
    half = np.empty((6, 4, group * k), dtype=g.dtype)     # A @ dY, along the tiles' rows
    for p0 in range(t0, t1, group):
        count = min(group, t1 - p0)
        width, base = count * k, (p0 - t0) * k
        for q in range(count):
            img, rest = (p0 + q) // (th * tw), (p0 + q) % (th * tw)
            r0, c0 = (rest // tw) * 4, (rest % tw) * 4
            for a in range(4):
                for b in range(4):
                    dst = patch[a, b, q * k:(q + 1) * k]
                    if r0 + a < oh and c0 + b < ow:
                        src = g[img, r0 + a, c0 + b]
                        for ch in range(k):
                            dst[ch] = src[ch]
                    else:
                        for ch in range(k):
                            dst[ch] = 0.0
        for step in range(10):      # one loop body for both passes: half its machine code, half the compile
            if step < 4:            # half = A @ dY, along the tiles' rows (column b = step)
                y0, y1, y2, y3 = patch[0, step], patch[1, step], patch[2, step], patch[3, step]
                o0, o1, o2, o3 = half[0, step], half[1, step], half[2, step], half[3, step]
                o4, o5 = half[4, step], half[5, step]
            else:                   # out = half @ AT, along their columns (row i = step - 4)
                i = step - 4
                y0, y1, y2, y3 = half[i, 0], half[i, 1], half[i, 2], half[i, 3]
                o0, o1 = out[i * 6, base:base + width], out[i * 6 + 1, base:base + width]
                o2, o3 = out[i * 6 + 2, base:base + width], out[i * 6 + 3, base:base + width]
                o4, o5 = out[i * 6 + 4, base:base + width], out[i * 6 + 5, base:base + width]
            for e in range(width):
                o0[e] = y0[e]
            for e in range(width):
                o1[e] = y0[e] + y1[e] + y2[e] + y3[e]
            for e in range(width):
                o2[e] = y0[e] - y1[e] + y2[e] - y3[e]
            for e in range(width):
                o3[e] = y0[e] + two * y1[e] + four * y2[e] + eight * y3[e]
            for e in range(width):
                o4[e] = y0[e] - two * y1[e] + four * y2[e] - eight * y3[e]
            for e in range(width):
                o5[e] = y3[e]


def kernel_grad(x, g, pads, bias=False):
    """(dL/dK (3, 3, C, K), dL/db (K,) or None without bias) of the 3x3 stride-1 convolution of x (N, H, W, C)
    with paddings `pads`, for G = g = dL/dy (N, OH, OW, K): the tile formula backwards (module docstring)."""
    if get_backend() == "numpy":
        return twin.winograd_kernel_grad(x, g, pads, M_TILE), (g.sum(axis=(0, 1, 2)) if bias else None)
    m, n = M_TILE, M_TILE + 2
    x, g = np.ascontiguousarray(x), np.ascontiguousarray(g)
    c, k, out_hw = x.shape[3], g.shape[3], g.shape[1:3]
    th, tw = twin.tile_grid(out_hw, m)
    tiles, threads = x.shape[0] * th * tw, get_num_threads()
    # One fixed share of the tiles per thread, summed into its own part and walked in cache-sized pieces
    # (the module docstring says why not one part per piece).
    shares = [(tiles * i // threads, tiles * (i + 1) // threads) for i in range(threads)]
    shares = [share for share in shares if share[1] > share[0]]
    per = max(1, BAND_BYTES // (n * n * max(c, k) * x.itemsize))
    # dU's partial sums are reused from call to call (a scratch buffer of the calling thread): at 128
    # channels they are MB, and fresh memory costs a page fault per 4 KB. Each share transforms its own part
    # back, G^T dU_s G (linear in dU), so that only the 3x3 results, 9/36 of the values, are added up here.
    parts = scratch(0, (len(shares), n * n, c, k), x.dtype, kind="winograd_parts")
    dk_parts = np.empty((len(shares), 3, 3, c, k), dtype=x.dtype)
    bias_parts = np.zeros((len(shares), k), dtype=x.dtype) if bias else None
    GT = np.ascontiguousarray(KERNEL_G.T, dtype=x.dtype)      # (3, n) in x's type: in float64 this transform
                                                              # cost more than the products at 128 channels

    def share(i, slot):
        for t0 in range(shares[i][0], shares[i][1], per):
            t1 = min(t0 + per, shares[i][1])
            V_flat, V = _band_buffer(slot, "winograd_in", n, t1 - t0, c, x.dtype)
            D_flat, dM = _band_buffer(slot, "winograd_out", n, t1 - t0, k, x.dtype)
            _input_tiles(x, pads[0], pads[2], t0, t1, th, tw, _group(IN_GROUP_VALUES, c), V_flat)  # V = BT d B
            _grad_tiles(g, t0, t1, th, tw, _group(OUT_GROUP_VALUES, k), D_flat)                # dM = A dY AT
            if t0 == shares[i][0]:
                np.matmul(V.transpose(0, 2, 1), dM, out=parts[i])                           # dU = V^T @ dM
            else:
                part = scratch(slot, parts.shape[1:], x.dtype, kind="winograd_part")
                np.add(parts[i], np.matmul(V.transpose(0, 2, 1), dM, out=part), out=parts[i])  # dU += ...
            if bias:
                bias_parts[i] += dM[7].sum(axis=0)                    # position (1, 1): the tiles' sums
        left = (GT @ parts[i].reshape(n, -1)).reshape(3, n, c * k)    # G^T dU_s G: left[a] (n, C*K),
        np.matmul(GT, left, out=dk_parts[i].reshape(3, 3, c * k))     # then GT @ left[a]
    run_bands(share, len(shares))
    dk = dk_parts.sum(axis=0)                                 # dL/dK: the shares added in a fixed order
    return dk, (bias_parts.sum(axis=0) if bias else None)


class KernelTransforms:
    """U = G g G^T of one layer's kernel g, for the forward, and of its back kernel, for the input gradient;
    each made on first use and kept until the kernel's values change.

    The kernel changes in place (an optimizer's update, set_weights, loading a file), so a kept transform is
    only handed out after comparing the kernel with the copy it was made from: one pass over 9*C*K values,
    where the transform costs about 40 multiplications per value.
    """

    def __init__(self, m=M_TILE):
        self.m, self.G = m, (KERNEL_G if m == M_TILE else twin.transform_matrices(m)[1])
        self.source, self.kept = None, {}

    def get(self, kernel, which):
        """The transform of `kernel` ('forward') or of twin.back_kernel(kernel) ('backward'), (n, n, ., .)."""
        if (self.source is None or self.source.shape != kernel.shape or self.source.dtype != kernel.dtype
                or not np.array_equal(self.source, kernel)):
            self.source, self.kept = np.array(kernel, copy=True), {}
        if which not in self.kept:
            g = kernel if which == "forward" else twin.back_kernel(kernel)
            self.kept[which] = kernel_transform(g, self.G).astype(kernel.dtype)
        return self.kept[which]


def kernel_transform(kernel, G):
    """U = G g G^T for every channel pair, as twin.kernel_transform, in float64: kernel (3, 3, C, K) ->
    (n, n, C, K). Two matrix products over all the channel pairs at once, G @ g then G @ (G g)[i] for each
    row i: einsum's general contraction took several times longer (milliseconds a step at 128 channels,
    and a training step changes every kernel, so it transforms each one twice a step)."""
    c, k, n = kernel.shape[2], kernel.shape[3], G.shape[0]
    g = np.ascontiguousarray(kernel, dtype=np.float64).reshape(3, 3 * c * k)
    left = (G @ g).reshape(n, 3, c * k)                       # (G g)[i, b] for every pair
    return np.matmul(G, left).reshape(n, n, c, k)             # U[i, j] = sum_b G[j, b] (G g)[i, b]
