"""The timed cases: what each one runs in tinyseg, in tinyseg's NumPy twins and in PyTorch, and its goal.

A case is a `Case` (name, goal, what its ratio compares) and a builder. The builder gets the sizes for the
mode and returns the callables to time, keyed by variant:

    tinyseg               tinyseg with the Numba kernels (set_backend('numba'))
    numpy                 the same tinyseg code with the plain NumPy twins (set_backend('numpy'))
    torch_nchw            PyTorch, default memory format
    torch_channels_last   PyTorch, the same tensors stored channels-last (NHWC), tinyseg's own layout
    keras                 Keras 3, only if it can be imported

Ratios (computed in report.py) are times, lower is better:

    compare='torch':  tinyseg / the faster of the two PyTorch layouts (both are also in results.json)
    compare='numpy':  Numba kernel / its NumPy twin  (a goal "Numba >= 3x faster" is ratio <= 1/3)

Every gradient is computed as a framework really does it: tinyseg by layer.backward(g); PyTorch by autograd
from a leaf tensor with requires_grad, so both produce dL/dx and every parameter gradient.
"""
import contextlib
import copy
from dataclasses import dataclass, field

import numpy as np

from . import tinyseg_models


@dataclass(frozen=True)
class Goal:
    op: str                      # '<=' or '<'
    value: float
    threads: int = None          # the goal applies at this thread count only (None: at every count)
    unit: str = "ratio"          # 'ratio', 'ms' or 'MB'

    def met(self, x):
        return x <= self.value if self.op == "<=" else x < self.value

    def text(self):
        if self.unit == "ratio":
            s = f"{self.op} {self.value:g}"
            if self.value < 1 and self.op == "<=" and abs(1 / self.value - round(1 / self.value)) < 1e-9:
                s = f"{self.op} {self.value:.3g} (>= {round(1 / self.value)}x faster)"
        else:
            s = f"{self.op} {self.value:g} {self.unit}"
        return s + (f" at {self.threads} threads" if self.threads else "")


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    goal: Goal
    compare: str                          # 'torch', 'numpy' or 'absolute'
    build: object = field(repr=False)     # build(size, ctx) -> (dict variant -> callable, info dict)
    modes: tuple = ("full", "quick", "smoke")


# ----------------------------------------------------------------------------------------------------------
# Sizes. 'full' and 'quick' use the sizes the goals name; 'smoke' only proves that every path runs.
# ----------------------------------------------------------------------------------------------------------
SIZES = {
    "full": dict(seed_batch=32, seed_hw=(32, 32),
                 conv=(16, 64, 64, 32, 32), rgb=(8, 128, 128, 3, 16),
                 pool=(32, 30, 30, 32), act=(16, 64, 64, 32), up=(16, 32, 32, 32),
                 unet_batch=4, unet_shape=(128, 128, 3), unet_base=16, unet_classes=4,
                 camvid_shape=(176, 240, 3), camvid_classes=11,
                 xunet_shape=(128, 128, 3), xunet_filters=(32, 64, 128, 256), separable=(4, 64, 64, 32, 64),
                 epoch_train=2000, epoch_val=200, peak_n=2048),
    "smoke": dict(seed_batch=2, seed_hw=(32, 32),
                  conv=(2, 8, 8, 4, 4), rgb=(2, 16, 16, 3, 4),
                  pool=(2, 6, 6, 4), act=(2, 8, 8, 4), up=(2, 4, 4, 4),
                  unet_batch=1, unet_shape=(16, 16, 3), unet_base=4, unet_classes=4,
                  camvid_shape=(16, 24, 3), camvid_classes=11,
                  xunet_shape=(32, 32, 3), xunet_filters=(4, 4, 4, 4), separable=(1, 8, 8, 4, 4),
                  epoch_train=32, epoch_val=8, peak_n=64),
}
SIZES["quick"] = SIZES["full"]

