"""Where a tinyseg training step spends its time: per layer type, forward and backward, and per kernel.

    python -m benchmarks.profile_layers                    # seed CNN and U-Net, 2 threads
    python -m benchmarks.profile_layers --model unet --steps 10 --threads 1 --cprofile

Every layer's forward and backward (for Conv2D / Dense: their linear part and their activation separately),
the kernels the layers call (im2col, col2im, pooling, upsampling), the loss, the optimizer and the metric
bookkeeping of train_on_batch are wrapped in timers. Times are *exclusive*: a Conv2D's own time does not
include the im2col and col2im it calls (they have their own rows), so the rows add up to the step.
What is left in a Conv2D's own time is its bands (im2col copies and matrix products, on the pool of threads
of kernels/bands.py), its bias add / bias-gradient sum and reshapes.
"""
import argparse
import collections
import cProfile
import io
import os
import pstats
import sys
import threading
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import tinyseg_models  # noqa: E402


class ExclusiveTimer:
    """Wraps callables; accumulates each key's time minus the time of wrapped calls nested inside it.

    A key is (part, phase). phase=None means "the phase of the enclosing call": a kernel called from a
    backward is counted as backward (Conv2DTranspose calls im2col in its backward and col2im in its forward).
    """

    def __init__(self):
        self.total = collections.defaultdict(float)
        self.calls = collections.defaultdict(int)
        self._stack = []
        self._phase = ["other"]

    def wrap(self, key, fn):
        part, phase = key

        def timed(*args, **kwargs):
            if threading.current_thread() is not threading.main_thread():
                return fn(*args, **kwargs)          # a band on the pool: counted in its layer's own time
            key = (part, phase or self._phase[-1])
            self._phase.append(key[1])
            self._stack.append(0.0)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                inner = self._stack.pop()
                self._phase.pop()
                self.total[key] += dt - inner
                self.calls[key] += 1
                if self._stack:
                    self._stack[-1] += dt
        return timed

    def reset(self):
        self.total.clear()
        self.calls.clear()


def instrument(model, timer):
    """Wrap every layer, kernel, the loss and the optimizer of `model` (instance attributes and module
    globals: nothing in tinyseg's source changes). Returns an undo function."""
    import types

    from tinyseg.kernels import convolution, pooling
    from tinyseg.layers.activations import LayerWithActivation
    undo = []

    def patch(obj, attr, key):
        old = getattr(obj, attr)
        setattr(obj, attr, timer.wrap(key, old))
        undo.append((obj, attr, old))

    for layer in model.layers:
        kind = type(layer).__name__
        if isinstance(layer, LayerWithActivation):
            patch(layer, "forward_linear", (kind, "forward"))
            patch(layer, "backward_linear", (kind, "backward"))
            act = layer.activation
            patch(act, "forward", (f"{type(act).__name__} (in {kind})", "forward"))
            patch(act, "backward", (f"{type(act).__name__} (in {kind})", "backward"))
        else:
            patch(layer, "forward", (kind, "forward"))       # UpSampling2D's kernels are counted in here
            patch(layer, "backward", (kind, "backward"))
    # A convolution's im2col runs inside its bands, on the pool's threads (kernels/bands.py): it is counted in
    # the Conv2D rows, with the products. col2im (strided transposed convolutions) still runs on its own.
    for module, names in ((convolution, ("col2im",)), (pooling, ("max_pool2d", "max_pool2d_backward"))):
        for name in names:
            patch(module, name, (f"kernel {name}", None))
    patch(model.loss, "forward", ("loss", "forward"))
    patch(model.loss, "backward", ("loss", "backward"))
    patch(model.optimizer, "apply_gradients", ("optimizer (Adam)", "update"))
    patch(model, "_update_metrics", ("train_on_batch: loss value and metrics", "forward"))

    def restore():
        for obj, attr, old in reversed(undo):
            if isinstance(obj, types.ModuleType):
                setattr(obj, attr, old)
            else:
                delattr(obj, attr)                          # the class's method shows through again
    return restore


