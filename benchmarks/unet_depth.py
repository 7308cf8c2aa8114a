"""The measurement behind `tinyseg train`'s default U-Net depth: U-Nets of several depths, the same batches,
loss, optimizer and steps (benchmarks/architectures.py's setup), and their validation mean IoU beside the
receptive field of each (tinyseg.model_choice.unet_receptive_field) and the image's shorter side.

    python -m benchmarks.unet_depth                          # CamVid at 96 x 128, depths 2 3 4, 200 steps
    python -m benchmarks.unet_depth --quick

Writes OUT/unet_depth.md and OUT/unet_depth.json.
"""
import json
import os
import sys

if __package__ in (None, ""):                      # run as a script: make `tinyseg` importable from the repo
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import architectures as arch  # noqa: E402


def main(argv=None):
    argv = given = list(sys.argv[1:] if argv is None else argv)
    depths = [2, 3, 4]
    if "--depths" in argv:                         # --depths D1 D2 ...: the rest goes to architectures' parser
        i = argv.index("--depths")
        j = next((k for k in range(i + 1, len(argv)) if argv[k].startswith("--")), len(argv))
        depths, argv = [int(d) for d in argv[i + 1:j]], argv[:i] + argv[j:]
    args = arch.parse_args(argv)
    from benchmarks.quality import load
    from tinyseg.datasets.class_weights import class_weights
    from tinyseg.kernels import set_num_threads
    from tinyseg.model_choice import default_depth, unet_receptive_field
    set_num_threads(args.threads)
    x, y, xv, yv, names, ignore, description = load(args)
    k, shape = len(names), tuple(x.shape[1:3]) + (x.shape[-1],)
    weights = class_weights("median", y, k, ignore)
    chosen = default_depth(shape[:2])[0]
    rows = {}
    for depth in depths:
        model, seconds = arch.train("unet", args.steps, shape, k, args, weights, ignore, x, y, depth=depth)
        result, _ = arch.scores(model, xv, yv, k, ignore, args, names)
        rows[depth] = {**result, "seconds": seconds, "receptive_field": unet_receptive_field(depth),
                       "parameters": model.count_params()}
        print(f"depth {depth}: val mIoU {result['mean_iou']:.4f} ({seconds:.0f} s)", flush=True)
    command = "python -m benchmarks.unet_depth " + " ".join(given)
    lines = [f"U-Net depths on {description} ({len(x)} training images at {shape[0]} x {shape[1]}, shorter "
             f"side {min(shape[:2])}; {args.steps} steps of batch {args.batch_size}, the setup of "
             f"benchmarks/architectures.py). The CLI's rule picks depth {chosen}.", "",
             f"Command: `{command.strip()}`", "",
             "| depth | receptive field (pixels) | parameters | training time (s) | val mIoU |",
             "|---|---:|---:|---:|---:|"]
    for depth, r in rows.items():
        lines.append(f"| {depth}{' (rule)' if depth == chosen else ''} | {r['receptive_field']} | "
                     f"{r['parameters']:,} | {r['seconds']:.0f} | {r['mean_iou']:.4f} |")
    report = "\n".join(lines)
    print(report)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "unet_depth.md"), "w") as f:
        f.write(report + "\n")
    with open(os.path.join(args.out, "unet_depth.json"), "w") as f:
        json.dump({"command": command, "data": description, "rule": chosen,
                   "runs": {str(d): r for d, r in rows.items()}}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
