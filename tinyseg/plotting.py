"""Pictures: what the tutorials and the command line draw (matplotlib, written straight to PNG files).

Figures are made with `matplotlib.figure.Figure`, not pyplot, so nothing needs a screen and no global figure
state leaks between calls. Each `plot_*` function that a test reads back has a `*_figure` twin that returns
the Figure unsaved; `save_figure` writes a Figure to a temporary file and renames it, so a crash never
leaves half a PNG.
"""
import os

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from .files import replaced_whole

# Background is black; the classes after it get colours that stay apart for most colour-blind readers.
PALETTE = np.array([
    [0, 0, 0], [230, 159, 0], [86, 180, 233], [0, 158, 115], [240, 228, 66], [0, 114, 178],
    [213, 94, 0], [204, 121, 167], [255, 255, 255], [128, 128, 128],
], dtype=np.uint8)


VOID_COLOUR = np.array([40, 40, 40], dtype=np.uint8)      # ignored (void) pixels when no palette names a colour
ERROR_COLOUR = np.array([255, 0, 0], dtype=np.uint8)

# Label maps without a data set's own palette are drawn without hue: a grey level and a hatch per class.
# Why: the built-in shapes take their colours uniformly from the whole RGB cube (datasets/shapes.py,
# _pick_colors), so every fill colour a palette could use is some shape's own colour, and an orange triangle
# would sit next to "orange = circle". A hatch is a code no shape carries. Background is white, unhatched.
HATCHES = ["", "//", "..", "xx", "\\\\", "++", "oo", "--", "||", "**"]


def pattern_greys(num_classes):
    """(num_classes,) grey levels of the hatched label maps: 1.0 (white) for the background, then evenly
    from 0.8 down to 0.45 for classes 1..K-1, as far apart as K allows."""
    if num_classes <= 1:
        return np.ones(max(num_classes, 0))
    return np.concatenate([[1.0], np.linspace(0.8, 0.45, num_classes - 1)])


def save_figure(fig, path, dpi=90):
    """Write `fig` as a PNG to `path` whole or not at all (tinyseg.files.replaced_whole)."""
    with replaced_whole(path, prefix=".tmp-", suffix=".png") as tmp:
        with open(tmp, "wb") as f:
            fig.savefig(f, dpi=dpi, format="png")
    return os.fspath(path)


def palette(num_classes, colours=None):
    """num_classes RGB colours (uint8): a data set's own `colours` ((K, 3), e.g. CamVid's) if given, else the
    fixed ten above and, beyond them, colours from a seeded generator."""
    if colours is not None:
        colours = np.asarray(colours, dtype=np.uint8)
        if len(colours) < num_classes:
            raise ValueError(f"palette: {len(colours)} colours for {num_classes} classes")
        return colours
    if num_classes <= len(PALETTE):
        return PALETTE[:num_classes]
    extra = np.random.default_rng(0).integers(0, 256, (num_classes - len(PALETTE), 3), dtype=np.uint8)
    return np.concatenate([PALETTE, extra])


def mask_to_rgb(mask, num_classes, colours=None, ignore_index=None):
    """(H, W) class indices -> (H, W, 3) uint8 colours, from `colours` ((K', 3), e.g. a data set's palette,
    whose rows may go past num_classes, as CamVid's void row 11 does) or the default palette. Pixels equal
    to ignore_index get their palette row if it has one, else VOID_COLOUR."""
    mask = np.asarray(mask)
    table = palette(num_classes, colours)
    rgb = table[np.clip(mask, 0, len(table) - 1)]
    if ignore_index is not None and not 0 <= ignore_index < len(table):
        rgb[mask == ignore_index] = VOID_COLOUR
    return rgb


def overlay(image, mask, num_classes, alpha=0.45, colours=None, background=0):
    """Blend class colours over an image (H, W, C) in [0, 1] (or uint8); pixels of class `background`
    stay untouched (None: every pixel is coloured, as for street scenes, where no class is background)."""
    image = np.asarray(image, dtype=np.float64)
    if np.asarray(image).max() > 1.0:
        image = image / 255.0
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    colours = mask_to_rgb(mask, num_classes, colours) / 255.0
    shown = np.ones(np.shape(mask), bool) if background is None else (np.asarray(mask) != background)
    a = alpha * shown[..., None]
    return np.clip((1 - a) * image + a * colours, 0, 1)


