"""Your own images and masks from two folders, paired by file name (one file at a time: images.py).

    x, masks, names = load_image_folder("data/images", "data/masks", size=(128, 128))

    x       float32 (N, H, W, C) in [0, 1], C = 3 ('rgb') or 1 ('grayscale'); with dtype='uint8' the
            file's 8-bit values 0..255 (4 times less memory: real photographs stay uint8 until a batch needs them)
    masks   uint8   (N, H, W), one class index per pixel (so at most 256 classes)
    names   the N file stems, sorted; x[i] and masks[i] came from images/names[i].* and masks/names[i].*

Pairing rule: an image and its mask have the same file stem (the name without its extension), in any supported
format: images/cat_01.jpg goes with masks/cat_01.png. Hidden files and files with other extensions are ignored.

    images: .png .jpg .jpeg .tif .tiff          masks: .png .tif .tiff

JPEG masks are refused: JPEG compression is lossy and blurs label edges into values that are no class at all.

A mask is read as stored: the pixel value is the class. Palette ('P') PNGs, as in Pascal VOC, store the class
index and a colour for it; the index is what counts. Grayscale ('L') PNGs store the class index as a gray
level; many binary masks are stored as 0 (background) and 255 (object). `mask_mode` says how to read values:

    'auto'    if every mask holds only 0 and 255, they become 0 and 1; otherwise as 'index'. A folder that
              mixes 0/255 masks with masks of other values (e.g. 0, 1, 2) is refused: say which it is
    'binary'  value > 127 -> 1, else 0
    'index'   values are class indices, kept as they are (checked < num_classes if given)

Colour-coded labels (an RGB picture per mask, one colour per class) are read through a palette:
`palette=` (K, 3) colours (see labels.py) turns each colour into its class index; without one, an RGB mask
whose channels differ is refused with a message that says so.

An `ignore_index` (void) label value is allowed in any mask whatever num_classes says; it is not a class.

Resizing (`size=(H, W)`): images with bilinear interpolation, masks with nearest neighbour. Interpolating a
mask would invent labels: halfway between class 1 and class 3 is not class 2.
"""
from pathlib import Path

import numpy as np

from .images import (
    _check_color_mode,
    _check_size,
    _hw,
    load_image,
    load_image_uint8,
    load_mask,
    resize_image,
    resize_mask,
)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MASK_EXTENSIONS = (".png", ".tif", ".tiff")
_LOSSY_EXTENSIONS = (".jpg", ".jpeg")
_MAX_LISTED = 5                                                   # names shown in an error before "and N more"


