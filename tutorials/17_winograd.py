# %% [markdown]
# # Tutorial 17: Winograd's convolution: fewer multiplications, derived by hand, its error, its speed
#
# Tutorial 14 met "too little compute" with smaller networks. This one answers it with a better algorithm
# for the same network: Winograd's minimal filtering (S. Winograd, 1980; brought to convolutional networks
# by A. Lavin and S. Gray, "Fast Algorithms for Convolutional Neural Networks", 2016). A 3x3 convolution
# computes each output as 9 multiply-adds per channel pair; Winograd's F(m x m, 3 x 3) computes a whole
# m x m tile of outputs with (m + 2)^2 multiplications instead of 9 m^2, by spending additions instead.
#
# 1. F(2, 3) by hand: 2 outputs of a 3-tap filter with 4 multiplications instead of 6, and where the four
#    products come from (polynomial interpolation at the points 0, 1, -1 and infinity); the matrices AT, G,
#    BT built from those points, checked against tinyseg.winograd and on random data.
# 2. Two dimensions: F(2x2, 3x3) and F(4x4, 3x3) on one tile, and the multiplication counts.
# 3. The price: the rounding error grows with the tile size, in float32 and float64, and why.
# 4. The speed: tinyseg's Conv2D with algorithm='im2col' against algorithm='winograd', timed in turns.
#
# Notation as in tutorials 8 and 11: x the input (N, H, W, C), N the batch, K the kernel (3, 3, C, F), b the
# bias, y the output. Careful: Lavin and Gray's filter transform is called G, the name tutorials 8 and 11
# give the upstream gradient. Here G is always Winograd's matrix, and the upstream gradient is written
# dL/dy. For one tile we use Lavin and Gray's letters: d is a tile of input values (a piece of x) and g the
# filter (a row of K, or in 2-D one 3x3 slice K[:, :, c, f]).
#
#     python tutorials/17_winograd.py            # about a minute (most of it the timing)
#     python tutorials/17_winograd.py --quick    # a few seconds, smaller problems (for tests)
#
# It writes error_growth.png and timing.png into --out (default tutorial-output/17_winograd/), and
# numbers.json with the figures the prose below relies on.
#
# The file is in percent format: `# %%` starts a code cell and `# %% [markdown]` a text cell, so Jupyter
# (with jupytext) and VS Code open it as a notebook.

# %%
import argparse
import json
import os
import sys

import numpy as np
from matplotlib.figure import Figure

from tinyseg.layers import Conv2D
from tinyseg.winograd import conv2d_winograd, transform_matrices

# benchmarks/ sits beside tinyseg/ and tutorials/ in the repository: its interleaved timing is used in part 4
REPO_ROOT = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))) if "__file__" in globals()
             else os.path.abspath(".."))
if REPO_ROOT not in sys.path:
    sys.path.append(REPO_ROOT)
from benchmarks.timing import time_interleaved  # noqa: E402

parser = argparse.ArgumentParser(description="Tutorial 17: Winograd's convolution, derived, checked and timed")
parser.add_argument("--quick", "--tiny", action="store_true", help="a few seconds, for tests")
parser.add_argument("--out", default=os.path.join("tutorial-output", "17_winograd"))
# In a notebook, sys.argv holds the kernel's own flags: read none of them.
args = parser.parse_args([] if "ipykernel" in sys.modules else None)
os.makedirs(args.out, exist_ok=True)
numbers = {}                                   # what the prose relies on, written to numbers.json at the end

