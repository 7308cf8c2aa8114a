"""What the labels of a run mean: the number of classes K, their names and colours, and the void label.

    info = LabelInfo(num_classes, class_names, colours, ignore_index, void_name)
    info = label_info(names, colours, num_classes, ignore_index, inferred)      decide K and the names
    names, colours, palette = names_and_colours(palette_spec, class_names_spec, data_dirs)
    info, saved, source = saved_label_info(model_path, model)                    what a saved model's labels mean

Names come from --class-names, else from a palette file's names, else from the CamVid layout when the data
looks like CamVid, else 'background', 'class 1', .... A name list one longer than the classes whose last name
sits at the ignore index (CamVid's 'Unlabelled' at 11) names the void, not a class.
"""
import json
import os

import numpy as np

CLASSES_FILE = "classes.json"          # written beside model.npz by `tinyseg train`


class LabelInfo:
    """num_classes K, the K class names, the colours (or None), ignore_index and the void's name."""

    def __init__(self, num_classes, class_names, colours, ignore_index, void_name="void"):
        self.num_classes, self.class_names, self.colours = num_classes, class_names, colours
        self.ignore_index, self.void_name = ignore_index, void_name

    def to_json(self, **extra):
        return {"class_names": self.class_names, "num_classes": self.num_classes,
                "palette": None if self.colours is None else np.asarray(self.colours).tolist(),
                "ignore_index": self.ignore_index, "void_name": self.void_name, **extra}


def read_names(spec):
    """--class-names: 'camvid', a JSON list or text file of one name a line, or 'a,b,c'."""
    from . import camvid
    if spec.lower() == "camvid":
        return list(camvid.CLASS_NAMES) + [camvid.VOID_NAME]
    if os.path.isfile(spec):
        with open(spec) as f:
            text = f.read()
        try:
            names = json.loads(text)
        except json.JSONDecodeError:
            names = [line.strip() for line in text.splitlines() if line.strip()]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"--class-names {spec}: expected a JSON list of names or one name a line")
        return names
    return [n.strip() for n in spec.split(",") if n.strip()]


def names_and_colours(palette_spec, class_names_spec, data_dirs):
    """(names or None, colours or None, palette for label conversion or None) from --palette, --class-names
    and the data's layout."""
    from . import camvid
    from .labels import load_palette
    names = colours = convert = None
    if palette_spec is not None:
        convert, palette_names = load_palette(palette_spec)
        colours, names = convert, palette_names
    if class_names_spec is not None:
        names = read_names(class_names_spec)
        if class_names_spec.lower() == "camvid" and colours is None:
            colours = camvid.PALETTE
    elif names is None and data_dirs is not None and camvid.looks_like_camvid(*data_dirs):
        names, colours = list(camvid.CLASS_NAMES) + [camvid.VOID_NAME], camvid.PALETTE
    return names, colours, convert


def label_info(names, colours, num_classes, ignore_index, inferred):
    """Decide K (num_classes, else the number of names, else `inferred`) and the class names."""
    void_name = "void"
    if names is not None and ignore_index is not None and ignore_index == len(names) - 1:
        void_name, names = names[-1], names[:-1]
    k = num_classes or (len(names) if names is not None else inferred)
    if names is None:
        names = ["background"] + [f"class {i}" for i in range(1, k)]
    elif len(names) < k:
        raise ValueError(f"--class-names: {len(names)} names for {k} classes")
    return LabelInfo(k, list(names[:k]), colours, ignore_index, void_name)


def saved_label_info(model_path, model):
    """(LabelInfo, classes.json's contents or {}, where the names came from) for a saved model.

    The names are the model file's own (model.class_names, which `tinyseg train` saves), else those of the
    classes.json beside it (runs of older versions), else class_0, class_1, ...; the colours and the ignore
    index come from classes.json when it is there (the ignore index else from the saved loss)."""
    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), CLASSES_FILE)
    k = max(int(model.output_shape[-1]), 2)
    saved = {}
    if os.path.isfile(path):
        try:
            with open(path) as f:
                saved = json.load(f)
        except ValueError as err:
            raise ValueError(f"{path} (beside the model) is not valid JSON: {err}") from None
        if not isinstance(saved, dict):
            raise ValueError(f"{path} (beside the model) should hold a JSON object, not {type(saved).__name__}")
    names, source = model.class_names, "the model file"
    if names is None or len(names) != k:
        names, source = saved.get("class_names"), CLASSES_FILE
    if not (isinstance(names, list) and len(names) == k and all(isinstance(n, str) for n in names)):
        names, source = [f"class_{i}" for i in range(k)], "none saved"
    colours = saved.get("palette")
    if colours is not None:
        colours = np.asarray(colours)
        if colours.ndim != 2 or colours.shape[1] != 3 or colours.dtype.kind not in "iu" \
                or colours.min() < 0 or colours.max() > 255:
            raise ValueError(f"{path}: its palette should be a list of [r, g, b] colours of 0..255")
        colours = colours.astype(np.uint8) if len(colours) >= k else None    # another run's: default colours
    ignore = saved.get("ignore_index", getattr(model.loss, "ignore_index", None))
    return LabelInfo(k, list(names), colours, ignore, saved.get("void_name", "void")), saved, source


def check_eval_masks(masks, files, size, palette, info, warn):
    """Read every mask once; return (label map or None, {mask shape: count}).

    A value that is no class of the model (and not the ignore index) is an error naming the file. Masks of
    only 0 and 255 with no ignore index are binary masks, read as 0 and 1 (as train reads them); against a
    model of more than 2 classes that gets a warning (warn(text)), and so does a model class no mask holds,
    since both usually mean the masks belong to another data set (the mean IoU of such a run means little)."""
    from .labels import iter_masks
    k, ignore = info.num_classes, info.ignore_index
    first, shapes = {}, {}                    # value -> the first file that holds it; shape -> count
    for mask, name in zip(iter_masks(masks, size, palette), files):
        for v in np.unique(mask).tolist():
            first.setdefault(v, name)
        shapes[mask.shape] = shapes.get(mask.shape, 0) + 1
    classes = set(first) - {ignore}
    if ignore is None and palette is None and 255 in classes and classes <= {0, 255}:
        if k > 2:
            warn(f"the masks hold only 0 and 255 (binary masks, read as 0 and 1), but the model has {k} "
                 f"classes ({', '.join(info.class_names)}): are these masks of the data set it was trained on?")
        return (np.arange(256) > 127).astype(np.uint8), shapes
    beyond = sorted(v for v in classes if not 0 <= v < k)
    if beyond:
        v = beyond[0]
        raise ValueError(f"labels: {first[v]} holds label value {v}"
                         + (f" (and {', '.join(map(str, beyond[1:6]))})" if len(beyond) > 1 else "")
                         + f", which is not a class; the model has classes 0..{k - 1}"
                         + (f" and void {ignore}" if ignore is not None else "")
                         + (" (pass --ignore-index N if N marks the void pixels)" if ignore is None else ""))
    missing = [c for c in range(k) if c not in classes]
    if missing and classes:
        shown = ", ".join(f"{c} {info.class_names[c]}" for c in missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        warn(f"the masks hold {len(classes)} of the model's {k} classes (none of {shown}): a class no mask "
             f"holds scores IoU 0 wherever the model predicts it")
    return None, shapes
