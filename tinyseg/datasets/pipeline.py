"""A data pipeline for real photographs: uint8 in memory (or files on disk), float32 one batch at a time.

    train = SegmentationDataset(x_train, y_train, batch_size=4, crop=(176, 240), augment=True, shuffle=True,
                                scale=(0.9, 1.1), ignore_index=11, seed=0)
    val = SegmentationDataset(x_val, y_val, batch_size=4)                 # whole images, in order, as they are
    model.fit(train, validation_data=val, epochs=40)                      # fit calls on_epoch_end: reshuffle

Why. CamVid's 367 training photographs at 360 x 480 take 190 MB as uint8 and 760 MB as float32, and a
larger data set does not fit at all. So images stay uint8 (`images` holds the arrays given, or the file
paths: lazy mode, which reads the files of each batch when the batch is asked for) and only the batch the
model is about to see becomes float32, x / 255.

What batch i is. Samples order[i*B : (i+1)*B], where `order` is 0..N-1, or with shuffle=True a permutation
drawn anew for every epoch. Each sample is then, with augment=True:

    1. scale jitter: s uniform in scale = (lo, hi); the window cut from the image is (round(h/s), round(w/s))
       for an output (h, w), so s > 1 zooms in and s < 1 zooms out
    2. a random window of that size (with augment=False: the centred one); where it reaches past the image
       (an image smaller than the window), the image is extended by reflection and the mask by
       ignore_index (no loss is computed there), or by reflection too if there is no ignore_index
    3. resized to (h, w): the image bilinearly, the mask by nearest neighbour, so no label is invented
    4. flipped left-right with probability 1/2 (flip='horizontal'; 'vertical', 'both' or None also exist:
       street scenes have a sky on top, so only left-right flips keep them plausible)

and the output size (h, w) is `crop`, or without crop the image's own size (every image must then have the
same size). Image and mask go through the same steps with the same numbers, so they stay aligned pixel for
pixel. The random numbers of batch i in epoch e come from a generator seeded with (seed, e, i): the same
batch whatever order batches are asked in, and the same stream in every run with the same seed.
"""
import numpy as np

from ..utils import PyDataset
from .folder import load_pair
from .images import _check_size, resize_image, resize_mask
from .labels import check_label_values

FLIPS = ("horizontal", "vertical", "both", None)


