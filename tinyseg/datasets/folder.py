"""Your own images and masks from two folders, plus the helpers a training script needs around them.

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
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from .. import backend
from .labels import colors_to_labels

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MASK_EXTENSIONS = (".png", ".tif", ".tiff")
_LOSSY_EXTENSIONS = (".jpg", ".jpeg")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")   # Pillow's modes for 16-bit gray (and 32-bit int)
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


# --- single files -------------------------------------------------------------------------------------------
def open_image(path, what="load_image"):
    """Image.open(path) with its pixels already decoded, or an error that names the file.

    Pillow reads lazily: a truncated or corrupt file opens fine and fails only when its pixels are read, with
    a message that does not say which file ("image file is truncated"). So the pixels are read here, and what
    Pillow raises for a file that is no readable image (not an image, truncated, corrupt, or a header that
    declares more than twice Image.MAX_IMAGE_PIXELS pixels: a decompression bomb) becomes one ValueError
    "<what>: <path> is not a readable image (<Pillow's reason>)". Errors of the file system (no such file,
    no permission, a folder) stay the OSError they are; they name the file already.
    """
    try:
        im = Image.open(path)
    except OSError as err:
        if err.errno is not None:                       # the file system's error, not the file's content
            raise
        raise _unreadable(path, err, what) from None
    except (Image.DecompressionBombError, SyntaxError, EOFError, ValueError, struct.error) as err:
        raise _unreadable(path, err, what) from None
    try:
        im.load()
    except (OSError, Image.DecompressionBombError, SyntaxError, EOFError, ValueError, struct.error) as err:
        im.close()
        raise _unreadable(path, err, what) from None
    return im


def _unreadable(path, err, what):
    reason = " ".join(str(err).split()) or type(err).__name__
    return ValueError(f"{what}: {path} is not a readable image ({reason})")


def load_image(path, size=None, color_mode="rgb"):
    """Read one image file as float32 (H, W, C) in [0, 1]; C = 3 for 'rgb', 1 for 'grayscale'.

    8-bit files are divided by 255, 16-bit grayscale files by 65535; an alpha channel is dropped.
    `size` (int or (H, W)) resizes with bilinear interpolation.
    """
    _check_color_mode(color_mode)
    with open_image(path, "load_image") as im:
        if im.mode in _SIXTEEN_BIT_MODES:
            gray = np.asarray(im, dtype=np.float64)
            if gray.min() < 0 or gray.max() > 65535:
                raise ValueError(f"load_image: {path} has {im.mode!r} pixels outside 0..65535")
            image = (gray / 65535)[..., None]
            if color_mode == "rgb":
                image = np.repeat(image, 3, axis=-1)
        elif im.mode == "F":
            image = np.asarray(im, dtype=np.float64)[..., None]
            if image.min() < 0 or image.max() > 1:
                raise ValueError(f"load_image: {path} is a floating-point image with values outside [0, 1]")
            if color_mode == "rgb":
                image = np.repeat(image, 3, axis=-1)
        else:   # 8-bit modes ('L', 'P', 'RGB', 'RGBA', '1', ...): let Pillow convert, then scale
            image = np.asarray(im.convert("RGB" if color_mode == "rgb" else "L"), dtype=np.float64) / 255
            if image.ndim == 2:
                image = image[..., None]
    image = image.astype(np.float32)
    return image if size is None else resize_image(image, size)


read_image = load_image       # the name the command-line interface uses


def load_image_uint8(path, color_mode="rgb"):
    """Read one image file as uint8 (H, W, C), its 8-bit values unchanged (16-bit files: round(v / 257), the
    nearest 8-bit level); C = 3 for 'rgb', 1 for 'grayscale'. An alpha channel is dropped."""
    _check_color_mode(color_mode)
    with open_image(path, "load_image") as im:
        if im.mode in _SIXTEEN_BIT_MODES or im.mode == "F":
            image = load_image(path, color_mode=color_mode)          # [0, 1] floats, checked there
            return np.round(image * 255).astype(np.uint8)
        image = np.asarray(im.convert("RGB" if color_mode == "rgb" else "L"), dtype=np.uint8)
    return image[..., None] if image.ndim == 2 else image


def load_mask(path, size=None, palette=None):
    """Read one mask file as stored: an integer (H, W) array of raw pixel values, in the file's own type (uint8
    for 8-bit files, uint16 for 16-bit ones), for `load_image_folder` to interpret by its mask_mode.

    'P' gives palette indices, 'L' gray levels, '1' 0 or 255; an RGB(A) mask is accepted only if its three
    colour channels are equal, or, with `palette` ((K, 3) colours), converted colour by colour to class
    indices (labels.colors_to_labels). `size` resizes with nearest neighbour.
    """
    with open_image(path, "load_mask") as im:
        mode = im.mode
        if mode == "1":
            mask = np.asarray(im.convert("L"))                      # 0 and 255, like an 'L' binary mask
        elif mode in ("RGB", "RGBA", "LA", "PA"):
            bands = np.asarray(im)
            colour = bands[..., :3] if mode in ("RGB", "RGBA") else bands[..., :1]   # drop alpha
            if palette is not None and colour.shape[-1] == 3:
                mask = colors_to_labels(colour, palette, where=f"load_mask: {path}")
            elif np.any(colour != colour[..., :1]):
                raise ValueError(f"load_mask: {path} is an {mode} image whose channels differ: it looks like "
                                 f"colour-coded labels (one colour per class), not class indices. Convert the "
                                 f"colours with a palette (--palette camvid or --palette colours.json on the "
                                 f"command line; palette=... in Python), or save it as a grayscale ('L') or "
                                 f"palette ('P') PNG of class indices")
            else:
                mask = colour[..., 0]
        elif mode in ("L", "P", "F") or mode in _SIXTEEN_BIT_MODES:
            mask = np.asarray(im)
        else:
            raise ValueError(f"load_mask: {path} has Pillow mode {mode!r}; masks must be single-channel "
                             f"('L', 'P', '1', 'I;16', 'I' or 'F')")
    if mask.dtype.kind == "f":
        if not np.all(np.isfinite(mask)) or np.any(mask != np.round(mask)):
            raise ValueError(f"load_mask: {path} holds non-integer values; mask values are class indices")
        mask = mask.astype(np.int64)
    elif mask.dtype == bool:
        mask = mask.astype(np.uint8)
    return mask if size is None else resize_mask(mask, size)


def resize_image(image, size, nearest=False):
    """Resize an (H, W, C) or (H, W) array to size = S or (H', W').

    nearest=False: bilinear interpolation, channel by channel, for float images in [0, 1] (returns float32);
                   uint8 images come back uint8.
    nearest=True: nearest neighbour (`resize_mask`), for masks and other labels; keeps the dtype.
    """
    if nearest:
        return resize_mask(image, size)
    image = np.asarray(image)
    if image.ndim == 2:
        return resize_image(image[..., None], size)[..., 0]
    height, width = _check_size(size)
    if image.dtype == np.uint8:
        # 8-bit images stay 8-bit: Pillow interpolates uint8 'RGB' and 'L' images itself, rounding to 0..255
        mode = {1: "L", 3: "RGB"}.get(image.shape[-1])
        if mode is not None:
            im = Image.fromarray(np.ascontiguousarray(image if mode == "RGB" else image[..., 0]))   # uint8 -> mode
            out = np.asarray(im.resize((width, height), Image.Resampling.BILINEAR))
            return out if mode == "RGB" else out[..., None]
        image = image.astype(np.float32) / 255
        return np.round(resize_image(image, size) * 255).astype(np.uint8)
    # Pillow's 'F' mode holds one float32 channel; PIL sizes are (width, height), NumPy shapes (height, width).
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c], dtype=np.float32))
                           .resize((width, height), Image.Resampling.BILINEAR))
                for c in range(image.shape[-1])]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


def resize_mask(mask, size):
    """Nearest-neighbour resize of an (H, W) mask (or (H, W, K)) to size = S or (H', W'): output pixel i copies
    input pixel floor((i + 0.5) * H / H'), the one whose area contains its centre. No value is invented."""
    mask = np.asarray(mask)
    height, width = _check_size(size)
    rows = np.minimum(((np.arange(height) + 0.5) * mask.shape[0] / height).astype(int), mask.shape[0] - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * mask.shape[1] / width).astype(int), mask.shape[1] - 1)
    return mask[rows[:, None], cols[None, :]]