# %% [markdown]
# ## 1. F(2, 3) by hand
#
# One dimension first. Four inputs d0..d3, a 3-tap filter g0, g1, g2, two outputs of the correlation (the
# "convolution" of deep learning, no flip):
#
#     y0 = d0 g0 + d1 g1 + d2 g2
#     y1 = d1 g0 + d2 g1 + d3 g2          6 multiplications
#
# Lavin and Gray's four products:
#
#     m1 = (d0 - d2) g0
#     m2 = (d1 + d2) (g0 + g1 + g2) / 2
#     m3 = (d2 - d1) (g0 - g1 + g2) / 2
#     m4 = (d1 - d3) g2
#
#     y0 = m1 + m2 + m3
#     y1 = m2 - m3 - m4                   4 multiplications
#
# Check it by expanding. m2 + m3 = d1 g1 + d2 (g0 + g2), and m2 - m3 = d1 (g0 + g2) + d2 g1 (the halves add
# up to whole terms). Then m1 + m2 + m3 = d0 g0 - d2 g0 + d1 g1 + d2 g0 + d2 g2 = y0, and
# m2 - m3 - m4 = d1 g0 + d1 g2 + d2 g1 - d1 g2 + d3 g2 = y1.
#
# The filter's factors (g0, (g0 + g1 + g2)/2, (g0 - g1 + g2)/2, g2) depend on the filter only: in a network
# they are computed once per weight update and used for every tile of every image. What remains per tile
# is 4 multiplications and some additions. In a layer, one input tile's transform serves all F filters and
# one output tile's transform sums all C input channels first, so the more channels, the fewer additions
# per multiplication saved (part 4 measures what that means for the time).
#
# ### Where the four products come from: polynomials
#
# Read the filter as a polynomial g(t) = g0 + g1 t + g2 t^2, and a 2-long vector h as h(t) = h0 + h1 t.
# The coefficients of the product s(t) = g(t) h(t) are the full convolution of g and h:
# s_j = sum_k g_k h_(j-k), j = 0..3. s has degree 3, so four values fix it. Take them at four points:
#
#     s(0)  = g(0)  h(0)   = g0 * h0
#     s(1)  = g(1)  h(1)   = (g0 + g1 + g2) * (h0 + h1)
#     s(-1) = g(-1) h(-1)  = (g0 - g1 + g2) * (h0 - h1)
#     s(oo) = g2 * h1       "the value at infinity": the leading coefficient s3 is the product of the
#                           leading coefficients
#
# One multiplication per point, four in all, and interpolation (Lagrange) turns the four values back into
# the four coefficients with additions and fixed constants only. In matrices: s = C [(G g) * (A h)], where
# G (4, 3) and A (4, 2) evaluate g and h at the points (one row per point; the row of infinity picks the
# leading coefficient), * multiplies element by element, and C (4, 4) interpolates: C is the inverse of the
# matrix V that evaluates a cubic at the four points.
#
# That computes a convolution of a 2-long h; we want the correlation y of a 4-long d. They are transposes
# of each other: s = T h with T[j, i] = g_(j-i), and y_i = sum_k d_(i+k) g_k = sum_j d_j g_(j-i) =
# (T^T d)_i. Transposing T = C diag(G g) A gives T^T = A^T diag(G g) C^T, so
#
#     y = AT [(G g) * (BT d)]        with AT = A^T (2, 4), BT = C^T (4, 4)
#
# Last, the fractions. Row j of C^T holds the coefficients of the Lagrange polynomial
# L_j(t) = prod_(l != j) (t - a_l) / prod_(l != j) (a_j - a_l); its denominator can move into row j of G
# (the product (G g)_j (BT d)_j does not mind which factor carries it). Then BT holds integers and the 1/2
# sits in G, as in Lavin and Gray's m2 and m3. The code below builds the three matrices this way, from the
# points only, by inverting V numerically (a different route from tinyseg.winograd, which multiplies out
# the Lagrange numerators), and checks them against the library and on random data.

# %%
def evaluation_rows(points, degree):
    """(len(points) + 1, degree + 1): row j evaluates a polynomial of that degree at points[j] (powers
    1, a, a^2, ...); the last row, the point at infinity, picks the leading coefficient."""
    rows = [np.asarray(a, dtype=np.float64) ** np.arange(degree + 1) for a in points]
    rows.append(np.eye(degree + 1)[degree])
    return np.array(rows)


