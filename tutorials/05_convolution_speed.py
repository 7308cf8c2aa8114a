# %% [markdown]
# # Tutorial 5: why a convolution can be fast in Python: a loop, NumPy im2col and Numba im2col, timed
#
# One convolution layer (3x3 kernel, 'same' padding), forward and backward (dL/dx, dL/dkernel, dL/dbias),
# computed three ways:
#
# 1. naive loop: the definition, one multiply-add at a time in Python loops (tinyseg/reference.py, the
#    library's plain-loop definitions, CS231n's "naive" version):
#
#        y[n, i, j, f] = b[f] + sum over a, b, c of  xpad[n, i + a, j + b, c] * K[a, b, c, f]
#
#    Correct and readable, but the interpreter runs its loop body N*OH*OW*F*KH*KW*C times.
# 2. NumPy im2col (tinyseg with set_backend('numpy')): copy every 3x3 window into one row of a matrix
#    (strided slices), then matrix products do all the multiply-adds in BLAS. (tinyseg copies the windows
#    one kernel row at a time, a third of the matrix, and adds three products: kernels/convolution.py says
#    why.) The backward is more matrix products of the same kind.
# 3. Numba im2col (tinyseg with set_backend('numba')): the same algorithm, with the copies compiled loops,
#    and the work shared out between the cores band by band. The matrix products are NumPy's, as before.
#
# First the three are checked to agree. Then they are timed on a tiny problem, where the loop is bearable,
# and on a realistic U-Net layer (64x64x32 -> 32 filters, batch 16), where the loop would take minutes: its
# time there is estimated from its cost per output pixel on one small crop of the same layer (the hatched bar).
#
#     python tutorials/05_convolution_speed.py            # about half a minute
#     python tutorials/05_convolution_speed.py --quick    # a few seconds, a smaller "realistic" layer (for tests)
#
# It writes convolution_speed.png into --out (default tutorial-output/05_convolution_speed/).
#
# The file is in percent format: `# %%` starts a code cell and `# %% [markdown]` a text cell, so Jupyter
# (with jupytext) and VS Code open it as a notebook.

# %%
import argparse
import os
import statistics
import sys
import time

import numpy as np

from tinyseg import reference
from tinyseg.kernels import set_backend
from tinyseg.layers import Conv2D

parser = argparse.ArgumentParser(description="Tutorial 5: a loop, NumPy im2col and Numba im2col, timed")
parser.add_argument("--quick", "--tiny", action="store_true", help="a few seconds, for tests")
parser.add_argument("--out", default=os.path.join("tutorial-output", "05_convolution_speed"))
# In a notebook, sys.argv holds the kernel's own flags: read none of them.
args = parser.parse_args([] if "ipykernel" in sys.modules else None)
os.makedirs(args.out, exist_ok=True)

# %% [markdown]
# ## 1. The naive loop: the definition of a convolution and of its gradients, pixel by pixel
#
# tinyseg/reference.py holds the plain-loop definitions; the backward gives dL/dx, dL/dK and dL/db of the
# same formula: dL/dK[u, v, c, f] = sum_{n, i, j} xpad[n, i + u, j + v, c] dL/dy[n, i, j, f],
# dL/db[f] = sum_{n, i, j} dL/dy[n, i, j, f], and dL/dxpad is the sum of dL/dy[n, i, j, f] K[u, v, c, f] over
# every window the pixel sits in ((u, v) is the kernel tap, b the bias only: reference.py's notation).

# %%
def conv_forward_naive(x, kernel, bias):
    """The definition, one multiply-add at a time: tinyseg/reference.py, stride 1, 'same' padding."""
    return reference.conv2d(x, kernel, bias, strides=1, padding="same")


def naive_step(x, kernel, bias, grad):
    conv_forward_naive(x, kernel, bias)
    return reference.conv2d_backward(x, kernel, grad, strides=1, padding="same")

# %% [markdown]
# ## 2 and 3. tinyseg's Conv2D, on either backend
#
# The same layer, its weights set to the problem's; `set_backend` picks the NumPy twins or the Numba
# kernels for im2col and col2im. `problem` draws the inputs and `median_ms` times a call several times and
# keeps the median, which one slow run (another program taking the core) does not move.