def save_image_png(path, image):
    """Write a float image (H, W), (H, W, 1) or (H, W, 3) with values in [0, 1] (clipped) as an 8-bit PNG."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] != 3):
        raise ValueError(f"save_image_png: expected (H, W), (H, W, 1) or (H, W, 3), got shape {image.shape}")
    if not np.all(np.isfinite(image)):
        raise ValueError("save_image_png: image holds NaN or infinite values")
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(path, format="PNG")


def save_mask_png(path, mask, palette=False):
    """Write an (H, W) mask of class indices 0..255 as a PNG that `load_mask` reads back unchanged.

    palette=False writes a grayscale ('L') PNG: exact, but class 1 next to class 0 looks black to the eye.
    palette=True writes a palette ('P') PNG with Pascal VOC's colours (0 black, 1 dark red, 2 green, ...), so
    the classes are visible in any image viewer; the stored values are still the class indices.
    palette=(K, 3) uint8 colours (K <= 256) writes a 'P' PNG with those colours for classes 0..K-1.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"save_mask_png: expected an (H, W) mask, got shape {mask.shape}")
    if mask.dtype.kind not in "biu" or (mask.size and (mask.min() < 0 or mask.max() > 255)):
        raise ValueError("save_mask_png: mask must hold integer class indices in 0..255")
    colours = None
    if palette is not None and not isinstance(palette, bool):
        colours = np.asarray(palette)
        if colours.ndim != 2 or colours.shape[1] != 3 or not 1 <= len(colours) <= 256 or \
                colours.dtype.kind not in "iu" or colours.min() < 0 or colours.max() > 255:
            raise ValueError(f"save_mask_png: palette must be True, False or (K, 3) colours of 0..255 with "
                             f"K <= 256, got shape {colours.shape}")
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    if colours is not None or palette is True:
        im = Image.frombytes("P", (mask.shape[1], mask.shape[0]), mask.tobytes())   # PIL sizes are (W, H)
        im.putpalette(voc_palette() if colours is None else colours.astype(np.uint8).ravel().tolist())
    else:
        im = Image.fromarray(mask)                                                # uint8 (H, W) -> mode 'L'
    im.save(path, format="PNG")