def winograd_from_points(points, m, r=3):
    """(AT, G, BT) of F(m, r) from the n - 1 finite points (n = m + r - 1), by inverting the evaluation
    matrix V of a degree n - 1 polynomial and moving the Lagrange denominators from BT into G."""
    n = m + r - 1
    A = evaluation_rows(points, m - 1)                    # (n, m): h at the points
    G = evaluation_rows(points, r - 1)                    # (n, r): g at the points
    C = np.linalg.inv(evaluation_rows(points, n - 1))     # (n, n): values -> coefficients (interpolation)
    a = np.asarray(points, dtype=np.float64)
    denominators = np.array([np.prod(aj - np.delete(a, j)) for j, aj in enumerate(a)] + [1.0])
    BT = denominators[:, None] * C.T                      # row j times prod_(l != j) (a_j - a_l): integers
    G = G / denominators[:, None] + 0.0                   # + 0.0: no -0 in the printout
    return A.T, G, BT


AT2, G2, BT2 = winograd_from_points([0, 1, -1], m=2)
np.set_printoptions(precision=3, suppress=True)
print("F(2, 3) from the points 0, 1, -1 and infinity:\nAT =\n", AT2, "\nG =\n", G2, "\nBT =\n", BT2)
library = transform_matrices(2, 3)
gap = max(np.abs(ours - theirs).max() for ours, theirs in zip((AT2, G2, BT2), library))
print(f"largest difference from tinyseg.winograd.transform_matrices(2, 3): {gap:.1e}")
numbers["f23_matrix_gap"] = float(gap)
if gap > 1e-12:
    raise RuntimeError("the matrices built from the points differ from tinyseg.winograd's")
numbers["f23"] = {"AT": AT2.tolist(), "G": G2.tolist(), "BT": BT2.tolist()}

# %% [markdown]
# Read the rows against the hand formulas. Row 0 of BT is (-1, 0, 1, 0) and row 0 of G is (-1, 0, 0): their
# product is (d2 - d0)(-g0) = m1. Rows 1 and 2 give m2 and m3 exactly. Row 3 (infinity) gives
# (d3 - d1) g2 = -m4, which is why the last column of AT says +1 where the hand formula says -m4: the same
# product with the sign moved. Now on numbers: random d and g, and a long signal cut into tiles of 2 outputs
# (each tile reads 4 inputs, and neighbouring tiles overlap by 2), against NumPy's own correlation.

# %%
rng = np.random.default_rng(17)
d, g = rng.standard_normal(4), rng.standard_normal(3)
m1, m2 = (d[0] - d[2]) * g[0], (d[1] + d[2]) * (g[0] + g[1] + g[2]) / 2
m3, m4 = (d[2] - d[1]) * (g[0] - g[1] + g[2]) / 2, (d[1] - d[3]) * g[2]
by_hand = np.array([m1 + m2 + m3, m2 - m3 - m4])
by_matrices = AT2 @ ((G2 @ g) * (BT2 @ d))
direct = np.correlate(d, g, mode="valid")                 # y_i = sum_k d[i + k] g[k]
print("direct:", direct, " m1..m4 by hand:", by_hand, " AT [(G g) * (BT d)]:", by_matrices)

signal = rng.standard_normal(2 * 50 + 2)                  # 100 outputs = 50 tiles of F(2, 3)
Gg = G2 @ g                                               # the filter's transform: once for every tile
tiled = np.concatenate([AT2 @ (Gg * (BT2 @ signal[2 * t:2 * t + 4])) for t in range(50)])
err_1d = max(np.abs(by_hand - direct).max(), np.abs(by_matrices - direct).max(),
             np.abs(tiled - np.correlate(signal, g, mode="valid")).max())
print(f"largest difference from np.correlate, one tile and 50 tiles: {err_1d:.1e} (float64)")
numbers["f23_1d_error"] = float(err_1d)
if err_1d > 1e-12:
    raise RuntimeError("F(2, 3) does not compute the correlation")

