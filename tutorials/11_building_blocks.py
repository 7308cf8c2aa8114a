# %% [markdown]
# # Tutorial 11: the building blocks, forward and backward
#
# A segmentation network is made of a handful of blocks: activations (ReLU, sigmoid, tanh), dense and
# convolution layers, pooling, and a softmax cross-entropy loss at the end. Tutorial 8 took the convolution
# apart; this one does the same for the others. For each block: the formula of its forward pass, the
# derivative its backward pass computes (derived, not quoted), a few lines of NumPy, and two checks: against
# tinyseg's own layer, and against finite differences with `tinyseg.gradcheck`.
#
# One notation throughout, as in tinyseg's docstrings: x the input, W the kernel (weights), b the bias, y the
# output, G = dL/dy the upstream gradient that backpropagation hands a block, N the batch size.
#
#     python tutorials/11_building_blocks.py            # a few seconds
#     python tutorials/11_building_blocks.py --quick    # the same (the tutorial is quick already)
#
# It writes activations.png, vanishing_gradient.png, pooling.png and cross_entropy.png. The file is in
# percent format: `# %%` starts a code cell and `# %% [markdown]` a text cell (Jupyter with jupytext, VS Code).

# %%
import argparse
import os

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import ConnectionPatch, Rectangle

import tinyseg
from tinyseg.gradcheck import check_layer, check_loss, numeric_gradient
from tinyseg.layers import AveragePooling2D, Dense, MaxPooling2D, ReLU, Sigmoid, Tanh
from tinyseg.losses import SparseCategoricalCrossentropy

parser = argparse.ArgumentParser(description="Tutorial 11: activations, dense, pooling, softmax cross-entropy")
parser.add_argument("--quick", "--tiny", action="store_true",
                    help="accepted for the tests; the tutorial is quick already")
parser.add_argument("--out", default=os.path.join("tutorial-output", "11_building_blocks"))
args, _ = parser.parse_known_args()         # known args only: a notebook's kernel passes flags of its own
os.makedirs(args.out, exist_ok=True)
rng = np.random.default_rng(0)
gradchecks = {}                             # block name -> tinyseg.gradcheck report, printed at the end

# %% [markdown]
# ## 1. Activations: ReLU, sigmoid, tanh
#
# An activation works on each number on its own, y = f(x), so its backward is one multiplication per
# number: dL/dx = G * f'(x). The three classics and their derivatives:
#
#     ReLU:     f(x) = max(x, 0)              f'(x) = 1 if x > 0, else 0
#     sigmoid:  f(x) = 1 / (1 + exp(-x))      f'(x) = exp(-x) / (1 + exp(-x))^2 = f(x) (1 - f(x))
#     tanh:     f(x) = tanh(x)                f'(x) = 1 - tanh(x)^2 = 1 - f(x)^2
#
# The sigmoid's derivative, step by step: f = (1 + e^-x)^-1, so f' = -(1 + e^-x)^-2 * (-e^-x) =
# e^-x / (1 + e^-x)^2, and e^-x / (1 + e^-x) = 1 - f, so f' = f (1 - f). Both sigmoid and tanh can write
# their derivative with their output y alone, which is what tinyseg keeps for the backward pass.
#
# The layers compute f' for us: feed G = 1 to `backward` and what comes back is f'(x) itself. The plot
# draws that, and the code checks it against the formulas.

# %%
xs = np.linspace(-5, 5, 1001)[None, :]                      # one "batch" row of 1001 numbers
formulas = {"ReLU": (ReLU, lambda x: (x > 0).astype(float)),
            "sigmoid": (Sigmoid, lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2),
            "tanh": (Tanh, lambda x: 1 - np.tanh(x) ** 2)}
curves = {}
for name, (cls, derivative) in formulas.items():
    layer = cls(dtype="float64")
    y = layer.forward(xs)
    slope = layer.backward(np.ones_like(y))                  # G = 1: dL/dx = f'(x)
    curves[name] = (y[0], slope[0])
    print(f"{name:8s} f' from backward(1) vs the formula: largest difference "
          f"{np.abs(slope - derivative(xs)).max():.1e}; largest f' = {slope.max():.3f}")
    assert np.allclose(slope, derivative(xs), rtol=0, atol=1e-12)
    gradchecks[name] = check_layer(cls(dtype="float64"), rng.standard_normal((4, 6)))

