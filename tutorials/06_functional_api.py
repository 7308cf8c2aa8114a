# %% [markdown]
# # Tutorial 6: any architecture with the functional API, and backpropagation through its graph
#
# A Sequential model is a chain; real segmentation networks are graphs. In the functional API you make a
# placeholder with `Input`, call layers on tensors, and join branches with `add` or `concatenate`:
#
#     inputs = tinyseg.Input((64, 64, 3))
#     x = layers.Conv2D(32, 3, strides=2, padding="same")(inputs)
#     shortcut = layers.Conv2D(64, 1, strides=2, padding="same")(x)
#     ...
#     x = layers.add([x, shortcut])                # a residual join
#     model = tinyseg.Model(inputs, outputs)
#
# Nothing is computed while you build: each call records a node. `Model` puts the nodes in order, forward runs
# them in that order, and backward runs them in reverse with two rules (tinyseg/graph.py): the chain rule at
# each node, and, where one tensor feeds several nodes (a residual's input feeds both branches), the *sum* of
# the gradients that come back.
#
# The network here is the Xception-style U-Net of keras.io's Oxford-pets example (tinyseg/models/xception.py:
# read it beside this script), at small widths, on the built-in shapes. The script draws the graph
# (plot_model), the loss curves, and input | truth | prediction, and ends by measuring why this network scores
# below tutorial 2's U-Net on the same shapes.
#
#     python tutorials/06_functional_api.py            # a few minutes on 2 cores
#     python tutorials/06_functional_api.py --quick    # a few seconds (the tests run this)
#
# The file is in percent format: `# %%` starts a code cell and `# %% [markdown]` a text cell, so Jupyter
# (with jupytext) and VS Code open it as a notebook.

# %%
import argparse
import os
import sys
import time

import numpy as np

import tinyseg
from tinyseg import callbacks, plotting
from tinyseg.datasets import load_shapes
from tinyseg.datasets.shapes import SEGMENTATION_CLASS_NAMES
from tinyseg.models.unet import UNet
from tinyseg.models.xception import xception_unet
from tinyseg.saving import load_model
from tinyseg.utils import PyDataset, plot_model

parser = argparse.ArgumentParser(description="Tutorial 6: any architecture with the functional API")
parser.add_argument("--epochs", type=int, default=15)
parser.add_argument("--quick", "--tiny", action="store_true", help="a few seconds, for tests")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--out", default=os.path.join("tutorial-output", "06_functional_api"))
# In a notebook, sys.argv holds the kernel's own flags: read none of them.
args = parser.parse_args([] if "ipykernel" in sys.modules else None)
os.makedirs(args.out, exist_ok=True)
tinyseg.set_random_seed(args.seed)

# %% [markdown]
# ## Batches from a PyDataset
#
# Keras's `PyDataset` is a list of batches: `len()` of them, `[i]` gives batch i, and `on_epoch_end` is
# called after every epoch (here: a new order). `fit` reads one batch at a time, so a data set need not
# fit in memory.

# %%
class ShapesBatches(PyDataset):
    """Batches of (images, masks), reshuffled after every epoch: what fit reads from a PyDataset."""

    def __init__(self, x, y, batch_size, seed=0, shuffle=True):
        super().__init__()
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(len(x))

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        return self.x[idx], self.y[idx]

    def on_epoch_end(self):
        if self.shuffle:
            self.rng.shuffle(self.order)


# %% the data and the model
n_train, n_val, epochs = (32, 8, 2) if args.quick else (1500, 200, args.epochs)
(x, y), (xv, yv) = load_shapes(n_train, n_val, size=32, seed=args.seed)
k = len(SEGMENTATION_CLASS_NAMES)
model = xception_unet((32, 32), k, filters=(16, 32, 48, 64))
model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["mean_iou"])
model.summary()
plot_model(model, os.path.join(args.out, "model.png"), show_shapes=True)

# %% [markdown]
# ## Training
#
# From the PyDataset, with two callbacks: ModelCheckpoint saves the model whenever the validation mean IoU
# is the best so far, and EarlyStopping stops when it has not improved for 4 epochs and puts back the best
# epoch's weights. Both watch the mean IoU, not the validation loss: in this network's first epochs the
# validation loss can rise for several epochs while the training loss falls (a few confident mistakes weigh
# heavily in a loss; BatchNormalization's moving statistics, which lag behind fast-changing weights, are a
# likely reason), and stopping on it once put back the first epoch's weights: a model that predicted
# background everywhere (mean IoU 0.20).
#
# Backward runs the graph's nodes in reverse; where a tensor feeds two nodes (a block's
# input feeds the separable branch and the shortcut), its gradient is the sum of the two that come back.

# %%
best = os.path.join(args.out, "best.npz")
start = time.perf_counter()
stopper = callbacks.EarlyStopping(monitor="val_mean_iou", mode="max", patience=4, restore_best_weights=True)
history = model.fit(ShapesBatches(x, y, 16, args.seed), epochs=epochs,
                    validation_data=ShapesBatches(xv, yv, 16, shuffle=False),
                    callbacks=[callbacks.ModelCheckpoint(best, monitor="val_mean_iou", mode="max", save_best_only=True),
                               stopper])
