"""Label values: colour-coded label images to class indices, and the checks real label sets need.

A label image stores one class index per pixel (an 8-bit grayscale or palette PNG). Some data sets ship their
labels as RGB pictures instead, one colour per class (CamVid's original "LabeledApproved" files, Cityscapes'
"color" files). A palette turns them back into indices:

    palette = [[128, 128, 128], [128, 0, 0], ...]        row k is the (R, G, B) colour of class k
    labels = colors_to_labels(rgb, palette)              (H, W, 3) uint8 -> (H, W) uint8, labels[i, j] = k
                                                         where rgb[i, j] == palette[k]

A pixel whose colour is in no row of the palette has no class: colors_to_labels refuses the image and names
the colour, rather than guess.

    load_palette('camvid')                  CamVid's 12 colours (tinyseg.datasets.camvid.PALETTE)
    load_palette('colours.json')            a JSON list [[r, g, b], ...] (or "#rrggbb" strings), or an object
                                            {"colors": [...], "names": [...]}; names are optional

check_label_values and infer_num_classes apply one rule to every split of a data set: a label value v is a
class if 0 <= v < num_classes, is void if v == ignore_index, and is an error otherwise.
"""
import json
from pathlib import Path

import numpy as np

_MAX_LISTED = 5


def colors_to_labels(rgb, palette, where="the label image"):
    """(H, W, 3) colours -> (H, W) uint8 class indices, labels = k where rgb == palette[k].

    Each colour is packed into one integer, code = R * 65536 + G * 256 + B, so that finding a pixel's class is
    one sorted search among the K palette codes instead of K comparisons of three channels.
    ValueError naming `where` and the first unknown colour if a pixel's colour is not in the palette.
    """
    rgb = np.asarray(rgb)
    palette = np.asarray(palette, dtype=np.int64)
    if rgb.ndim != 3 or rgb.shape[-1] < 3:
        raise ValueError(f"colors_to_labels: {where} must be (H, W, 3) colours, got shape {rgb.shape}")
    if palette.ndim != 2 or palette.shape[1] != 3 or len(palette) > 256:
        raise ValueError(f"colors_to_labels: the palette must be (K, 3) colours with K <= 256, got shape "
                         f"{palette.shape}")
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    palette_codes = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    if len(np.unique(palette_codes)) != len(palette_codes):
        raise ValueError("colors_to_labels: two classes of the palette share a colour")
    order = np.argsort(palette_codes)
    sorted_codes = palette_codes[order]
    pos = np.minimum(np.searchsorted(sorted_codes, codes), len(sorted_codes) - 1)
    unknown = sorted_codes[pos] != codes
    if unknown.any():
        code = int(codes[unknown][0])
        colour = (code >> 16, (code >> 8) & 255, code & 255)
        raise ValueError(f"{where} has {int(unknown.sum())} pixel(s) of colour {colour} (first at row, column "
                         f"{tuple(int(i) for i in np.argwhere(unknown)[0])}), which is no colour of the "
                         f"palette's {len(palette)}")
    return order[pos].astype(np.uint8)


def _colour(value, source):
    if isinstance(value, str):
        text = value.lstrip("#")
        if len(text) != 6:
            raise ValueError(f"palette {source}: colour {value!r} is not '#rrggbb'")
        return [int(text[i:i + 2], 16) for i in (0, 2, 4)]
    if not isinstance(value, (list, tuple)) or len(value) != 3 or \
            not all(isinstance(c, int) and 0 <= c <= 255 for c in value):
        raise ValueError(f"palette {source}: each colour must be [r, g, b] with integers 0..255 or '#rrggbb', "
                         f"got {value!r}")
    return list(value)


def load_palette(spec):
    """(palette (K, 3) uint8, names or None) from 'camvid' or the path of a JSON file (module docstring)."""
    if isinstance(spec, str) and spec.lower() == "camvid":
        from . import camvid
        return camvid.PALETTE.copy(), list(camvid.CLASS_NAMES) + [camvid.VOID_NAME]
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"palette {spec!r}: no such file; give 'camvid' or a JSON file of colours "
                                f"([[r, g, b], ...] or {{\"colors\": [...], \"names\": [...]}})")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"palette {path}: not valid JSON ({err})") from None
    names = None
    if isinstance(data, dict):
        names = data.get("names", data.get("class_names"))
        data = data.get("colors", data.get("colours", data.get("palette")))
    if not isinstance(data, list) or not data:
        raise ValueError(f"palette {path}: expected a list of colours, or an object with a 'colors' list")
    colours = np.array([_colour(c, path) for c in data], dtype=np.uint8)
    if names is not None and (not isinstance(names, list) or len(names) != len(colours)):
        raise ValueError(f"palette {path}: 'names' must be a list of {len(colours)} names, one per colour")
    return colours, names


