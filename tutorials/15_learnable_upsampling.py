# %% [markdown]
# # Tutorial 15: learnable upsampling, the transposed convolution
#
# A segmentation network must give a class to every pixel, but its encoder shrinks the image (pooling,
# strided convolutions) to see whole objects. The decoder has to grow the maps back to the input's size.
# tinyseg's decoders do it three ways: with a *transposed convolution*, `Conv2DTranspose` (the U-Net's
# default, and FCN-8s's three upsamplings), with fixed bilinear `UpSampling2D` (DeepLabv3+, and the U-Net's
# upsampling='bilinear'), or with `MaxUnpooling2D` (SegNet). The transposed convolution is the one that
# learns, and this tutorial takes it apart:
#
# 1. what it is: the transpose (adjoint) of a convolution, checked numerically, drawn as a matrix, and seen
#    as each input pixel "painting" a copy of the kernel into the output;
# 2. its famous flaw, the checkerboard artefact (Odena, Dumoulin and Olah, "Deconvolution and Checkerboard
#    Artifacts", Distill 2016), and where it comes from;
# 3. the cure at initialisation: a kernel that makes it start as bilinear upsampling (FCN, Long et al. 2015);
# 4. a small segmentation network trained three ways: transposed convolution with random initialisation,
#    with bilinear initialisation, and bilinear `UpSampling2D` followed by a `Conv2D`.
#
# One notation, as in tutorials 8 and 11: x the input, K the kernel, b the bias, y the output, G = dL/dy the
# upstream gradient, N the batch size; s the stride, k the kernel size.
#
#     python tutorials/15_learnable_upsampling.py            # a few minutes (trains 3 networks x 3 seeds)
#     python tutorials/15_learnable_upsampling.py --quick    # a few seconds (the tests run this)
#
# It writes matrices.png, painting.png, checkerboard.png, bilinear.png and predictions.png. The file is in
# percent format: `# %%` starts a code cell and `# %% [markdown]` a text cell (Jupyter with jupytext, VS Code).

# %%
import argparse
import os
import time

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

import tinyseg
from tinyseg.datasets import load_shapes
from tinyseg.initializers import bilinear_filter
from tinyseg.layers import BatchNormalization, Conv2D, Conv2DTranspose, MaxPooling2D, ReLU, UpSampling2D
from tinyseg.losses import CEDiceLoss
from tinyseg.metrics import ConfusionMatrix
from tinyseg.optimizers import Adam

parser = argparse.ArgumentParser(description="Tutorial 15: transposed convolution, checkerboards, bilinear init")
parser.add_argument("--quick", "--tiny", action="store_true", help="a few seconds, for tests")
parser.add_argument("--out", default=os.path.join("tutorial-output", "15_learnable_upsampling"))
args, _ = parser.parse_known_args()         # known args only: a notebook's kernel passes flags of its own
os.makedirs(args.out, exist_ok=True)
rng = np.random.default_rng(0)


def layer(cls, input_shape, *args, kernel=None, **kwargs):
    """A float64 layer, built for one image shape (H, W, C), its kernel set when one is given."""
    built = cls(*args, use_bias=False, dtype="float64", **kwargs)
    built.build(input_shape)
    if kernel is not None:
        built.set_weights([kernel])
    return built


# %% [markdown]
# ## 1. The transposed convolution is the adjoint of a convolution
#
# A convolution is linear in its input: flatten x (H, W, C_in) into a vector and y (H', W', C_out) into
# another, and y = C x for one matrix C, of shape (H' W' C_out, H W C_in), whose entries are the kernel's
# numbers in the places the sliding window puts them. Its transpose C^T goes the other way, from the small
# map back to the big one, and is defined by one identity, for every x and every y:
#
#     <C x, y> = <x, C^T y>            (<a, b> = sum of a * b over every entry)
#
# That is exactly what the backward pass of a convolution needs: with L depending on y = C x and
# G = dL/dy, dL/dx = C^T G (tutorial 8). A *transposed convolution* is that backward pass run as a forward
# pass: it maps a (H', W', C_out) map to a (H, W, C_in) map, s times taller and wider for stride s.
#
# **Kernel layouts.** Keras (and tinyseg) store a `Conv2D` kernel as (KH, KW, C_in, C_out), and a
# `Conv2DTranspose(filters)` kernel as (KH, KW, filters, C) where C is *its* input's channels. The transpose
# of a convolution C_in -> C_out maps C_out channels back to C_in: `Conv2DTranspose(filters=C_in)` on a
# C_out-channel input, with kernel shape (KH, KW, C_in, C_out). The same array, neither flipped nor
# permuted: give both layers the same K (and the same stride and padding) and the second is C^T.
#
# Below, for a few geometries, random x and y and one random K: the two sides of the identity, and
# Conv2D's backward (dL/dx for G = y) against Conv2DTranspose's forward on y.

