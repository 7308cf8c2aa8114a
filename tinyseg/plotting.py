"""Pictures: what the tutorials and the command line draw (matplotlib, written straight to PNG files).

Figures are made with `matplotlib.figure.Figure`, not pyplot, so nothing needs a screen and no global figure
state leaks between calls.
"""
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

# Background is black; the classes after it get colours that stay apart for most colour-blind readers.
PALETTE = np.array([
    [0, 0, 0], [230, 159, 0], [86, 180, 233], [0, 158, 115], [240, 228, 66], [0, 114, 178],
    [213, 94, 0], [204, 121, 167], [255, 255, 255], [128, 128, 128],
], dtype=np.uint8)


def palette(num_classes):
    """num_classes RGB colours (uint8); beyond the fixed ten, colours from a seeded generator."""
    if num_classes <= len(PALETTE):
        return PALETTE[:num_classes]
    extra = np.random.default_rng(0).integers(0, 256, (num_classes - len(PALETTE), 3), dtype=np.uint8)
    return np.concatenate([PALETTE, extra])


def mask_to_rgb(mask, num_classes):
    """(H, W) class indices -> (H, W, 3) uint8 colours."""
    mask = np.asarray(mask)
    return palette(num_classes)[np.clip(mask, 0, num_classes - 1)]


def overlay(image, mask, num_classes, alpha=0.45):
    """Blend class colours over an image (H, W, C) in [0, 1]; background pixels stay untouched."""
    image = np.asarray(image, dtype=np.float64)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    colours = mask_to_rgb(mask, num_classes) / 255.0
    a = alpha * (np.asarray(mask) > 0)[..., None]
    return np.clip((1 - a) * image + a * colours, 0, 1)


def _show_image(ax, image):
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1)
    elif image.dtype == np.uint8:                    # colours from mask_to_rgb: 0..255
        ax.imshow(image)
    else:
        ax.imshow(np.clip(image, 0, 1))              # float images: 0..1
    ax.set_xticks([])
    ax.set_yticks([])


def plot_segmentation_grid(images, true_masks, pred_masks, path, class_names, max_rows=6):
    """Rows of input | true mask | predicted mask, with a legend of the class colours."""
    k = len(class_names)
    n = min(len(images), max_rows)
    fig = Figure(figsize=(7.5, 2.4 * n + 0.6))
    axes = fig.subplots(n, 3, squeeze=False)
    for i in range(n):
        _show_image(axes[i, 0], images[i])
        _show_image(axes[i, 1], mask_to_rgb(true_masks[i], k))
        _show_image(axes[i, 2], mask_to_rgb(pred_masks[i], k))
    for ax, title in zip(axes[0], ("input", "true mask", "predicted mask")):
        ax.set_title(title)
    colours = palette(k) / 255.0
    fig.legend(handles=[Patch(facecolor=colours[c], edgecolor="gray", label=class_names[c]) for c in range(k)],
               loc="lower center", ncol=min(k, 5), frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=90)
    return path


def plot_history(history, path, title="training"):
    """Loss (left) and every metric (right) per epoch, training and validation."""
    h = history.history if hasattr(history, "history") else history
    metrics = [k for k in h if k != "loss" and not k.startswith("val_")]
    fig = Figure(figsize=(10, 4) if metrics else (5, 4))
    axes = fig.subplots(1, 2 if metrics else 1, squeeze=False)[0]
    epochs = np.arange(1, len(h["loss"]) + 1)
    for ax, keys in zip(axes, (["loss"], metrics)):
        for key in keys:
            ax.plot(epochs, h[key], "o-", label=key)
            if "val_" + key in h:
                ax.plot(epochs, h["val_" + key], "s--", label="val_" + key)
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    axes[0].set_title(f"{title}: loss")
    if metrics:
        axes[1].set_title(f"{title}: metrics")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def plot_confusion_matrix(cm, class_names, path, normalize=True):
    """Heatmap of a (K, K) confusion matrix (rows: true class, columns: predicted), row-normalised."""
    cm = np.asarray(cm, dtype=np.float64)
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    k = len(class_names)
    fig = Figure(figsize=(1.1 * k + 2.5, 1.1 * k + 1.8))
    ax = fig.subplots()
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{shown[i, j]:.2f}" if normalize else f"{int(cm[i, j])}", ha="center", va="center",
                    color="white" if shown[i, j] > 0.6 * shown.max() else "black", fontsize=9)
    ax.set_xticks(range(k), class_names, rotation=30, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix" + (" (row-normalised)" if normalize else ""))
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def plot_image_grid(images, path, titles=None, ncols=8, cmap="viridis", suptitle=None):
    """A grid of 2-D arrays or RGB images (filters, feature maps, samples)."""
    n = len(images)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(1.6 * ncols, 1.6 * nrows + (0.4 if suptitle else 0)))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        img = np.asarray(images[i])
        if img.ndim == 3 and img.shape[-1] == 3:
            lo, hi = img.min(), img.max()
            ax.imshow((img - lo) / (hi - lo + 1e-12))
        else:
            ax.imshow(img.squeeze(), cmap=cmap)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path
