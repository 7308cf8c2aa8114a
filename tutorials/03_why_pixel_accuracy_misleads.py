"""Tutorial 3: why segmentation is not scored by pixel accuracy.

When most pixels are background, a "model" that predicts background everywhere is right on most pixels,
yet it has found nothing. The intersection over union of each class, IoU_k = n_kk / (t_k + p_k - n_kk)
(n_kk: pixels of class k predicted k; t_k: pixels truly k; p_k: pixels predicted k), is 0 for every class it
missed, so the mean IoU tells the truth. This script scores three predictors on the built-in shapes:

    all background   - predicts class 0 everywhere
    blobby           - the true mask, eroded at the edges (right shapes, sloppy outlines)
    perfect          - the true mask

and draws their scores side by side with a confusion matrix of the all-background predictor.

    python tutorials/03_why_pixel_accuracy_misleads.py
"""
import argparse
import os

import numpy as np
from matplotlib.figure import Figure

from tinyseg import plotting
from tinyseg.datasets import load_shapes
from tinyseg.datasets.shapes import SEGMENTATION_CLASS_NAMES
from tinyseg.metrics import ConfusionMatrix


def erode(masks):
    """Set to background every pixel whose 4 neighbours are not all of its class (a 1-pixel erosion)."""
    out = masks.copy()
    padded = np.pad(masks, ((0, 0), (1, 1), (1, 1)), mode="edge")
    same = np.ones(masks.shape, bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        same &= padded[:, dy:dy + masks.shape[1], dx:dx + masks.shape[2]] == masks
    out[~same] = 0
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="fewer images, for tests")
    parser.add_argument("--out", default=os.path.join("tutorial-output", "03_why_pixel_accuracy_misleads"))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    _, (x, y) = load_shapes(0, 16 if args.tiny else 400, size=48, seed=1)
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

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    width = 0.25
    for i, metric in enumerate(("pixel accuracy", "mean IoU", "mean Dice")):
        ax.bar(np.arange(3) + (i - 1) * width, [s[i] for s in scores.values()], width, label=metric)
    ax.set_xticks(range(3), list(scores))
    ax.set_ylim(0, 1.05)
    ax.legend()
    ax.set_title("the same predictions, three scores")
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "scores.png"), dpi=90)
    cm = ConfusionMatrix(k).update(y, predictors["all background"]).result()["confusion_matrix"]
    plotting.plot_confusion_matrix(cm, SEGMENTATION_CLASS_NAMES, os.path.join(args.out, "confusion_all_background.png"))
    plotting.plot_segmentation_grid(x[:4], y[:4], predictors["blobby"][:4], os.path.join(args.out, "blobby.png"),
                                    SEGMENTATION_CLASS_NAMES)
    print(f"wrote scores.png, confusion_all_background.png, blobby.png to {args.out}/")
    return scores


if __name__ == "__main__":
    main()
