# %% [markdown]
# # Tutorial 10: optimizers, learning-rate schedules, and fighting over-fitting
#
# Backpropagation gives every weight its gradient g = dL/dw. What happens next is the optimizer's choice,
# and it decides how fast a network learns and where it ends up. This tutorial trains the same small U-Net on
# the same shapes, from the same starting weights and in the same batch order, with five optimizers, and
# draws their loss curves on one plot. Then it trains on only 50 images, where a network learns its training
# set by heart, and shows what weight decay and data augmentation do about it.
#
# Run it as a script (`python tutorials/10_optimizers_and_schedules.py`: nine short trainings, a few minutes
# on two idle cores; `--quick` for a check in seconds), or open it as a notebook: the `# %%` lines are its cells.
# It writes schedules.png, optimizers.png, overfitting.png and curves.json (the numbers behind them).

# %%
import argparse
import json
import os
import time

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

import tinyseg
from tinyseg import optimizers
from tinyseg.datasets import load_shapes, random_flip_rotate
from tinyseg.datasets.shapes import SEGMENTATION_CLASS_NAMES
from tinyseg.metrics import confusion_matrix, iou, mean_iou
from tinyseg.models.unet import UNet
from tinyseg.optimizers.schedules import CosineDecay, ExponentialDecay, PiecewiseConstantDecay

parser = argparse.ArgumentParser(description="Tutorial 10: optimizers, schedules, weight decay, augmentation")
parser.add_argument("--quick", "--tiny", action="store_true", help="a few seconds, for the tests")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--out", default=os.path.join("tutorial-output", "10_optimizers_and_schedules"))
args, _ = parser.parse_known_args()         # known args only: a notebook's kernel passes flags of its own
os.makedirs(args.out, exist_ok=True)

if args.quick:
    N_TRAIN, N_VAL, EPOCHS, BATCH = 32, 16, 2, 16
    N_SMALL, SMALL_EPOCHS = 10, 3
    UNET = SMALL_UNET = dict(depth=1, base_filters=4)
else:
    N_TRAIN, N_VAL, EPOCHS, BATCH = 384, 64, 20, 16
    N_SMALL, SMALL_EPOCHS = 50, 40
    UNET = dict(depth=2, base_filters=16)          # the optimizer comparison: enough width to learn the shapes
    SMALL_UNET = dict(depth=2, base_filters=8)     # the over-fitting runs: 50 images need less
