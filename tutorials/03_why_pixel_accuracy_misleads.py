# %% [markdown]
# # Tutorial 3: why segmentation is not scored by pixel accuracy
#
# When most pixels are background, a "model" that predicts background everywhere is right on most pixels,
# yet it has found nothing. This script scores three predictors on the built-in shapes:
#
#     all background   - predicts class 0 everywhere
#     blobby           - the true mask, eroded at the edges (right shapes, sloppy outlines)
#     perfect          - the true mask
#
# and draws their scores side by side (scores.png), the confusion matrix of the all-background predictor
# (confusion_all_background.png) and the blobby masks next to the true ones (blobby.png). Then it looks at
# one class on one image, pixel by pixel: each pixel is a true positive, false positive, false negative or
# true negative, drawn in four colours (outcomes.png), and accuracy, precision, recall, IoU and Dice are
# counted off that map.
#
#     python tutorials/03_why_pixel_accuracy_misleads.py
#     python tutorials/03_why_pixel_accuracy_misleads.py --quick    # fewer images (the tests run this)
#
# The file is in percent format: `# %%` starts a code cell and `# %% [markdown]` a text cell, so Jupyter
# (with jupytext) and VS Code open it as a notebook.

# %%
import argparse
import os
import sys

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from tinyseg import metrics, plotting
from tinyseg.datasets import load_shapes
from tinyseg.datasets.shapes import SEGMENTATION_CLASS_NAMES
from tinyseg.metrics import ConfusionMatrix

parser = argparse.ArgumentParser(description="Tutorial 3: why segmentation is not scored by pixel accuracy")
parser.add_argument("--quick", "--tiny", action="store_true", help="fewer images, for tests")
parser.add_argument("--out", default=os.path.join("tutorial-output", "03_why_pixel_accuracy_misleads"))
# In a notebook, sys.argv holds the kernel's own flags: read none of them.
args = parser.parse_args([] if "ipykernel" in sys.modules else None)
os.makedirs(args.out, exist_ok=True)

# %% [markdown]
# ## Three scores from one confusion matrix
#
# Count n_jk, the pixels of true class j predicted as class k. With t_k = sum_j n_kj the pixels truly k and
# p_k = sum_j n_jk the pixels predicted k:
#
#     pixel accuracy = sum_k n_kk / sum_jk n_jk
#     IoU_k          = n_kk / (t_k + p_k - n_kk)          (intersection over union)
#     Dice_k         = 2 n_kk / (t_k + p_k)
#
# and the mean IoU and mean Dice average over the classes. A class that is never found has IoU_k = 0, however
# few of its pixels there are, so the mean IoU tells the truth where the pixel accuracy does not.

# %%
def erode(masks):
    """Set to background every pixel whose 4 neighbours are not all of its class (a 1-pixel erosion)."""
    out = masks.copy()
    padded = np.pad(masks, ((0, 0), (1, 1), (1, 1)), mode="edge")
    same = np.ones(masks.shape, bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        same &= padded[:, dy:dy + masks.shape[1], dx:dx + masks.shape[2]] == masks
    out[~same] = 0
    return out


_, (x, y) = load_shapes(0, 16 if args.quick else 400, size=48, seed=1)
k = len(SEGMENTATION_CLASS_NAMES)
predictors = {"all background": np.zeros_like(y), "blobby": erode(y), "perfect": y}
scores = {}
print(f"{'predictor':<16}{'pixel accuracy':>16}{'mean IoU':>10}{'mean Dice':>11}")
for name, pred in predictors.items():
    r = ConfusionMatrix(k).update(y, pred).result()
    scores[name] = (r["pixel_accuracy"], r["mean_iou"], r["mean_dice"])
    print(f"{name:<16}{r['pixel_accuracy']:>16.3f}{r['mean_iou']:>10.3f}{r['mean_dice']:>11.3f}")
background = np.mean(y == 0)
print(f"{background:.0%} of the pixels are background: that is the all-background predictor's accuracy")

# %% [markdown]
# ## The scores side by side
#
# One group of bars per predictor, one bar per score, each bar labelled with its value. The all-background
# predictor's pixel accuracy is about the share of background pixels, while its mean IoU is a quarter of
# the background's IoU (the three shape classes score 0). The blobby masks lose only a ring of pixels, yet
# their IoU drops more than their accuracy: a thin ring is a large part of a small shape. The legend sits
# above the axes, so it hides no bar.

# %%
METRICS = ("pixel accuracy", "mean IoU", "mean Dice")


def scores_figure(scores):
    """Grouped bars (one group per predictor, one bar per metric of METRICS), each labelled with its value,
    the legend above the axes; returns the Figure."""
    fig = Figure(figsize=(7, 4.4))
    ax = fig.subplots()
    width = 0.26
    for i, metric in enumerate(METRICS):
        bars = ax.bar(np.arange(len(scores)) + (i - 1) * width, [s[i] for s in scores.values()], width,
                      label=metric)
        ax.bar_label(bars, fmt="%.2f", padding=2, fontsize=8)
    ax.set_xticks(range(len(scores)), list(scores))
    ax.set_ylim(0, 1.12)                                  # room for the labels of bars that reach 1
    ax.set_ylabel("score")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(METRICS), frameon=False)
    ax.set_title("the same predictions, three scores", pad=28)
    fig.tight_layout()
    return fig