def error_map(image, true_mask, pred_mask, ignore_index=None):
    """(H, W, 3) uint8: the image in dim gray where the prediction is right, red where it is wrong, and
    VOID_COLOUR where the truth is ignore_index (no verdict)."""
    image = np.asarray(image, dtype=np.float64)
    if image.max() > 1.0:
        image = image / 255.0
    gray = image.mean(axis=-1) if image.ndim == 3 else image
    out = np.repeat((40 + 100 * gray)[..., None], 3, axis=-1).astype(np.uint8)
    wrong = np.asarray(true_mask) != np.asarray(pred_mask)
    if ignore_index is not None:
        void = np.asarray(true_mask) == ignore_index
        wrong &= ~void
        out[void] = VOID_COLOUR // 2
    out[wrong] = ERROR_COLOUR
    return out


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


def _show_pattern_mask(ax, mask, num_classes, ignore_index=None):
    """Draw a class-index mask (H, W) without hue: class c in grey pattern_greys(K)[c] with hatch HATCHES[c]
    (background white, unhatched), each region outlined in black; ignored pixels in VOID_COLOUR, unhatched."""
    mask = np.asarray(mask)
    greys = pattern_greys(num_classes)
    shown = greys[np.clip(mask, 0, num_classes - 1)]
    if ignore_index is not None:
        shown = np.where(mask == ignore_index, VOID_COLOUR[0] / 255.0, shown)
    ax.imshow(np.repeat(shown[..., None], 3, axis=-1), interpolation="nearest")
    h, w = mask.shape
    # contourf on a padded 0/1 image, each pixel repeated f x f times: the 0.5 level runs half-way between
    # sub-pixel centres, so a region's outline follows its pixels' edges (a lone pixel stays a square), even
    # at the image border; f shrinks for large masks to bound the outline's length
    f = max(1, min(4, 256 // max(h, w)))
    ys = (np.arange(-1, h * f + 1) + 0.5) / f - 0.5
    xs = (np.arange(-1, w * f + 1) + 0.5) / f - 0.5
    block = np.ones((f, f))
    for c in range(1, num_classes):
        region = np.pad(np.kron((mask == c) & (mask != ignore_index), block), 1)
        if region.any():
            ax.contourf(xs, ys, region, levels=[0.5, 1.5], colors="none", hatches=[HATCHES[c]])
            ax.contour(xs, ys, region, levels=[0.5], colors="black", linewidths=0.6)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)


def segmentation_grid_figure(images, true_masks, pred_masks, class_names, max_rows=6, colours=None,
                             ignore_index=None, errors=False, void_name="void"):
    """The Figure of plot_segmentation_grid (unsaved): rows of input | true mask | predicted mask (| errors)
    and a legend of the classes.

    With a data set's palette (`colours`, (K', 3) uint8, e.g. CamVid's) the masks are filled in its colours.
    Without one (and at most len(HATCHES) classes) they are drawn without hue: a grey level and a hatch per
    class (see HATCHES), so no class code can be mistaken for a colour in the input image.
    """
    k = len(class_names)
    n = min(len(images), max_rows)
    columns = 4 if errors else 3
    patterns = colours is None and k <= len(HATCHES)
    handles_count = k + (ignore_index is not None)
    ncol = min(handles_count, 6 if columns == 4 else 5)
    legend_rows = -(-handles_count // ncol)
    height, width = np.asarray(images[0]).shape[:2]
    panel = 2.5 * max(1.0, width / height)                      # inches per panel, wider for wide images
    fig_height = 2.5 * n + 0.35 * legend_rows + 0.5
    fig = Figure(figsize=(panel * columns, fig_height))
    axes = fig.subplots(n, columns, squeeze=False)
    for i in range(n):
        _show_image(axes[i, 0], images[i])
        pred = np.asarray(pred_masks[i])
        for ax, mask in ((axes[i, 1], true_masks[i]), (axes[i, 2], pred)):
            if patterns:
                _show_pattern_mask(ax, mask, k, ignore_index)
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                _show_image(ax, mask_to_rgb(mask, k, colours, ignore_index))
        if errors:
            _show_image(axes[i, 3], error_map(images[i], true_masks[i], pred, ignore_index))
    titles = ("input", "true mask", "predicted mask", "errors (red)")
    for ax, title in zip(axes[0], titles):
        ax.set_title(title)
    if patterns:
        greys = pattern_greys(k)
        handles = [Patch(facecolor=(greys[c],) * 3, edgecolor="black", hatch=HATCHES[c], label=class_names[c])
                   for c in range(k)]
    else:
        table = palette(k, colours) / 255.0
        handles = [Patch(facecolor=table[c], edgecolor="gray", label=class_names[c]) for c in range(k)]
    if ignore_index is not None:
        if patterns or not 0 <= ignore_index < len(palette(k, colours)):
            void = VOID_COLOUR / 255.0
        else:
            void = palette(k, colours)[ignore_index] / 255.0
        handles.append(Patch(facecolor=void, edgecolor="gray", label=f"{void_name} (ignored)"))
    fig.legend(handles=handles, loc="lower center", ncol=ncol, frameon=False, handleheight=1.6, handlelength=2.4)
    fig.tight_layout(rect=(0, (0.35 * legend_rows + 0.15) / fig_height, 1, 1))
    return fig


def plot_segmentation_grid(images, true_masks, pred_masks, path, class_names, max_rows=6, colours=None,
                           ignore_index=None, errors=False, void_name="void"):
    """Rows of input | true mask | predicted mask (| errors), with a legend of the classes; saved to `path`.

    colours: the data set's palette ((K', 3) uint8); without it the masks are drawn in grey levels and hatches
    (segmentation_grid_figure says why). ignore_index: the void label, drawn in its palette colour (or dark
    gray) and never counted as an error. errors=True adds a fourth column: wrong pixels red on the dimmed
    image (error_map). Images may be uint8 or floats in [0, 1].
    """
    fig = segmentation_grid_figure(images, true_masks, pred_masks, class_names, max_rows, colours, ignore_index,
                                   errors, void_name)
    return save_figure(fig, path)


def plot_per_class_iou(iou, class_names, path, colours=None, title="per-class IoU", mean=None):
    """A horizontal bar per class: its IoU, in its palette colour, with the value written beside it, and the
    mean IoU as a dashed line. NaN (class in neither truth nor prediction) is drawn as no bar, marked '-'."""
    iou = np.asarray(iou, dtype=np.float64)
    k = len(class_names)
    if len(iou) != k:
        raise ValueError(f"plot_per_class_iou: {len(iou)} values for {k} class names")
    table = palette(k, colours)[:k] / 255.0
    fig = Figure(figsize=(6.5, 0.42 * k + 1.4))
    ax = fig.subplots()
    rows = np.arange(k)[::-1]                                   # first class on top
    ax.barh(rows, np.nan_to_num(iou), color=table, edgecolor="black", linewidth=0.5)
    for r, v in zip(rows, iou):
        ax.text((0 if np.isnan(v) else v) + 0.01, r, "-" if np.isnan(v) else f"{v:.3f}", va="center", fontsize=9)
    mean = np.nanmean(iou) if mean is None and not np.all(np.isnan(iou)) else mean
    if mean is not None:
        ax.axvline(mean, color="black", linestyle="--", linewidth=1)
        ax.text(mean, k - 0.4, f" mean {mean:.3f}", fontsize=9, va="bottom")
    ax.set_yticks(rows, class_names)
    ax.set_xlim(0, 1.08)
    ax.set_xlabel("IoU = TP / (TP + FP + FN)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def history_figure(history, title="training"):
    """The Figure of plot_history (unsaved): loss (left) and every metric (right) against the epoch, training
    and validation; the epoch axis has integer ticks only (there is no epoch 1.5)."""
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
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if len(epochs) == 1:                     # one point: matplotlib would centre it in [0.95, 1.05]
            ax.set_xlim(0.5, 1.5)
        ax.legend()
        ax.grid(alpha=0.3)
    axes[0].set_title(f"{title}: loss")
    if metrics:
        axes[1].set_title(f"{title}: metrics")
    fig.tight_layout()
    return fig


def plot_history(history, path, title="training"):
    """Loss (left) and every metric (right) per epoch, training and validation, saved to `path`."""
    return save_figure(history_figure(history, title), path)


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
