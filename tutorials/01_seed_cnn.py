# %% [markdown]
# # Tutorial 1: the classic Keras CIFAR-10 CNN, line by line in tinyseg
#
# The network below is the Keras tutorial's, with only the imports changed. By default it trains for a minute
# on tinyseg's built-in shapes (circle / square / triangle, no download); give `--cifar10 PATH` (the
# 'cifar-10-python.tar.gz' archive or its extracted 'cifar-10-batches-py' folder) to train on CIFAR-10, and
# `--full` for the tutorial's full 10 epochs on all of it.
#
# It draws: the loss and accuracy curves (curves.png), a few test images with their predicted class
# (predictions.png), the 32 kernels of the first convolution (filters.png: what the network looks for
# first), and what training changed in them, channel by channel (filter_change.png).
#
#     python tutorials/01_seed_cnn.py                   # about a minute, built-in shapes
#     python tutorials/01_seed_cnn.py --cifar10 ~/data/cifar-10-python.tar.gz --full
#     python tutorials/01_seed_cnn.py --quick           # a few seconds (the tests run this)
#
# The file is in percent format: `# %%` starts a code cell and `# %% [markdown]` a text cell, so Jupyter
# (with jupytext) and VS Code open it as a notebook.

# %%
import argparse
import os
import sys
import time

import numpy as np

from tinyseg import plotting, set_random_seed, visualize
from tinyseg.layers import Conv2D, Dense, Flatten, MaxPooling2D
from tinyseg.models import Sequential
from tinyseg.utils import to_categorical

parser = argparse.ArgumentParser(description="Tutorial 1: the Keras CIFAR-10 CNN, line by line in tinyseg")
parser.add_argument("--cifar10", metavar="PATH", help="CIFAR-10 archive or folder (default: built-in shapes)")
parser.add_argument("--full", action="store_true", help="10 epochs on the whole data set")
parser.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
parser.add_argument("--quick", "--tiny", action="store_true", help="a few seconds, for tests")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--out", default=os.path.join("tutorial-output", "01_seed_cnn"))
# In a notebook, sys.argv holds the kernel's own flags: read none of them.
args = parser.parse_args([] if "ipykernel" in sys.modules else None)
os.makedirs(args.out, exist_ok=True)
set_random_seed(args.seed)

# %% [markdown]
# ## The data
#
# Images become float32 in [0, 1]; labels become one-hot vectors, because `categorical_crossentropy` compares
# the predicted probabilities p with a one-hot target t: L = -sum_k t_k log p_k. CIFAR-10's labels are
# integers of shape (N, 1), and the Keras tutorial one-hots them the same way.
#
# The shapes used by default are large, clearly coloured shapes on a plain background: the class is in the
# outline alone, which this small CNN learns in three epochs (the segmentation tutorial uses the harder,
# textured default of `load_shapes`).

# %%
if args.cifar10:
    from tinyseg.datasets.cifar10 import CLASS_NAMES as class_names
    from tinyseg.datasets.cifar10 import load_cifar10
    (x_train, y_train), (x_test, y_test) = load_cifar10(args.cifar10)
    if not args.full:                                   # a quick look: 5000 training images
        x_train, y_train, x_test, y_test = x_train[:5000], y_train[:5000], x_test[:1000], y_test[:1000]
    x_train, x_test = x_train.astype("float32") / 255, x_test.astype("float32") / 255
else:
    from tinyseg.datasets.shapes import CLASS_NAMES as class_names
    from tinyseg.datasets.shapes import load_shapes
    n_train, n_test = (64, 32) if args.quick else (10000, 1000)
    (x_train, y_train), (x_test, y_test) = load_shapes(n_train, n_test, size=32, task="classification",
                                                       seed=args.seed, scale=(0.4, 0.5), texture=0.0,
                                                       min_contrast=0.5, noise=0.02)
k = len(class_names)
y_train, y_test = to_categorical(y_train, k), to_categorical(y_test, k)
print(f"training on {len(x_train)} images {x_train.shape[1:]}, testing on {len(x_test)}")

# %% [markdown]
# ## The seed program: the Keras CIFAR-10 CNN
#
# Three 3x3 convolutions with ReLU, two 2x2 max-poolings, then two dense layers. Each 'valid' convolution
# shrinks the image by 2 (H' = H - KH + 1) and each pooling halves it: 32 -> 30 -> 15 -> 13 -> 6 -> 4, so
# Flatten hands 4 * 4 * 64 = 1024 numbers to the first Dense layer. `summary()` prints these shapes and the
# parameter counts (a 3x3 convolution from C to F channels has 3 * 3 * C * F + F of them).

# %%
model = Sequential()
model.add(Conv2D(32, (3, 3), activation='relu', input_shape=(32, 32, 3)))
model.add(MaxPooling2D((2, 2)))
model.add(Conv2D(64, (3, 3), activation='relu'))
model.add(MaxPooling2D((2, 2)))
model.add(Conv2D(64, (3, 3), activation='relu'))
model.add(Flatten())
model.add(Dense(64, activation='relu'))
model.add(Dense(len(class_names), activation='softmax'))
model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
model.summary()