def voc_palette():
    """Pascal VOC's 256-colour palette as a flat [r0, g0, b0, r1, ...] list: the bits of the class index are
    dealt out to red, green and blue, most significant colour bit first, so nearby classes look different."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette += [r, g, b]
    return palette


# --- augmentation and splitting -----------------------------------------------------------------------------
def random_flip_rotate(x, y, rng=None):
    """Random flips and quarter turns, the same for each image and its mask.

    Sample i is flipped upside down with probability 1/2, left-right with probability 1/2, then rotated by
    k * 90 degrees, k uniform in {0, 1, 2, 3}; for non-square images only k in {0, 2} (a quarter turn would
    swap height and width). These transforms move pixels without changing them, so a mask stays exact.

    Parameters
    ----------
    x : (N, H, W, C) images.
    y : (N, H, W) masks or (N, H, W, K) one-hot masks, or None.
    rng : a numpy Generator, an int seed, or None for tinyseg's shared generator (`set_random_seed`).

    Returns
    -------
    x_aug, y_aug : new arrays of the same shapes and dtypes (y_aug is None if y is None).
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"random_flip_rotate: x must be (N, H, W, C), got shape {x.shape}")
    if y is not None:
        y = np.asarray(y)
        if y.ndim not in (3, 4) or y.shape[:3] != x.shape[:3]:
            raise ValueError(f"random_flip_rotate: y must be (N, H, W) or (N, H, W, K) matching x {x.shape}, "
                             f"got shape {y.shape}")
    rng = backend.rng() if rng is None else np.random.default_rng(rng)
    n, height, width = x.shape[:3]
    flip_ud = rng.integers(0, 2, size=n).astype(bool)
    flip_lr = rng.integers(0, 2, size=n).astype(bool)
    turns = rng.integers(0, 4, size=n) if height == width else 2 * rng.integers(0, 2, size=n)

    x_out = np.empty_like(x)
    y_out = None if y is None else np.empty_like(y)
    # Samples that drew the same transform are transformed together: at most 16 groups, never a loop over N.
    for ud, lr, k in set(zip(flip_ud.tolist(), flip_lr.tolist(), turns.tolist())):
        group = np.flatnonzero((flip_ud == ud) & (flip_lr == lr) & (turns == k))
        x_out[group] = _flip_rotate(x[group], ud, lr, k)
        if y is not None:
            y_out[group] = _flip_rotate(y[group], ud, lr, k)
    return x_out, y_out


def _flip_rotate(batch, flip_ud, flip_lr, turns):
    """Flip then rotate a batch over its spatial axes 1 (height) and 2 (width)."""
    if flip_ud:
        batch = batch[:, ::-1]
    if flip_lr:
        batch = batch[:, :, ::-1]
    return np.rot90(batch, turns, axes=(1, 2))


def train_val_split(x, y, val_fraction=0.2, seed=0):
    """Shuffle and split into ((x_train, y_train), (x_val, y_val)), with round(N * val_fraction) validation
    samples; the same seed gives the same split."""
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"train_val_split: x and y have different lengths, {len(x)} and {len(y)}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"train_val_split: val_fraction must be between 0 and 1, got {val_fraction!r}")
    n_val = int(round(len(x) * val_fraction))
    if not 0 < n_val < len(x):
        raise ValueError(f"train_val_split: {len(x)} samples with val_fraction={val_fraction} leave "
                         f"{n_val} for validation and {len(x) - n_val} for training; each needs at least one")
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


# --- small helpers ------------------------------------------------------------------------------------------
def _check_color_mode(color_mode):
    if color_mode not in ("rgb", "grayscale"):
        raise ValueError(f"color_mode must be 'rgb' or 'grayscale', got {color_mode!r}")


def _check_size(size):
    if isinstance(size, (int, np.integer)):
        size = (size, size)
    if len(size) != 2 or any(not isinstance(s, (int, np.integer)) or s < 1 for s in size):
        raise ValueError(f"size must be a positive int or (height, width), got {size!r}")
    return int(size[0]), int(size[1])


def _hw(shape):
    return f"{shape[0]}x{shape[1]}"


def _some(items):
    """'a, b, c' or 'a, b, c, d, e and 7 more': error messages name a few, not thousands."""
    items = [str(i) for i in items]
    shown = ", ".join(items[:_MAX_LISTED])
    return shown if len(items) <= _MAX_LISTED else f"{shown} and {len(items) - _MAX_LISTED} more"
