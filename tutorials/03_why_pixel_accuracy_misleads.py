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
# (confusion_all_background.png) and the blobby masks next to the true ones (blobby.png).
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

from tinyseg import plotting
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
