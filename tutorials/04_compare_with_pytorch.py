# %% [markdown]
# # Tutorial 4: train the same network in tinyseg and in PyTorch, and watch the two agree
#
# tinyseg.interop turns a tinyseg model into the equivalent torch.nn.Module with the same weights
# (`to_torch`), and converts the loss and the optimizer. Every convention that differs between the two (NHWC vs
# NCHW, kernel layouts, Keras's 'same' padding, the order Flatten lists features in, batch-norm momentum and
# running variance, Adam's epsilon) is converted in one place: read the table at the top of
# tinyseg/interop/conventions.py.
#
# Here both frameworks train, from the same initial weights on the same batches:
#   * the seed CNN (the Keras CIFAR-10 tutorial's network) on the built-in shapes, classification;
#   * a small U-Net with batch norm on the built-in shapes, segmentation.
# each once in float64 and once in float32. It draws the loss curves of both frameworks and their step-by-step
# relative difference, and prints the largest relative difference of the losses, the outputs (after training),
# the last step's gradients and the weights (batch-norm running statistics included).
#
# What to expect. In float64 the two agree to ~1e-15 at every step: they compute the same function, only in a
# different order. (Adam can lift a weight difference to ~1e-13: it divides a tiny gradient by its own tiny
# size, so rounding noise in a gradient of ~1e-16 becomes a step.) In float32 each step also starts ~1e-7
# apart, but now and then a ReLU input or two pooled values lie within float32 rounding of each other, the two
# frameworks decide that one case differently, a small layer's gradient changes by a few percent, and from then
# on the curves drift apart, by percents after a hundred steps. That is not an error in either: the gray curve
# shows PyTorch's own float32 run drifting from its float64 run in just the same way.
#
#     python tutorials/04_compare_with_pytorch.py                 # both dtypes, about a minute
#     python tutorials/04_compare_with_pytorch.py --dtype float64
#     python tutorials/04_compare_with_pytorch.py --quick         # a few seconds (used by the tests)
#
# Needs PyTorch: pip install -e '.[compare]'
#
# The file is in percent format: `# %%` starts a code cell and `# %% [markdown]` a text cell, so Jupyter
# (with jupytext) and VS Code open it as a notebook.

# %%
import argparse
import os
import sys
import time

import numpy as np
from matplotlib.figure import Figure

import tinyseg
from tinyseg import interop as tp
from tinyseg import optimizers
from tinyseg.datasets.shapes import load_shapes
from tinyseg.layers import Conv2D, Dense, Flatten, MaxPooling2D
from tinyseg.models import Sequential
from tinyseg.models.unet import UNet
from tinyseg.utils import to_categorical

parser = argparse.ArgumentParser(description="Tutorial 4: the same network trained in tinyseg and PyTorch")
parser.add_argument("--quick", "--tiny", action="store_true", help="a few steps on tiny images (for tests)")
parser.add_argument("--dtype", choices=["both", "float32", "float64"], default="both")
parser.add_argument("--steps", type=int, default=None, help="training steps per network")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--threads", type=int, default=1,
                    help="PyTorch threads (default 1: reproducible, and fast on a busy machine)")
parser.add_argument("--out", default=os.path.join("tutorial-output", "04_compare_with_pytorch"))
# In a notebook, sys.argv holds the kernel's own flags: read none of them.
args = parser.parse_args([] if "ipykernel" in sys.modules else None)
try:
    import torch
except ImportError:
    raise SystemExit("this tutorial needs PyTorch: pip install -e '.[compare]'") from None
torch.set_num_threads(args.threads)
os.makedirs(args.out, exist_ok=True)
dtypes = ["float64", "float32"] if args.dtype == "both" else [args.dtype]
steps = args.steps or (5 if args.quick else 100)
batch_size = 4 if args.quick else 16
n_images = 16 if args.quick else 256
cnn_size, unet_size = (24, 16) if args.quick else (32, 32)