# %%
def make_layer(x, kernel, bias):
    layer = Conv2D(kernel.shape[-1], kernel.shape[:2], padding="same")
    layer.build(x.shape[1:])
    layer.params["kernel"][...] = kernel
    layer.params["bias"][...] = bias
    return layer


def tinyseg_step(layer, x, grad, backend):
    """Forward + backward with the chosen kernels; returns (dx, dkernel, dbias)."""
    set_backend(backend)
    try:
        layer.forward(x, training=True)
        dx = layer.backward(grad)
        return dx, layer.grads["kernel"], layer.grads["bias"]
    finally:
        set_backend("numba")


def problem(shape, filters, seed=0):
    """Random x (N, H, W, C), kernel (3, 3, C, F), bias (F,) and upstream gradient (N, H, W, F), float32."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=np.float32)
    kernel = rng.standard_normal((3, 3, shape[-1], filters), dtype=np.float32) / np.sqrt(9 * shape[-1])
    bias = rng.standard_normal(filters, dtype=np.float32)
    grad = rng.standard_normal(shape[:3] + (filters,), dtype=np.float32)
    return x, kernel, bias, grad


def median_ms(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)

# %% [markdown]
# ## The experiment
#
# First the check: every output and gradient of each im2col backend against the loop, as the largest
# difference relative to the largest value. Then the timings; on the realistic layer the loop is not run
# but estimated from its cost per output pixel on an 8x8 crop (the loop's cost grows with the number of
# output pixels, and nothing else changes). The picture puts the three methods side by side on a log scale,
# the estimate hatched.

# %%
def check_agreement(x, kernel, bias, grad):
    """Largest relative difference of every gradient between the naive loop and each im2col backend."""
    reference = naive_step(x, kernel, bias, grad)
    worst = {}
    for backend in ("numpy", "numba"):
        layer = make_layer(x, kernel, bias)
        y = layer.forward(x, training=True)
        y_ref = conv_forward_naive(x, kernel, bias)
        got = tinyseg_step(layer, x, grad, backend)
        errs = [np.abs(y - y_ref).max() / np.abs(y_ref).max()]
        errs += [np.abs(a - b).max() / np.abs(b).max() for a, b in zip(got, reference)]
        worst[backend] = max(errs)
    return worst


def time_problem(x, kernel, bias, grad, repeats, naive=True):
    """{'naive': ms or None, 'numpy': ms, 'numba': ms} for one forward + backward."""
    out = {"naive": median_ms(lambda: naive_step(x, kernel, bias, grad), repeats) if naive else None}
    for backend in ("numpy", "numba"):
        layer = make_layer(x, kernel, bias)
        tinyseg_step(layer, x, grad, backend)                        # warm-up: buffers, compiled kernels
        out[backend] = median_ms(lambda layer=layer, backend=backend: tinyseg_step(layer, x, grad, backend), repeats)
    return out


def estimate_naive(shape, filters, crop=8):
    """The loop's time on the whole layer, from its time per output pixel on one (crop x crop) image."""
    x, kernel, bias, grad = problem((1, crop, crop, shape[-1]), filters, seed=1)
    per_pixel = median_ms(lambda: naive_step(x, kernel, bias, grad), 3) / (crop * crop)
    return per_pixel * shape[0] * shape[1] * shape[2]


def plot(results, path):
    """Grouped bars, log scale: one group per problem, one bar per method; estimates hatched."""
    from matplotlib.figure import Figure

    methods = [("naive", "naive Python loop", "#c0392b"), ("numpy", "NumPy im2col", "#2e86c1"),
               ("numba", "Numba im2col", "#4c9a2a")]
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    width = 0.26
    for k, (key, label, color) in enumerate(methods):
        for g, res in enumerate(results):
            ms = res["ms"][key]
            estimated = key == "naive" and res["naive_estimated"]
            ax.bar(g + (k - 1) * width, ms, width, color=color, hatch="//" if estimated else None,
                   edgecolor="white" if estimated else color, label=label if g == 0 else None)
            text = f"{ms:,.0f} ms" if ms >= 10 else f"{ms:.2f} ms"
            ax.text(g + (k - 1) * width, ms * 1.15, text + (" (est.)" if estimated else ""), ha="center",
                    fontsize=7, rotation=90 if estimated else 0, va="bottom")
    ax.set_yscale("log")
    ax.set_xticks(range(len(results)), [r["label"] for r in results], fontsize=8)
    ax.set_ylabel("forward + backward, ms (log scale)")
    top = max(r["ms"][m] for r in results for m, _, _ in methods)
    ax.set_ylim(top=top * 30)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("One 3x3 convolution, forward + backward: the same arithmetic, three ways", fontsize=10)
    fig.savefig(path, dpi=110)