scores_fig = scores_figure(scores)
plotting.save_figure(scores_fig, os.path.join(args.out, "scores.png"))

# %% [markdown]
# ## Where the all-background predictor goes wrong, and what blobby masks look like
#
# Its confusion matrix has one full column: every pixel, of every class, is predicted as background. The
# blobby picture shows input | true mask | blobby mask.

# %%
cm = ConfusionMatrix(k).update(y, predictors["all background"]).result()["confusion_matrix"]
plotting.plot_confusion_matrix(cm, SEGMENTATION_CLASS_NAMES, os.path.join(args.out, "confusion_all_background.png"))
plotting.plot_segmentation_grid(x[:4], y[:4], predictors["blobby"][:4], os.path.join(args.out, "blobby.png"),
                                SEGMENTATION_CLASS_NAMES)
print(f"wrote scores.png, confusion_all_background.png, blobby.png to {args.out}/")

# %% [markdown]
# ## One class, pixel by pixel: TP, FP, FN, TN
#
# Every score above is a ratio of four counts. Fix one class c and ask, of each pixel, two questions: is it
# truly c? was it predicted c? The four answers are
#
#     TP  true positive    truly c, predicted c          (found)
#     FP  false positive   not c,   predicted c          (a false alarm)
#     FN  false negative   truly c, predicted otherwise  (missed)
#     TN  true negative    not c,   predicted otherwise  (rightly left out)
#
# and, with N = TP + FP + FN + TN the pixels of the image,
#
#     accuracy  = (TP + TN) / N             how many pixels got the right yes/no about c
#     precision = TP / (TP + FP)            of the pixels called c, the share that are c
#     recall    = TP / (TP + FN)            of the pixels that are c, the share found
#     IoU       = TP / (TP + FP + FN)       overlap over union of the true and predicted regions
#     Dice      = 2 TP / (2 TP + FP + FN)
#
# The prediction here is the blobby masks moved 2 pixels right and 1 down (shapes a little too small, a
# little off), so all four outcomes occur, and the false negatives (the eroded ring, the side the shape
# moved away from) outnumber the false alarms: recall is lower than precision. TN does not appear in
# precision, recall, IoU or Dice: a small object on a large background has a huge TN, which is why its
# accuracy stays high whatever the prediction does. The code of a pixel is 2 * [truly c] + [predicted c]:
# 0 TN, 1 FP, 2 FN, 3 TP.

# %%
OUTCOMES = ("TN", "FP", "FN", "TP")                          # in the order of their codes 0..3
OUTCOME_COLOURS = np.array([[225, 225, 225], [230, 159, 0], [86, 180, 233], [0, 158, 115]], np.uint8)


def outcome_map(y_true, y_pred, c):
    """(H, W) codes 0..3 (TN, FP, FN, TP) of class c: 2 * [truth is c] + [prediction is c]."""
    return 2 * (np.asarray(y_true) == c).astype(np.int64) + (np.asarray(y_pred) == c)


def scores_from_counts(tp, fp, fn, tn):
    """The five scores of one class from its four counts."""
    return {"accuracy": (tp + tn) / (tp + fp + fn + tn), "precision": tp / (tp + fp), "recall": tp / (tp + fn),
            "IoU": tp / (tp + fp + fn), "Dice": 2 * tp / (2 * tp + fp + fn)}