# keyword arguments of timing.time_interleaved: warm-up calls, rounds, timed calls per round (block), seconds of
# timed work after which to stop once two rounds are done, pause before each block (0: no pause, no untimed
# calls; after a pause, timing.py's `warm` seconds of untimed calls)
TIMING = {"full": dict(warmup=3, rounds=5, block=5, max_seconds=8.0),
          "quick": dict(warmup=1, rounds=2, block=3, max_seconds=1.0),
          "smoke": dict(warmup=0, rounds=1, block=1, settle=0)}
TIMING_UNET = {"full": dict(warmup=1, rounds=3, block=3, max_seconds=25.0),
               "quick": dict(warmup=0, rounds=2, block=2, max_seconds=2.0),
               "smoke": dict(warmup=0, rounds=1, block=1, settle=0)}
TIMING_EPOCH = {"full": dict(warmup=1, rounds=2, block=1, max_seconds=60.0),
                "quick": dict(warmup=0, rounds=1, block=1),
                "smoke": dict(warmup=0, rounds=1, block=1, settle=0)}


# ----------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def backend(name):
    """Run tinyseg's kernels with the 'numba' or the 'numpy' backend inside the block."""
    from tinyseg.kernels import get_backend, set_backend
    old = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        set_backend(old)


def on_backend(name, fn):
    """fn, but always run with the given tinyseg backend."""
    def run():
        with backend(name):
            return fn()
    return run


def rand(rng, shape):
    return rng.standard_normal(shape, dtype=np.float32)


def counting_faults(fn, info):
    """fn, counting the minor page faults of its calls into info['page_faults_per_call'] (a fresh buffer
    costs one per 4 KB page on first touch: a step that allocates nothing new should show few)."""
    import resource
    seen = {"faults": 0, "calls": 0}

    def run():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        out = fn()
        seen["faults"] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        seen["calls"] += 1
        info["page_faults_per_call"] = round(seen["faults"] / seen["calls"], 1)
        return out
    return run


def torch_pair(torch, *arrays_nhwc):
    """NHWC NumPy arrays -> {'torch_nchw': [tensors], 'torch_channels_last': [tensors]}: the same numbers as
    NCHW tensors, once in PyTorch's default memory layout and once stored channels-last."""
    nchw = [torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))) for a in arrays_nhwc]
    cl = [t.contiguous(memory_format=torch.channels_last) for t in nchw]
    return {"torch_nchw": nchw, "torch_channels_last": cl}


def torch_fwd_bwd(torch, op, inputs, grad, module=None):
    """A callable running y = op(*inputs) and autograd's backward from grad, as one training step would:
    leaf inputs with requires_grad (so dL/dx is computed), parameter grads cleared first."""
    leaves = [t.detach().clone(memory_format=torch.preserve_format).requires_grad_(True) for t in inputs]

    def run():
        for t in leaves:
            t.grad = None
        if module is not None:
            module.zero_grad(set_to_none=True)
        op(*leaves).backward(grad)
    return run


def torch_variants(ctx, make):
    """make(memory_format_name, torch) -> callable, for both layouts; {} without PyTorch."""
    torch = ctx.get("torch")
    if torch is None:
        return {}
    return {v: make(v, torch) for v in ("torch_nchw", "torch_channels_last")}


# ----------------------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------------------
def build_seed_cnn(size, ctx):
    hw, batch = size["seed_hw"], size["seed_batch"]
    x, y = tinyseg_models.seed_cnn_data(batch, hw)
    fns = {}
    model = tinyseg_models.seed_cnn(hw)
    info = {"params": model.count_params()}
    fns["tinyseg"] = counting_faults(on_backend("numba", lambda: model.train_on_batch(x, y)), info)
    twin = tinyseg_models.seed_cnn(hw)
    fns["numpy"] = on_backend("numpy", lambda: twin.train_on_batch(x, y))

    def make_torch(variant, torch):
        from . import torch_models
        net = torch_models.seed_cnn(input_hw=hw)
        xt = torch_pair(torch, x)[variant][0]
        if variant == "torch_channels_last":
            net = net.to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
        info["torch_params"] = sum(p.numel() for p in net.parameters())
        # y is one-hot: CrossEntropyLoss takes class probabilities as well as class indices
        return torch_train_step(torch, net, opt, xt, torch.from_numpy(y))
    fns.update(torch_variants(ctx, make_torch))
    keras_step = _keras_seed_cnn(x, y, hw, info)
    if keras_step is not None:
        fns["keras"] = keras_step
    return fns, info


