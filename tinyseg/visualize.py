"""Pictures of a network's insides: saliency and Grad-CAM maps, feature maps, first-layer filters, and the
distributions of every layer's activations and gradients (at one moment, or over training).

    plot_explanation(image, path, region, saliency, gradient, cams)   the maps of tinyseg.explain, side by side
    robust_limit(values, percentile)                                 its colour limit: a percentile of |values|
    plot_feature_maps(image, maps, path)                             one layer's F maps, one colour scale
    plot_filters(kernel, path)                                       first-layer kernels as RGB patches
    filter_channels_figure(kernel)                                   ... or one signed map per input channel
    ActivationHistograms(x, y, every)                                a Callback: distributions during fit
    plot_activation_histograms(recorder, path)                       ... drawn per layer, early to late
    plot_layer_statistics(runs, path)                                several models compared layer by layer
                                                                     (the weight-initialisation lesson)

Why the distributions matter (the lesson of Saito's "Deep Learning from Scratch", ch. 6, on tinyseg's layers):
a layer computes a = relu(W x), each output summing fan_in = KH*KW*C products. With weights of standard
deviation sigma, the variance of a pre-activation is about fan_in * sigma^2 * E[x^2], so each layer multiplies
the activations' scale by about sqrt(fan_in * sigma^2 / 2) (the 1/2: ReLU keeps half the variance):

    sigma^2 = 2 / fan_in (He)        factor 1: the scale survives any depth
    glorot, fan_in = fan_out         factor sqrt(1/2) = 0.71 per layer: a slow fade
    glorot * 0.01                    factor 0.007 per layer: activations collapse to 0 within a few layers
    glorot * 10                      factor 7 per layer: activations explode

The gradients flow back through the transposed weights and meet the same factor per layer, so they vanish or
explode with the activations, and the layers far from the loss stop learning (or learn wildly).

Figures are made with `matplotlib.figure.Figure`, not pyplot, and written straight to PNG (as tinyseg.plotting).
"""
import numpy as np
from matplotlib import cm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from . import explain
from .callbacks import Callback


def _no_ticks(ax):
    ax.set_xticks([])
    ax.set_yticks([])


def _gray_rgb(image):
    """An (H, W, C) float image as (H, W, 3) in [0, 1] for drawing (one channel repeated; more than 3: the
    first three)."""
    image = np.clip(np.asarray(image, dtype=np.float64), 0, 1)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return image[..., :3]


def _show_region(ax, region):
    if region is not None and np.asarray(region).any():
        ax.contour(np.asarray(region, dtype=float), levels=[0.5], colors=["cyan"], linewidths=1.2)


# --- saliency and Grad-CAM ---------------------------------------------------------------------------------
def robust_limit(values, percentile=99.0):
    """The colour limit of a map of gradients: the `percentile`-th percentile of |values| (> 0).

    Why not the maximum: input gradients are heavy-tailed, and one pixel a hundred times larger than the rest
    would make every other pixel the colour of 0. A percentile puts the limit where most of the map's
    structure is; the top (100 - percentile)% of pixels are drawn in the end colour.
    """
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile: expected a number in (0, 100], got {percentile!r}")
    magnitude = np.abs(np.asarray(values, dtype=np.float64))
    top = float(np.percentile(magnitude, percentile)) if magnitude.size else 0.0
    if top <= 0:                                  # a map that is 0 almost everywhere: fall back to its maximum
        top = float(magnitude.max()) if magnitude.size else 0.0
    return max(top, 1e-300)


def plot_explanation(image, path, region=None, saliency=None, gradient=None, cams=None, title=None,
                     percentile=99.0):
    """explanation_figure, saved to `path`."""
    fig = explanation_figure(image, region, saliency, gradient, cams, title, percentile)
    fig.savefig(path, dpi=90)
    return path


def _show_map(ax, kind, data, image, percentile):
    """Draw one map of explanation_figure; returns its image and which ends of its colour bar are clipped."""
    if kind == "cam":
        ax.imshow(_gray_rgb(image).mean(axis=-1), cmap="gray", vmin=0, vmax=1)
        return ax.imshow(data, cmap="jet", vmin=0, vmax=1, alpha=0.5), "neither"
    top = robust_limit(data, percentile)
    clipped = np.abs(data).max() > top
    if kind == "saliency":
        return ax.imshow(data, cmap="magma", vmin=0, vmax=top), "max" if clipped else "neither"
    return ax.imshow(data, cmap="RdBu_r", vmin=-top, vmax=top), "both" if clipped else "neither"