# %% [markdown]
# ## The two networks
#
# The seed CNN is tutorial 1's network; its optimizer is Adam with `epsilon_style="torch"`, which puts the
# epsilon where PyTorch does (lr * m_hat / (sqrt(v_hat) + eps)), so the two step formulas are the same. The
# U-Net has batch norm and trains with SGD and momentum 0.9: Keras writes v = mu v - lr g, w += v, PyTorch
# b = mu b + g, w -= lr b, and these are the same steps while lr is constant (v = -lr b).

# %%
def seed_cnn(size, num_classes):
    """The seed program's network (input 32x32x3 in the original; --quick uses smaller images)."""
    model = Sequential()
    model.add(Conv2D(32, (3, 3), activation='relu', input_shape=(size, size, 3)))
    model.add(MaxPooling2D((2, 2)))
    model.add(Conv2D(64, (3, 3), activation='relu'))
    model.add(MaxPooling2D((2, 2)))
    model.add(Conv2D(64, (3, 3), activation='relu'))
    model.add(Flatten())
    model.add(Dense(64, activation='relu'))
    model.add(Dense(num_classes, activation='softmax'))
    model.compile(optimizer=optimizers.Adam(1e-3, epsilon_style="torch"), loss='categorical_crossentropy')
    return model


def small_unet(size, num_classes):
    model = UNet((size, size, 3), num_classes=num_classes, depth=2, base_filters=8, batch_norm=True)
    model.compile(optimizer=optimizers.SGD(0.05, momentum=0.9), loss='sparse_categorical_crossentropy')
    return model


# %% [markdown]
# ## One batch at a time, in both frameworks
#
# `to_torch` builds the PyTorch module with the same weights (NCHW in, logits out); `to_torch_optimizer` and
# `to_torch_loss` convert the optimizer and the loss. Each step feeds the same batch to both. The differences
# are relative to the size of what is compared: |a - b| / |b| for the losses, and for the outputs, gradients
# and weights the relative error of each array (tp.relative_error), the largest over the arrays.

# %%
def train_both(model, x, y, steps, batch_size, dtype):
    """Train `model` with train_on_batch and its PyTorch twin with a plain torch loop, batch for batch."""
    import torch

    module = tp.to_torch(model)                    # same weights; NCHW in, logits out
    torch_opt = tp.to_torch_optimizer(model.optimizer, module.parameters())   # SGD / Adam, same settings
    torch_loss = tp.to_torch_loss(model.loss, dtype)                           # nn.CrossEntropyLoss, ...
    ours, theirs = [], []
    seconds = {"tinyseg": 0.0, "PyTorch": 0.0}
    for step in range(steps):
        start = (step * batch_size) % (len(x) - batch_size + 1)
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]

        t0 = time.perf_counter()
        ours.append(model.train_on_batch(xb, yb)[0])                    # tinyseg: one call
        t1 = time.perf_counter()
        torch_opt.zero_grad()                                           # PyTorch: the usual four lines
        loss = torch_loss(module(tp.to_tensor(tp.nhwc_to_nchw(xb))), tp.targets_to_torch(model.loss, yb, dtype))
        loss.backward()
        torch_opt.step()
        theirs.append(loss.item())
        t2 = time.perf_counter()
        seconds["tinyseg"] += t1 - t0
        seconds["PyTorch"] += t2 - t1

    # the largest differences, each relative to the size of what is compared
    differences = {
        "loss": max(abs(a - b) / abs(b) for a, b in zip(ours, theirs)),
        "gradients": max(tp.gradient_differences(model, module).values()),      # of the last step
        "weights": max(tp.weight_differences(model, module).values()),          # running statistics too
    }
    with torch.no_grad():
        module.eval()                                                   # tinyseg's training=False
        outputs = module(tp.to_tensor(tp.nhwc_to_nchw(x[:batch_size])))
    differences["outputs"] = tp.relative_error(tp.nhwc_to_nchw(model.call(x[:batch_size], logits=True)), outputs)
    return np.array(ours), np.array(theirs), differences, seconds


