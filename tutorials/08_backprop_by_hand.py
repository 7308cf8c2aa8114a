# %% [markdown]
# # Tutorial 8: backpropagation by hand, on a 2x2 convolution of a 4x4 image
#
# Everything a Conv2D layer does, forward and backward, written as plain loops over pixels; then checked
# against tinyseg's Conv2D layer and against finite differences; then rewritten as im2col and one matrix
# product, the way the layer really computes it. The script draws the im2col matrix it builds (im2col.png:
# the image, its patches, the matrix, the product) and the backward pass in the same form (backward.png).
#
#     python tutorials/08_backprop_by_hand.py            # a few seconds
#     python tutorials/08_backprop_by_hand.py --quick    # the same (the tutorial is quick already)
#
# The file is in percent format: `# %%` starts a code cell and `# %% [markdown]` a text cell, so Jupyter
# (with jupytext) and VS Code open it as a notebook.

# %%
import argparse
import os
import sys

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from tinyseg.gradcheck import numeric_gradient
from tinyseg.kernels.im2col import col2im, im2col
from tinyseg.layers import Conv2D

parser = argparse.ArgumentParser(description="Tutorial 8: backpropagation by hand, on a 2x2 convolution")
parser.add_argument("--quick", "--tiny", action="store_true",
                    help="accepted for the tests; the tutorial is quick already")
parser.add_argument("--out", default=os.path.join("tutorial-output", "08_backprop_by_hand"))
# In a notebook, sys.argv holds the kernel's own flags: read none of them.
args = parser.parse_args([] if "ipykernel" in sys.modules else None)
os.makedirs(args.out, exist_ok=True)

# %% [markdown]
# ## The problem
#
# One image x of 4x4 pixels with one channel, one 2x2 kernel K, a bias b, stride 1, no padding ('valid'):
#
#     y[i, j] = b + sum_{u, v in {0, 1}} x[i + u, j + v] * K[u, v]          i, j = 0, 1, 2
#
# so y is 3x3: OH = (H - KH) // stride + 1 = (4 - 2) // 1 + 1 = 3. The letters are tinyseg's everywhere
# (tinyseg/reference.py): (i, j) an output pixel, (u, v) a kernel tap, (h, w) an input pixel, b the bias
# only. Small integers keep every number readable.

# %%
x = np.arange(16, dtype=np.float64).reshape(4, 4)        # 0 .. 15, row by row
K = np.array([[1.0, 2.0], [0.0, -1.0]])
b = 0.5
print("x =\n", x, "\nK =\n", K, "\nb =", b)

# %% [markdown]
# ## Forward, with loops
#
# One output pixel at a time: put the kernel on the window whose top-left corner is (i, j), multiply
# element by element, add up, add the bias.

# %%
def conv_forward_loops(x, K, b):
    """y (OH, OW) from x (H, W), K (KH, KW) and a scalar bias b: the definition above, loop by loop."""
    kh, kw = K.shape
    oh, ow = x.shape[0] - kh + 1, x.shape[1] - kw + 1
    y = np.zeros((oh, ow))
    for i in range(oh):
        for j in range(ow):
            total = b
            for u in range(kh):
                for v in range(kw):
                    total += x[i + u, j + v] * K[u, v]
            y[i, j] = total
    return y


y = conv_forward_loops(x, K, b)
print("y =\n", y)

# %% [markdown]
# ## Backward, with loops
#
# Training needs the gradient of a loss L. Whatever L is, backpropagation hands this layer the upstream
# gradient G = dL/dy (3x3, one number per output pixel) and asks for dL/dx, dL/dK and dL/db. The chain
# rule, read off the forward formula (each y[i, j] is a sum, so each term sends G[i, j] back to what it
# multiplied):
#
#     dL/dK[u, v] = sum_{i, j} G[i, j] * x[i + u, j + v]          (K[u, v] met x[i + u, j + v] in y[i, j])
#     dL/db       = sum_{i, j} G[i, j]                            (b was added to every y[i, j])
#     dL/dx[h, w] = sum of G[i, j] * K[u, v] over the (i, j, u, v) with i + u = h, j + v = w
#
# The last line is a scatter: every output pixel spreads G[i, j] * K back over the window it read. A
# corner pixel of x sat in one window, a middle pixel in four, so it collects four terms.