print(f"trained in {time.perf_counter() - start:.0f}s: {len(history.history['loss'])} epochs, the weights of epoch "
      f"{stopper.best_epoch + 1} kept (best val_mean_iou {stopper.best:.3f})")

# %% [markdown]
# ## The saved file is the model
#
# The best epoch's file, loaded back, predicts exactly what the model (restored to its best weights)
# predicts. The pictures: the loss and mean-IoU curves, and input | true mask | predicted mask.

# %%
reloaded = load_model(best)
pred = reloaded.predict(xv).argmax(axis=-1)
assert np.array_equal(pred, model.predict(xv).argmax(axis=-1))
result = tinyseg.metrics.ConfusionMatrix(k).update(yv, pred).result()
print(f"validation mean IoU {result['mean_iou']:.3f}")
plotting.plot_history(history, os.path.join(args.out, "curves.png"), title="Xception-style U-Net")
plotting.plot_segmentation_grid(xv, yv, pred, os.path.join(args.out, "predictions.png"),
                                SEGMENTATION_CLASS_NAMES)
print(f"wrote model.png, curves.png, predictions.png, best.npz to {args.out}/")

# %% [markdown]
# ## Why it scores below tutorial 2's U-Net
#
# Tutorial 2's U-Net reaches a mean IoU near 0.9 on these shapes; this network ends well below. The graph
# above shows the main reason. Its residual joins (Add) stay inside a block: no encoder map ever reaches the
# decoder, as U-Net's concatenated skip connections do. Everything the decoder knows passes through the
# bottleneck, and the entry block's stride 2 and three poolings leave it a grid of 32 / 16 = 2 x 2 cells.
# The outlines must be redrawn from those few cells' features.
#
# The script measures what a grid of that size can hold: each true mask cut into s x s blocks, each block
# given its most common class, and blown back up (a decoder that knew the right class for each block and
# nothing finer). It also prints the per-class IoU, and the differences in the recipe: tutorial 2 also
# trains with cross-entropy + Dice (which weighs small shapes as much as the background), Adam, and
# flipped and rotated copies of the images.

# %%
def blocky(masks, cells, num_classes):
    """Each (H, W) mask cut into cells x cells blocks, each block set to its most common class (the lowest
    class index on a tie)."""
    n, h, w = masks.shape
    bh, bw = h // cells, w // cells
    blocks = masks.reshape(n, cells, bh, cells, bw).transpose(0, 1, 3, 2, 4).reshape(n, cells, cells, bh * bw)
    counts = np.stack([(blocks == c).sum(axis=-1) for c in range(num_classes)], axis=-1)
    return np.repeat(np.repeat(counts.argmax(axis=-1), bh, axis=1), bw, axis=2)


def smallest_grid_and_joins(net):
    """The smallest spatial size among a model's layer outputs, and the kinds of its merge layers."""
    sizes = [layer.output_shape[0] for layer in net._graph.layers if layer.output_shape is not None]
    joins = sorted({type(layer).__name__ for layer in net._graph.layers if getattr(layer, "multiple_inputs", False)})
    return min(sizes), joins


bottleneck, merges = smallest_grid_and_joins(model)
unet_grid, unet_merges = smallest_grid_and_joins(UNet(input_shape=(32, 32, 3), num_classes=k, depth=2,
                                                      base_filters=16))         # tutorial 2's, untrained
print(f"this network: smallest grid {bottleneck}x{bottleneck}, joins {', '.join(merges)} (inside blocks only); "
      f"tutorial 2's U-Net: smallest grid {unet_grid}x{unet_grid}, joins {', '.join(unet_merges)} (encoder to "
      "decoder)")
iou = result["iou"]
print("per-class IoU: " + ", ".join(f"{name} {v:.2f}" for name, v in zip(SEGMENTATION_CLASS_NAMES, iou)))
ceilings = {}
for cells in (16, 8, 4, 2):
    if 32 % cells == 0:
        ceilings[cells] = tinyseg.metrics.ConfusionMatrix(k).update(yv, blocky(yv, cells, k)).result()["mean_iou"]
print("mean IoU of the true masks redrawn from a grid of cells: "
      + ", ".join(f"{c}x{c} {v:.2f}" for c, v in ceilings.items()))
at_bottleneck = ceilings.get(bottleneck)
if at_bottleneck is not None:
    verdict = "below" if result["mean_iou"] < at_bottleneck else "above"
    print(f"the model's {result['mean_iou']:.2f} is {verdict} the {at_bottleneck:.2f} of masks redrawn from its "
          f"{bottleneck}x{bottleneck} bottleneck grid" + (": it has not yet learned to redraw outlines finer than "
                                                            "its grid" if verdict == "below" else
                                                            ": its decoder draws finer than its grid, from features"))