def check_label_values(masks, files, num_classes, ignore_index=None, what="labels", flags=True, scope=None):
    """Raise ValueError naming the file and the value if any label is >= num_classes (or < 0) and is not the
    ignore index. masks: a list (or array) of (H, W) integer masks; files: their file names, in order.

    flags=True mentions the command-line flags that change the rule (--num-classes, --ignore-index);
    scope says whose classes they are: "...; <scope> classes 0..K-1" (default: "the <what> have").
    """
    for mask, name in zip(masks, files):
        mask = np.asarray(mask)
        bad = (mask >= num_classes) | (mask < 0)
        if ignore_index is not None:
            bad &= mask != ignore_index
        if bad.any():
            values = np.unique(mask[bad])
            hint = (f"; {scope or f'the {what} have'} classes 0..{num_classes - 1}"
                    + (f" and void {ignore_index}" if ignore_index is not None else ""))
            if flags:
                hint += (" (set --num-classes to the number of classes, or --ignore-index to the void label"
                         + (", e.g. --ignore-index 255" if 255 in values else "") + ")")
            raise ValueError(f"{what}: {name} holds label value {int(values[0])}"
                             + (f" (and {_some(values[1:].tolist())})" if len(values) > 1 else "")
                             + f", which is not a class{hint}")


def infer_num_classes(masks, ignore_index=None):
    """1 + the largest label value that is not the ignore index (at least 2: a model needs two classes to
    tell apart, and one sigmoid channel is only for 0/255 binary masks, which load_image_folder reads)."""
    top = -1
    for mask in masks:
        mask = np.asarray(mask)
        values = mask[mask != ignore_index] if ignore_index is not None else mask
        if values.size:
            top = max(top, int(values.max()))
    return max(top + 1, 2)


def _some(items):
    items = [str(i) for i in items]
    shown = ", ".join(items[:_MAX_LISTED])
    return shown if len(items) <= _MAX_LISTED else f"{shown} and {len(items) - _MAX_LISTED} more"


def iter_masks(masks, size=None, palette=None, label_map=None):
    """Masks one by one: the rows of an (N, H, W) array, or the files of a list read one at a time (converted
    by `palette`, mapped by `label_map[mask]`, resized to `size` by nearest neighbour)."""
    if isinstance(masks, np.ndarray):
        yield from masks
        return
    from .images import load_mask, resize_mask
    for path in masks:
        mask = load_mask(path, palette=palette)
        mask = mask if label_map is None else label_map[mask]
        yield mask if size is None or mask.shape == tuple(size) else resize_mask(mask, size)


def binary_map(masks, size=None, palette=None, ignore_index=None, num_classes=2):
    """The 0/255 -> 0/1 table if every mask holds only 0 and 255 (binary masks, as load_image_folder's
    mask_mode='auto' reads them), for two classes and no void or palette; else None."""
    if num_classes != 2 or ignore_index is not None or palette is not None:
        return None
    values = set()
    for mask in iter_masks(masks, size, palette):
        values |= set(np.unique(mask).tolist())
        if not values <= {0, 255}:
            return None
    return (np.arange(256) > 127).astype(np.uint8) if 255 in values else None


def check_masks(masks, files, num_classes, ignore_index=None, what="labels", scope=None, size=None, palette=None,
                label_map=None):
    """check_label_values on masks read one at a time (iter_masks), then refuse masks that hold no pixel of
    any class: with every pixel void, the loss is 0 and every metric undefined, and training would "succeed"
    having learnt nothing."""
    counted = 0
    for mask, name in zip(iter_masks(masks, size, palette, label_map), files):
        check_label_values([mask], [name], num_classes, ignore_index, what, scope=scope)
        counted += mask.size if ignore_index is None else int(np.count_nonzero(mask != ignore_index))
    if counted == 0:
        raise ValueError(f"{what}: every pixel of every mask is the void label {ignore_index} (--ignore-index), "
                         f"so there is nothing to learn or score; check --ignore-index and the masks")