def explanation_figure(image, region=None, saliency=None, gradient=None, cams=None, title=None, percentile=99.0):
    """One row: the image (the region outlined), the saliency map, the signed gradient, and Grad-CAM maps.

    image (H, W, C) in [0, 1]; region (H, W) bool (the pixels whose score was differentiated) or None;
    saliency (H, W) = max_c |dS/dx|; gradient (H, W, C) = dS/dx, drawn summed over the channels with a
    colour scale symmetric about 0 (red: brightening the pixel raises S, blue: lowers it); cams
    {label: (H, W) map in [0, 1]}, each drawn over the image. Every panel has its colour bar below it.

    percentile: the saliency's colour scale ends at that percentile of its values, and the signed gradient's at
    +-that percentile of |dS/dx| (robust_limit), so one outlier pixel cannot wash the rest out to black or
    white; the few brighter pixels are drawn in the end colour, and the colour bar's pointed end says so.
    100 gives the plain maximum.
    """
    panels = [("input" + (" (region outlined)" if region is not None else ""), "image", image)]
    if saliency is not None:
        panels.append(("saliency max_c |dS/dx|", "saliency", saliency))
    if gradient is not None:
        panels.append(("dS/dx summed over channels", "signed", np.asarray(gradient).sum(axis=-1)))
    for label, cam in (cams or {}).items():
        panels.append((f"Grad-CAM at {label}", "cam", cam))
    fig = Figure(figsize=(2.6 * len(panels), 3.3 if title else 3.0))
    # a row of panels above a row of thin colour-bar axes: every panel gets the same width
    grid = fig.add_gridspec(2, len(panels), height_ratios=[1, 0.05], left=0.02, right=0.98, bottom=0.1,
                            top=0.84 if title else 0.9, wspace=0.12, hspace=0.08)
    for col, (label, kind, data) in enumerate(panels):
        ax, cax = fig.add_subplot(grid[0, col]), fig.add_subplot(grid[1, col])
        _no_ticks(ax)
        ax.set_title(label, fontsize=9)
        if kind == "image":
            ax.imshow(_gray_rgb(image))
            _show_region(ax, region)
            cax.axis("off")
            continue
        im, extend = _show_map(ax, kind, np.asarray(data, dtype=np.float64), image, percentile)
        _show_region(ax, region)
        fig.colorbar(im, cax=cax, orientation="horizontal", format="%.2g", extend=extend)
        cax.xaxis.set_major_locator(MaxNLocator(4))          # few ticks: the labels must not run together
        cax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# --- feature maps and filters ------------------------------------------------------------------------------
def plot_feature_maps(image, maps, path, title=None, max_maps=16, ncols=4):
    """feature_maps_figure, saved to `path`."""
    fig = feature_maps_figure(image, maps, title, max_maps, ncols)
    fig.savefig(path, dpi=90)
    return path


def feature_maps_figure(image, maps, title=None, max_maps=16, ncols=4):
    """The image, and beside it a layer's feature maps for it, all on ONE colour scale with one colour bar.

    image (H, W, C) in [0, 1]; maps (h, w, F): the layer's output for that image (explain.layer_output(model,
    x[:1], layer)[0]). The first max_maps maps are drawn; the scale runs from the smallest to the largest
    value among them, so a dark map is a weak feature, not a rescaled one.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"plot_feature_maps: maps must be (h, w, F) for one image, got shape {maps.shape}")
    f = min(maps.shape[-1], max_maps)
    ncols = min(ncols, f)
    nrows = -(-f // ncols)
    lo, hi = float(maps[..., :f].min()), float(maps[..., :f].max())
    hi = hi if hi > lo else lo + 1.0
    fig = Figure(figsize=(1.9 * (ncols + 2) + 1.2, 1.9 * max(nrows, 2) + 0.6))
    grid = fig.add_gridspec(max(nrows, 2), ncols + 3, width_ratios=[1, 1] + [1] * ncols + [0.12], left=0.02,
                            right=0.92, bottom=0.03, top=0.9, wspace=0.15, hspace=0.25)
    ax = fig.add_subplot(grid[:2, :2])
    ax.imshow(_gray_rgb(image))
    ax.set_title("input", fontsize=9)
    _no_ticks(ax)
    im = None
    for i in range(f):
        ax = fig.add_subplot(grid[i // ncols, 2 + i % ncols])
        im = ax.imshow(maps[..., i], cmap="viridis", vmin=lo, vmax=hi)
        ax.set_title(f"map {i}", fontsize=8)
        _no_ticks(ax)
    fig.colorbar(im, cax=fig.add_subplot(grid[:, -1]), label="activation (one scale for every map)")
    fig.suptitle(title or f"{maps.shape[-1]} feature maps" + (f", first {f} shown" if f < maps.shape[-1] else ""),
                 fontsize=10)
    return fig


def filters_to_rgb(kernel):
    """(F, KH, KW, 3) patches in [0, 1] from a kernel (KH, KW, C, F), by ONE scale s = max |kernel|:

        patch = 0.5 + kernel / (2 s)          grey 0.5 is a weight of 0; 0 and 1 are -s and +s

    C = 3: the channels are red, green, blue; C = 1: grey; other C: the mean over channels, in grey.
    Returns (patches, s).
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 4:
        raise ValueError(f"filters_to_rgb: a Conv2D kernel is (KH, KW, C, F), got shape {kernel.shape}")
    s = float(np.abs(kernel).max()) or 1.0
    k = kernel.transpose(3, 0, 1, 2)                       # (F, KH, KW, C)
    if k.shape[-1] != 3:
        k = np.repeat(k.mean(axis=-1, keepdims=True), 3, axis=-1)
    return 0.5 + k / (2 * s), s