def profile_model(name, model, x, y, steps, cprofile=False):
    for _ in range(2):                                   # warm-up: kernels, buffers
        model.train_on_batch(x, y)
    t = []
    for _ in range(steps):
        t0 = time.perf_counter()
        model.train_on_batch(x, y)
        t.append(time.perf_counter() - t0)
    plain_ms = sorted(t)[len(t) // 2] * 1e3

    timer = ExclusiveTimer()
    restore = instrument(model, timer)
    model.train_on_batch(x, y)
    timer.reset()
    t0 = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    step_ms = (time.perf_counter() - t0) * 1e3 / steps
    restore()

    per = {k: v * 1e3 / steps for k, v in timer.total.items()}
    accounted = sum(per.values())
    print(f"\n=== {name}: median step {plain_ms:.1f} ms uninstrumented, {step_ms:.1f} ms instrumented "
          f"({steps} steps; rows are ms per step, exclusive) ===")
    by_kind = collections.defaultdict(lambda: collections.defaultdict(float))
    for (kind, phase), ms in per.items():
        by_kind[kind][phase] += ms
    rows = sorted(by_kind.items(), key=lambda kv: -sum(kv[1].values()))
    print(f"{'part':<40}{'forward':>10}{'backward':>10}{'other':>10}{'total':>10}{'share':>8}")
    for kind, phases in rows:
        tot = sum(phases.values())
        other = sum(v for p, v in phases.items() if p not in ("forward", "backward"))
        print(f"{kind:<40}{phases.get('forward', 0):>10.2f}{phases.get('backward', 0):>10.2f}{other:>10.2f}"
              f"{tot:>10.2f}{tot / step_ms:>8.1%}")
    print(f"{'(Python glue: model loop, checks)':<40}{'':>30}{step_ms - accounted:>10.2f}"
          f"{(step_ms - accounted) / step_ms:>8.1%}")
    if cprofile:
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(steps):
            model.train_on_batch(x, y)
        prof.disable()
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(25)
        print(s.getvalue())
    return {"step_ms": plain_ms, "parts": {f"{k[0]} | {k[1]}": v for k, v in per.items()}}


def per_layer_table(model, x, y, steps):
    """ms per step for every layer instance (forward, backward; inclusive: its kernels and its activation
    are counted in it): which layers are big."""
    timer = ExclusiveTimer()
    undo = []
    for layer in model.layers:
        for phase in ("forward", "backward"):
            old = getattr(layer, phase)
            setattr(layer, phase, timer.wrap((layer.name, phase), old))
            undo.append((layer, phase))
    model.train_on_batch(x, y)
    timer.reset()
    for _ in range(steps):
        model.train_on_batch(x, y)
    for layer, phase in undo:
        delattr(layer, phase)
    print(f"{'layer':<28}{'type':<20}{'out shape':<22}{'fwd ms':>8}{'bwd ms':>8}")
    for layer in model.layers:
        f = timer.total.get((layer.name, "forward"), 0) * 1e3 / steps
        b = timer.total.get((layer.name, "backward"), 0) * 1e3 / steps
        print(f"{layer.name:<28}{type(layer).__name__:<20}{str(layer.output_shape):<22}{f:>8.2f}{b:>8.2f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=("seed", "unet", "camvid", "both"), default="both",
                   help="camvid: the U-Net at CamVid size (176x240x3, 11 classes)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cprofile", action="store_true", help="also print cProfile's top 25 functions")
    p.add_argument("--per-layer", action="store_true", help="also print every layer instance")
    args = p.parse_args(argv)
    import tinyseg.kernels
    tinyseg.kernels.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(args.threads)  # noqa: F841  (kept alive until the end)
    except ImportError:
        print("threadpoolctl not installed: BLAS threads follow OPENBLAS_NUM_THREADS", file=sys.stderr)
    if args.model in ("seed", "both"):
        x, y = tinyseg_models.seed_cnn_data(32)
        model = tinyseg_models.seed_cnn()
        profile_model("seed CNN, batch 32", model, x, y, args.steps, args.cprofile)
        if args.per_layer:
            per_layer_table(model, x, y, args.steps)
    if args.model in ("unet", "both"):
        x, y = tinyseg_models.unet_data(4)
        model = tinyseg_models.unet()
        profile_model("U-Net depth 3, 16 filters, BN, 128x128x3, batch 4", model, x, y, max(3, args.steps // 2),
                      args.cprofile)
        if args.per_layer:
            per_layer_table(model, x, y, max(3, args.steps // 2))
    if args.model == "camvid":
        shape = (176, 240, 3)
        x, y = tinyseg_models.unet_data(4, shape, 11)
        model = tinyseg_models.unet(shape, 11)
        profile_model("U-Net depth 3, 16 filters, BN, 176x240x3, 11 classes, batch 4", model, x, y,
                      max(3, args.steps // 2), args.cprofile)
        if args.per_layer:
            per_layer_table(model, x, y, max(3, args.steps // 2))


if __name__ == "__main__":
    main()