# %%
GEOMETRIES = [(3, 2, "same", 8), (4, 2, "same", 8), (3, 2, "valid", 9), (3, 1, "same", 6)]   # k, s, padding, H
C_IN, C_OUT = 2, 3
for k, s, padding, size in GEOMETRIES:
    K = rng.standard_normal((k, k, C_IN, C_OUT))
    conv = layer(Conv2D, (size, size, C_IN), C_OUT, k, strides=s, padding=padding, kernel=K)
    x = rng.standard_normal((2, size, size, C_IN))
    Cx = conv.forward(x)
    convT = layer(Conv2DTranspose, Cx.shape[1:], C_IN, k, strides=s, padding=padding, kernel=K)
    y = rng.standard_normal(Cx.shape)
    CTy = convT.forward(y)
    assert CTy.shape == x.shape, (CTy.shape, x.shape)
    left, right = float((Cx * y).sum()), float((x * CTy).sum())
    backward_gap = np.abs(conv.backward(y) - CTy).max()
    print(f"k={k} s={s} {padding:5s} x {x.shape[1:]} -> Cx {Cx.shape[1:]}: <Cx, y> = {left:+.10f}, "
          f"<x, C^T y> = {right:+.10f}, difference {abs(left - right):.1e}; "
          f"Conv2D.backward(y) vs Conv2DTranspose(y): {backward_gap:.1e}")
    assert abs(left - right) < 1e-9 and backward_gap < 1e-12

# %% [markdown]
# ### The matrices, drawn
#
# In one dimension the matrix fits on the page. A convolution with kernel K = [1, 2, 3], stride 2 and no
# padding takes 9 numbers to 4: row i of C holds K at columns 2i, 2i+1, 2i+2 (the window of output i).
# Each column j of C is what C does to the unit vector e_j, so the layers themselves can draw their
# matrices: C from Conv2D on e_0 .. e_8, and C^T from Conv2DTranspose (the same K) on e_0 .. e_3.
# (A 1-D signal is a 2-D image of height 1 with a 1 x 3 kernel.)

# %%
K_1D = np.array([1.0, 2.0, 3.0])
conv_1d = layer(Conv2D, (1, 9, 1), 1, (1, 3), strides=(1, 2), kernel=K_1D.reshape(1, 3, 1, 1))
convT_1d = layer(Conv2DTranspose, (1, 4, 1), 1, (1, 3), strides=(1, 2), kernel=K_1D.reshape(1, 3, 1, 1))
C_matrix = np.stack([conv_1d.forward(e.reshape(1, 1, 9, 1)).ravel() for e in np.eye(9)], axis=1)      # (4, 9)
CT_matrix = np.stack([convT_1d.forward(e.reshape(1, 1, 4, 1)).ravel() for e in np.eye(4)], axis=1)    # (9, 4)
print("C (Conv2D, 9 -> 4) =\n", C_matrix.astype(int), "\nC^T (Conv2DTranspose, 4 -> 9) =\n", CT_matrix.astype(int))
print(f"Conv2DTranspose's matrix vs the transpose of Conv2D's: largest difference "
      f"{np.abs(CT_matrix - C_matrix.T).max():.1e}")
assert np.array_equal(CT_matrix, C_matrix.T)