def plot_filters(kernel, path, title=None, ncols=8):
    """filters_figure, saved to `path`."""
    fig = filters_figure(kernel, title, ncols)
    fig.savefig(path, dpi=90)
    return path


def filters_figure(kernel, title=None, ncols=8):
    """A first layer's filters (kernel (KH, KW, C, F)) as RGB patches on one shared scale (filters_to_rgb),
    with a colour bar from -s to +s under them: a patch that looks strong is a large weight, not a
    normalised small one. Each of a patch's red, green and blue values reads on that bar alike."""
    from matplotlib.colors import Normalize

    patches, s = filters_to_rgb(kernel)
    f = len(patches)
    ncols = min(ncols, f)
    nrows = -(-f // ncols)
    height = 1.45 * nrows + 1.5
    fig = Figure(figsize=(max(1.3 * ncols, 5.0), height))
    axes = fig.subplots(nrows, ncols, squeeze=False,
                        gridspec_kw={"left": 0.02, "right": 0.98, "bottom": 1.1 / height,
                                     "top": 1 - 0.55 / height, "wspace": 0.1, "hspace": 0.3})
    for i, ax in enumerate(axes.flat):
        _no_ticks(ax)
        if i >= f:
            ax.axis("off")
            continue
        ax.imshow(patches[i], interpolation="nearest")
        ax.set_title(f"filter {i}", fontsize=7)
    fig.suptitle(title or f"{f} filters {kernel.shape[0]}x{kernel.shape[1]}x{kernel.shape[2]}", fontsize=10)
    bar = fig.add_axes((0.2, 0.55 / height, 0.6, 0.13 / height))
    fig.colorbar(cm.ScalarMappable(Normalize(-s, s), cmap="gray"), cax=bar, orientation="horizontal")
    bar.set_xlabel(f"weight: one scale for every filter and for each of its red, green and blue values "
                   f"(mid-grey = 0, ends = -{s:.3g} and +{s:.3g})",
                   fontsize=8)
    bar.tick_params(labelsize=7)
    return fig


def filter_channels_figure(kernel, title=None, ncols=8, channel_names=("R", "G", "B")):
    """A kernel (KH, KW, C, F) drawn channel by channel: for each filter, its C patches side by side, each a
    KH x KW map of signed weights (red > 0, blue < 0, white 0) on ONE scale -s..s, s = max |kernel|, with
    one colour bar. Where an RGB patch (filters_figure) mixes three signs into one colour, this shows each
    channel's own pattern: a red column beside a blue one is a vertical edge detector for that channel."""
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 4:
        raise ValueError(f"filter_channels_figure: a Conv2D kernel is (KH, KW, C, F), got shape {kernel.shape}")
    kh, kw, c, f = kernel.shape
    s = float(np.abs(kernel).max()) or 1.0
    names = list(channel_names) if len(channel_names) == c else [str(i) for i in range(c)]
    ncols = min(ncols, f)
    nrows = -(-f // ncols)
    height = 0.75 * nrows + 1.3
    fig = Figure(figsize=(max(0.42 * ncols * (c + 0.6), 5.0), height))
    outer = fig.add_gridspec(nrows, ncols, left=0.01, right=0.99, bottom=1.0 / height, top=1 - 0.5 / height,
                             wspace=0.25, hspace=0.45)
    im = None
    for i in range(f):
        inner = outer[i // ncols, i % ncols].subgridspec(1, c, wspace=0.08)
        for ch in range(c):
            ax = fig.add_subplot(inner[0, ch])
            im = ax.imshow(kernel[:, :, ch, i], cmap="RdBu_r", vmin=-s, vmax=s, interpolation="nearest")
            _no_ticks(ax)
            ax.set_title(f"{i}:{names[ch]}" if ch == 0 else names[ch], fontsize=6, pad=1.5)
    fig.suptitle(title or f"{f} filters {kh}x{kw}, one map per input channel", fontsize=10)
    bar = fig.add_axes((0.2, 0.45 / height, 0.6, 0.12 / height))
    fig.colorbar(im, cax=bar, orientation="horizontal")
    bar.set_xlabel(f"weight: one scale for every filter and channel (white = 0, ends = -{s:.3g} and +{s:.3g})",
                   fontsize=8)
    bar.tick_params(labelsize=7)
    return fig


# --- distributions of activations and gradients ------------------------------------------------------------
def describe(values, bins=30, tails=0.005):
    """What the histograms need from an array: its size n, mean, std, share of exact zeros (ReLU's off units)
    and a histogram of the values that are not 0 (so the zeros' spike does not flatten the rest), over the
    range between their `tails` and 1 - `tails` quantiles (so a few extreme values do not squeeze the rest
    into one bin): {'n', 'mean', 'std', 'zeros', 'counts', 'edges'}."""
    values = np.asarray(values, dtype=np.float64).ravel()
    nonzero = values[values != 0]
    if nonzero.size:
        lo, hi = np.quantile(nonzero, [tails, 1 - tails])
        counts, edges = np.histogram(nonzero, bins=bins, range=(lo, hi) if hi > lo else None)
    else:
        counts, edges = np.zeros(bins, dtype=np.int64), np.linspace(-1, 1, bins + 1)
    return {"n": int(values.size), "mean": float(values.mean()), "std": float(values.std()),
            "zeros": float(np.mean(values == 0)), "counts": counts, "edges": edges}


class ActivationHistograms(Callback):
    """Record, on a fixed probe batch (x, y), the distribution of every watched layer's activations A and of
    the loss's gradient dL/dA during `fit`: before the first step, then every `every` batches (or, with
    every=None, at each epoch's end).

    layers: the layers to watch (layers, names or tensors; default explain.probe_layers(model)). Each record
    runs explain.activations_and_gradients in inference mode: the training itself is unchanged (the same
    weights as without the callback), only slower (a forward and a backward pass per watched layer).
    `records`: a list of {'step', 'epoch', 'layers': {name: {'activations': describe(A),
    'gradients': describe(dL/dA)}}}; plot them with plot_activation_histograms.
    """

    def __init__(self, x, y, every=None, layers=None, bins=30):
        super().__init__()
        if every is not None and (not isinstance(every, (int, np.integer)) or every < 1):
            raise ValueError(f"ActivationHistograms: every must be a positive number of batches or None, "
                             f"got {every!r}")
        self.x, self.y, self.every, self.layers, self.bins = x, y, every, layers, bins
        self.records = []
        self._step = self._epoch = 0

    def record(self):
        stats = explain.activations_and_gradients(self.model, self.x, self.y, self.layers)
        self.records.append({"step": self._step, "epoch": self._epoch, "layers": {
            name: {"activations": describe(a, self.bins), "gradients": describe(g, self.bins)}
            for name, (a, g) in stats.items()}})

    def on_train_begin(self, logs=None):
        self.records, self._step = [], 0
        self.record()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self.every is not None and self._step % self.every == 0:
            self.record()

    def on_epoch_end(self, epoch, logs=None):
        if self.every is None:
            self.record()


def _density(summary):
    """Bin centres, and the share of all n values per unit of x in each bin."""
    counts, edges = summary["counts"], summary["edges"]
    return (edges[:-1] + edges[1:]) / 2, counts / max(summary["n"], 1) / np.diff(edges)


def plot_activation_histograms(recorder, path, title="activations and gradients during training"):
    """Per watched layer (rows): the histograms of its activations (left) and of dL/dA (right) at every
    record (describe's), coloured from the first record (dark) to the last (yellow), on a log axis so that
    both a spike and a long tail stay visible; above them, the standard deviation of each layer's
    activations and gradients against the training step (log scale).

    recorder: an ActivationHistograms after fit (or its `records`).
    """
    records = recorder.records if hasattr(recorder, "records") else recorder
    if not records:
        raise ValueError("plot_activation_histograms: nothing was recorded (was the callback given to fit?)")
    names = list(records[0]["layers"])
    steps = np.array([r["step"] for r in records])
    colours = cm.viridis(np.linspace(0, 1, len(records)))
    fig = Figure(figsize=(10, 2.0 * len(names) + 3.2))
    grid = fig.add_gridspec(len(names) + 1, 2, height_ratios=[1.6] + [1] * len(names))
    for col, key in enumerate(("activations", "gradients")):
        ax = fig.add_subplot(grid[0, col])
        for name in names:
            ax.plot(steps, [max(r["layers"][name][key]["std"], 1e-300) for r in records], "o-", ms=3, label=name)
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("training step (batches)")
        ax.set_title(f"std of {'A' if key == 'activations' else 'dL/dA'} per layer", fontsize=9)
        ax.grid(alpha=0.3)
        if col == 1:
            ax.legend(fontsize=6, ncol=2, loc="best")
        for row, name in enumerate(names, start=1):
            ax = fig.add_subplot(grid[row, col])
            for r, colour in zip(records, colours):
                centres, density = _density(r["layers"][name][key])
                keep = density > 0                      # a log axis has no place for empty bins
                ax.plot(centres[keep], density[keep], color=colour, lw=1)
            ax.set_yscale("log")
            last = records[-1]["layers"][name][key]
            ax.set_title(f"{name}: {key} (last: std {last['std']:.2g}, zeros {100 * last['zeros']:.0f}%)",
                         fontsize=8)
            ax.tick_params(labelsize=7)
    fig.suptitle(title + f"\n(dark: step {steps[0]}, yellow: step {steps[-1]}; histograms of the non-zero "
                         "values, the 0.5% at either end left out, share per unit on a log axis)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=90)
    return path


def plot_layer_statistics(runs, path, title="activations and gradients, layer by layer"):
    """Compare models layer by layer (the weight-initialisation lesson of the module docstring).

    runs: {label: explain.activations_and_gradients(model, x, y)}, models of the same depth. Top: the std of
    the activations and of dL/dA against the layer's depth, one line per run (log scale: a constant factor
    per layer is a straight line). Below, a row per run: the histogram of each layer's non-zero activations
    against log10 |A|, on one axis for every panel, so that a collapse drifts left from layer to layer and an
    explosion drifts right (the share of exact zeros, ReLU's off units, is written above each panel).
    """
    labels = list(runs)
    depth = max(len(runs[label]) for label in labels)
    logs = {label: [np.log10(np.abs(a[a != 0]).astype(np.float64)) for a, _ in runs[label].values()]
            for label in labels}
    every = np.concatenate([v for values in logs.values() for v in values if v.size] or [np.zeros(1)])
    edges = np.linspace(np.floor(every.min()), np.ceil(every.max()) + 1e-9, 60)
    fig = Figure(figsize=(max(10, 2.1 * depth), 3.4 + 1.6 * len(labels)))
    grid = fig.add_gridspec(len(labels) + 1, depth, height_ratios=[2.2] + [1] * len(labels))
    half = max(depth // 2, 1)
    for part, (key, which) in enumerate((("activations A", 0), ("gradients dL/dA", 1))):
        ax = fig.add_subplot(grid[0, :half] if part == 0 else grid[0, half:])
        for label in labels:
            stds = [max(float(np.std(pair[which])), 1e-300) for pair in runs[label].values()]
            ax.plot(np.arange(1, len(stds) + 1), stds, "o-", label=label)
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("layer (1 = nearest the input)")
        ax.set_title(f"std of the {key}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for row, label in enumerate(labels, start=1):
        for col, (name, (a, _)) in enumerate(runs[label].items()):
            ax = fig.add_subplot(grid[row, col])
            ax.hist(logs[label][col], bins=edges, color=f"C{row - 1}", alpha=0.8)
            ax.set_title(f"{label}, layer {col + 1} ({name})\nstd {np.std(a):.2g}, zeros "
                         f"{100 * np.mean(a == 0):.0f}%", fontsize=7)
            ax.tick_params(labelsize=6)
            ax.set_yticks([])
            if row == len(labels):
                ax.set_xlabel("log10 |A| (non-zero A)", fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=90)
    return path


__all__ = ["ActivationHistograms", "describe", "explanation_figure", "filter_channels_figure", "filters_to_rgb",
           "plot_activation_histograms", "plot_explanation", "plot_feature_maps", "plot_filters",
           "plot_layer_statistics", "robust_limit"]
