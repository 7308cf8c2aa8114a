"""Predicting images of any size: pad to the network's multiple and crop back, or tile and blend.

A U-Net of depth d halves the image d times and doubles it back, so it takes any H x W that 2**d divides
(the layers do not care about the size otherwise). An image of another size is padded up to the next
multiple and the prediction is cropped back:

    H' = ceil(H / m) * m,  W' = ceil(W / m) * m,  m = 2**depth        (176 x 240 stays, 180 x 240 -> 192 x 240)

The padding is a reflection of the image (a mirror at the last row: no hard black edge for the network to
react to), and all of it goes at the bottom and the right. That keeps the pooling grid anchored at the
top-left pixel as in the unpadded image, so a pixel farther from the padded edges than the network's
receptive field gets exactly the prediction it would get in an image of a valid size
(tests/models/test_inference.py checks this).

Tiling. A large image (bigger than the size the model was trained at, or than memory allows) can be cut into
overlapping windows of size (th, tw), each predicted on its own, and their class scores blended:

    P(y, x) = sum_t w_t(y, x) p_t(y, x) / sum_t w_t(y, x)

over the windows t covering pixel (y, x). The weight of a window is 1 in its middle and falls linearly to
near 0 over `overlap * size` pixels at its edges,

    w(i) = min(1, (i + 1/2) / r, (n - i - 1/2) / r)    for position i of n along an axis, r = the ramp width

(per axis; the 2-D weight is the product), so a pixel near one window's edge, where that window saw little
context, is decided mostly by its neighbour window, which sees it near its centre. Overlapping windows with
such weights is what sliding-window inference in segmentation tools does (MONAI's sliding_window_inference,
nnU-Net's Gaussian weights); a linear ramp is the simplest weight that leaves no seam.

    probs = predict_image(model, image)                              # (H, W, K), any H x W
    probs = predict_image(model, big_image, tile=(176, 240))         # windows of the training size, blended
    labels = probs.argmax(axis=-1)
"""
import numpy as np

from .layers import AveragePooling2D, MaxPooling2D