class SegmentationDataset(PyDataset):
    """Batches (x float32 (B, h, w, C) in [0, 1], y uint8 (B, h, w)) from uint8 images or image files.

    Parameters
    ----------
    images : uint8 array (N, H, W, C), or a list of N image paths (lazy: read batch by batch).
    masks : uint8 array (N, H, W) or a list of N label paths; None gives batches of x alone (for predict).
    batch_size : B; the last batch is smaller when B does not divide N (drop_remainder=True leaves it out).
    crop : (h, w) or an int: the size of every sample, cut from the image (see the module docstring); None for
        whole images.
    augment : random windows, scale jitter and flips (module docstring); False: centred windows, nothing else.
    shuffle : a new order of the samples every epoch.
    scale : None or (lo, hi), the range of the zoom factor s (with augment=True).
    flip : 'horizontal' (default), 'vertical', 'both' or None (with augment=True).
    size : None, or (H, W) to resize each image (bilinear) and mask (nearest neighbour) as it is read, before
        the steps above (for lazy file lists whose files are of another size).
    ignore_index : the void label; windows reaching past the image are filled with it in the mask.
    num_classes : if given, mask values must be < num_classes or equal ignore_index (checked at once for
        arrays, as they are read for files; the error names the sample or file).
    palette : (K, 3) colours to convert colour-coded label files (lazy mode).
    label_map : None, or a (256,) table applied to every mask as it is read, label_map[mask] (e.g. 0/255
        binary masks to 0/1: label_map = (np.arange(256) > 127)).
    seed : the seed of every random choice.
    """

    def __init__(self, images, masks=None, batch_size=4, crop=None, augment=False, shuffle=False, scale=None,
                 flip="horizontal", size=None, ignore_index=None, num_classes=None, palette=None, seed=0,
                 drop_remainder=False, label_map=None):
        super().__init__()
        self.lazy = not isinstance(images, np.ndarray)
        images, masks = _checked_samples(images, masks, num_classes, ignore_index)
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"SegmentationDataset: batch_size must be a positive integer, got {batch_size!r}")
        if flip not in FLIPS:
            raise ValueError(f"SegmentationDataset: flip must be one of {FLIPS}, got {flip!r}")
        scale = None if scale is None else _checked_scale(scale)
        self.images, self.masks = images, masks
        self.batch_size, self.augment, self.shuffle = int(batch_size), bool(augment), bool(shuffle)
        self.crop = None if crop is None else _check_size(crop)
        self.size = None if size is None else _check_size(size)
        self.scale, self.flip = scale, flip
        self.ignore_index, self.num_classes, self.palette = ignore_index, num_classes, palette
        self.label_map = None if label_map is None else np.asarray(label_map, dtype=np.uint8)
        self.seed, self.drop_remainder = int(seed), bool(drop_remainder)
        self.epoch = 0
        if self.crop is None and not self.lazy and self.size is None:
            self.output_size = images.shape[1:3]
        else:
            self.output_size = self.crop or self.size
        self._order = self._new_order()

    # --- the PyDataset protocol ------------------------------------------------------------------------------
    def __len__(self):
        n = len(self.images)
        return n // self.batch_size if self.drop_remainder and n >= self.batch_size else -(-n // self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"SegmentationDataset: batch {index} of {len(self)}")
        idx = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        xs, ys = [], []
        for i in idx:
            image, mask = self.read(i)
            image, mask = self.transform(image, mask, rng)
            xs.append(image)
            ys.append(mask)
        shapes = {x.shape for x in xs}
        if len(shapes) > 1:
            raise ValueError(f"SegmentationDataset: batch {index} mixes image sizes {sorted(shapes)}; give crop= "
                             f"or size= so that every sample has one size")
        # The one place where pixels become float32: this batch only.
        x = np.stack(xs).astype(np.float32)
        x *= np.float32(1 / 255)
        return x if self.masks is None else (x, np.stack(ys))

    def on_epoch_end(self):
        """fit calls this after every epoch: the next epoch draws new random numbers and a new order."""
        self.epoch += 1
        self._order = self._new_order()

    def set_epoch(self, epoch):
        """Start at epoch `epoch` (a resumed fit): its order and random numbers, as if `epoch` epochs had run."""
        self.epoch = int(epoch)
        self._order = self._new_order()

    def _new_order(self):
        n = len(self.images)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    # --- one sample -------------------------------------------------------------------------------------------
    def read(self, i):
        """Sample i as stored: (image uint8 (H, W, C), mask (H, W) or None), resized to `size` if given."""
        if self.lazy:
            if self.masks is None:
                from .images import load_image_uint8
                image, mask = load_image_uint8(self.images[i]), None
            else:
                image, mask = load_pair(self.images[i], self.masks[i], dtype="uint8", palette=self.palette)
                if self.label_map is not None:
                    mask = self.label_map[mask]
                if self.num_classes is not None:
                    check_label_values([mask], [self.masks[i]], self.num_classes, self.ignore_index, "labels",
                                       flags=False)
        else:
            image = self.images[i]
            mask = None if self.masks is None else self.masks[i]
            if mask is not None and self.label_map is not None:
                mask = self.label_map[mask]
        if self.size is not None and image.shape[:2] != self.size:
            image = resize_image(image, self.size)
            mask = None if mask is None else resize_mask(mask, self.size)
        return image, mask

    def transform(self, image, mask, rng):
        """The steps of the module docstring on one (image, mask) pair, with the generator rng."""
        out_h, out_w = self.output_size if self.output_size is not None else image.shape[:2]
        s = rng.uniform(*self.scale) if self.augment and self.scale is not None else 1.0
        win_h, win_w = max(1, round(out_h / s)), max(1, round(out_w / s))
        h, w = image.shape[:2]
        if self.augment:
            top = int(rng.integers(min(0, h - win_h), max(0, h - win_h) + 1))
            left = int(rng.integers(min(0, w - win_w), max(0, w - win_w) + 1))
        else:
            top, left = (h - win_h) // 2, (w - win_w) // 2
        image = window(image, top, left, win_h, win_w, None)
        if mask is not None:
            mask = window(mask, top, left, win_h, win_w, self.ignore_index)
        if (win_h, win_w) != (out_h, out_w):
            image = resize_image(image, (out_h, out_w))
            mask = None if mask is None else resize_mask(mask, (out_h, out_w))
        if self.augment and self.flip is not None:
            if self.flip in ("horizontal", "both") and rng.random() < 0.5:
                image, mask = image[:, ::-1], None if mask is None else mask[:, ::-1]
            if self.flip in ("vertical", "both") and rng.random() < 0.5:
                image, mask = image[::-1], None if mask is None else mask[::-1]
        return image, mask

    def iter_masks(self):
        """Every mask in sample order, as read (for class_weights: a lazy data set reads them one by one)."""
        if self.masks is None:
            return
        for i in range(len(self.images)):
            yield self.read(i)[1]


def _checked_samples(images, masks, num_classes, ignore_index):
    """(images, masks) as the data set keeps them: path lists as str, or checked uint8 / integer arrays."""
    if not isinstance(images, np.ndarray):
        images = [str(p) for p in images]
        masks = None if masks is None else [str(p) for p in masks]
    else:
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(f"SegmentationDataset: images must be uint8 (N, H, W, C) or a list of files, got "
                             f"{images.dtype} {images.shape}")
        if masks is not None:
            masks = np.asarray(masks)
            if masks.shape != images.shape[:3] or masks.dtype.kind not in "iu":
                raise ValueError(f"SegmentationDataset: masks must be integer (N, H, W) = {images.shape[:3]}, "
                                 f"got {masks.dtype} {masks.shape}")
            if num_classes is not None:
                check_label_values(masks, [f"mask {i}" for i in range(len(masks))], num_classes,
                                   ignore_index, "labels", flags=False)
    if masks is not None and len(masks) != len(images):
        raise ValueError(f"SegmentationDataset: {len(images)} images but {len(masks)} masks")
    if len(images) == 0:
        raise ValueError("SegmentationDataset: no images")
    return images, masks


def _checked_scale(scale):
    lo, hi = (float(s) for s in scale)
    if not 0 < lo <= hi:
        raise ValueError(f"SegmentationDataset: scale must be (lo, hi) with 0 < lo <= hi, got {scale!r}")
    return lo, hi


def window(array, top, left, height, width, fill=None):
    """array[top:top+height, left:left+width] of an (H, W, ...) array, where the window may reach past the
    array's edges: the missing rows and columns are the array's reflection (fill=None) or the value fill."""
    h, w = array.shape[:2]
    pads = [(max(0, -top), max(0, top + height - h)), (max(0, -left), max(0, left + width - w))]
    if any(p for pair in pads for p in pair):
        pads += [(0, 0)] * (array.ndim - 2)
        # reflect needs at least 2 rows; a 1-pixel image can only be repeated
        mode = "constant" if fill is not None else ("reflect" if min(h, w) > 1 else "edge")
        array = np.pad(array, pads, mode=mode, **({"constant_values": fill} if fill is not None else {}))
        top, left = top + pads[0][0], left + pads[1][0]
    return array[top:top + height, left:left + width]