# %%
initial_kernel = model.layers[0].params["kernel"].copy()    # kept to see, later, what training changed
epochs = args.epochs or (1 if args.quick else 10 if args.full else 3)
start = time.perf_counter()
history = model.fit(x_train, y_train, epochs=epochs, batch_size=32, validation_data=(x_test, y_test))
print(f"trained {epochs} epochs in {time.perf_counter() - start:.1f}s")
loss, acc = model.evaluate(x_test, y_test, verbose=0)
print(f"test loss {loss:.4f}, test accuracy {acc:.4f}")

# %% [markdown]
# ## The curves
#
# One point per epoch: the training loss (averaged over the epoch's batches, while the weights moved) and the
# validation loss (on the test images, after the epoch), and the same for the accuracy. A validation curve
# that turns up while the training curve keeps falling is over-fitting (tutorial 10 shows it). The epoch
# axis has whole-number ticks: there is no epoch 1.5.

# %%
curves_fig = plotting.history_figure(history, title="seed CNN")
plotting.save_figure(curves_fig, os.path.join(args.out, "curves.png"))

probs = model.predict(x_test[:16])
titles = [f"{class_names[p]}{'' if p == t else ' (x)'}" for p, t in zip(probs.argmax(1), y_test[:16].argmax(1))]
plotting.plot_image_grid(x_test[:16], os.path.join(args.out, "predictions.png"), titles=titles,
                         suptitle="predicted class ((x): wrong)")

# %% [markdown]
# ## What the first layer looks for
#
# The first convolution's kernel has shape (3, 3, 3, 32): for each of its 32 filters, a 3x3 patch of weights
# for each of the red, green and blue input channels. Filter f answers most strongly where the image looks
# like its patch: z[i, j, f] = b[f] + sum_{u, v, c} x[i + u, j + v, c] * K[u, v, c, f], with (u, v) the
# position in the 3x3 patch and c the input channel (the notation of tinyseg/reference.py).
#
# The picture draws each filter as a tiny 3x3 RGB image, all on one scale s = max |K|: a channel value of
# 0.5 (mid-grey) is a weight of 0, and 0 and 1 are -s and +s (the colour bar). A reddish pixel of a patch
# weighs red positively there; a dark one weighs all three channels negatively. A patch bright on one side
# and dark on the other answers to an edge of that orientation.

# %%
kernel = model.layers[0].params["kernel"]                 # (3, 3, 3, 32): one RGB 3x3 patch per filter
filters_fig = visualize.filters_figure(
    kernel, title=f"first-layer kernels: {kernel.shape[-1]} filters, each a 3x3 patch of weights per "
                  "input channel, drawn as RGB")
plotting.save_figure(filters_fig, os.path.join(args.out, "filters.png"))

# %% [markdown]
# ## What training changed
#
# The kernels start as random numbers (glorot_uniform) and a few epochs move them only part of the way, so
# the trained kernels above still look mostly like the noise they began as. What the network learned is the
# change, trained - initial. filter_change.png draws it one channel at a time, each channel a 3x3 map of
# signed weights (red: the weight grew, blue: it shrank, white: unchanged), all on one scale: a red column
# beside a blue one is a vertical edge detector, a red row above a blue one a horizontal one; a patch of one
# colour all over answers to that channel's brightness, not to edges. The script measures how far the
# kernels moved, |K - K0| / |K0| (Frobenius norms), and how much of the change is "edge-like": the share of
# its energy that sums to 0 over each 3x3 patch (random 3x3 patches have 8/9 of their energy there), and
# says which way the change leans.

# %%
change = kernel - initial_kernel
centred = change - change.mean(axis=(0, 1), keepdims=True)           # each channel's 3x3 patch, mean removed
edge_share = float((centred ** 2).sum() / (change ** 2).sum())
initial_centred = initial_kernel - initial_kernel.mean(axis=(0, 1), keepdims=True)
initial_share = float((initial_centred ** 2).sum() / (initial_kernel ** 2).sum())
relative = float(np.linalg.norm(change) / np.linalg.norm(initial_kernel))
print(f"training moved the first kernels by |K - K0| / |K0| = {relative:.2f}; {edge_share:.0%} of the change's "
      f"energy sums to 0 over each 3x3 patch (edge-like), against {initial_share:.0%} of the initial kernels'")
if edge_share > initial_share:
    print("so training added more edge than flat weight: the change leans to edge detectors")
else:
    print(f"so {1 - edge_share:.0%} of the change is flat (the same weight over a patch, per channel): training "
          "tuned the filters to the colours of the shapes as much as to their edges")
change_fig = visualize.filter_channels_figure(
    change, title=f"what training changed: trained - initial first-layer kernels, {change.shape[-1]} filters, "
                  "one 3x3 map per input channel (R, G, B)")
plotting.save_figure(change_fig, os.path.join(args.out, "filter_change.png"))
print(f"wrote curves.png, predictions.png, filters.png, filter_change.png to {args.out}/")