activations_fig = Figure(figsize=(12, 3.6))
for ax, (name, (y, slope)) in zip(activations_fig.subplots(1, 3, sharey=True), curves.items()):
    ax.plot(xs[0], y, lw=2, label=f"{name}(x)")
    ax.plot(xs[0], slope, "--", lw=2, label=f"{name}'(x), from backward(1)")
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_title(f"{name}: largest slope {slope.max():.2f}")
    ax.set_xlabel("x")
    ax.set_ylim(-1.1, 1.6)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
activations_fig.tight_layout()
activations_fig.savefig(os.path.join(args.out, "activations.png"), dpi=90)

# %% [markdown]
# The numbers to take away: the sigmoid's slope is at most 0.25 (at x = 0), and almost 0 once |x| > 4;
# tanh's is at most 1, also flat far from 0; ReLU's is exactly 1 for every positive input. Those
# maxima matter as soon as layers are stacked.
#
# ## 2. The vanishing gradient
#
# Backpropagation multiplies: the gradient that reaches layer l has passed through the derivative of every
# activation above it. With sigmoid each of them is at most 0.25, so through 10 layers the gradient shrinks
# by up to 0.25^10 ~ 1e-6 (less the weights give back). The first layers then hardly learn.
#
# To see it, one stack of 12 Dense layers of width 64, with the same starting weights (Keras's default
# glorot_uniform, the generator seeded before each build) and the same input, built three times: with
# sigmoid, with tanh and with ReLU after every layer. One backward pass from the same upstream gradient G,
# and the norm of each layer's weight gradient ||dL/dW_l||, which is what the optimizer gets to work with.

# %%
DEPTH, WIDTH, BATCH = 12, 64, 32
x_stack = rng.standard_normal((BATCH, WIDTH))
G_top = rng.standard_normal((BATCH, WIDTH)) / BATCH
grad_norms = {}
for activation in ("sigmoid", "tanh", "relu"):
    tinyseg.set_random_seed(0)                       # the same weights for each activation
    stack = [Dense(WIDTH, activation=activation, dtype="float64") for _ in range(DEPTH)]
    h = x_stack
    for layer in stack:
        h = layer.forward(h)
    G = G_top
    for layer in reversed(stack):
        G = layer.backward(G)
    grad_norms[activation] = np.array([np.linalg.norm(layer.grads["kernel"]) for layer in stack])
    norms = grad_norms[activation]
    print(f"{activation:8s} ||dL/dW|| layer 1 (input side) {norms[0]:.1e}, layer {DEPTH} (output side) "
          f"{norms[-1]:.1e}: ratio first / last {norms[0] / norms[-1]:.1e}")

vanishing_fig = Figure(figsize=(7, 4.2))
ax = vanishing_fig.subplots()
layers_axis = np.arange(1, DEPTH + 1)
for activation, norms in grad_norms.items():
    ax.plot(layers_axis, norms, "o-", label=activation)
ax.set_yscale("log")
ax.set_xlabel("layer l (1 = next to the input, 12 = next to the loss)")
ax.set_ylabel("||dL/dW_l||")
ax.set_xticks(layers_axis)
ax.set_title(f"the same {DEPTH}-layer Dense stack, three activations")
ax.grid(alpha=0.3, which="both")
ax.legend()
vanishing_fig.tight_layout()
vanishing_fig.savefig(os.path.join(args.out, "vanishing_gradient.png"), dpi=90)
for activation, norms in grad_norms.items():
    per_layer = (norms[0] / norms[-1]) ** (1 / (DEPTH - 1))     # the geometric mean of layer-to-layer ratios
    print(f"{activation:8s} from layer {DEPTH} down to layer 1 the gradient is multiplied by {per_layer:.2f} per "
          f"layer on average: {np.log10(norms[0] / norms[-1]):+.1f} orders of magnitude in all")