def draw_matrix(ax, m, title, colours=None, by_rows=False):
    """A matrix as a grid of its numbers (zeros left blank); `colours` gives each column's colour (each
    row's, with by_rows)."""
    ax.imshow(np.zeros_like(m), cmap="Greys", vmin=0, vmax=1)
    for (r, c), v in np.ndenumerate(m):
        if v:
            ax.text(c, r, f"{v:g}", ha="center", va="center", fontsize=10)
            if colours is not None:
                ax.add_patch(_cell(r, c, colours[r if by_rows else c]))
    ax.set_xticks(range(m.shape[1]))
    ax.set_yticks(range(m.shape[0]))
    ax.set_xticks(np.arange(m.shape[1] + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(m.shape[0] + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="0.8", lw=0.5)
    ax.tick_params(which="minor", length=0)
    ax.set_title(title, fontsize=10)


def _cell(r, c, colour):
    return Rectangle((c - 0.5, r - 0.5), 1, 1, color=colour, alpha=0.3)


STAMP_COLOURS = ["C0", "C1", "C2", "C3"]
matrices_fig = Figure(figsize=(11, 4.6))
c_ax, ct_ax = matrices_fig.subplots(1, 2, gridspec_kw=dict(width_ratios=[9, 5]))
draw_matrix(c_ax, C_matrix, "C: Conv2D, K = [1, 2, 3], stride 2 (9 -> 4)\nrow i = output i's window on x",
            colours=STAMP_COLOURS, by_rows=True)
draw_matrix(ct_ax, CT_matrix, "C^T: Conv2DTranspose, the same K (4 -> 9)\ncolumn i = K painted at 2i",
            colours=STAMP_COLOURS)
c_ax.set_xlabel("input x (9 numbers)")
c_ax.set_ylabel("output Cx (4 numbers)")
ct_ax.set_xlabel("input y (4 numbers)")
ct_ax.set_ylabel("output C^T y (9 numbers)")
matrices_fig.tight_layout()
matrices_fig.savefig(os.path.join(args.out, "matrices.png"), dpi=90)

# %% [markdown]
# Read C^T by columns: column i is K, shifted down by s = 2 for each step of i. So C^T y = sum_i y_i *
# (K placed at position s i): every input number **paints** a copy of the kernel, scaled by itself, into
# the output, and where copies overlap they add. (Where a stride-2 convolution reads windows two apart, its
# transpose writes stamps two apart.) Rows 2, 4 and 6 of C^T hold two numbers (two stamps overlap), the
# others one: keep that in mind for section 2.
#
# In two dimensions, the same: a 2 x 2 input, a 3 x 3 kernel, stride 2, no padding: output
# (2 - 1) * 2 + 3 = 5 pixels on a side. Each input pixel x[i, j] paints x[i, j] * K with its top-left
# corner at (2i, 2j); the Conv2DTranspose output is the sum of the four stamps.

# %%
x_paint = np.array([[1.0, 2.0],
                    [3.0, -1.0]])
K_paint = np.array([[1.0, 2.0, 1.0],
                    [2.0, 4.0, 2.0],
                    [1.0, 2.0, 1.0]])
S_PAINT = 2
convT_paint = layer(Conv2DTranspose, (2, 2, 1), 1, 3, strides=S_PAINT, kernel=K_paint[:, :, None, None])
painted = convT_paint.forward(x_paint[None, :, :, None])[0, :, :, 0]
stamps = []
for (i, j), v in np.ndenumerate(x_paint):
    canvas = np.zeros_like(painted)
    canvas[S_PAINT * i:S_PAINT * i + 3, S_PAINT * j:S_PAINT * j + 3] = v * K_paint
    stamps.append(canvas)
print(f"the four stamps x[i, j] * K at (2i, 2j), summed, vs Conv2DTranspose: largest difference "
      f"{np.abs(sum(stamps) - painted).max():.1e}")
assert np.allclose(sum(stamps), painted, rtol=0, atol=1e-12)

painting_fig = Figure(figsize=(15, 3.6))
paint_axes = painting_fig.subplots(1, 7, gridspec_kw=dict(width_ratios=[2, 3, 5, 5, 5, 5, 5]))
draw_matrix(paint_axes[0], x_paint, "x (2 x 2)")
for (i, j), _ in np.ndenumerate(x_paint):                 # colour each input pixel as its stamp
    paint_axes[0].add_patch(_cell(i, j, STAMP_COLOURS[2 * i + j]))
draw_matrix(paint_axes[1], K_paint, "K (3 x 3)")
for n, (canvas, (ij, v)) in enumerate(zip(stamps, np.ndenumerate(x_paint))):
    draw_matrix(paint_axes[2 + n], canvas, f"x{ij} * K = {v:g} * K\nat ({S_PAINT * ij[0]}, {S_PAINT * ij[1]})")
    for (r, c), w in np.ndenumerate(canvas):
        if w:
            paint_axes[2 + n].add_patch(_cell(r, c, STAMP_COLOURS[n]))
overlap = sum(canvas != 0 for canvas in stamps)
draw_matrix(paint_axes[6], painted, "Conv2DTranspose(x): their sum\n(grey: 2 or 4 stamps overlap)")
for (r, c), count in np.ndenumerate(overlap):
    if count > 1:
        paint_axes[6].add_patch(_cell(r, c, "0.5"))
painting_fig.suptitle("a stride-2 transposed convolution paints a copy of K per input pixel, two pixels apart; "
                      "overlaps add", fontsize=11)
painting_fig.tight_layout(rect=(0, 0, 1, 0.93))
painting_fig.savefig(os.path.join(args.out, "painting.png"), dpi=90)

# %% [markdown]
# ## 2. The checkerboard artefact
#
# Paint stamps of size k every s pixels and count how many stamps cover each output pixel. Along one axis,
# a pixel is covered by ceil(k / s) or floor(k / s) stamps, depending on its position modulo s: when k is
# not divisible by s, the counts alternate (for k = 3, s = 2: 1, 2, 1, 2, ...), and in two dimensions the
# product of the two axes' counts makes a grid of 1s, 2s and 4s. The counts are themselves a transposed
# convolution: an all-ones kernel painted by an all-ones input. With k = 4, s = 2 every pixel is covered by
# 2 x 2 = 4 stamps (away from the border).
#
# Uneven overlap is one cause of the checkerboard. The other is the weights: with stride s, output pixels
# fall into s x s *phases* (row mod s, column mod s), and each phase is made by its own subset of the
# kernel's taps (for k = 4, s = 2: taps 0 and 2, or taps 1 and 3, along each axis). A constant input then
# gives, in the interior, one constant per phase: the sum of that phase's taps. A random kernel has unequal
# sums, so even k = 4 paints a checkerboard from a flat input, until training (perhaps) evens the sums out.
# Odena et al.'s remedy is to resize first and convolve after (UpSampling2D + Conv2D, section 4's variant
# (c)): a stride-1 convolution of a constant is constant (away from the border).
#
# The measure used below, on the interior (2 pixels from each border dropped) of an output: the mean of each
# s x s phase, and the **phase spread** = (largest - smallest phase mean) / mean |output|. Zero when the
# phases agree on average, as they do in a smooth map; about 1 or more for a strong checkerboard.

# %%
def phase_spread(out, s=2, border=2):
    """(largest - smallest mean over the s x s phases) / mean |out|, on out[border:-border, border:-border];
    out (H, W), or (N, H, W) with the phases' means taken over the N images too."""
    out = np.asarray(out, dtype=np.float64)
    if out.ndim == 2:
        out = out[None]
    inner = out[:, border:out.shape[1] - border, border:out.shape[2] - border]
    means = [inner[:, a::s, b::s].mean() for a in range(s) for b in range(s)]
    return (max(means) - min(means)) / max(np.abs(inner).mean(), 1e-300)


def probability_spread(p):
    """The phase spread of predicted probabilities p (N, H, W, K), class by class, averaged over the K
    classes (all classes at once would say 0: the K probabilities of a pixel sum to 1)."""
    return float(np.mean([phase_spread(p[..., k]) for k in range(p.shape[-1])]))


ones_image = np.ones((1, 8, 8, 1))
overlaps = {k: layer(Conv2DTranspose, (8, 8, 1), 1, k, strides=2, padding="same",
                     kernel_initializer="ones").forward(ones_image)[0, :, :, 0] for k in (3, 4)}
for k, count in overlaps.items():
    inner = count[2:-2, 2:-2]
    print(f"kernel {k}, stride 2: stamps covering an interior pixel {sorted(set(inner.ravel().astype(int).tolist()))}, "
          f"phase spread {phase_spread(count):.2f}")

tinyseg.set_random_seed(1)
constant_outputs = {                        # one flat 8 x 8 input through four upsamplers by 2
    "Conv2DTranspose k=3, random": layer(Conv2DTranspose, (8, 8, 1), 1, 3, strides=2, padding="same"),
    "Conv2DTranspose k=4, random": layer(Conv2DTranspose, (8, 8, 1), 1, 4, strides=2, padding="same"),
    "Conv2DTranspose k=4, bilinear": layer(Conv2DTranspose, (8, 8, 1), 1, 4, strides=2, padding="same",
                                           kernel_initializer="bilinear"),
    "UpSampling2D + Conv2D k=3, random": None,
}
resize = UpSampling2D(2, interpolation="bilinear", dtype="float64")
resize_conv = layer(Conv2D, (16, 16, 1), 1, 3, padding="same")
for name, up in constant_outputs.items():
    out = resize_conv.forward(resize.forward(ones_image)) if up is None else up.forward(ones_image)
    constant_outputs[name] = out[0, :, :, 0]
    print(f"constant input through {name:34s}: phase spread of the output {phase_spread(out[0, :, :, 0]):.2e}")

# the same over many random kernels, to see that one draw above is not a lucky or unlucky one
spreads = {k: [] for k in (3, 4)}
for draw in range(50):
    tinyseg.set_random_seed(100 + draw)
    for k in spreads:
        up = layer(Conv2DTranspose, (8, 8, 1), 1, k, strides=2, padding="same")
        spreads[k].append(phase_spread(up.forward(ones_image)[0, :, :, 0]))
for k, values in spreads.items():
    print(f"50 random k={k} kernels (glorot_uniform): median phase spread of a flat input's output "
          f"{np.median(values):.2f}")

# %%
checkerboard_fig = Figure(figsize=(15, 7.5))
grid = checkerboard_fig.add_gridspec(2, 4)
count_axes = [checkerboard_fig.add_subplot(grid[0, n]) for n in range(2)]
for ax, (k, count) in zip(count_axes, overlaps.items()):
    image = ax.imshow(count, cmap="viridis", vmin=0, vmax=4)
    inner_counts = sorted(set(count[2:-2, 2:-2].ravel().astype(int).tolist()))
    ax.set_title(f"stamps per pixel, k={k}, s=2\n(interior: {inner_counts})", fontsize=10)
    checkerboard_fig.colorbar(image, ax=ax, fraction=0.046)
profile_ax = checkerboard_fig.add_subplot(grid[0, 2:])
for name, out in constant_outputs.items():
    row = out[8] / np.abs(out[2:-2, 2:-2]).mean()
    profile_ax.plot(row, "o-", ms=3, label=name)
profile_ax.set_xlabel("column of output row 8")
profile_ax.set_ylabel("output / mean |output|")
profile_ax.set_title("one row of each output of a flat input: a sawtooth is a checkerboard", fontsize=10)
profile_ax.grid(alpha=0.3)
profile_ax.legend(fontsize=8)
for n, (name, out) in enumerate(constant_outputs.items()):
    ax = checkerboard_fig.add_subplot(grid[1, n])
    image = ax.imshow(out, cmap="gray")
    ax.set_title(f"{name}\nphase spread {phase_spread(out):.2f}", fontsize=9)
    checkerboard_fig.colorbar(image, ax=ax, fraction=0.046)
for ax in checkerboard_fig.axes:
    if ax is not profile_ax and ax.get_images():
        ax.set_xticks([])
        ax.set_yticks([])
checkerboard_fig.suptitle("a flat 8 x 8 input upsampled by 2: overlap counts (top left) and four upsamplers "
                          "(bottom; each panel its own grey scale)", fontsize=11)
checkerboard_fig.tight_layout(rect=(0, 0, 1, 0.95))
checkerboard_fig.savefig(os.path.join(args.out, "checkerboard.png"), dpi=90)

# %% [markdown]
# ## 3. Bilinear initialisation
#
# Bilinear upsampling by s is itself a transposed convolution: each input pixel paints a *tent*, 1 at its
# own place and falling linearly to 0 one input pixel (s output pixels) away. `tinyseg.initializers.Bilinear`
# (the name `'bilinear'`) fills a (k, k, C, C) kernel with that tent, f = ceil(k / 2),
# c = f - 1/2 for even k:
#
#     K[i, j, a, b] = (1 - |i - c| / f) (1 - |j - c| / f)   if a == b, else 0
#
# For k = 2s = 4 the 1-D tent is [0.25, 0.75, 0.75, 0.25]: the two taps of each phase sum to 1 (no
# checkerboard), and an output pixel a quarter of an input pixel from its nearest input gets 3/4 of it and
# 1/4 of the next, which is what half-pixel bilinear interpolation (UpSampling2D's, PyTorch's
# align_corners=False) gives. Channel a feeds channel a only, so each channel is upsampled on its own; the
# layer then learns from there. The check, for s = 2 and s = 4 (k = 2s, padding 'same'): equal away from
# the border. At the border they differ: the transposed convolution sees zeros beyond the image (the
# padding), UpSampling2D repeats the edge pixel.

# %%
print(f"bilinear_filter(4) = {bilinear_filter(4)}, bilinear_filter(8) = {bilinear_filter(8)}")
x_small = rng.standard_normal((2, 6, 7, 3))
for s in (2, 4):
    by_convT = layer(Conv2DTranspose, x_small.shape[1:], 3, 2 * s, strides=s, padding="same",
                     kernel_initializer="bilinear").forward(x_small)
    by_resize = UpSampling2D(s, interpolation="bilinear", dtype="float64").forward(x_small)
    edge = s // 2
    interior = np.abs(by_convT - by_resize)[:, edge:-edge, edge:-edge].max()
    print(f"stride {s}, kernel {2 * s}: Conv2DTranspose(bilinear) vs UpSampling2D(bilinear): largest difference "
          f"{interior:.1e} away from the border ({edge} pixel(s)), {np.abs(by_convT - by_resize).max():.2f} "
          f"on it")
    assert interior < 1e-12

# %%
S_IMAGE = 4
(_, _), (picture, _) = load_shapes(1, 1, size=16, seed=3)
up_convT = layer(Conv2DTranspose, picture.shape[1:], 3, 2 * S_IMAGE, strides=S_IMAGE, padding="same",
                 kernel_initializer="bilinear").forward(picture.astype(np.float64))[0]
up_resize = UpSampling2D(S_IMAGE, interpolation="bilinear", dtype="float64").forward(picture.astype(np.float64))[0]
gap = np.abs(up_convT - up_resize).max(axis=-1)
bilinear_fig = Figure(figsize=(15, 3.8))
b_axes = bilinear_fig.subplots(1, 5)
b_axes[0].imshow(picture[0], interpolation="nearest")
b_axes[0].set_title("x: 16 x 16 (drawn as squares)", fontsize=10)
tent = np.outer(bilinear_filter(2 * S_IMAGE), bilinear_filter(2 * S_IMAGE))
b_axes[1].imshow(tent, cmap="viridis", vmin=0, vmax=1)
b_axes[1].set_title(f"the bilinear kernel, k = {2 * S_IMAGE}\n(one channel's tent)", fontsize=10)
b_axes[2].imshow(np.clip(up_convT, 0, 1), interpolation="nearest")
b_axes[2].set_title(f"Conv2DTranspose(k={2 * S_IMAGE}, s={S_IMAGE}),\nkernel_initializer='bilinear'", fontsize=10)
b_axes[3].imshow(np.clip(up_resize, 0, 1), interpolation="nearest")
b_axes[3].set_title(f"UpSampling2D({S_IMAGE},\ninterpolation='bilinear')", fontsize=10)
gap_image = b_axes[4].imshow(gap, cmap="magma", vmin=0)
b_axes[4].set_title(f"|difference|, largest over channels:\n{gap[2:-2, 2:-2].max():.0e} inside, "
                    f"{gap.max():.2f} on the border", fontsize=10)
bilinear_fig.colorbar(gap_image, ax=b_axes[4], fraction=0.046)
for ax in b_axes:
    ax.set_xticks([])
    ax.set_yticks([])
bilinear_fig.tight_layout()
bilinear_fig.savefig(os.path.join(args.out, "bilinear.png"), dpi=90)

# %% [markdown]
# The two upsampled images are the same picture; the difference panel is dark everywhere but in a frame
# s / 2 pixels wide, where the transposed convolution's zero padding darkens the edge.
#
# ## 4. Three decoders, trained
#
# One small encoder-decoder on the built-in shapes (32 x 32, four classes: background, circle, square,
# triangle), without skip connections, so that the upsampling does all of the decoder's growing:
#
#     conv-BN-ReLU 16, pool 2, conv-BN-ReLU 32, pool 2, conv-BN-ReLU 32          (8 x 8)
#     UP 32 -> 32, conv-BN-ReLU 16                                              (16 x 16)
#     UP 16 -> 16, 1 x 1 conv to 4 class scores, softmax                       (32 x 32)
#
# and UP one of three ways:
#
# - (a) `Conv2DTranspose(C, 4, strides=2, padding='same')`, random initialisation (glorot_uniform);
# - (b) the same layer with `kernel_initializer='bilinear'`: it starts as bilinear upsampling;
# - (c) `UpSampling2D(2, interpolation='bilinear')` then `Conv2D(C, 3, padding='same')`: resize, then a
#   learned convolution (Odena et al.'s resize-convolution).
#
# The same data, loss (cross-entropy + Dice), optimizer (Adam 3e-3), epochs and seed for each, and each
# trained with three seeds (one with --quick) so that a difference can be weighed against the
# seed-to-seed noise. The score is the validation mean IoU over the four classes. A difference between two
# decoders' mean scores is called real only when it is larger than the noise, taken as the largest range
# (best seed minus worst seed) of any one decoder's scores: a cautious rule for so few seeds.
#
# Section 2's phase spread says how much of a checkerboard each network draws, measured twice on the
# validation images: on the predicted probabilities (class by class, averaged), before training and after,
# and, after training, on the output of the decoder's last learned upsampling (the last Conv2DTranspose, or
# the Conv2D after the last UpSampling2D; channel by channel, averaged), where a pattern is not yet squashed
# by the softmax.

# %%
if args.quick:
    N_TRAIN, N_VAL, EPOCHS, SEEDS = 48, 16, 1, (0,)
else:
    N_TRAIN, N_VAL, EPOCHS, SEEDS = 1000, 200, 12, (0, 1, 2)
(x_train, y_train), (x_val, y_val) = load_shapes(N_TRAIN, N_VAL, size=32, seed=0)
VARIANTS = {"(a) Conv2DTranspose, random init": "random", "(b) Conv2DTranspose, bilinear init": "bilinear",
            "(c) UpSampling2D + Conv2D": "resize"}


def upsampler(kind, channels):
    """The decoder's x2 upsampling, `channels` in and out, one of the three kinds."""
    if kind == "random":
        return [Conv2DTranspose(channels, 4, strides=2, padding="same")]
    if kind == "bilinear":
        return [Conv2DTranspose(channels, 4, strides=2, padding="same", kernel_initializer="bilinear")]
    return [UpSampling2D(2, interpolation="bilinear"), Conv2D(channels, 3, padding="same")]


def conv_bn_relu(filters):
    return [Conv2D(filters, 3, padding="same", use_bias=False), BatchNormalization(momentum=0.9), ReLU()]


def encoder_decoder(kind):
    """The network above, with upsampling `kind` ('random', 'bilinear' or 'resize')."""
    return tinyseg.Sequential([tinyseg.Input((32, 32, 3)),
                               *conv_bn_relu(16), MaxPooling2D(2), *conv_bn_relu(32), MaxPooling2D(2),
                               *conv_bn_relu(32), *upsampler(kind, 32), *conv_bn_relu(16), *upsampler(kind, 16),
                               Conv2D(4, 1, activation="softmax")])


def upsampled_features(model, x):
    """The output of the decoder's last learned upsampling, (N, 32, 32, 16): the last Conv2DTranspose, or the
    Conv2D right after the last UpSampling2D; the layers run one by one, in inference mode."""
    layers = model.layers
    last = max(i for i, each in enumerate(layers) if isinstance(each, (Conv2DTranspose, UpSampling2D)))
    last += isinstance(layers[last], UpSampling2D)
    h = x
    for each in layers[:last + 1]:
        h = each.forward(h, training=False)
    return h


def channel_spreads(h):
    """The phase spread of each channel of h (N, H, W, C)."""
    return np.array([phase_spread(h[..., c]) for c in range(h.shape[-1])])


def mean_iou(model):
    predicted = model.predict(x_val).argmax(axis=-1)
    return float(ConfusionMatrix(4).update(y_val, predicted).result()["mean_iou"])


results = {name: {"miou": [], "spread_before": [], "spread_after": [], "spread_features": []} for name in VARIANTS}
models = {}
start = time.perf_counter()
for seed in SEEDS:
    for name, kind in VARIANTS.items():
        tinyseg.set_random_seed(seed)
        model = encoder_decoder(kind)
        model.compile(optimizer=Adam(3e-3), loss=CEDiceLoss())
        results[name]["params"] = model.count_params()
        results[name]["spread_before"].append(probability_spread(model.predict(x_val)))
        model.fit(x_train, y_train, epochs=EPOCHS, batch_size=16, verbose=0, seed=seed)
        results[name]["miou"].append(mean_iou(model))
        results[name]["spread_after"].append(probability_spread(model.predict(x_val)))
        results[name]["spread_features"].append(float(channel_spreads(upsampled_features(model, x_val)).mean()))
        if seed == SEEDS[0]:
            models[name] = model
        print(f"seed {seed} {name:36s} val mIoU {results[name]['miou'][-1]:.3f}")
print(f"trained {len(SEEDS) * len(VARIANTS)} networks ({N_TRAIN} images, {EPOCHS} epochs each) in "
      f"{time.perf_counter() - start:.0f}s")

# %%
print(f"{'decoder':36s} {'params':>7s} {'val mIoU per seed':>20s} {'mean':>6s}   phase spread: probabilities "
      f"before -> after, upsampled features after")
for name, r in results.items():
    per_seed = ", ".join(f"{v:.3f}" for v in r["miou"])
    print(f"{name:36s} {r['params']:7d} {per_seed:>20s} {np.mean(r['miou']):6.3f} "
          f"{np.mean(r['spread_before']):26.3f} -> {np.mean(r['spread_after']):.3f} "
          f"{np.mean(r['spread_features']):12.3f}")

# the conclusions, from the numbers above
means = {name: float(np.mean(r["miou"])) for name, r in results.items()}
best = max(means, key=means.get)
if len(SEEDS) > 1:
    noise = max(max(r["miou"]) - min(r["miou"]) for r in results.values())
    print(f"seed-to-seed noise: the largest spread of one decoder's mIoU over {len(SEEDS)} seeds is {noise:.3f}")
    for name in means:
        if name != best:
            gap = means[best] - means[name]
            verdict = "more than the noise" if gap > noise else "within the noise: no clear difference"
            print(f"{best} vs {name}: mean mIoU higher by {gap:.3f}, {verdict}")
else:
    print(f"one seed only (--quick): the highest mean mIoU is {best}'s {means[best]:.3f}, but with no second "
          f"seed there is no noise estimate, so no difference is judged")
for key, where in (("spread_after", "predicted probabilities"), ("spread_features", "upsampled features")):
    most = max(results, key=lambda n: np.mean(results[n][key]))
    least = min(results, key=lambda n: np.mean(results[n][key]))
    print(f"after training the strongest checkerboard in the {where} is {most}'s (phase spread "
          f"{np.mean(results[most][key]):.3f}), the weakest {least}'s ({np.mean(results[least][key]):.3f}): "
          f"{np.mean(results[most][key]) / max(np.mean(results[least][key]), 1e-12):.1f} times stronger")
cheapest = min(results, key=lambda n: results[n]["params"])
print(f"parameters: {cheapest} has the fewest, {results[cheapest]['params']} (a 3 x 3 convolution after the "
      f"resize against a 4 x 4 transposed kernel)")

# %% [markdown]
# How to read these lines: the mIoU column first, against the noise line (with so few seeds, a gap smaller
# than one decoder's own seed-to-seed range says nothing about which decoder is better); then the phase
# spreads. Before training, only (a) starts with a pattern: its random kernels have unequal phase sums
# (section 2), while (b) starts as bilinear upsampling and (c) resizes before it convolves. The softmax and
# the argmax squash much of what the decoder draws, so the probabilities' spread stays small for all three;
# the upsampled features show more plainly whether training has evened out (a)'s phases.
#
# predictions.png: for three validation images, the input, the true mask, each decoder's predicted mask
# (seed 0), and one channel of each decoder's last upsampled features: the channel whose phase spread is
# the median of its 16 (a typical one, chosen by the same rule for the three), each panel on its own grey
# scale. A checkerboard, if a decoder draws one, shows there as a fine 2 x 2 texture.

# %%
MASK_COLOURS = ListedColormap(["0.85", "C0", "C1", "C2"])
SHOWN = 3
predictions_fig = Figure(figsize=(17, 2.3 * SHOWN + 0.8))
p_axes = predictions_fig.subplots(SHOWN, 2 + 2 * len(VARIANTS), squeeze=False)
probabilities = {name: model.predict(x_val[:SHOWN]) for name, model in models.items()}
typical = {}                                    # decoder -> (its median-spread channel, that channel's maps)
for name, model in models.items():
    spreads_per_channel = channel_spreads(upsampled_features(model, x_val))
    channel = int(np.argsort(spreads_per_channel)[len(spreads_per_channel) // 2])
    typical[name] = channel, upsampled_features(model, x_val[:SHOWN])[..., channel]
short = {name: name.split(" ", 1)[0] for name in VARIANTS}
for row in range(SHOWN):
    p_axes[row, 0].imshow(x_val[row])
    p_axes[row, 1].imshow(y_val[row], cmap=MASK_COLOURS, vmin=-0.5, vmax=3.5, interpolation="nearest")
    for n, p in enumerate(probabilities.values()):
        p_axes[row, 2 + n].imshow(p[row].argmax(axis=-1), cmap=MASK_COLOURS, vmin=-0.5, vmax=3.5,
                                  interpolation="nearest")
    for n, (_, maps) in enumerate(typical.values()):
        p_axes[row, 2 + len(VARIANTS) + n].imshow(maps[row], cmap="gray", interpolation="nearest")
titles = (["input", "true mask"] + [f"{short[n]} mask" for n in VARIANTS]
          + [f"{short[n]} upsampled, channel {typical[n][0]}" for n in VARIANTS])
for ax, title in zip(p_axes[0], titles):
    ax.set_title(title, fontsize=10)
for ax in p_axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
legend = "; ".join(f"{short[n]} = {n.split(' ', 1)[1]}, mIoU {means[n]:.2f}" for n in VARIANTS)
predictions_fig.suptitle(f"{legend}\nmasks: grey background, blue circle, orange square, green triangle; right: "
                         f"a typical channel of the last learned upsampling's output, each on its own grey scale",
                         fontsize=10)
predictions_fig.tight_layout(rect=(0, 0, 1, 0.94))
predictions_fig.savefig(os.path.join(args.out, "predictions.png"), dpi=90)
print(f"wrote matrices.png, painting.png, checkerboard.png, bilinear.png and predictions.png to {args.out}/")

# %% [markdown]
# What to take away: a transposed convolution is nothing new, only a convolution's backward pass used as a
# layer; its stride makes it paint overlapping stamps, which is where checkerboards come from (uneven
# overlap, or uneven weights per phase); starting it as bilinear upsampling removes the pattern at the
# start, and resize-then-convolve removes it by construction. Whether either changes the final score on a
# given task is a question for measurement, as above, against the seed-to-seed noise. Tutorial 16 puts
# four whole decoders (FCN-8s, SegNet, U-Net, DeepLabv3+) side by side.