def _keras_seed_cnn(x, y, hw, info):
    """The seed CNN in Keras 3, if Keras can be imported; else None (and a note says why)."""
    import importlib.util
    if importlib.util.find_spec("keras") is None:
        info["keras"] = "not installed"
        return None
    try:
        import keras
        from keras import layers
        model = keras.Sequential([
            keras.Input(shape=tuple(hw) + (3,)),
            layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.Flatten(), layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax")])
        model.compile(optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy")
        info["keras"] = f"keras {keras.__version__}, backend {keras.backend.backend()}"
        return lambda: model.train_on_batch(x, y)
    except Exception as err:                       # Keras present but unusable: record, never fail the run
        info["keras"] = f"skipped: {type(err).__name__}: {err}"
        return None


def torch_train_step(torch, net, opt, xt, yt):
    """One PyTorch training step on a fixed batch (cross-entropy; yt class indices or probabilities), as a
    timed callable."""
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xt), yt)
        loss.backward()
        opt.step()
        return loss.item()
    return step


def _build_unet(shape_key, classes_key):
    """The U-Net step at size[shape_key]; PyTorch's side is the idiomatic hand-built twin
    (torch_models.UNet: its own BatchNorm2d, ConvTranspose2d, torch.cat), PyTorch at its best. tinyseg's
    to_torch export is for the parity tests: its Keras-convention BatchNorm runs Python ops and is slower."""
    def build(size, ctx):
        shape, batch, base = size[shape_key], size["unet_batch"], size["unet_base"]
        classes = size[classes_key]
        x, y = tinyseg_models.unet_data(batch, shape, num_classes=classes)
        model = tinyseg_models.unet(shape, num_classes=classes, base_filters=base)
        info = {"params": model.count_params(), "flops_note": "training step"}
        fns = {"tinyseg": counting_faults(on_backend("numba", lambda: model.train_on_batch(x, y)), info)}
        if ctx["mode"] != "quick" and shape_key == "unet_shape":     # the NumPy-twin U-Net step takes seconds
            twin = tinyseg_models.unet(shape, num_classes=classes, base_filters=base)
            fns["numpy"] = on_backend("numpy", lambda: twin.train_on_batch(x, y))

        torch = ctx.get("torch")
        if torch is not None:
            from . import torch_models
            base_net = torch_models.UNet(shape[2], classes, 3, base, batch_norm=True)
            info["torch_model"] = "hand-built idiomatic twin (benchmarks/torch_models.py UNet)"
            info["torch_params"] = torch_models.count_params(base_net)

            def make_torch(variant, torch):
                net = copy.deepcopy(base_net).train()
                xt = torch_pair(torch, x)[variant][0]
                if variant == "torch_channels_last":
                    net = net.to(memory_format=torch.channels_last)
                opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
                return torch_train_step(torch, net, opt, xt, torch.from_numpy(y))
            fns.update(torch_variants(ctx, make_torch))
        return fns, info
    return build


build_unet = _build_unet("unet_shape", "unet_classes")
build_unet_camvid = _build_unet("camvid_shape", "camvid_classes")


def build_train_epoch(size, ctx):
    """One epoch of the default `tinyseg train` (its arguments read from tinyseg.cli's parser) against the same
    loop written in PyTorch: shuffled batches, the same flips and rotations, CE + Dice, Adam, accuracy and
    mean IoU per batch, a validation pass at the end."""
    from tinyseg.cli import SHAPES_SIZE, build_parser
    from tinyseg.datasets import load_shapes, random_flip_rotate
    from tinyseg.losses import CEDiceLoss
    from tinyseg.model_choice import default_depth
    from tinyseg.models.unet import UNet
    from tinyseg.optimizers import Adam
    args = build_parser().parse_args(["train"])
    (x, y), (xv, yv) = load_shapes(n_train=size["epoch_train"], n_val=size["epoch_val"],
                                   size=args.size or SHAPES_SIZE, seed=args.seed)
    args.depth = args.depth or default_depth(x.shape[1:3])[0]          # as train does without --depth
    k = int(max(y.max(), yv.max())) + 1
    model = UNet(input_shape=x.shape[1:], num_classes=k, depth=args.depth, base_filters=args.base_filters,
                 batch_norm=not args.no_batch_norm, upsampling=args.upsampling)
    model.compile(optimizer=Adam(learning_rate=args.learning_rate), loss=CEDiceLoss(),
                  metrics=["accuracy", "mean_iou"])
    info = {"what": f"{len(x)} training + {len(xv)} validation images {x.shape[1:]}, batch {args.batch_size}, "
                    f"U-Net depth {args.depth}, {args.base_filters} filters, {k} classes"}
    fns = {"tinyseg": on_backend("numba", lambda: model.fit(x, y, epochs=1, batch_size=args.batch_size,
                                                           validation_data=(xv, yv), verbose=0,
                                                           augment=random_flip_rotate, seed=args.seed))}

    def make_torch(variant, torch):
        from . import torch_models
        net = torch_models.UNet(x.shape[3], k, args.depth, args.base_filters, batch_norm=True).train()
        if variant == "torch_channels_last":
            net = net.to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(net.parameters(), lr=args.learning_rate, eps=1e-7)
        fmt = torch.channels_last if variant == "torch_channels_last" else torch.contiguous_format
        rng = np.random.default_rng(args.seed)

        def tensor(a):
            return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).contiguous(memory_format=fmt)

        def ce_dice(z, t):
            p = torch.softmax(z, dim=1)
            onehot = torch.nn.functional.one_hot(t, k).permute(0, 3, 1, 2).to(p.dtype)
            inter, total = (p * onehot).sum(dim=(0, 2, 3)), p.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
            return torch.nn.functional.cross_entropy(z, t) + 1 - ((2 * inter + 1) / (total + 1)).mean()

        def scores(z, t):
            pred = z.argmax(dim=1)
            conf = torch.bincount((t * k + pred).reshape(-1), minlength=k * k).reshape(k, k)
            return (pred == t).float().mean().item(), conf

        def epoch():
            net.train()
            order = rng.permutation(len(x))
            for i in range(0, len(x), args.batch_size):
                xb, yb = random_flip_rotate(x[order[i:i + args.batch_size]], y[order[i:i + args.batch_size]], rng)
                xt, yt = tensor(xb), torch.from_numpy(np.ascontiguousarray(yb)).long()
                opt.zero_grad(set_to_none=True)
                z = net(xt)
                loss = ce_dice(z, yt)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    scores(z, yt)
                loss.item()
            net.eval()
            with torch.no_grad():
                for i in range(0, len(xv), args.batch_size):
                    z = net(tensor(xv[i:i + args.batch_size]))
                    ce_dice(z, torch.from_numpy(yv[i:i + args.batch_size]).long())
                    scores(z, torch.from_numpy(yv[i:i + args.batch_size]).long())
        return epoch
    fns.update(torch_variants(ctx, make_torch))
    return fns, info