def speed_verdict(ms):
    """How Numba im2col compares with NumPy im2col on one problem, from its timings {"numpy": ms, "numba": ms}:
    a ratio within 20% either way is called a tie (timings on a shared machine wobble that much)."""
    ratio = ms["numpy"] / ms["numba"]
    if ratio > 1.2:
        return f"{ratio:.1f}x faster than NumPy"
    if ratio < 1 / 1.2:
        return f"{1 / ratio:.1f}x slower than NumPy"
    return f"as fast as NumPy (within 20%: {ratio:.2f}x)"


def numba_conclusion(tiny, layer):
    """The conclusion the timings support, in one sentence: Numba on the tiny problem and on the layer, and
    whether its lead shrinks where there is little arithmetic (its fixed cost per call, starting threads and
    dispatching, weighs more there)."""
    text = f"Numba im2col is {speed_verdict(tiny)} on the tiny problem and {speed_verdict(layer)} on the layer"
    tiny_ratio, layer_ratio = tiny["numpy"] / tiny["numba"], layer["numpy"] / layer["numba"]
    if tiny_ratio < layer_ratio / 1.2:
        return text + ": its lead grows with the work, as a fixed cost per call would make it."
    if tiny_ratio > layer_ratio * 1.2:
        return text + ": its lead is larger on the tiny problem, where NumPy's own overhead per call dominates."
    return text + ": about the same lead on both."


# %%
tiny_shape, tiny_filters = (2, 8, 8, 3), 4
layer_shape, layer_filters = ((4, 32, 32, 16), 16) if args.quick else ((16, 64, 64, 32), 32)
repeats = 2 if args.quick else 5

x, kernel, bias, grad = problem(tiny_shape, tiny_filters)
t0 = time.perf_counter()
worst = check_agreement(x, kernel, bias, grad)     # the first Numba call also loads (or compiles) kernels
print(f"checked on x {tiny_shape}: largest relative difference from the naive loop: "
      f"NumPy im2col {worst['numpy']:.1e}, Numba im2col {worst['numba']:.1e} (float32; first Numba call "
      f"and check took {time.perf_counter() - t0:.1f} s)")
if max(worst.values()) > 1e-4:
    raise RuntimeError("the three convolutions disagree")

# %%
results = [{"label": f"tiny: x {tiny_shape} -> {tiny_filters} filters", "naive_estimated": False,
            "ms": time_problem(x, kernel, bias, grad, repeats)}]
x, kernel, bias, grad = problem(layer_shape, layer_filters)
ms = time_problem(x, kernel, bias, grad, repeats, naive=False)
ms["naive"] = estimate_naive(layer_shape, layer_filters)
results.append({"label": f"layer: x {layer_shape} -> {layer_filters} filters", "naive_estimated": True,
                "ms": ms})

print(f"\n{'problem':<42}{'naive loop':>14}{'NumPy im2col':>14}{'Numba im2col':>14}{'Numba vs NumPy':>16}")
for r in results:
    m = r["ms"]
    naive = f"{m['naive']:,.1f}" + ("*" if r["naive_estimated"] else " ")
    print(f"{r['label']:<42}{naive:>14}{m['numpy']:>14.2f}{m['numba']:>14.2f}"
          f"{m['numpy'] / m['numba']:>15.1f}x")
layer = results[-1]["ms"]
print(f"(ms, median of {repeats}; * estimated from the loop's cost per output pixel)\n"
      f"On the layer: NumPy im2col takes 1/{layer['naive'] / layer['numpy']:,.0f} of the loop's time, Numba "
      f"im2col 1/{layer['naive'] / layer['numba']:,.0f}.")
print(numba_conclusion(results[0]["ms"], layer))

# %%
path = os.path.join(args.out, "convolution_speed.png")
plot(results, path)
print(f"wrote {path}")