K = len(SEGMENTATION_CLASS_NAMES)
STEPS_PER_EPOCH = -(-N_TRAIN // BATCH)
TOTAL_STEPS = EPOCHS * STEPS_PER_EPOCH

(x_train, y_train), (x_val, y_val) = load_shapes(N_TRAIN, N_VAL, size=32, seed=args.seed)
print(f"{len(x_train)} training and {len(x_val)} validation images of {x_train.shape[1:]}; "
      f"{STEPS_PER_EPOCH} steps an epoch, {TOTAL_STEPS} in all")


def fresh_unet(config):
    """The same U-Net with the same starting weights every time: the generator is seeded before it is built."""
    tinyseg.set_random_seed(args.seed)
    return UNet(input_shape=(32, 32, 3), num_classes=K, **config)


# %% [markdown]
# ## What a score has to beat
#
# Most pixels of these images are background, so a "model" that answers one class everywhere, whatever the
# image, already gets a mean IoU above 0: the IoU of its class is the share of pixels that class holds, and
# every other class scores 0. The best such constant is the floor under every curve below: a network that
# ends near it has learnt nothing about the shapes. Computed on the validation masks with the same
# confusion-matrix mean IoU that `fit` reports as val_mean_iou:

# %%
constant_scores = {c: mean_iou(confusion_matrix(y_val, np.full_like(y_val, c), K)) for c in range(K)}
constant_class = max(constant_scores, key=constant_scores.get)
CONSTANT_IOU = float(constant_scores[constant_class])
print("val mean IoU of predicting one class everywhere: " + ", ".join(
    f"{SEGMENTATION_CLASS_NAMES[c]} {v:.3f}" for c, v in constant_scores.items())
    + f"; the best constant ({SEGMENTATION_CLASS_NAMES[constant_class]} everywhere) scores {CONSTANT_IOU:.3f}")


# %% [markdown]
# ## Five ways to take a step
#
# With learning rate lr and the gradient g of a weight theta (Keras's formulas, tinyseg/optimizers/):
#
# - **SGD**: `theta <- theta - lr * g`. Every weight moves in proportion to its own gradient, so the rate
#   must be small enough for the steepest direction, and the flat directions crawl.
# - **Momentum** (mu = 0.9): `v <- mu * v - lr * g;  theta <- theta + v`. The velocity v sums the recent
#   steps: directions where g keeps its sign speed up (up to 1 / (1 - mu) = 10 times), directions where it
#   flips cancel out.
# - **RMSprop**: `s <- rho * s + (1 - rho) * g^2;  theta <- theta - lr * g / sqrt(s + eps)`. Each weight's
#   step is divided by the root of a running mean of its squared gradient, so every weight moves at about the
#   rate lr, whatever the scale of its gradient.
# - **Adam**: momentum on g (m) and RMSprop's s on g^2 (v), both corrected for starting at 0:
#   `theta <- theta - lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)`.
# - **Adam with a cosine schedule and warm-up**: the same Adam whose rate changes with the step t.
#
# A schedule is given wherever a learning rate is: `Adam(learning_rate=CosineDecay(...))`. The optimizer asks
# it for the rate of every step, `lr = schedule(t)` with t = `optimizer.iterations` before the step (0 for the
# first), as Keras does. Three of Keras's schedules, drawn over this run's steps:

# %%
PEAK = 3e-3                                  # the peak rate of the schedules, and the constant Adam's rate
warmup = max(1, TOTAL_STEPS // 10)
schedules = {
    "ExponentialDecay(3e-3, decay_steps, 0.5)": ExponentialDecay(3e-3, decay_steps=TOTAL_STEPS // 3, decay_rate=0.5),
    "... staircase=True": ExponentialDecay(3e-3, decay_steps=TOTAL_STEPS // 3, decay_rate=0.5, staircase=True),
    "PiecewiseConstantDecay": PiecewiseConstantDecay([TOTAL_STEPS // 2, 3 * TOTAL_STEPS // 4], [3e-3, 1e-3, 3e-4]),
    "CosineDecay with warm-up": CosineDecay(0.0, decay_steps=TOTAL_STEPS - warmup, warmup_target=PEAK,
                                            warmup_steps=warmup),
}
schedules_fig = Figure(figsize=(7, 3.5))
ax = schedules_fig.subplots()
steps = np.arange(TOTAL_STEPS)
for name, schedule in schedules.items():
    ax.plot(steps, [schedule(t) for t in steps], label=name)
ax.set_xlabel("step t")
ax.set_ylabel("learning rate")
ax.set_title("learning-rate schedules")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
schedules_fig.tight_layout()
schedules_fig.savefig(os.path.join(args.out, "schedules.png"), dpi=90)

# %% [markdown]
# The cosine schedule climbs in a straight line from 0 for the first tenth of the run, then follows half a
# cosine down to 0:
#
#     lr(t) = T * t / W                                  for t < W          (the warm-up, T = 3e-3)
#     lr(t) = T * (1 + cos(pi * (t - W) / D)) / 2        for W <= t <= W + D
#
# Why warm up: at step 0 Adam's running averages have seen one gradient, and a fresh network's gradients are
# at their largest and least reliable; a full-size first step can throw the weights far off. Why decay: a
# large rate crosses the loss surface fast, a small one settles into a minimum instead of bouncing around it.
#
# Now the five runs. `fit(..., seed=...)` draws the same batch order for each, and `fresh_unet(UNET)` the same
# weights, so the curves differ only by the optimizer. Each optimizer gets a learning rate that suits it on
# this problem, picked from a few tries as one would in practice: plain SGD needs a rate a hundred times
# larger than the adaptive methods, whose steps are about lr in each weight's own units. The constant Adam
# runs at the cosine schedule's peak rate, so those two differ only by the schedule. After each run the
# model's prediction on the validation images is scored class by class, to see what it has learnt.

# %%
RUNS = {
    "SGD (lr 0.5)": lambda: optimizers.SGD(0.5),
    "SGD + momentum 0.9 (lr 0.1)": lambda: optimizers.SGD(0.1, momentum=0.9),
    "RMSprop (lr 3e-3)": lambda: optimizers.RMSprop(3e-3),
    "Adam (lr 3e-3)": lambda: optimizers.Adam(PEAK),
    "Adam, cosine + warm-up (peak 3e-3)": lambda: optimizers.Adam(schedules["CosineDecay with warm-up"]),
}
histories, seconds, per_class = {}, {}, {}
for name, make in RUNS.items():
    model = fresh_unet(UNET)
    model.compile(optimizer=make(), loss="sparse_categorical_crossentropy", metrics=["mean_iou"])
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=BATCH, epochs=EPOCHS, validation_data=(x_val, y_val),
                        seed=args.seed, verbose=0)
    seconds[name] = time.perf_counter() - start
    histories[name] = history.history
    per_class[name] = iou(confusion_matrix(y_val, model.predict(x_val).argmax(axis=-1), K))
    print(f"{name:<36} loss {history.history['loss'][-1]:.3f}  val_loss {history.history['val_loss'][-1]:.3f}  "
          f"val_mean_iou {history.history['val_mean_iou'][-1]:.3f}  ({seconds[name]:.0f} s)")

# %%
optimizers_fig = Figure(figsize=(12, 4.4))
loss_ax, iou_ax = optimizers_fig.subplots(1, 2)
epochs = np.arange(1, EPOCHS + 1)
for name, h in histories.items():
    loss_ax.plot(epochs, h["loss"], "o-", label=name)
    iou_ax.plot(epochs, h["val_mean_iou"], "o-", label=name)
iou_ax.axhline(CONSTANT_IOU, color="k", ls="--", lw=1.5,
               label=f"predicting {SEGMENTATION_CLASS_NAMES[constant_class]} everywhere: {CONSTANT_IOU:.2f}")
loss_ax.set_yscale("log")
loss_ax.set_title("training loss, one line per optimizer")
iou_ax.set_title("validation mean IoU, and what a constant prediction scores")
iou_ax.set_ylim(0, 1)
for ax in (loss_ax, iou_ax):
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
loss_ax.legend(fontsize=8)
iou_ax.legend(fontsize=8, loc="upper left")
optimizers_fig.tight_layout()
optimizers_fig.savefig(os.path.join(args.out, "optimizers.png"), dpi=90)
curves = {"optimizers": {"png": "optimizers.png", "runs": list(RUNS), "lines": len(loss_ax.get_lines()),
                         "final_loss": {k: h["loss"][-1] for k, h in histories.items()},
                         "final_val_mean_iou": {k: h["val_mean_iou"][-1] for k, h in histories.items()},
                         "val_iou_per_class": {k: dict(zip(SEGMENTATION_CLASS_NAMES, v.tolist()))
                                               for k, v in per_class.items()},
                         "constant_val_mean_iou": CONSTANT_IOU,
                         "constant_class": SEGMENTATION_CLASS_NAMES[constant_class],
                         "seconds": seconds}}

# %% [markdown]
# The runs ranked by their final validation mean IoU, each against the floor, with the IoU of every class
# (a class at 0 is one the network never predicts correctly: it has not learnt that shape yet), the first
# epoch whose score is twice the floor's, and how far above the floor each run was after its first epoch:

# %%
final = {name: h["val_mean_iou"][-1] for name, h in histories.items()}
for name in sorted(final, key=final.get, reverse=True):
    scores = np.array(histories[name]["val_mean_iou"])
    above = np.flatnonzero(scores > 2 * CONSTANT_IOU)
    left = f"epoch {above[0] + 1}" if above.size else "never"
    print(f"{name:<36} val mean IoU {final[name]:.3f} = {final[name] / CONSTANT_IOU:.1f} x the floor; twice the floor "
          f"from {left:<8}; after epoch 1 {scores[0] - CONSTANT_IOU:+.3f} from the floor; IoU "
          + ", ".join(f"{c} {v:.2f}" for c, v in zip(SEGMENTATION_CLASS_NAMES, per_class[name])))

# %% [markdown]
# What to look for. The dashed line is the floor: the score of a network that has found nothing. The first
# epoch's scores (printed above) show where training starts: with four pixels in five background, the
# cheapest way for cross-entropy to fall is to predict background everywhere, and a run that is still at
# the floor after its first epoch has done just that. The climb from there has two parts, which the
# per-class IoUs separate: finding *where* the shapes are (the background's IoU), and telling *which* shape
# each one is (the circle's, square's and triangle's IoUs, which need the network to look at a whole shape,
# not at a few pixels of its edge). The optimizers differ in how soon they climb. Plain SGD moves every
# weight in proportion to its own gradient, and one rate must suit the steepest direction of the loss, so
# the flat directions crawl (tutorial 12 draws this on a 2-D bowl). Momentum adds up the steps along
# directions where the gradient keeps its sign. The adaptive methods (RMSprop, Adam) move every weight at
# about the rate lr, whatever the scale of its gradient. The scheduled Adam starts slowly (its warm-up)
# and ends with small steps as its rate goes to 0, so its curve flattens at the end: it spends less of the
# run at the full rate than the constant Adam does, which a run this short feels. These are short runs on
# one seed: a ranking of close scores can change with the seed; scores several times the floor's mean the
# networks have learnt the shapes.
#
# Two more arguments every optimizer takes, as in Keras, for gradients that are sometimes far too large:
# `clipnorm=c` rescales each weight's gradient to norm at most c, `global_clipnorm=c` rescales all of them
# together by their joint norm (torch.nn.utils.clip_grad_norm_), `clipvalue=v` clips every entry to [-v, v].
# A NaN gradient is still reported as such (NonFiniteError) before any clipping.

# %% [markdown]
# ## Over-fitting, and two cures
#
# With 50 training images the U-Net can learn each one by heart: the training loss keeps falling while the
# validation loss stops falling. Two cures, alone and together:
#
# - **Weight decay** (AdamW): every step shrinks every weight a little, `theta <- theta - lr * wd * theta`,
#   before Adam's update. Weights that the data does not keep pushing back fade, which keeps the network
#   simpler. It is *decoupled*: an L2 penalty in the loss (`kernel_regularizer=regularizers.L2(...)`, also in
#   tinyseg) would be divided by Adam's sqrt(v) with the rest of the gradient, so the weights with the largest
#   gradients would be decayed least.
# - **Data augmentation**: `fit(..., augment=random_flip_rotate)` flips and turns each batch at random, the
#   image and its mask together. A triangle turned by 90 degrees is still a triangle, so the 50 images become
#   up to 400 different ones, and learning them by heart gets much harder.

# %%
x_small, y_small = x_train[:N_SMALL], y_train[:N_SMALL]
SMALL_RUNS = {
    "no regularization": (lambda: optimizers.Adam(4e-3), None),
    "weight decay (AdamW, wd 0.3)": (lambda: optimizers.AdamW(4e-3, weight_decay=0.3), None),
    "augmentation": (lambda: optimizers.Adam(4e-3), random_flip_rotate),
    "both": (lambda: optimizers.AdamW(4e-3, weight_decay=0.3), random_flip_rotate),
}
small = {}
for name, (make, augment) in SMALL_RUNS.items():
    model = fresh_unet(SMALL_UNET)
    model.compile(optimizer=make(), loss="sparse_categorical_crossentropy", metrics=["mean_iou"])
    start = time.perf_counter()
    history = model.fit(x_small, y_small, batch_size=10, epochs=SMALL_EPOCHS, validation_data=(x_val, y_val),
                        augment=augment, seed=args.seed, verbose=0)
    seconds[name] = time.perf_counter() - start
    small[name] = history.history
    h = history.history
    print(f"{name:<30} loss {h['loss'][-1]:.3f}  val_loss {h['val_loss'][-1]:.3f} (lowest {min(h['val_loss']):.3f})"
          f"  val_mean_iou {h['val_mean_iou'][-1]:.3f}  ({seconds[name]:.0f} s)")

# %%
overfitting_fig = Figure(figsize=(10, 7))
axes = overfitting_fig.subplots(2, 2, sharex=True, sharey=True).ravel()
epochs = np.arange(1, SMALL_EPOCHS + 1)
for ax, (name, h) in zip(axes, small.items()):
    ax.plot(epochs, h["loss"], "-", label="training loss")
    ax.plot(epochs, h["val_loss"], "--", label="validation loss")
    ax.set_title(name)
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
for ax in axes[2:]:
    ax.set_xlabel("epoch")
axes[0].legend()
overfitting_fig.suptitle(f"{N_SMALL} training images: training vs validation loss")
overfitting_fig.tight_layout()
overfitting_fig.savefig(os.path.join(args.out, "overfitting.png"), dpi=90)
curves["overfitting"] = {"png": "overfitting.png", "runs": list(SMALL_RUNS),
                         "lines": sum(len(ax.get_lines()) for ax in axes),
                         "final_val_loss": {k: h["val_loss"][-1] for k, h in small.items()},
                         "lowest_val_loss": {k: min(h["val_loss"]) for k, h in small.items()},
                         "final_val_mean_iou": {k: h["val_mean_iou"][-1] for k, h in small.items()}}
with open(os.path.join(args.out, "curves.json"), "w") as f:
    json.dump(curves, f, indent=1)
print(f"wrote schedules.png, optimizers.png, overfitting.png and curves.json to {args.out}/")

# %% [markdown]
# What to look for. Without help the gap between the two curves opens within a few epochs: the training loss
# keeps falling, the validation loss stops following it and jumps from epoch to epoch: a network that learnt
# its 50 images by heart is confidently wrong on some new ones, which cross-entropy punishes hard.
# Augmentation narrows the gap and lowers the validation loss: the training loss falls more slowly because the
# task really is harder. Weight decay changes little here, and the reason is worth knowing: every 3x3
# convolution of this U-Net is followed by batch normalization, which divides out the scale of its kernel, so
# shrinking the kernel does not change what the network computes; it only makes the next steps relatively
# larger (an effective learning rate that grows). Weight decay regularizes the layers whose scale matters
# (here the upsampling layers, the last 1x1 convolution and batch norm's gamma and beta), and networks without
# batch norm much more. The real cure for over-fitting is more data, and augmentation is the cheapest way to
# get some.