# %% [markdown]
# ## 2. Two dimensions: nesting the 1-D formula
#
# A 3x3 correlation is a 1-D correlation along the rows of a 1-D correlation along the columns, so the
# 1-D formula applies twice. For one n x n input tile d (n = m + 2) and one 3x3 filter g:
#
#     Y = AT [(G g G^T) * (BT d B)] A          Y: the m x m output tile, B = BT^T, A = AT^T
#
# G g G^T (n, n) is the transformed filter, BT d B (n, n) the transformed tile, and the n^2 element-by-element
# products are all the multiplications there are. In a layer with C input channels and F filters the
# channel sum moves inside (the transforms are linear), and the element-by-element products become, at
# each of the n^2 positions, a matrix product over the channels, (tiles, C) @ (C, F): that is how
# tinyseg.winograd and its fast kernel compute it (their module docstrings give the shapes).
#
# The check below takes one tile and one 3x3 filter, for F(2x2, 3x3) (4x4 tile) and F(4x4, 3x3) (6x6 tile,
# the matrices from the points 0, 1, -1, 2, -2 and infinity), against the direct sum.

# %%
def correlate2d_valid(d, g):
    """The direct 'valid' 2-D correlation: Y[i, j] = sum_(a, c) d[i + a, j + c] g[a, c]."""
    windows = np.lib.stride_tricks.sliding_window_view(d, g.shape)
    return np.einsum("ijac,ac->ij", windows, g)


tile_errors = {}
for m, points in ((2, [0, 1, -1]), (4, [0, 1, -1, 2, -2])):
    AT, G, BT = winograd_from_points(points, m)
    tile, g3 = rng.standard_normal((m + 2, m + 2)), rng.standard_normal((3, 3))
    Y = AT @ ((G @ g3 @ G.T) * (BT @ tile @ BT.T)) @ AT.T
    tile_errors[m] = float(np.abs(Y - correlate2d_valid(tile, g3)).max())
    same = max(np.abs(a - b).max() for a, b in zip((AT, G, BT), transform_matrices(m)))
    print(f"F({m}x{m}, 3x3) on one {m + 2}x{m + 2} tile: largest difference from the direct sum "
          f"{tile_errors[m]:.1e}; matrices vs tinyseg.winograd {same:.1e}")
numbers["tile_errors"] = tile_errors
if max(tile_errors.values()) > 1e-12:
    raise RuntimeError("the 2-D tile formula does not compute the correlation")

# %% [markdown]
# Multiplications per output tile, for one channel pair: the direct sum does 9 per output, 9 m^2 per tile;
# Winograd does n^2 = (m + 2)^2. The gain grows with the tile, towards 9 (in 1-D: m + 2 against 3 m).

# %%
M_VALUES = (2, 3, 4, 5, 6, 7, 8)        # transform_matrices' default points reach F(8, 3)
counts = [{"m": m, "direct": 9 * m * m, "winograd": (m + 2) ** 2, "gain": 9 * m * m / (m + 2) ** 2}
          for m in M_VALUES]
print(f"{'tile':<16}{'direct 9 m^2':>14}{'Winograd (m+2)^2':>18}{'fewer by':>10}")
for c in counts:
    print(f"{'F(%dx%d, 3x3)' % (c['m'], c['m']):<16}{c['direct']:>14}{c['winograd']:>18}{c['gain']:>9.2f}x")
numbers["counts"] = counts

# %% [markdown]
# ## 3. The price: rounding error grows with the tile
#
# Why not take m = 8 and do 5.2x fewer multiplications? Each larger tile needs more interpolation points,
# and after 0, 1, -1 they get larger or smaller (2, -2, 1/2, -1/2, 3, -3). Powers of those points fill AT
# and G, and products of differences of them fill BT: the entries spread over more and more orders of
# magnitude. The sum that the transforms compute then adds large terms that cancel to a small result, and
# every rounding of a large term leaves an error that is large next to that result.
#
# The measurement: one layer's convolution (random x and K, 'same' padding) by
# tinyseg.winograd.conv2d_winograd with tiles m = 2 .. 8, in float32 and in float64, against the direct sum
# computed in long double (80-bit on x86), more exact than either. The error is the largest difference over
# the output, divided by the largest |y|. For scale, the same for tinyseg's Conv2D with algorithm='im2col'
# (one long sum per output, no transforms), and for Conv2D with algorithm='winograd', whose fast kernel
# runs F(4x4, 3x3).
#
# Beside the error, the size of the matrices: the largest |entry| of AT and BT, the smallest non-zero
# |entry| of G (its fractions), and a worst-case amplification: the tile formula evaluated with every
# matrix, filter and input replaced by its absolute value (all filter and input values 1), divided by the
# same for the direct sum (9): how much larger the terms that must cancel can be than the direct sum's
# terms. It is a worst case, so read its growth from tile to tile, not its value: the rounding error of a
# float format follows the growth.