# %%
G = np.array([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0], [1.0, 0.0, 1.0]])      # an upstream gradient dL/dy


def conv_backward_loops(x, K, G):
    """(dL/dx, dL/dK, dL/db) from the upstream gradient G = dL/dy, by the three formulas above."""
    kh, kw = K.shape
    dx, dK, db = np.zeros_like(x), np.zeros_like(K), 0.0
    for i in range(G.shape[0]):
        for j in range(G.shape[1]):
            db += G[i, j]
            for u in range(kh):
                for v in range(kw):
                    dK[u, v] += G[i, j] * x[i + u, j + v]
                    dx[i + u, j + v] += G[i, j] * K[u, v]
    return dx, dK, db


dx, dK, db = conv_backward_loops(x, K, G)
print("dL/dx =\n", dx, "\ndL/dK =\n", dK, "\ndL/db =", db)

# %% [markdown]
# ## Check 1: against tinyseg's Conv2D layer
#
# The layer works on batches of multi-channel images, (N, H, W, C), with a kernel (KH, KW, C_in, C_out):
# here N = C_in = C_out = 1. After `set_weights`, its forward must give y and its backward (given G) must
# give dL/dx and fill `layer.grads` with dL/dK and dL/db.

# %%
layer = Conv2D(1, (2, 2), padding="valid", dtype="float64")
layer.build((4, 4, 1))
layer.set_weights([K.reshape(2, 2, 1, 1), np.array([b])])
y_layer = layer.forward(x[None, :, :, None])[0, :, :, 0]
dx_layer = layer.backward(G[None, :, :, None])[0, :, :, 0]
checks = {"y": (y, y_layer), "dL/dx": (dx, dx_layer), "dL/dK": (dK, layer.grads["kernel"][:, :, 0, 0]),
          "dL/db": (np.array([db]), layer.grads["bias"])}
for name, (loops, by_layer) in checks.items():
    print(f"{name:6s} loops vs Conv2D: largest difference {np.abs(loops - by_layer).max():.1e}")
    assert np.allclose(loops, by_layer, rtol=0, atol=1e-12)

# %% [markdown]
# ## Check 2: against finite differences
#
# Take L = sum_{i, j} y[i, j] G[i, j]: its gradient with respect to y is exactly G, so the backward above
# must give its gradients. Nudge one input by a small step e and watch L move:
#
#     dL/dx[h, w] ~ (L(x + e 1_hw) - L(x - e 1_hw)) / (2 e)          (1_hw: 1 at pixel (h, w), 0 elsewhere)
#
# (central differences: the error is O(e^2); here L is linear in each argument, so only rounding is left).
# The relative error |a - n| / (|a| + |n|) is printed; below 1e-6 in float64 means the formula is right.

# %%
def loss():
    return float((conv_forward_loops(x, K, bias[0]) * G).sum())


bias = np.array([b])
worst = 0.0
for name, array, analytic in (("x", x, dx), ("K", K, dK), ("b", bias, np.array([db]))):
    numeric = numeric_gradient(loss, array, np.arange(array.size), 1e-5).reshape(array.shape)
    rel = np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), 1e-12)
    worst = max(worst, rel.max())
    print(f"dL/d{name}: {array.size} partial derivatives, largest relative error {rel.max():.1e}")
assert worst < 1e-6

# %% [markdown]
# ## The same, as im2col and one matrix product
#
# Loops are slow in Python. im2col copies every window of x into one row of a matrix, in the order the
# kernel is flattened (u, v): 9 windows, 4 values each, a (9, 4) matrix. Then the whole convolution is one
# product with the kernel as a column:
#
#     cols = im2col(x)                 (OH*OW, KH*KW) = (9, 4)
#     y    = cols @ K.ravel() + b      (9,)  -> reshape (3, 3)
#
# and the backward is two more products and col2im, the adjoint of im2col (it adds every row back onto
# the window it was copied from: the scatter of the loop version):
#
#     dL/dK = cols^T @ G.ravel()                (4,) -> (2, 2)
#     dL/dx = col2im(G.ravel()[:, None] @ K.ravel()[None, :])      (9, 4) -> (4, 4)