def build_matmul_peak(size, ctx):
    """The machine's float32 matrix-multiply ceiling, measured in this run: one large square product
    (N x N) @ (N x N) in NumPy's BLAS and in PyTorch; the throughput table divides by the faster."""
    n = size["peak_n"]
    rng = np.random.default_rng(11)
    a, b = rand(rng, (n, n)), rand(rng, (n, n))
    out = np.empty((n, n), np.float32)
    fns = {"tinyseg": lambda: np.matmul(a, b, out=out)}
    torch = ctx.get("torch")
    if torch is not None:
        at, bt = torch.from_numpy(a), torch.from_numpy(b)
        ot = torch.empty(n, n)
        fns["torch_nchw"] = lambda: torch.matmul(at, bt, out=ot)
    return fns, {"flops": 2.0 * n ** 3, "shape": f"({n} x {n}) @ ({n} x {n}) float32"}


def build_xception_unet(size, ctx):
    shape, batch, filters = size["xunet_shape"], size["unet_batch"], size["xunet_filters"]
    x, y = tinyseg_models.unet_data(batch, shape)
    model = tinyseg_models.xception_unet(shape, filters=filters)
    fns = {"tinyseg": on_backend("numba", lambda: model.train_on_batch(x, y))}
    info = {"params": model.count_params()}

    def make_torch(variant, torch):
        from . import torch_models
        net = torch_models.XceptionUNet(shape[2], 4, filters).train()
        info["torch_params"] = torch_models.count_params(net)
        xt = torch_pair(torch, x)[variant][0]
        if variant == "torch_channels_last":
            net = net.to(memory_format=torch.channels_last)
        opt = torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
        return torch_train_step(torch, net, opt, xt, torch.from_numpy(y))
    fns.update(torch_variants(ctx, make_torch))
    return fns, info