def outcomes_figure(image, truth, pred, codes, c, class_name, scores):
    """input | truth of c | prediction of c | the four-colour map (counts in the legend) | the scores."""
    fig = Figure(figsize=(13, 3.6))
    axes = fig.subplots(1, 5, gridspec_kw={"width_ratios": [1, 1, 1, 1, 1.1]})
    counts = np.bincount(codes.ravel(), minlength=4)
    panels = (("input", np.clip(image, 0, 1)), (f"truly {class_name}", np.repeat((truth == c)[..., None], 3, -1)),
              (f"predicted {class_name}", np.repeat((pred == c)[..., None], 3, -1)),
              ("TP / FP / FN / TN", OUTCOME_COLOURS[codes]))
    for ax, (title, shown) in zip(axes, panels):
        ax.imshow(shown.astype(np.float64) if shown.dtype == bool else shown, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Patch(facecolor=OUTCOME_COLOURS[i] / 255, edgecolor="gray", label=f"{OUTCOMES[i]} {counts[i]}")
               for i in (3, 1, 2, 0)]
    axes[3].legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, frameon=False,
                   fontsize=8)
    tp, fp, fn, tn = counts[3], counts[1], counts[2], counts[0]
    rows = (("accuracy", "(TP+TN)/N", tp + tn, tp + fp + fn + tn), ("precision", "TP/(TP+FP)", tp, tp + fp),
            ("recall", "TP/(TP+FN)", tp, tp + fn), ("IoU", "TP/(TP+FP+FN)", tp, tp + fp + fn),
            ("Dice", "2TP/(2TP+FP+FN)", 2 * tp, 2 * tp + fp + fn))
    lines = [f"{name:<9} = {formula}\n{'':<9} = {num}/{den} = {scores[name]:.3f}" for name, formula, num, den in rows]
    axes[4].axis("off")
    axes[4].text(0, 0.5, "\n".join(lines), family="monospace", fontsize=8.5, va="center", linespacing=1.3)
    fig.suptitle(f"class '{class_name}' on one image: the blobby prediction, shifted by (1, 2) pixels",
                 fontsize=11)
    fig.tight_layout()
    return fig


c = list(SEGMENTATION_CLASS_NAMES).index("circle")
n = int(np.argmax((y == c).sum(axis=(1, 2))))               # the image with the most circle pixels
shifted = np.roll(predictors["blobby"], (1, 2), axis=(1, 2))
codes = outcome_map(y[n], shifted[n], c)
tn, fp, fn, tp = (int(v) for v in np.bincount(codes.ravel(), minlength=4))
outcome_scores = scores_from_counts(tp, fp, fn, tn)
print(f"class {SEGMENTATION_CLASS_NAMES[c]} on image {n}, blobby masks shifted by (1, 2): "
      f"TP {tp}, FP {fp}, FN {fn}, TN {tn}")
for name, value in outcome_scores.items():
    print(f"  {name:<9} {value:.3f}")
# the same five numbers from tinyseg.metrics, which counts them off the K-class confusion matrix
cm_n = ConfusionMatrix(k).update(y[n:n + 1], shifted[n:n + 1]).result()["confusion_matrix"]
library = {"accuracy": metrics.accuracy(cm_n, average=None)[c], "precision": metrics.precision(cm_n)[c],
           "recall": metrics.recall(cm_n)[c], "IoU": metrics.iou(cm_n)[c], "Dice": metrics.dice(cm_n)[c]}
gap = max(abs(outcome_scores[name] - library[name]) for name in library)
assert gap < 1e-12, (outcome_scores, library)
print(f"the same as tinyseg.metrics' accuracy(average=None), precision, recall, iou, dice (largest gap {gap:.1e});")
print(f"accuracy {outcome_scores['accuracy']:.2f} against IoU {outcome_scores['IoU']:.2f}: the {tn} true "
      f"negatives ({tn / codes.size:.0%} of the image) lift the accuracy and count in no other score")
side = "recall below precision" if fn > fp else "precision below recall" if fp > fn else "precision = recall"
print(f"{fn} missed against {fp} false alarms: {side} ({outcome_scores['recall']:.2f} vs "
      f"{outcome_scores['precision']:.2f})")
outcome_fig = outcomes_figure(x[n], y[n], shifted[n], codes, c, SEGMENTATION_CLASS_NAMES[c], outcome_scores)
plotting.save_figure(outcome_fig, os.path.join(args.out, "outcomes.png"))
print(f"wrote outcomes.png to {args.out}/")