# %% [markdown]
# Read the plot from right to left, the way the gradient travels. With sigmoid the line falls by a
# constant factor per layer (printed above: each sigmoid's slope is at most 0.25, and glorot's weights,
# scaled to keep a signal's size, do not make up for it), so the first layer's gradient ends orders of
# magnitude below the last one's: a learning rate that suits the last layer leaves the first one frozen.
# tanh and ReLU keep the gradient at about one level across the stack (with these weights: tanh's slope is 1
# near 0, ReLU's is 1 wherever it is not 0). That is why the hidden layers of modern networks use ReLU, and
# sigmoid survives at the very end, where it turns one score into a probability (a binary mask), with a loss
# that cancels its flat tails (see section 5).
#
# ## 3. Dense: y = xW + b
#
# x (N, D_in), W (D_in, D_out) (the layer's `kernel`), b (D_out,), y (N, D_out). One output number is
#
#     y[n, j] = sum_i x[n, i] W[i, j] + b[j]
#
# Given G[n, j] = dL/dy[n, j], the chain rule sums over every y that a parameter touched:
#
#     dL/dW[i, j] = sum_n G[n, j] x[n, i]      ->  dW = x^T G      (D_in, N) @ (N, D_out) = (D_in, D_out)
#     dL/db[j]    = sum_n G[n, j]              ->  db = sum of G over the batch axis      (D_out,)
#     dL/dx[n, i] = sum_j G[n, j] W[i, j]      ->  dx = G W^T      (N, D_out) @ (D_out, D_in) = (N, D_in)
#
# The shapes are a good check: each gradient has the shape of what it is the gradient of, and there is only
# one way to multiply the arrays at hand into that shape.

# %%
N, D_IN, D_OUT = 4, 3, 2
x = rng.standard_normal((N, D_IN))
W = rng.standard_normal((D_IN, D_OUT))
b = rng.standard_normal(D_OUT)
G = rng.standard_normal((N, D_OUT))

y = x @ W + b                      # forward
dW = x.T @ G                       # backward: the three formulas above
db = G.sum(axis=0)
dx = G @ W.T

dense = Dense(D_OUT, dtype="float64")
dense.build((D_IN,))
dense.set_weights([W, b])
checks = {"y": (y, dense.forward(x)), "dx": (dx, dense.backward(G)),
          "dW": (dW, dense.grads["kernel"]), "db": (db, dense.grads["bias"])}
for name, (ours, layer_says) in checks.items():
    print(f"{name:3s} by hand vs tinyseg.layers.Dense: largest difference {np.abs(ours - layer_says).max():.1e}")
    assert np.allclose(ours, layer_says, rtol=0, atol=1e-12)
gradchecks["Dense"] = check_layer(dense, x)

# %% [markdown]
# ## 4. Pooling, and where its gradient goes
#
# A 2x2 pooling with stride 2 cuts x into 2x2 windows and keeps one number per window:
#
#     max:      y[i, j] = max of x over window (i, j)
#     average:  y[i, j] = (1/4) * sum of x over window (i, j)
#
# Neither has parameters, so its backward only routes G back to the input:
#
# - **average**: every x in the window moved y by 1/4 of its own change, so each receives G[i, j] / 4.
# - **max**: only the winner moved y; the other three could change a little and y would not notice. The
#   winner receives all of G[i, j], the others 0.
#
# **Ties.** When two pixels of a window share the maximum, the max is not differentiable there: nudge
# one up and it alone wins, nudge it down and the other one wins. Any split of G[i, j] between the tied
# pixels (summing to G[i, j]) is a valid subgradient. tinyseg picks the first maximum in row-major order
# (top row first, left to right), as PyTorch does on the CPU, and sends it all of G. The top-right window
# below holds two 7s, at (0, 3) and (1, 2): row-major order meets (0, 3) first.

# %%
x_pool = np.array([[1., 3., 2., 7.],
                   [4., 2., 7., 5.],
                   [0., 6., 8., 1.],
                   [2., 5., 3., 9.]])
G_pool = np.array([[1., 2.],
                   [3., 4.]])
max_pool, avg_pool = MaxPooling2D(2, dtype="float64"), AveragePooling2D(2, dtype="float64")
y_max = max_pool.forward(x_pool[None, :, :, None])[0, :, :, 0]
dx_max = max_pool.backward(G_pool[None, :, :, None])[0, :, :, 0]
y_avg = avg_pool.forward(x_pool[None, :, :, None])[0, :, :, 0]
dx_avg = avg_pool.backward(G_pool[None, :, :, None])[0, :, :, 0]
print("x =\n", x_pool, "\nmax pooling y =\n", y_max, "\naverage pooling y =\n", y_avg)
print("G =\n", G_pool, "\nmax pooling dL/dx =\n", dx_max, "\naverage pooling dL/dx =\n", dx_avg)