def size_multiple(model):
    """m such that the model takes images of H x W when m divides H and W: 2**depth for a U-Net, else the
    factor by which the image shrinks on its way down: the product of the pooling strides, or, where strided
    convolutions shrink it (DeepLabV3+'s encoder), the largest H / h of a layer's h x w feature map (maps of
    one pixel, an image pooling's, take any size and do not count)."""
    config = model.get_config() if hasattr(model, "get_config") else {}
    if isinstance(config, dict) and isinstance(config.get("depth"), int):
        return 2 ** config["depth"]
    m = 1
    for layer in model.layers:
        if isinstance(layer, (MaxPooling2D, AveragePooling2D)):
            m *= int(max(layer.strides))
    h, w = (model.input_shape[:2] if len(getattr(model, "input_shape", ())) == 3 else (None, None))
    for layer in model.layers if h and w else ():
        shape = getattr(layer, "output_shape", None)
        if isinstance(shape, tuple) and len(shape) == 3 and all(isinstance(s, int) and s > 1 for s in shape[:2]) \
                and h % shape[0] == 0 and w % shape[1] == 0 and h // shape[0] == w // shape[1]:
            m = max(m, h // shape[0])
    return m


def next_multiple(n, m):
    """The smallest multiple of m that is >= n: ceil(n / m) * m."""
    return -(-int(n) // int(m)) * int(m)


def nearest_multiple(n, m):
    """The multiple of m nearest to n (halfway rounds up), at least m."""
    return max(int(m), int(n / m + 0.5) * int(m))


def check_multiple(size, m, what="size", flag=None):
    """ValueError if m does not divide both sides of `size`, naming the nearest valid size."""
    h, w = size
    if h % m or w % m or h < m or w < m:
        nearest = tuple(nearest_multiple(s, m) for s in (h, w))
        name = flag or what
        raise ValueError(f"{name} {h} {w} is not divisible by 2**depth = {m}; the nearest valid {what} is "
                         f"{nearest[0]} {nearest[1]}")


def pad_to_multiple(x, multiple, mode="reflect"):
    """Pad images (N, H, W, C) (or one (H, W, C)) at the bottom and right to the next multiple of `multiple`.

    Returns (padded, (H, W)); padded[..., :H, :W, :] is x. mode: np.pad's, 'reflect' by default (an image
    of one row or column is repeated instead, reflection needing two).
    """
    x = np.asarray(x)
    single = x.ndim == 3
    if single:
        x = x[None]
    h, w = x.shape[1:3]
    ph, pw = next_multiple(h, multiple) - h, next_multiple(w, multiple) - w
    if ph or pw:
        if mode == "reflect" and min(h, w) < 2:
            mode = "edge"
        x = np.pad(x, [(0, 0), (0, ph), (0, pw), (0, 0)], mode=mode)
    return (x[0] if single else x), (h, w)


def _as_float_images(x):
    """uint8 -> float32 / 255; floats -> float32; (H, W) or (N, H, W) gray images get a channel axis."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) * np.float32(1 / 255)
    elif x.dtype.kind == "f":
        x = x.astype(np.float32, copy=False)
    else:
        raise TypeError(f"images must be uint8 (0..255) or floats (0..1), got {x.dtype}")
    return x


def _run(model, x, batch_size):
    """model.predict on x (N, H, W, C), where H and W are multiples of size_multiple(model): a built model
    follows images of another height and width (its layers resize; the weights are the same)."""
    return model.predict(x, batch_size=batch_size)


def predict_batch(model, x, batch_size=4):
    """Class scores (N, H, W, K) for images x (N, H, W, C) of any H x W: padded, predicted, cropped back."""
    x = _as_float_images(x)
    padded, (h, w) = pad_to_multiple(x, size_multiple(model))
    return _run(model, padded, batch_size)[:, :h, :w]


def tile_starts(length, tile, overlap):
    """Window starts along one axis: 0, stride, 2*stride, ... and a last window flush with the end, where
    stride = tile - round(overlap * tile). One window (start 0) if the axis is no longer than a tile."""
    if length <= tile:
        return [0]
    stride = max(1, tile - int(round(overlap * tile)))
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def blend_weights(height, width, overlap):
    """The (height, width) float32 weight of one window: the product of the per-axis ramps of the module
    docstring, ramp width r = max(1, round(overlap * n)) for an axis of n pixels. Every weight is > 0."""
    def ramp(n):
        r = max(1, int(round(overlap * n)))
        i = np.arange(n) + 0.5
        return np.minimum(1.0, np.minimum(i / r, (n - i) / r))
    return np.outer(ramp(height), ramp(width)).astype(np.float32)


def predict_image(model, image, tile=None, overlap=0.25, batch_size=4):
    """Class scores (H, W, K) float32 for one image (H, W, C) (uint8 or float in [0, 1]) of any size.

    tile=None: the whole image at once, padded to the model's multiple and cropped back.
    tile=(th, tw) (multiples of the model's multiple): overlapping windows blended as the module docstring
    says; an image no larger than a tile is predicted whole. overlap: the share of a tile that neighbouring
    windows share, in [0, 1).
    """
    image = _as_float_images(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3:
        raise ValueError(f"predict_image: expected one image (H, W, C), got shape {image.shape}")
    if not 0 <= overlap < 1:
        raise ValueError(f"predict_image: overlap must be in [0, 1), got {overlap!r}")
    h, w = image.shape[:2]
    m = size_multiple(model)
    if tile is None or (h <= tile[0] and w <= tile[1]):
        return predict_batch(model, image[None], batch_size)[0]
    th, tw = (int(t) for t in tile)
    check_multiple((th, tw), m, "tile")
    # windows no larger than the (padded) image along an axis shorter than a tile
    th, tw = min(th, next_multiple(h, m)), min(tw, next_multiple(w, m))
    padded, _ = pad_to_multiple(image, m)
    tops, lefts = tile_starts(padded.shape[0], th, overlap), tile_starts(padded.shape[1], tw, overlap)
    weight = blend_weights(th, tw, overlap)
    scores = None
    total = np.zeros(padded.shape[:2], np.float32)
    corners = [(top, left) for top in tops for left in lefts]
    for b in range(0, len(corners), batch_size):
        group = corners[b:b + batch_size]
        windows = np.stack([padded[top:top + th, left:left + tw] for top, left in group])
        probs = _run(model, windows, batch_size)
        if scores is None:
            scores = np.zeros(padded.shape[:2] + probs.shape[-1:], np.float32)
        for (top, left), p in zip(group, probs):
            scores[top:top + th, left:left + tw] += weight[..., None] * p
            total[top:top + th, left:left + tw] += weight
    return (scores / total[..., None])[:h, :w]


def labels_from_scores(scores):
    """Class indices from scores (..., K): argmax, or for one sigmoid channel score > 0.5."""
    if scores.shape[-1] == 1:
        return (scores[..., 0] > 0.5).astype(np.uint8)
    return scores.argmax(axis=-1).astype(np.uint8)


def evaluate_segmentation(model, images, masks=None, num_classes=None, ignore_index=None, batch_size=4,
                          tile=None, overlap=0.25, keep=6):
    """The confusion matrix of the model's predictions on whole images, and the first `keep` examples.

    images, masks: arrays (N, H, W, C) and (N, H, W) (uint8 images are scaled to [0, 1]); or sequences of
    arrays of different sizes (each image is then predicted alone); or images a SegmentationDataset and
    masks None (its samples are read one by one, as stored: lazily from files in lazy mode). Each image is
    predicted at its own size (padded and cropped back; tile= tiles it as predict_image does), batch by batch,
    so only one batch of scores is ever in memory. num_classes: K (default: the model's output channels).

    Returns (ConfusionMatrix, (images, masks, predictions) of `keep` images spread evenly over the data,
    first and last included: consecutive images of a video, as CamVid's are, look alike).
    """
    from .metrics import ConfusionMatrix
    k = num_classes or max(int(model.output_shape[-1]), 2)
    cm = ConfusionMatrix(k, ignore_index=ignore_index, per_image=True)
    shown = ([], [], [])
    reader = images if masks is None and hasattr(images, "read") else None
    n = len(reader.images) if reader is not None else len(images)
    same_size = reader is None and isinstance(images, np.ndarray) and tile is None
    step = batch_size if same_size else 1
    wanted = set(np.linspace(0, n - 1, min(keep, n)).round().astype(int).tolist()) if keep > 0 else set()
    for b in range(0, n, step):
        if same_size:
            xb, yb = images[b:b + step], np.asarray(masks[b:b + step])
            pred = labels_from_scores(predict_batch(model, xb, batch_size))
        else:
            image, mask = reader.read(b) if reader is not None else (images[b], masks[b])
            xb, yb = [np.asarray(image)], np.asarray(mask)[None]
            pred = labels_from_scores(predict_image(model, xb[0], tile, overlap, batch_size))[None]
        cm.update(yb, pred)
        for i, (image, mask, p) in enumerate(zip(xb, yb, pred)):
            if b + i in wanted:
                shown[0].append(image)
                shown[1].append(mask)
                shown[2].append(p)
    return cm, shown