# %%
def conv_direct(x, kernel):
    """'same' 3x3 correlation, y[n, i, j, f] = sum_(a, c, ch) xpad[n, i+a, j+c, ch] K[a, c, ch, f], summed in
    long double (80-bit on x86; NumPy's longdouble) so that even float64's rounding shows against it."""
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))).astype(np.longdouble)
    kl, (h, w) = kernel.astype(np.longdouble), x.shape[1:3]
    return sum(xp[:, a:a + h, c:c + w] @ kl[a, c] for a in range(3) for c in range(3))    # (N, H, W, F)


def conv2d_layer(x, kernel, algorithm):
    """tinyseg's Conv2D (no bias) in x's dtype with the given algorithm."""
    layer = Conv2D(kernel.shape[-1], 3, padding="same", use_bias=False, algorithm=algorithm, dtype=x.dtype.name)
    layer.build(x.shape[1:])
    layer.params["kernel"][...] = kernel
    return layer.forward(x)


def amplification(m):
    """max over the tile of |AT| [(|G| 1 |G|^T) * (|BT| 1 |BT|^T)] |AT|^T, divided by 9 (the direct sum's)."""
    AT, G, BT = (np.abs(a) for a in transform_matrices(m))
    ones_g, ones_d = np.ones((3, 3)), np.ones((m + 2, m + 2))
    return float((AT @ ((G @ ones_g @ G.T) * (BT @ ones_d @ BT.T)) @ AT.T).max() / 9)


def relative_error(y, reference):
    return float(np.abs(y.astype(np.longdouble) - reference).max() / np.abs(reference).max())


shape = (1, 16, 16, 8) if args.quick else (4, 48, 48, 32)
x64 = rng.standard_normal(shape)
kernel64 = rng.standard_normal((3, 3, shape[-1], shape[-1])) / np.sqrt(9 * shape[-1])
y_exact = conv_direct(x64, kernel64)
errors = {"float32": [], "float64": []}
sizes = {"AT_max": [], "BT_max": [], "G_min": [], "amplification": []}
for m in M_VALUES:
    for dtype in errors:
        x_, kernel_ = x64.astype(dtype), kernel64.astype(dtype)
        errors[dtype].append(relative_error(conv2d_winograd(x_, kernel_, "same", m=m), y_exact))
    AT, G, BT = transform_matrices(m)
    sizes["AT_max"].append(float(np.abs(AT).max()))
    sizes["BT_max"].append(float(np.abs(BT).max()))
    sizes["G_min"].append(float(np.abs(G[G != 0]).min()))
    sizes["amplification"].append(amplification(m))
baseline = {dtype: {alg: relative_error(conv2d_layer(x64.astype(dtype), kernel64.astype(dtype), alg), y_exact)
                    for alg in ("im2col", "winograd")} for dtype in ("float32", "float64")}

print(f"x {shape}, K (3, 3, {shape[-1]}, {shape[-1]}): largest error / largest |y|, against the long-double direct sum")
print(f"{'tile':<16}{'float32':>10}{'float64':>10}{'max|AT|':>9}{'max|BT|':>9}{'min|G|':>9}{'amplif.':>10}")
for i, m in enumerate(M_VALUES):
    print(f"{'F(%dx%d, 3x3)' % (m, m):<16}{errors['float32'][i]:>10.1e}{errors['float64'][i]:>10.1e}"
          f"{sizes['AT_max'][i]:>9.4g}{sizes['BT_max'][i]:>9.4g}{sizes['G_min'][i]:>9.2g}"
          f"{sizes['amplification'][i]:>10.3g}")
for alg in ("im2col", "winograd"):
    print(f"{'Conv2D ' + alg:<16}{baseline['float32'][alg]:>10.1e}{baseline['float64'][alg]:>10.1e}")