def route_max(x, G):
    """dL/dx of 2x2 / 2 max pooling, by the rule: G[i, j] to the first maximum (row-major) of window (i, j)."""
    dx = np.zeros_like(x)
    for i in range(G.shape[0]):
        for j in range(G.shape[1]):
            window = x[2 * i:2 * i + 2, 2 * j:2 * j + 2]
            a, c = divmod(int(np.argmax(window)), 2)          # np.argmax: the first maximum, row-major
            dx[2 * i + a, 2 * j + c] += G[i, j]
    return dx


assert np.array_equal(dx_max, route_max(x_pool, G_pool)), "max pooling's backward routes differently"
assert np.array_equal(dx_avg, np.kron(G_pool, np.ones((2, 2))) / 4)
tie_first, tie_second = (0, 3), (1, 2)
print(f"tie in the top-right window: x{tie_first} = x{tie_second} = {x_pool[tie_first]:g}; tinyseg sends "
      f"G = {G_pool[0, 1]:g} to {tie_first} (dL/dx = {dx_max[tie_first]:g}) and {dx_max[tie_second]:g} to "
      f"{tie_second}")
assert dx_max[tie_first] == G_pool[0, 1] and dx_max[tie_second] == 0


# %% [markdown]
# What do finite differences say at the tie? Take L = sum(y * G). Nudging x[0, 3] up by h raises the window's
# maximum by h, nudging it down lowers nothing (x[1, 2] still holds 7), so the central difference is
# (G h - 0) / 2h = G / 2 for each of the two tied pixels: neither tinyseg's G nor 0. That is the
# non-differentiability showing through, not a bug; gradient checks (here and in tinyseg's tests) therefore
# use random inputs, where ties have probability zero.

# %%
def pooled_loss():
    return float((max_pool.forward(x_pool[None, :, :, None])[0, :, :, 0] * G_pool).sum())


for where in (tie_first, tie_second):
    flat = np.ravel_multi_index(where, x_pool.shape)
    numeric = numeric_gradient(pooled_loss, x_pool, [flat], 1e-5)[0]
    print(f"central difference at the tie {where}: {numeric:.4f} (= G / 2), backward gives {dx_max[where]:g}")
    assert abs(numeric - G_pool[0, 1] / 2) < 1e-6
gradchecks["MaxPooling2D"] = check_layer(MaxPooling2D(2, dtype="float64"), rng.standard_normal((2, 4, 4, 3)))
gradchecks["AveragePooling2D"] = check_layer(AveragePooling2D(2, dtype="float64"),
                                             rng.standard_normal((2, 4, 4, 3)))

# %% [markdown]
# pooling.png draws the routing: top row max pooling (each window outlined in its colour, its winner
# filled, an arrow from each G[i, j] to the pixel that receives it), bottom row average pooling (each
# G[i, j] shared by its four pixels).

# %%
WINDOW_COLOURS = ["C0", "C1", "C2", "C3"]


def show_grid(ax, a, title, fmt="{:g}", windows=False, fill=None, dashed=()):
    """An array as a grid of numbers; `windows` outlines the 2x2 windows, `fill` shades chosen cells and
    `dashed` outlines others (the pixel tied with a maximum)."""
    ax.imshow(np.zeros_like(a), cmap="Greys", vmin=0, vmax=1)
    for (r, c), v in np.ndenumerate(a):
        ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=11)
    for (r, c), colour in (fill or {}).items():
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, color=colour, alpha=0.35))
    for r, c in dashed:
        ax.add_patch(Rectangle((c - 0.38, r - 0.38), 0.76, 0.76, fill=False, edgecolor="k", lw=1.2, ls="--"))
    if windows:
        for k in range(4):
            i, j = divmod(k, 2)
            ax.add_patch(Rectangle((2 * j - 0.45, 2 * i - 0.45), 1.9, 1.9, fill=False,
                                   edgecolor=WINDOW_COLOURS[k], lw=2.5))
    else:
        for (r, c), _ in np.ndenumerate(a):
            ax.add_patch(Rectangle((c - 0.45, r - 0.45), 0.9, 0.9, fill=False,
                                   edgecolor=WINDOW_COLOURS[r * a.shape[1] + c], lw=2.5))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)