# ----------------------------------------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------------------------------------
def _layer_fwd_bwd(make_layer, x, grad, training=True):
    """Both tinyseg variants of forward + backward for a fresh layer each: (numba callable, numpy callable)."""
    def variant(name):
        layer = make_layer()

        def run():
            layer.forward(x, training=training)
            return layer.backward(grad)
        return on_backend(name, run)
    return {"tinyseg": variant("numba"), "numpy": variant("numpy")}


def conv3x3_same_fwd_bwd(shape, ctx, seed):
    """(fns, info) of a 3x3 'same' convolution's forward and backward, shape (N, H, W, C, F), against
    PyTorch's Conv2d in both layouts: the conv rows here and in conv_cases.py."""
    from tinyseg.layers import Conv2D
    n, h, w, c, f = shape
    rng = np.random.default_rng(seed)
    x, g = rand(rng, (n, h, w, c)), rand(rng, (n, h, w, f))
    fns = _layer_fwd_bwd(lambda: Conv2D(f, 3, padding="same"), x, g)

    def make_torch(variant, torch):
        conv = torch.nn.Conv2d(c, f, 3, padding=1)
        xt, gt = torch_pair(torch, x, g)[variant]
        if variant == "torch_channels_last":
            conv = conv.to(memory_format=torch.channels_last)
        return torch_fwd_bwd(torch, conv, [xt], gt, module=conv)
    fns.update(torch_variants(ctx, make_torch))
    return fns, {"shape": f"x {x.shape} -> {g.shape}, kernel (3, 3, {c}, {f}), same padding",
                 "algorithm": "winograd" if Conv2D(f, 3, padding="same").uses_winograd(x) else "im2col",
                 "flops": 3 * 2.0 * n * h * w * 9 * c * f}          # forward, kernel gradient, input gradient


def build_conv_fwd_bwd(size, ctx):
    return conv3x3_same_fwd_bwd(size["conv"], ctx, seed=1)


def build_separable_fwd_bwd(size, ctx):
    """SeparableConv2D (3x3 depthwise, then 1x1) forward + backward at the Xception U-Net's first separable
    layer's shape; PyTorch's twin is a grouped 3x3 Conv2d (groups=C) followed by a 1x1 Conv2d."""
    from tinyseg.layers import SeparableConv2D
    n, h, w, c, f = size["separable"]
    rng = np.random.default_rng(12)
    x, g = rand(rng, (n, h, w, c)), rand(rng, (n, h, w, f))
    fns = _layer_fwd_bwd(lambda: SeparableConv2D(f, 3, padding="same"), x, g)

    def make_torch(variant, torch):
        net = torch.nn.Sequential(torch.nn.Conv2d(c, c, 3, padding=1, groups=c), torch.nn.Conv2d(c, f, 1))
        xt, gt = torch_pair(torch, x, g)[variant]
        if variant == "torch_channels_last":
            net = net.to(memory_format=torch.channels_last)
        return torch_fwd_bwd(torch, net, [xt], gt, module=net)
    fns.update(torch_variants(ctx, make_torch))
    return fns, {"shape": f"x {x.shape} -> {g.shape}, depthwise (3, 3, {c}, 1), pointwise (1, 1, {c}, {f})",
                 "flops": 3 * 2.0 * n * h * w * (9 * c + c * f)}   # forward, kernel gradients, input gradient