numbers.update(errors=errors, sizes=sizes, baseline=baseline, m_values=list(M_VALUES), error_shape=list(shape))

# %% [markdown]
# What the numbers say (computed from the table above):

# %%
f32, f64 = np.array(errors["float32"]), np.array(errors["float64"])
i2, i4, last = M_VALUES.index(2), M_VALUES.index(4), len(M_VALUES) - 1
growth = float(np.corrcoef(np.log(f32), np.log(sizes["amplification"]))[0, 1])
print(f"- F(2x2, 3x3) in float32: {f32[i2]:.1e}, {f32[i2] / baseline['float32']['im2col']:.1f} times im2col's "
      f"{baseline['float32']['im2col']:.1e}.\n"
      f"- F(4x4, 3x3), the tile tinyseg's Conv2D uses: {f32[i4]:.1e} ({f32[i4] / f32[i2]:.0f} times F(2x2)'s); "
      f"the fast kernel measures {baseline['float32']['winograd']:.1e}.\n"
      f"- F({M_VALUES[last]}x{M_VALUES[last]}, 3x3): {f32[last]:.1e} in float32, "
      f"{f32[last] / f32[i2]:,.0f} times F(2x2)'s: {-np.log10(f32[last]):.1f} correct decimal digits of the "
      f"output's scale left, against {-np.log10(f32[i2]):.1f}.\n"
      f"- float64 follows the same curve (correlation of the logs "
      f"{np.corrcoef(np.log(f32), np.log(f64))[0, 1]:.2f}) {np.median(f32 / f64):.1e} times lower (the ratio "
      f"of the two formats' "
      f"precision is {np.finfo(np.float32).eps / np.finfo(np.float64).eps:.1e}): even F({M_VALUES[last]}x"
      f"{M_VALUES[last]}) stays at {f64[last]:.0e}.\n"
      f"- F(6x6, 3x3) against F(4x4, 3x3): {f32[M_VALUES.index(6)] / f32[i4]:.1f} times the error (points 1/2, "
      f"-1/2 added); F(8x8) against F(6x6): {f32[last] / f32[M_VALUES.index(6)]:.0f} times (3 and -3 added).\n"
      f"- log error against log amplification: correlation {growth:.2f} over the tile sizes; the entries that "
      f"grow (max|BT| from {sizes['BT_max'][i2]:g} to {sizes['BT_max'][last]:g}, max|AT| from "
      f"{sizes['AT_max'][i2]:g} to {sizes['AT_max'][last]:g}) carry the error.")
numbers["error_vs_amplification_correlation"] = growth

# %%
def plot_error_growth(path):
    """Left: relative error against the tile size m, log scale, float32 and float64, with Conv2D's im2col
    for scale. Right: the sizes of the transform matrices and the amplification, log scale."""
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    for dtype, color in (("float32", "#c0392b"), ("float64", "#2e86c1")):
        left.plot(M_VALUES, errors[dtype], "o-", color=color, label=f"Winograd F(m x m, 3x3), {dtype}")
        left.axhline(baseline[dtype]["im2col"], color=color, ls="--", lw=1,
                     label=f"Conv2D im2col, {dtype}")
    left.set_yscale("log")
    left.set_xlabel("output tile size m (F(m x m, 3x3), tile of (m+2) x (m+2) inputs)")
    left.set_ylabel("max |y - y_exact| / max |y_exact|  (log)")
    left.set_title("Error against a long-double direct sum", fontsize=10)
    left.legend(fontsize=8, loc="upper left")
    left.grid(True, which="major", alpha=0.3)
    for key, label, style in (("BT_max", "max |entry| of BT", "s-"), ("AT_max", "max |entry| of AT", "^-"),
                              ("G_min", "min non-zero |entry| of G", "v-"),
                              ("amplification", "amplification (|terms| / 9)", "o-")):
        right.plot(M_VALUES, sizes[key], style, label=label)
    right.set_yscale("log")
    right.set_xlabel("output tile size m")
    right.set_ylabel("size (log)")
    right.set_title("Why: the transform matrices' entries spread with the points", fontsize=10)
    right.legend(fontsize=8, loc="upper left")
    right.grid(True, which="major", alpha=0.3)
    for ax in (left, right):
        ax.set_xticks(M_VALUES)
    fig.suptitle(f"Winograd's rounding error grows with the tile (x {shape}, random data)", fontsize=11)
    fig.savefig(path, dpi=100)
    return fig