# %% [markdown]
# ## The picture
#
# Top: the loss curves of both frameworks, step by step (in float64 they lie on top of each other). Bottom:
# their relative difference |a - b| / |b| on a log scale, in each dtype, next to the gray curve of PyTorch's
# own float32 run against its float64 run: float32 drifts from float64 in PyTorch as it does in tinyseg.

# %%
def plot(results, path):
    """Top: the loss curves of both frameworks. Bottom: how far apart they are, step by step, in each dtype,
    next to how far PyTorch's own float32 run is from its float64 run."""
    titles = list(results)
    fig = Figure(figsize=(5.5 * len(titles), 7.5))
    axes = fig.subplots(2, len(titles), squeeze=False)
    for col, title in enumerate(titles):
        runs = results[title]
        top, bottom = axes[0, col], axes[1, col]
        for dtype, (ours, theirs, _, _) in runs.items():
            steps = np.arange(1, len(ours) + 1)
            top.plot(steps, ours, "-", lw=2.5, alpha=0.5, label=f"tinyseg {dtype}")
            top.plot(steps, theirs, "--", lw=1, label=f"PyTorch {dtype}")
            bottom.semilogy(steps, np.maximum(gap(ours, theirs), 1e-17), ".-", label=f"tinyseg vs PyTorch, {dtype}")
        if len(runs) == 2:
            torch32, torch64 = runs["float32"][1], runs["float64"][1]
            bottom.semilogy(steps, np.maximum(gap(torch32, torch64), 1e-17), ":", color="gray",
                            label="PyTorch float32 vs PyTorch float64")
        top.set_title(f"{title}: training loss")
        bottom.set_title(f"{title}: relative difference of the losses")
        for ax in (top, bottom):
            ax.set_xlabel("step")
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def gap(a, b):
    """|a - b| / |b| per step."""
    return np.abs(np.asarray(a) - np.asarray(b)) / np.abs(np.asarray(b))


# %% [markdown]
# ## Run both, in each dtype
#
# `set_floatx` decides the dtype of every layer built after it; the random seed is reset before each pair
# of networks, so both dtypes start from the same weights.

# %%
(x_cls, labels), _ = load_shapes(n_images, 1, size=cnn_size, seed=args.seed, task="classification")
(x_seg, masks), _ = load_shapes(n_images, 1, size=unet_size, seed=args.seed)
results = {"seed CNN": {}, "U-Net": {}}
old = tinyseg.floatx()
for dtype in dtypes:
    tinyseg.set_floatx(dtype)               # every layer built from here on computes in this dtype
    tinyseg.set_random_seed(args.seed)      # the same initial weights in both dtypes
    results["seed CNN"][dtype] = train_both(seed_cnn(cnn_size, 3), x_cls.astype(dtype),
                                            to_categorical(labels, 3, dtype=dtype), steps, batch_size, dtype)
    results["U-Net"][dtype] = train_both(small_unet(unet_size, 4), x_seg.astype(dtype), masks, steps,
                                         batch_size, dtype)
tinyseg.set_floatx(old)

# %%
path = plot(results, os.path.join(args.out, "loss_curves.png"))
print(f"{steps} steps of batch {batch_size}, the same initial weights and batches in both frameworks:")
for title, runs in results.items():
    for dtype, (ours, _, diff, seconds) in runs.items():
        print(f"{title} {dtype}: loss {ours[0]:.4f} -> {ours[-1]:.4f}; time tinyseg {seconds['tinyseg']:.2f}s, "
              f"PyTorch {seconds['PyTorch']:.2f}s")
        print(f"{title} {dtype}: largest relative difference  loss {diff['loss']:.1e}  "
              f"outputs {diff['outputs']:.1e}  gradients {diff['gradients']:.1e}  weights {diff['weights']:.1e}")
    if len(runs) == 2:
        print(f"{title}: PyTorch float32 vs PyTorch float64, largest relative difference of the losses "
              f"{gap(runs['float32'][1], runs['float64'][1]).max():.1e}")
print(f"wrote {path}")
