"""One image or mask file: read (with an error that names the file), resized, written as PNG.

    image = load_image(path)                 float32 (H, W, C) in [0, 1]; load_image_uint8: uint8 as stored
    mask = load_mask(path)                   integer (H, W) of raw pixel values (palette= converts colours)
    resize_image(image, (H, W)), resize_mask(mask, (H, W))       bilinear for images, nearest for masks
    save_image_png(path, image), save_mask_png(path, mask, palette)

Non-finite pixels (a floating-point TIFF holding NaN or infinity) are refused, naming the file: there is no
colour they could stand for. Masks are resized by nearest neighbour because interpolating a mask would invent
labels: halfway between class 1 and class 3 is not class 2.
"""
import struct

import numpy as np
from PIL import Image

from .labels import colors_to_labels

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")   # Pillow's modes for 16-bit gray (and 32-bit int)


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
            if not np.isfinite(image).all():          # NaN fails every comparison below: ask for it by name
                raise ValueError(f"load_image: {path} holds NaN or infinite pixel values; give finite values "
                                 f"in [0, 1]")
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