# --- the loader ---------------------------------------------------------------------------------------------
def load_image_folder(images_dir, masks_dir, size=None, mask_mode="auto", color_mode="rgb", num_classes=None,
                      dtype="float32", palette=None, ignore_index=None):
    """Load every image in `images_dir` with the mask of the same stem in `masks_dir`.

    Parameters
    ----------
    images_dir, masks_dir : folders (str or Path); see the module docstring for the pairing rule and formats.
    size : None to keep the files' size (then all images must have the same size), or an int S or (H, W)
        to resize every image (bilinear) and mask (nearest neighbour) to it.
    mask_mode : 'auto', 'binary' or 'index' (module docstring).
    color_mode : 'rgb' (C = 3; grayscale files are repeated over 3 channels) or 'grayscale' (C = 1; colour
        files are converted with the luma formula L = 0.299 R + 0.587 G + 0.114 B).
    num_classes : if given, every mask value must be < num_classes after `mask_mode` is applied (or equal
        ignore_index).
    dtype : 'float32' (values in [0, 1]) or 'uint8' (the 8-bit values; 16-bit files are rounded to 8 bits).
    palette : None, or (K, 3) colours: RGB masks are converted to class indices (labels.colors_to_labels).
    ignore_index : the void label value, allowed beyond num_classes; with it, mask_mode='auto' reads 'index'.

    Returns
    -------
    x : float32 (N, H, W, C) in [0, 1], or uint8 (N, H, W, C) with dtype='uint8'.
    masks : uint8 (N, H, W).
    names : list of N stems, sorted.

    Raises
    ------
    FileNotFoundError if a folder is missing or holds no images; ValueError for an image without a mask, a mask
    without an image, a mask whose size differs from its image's, images of different sizes when size=None, an
    RGB mask, mask values out of range, or (mask_mode='auto') 0/255 masks mixed with class-index masks.
    """
    if mask_mode not in ("auto", "binary", "index"):
        raise ValueError(f"load_image_folder: mask_mode must be 'auto', 'binary' or 'index', got {mask_mode!r}")
    _check_color_mode(color_mode)
    if num_classes is not None and (not isinstance(num_classes, (int, np.integer)) or num_classes < 1):
        raise ValueError(f"load_image_folder: num_classes must be a positive integer or None, got {num_classes!r}")
    if dtype not in ("float32", "uint8"):
        raise ValueError(f"load_image_folder: dtype must be 'float32' or 'uint8', got {dtype!r}")
    size = None if size is None else _check_size(size)

    names, image_paths, mask_paths = pair_files(images_dir, masks_dir)
    xs, ys = [], []
    for image_path, mask_path in zip(image_paths, mask_paths):
        image, mask = load_pair(image_path, mask_path, size, color_mode, dtype, palette)
        xs.append(image)
        ys.append(mask)

    if size is None:
        shapes = {}
        for path, image in zip(image_paths, xs):
            shapes.setdefault(image.shape[:2], path)
        if len(shapes) > 1:
            examples = [f"{path.name} is {_hw(shape)}" for shape, path in shapes.items()]
            raise ValueError(f"load_image_folder: the images have {len(shapes)} different sizes "
                             f"({_some(examples)}); pass size=(height, width) to resize them all to one size")

    if ignore_index is not None and mask_mode == "auto":
        mask_mode = "index"               # a void value (often 255) must not turn a mask into a 0/255 binary one
    ys = _apply_mask_mode(ys, mask_mode, num_classes, [p.name for p in mask_paths], ignore_index)
    return np.stack(xs), np.stack(ys), names


def pair_files(images_dir, masks_dir):
    """(stems, image paths, mask paths), sorted by stem, paired by the rule of the module docstring.

    FileNotFoundError if a folder is missing or holds no images; ValueError for an image without a mask or a
    mask without an image (naming a few of them).
    """
    images = _files_by_stem(images_dir, IMAGE_EXTENSIONS, "images")
    masks = _files_by_stem(masks_dir, MASK_EXTENSIONS, "masks")
    if not images:
        raise FileNotFoundError(f"load_image_folder: no images found in {images_dir} "
                                f"(looked for {', '.join(IMAGE_EXTENSIONS)})")
    without_mask = sorted(set(images) - set(masks))
    without_image = sorted(set(masks) - set(images))
    if without_mask:
        raise ValueError(f"load_image_folder: {len(without_mask)} image(s) in {images_dir} have no mask of the "
                         f"same name in {masks_dir}: {_some([images[s].name for s in without_mask])}")
    if without_image:
        raise ValueError(f"load_image_folder: {len(without_image)} mask(s) in {masks_dir} have no image of the "
                         f"same name in {images_dir}: {_some([masks[s].name for s in without_image])}")
    names = sorted(images)
    return names, [images[s] for s in names], [masks[s] for s in names]


def load_pair(image_path, mask_path, size=None, color_mode="rgb", dtype="float32", palette=None):
    """One image and its mask: (image (H, W, C) float32 in [0, 1] or uint8, mask (H, W) as stored).

    ValueError naming both files and both sizes if they differ; `size` then resizes both (bilinear for the
    image, nearest neighbour for the mask).
    """
    image = load_image_uint8(image_path, color_mode) if dtype == "uint8" else load_image(image_path,
                                                                                        color_mode=color_mode)
    mask = load_mask(mask_path, palette=palette)
    if image.shape[:2] != mask.shape:
        raise ValueError(f"load_image_folder: image {Path(image_path).name} is {_hw(image.shape)} but its mask "
                         f"{Path(mask_path).name} is {_hw(mask.shape)} (height x width); they must match pixel "
                         f"for pixel")
    if size is not None:
        image, mask = resize_image(image, size), resize_mask(mask, size)
    return image, mask