# %%
def im2col_loops(x, kh, kw):
    """The (OH*OW, KH*KW) matrix whose row i*OW + j is the window of x at (i, j), flattened row by row."""
    oh, ow = x.shape[0] - kh + 1, x.shape[1] - kw + 1
    cols = np.zeros((oh * ow, kh * kw))
    for i in range(oh):
        for j in range(ow):
            cols[i * ow + j] = x[i:i + kh, j:j + kw].ravel()
    return cols


cols = im2col_loops(x, 2, 2)
cols_tinyseg = im2col(x[None, :, :, None], 2, 2, 1, 1, (0, 0, 0, 0), (3, 3))
assert np.array_equal(cols, cols_tinyseg), "our loop im2col and tinyseg's kernel disagree"
product = cols @ K.ravel() + b
assert np.allclose(product.reshape(3, 3), y)
dK_matrix = (cols.T @ G.ravel()).reshape(2, 2)
dx_matrix = col2im(G.ravel()[:, None] @ K.ravel()[None, :], (1, 4, 4, 1), 2, 2, 1, 1, (0, 0, 0, 0),
                   (3, 3))[0, :, :, 0]
assert np.allclose(dK_matrix, dK) and np.allclose(dx_matrix, dx)
print("im2col matrix (9 windows x 4 values):\n", cols)
print("cols @ K.ravel() + b =", product, "= y, row by row")
print("cols^T @ G = dL/dK and col2im(G K^T) = dL/dx: both equal the loop versions")

# %% [markdown]
# ## Drawing it
#
# im2col.png: the image with the first window outlined, the 9 windows (patches), the im2col matrix with
# each row in its window's colour, and the product with the kernel column, which is y read row by row.

# %%
PATCH_COLOURS = [f"C{k}" for k in range(9)]


def show_numbers(ax, a, fmt="{:g}", cmap="Greys", vmin=None, vmax=None):
    """An array as coloured cells with its numbers written in them."""
    a = np.atleast_2d(a)
    im = ax.imshow(a, cmap=cmap, vmin=vmin, vmax=vmax)
    for (r, c), v in np.ndenumerate(a):
        red, green, blue, _ = im.cmap(im.norm(v))
        dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5          # white text on dark cells
        ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xticks([])
    ax.set_yticks([])


def outline(ax, top, left, height, width, colour, lw=2.0):
    ax.add_patch(Rectangle((left - 0.5, top - 0.5), width, height, fill=False, edgecolor=colour, lw=lw))


# panels of the same quantity share one colour scale: x's values in x, its windows and im2col(x); y's in the
# product and in y
X_SCALE = dict(vmin=x.min(), vmax=x.max())
Y_SCALE = dict(vmin=product.min(), vmax=product.max())
fig = im2col_fig = Figure(figsize=(14, 4.6))
grid = fig.add_gridspec(1, 6, width_ratios=[4, 4.2, 4.5, 1.4, 1.4, 3])
ax = fig.add_subplot(grid[0])
show_numbers(ax, x, **X_SCALE)
outline(ax, 0, 0, 2, 2, PATCH_COLOURS[0], lw=3)
ax.set_title("image x (4x4)\nwindow 0 outlined", fontsize=9)

sub = grid[1].subgridspec(3, 3, wspace=0.15, hspace=0.15)
for k in range(9):
    i, j = divmod(k, 3)
    ax = fig.add_subplot(sub[i, j])
    show_numbers(ax, x[i:i + 2, j:j + 2], **X_SCALE)
    for side in ax.spines.values():
        side.set_edgecolor(PATCH_COLOURS[k])
        side.set_linewidth(3)
    if k == 1:
        ax.set_title("the 9 windows (2x2 patches)", fontsize=9)

ax = fig.add_subplot(grid[2])
show_numbers(ax, cols, **X_SCALE)
for k in range(9):
    outline(ax, k, 0, 1, 4, PATCH_COLOURS[k])
