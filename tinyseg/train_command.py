"""The work of `tinyseg train`, once tinyseg.cli has parsed and checked its flags: the data, the model, fit
with a checkpoint after every epoch (runs.EpochCheckpoint), the outputs, and the move of the finished run
into its folder (runs.finish).

    run(args)                          a new run in args.out (the caller holds the folder's lock)
    run(args, runs.resume_point(out))  an interrupted run continued from its last finished epoch

Resuming is exact: the model file keeps the optimizer's state and epochs_done, fit draws every epoch's random
numbers (data order, augmentation, dropout) from a generator seeded by (seed, epoch), and the data set of
--data starts at that epoch (SegmentationDataset.set_epoch), so the weights come out bit for bit as an
unbroken run's. The final line reports the validation mean IoU of the last epoch, the number the epoch line,
history.json and curves.png show; the table before it pools every validation pixel (metrics.json).
"""
import argparse
import os
import shutil
import textwrap
import time

import numpy as np

from .cli import SHAPES_SIZE, _size_argument
from .runs import CLASSES_FILE, RUN_FILE, UNFINISHED, check_out_folder


def check_flags(args, defaults):
    """What the flags say together, checked before any work (`defaults`: the parser's). A U-Net without
    --depth gets the depth that follows --size (model_choice.default_depth), or the files' size once read."""
    from .datasets.class_weights import parse_class_weights
    from .inference import check_multiple
    from .model_choice import UNET, check_knobs, default_depth
    check_knobs(args, defaults)
    size, crop = _size_argument(args.size, "--size"), _size_argument(args.crop, "--crop")
    if args.data is None:
        size = size or SHAPES_SIZE
    args.depth_reason = None
    if args.model == UNET and args.depth is None and size is not None:
        args.depth, args.depth_reason = default_depth(size, crop)
    for flag, value in (("--size", size), ("--crop", crop)):
        if value is not None and args.depth is not None and args.model == UNET:
            check_multiple(value, 2 ** args.depth, flag[2:], flag)
    args.class_weights_spec = parse_class_weights(args.class_weights)
    if args.class_weights_spec != "none" and args.loss == "dice":
        raise ValueError("--class-weights weight the cross-entropy: use them with --loss ce or ce_dice")
    if args.val_data is not None and args.data is None:
        raise ValueError("--val-data needs --data (the shapes make their own validation set)")


def resume(args, defaults):
    """--resume OUT: continue OUT/unfinished with the settings it was started with (`defaults`: the parser's)."""
    from .runs import RunLock, recover, resume_point
    given = sorted(f"--{k.replace('_', '-')}" for k, v in vars(args).items()
                   if k not in ("command", "resume", "quiet") and v != defaults.get(k))
    if given:
        raise ValueError(f"--resume continues a run with the settings it was started with; leave out "
                         f"{', '.join(given)}")
    check_out_folder(args.resume, "--resume")
    if not os.path.isdir(args.resume):
        raise ValueError(f"--resume {args.resume}: no such folder; give the --out of the run to continue")
    with RunLock(args.resume):
        notes = recover(args.resume, resume=True)
        if notes and not os.path.isdir(os.path.join(args.resume, UNFINISHED)):
            print(f"note: {notes[0]}; nothing to resume")     # it had finished: killed while moving in
            return 0
        record, model, earlier, best = resume_point(args.resume)
        saved = argparse.Namespace(**{**defaults, **record["arguments"]})
        saved.out, saved.quiet, saved.resume = args.resume, args.quiet, None
        check_flags(saved, defaults)
        return run(saved, (record, model, earlier, best))


class _RunProgress:
    """After each epoch: how long the whole run has left."""

    def __init__(self, epochs, initial_epoch, quiet):
        self.epochs, self.first, self.quiet, self.start = epochs, initial_epoch, quiet, time.perf_counter()

    def on_epoch_end(self, epoch, logs):
        if self.quiet:
            return
        elapsed = time.perf_counter() - self.start
        left = elapsed / (epoch + 1 - self.first) * (self.epochs - epoch - 1)
        print(f"  run: {elapsed:.0f}s elapsed, about {left:.0f}s left")


def poly_schedule(learning_rate, epochs, power=0.9):
    """The 'poly' learning-rate policy (DeepLab, Chen et al. 2017), per epoch e = 0 .. E-1:
    lr_e = lr * (1 - e / E) ** power, from lr down to lr * (1/E) ** power in the last epoch."""
    def schedule(epoch, lr):
        return learning_rate * (1 - epoch / epochs) ** power
    return schedule


