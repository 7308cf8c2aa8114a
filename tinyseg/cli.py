"""The command line: `tinyseg train`, `tinyseg predict`, `tinyseg evaluate` (also `python -m tinyseg ...`).

`tinyseg train` with no arguments is the project's main job: it trains a small U-Net on the built-in shapes
and writes the model, its history, its curves, a prediction grid and a confusion matrix to ./tinyseg-output.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

DEFAULT_OUT = "tinyseg-output"


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(prog="tinyseg", description="Train and use U-Net segmentation models "
                                     "written from scratch in NumPy.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,predict,evaluate}")

    train = sub.add_parser("train", help="train a U-Net (default: on the built-in shapes data set)",
                           description="Train a U-Net. With no arguments: the built-in shapes data set, a small "
                           "U-Net, about two minutes on 2 CPU cores.")
    train.add_argument("--data", nargs=2, metavar=("IMAGES_DIR", "MASKS_DIR"),
                       help="train on your own images and masks (paired by file name) instead of the shapes")
    train.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    train.add_argument("--epochs", type=_positive_int, default=12, help="passes over the training set (12)")
    train.add_argument("--batch-size", type=_positive_int, default=16, help="images per step (16)")
    train.add_argument("--size", type=_positive_int, default=32,
                       help="image side in pixels; images are resized to size x size (32)")
    train.add_argument("--depth", type=_positive_int, default=2, help="U-Net poolings (2)")
    train.add_argument("--base-filters", type=_positive_int, default=16, help="filters at the first level (16)")
    train.add_argument("--no-batch-norm", action="store_true", help="leave batch normalization out")
    train.add_argument("--upsampling", choices=("transpose", "nearest", "bilinear"), default="transpose",
                       help="decoder upsampling (transpose)")
    train.add_argument("--loss", choices=("ce", "dice", "ce_dice"), default="ce_dice",
                       help="per-pixel cross-entropy, soft Dice, or their sum (ce_dice)")
    train.add_argument("--learning-rate", type=float, default=3e-3, help="Adam's learning rate (3e-3)")
    train.add_argument("--num-classes", type=_positive_int, default=None,
                       help="classes in your masks, background included (default: inferred from the masks)")
    train.add_argument("--val-fraction", type=float, default=0.2, help="share of --data held out (0.2)")
    train.add_argument("--n-train", type=_positive_int, default=2000, help="shapes: training images (2000)")
    train.add_argument("--n-val", type=_positive_int, default=200, help="shapes: validation images (200)")
    train.add_argument("--no-augment", action="store_true", help="no random flips and 90-degree rotations")
    train.add_argument("--seed", type=int, default=0, help="random seed (0)")
    train.add_argument("--threads", type=_positive_int, default=None, help="threads for the Numba kernels")
    train.add_argument("--quiet", action="store_true", help="print only the final metrics")

    predict = sub.add_parser("predict", help="write predicted masks and overlays for images",
                             description="Predict masks for images with a saved model.")
    predict.add_argument("model", help="a model file written by `tinyseg train` (model.npz)")
    predict.add_argument("images", nargs="+", help="image files (PNG, JPEG, TIFF)")
    predict.add_argument("--out", default=os.path.join(DEFAULT_OUT, "predictions"), help="output folder")

    evaluate = sub.add_parser("evaluate", help="print the metrics table of a model on images and masks",
                              description="Evaluate a saved model on a folder of images and masks.")
    evaluate.add_argument("model", help="a model file written by `tinyseg train`")
    evaluate.add_argument("--data", nargs=2, required=True, metavar=("IMAGES_DIR", "MASKS_DIR"))
    evaluate.add_argument("--batch-size", type=_positive_int, default=16)
    evaluate.add_argument("--json", help="also write the metrics to this JSON file")
    return parser


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


def _load_training_data(args):
    from .datasets import load_image_folder, load_shapes, train_val_split
    from .datasets.shapes import CLASS_NAMES
    if args.data is None:
        (x, y), (xv, yv) = load_shapes(n_train=args.n_train, n_val=args.n_val, size=args.size, seed=args.seed)
        return x, y, xv, yv, ["background"] + list(CLASS_NAMES)
    x, y, _ = load_image_folder(args.data[0], args.data[1], size=(args.size, args.size),
                                num_classes=args.num_classes)
    (x, y), (xv, yv) = train_val_split(x, y, args.val_fraction, seed=args.seed)
    k = args.num_classes or int(max(y.max(), yv.max())) + 1
    return x, y, xv, yv, ["background"] + [f"class {i}" for i in range(1, k)]


def train(args):
    from . import plotting, set_random_seed
    from .datasets import random_flip_rotate
    from .kernels import set_num_threads
    from .losses import CEDiceLoss, DiceLoss, SparseCategoricalCrossentropy
    from .metrics import ConfusionMatrix, format_table
    from .models.unet import UNet
    from .optimizers import Adam

    if args.threads:
        set_num_threads(args.threads)
    set_random_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    say = (lambda *a: None) if args.quiet else print
    t0 = time.perf_counter()
    x, y, xv, yv, class_names = _load_training_data(args)
    k = len(class_names)
    say(f"data: {len(x)} training and {len(xv)} validation images of {x.shape[1:]} with {k} classes "
        f"({time.perf_counter() - t0:.1f}s)")
    model = UNet(input_shape=x.shape[1:], num_classes=k, depth=args.depth, base_filters=args.base_filters,
                 batch_norm=not args.no_batch_norm, upsampling=args.upsampling)
    loss = {"ce": SparseCategoricalCrossentropy(), "dice": DiceLoss(), "ce_dice": CEDiceLoss()}[args.loss]
    model.compile(optimizer=Adam(learning_rate=args.learning_rate), loss=loss, metrics=["accuracy", "mean_iou"])
    if not args.quiet:
        model.summary()
    history = model.fit(x, y, epochs=args.epochs, batch_size=args.batch_size, validation_data=(xv, yv),
                        verbose=0 if args.quiet else 1, augment=None if args.no_augment else random_flip_rotate,
                        seed=args.seed, callbacks=[_RunProgress(args.epochs, args.quiet)])
    train_seconds = time.perf_counter() - t0

    pred = model.predict(xv, batch_size=args.batch_size).argmax(axis=-1)
    cm = ConfusionMatrix(k).update(yv, pred)
    result = cm.result()
    model.save(os.path.join(args.out, "model.npz"))
    with open(os.path.join(args.out, "history.json"), "w") as f:
        json.dump({"history": history.history, "seconds": train_seconds,
                   "val_mean_iou": float(result["mean_iou"]), "class_names": class_names,
                   "arguments": {k_: v for k_, v in vars(args).items() if k_ != "func"}}, f, indent=2)
    plotting.plot_history(history, os.path.join(args.out, "curves.png"), title="U-Net")
    plotting.plot_segmentation_grid(xv[:6], yv[:6], pred[:6], os.path.join(args.out, "predictions.png"),
                                    class_names)
    plotting.plot_confusion_matrix(result["confusion_matrix"], class_names,
                                   os.path.join(args.out, "confusion_matrix.png"))
    print(format_table(result, class_names))
    print(f"validation mean IoU {result['mean_iou']:.3f} after {train_seconds:.0f}s; "
          f"wrote model.npz, history.json, curves.png, predictions.png, confusion_matrix.png to {args.out}/")
    return 0


def predict(args):
    from . import plotting
    from .datasets.folder import read_image, resize_image, save_mask_png
    from .saving import load_model

    model = load_model(args.model)
    h, w, c = model.input_shape
    k = model.output_shape[-1]
    os.makedirs(args.out, exist_ok=True)
    for path in args.images:
        image = read_image(path, color_mode="grayscale" if c == 1 else "rgb")
        original = image.shape[:2]
        x = resize_image(image, (h, w))[None].astype(model.layers[0].dtype)
        probs = model.predict(x)[0]
        mask = (probs[..., 0] > 0.5).astype(np.uint8) if k == 1 else probs.argmax(axis=-1).astype(np.uint8)
        mask = resize_image(mask, original, nearest=True)
        stem = os.path.splitext(os.path.basename(path))[0]
        save_mask_png(os.path.join(args.out, f"{stem}_mask.png"), mask)
        blend = plotting.overlay(image, mask, max(k, 2))
        from matplotlib.image import imsave
        imsave(os.path.join(args.out, f"{stem}_overlay.png"), blend)
        print(f"{path}: classes {np.unique(mask).tolist()} -> {args.out}/{stem}_mask.png, {stem}_overlay.png")
    return 0


def evaluate(args):
    from .datasets import load_image_folder
    from .metrics import ConfusionMatrix, format_table
    from .saving import load_model

    model = load_model(args.model)
    h, w, c = model.input_shape
    k = max(model.output_shape[-1], 2)
    x, y, _ = load_image_folder(args.data[0], args.data[1], size=(h, w),
                                color_mode="grayscale" if c == 1 else "rgb", num_classes=k)
    probs = model.predict(x.astype(model.layers[0].dtype), batch_size=args.batch_size)
    pred = (probs[..., 0] > 0.5).astype(np.int64) if probs.shape[-1] == 1 else probs.argmax(axis=-1)
    cm = ConfusionMatrix(k, per_image=True).update(y, pred)
    result = cm.result()
    print(format_table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({key: (np.asarray(v).tolist()) for key, v in result.items()}, f, indent=2)
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    command = {"train": train, "predict": predict, "evaluate": evaluate}[args.command]
    try:
        return command(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"tinyseg {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