def _files_by_stem(folder, extensions, what):
    """{stem: path} for the files in `folder` with one of `extensions` (case-insensitive)."""
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"load_image_folder: {what} folder {folder} does not exist")
    if not folder.is_dir():
        raise NotADirectoryError(f"load_image_folder: {what} folder {folder} is not a folder")
    found = {}
    for path in sorted(folder.iterdir()):
        suffix = path.suffix.lower()
        if path.name.startswith(".") or not path.is_file():
            continue
        if what == "masks" and suffix in _LOSSY_EXTENSIONS:
            raise ValueError(f"load_image_folder: mask {path} is a JPEG; JPEG is lossy and changes label values "
                             f"at edges, so masks must be PNG or TIFF")
        if suffix not in extensions:
            continue
        if path.stem in found:
            raise ValueError(f"load_image_folder: two {what} share the stem {path.stem!r}: "
                             f"{found[path.stem].name} and {path.name}; pairing is by stem, so keep one")
        found[path.stem] = path
    return found


def _apply_mask_mode(masks, mask_mode, num_classes, files, ignore_index=None):
    """Turn raw mask values into class indices (uint8), checking the range; `files` names each mask."""
    values = np.unique(np.concatenate([np.unique(m) for m in masks]))
    if values.size and values.min() < 0:
        bad = [f for f, m in zip(files, masks) if m.min() < 0]
        raise ValueError(f"load_image_folder: mask values must be >= 0; negative values in {_some(bad)}")
    if mask_mode == "auto":
        # A mask of only 0 and 255 (with some 255) reads as binary, one with other values as class indices;
        # a folder holding both kinds has no single reading (255 would be "object" in some, class 255 in others).
        binary = [f for f, m in zip(files, masks) if m.max() == 255 and np.isin(m, (0, 255)).all()]
        index = [f for f, m in zip(files, masks) if not np.isin(m, (0, 255)).all()]
        if binary and index:
            raise ValueError(f"load_image_folder: mask_mode='auto' expects either binary masks (only 0 and 255) "
                             f"or class-index masks, but {len(binary)} mask(s) hold only 0 and 255 "
                             f"({_some(binary)}) and {len(index)} hold other values ({_some(index)}); "
                             f"pass mask_mode='binary' or mask_mode='index' to say how to read them")
        mask_mode = "index" if index else "binary"
    if mask_mode == "binary":
        if values.size and values.max() <= 127 and values.max() > 0:
            raise ValueError(f"load_image_folder: mask_mode='binary' treats values > 127 as the object, but no "
                             f"mask value is above 127 (values found: {_some(values.tolist())}), so every mask "
                             f"would be background; for 0/1 or class-index masks use mask_mode='index'")
        masks = [(m > 127).astype(np.uint8) for m in masks]
    limit = 256 if num_classes is None else int(num_classes)

    def beyond(m):
        return (m >= limit) & (m != ignore_index) if ignore_index is not None else m >= limit

    bad = [(f, sorted(set(np.unique(m[beyond(m)]).tolist()))) for f, m in zip(files, masks) if beyond(m).any()]
    if bad:
        found = sorted(set(v for _, vs in bad for v in vs))
        hint = (" (255 often marks 'void' or 'ignore' pixels, as in Pascal VOC; pass ignore_index=255, "
                "--ignore-index 255 on the command line, or map it to a class first)") if 255 in found else ""
        what = (f"must be < num_classes={num_classes}" if num_classes is not None
                else "must be at most 255 (masks are returned as uint8)")
        if ignore_index is not None:
            what += f" or equal ignore_index={ignore_index}"
        raise ValueError(f"load_image_folder: mask values {what}, but {len(bad)} mask(s) hold {_some(found)}: "
                         f"{_some([f for f, _ in bad])}{hint}")
    return [m.astype(np.uint8) for m in masks]


# --- small helpers ------------------------------------------------------------------------------------------
def _some(items):
    """'a, b, c' or 'a, b, c, d, e and 7 more': error messages name a few, not thousands."""
    items = [str(i) for i in items]
    shown = ", ".join(items[:_MAX_LISTED])
    return shown if len(items) <= _MAX_LISTED else f"{shown} and {len(items) - _MAX_LISTED} more"