def run(args, resumed=None):
    """Load the data, build (or take back) the model, fit with a checkpoint after every epoch, write the
    outputs into OUT/unfinished and move them in (runs.finish)."""
    from . import runs
    t0 = time.perf_counter()
    data = _training_data(args)
    model = _built_model(args, data) if resumed is None or resumed[1] is None else resumed[1]
    model.class_names = data.info.class_names            # saved in every model file: predict prints them
    record, _, earlier, best = resumed or (None, None, {}, None)
    if record is None:                     # the arguments as resolved: the depth chosen, not None
        record = runs.start(args.out, {k: v for k, v in vars(args).items()
                                       if k not in ("class_weights_spec", "depth_reason")})
    stage = os.path.join(args.out, UNFINISHED)
    checkpoint = runs.EpochCheckpoint(stage, record, earlier=earlier, best=best, extra={
        "class_names": data.info.class_names, "arguments": record["arguments"],
        "class_weights": None if data.weights is None else data.weights.tolist()})
    try:
        _fit(args, model, data, checkpoint)
        train_seconds = time.perf_counter() - t0
        _write_outputs(args, model, data, checkpoint, stage, train_seconds)
    except BaseException as err:               # OUT/unfinished/run.json says how it ended; the error goes on
        runs.stopped(args.out, record, err)
        raise
    outputs, earlier = runs.finish(args.out, record, time.perf_counter() - t0)
    last = checkpoint.history.get("val_mean_iou", [float("nan")])[-1]
    print(f"validation mean IoU {last:.3f} after epoch {model.epochs_done} (as in history.json and curves.png; "
          f"{data.info.num_classes} classes" + (", void ignored" if data.info.ignore_index is not None else "")
          + f") after {train_seconds:.0f}s")
    width = max(40, shutil.get_terminal_size((80, 24)).columns - 1)    # folded: no word cut at the edge
    print(textwrap.fill(f"wrote {', '.join(outputs + [RUN_FILE])} to {args.out}/", width=width,
                        subsequent_indent="  ", break_on_hyphens=False))
    if earlier is not None:
        print(f"the run that was in {args.out} is kept in {earlier}")
    return 0


def _training_data(args):
    """The run's data: x, y, xv, yv, size, crop, info (LabelInfo), palette, label_map, weights."""
    from . import set_random_seed
    from .datasets import load_shapes
    from .datasets.class_weights import class_weights
    from .datasets.label_info import LabelInfo
    from .datasets.labels import iter_masks
    from .datasets.shapes import CLASS_NAMES
    from .datasets.training_data import load_training_folders
    from .inference import check_multiple
    from .kernels import set_num_threads
    from .model_choice import UNET, default_depth
    if args.threads:
        set_num_threads(args.threads)
    set_random_seed(args.seed)
    d = argparse.Namespace(crop=_size_argument(args.crop, "--crop"), palette=None, label_map=None)
    t0, say = time.perf_counter(), (lambda *a: None) if args.quiet else print
    if args.data is None:
        d.size = _size_argument(args.size, "--size") or SHAPES_SIZE
        check_multiple(d.size, 2 ** (args.depth or 0), "size", "--size")
        (d.x, d.y), (d.xv, d.yv) = load_shapes(n_train=args.n_train, n_val=args.n_val, size=d.size, seed=args.seed)
        d.info = LabelInfo(len(CLASS_NAMES) + 1, ["background"] + list(CLASS_NAMES), None, args.ignore_index)
    else:                                  # a U-Net of no --depth and no --size: depth 0 here, then the rule
        d.x, d.y, d.xv, d.yv, d.size, d.info, d.palette, d.label_map = load_training_folders(
            args, args.depth or 0, _size_argument(args.size, "--size"))
    if args.model == UNET and args.depth is None:
        args.depth, args.depth_reason = default_depth(d.size, d.crop)
    info = d.info
    say(f"data: {len(d.x)} training and {len(d.xv)} validation images of {d.size[0]} x {d.size[1]} with "
        f"{info.num_classes} classes"
        + (f" (label {info.ignore_index} = {info.void_name}, ignored)" if info.ignore_index is not None else "")
        + (", read from disk per batch" if args.lazy else "") + f" ({time.perf_counter() - t0:.1f}s)")
    say("classes: " + ", ".join(f"{i} {n}" for i, n in enumerate(info.class_names)))
    spec = args.class_weights_spec
    d.weights = class_weights(spec, iter_masks(d.y, d.size, d.palette, d.label_map), info.num_classes,
                              info.ignore_index)
    if d.weights is not None:
        how = {"median": "median frequency", "inverse": "inverse frequency"}.get(spec, "given") \
            if isinstance(spec, str) else "given"
        say(f"class weights ({how}): " + ", ".join(f"{n} {w:.3g}" for n, w in zip(info.class_names, d.weights)))
    return d