winners = {(r, c): WINDOW_COLOURS[(r // 2) * 2 + c // 2] for (r, c), v in np.ndenumerate(dx_max) if v != 0}
everyone = {(r, c): WINDOW_COLOURS[(r // 2) * 2 + c // 2] for (r, c), _ in np.ndenumerate(x_pool)}
pooling_fig = Figure(figsize=(13, 6.6))
axes = pooling_fig.subplots(2, 4, gridspec_kw=dict(width_ratios=[4, 2, 2, 4]))
show_grid(axes[0, 0], x_pool, "x (4x4), 2x2 windows; each maximum filled,\ndashed: tied with it (not first)",
          windows=True, fill=winners, dashed=[tie_second])
show_grid(axes[0, 1], y_max, "y = max pooling")
show_grid(axes[0, 2], G_pool, "G = dL/dy")
show_grid(axes[0, 3], dx_max, "dL/dx: all of G[i, j] to the first\nmaximum (row-major), 0 elsewhere",
          windows=True, fill=winners, dashed=[tie_second])
for (r, c), colour in winners.items():             # an arrow from each G[i, j] to the pixel that receives it
    pooling_fig.add_artist(ConnectionPatch(xyA=(c // 2, r // 2), coordsA=axes[0, 2].transData, xyB=(c, r),
                                   coordsB=axes[0, 3].transData, arrowstyle="->", color=colour, lw=1.5,
                                   shrinkA=9, shrinkB=9))
show_grid(axes[1, 0], x_pool, "x (4x4), 2x2 windows", windows=True)
show_grid(axes[1, 1], y_avg, "y = average pooling", fmt="{:.2f}")
show_grid(axes[1, 2], G_pool, "G = dL/dy")
show_grid(axes[1, 3], dx_avg, "dL/dx: G[i, j] / 4 to each\npixel of window (i, j)", fmt="{:.2f}", windows=True,
          fill=everyone)
pooling_fig.suptitle("pooling's backward routes G: max pooling to the winner (the first, on a tie), "
             "average pooling to everyone", fontsize=11)
pooling_fig.tight_layout(rect=(0, 0, 1, 0.95))
pooling_fig.savefig(os.path.join(args.out, "pooling.png"), dpi=90)

# %% [markdown]
# ## 5. Softmax cross-entropy, and dL/dz = p - y
#
# A classifier's last layer gives K scores z (logits) per pixel. Softmax turns them into probabilities, and
# cross-entropy charges -log of the probability given to the true class c:
#
#     p_k = exp(z_k) / sum_j exp(z_j)          L = -log p_c = -sum_k y_k log p_k     (y: one-hot, y_c = 1)
#
# The derivative, step by step:
#
# 1. Take the log of the softmax: log p_k = z_k - log sum_j exp(z_j).
# 2. Differentiate it in z_i. The first term gives [i = k] (1 if i = k, else 0). The second gives
#    exp(z_i) / sum_j exp(z_j), which is p_i. So d log p_k / dz_i = [i = k] - p_i.
# 3. Put it in L = -sum_k y_k log p_k: dL/dz_i = -sum_k y_k ([i = k] - p_i) = -y_i + p_i sum_k y_k.
# 4. The y_k sum to 1 (one-hot), so **dL/dz_i = p_i - y_i**.
#
# The gradient of the fused pair is as simple as a gradient gets: the predicted probabilities minus the
# one-hot truth. It lies between -1 and 1 whatever z is, so, unlike the separate softmax and log, it never
# vanishes through a flat softmax nor blows up through the log of a tiny p (tinyseg's losses take logits for
# this reason, and compute log p as z - logsumexp(z), never log(p + 1e-7)). Averaged over M pixels, as the
# loss is, it becomes (p - y) / M.
#
# The numbers: one pixel, K = 4 classes, true class 2. Our p - y, central differences of our own L, and
# tinyseg's SparseCategoricalCrossentropy (on logits) must agree.

# %%
z = np.array([1.0, -0.5, 0.3, 2.0])
label = 2


def softmax_cross_entropy(z, label):
    """L = -log p_label and p = softmax(z), with the maximum subtracted before exp (same value, no overflow)."""
    shifted = z - z.max()
    log_p = shifted - np.log(np.exp(shifted).sum())
    return -log_p[label], np.exp(log_p)


L, p = softmax_cross_entropy(z, label)
onehot = np.eye(len(z))[label]
by_formula = p - onehot
numeric = numeric_gradient(lambda: softmax_cross_entropy(z, label)[0], z, np.arange(len(z)), 1e-5)
loss = SparseCategoricalCrossentropy()
L_tinyseg = loss.forward(np.array([label]), z[None, :])
by_tinyseg = loss.backward()[0]
print(f"z = {z}, true class {label}\np = {np.round(p, 4)}, L = -log p_{label} = {L:.4f} "
      f"(tinyseg {L_tinyseg:.4f})")
print(f"dL/dz = p - y           {np.round(by_formula, 6)}")
print(f"central differences     {np.round(numeric, 6)}")
print(f"tinyseg loss.backward() {np.round(by_tinyseg, 6)}")
print(f"p - y vs central differences: largest difference {np.abs(by_formula - numeric).max():.1e}; "
      f"vs tinyseg: {np.abs(by_formula - by_tinyseg).max():.1e}")
assert np.allclose(by_formula, numeric, rtol=0, atol=1e-8) and np.allclose(by_formula, by_tinyseg, atol=1e-12)
labels_batch = rng.integers(0, 4, size=(2, 3, 3))
gradchecks["SparseCategoricalCrossentropy"] = check_loss(loss, labels_batch, rng.standard_normal((2, 3, 3, 4)))

# %%
cross_entropy_fig = Figure(figsize=(12, 4))
curve_ax, bars_ax = cross_entropy_fig.subplots(1, 2)
ps = np.linspace(0.005, 1, 400)
curve_ax.plot(ps, -np.log(ps), lw=2)
for q in (0.9, 0.5, 0.04):
    curve_ax.plot(q, -np.log(q), "o", color="C3")
    curve_ax.annotate(f"p = {q:g}: L = {-np.log(q):.2f}", (q, -np.log(q)), textcoords="offset points",
                      xytext=(8, 8), fontsize=9)
curve_ax.plot(p[label], L, "s", color="C2")
curve_ax.annotate(f"the pixel above: p_c = {p[label]:.2f}", (p[label], L), textcoords="offset points",
                  xytext=(8, -14), fontsize=9, color="C2")
curve_ax.set_xlabel("p_c, the probability given to the true class")
curve_ax.set_ylabel("L = -log p_c")
curve_ax.set_title("cross-entropy: cheap when sure and right, unbounded when sure and wrong", fontsize=10)
curve_ax.set_ylim(0, 5.5)
curve_ax.grid(alpha=0.3)
k_axis = np.arange(len(z))
bars_ax.bar(k_axis - 0.27, p, 0.27, label="p = softmax(z)")
bars_ax.bar(k_axis, onehot, 0.27, label="y (one-hot, true class 2)")
bars_ax.bar(k_axis + 0.27, by_tinyseg, 0.27, label="dL/dz = p - y (tinyseg)")
bars_ax.plot(k_axis + 0.27, numeric, "k_", markersize=14, mew=2, label="central differences")
bars_ax.axhline(0, color="grey", lw=0.8)
bars_ax.set_xticks(k_axis, [f"class {k}\nz = {v:g}" for k, v in enumerate(z)])
bars_ax.set_title("the gradient: push the true class up, every other class down by its p", fontsize=10)
bars_ax.legend(fontsize=8)
bars_ax.grid(alpha=0.3, axis="y")
cross_entropy_fig.tight_layout()
cross_entropy_fig.savefig(os.path.join(args.out, "cross_entropy.png"), dpi=90)

# %% [markdown]
# ## 6. Every block through tinyseg.gradcheck
#
# Above, each block met its formula by hand. `tinyseg.gradcheck` asks the finite-difference question for
# every entry: for a layer, L = sum(f(x) * G) with a random G, each dL/dx and dL/dW entry compared with
# (L(+h) - L(-h)) / 2h in float64; for the loss, L itself. Below 1e-6 relative error means the backward is
# the derivative of the forward.

# %%
for name, report in gradchecks.items():
    print(f"gradcheck {name:30s} largest relative error {report.max_rel_error:.1e} over {report.n_checked} "
          f"partial derivatives, {report.n_failed} failed")
    assert report.ok, str(report)
print(f"wrote activations.png, vanishing_gradient.png, pooling.png and cross_entropy.png to {args.out}/")

# %% [markdown]
# What next: tutorial 8 does the same for the convolution (loops, im2col, col2im), and tutorial 12 uses these
# gradients to take steps, watching gradient descent and its variants walk down a loss surface.