error_fig = plot_error_growth(os.path.join(args.out, "error_growth.png"))

# %% [markdown]
# Read with the points in mind. F(2x2, 3x3) (points 0, 1, -1) is about as exact as im2col. F(4x4, 3x3) adds
# 2 and -2 and loses about one decimal digit in float32: the tile tinyseg's Conv2D uses, 4x fewer
# multiplications for an error still near 1e-6 of the output's scale. F(5x5) and F(6x6) add 1/2 and -1/2,
# which widen the spread little (their error stays within a few times F(4x4)'s, and F(6x6, 3x3) is used
# in practice). F(7x7) and F(8x8) need 3 and -3, whose powers (3^7 = 2187 in AT) cost one to two more
# digits at once. Larger tiles also waste more work at the image's edges, where tiles overhang, and make
# the transforms (additions, of order n^3 per tile and channel) weigh more next to the n^2 products.
#
# ## 4. The speed: im2col against Winograd in tinyseg's Conv2D
#
# The same layer with algorithm='im2col' and algorithm='winograd', on three layer shapes of a U-Net (16, 32
# and 64 channels in and out), forward alone and forward + backward. In the backward, Winograd computes the
# input gradient dL/dx (itself a 3x3 convolution of dL/dy with the flipped kernel) and the kernel gradient
# dL/dK, the tile formula run backwards: 36 products per tile pair again (tinyseg/winograd.py derives it).
#
# The four variants of a shape take turns in one process (benchmarks/timing.py's time_interleaved): each
# round runs a block of calls of each, in a rotating order, and the median is kept. This machine is shared
# with other programs, so the milliseconds below move from run to run; the ratios, taken in turns on the
# same machine at the same time, are what to read.

# %%
layer_shapes = ([(2, 16, 16, 16), (2, 16, 16, 32), (2, 8, 8, 64)] if args.quick
          else [(4, 128, 128, 16), (4, 64, 64, 32), (4, 32, 32, 64)])


def make_conv(x, kernel, algorithm):
    layer = Conv2D(kernel.shape[-1], 3, padding="same", algorithm=algorithm)
    layer.build(x.shape[1:])
    layer.params["kernel"][...] = kernel
    return layer


def forward_backward(layer, x, dy):
    layer.forward(x, training=True)
    return layer.backward(dy)                 # dL/dx; dL/dK and dL/db land in layer.grads


timings = []
for s in layer_shapes:
    x = rng.standard_normal(s, dtype=np.float32)
    kernel = (rng.standard_normal((3, 3, s[-1], s[-1])) / np.sqrt(9 * s[-1])).astype(np.float32)
    dy = rng.standard_normal(s[:3] + (s[-1],), dtype=np.float32)        # dL/dy, the upstream gradient
    layers = {alg: make_conv(x, kernel, alg) for alg in ("im2col", "winograd")}
    fns = {}
    for alg, layer in layers.items():
        fns[f"{alg} forward"] = lambda layer=layer, x=x: layer.forward(x, training=False)
        fns[f"{alg} forward+backward"] = lambda layer=layer, x=x, dy=dy: forward_backward(layer, x, dy)
    ms = time_interleaved(fns, warmup=1 if args.quick else 2, rounds=2 if args.quick else 5,
                          block=2 if args.quick else 5, settle=0 if args.quick else 0.15)
    row = {"shape": list(s), "filters": s[-1], "auto": make_conv(x, kernel, "auto").uses_winograd(x)}
    for part in ("forward", "forward+backward"):
        row[part] = {alg: ms[f"{alg} {part}"]["median_ms"] for alg in layers}
        row[part]["ratio"] = row[part]["winograd"] / row[part]["im2col"]
    timings.append(row)

print(f"{'layer x -> filters':<28}{'forward: im2col':>16}{'Winograd':>10}{'ratio':>7}"
      f"{'fwd+bwd: im2col':>17}{'Winograd':>10}{'ratio':>7}{'  auto picks':>12}")