ax.set_title("im2col(x): one row per window\n(9, 4)", fontsize=9)
ax.set_yticks(range(9), [f"row {k}" for k in range(9)], fontsize=7)
ax.set_xticks(range(4), ["x[i,j]", "x[i,j+1]", "x[i+1,j]", "x[i+1,j+1]"], fontsize=6, rotation=35)

ax = fig.add_subplot(grid[3])
show_numbers(ax, K.ravel()[:, None], cmap="RdBu_r", vmin=-2, vmax=2)
ax.set_title("@ K.ravel()\n(4, 1)", fontsize=9)

ax = fig.add_subplot(grid[4])
show_numbers(ax, product[:, None], cmap="viridis", **Y_SCALE)
for k in range(9):
    outline(ax, k, 0, 1, 1, PATCH_COLOURS[k])
ax.set_title(f"+ b = {b:g}\n(9, 1)", fontsize=9)

ax = fig.add_subplot(grid[5])
show_numbers(ax, product.reshape(3, 3), cmap="viridis", **Y_SCALE)
for k in range(9):
    outline(ax, *divmod(k, 3), 1, 1, PATCH_COLOURS[k])
ax.set_title("reshaped (3, 3) = y\n(equal to the loops)", fontsize=9)
fig.suptitle("a convolution as one matrix product: y = im2col(x) @ K.ravel() + b", fontsize=11)
fig.tight_layout(rect=(0, 0, 1, 0.93))
fig.savefig(os.path.join(args.out, "im2col.png"), dpi=90)

# %% [markdown]
# backward.png: the backward pass in the same form. G K^T is a (9, 4) matrix, one row per window: the
# gradient of that window's four pixels. col2im adds each row back onto its window, so a pixel shared by
# four windows sums four entries. The result is dL/dx, and cols^T @ G is dL/dK.
#
# G, G K^T and dL/dx are drawn on one colour scale (the colour bar under them), so the eye can follow a
# number from one to the next and see col2im's sums grow. dL/dK, a sum over all nine windows, is far larger
# and has its own scale; x, for reference, has x's.

# %%
spread = G.ravel()[:, None] @ K.ravel()[None, :]
shared = max(np.abs(a).max() for a in (G, spread, dx_matrix))          # one scale for G, G K^T and dL/dx
dK_top = np.abs(dK_matrix).max()
fig = backward_fig = Figure(figsize=(12, 4.6))
grid = fig.add_gridspec(2, 5, width_ratios=[3, 4.5, 3.6, 3, 3], height_ratios=[1, 0.04], hspace=0.25)
panels = [("upstream G = dL/dy\n(3, 3)", G, "RdBu_r", shared), ("G.ravel() K^T: each window's\ngradient (9, 4)",
          spread, "RdBu_r", shared), ("col2im: rows added back\n= dL/dx (4, 4)", dx_matrix, "RdBu_r", shared),
          ("cols^T @ G = dL/dK (2, 2)\n(its own scale)", dK_matrix, "RdBu_r", dK_top),
          ("x (4, 4), for reference", x, "Greys", None)]
for k, (title, a, cmap, top) in enumerate(panels):
    ax = fig.add_subplot(grid[0, k])
    scale = dict(vmin=-top, vmax=top) if top is not None else X_SCALE
    show_numbers(ax, a, cmap=cmap, **scale)
    ax.set_title(title, fontsize=9)
    if k == 1:
        for r in range(9):
            outline(ax, r, 0, 1, 4, PATCH_COLOURS[r])
    if k in (2, 3):               # a colour bar under the three shared panels, and one under dL/dK
        cax = fig.add_subplot(grid[1, :3] if k == 2 else grid[1, 3])
        fig.colorbar(ax.get_images()[0], cax=cax, orientation="horizontal")
        cax.tick_params(labelsize=7)
fig.suptitle("backward: dL/dK = im2col(x)^T G and dL/dx = col2im(G K^T) (a transposed convolution of G)",
             fontsize=11)
fig.subplots_adjust(left=0.02, right=0.98, bottom=0.08, top=0.8, wspace=0.3)
fig.savefig(os.path.join(args.out, "backward.png"), dpi=90)
print(f"wrote im2col.png and backward.png to {args.out}/")