def _built_model(args, data):
    from .losses import CEDiceLoss, DiceLoss, SparseCategoricalCrossentropy
    from .model_choice import UNET, build_model
    from .optimizers import Adam
    channels = 3 if not isinstance(data.x, np.ndarray) else data.x.shape[-1]
    k, ignore = data.info.num_classes, data.info.ignore_index
    model = build_model(args, tuple(data.crop or data.size) + (channels,), k)
    if not args.quiet:
        print(f"model: {args.model}, {model.count_params():,} parameters"
              + (f"; {args.depth_reason}" if getattr(args, "depth_reason", None) else
                 f"; depth {args.depth} (--depth)" if args.model == UNET else ""))
    loss = {"dice": lambda: DiceLoss(ignore_index=ignore),
            "ce": lambda: SparseCategoricalCrossentropy(class_weight=data.weights, ignore_index=ignore),
            "ce_dice": lambda: CEDiceLoss(class_weight=data.weights, ignore_index=ignore)}[args.loss]()
    model.compile(optimizer=Adam(learning_rate=args.learning_rate), loss=loss, metrics=["accuracy", "mean_iou"])
    if not args.quiet:
        model.summary()
    return model


def _fit(args, model, data, checkpoint):
    """model.fit from model.epochs_done on; with the seed, every epoch draws its own random numbers, so a
    resumed run repeats what an unbroken one does."""
    from .callbacks import LearningRateScheduler
    from .datasets import random_flip_rotate
    from .datasets.pipeline import SegmentationDataset
    start = model.epochs_done
    callbacks = [_RunProgress(args.epochs, start, args.quiet), checkpoint]
    if args.lr_schedule == "poly":
        callbacks.insert(0, LearningRateScheduler(poly_schedule(args.learning_rate, args.epochs)))
    common = dict(epochs=args.epochs, initial_epoch=start, verbose=0 if args.quiet else 1, callbacks=callbacks,
                  seed=args.seed)
    if args.data is None:
        train_data, data.val_data = (data.x, data.y), (data.xv, data.yv)
        common.update(batch_size=args.batch_size, augment=None if args.no_augment else random_flip_rotate)
    else:
        augment = not args.no_augment
        same = dict(ignore_index=data.info.ignore_index, palette=data.palette, label_map=data.label_map,
                    size=data.size if args.lazy else None)
        scale = (1 - args.scale_jitter, 1 + args.scale_jitter) if augment else None
        train_data = (SegmentationDataset(data.x, data.y, batch_size=args.batch_size, crop=data.crop,
                                          augment=augment, shuffle=True, seed=args.seed, flip="horizontal",
                                          scale=scale, **same),)
        train_data[0].set_epoch(start)
        data.val_data = SegmentationDataset(data.xv, data.yv, batch_size=args.batch_size, **same)
    if start < args.epochs:               # else: stopped after its last epoch, while writing the outputs
        model.fit(*train_data, validation_data=data.val_data, **common)


def _write_outputs(args, model, data, checkpoint, stage, train_seconds):
    """classes.json, metrics.json and the pictures, the whole history.json, into the run's stage folder."""
    from . import plotting
    from .files import write_json
    info = data.info
    write_json(os.path.join(stage, CLASSES_FILE), info.to_json(
        input_size=list(data.size), crop=None if data.crop is None else list(data.crop)))
    source = (data.val_data, None) if args.data is not None and args.lazy else (data.xv, data.yv)
    print("validation scores pooled over every pixel (metrics.json):")
    evaluate_and_report(model, source, info, stage, args.batch_size)
    last = checkpoint.history.get("val_mean_iou", [None])[-1]
    write_json(os.path.join(stage, "history.json"), checkpoint.history_record(seconds=train_seconds,
                                                                              val_mean_iou=last))
    plotting.plot_history(checkpoint.history, os.path.join(stage, "curves.png"), title=model.name)


def evaluate_and_report(model, source, info, out, batch_size, tile=None, overlap=0.25, extra=None):
    """Predict whole images, print the named table, write metrics.json and the three pictures to `out`."""
    from . import plotting
    from .files import write_json
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
        write_json(os.path.join(out, "metrics.json"), named)
        plotting.plot_per_class_iou(result["iou"], info.class_names, os.path.join(out, "per_class_iou.png"),
                                    colours=info.colours, title=f"per-class IoU (mean {result['mean_iou']:.3f})")
        plotting.plot_confusion_matrix(result["confusion_matrix"], info.class_names,
                                       os.path.join(out, "confusion_matrix.png"))
        if shown_x:
            plotting.plot_segmentation_grid(shown_x, shown_y, shown_p, os.path.join(out, "predictions.png"),
                                            info.class_names, colours=info.colours, ignore_index=info.ignore_index,
                                            errors=True, void_name=info.void_name)
    return result, (shown_x, shown_y, shown_p)