for row in timings:
    f, fb = row["forward"], row["forward+backward"]
    name = f"{tuple(row['shape'])} -> {row['filters']}"
    print(f"{name:<28}{f['im2col']:>13.2f} ms{f['winograd']:>7.2f} ms"
          f"{f['ratio']:>7.2f}{fb['im2col']:>14.2f} ms{fb['winograd']:>7.2f} ms{fb['ratio']:>7.2f}"
          f"{'  winograd' if row['auto'] else '  im2col':>12}")
print("(medians; ratio = Winograd's time / im2col's: below 1, Winograd is faster)")
numbers["timings"] = timings

# %% [markdown]
# The conclusion, from the ratios just measured:

# %%
forward_ratios = [row["forward"]["ratio"] for row in timings]
step_ratios = [row["forward+backward"]["ratio"] for row in timings]
faster = [str(row["filters"]) for row in timings if row["forward"]["ratio"] < 1]
closer = np.mean(np.abs(np.log(step_ratios))) < np.mean(np.abs(np.log(forward_ratios)))
grows = forward_ratios[-1] < forward_ratios[0]
print(f"- Winograd's forward took {min(forward_ratios):.2f} to {max(forward_ratios):.2f} of im2col's time: "
      f"faster at {', '.join(faster) or 'none'} of {', '.join(str(row['filters']) for row in timings)} channels, "
      f"for {counts[M_VALUES.index(4)]['gain']:.0f}x fewer multiplications.\n"
      f"- Forward + backward: {min(step_ratios):.2f} to {max(step_ratios):.2f}, "
      + ("closer to 1 than the forward alone: the backward's tiles gain less than the forward's.\n" if closer
         else "as far from 1 as the forward alone, or further: the backward's tiles gain as much.\n")
      + f"- From {timings[0]['filters']} to {timings[-1]['filters']} channels the forward ratio went "
      f"{forward_ratios[0]:.2f} -> {forward_ratios[-1]:.2f}: "
      + ("the gain grows with the channels, as the costs predict: the tile transforms cost per channel, the "
         "products they save per channel pair." if grows else
         "the gain did not grow with the channels, against what the costs predict (the tile transforms cost "
         "per channel, the products they save per channel pair): "
         + ("on layers this small, fixed costs decide." if args.quick else
            "on a shared machine one run's ratios can move by tens of percent; run it again to see which "
            "differences stay."))
      + (" (--quick: tiny layers, a few calls each; run without --quick for layer sizes that matter.)"
         if args.quick else ""))


# %%
def plot_timing(path):
    """Ratio Winograd / im2col per layer shape, forward and forward + backward, with the line of equal time."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    width = 0.36
    for k, (part, color) in enumerate((("forward", "#2e86c1"), ("forward+backward", "#4c9a2a"))):
        for i, row in enumerate(timings):
            r = row[part]["ratio"]
            ax.bar(i + (k - 0.5) * width, r, width, color=color, label=part if i == 0 else None)
            ax.text(i + (k - 0.5) * width, r + 0.02, f"{r:.2f}", ha="center", va="bottom", fontsize=8)
    ax.axhline(1.0, color="black", lw=1, ls="--", label="equal time")
    ax.set_xticks(range(len(timings)), [f"x {tuple(r['shape'])}\n-> {r['filters']} filters" for r in timings],
                  fontsize=8)
    ax.set_ylabel("Winograd time / im2col time (below 1: Winograd faster)")
    ax.set_ylim(0, max(1.3, max(forward_ratios + step_ratios) * 1.35))     # room for the legend above the bars
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("tinyseg Conv2D, algorithm='winograd' against 'im2col' (float32, timed in turns)", fontsize=10)
    fig.savefig(path, dpi=100)
    return fig


timing_fig = plot_timing(os.path.join(args.out, "timing.png"))
with open(os.path.join(args.out, "numbers.json"), "w") as f:
    json.dump(numbers, f, indent=1)
print(f"wrote error_growth.png, timing.png and numbers.json in {args.out}")
