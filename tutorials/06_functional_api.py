"""Tutorial 6: any architecture with the functional API, and backpropagation through its graph.

A Sequential model is a chain; real segmentation networks are graphs. In the functional API you make a
placeholder with `Input`, call layers on tensors, and join branches with `add` or `concatenate`:

    inputs = tinyseg.Input((64, 64, 3))
    x = layers.Conv2D(32, 3, strides=2, padding="same")(inputs)
    shortcut = layers.Conv2D(64, 1, strides=2, padding="same")(x)
    ...
    x = layers.add([x, shortcut])                # a residual join
    model = tinyseg.Model(inputs, outputs)

Nothing is computed while you build: each call records a node. `Model` puts the nodes in order, forward runs
them in that order, and backward runs them in reverse with two rules (tinyseg/graph.py): the chain rule at
each node, and, where one tensor feeds several nodes (a residual's input feeds both branches), the *sum* of
the gradients that come back.

The network here is the Xception-style U-Net of keras.io's Oxford-pets example (tinyseg/models/xception.py:
read it beside this script), at small widths, on the built-in shapes. The script draws the graph
(plot_model), the loss curves, and input | truth | prediction.

    python tutorials/06_functional_api.py            # a few minutes on 2 cores
"""
# %%
import argparse
import os
import time

import numpy as np

import tinyseg
from tinyseg import callbacks, plotting
from tinyseg.datasets import load_shapes
from tinyseg.datasets.shapes import SEGMENTATION_CLASS_NAMES
from tinyseg.models.xception import xception_unet
from tinyseg.saving import load_model
from tinyseg.utils import PyDataset, plot_model


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--tiny", action="store_true", help="a few seconds, for tests")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join("tutorial-output", "06_functional_api"))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    tinyseg.set_random_seed(args.seed)

    # %% the data and the model
    n_train, n_val, epochs = (32, 8, 2) if args.tiny else (1500, 200, args.epochs)
    (x, y), (xv, yv) = load_shapes(n_train, n_val, size=32, seed=args.seed)
    k = len(SEGMENTATION_CLASS_NAMES)
    model = xception_unet((32, 32), k, filters=(16, 32, 48, 64))
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["mean_iou"])
    model.summary()
    plot_model(model, os.path.join(args.out, "model.png"), show_shapes=True)

    # %% train from a PyDataset, keep the best epoch, stop when validation stops improving
    best = os.path.join(args.out, "best.npz")
    start = time.perf_counter()
    history = model.fit(ShapesBatches(x, y, 16, args.seed), epochs=epochs,
                        validation_data=ShapesBatches(xv, yv, 16, shuffle=False),
                        callbacks=[callbacks.ModelCheckpoint(best, save_best_only=True),
                                   callbacks.EarlyStopping(patience=4, restore_best_weights=True)])
    print(f"trained in {time.perf_counter() - start:.0f}s")

    # %% the best epoch's file predicts what the model (restored to its best weights) predicts
    reloaded = load_model(best)
    pred = reloaded.predict(xv).argmax(axis=-1)
    assert np.array_equal(pred, model.predict(xv).argmax(axis=-1))
    result = tinyseg.metrics.ConfusionMatrix(k).update(yv, pred).result()
    print(f"validation mean IoU {result['mean_iou']:.3f}")
    plotting.plot_history(history, os.path.join(args.out, "curves.png"), title="Xception-style U-Net")
    plotting.plot_segmentation_grid(xv, yv, pred, os.path.join(args.out, "predictions.png"),
                                    SEGMENTATION_CLASS_NAMES)
    print(f"wrote model.png, curves.png, predictions.png, best.npz to {args.out}/")
    return result


if __name__ == "__main__":
    main()