def build_conv_rgb_fwd(size, ctx):
    from tinyseg.layers import Conv2D
    n, h, w, c, f = size["rgb"]
    x = rand(np.random.default_rng(2), (n, h, w, c))

    def variant(name):
        layer = Conv2D(f, 3, padding="same")
        return on_backend(name, lambda: layer.forward(x, training=False))
    fns = {"tinyseg": variant("numba"), "numpy": variant("numpy")}

    def make_torch(variant, torch):
        conv = torch.nn.Conv2d(c, f, 3, padding=1)
        xt = torch_pair(torch, x)[variant][0]
        if variant == "torch_channels_last":
            conv = conv.to(memory_format=torch.channels_last)

        def run():
            with torch.no_grad():
                return conv(xt)
        return run
    fns.update(torch_variants(ctx, make_torch))
    return fns, {"shape": f"x {x.shape} -> {(n, h, w, f)}, same padding, forward only (inference)",
                 "flops": 2.0 * n * h * w * 9 * c * f}


def build_maxpool(size, ctx):
    from tinyseg.layers import MaxPooling2D
    n, h, w, c = size["pool"]
    rng = np.random.default_rng(3)
    x, g = rand(rng, (n, h, w, c)), rand(rng, (n, h // 2, w // 2, c))
    fns = _layer_fwd_bwd(lambda: MaxPooling2D(2), x, g)

    def make_torch(variant, torch):
        xt, gt = torch_pair(torch, x, g)[variant]
        return torch_fwd_bwd(torch, lambda t: torch.nn.functional.max_pool2d(t, 2), [xt], gt)
    fns.update(torch_variants(ctx, make_torch))
    return fns, {"shape": f"x {x.shape} -> {g.shape}"}


def _build_upsampling(interpolation):
    def build(size, ctx):
        from tinyseg.layers import UpSampling2D
        n, h, w, c = size["up"]
        rng = np.random.default_rng(4)
        x, g = rand(rng, (n, h, w, c)), rand(rng, (n, 2 * h, 2 * w, c))
        fns = _layer_fwd_bwd(lambda: UpSampling2D(2, interpolation=interpolation), x, g)

        def make_torch(variant, torch):
            xt, gt = torch_pair(torch, x, g)[variant]
            kwargs = {"align_corners": False} if interpolation == "bilinear" else {}

            def op(t):
                return torch.nn.functional.interpolate(t, scale_factor=2, mode=interpolation, **kwargs)
            return torch_fwd_bwd(torch, op, [xt], gt)
        fns.update(torch_variants(ctx, make_torch))
        return fns, {"shape": f"x {x.shape} -> {g.shape}"}
    return build


def build_concatenate(size, ctx):
    from tinyseg.layers import Concatenate
    n, h, w, c = size["act"]
    rng = np.random.default_rng(5)
    a, b, g = rand(rng, (n, h, w, c)), rand(rng, (n, h, w, c)), rand(rng, (n, h, w, 2 * c))
    layer = Concatenate()

    def run():
        layer.forward([a, b], training=True)
        return layer.backward(g)
    fns = {"tinyseg": run}

    def make_torch(variant, torch):
        at, bt, gt = torch_pair(torch, a, b, g)[variant]
        return torch_fwd_bwd(torch, lambda s, t: torch.cat([s, t], dim=1), [at, bt], gt)
    fns.update(torch_variants(ctx, make_torch))
    return fns, {"shape": f"[{a.shape}, {b.shape}] -> {g.shape} (channel axis)"}


def build_batchnorm(size, ctx):
    from tinyseg.layers import BatchNormalization
    n, h, w, c = size["act"]
    rng = np.random.default_rng(6)
    x, g = rand(rng, (n, h, w, c)), rand(rng, (n, h, w, c))
    layer = BatchNormalization()

    def run():
        layer.forward(x, training=True)
        return layer.backward(g)
    fns = {"tinyseg": run}

    def make_torch(variant, torch):
        bn = torch.nn.BatchNorm2d(c, eps=1e-3, momentum=0.01).train()
        xt, gt = torch_pair(torch, x, g)[variant]
        return torch_fwd_bwd(torch, bn, [xt], gt, module=bn)
    fns.update(torch_variants(ctx, make_torch))
    return fns, {"shape": f"x {x.shape}, training mode (batch statistics)"}


def build_relu(size, ctx):
    from tinyseg.layers import ReLU
    n, h, w, c = size["act"]
    rng = np.random.default_rng(7)
    x, g = rand(rng, (n, h, w, c)), rand(rng, (n, h, w, c))
    layer = ReLU()

    def run():
        layer.forward(x, training=True)
        return layer.backward(g)
    fns = {"tinyseg": run}

    def make_torch(variant, torch):
        xt, gt = torch_pair(torch, x, g)[variant]
        return torch_fwd_bwd(torch, torch.nn.functional.relu, [xt], gt)
    fns.update(torch_variants(ctx, make_torch))
    return fns, {"shape": f"x {x.shape}"}


# ----------------------------------------------------------------------------------------------------------
# Kernels: the public kernel functions, Numba against the NumPy twin
# ----------------------------------------------------------------------------------------------------------
def _conv_geometry(size):
    n, h, w, c, _ = size["conv"]
    return (n, h, w, c), (1, 1, 1, 1), (h, w)           # 3x3, stride 1, 'same': pads 1 all round


def build_col2im(size, ctx):
    from tinyseg.kernels.im2col import col2im
    x_shape, pads, out_hw = _conv_geometry(size)
    n, h, w, c = x_shape
    cols = rand(np.random.default_rng(8), (n * out_hw[0] * out_hw[1], 9 * c))
    run = lambda: col2im(cols, x_shape, 3, 3, 1, 1, pads, out_hw)      # noqa: E731
    return ({"tinyseg": on_backend("numba", run), "numpy": on_backend("numpy", run)},
            {"shape": f"cols {cols.shape} -> x {x_shape} (3x3, stride 1, same)"})


def build_im2col(size, ctx):
    from tinyseg.kernels.im2col import im2col
    x_shape, pads, out_hw = _conv_geometry(size)
    x = rand(np.random.default_rng(9), x_shape)
    run = lambda: im2col(x, 3, 3, 1, 1, pads, out_hw)                   # noqa: E731
    return ({"tinyseg": on_backend("numba", run), "numpy": on_backend("numpy", run)},
            {"shape": f"x {x_shape} -> cols ({x_shape[0] * out_hw[0] * out_hw[1]}, {9 * x_shape[3]})"})


def build_maxpool_backward(size, ctx):
    from tinyseg.kernels.pooling import max_pool2d, max_pool2d_backward
    n, h, w, c = size["pool"]
    rng = np.random.default_rng(10)
    x = rand(rng, (n, h, w, c))
    out_hw = (h // 2, w // 2)
    with backend("numpy"):
        _, arg = max_pool2d(x, (2, 2), (2, 2), (0, 0, 0, 0), out_hw)
    g = rand(rng, (n,) + out_hw + (c,))
    run = lambda: max_pool2d_backward(g, arg, x.shape, (2, 2), (2, 2), (0, 0, 0, 0))   # noqa: E731
    return ({"tinyseg": on_backend("numba", run), "numpy": on_backend("numpy", run)},
            {"shape": f"dy {g.shape} -> dx {x.shape}"})


# ----------------------------------------------------------------------------------------------------------
# The list, in report order
# ----------------------------------------------------------------------------------------------------------
LE, LT = "<=", "<"
from . import conv_cases  # noqa: E402  (its builders use the helpers above)

CASES = [
    Case("matmul_peak", "float32 matmul peak, (2048 x 2048) @ (2048 x 2048) (NumPy BLAS vs torch; no goal)",
         None, "torch", build_matmul_peak),
    Case("seed_cnn_step", "Seed CNN training step (Adam, batch 32, 32x32x3)",
         Goal(LE, 1.0, threads=2), "torch", build_seed_cnn),
    Case("conv3x3_fwd_bwd", "Conv 3x3 64x64x32->32 same, batch 16, fwd+bwd", Goal(LE, 1.2, threads=2), "torch",
         build_conv_fwd_bwd),
    Case("conv3x3_rgb_fwd", "Conv 3x3 128x128x3->16, batch 8, fwd", Goal(LE, 2.0, threads=2), "torch",
         build_conv_rgb_fwd),
    *conv_cases.CONV_CASES,
    Case("maxpool_fwd_bwd", "MaxPool 2x2 (32,30,30,32) fwd+bwd", Goal(LT, 1.0), "torch", build_maxpool),
    Case("upsample_nearest_fwd_bwd", "UpSampling2D nearest (16,32,32,32) fwd+bwd", Goal(LT, 1.0), "torch",
         _build_upsampling("nearest")),
    Case("upsample_bilinear_fwd_bwd", "UpSampling2D bilinear (16,32,32,32) fwd+bwd", Goal(LT, 1.0), "torch",
         _build_upsampling("bilinear")),
    Case("concatenate_fwd_bwd", "Concatenate 2x(16,64,64,32) fwd+bwd", Goal(LE, 1.0, threads=2), "torch",
         build_concatenate),
    Case("batchnorm_train_fwd_bwd", "BatchNormalization (16,64,64,32) train fwd+bwd", Goal(LT, 1.0), "torch",
         build_batchnorm),
    Case("relu_fwd_bwd", "ReLU (16,64,64,32) fwd+bwd", Goal(LT, 1.0), "torch", build_relu),
    Case("unet_step", "U-Net step (depth 3, 16 filters, BN, 128x128x3, 4 classes, batch 4)",
         Goal(LE, 1.0, threads=2), "torch", build_unet),
    Case("unet_camvid_step", "U-Net step at CamVid size (depth 3, 16 filters, BN, 176x240x3, 11 classes, batch 4)",
         Goal(LE, 1.0, threads=2), "torch", build_unet_camvid),
    Case("train_epoch", "One epoch of the default `tinyseg train` (shapes, 32x32, batch 16, U-Net depth 2) "
         "vs the same loop in PyTorch; no goal", None, "torch", build_train_epoch),
    Case("xception_unet_step", "Xception-style U-Net step (functional API, RMSprop, 128x128x3, batch 4; no goal)",
         None, "torch", build_xception_unet),
    Case("separable_fwd_bwd", "SeparableConv2D 3x3 (4,64,64,32)->64 fwd+bwd (the Xception U-Net's first; no goal)",
         None, "torch", build_separable_fwd_bwd),
    Case("col2im_numba_vs_numpy", "col2im kernel, Numba vs NumPy twin (64x64x32, batch 16)",
         Goal(LE, 1 / 3), "numpy", build_col2im),
    Case("maxpool_bwd_numba_vs_numpy", "Max-pool backward kernel, Numba vs NumPy twin (32,30,30,32)",
         Goal(LE, 1 / 3), "numpy", build_maxpool_backward),
    Case("im2col_numba_vs_numpy", "im2col kernel, Numba vs NumPy twin (64x64x32, batch 16; no goal)",
         None, "numpy", build_im2col),
]
CASES_BY_NAME = {c.name: c for c in CASES}


def timing_for(case, mode):
    if case.name == "train_epoch":
        return TIMING_EPOCH[mode]
    return (TIMING_UNET if case.name in ("unet_step", "unet_camvid_step", "xception_unet_step") else TIMING)[mode]
