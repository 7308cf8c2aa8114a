# %% [markdown]
# # Tutorial 2: a U-Net from scratch segments the built-in shapes, pixel by pixel
#
# Every pixel gets a class: background, circle, square or triangle. The U-Net's encoder shrinks the image to
# see whole shapes; its decoder grows it back, and the skip connections hand it the fine detail that pooling
# threw away. The script draws: input | true mask | predicted mask (predictions.png), the loss and IoU
# curves (curves.png), the confusion matrix, and the feature maps of the first encoder block for one image,
# beside that image (feature_maps.png).
#
#     python tutorials/02_unet_on_shapes.py            # about two minutes on 2 cores
#     python tutorials/02_unet_on_shapes.py --quick    # a few seconds (the tests run this)
#
# The file is in percent format: `# %%` starts a code cell and `# %% [markdown]` a text cell, so Jupyter
# (with jupytext) and VS Code open it as a notebook.

# %%
import argparse
import os
import sys
import time

from tinyseg import plotting, set_random_seed, visualize
from tinyseg.datasets import load_shapes, random_flip_rotate
from tinyseg.datasets.shapes import SEGMENTATION_CLASS_NAMES
from tinyseg.losses import CEDiceLoss
from tinyseg.metrics import ConfusionMatrix, format_table
from tinyseg.models.unet import UNet
from tinyseg.optimizers import Adam

parser = argparse.ArgumentParser(description="Tutorial 2: a U-Net segments the built-in shapes")
parser.add_argument("--epochs", type=int, default=12)
parser.add_argument("--quick", "--tiny", action="store_true", help="a few seconds, for tests")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--out", default=os.path.join("tutorial-output", "02_unet_on_shapes"))
# In a notebook, sys.argv holds the kernel's own flags: read none of them.
args = parser.parse_args([] if "ipykernel" in sys.modules else None)
os.makedirs(args.out, exist_ok=True)
set_random_seed(args.seed)

# %% [markdown]
# ## The data
#
# `load_shapes` draws 32x32 images of one to three shapes on a textured background, and their masks: an
# integer class per pixel (0 background, 1 circle, 2 square, 3 triangle). The shapes' colours are random,
# so the class is in the outline, not in the colour.

# %%
n_train, n_val, size, epochs = (32, 8, 32, 1) if args.quick else (2000, 200, 32, args.epochs)
(x, y), (xv, yv) = load_shapes(n_train, n_val, size=size, seed=args.seed)
print(f"images {x.shape}, masks {y.shape} with classes {SEGMENTATION_CLASS_NAMES}")

# %% [markdown]
# ## The U-Net
#
# Depth 2: the encoder pools 32 -> 16 -> 8 pixels, enough context for shapes a third of the image wide; the
# decoder upsamples back 8 -> 16 -> 32 and, at each size, concatenates the encoder's maps of that size (the
# skip connection) before its convolutions. The last 1x1 convolution gives 4 scores per pixel and a softmax
# turns them into probabilities p. The loss is cross-entropy plus soft Dice (CEDiceLoss in
# tinyseg/losses/dice.py, with t the one-hot truth and s = 1 a smoothing term):
#
#     L = -mean_pixels log p_y  +  1 - (1/K) sum_k (2 sum p_k t_k + s) / (sum p_k + sum t_k + s)
#
# so that small shapes count as much as the large background. Random flips and quarter turns (augment)
# show it each image in eight poses.

# %%
model = UNet(input_shape=x.shape[1:], num_classes=len(SEGMENTATION_CLASS_NAMES), depth=2, base_filters=16)
model.compile(optimizer=Adam(3e-3), loss=CEDiceLoss(), metrics=["accuracy", "mean_iou"])
model.summary()
start = time.perf_counter()
history = model.fit(x, y, epochs=epochs, batch_size=16, validation_data=(xv, yv), augment=random_flip_rotate)
print(f"trained in {time.perf_counter() - start:.0f}s")

# %% [markdown]
# ## How well it segments
#
# The confusion matrix counts, for every true class (row), which class each of its pixels was predicted as
# (column); the IoU of class k is n_kk / (row k + column k - n_kk). The prediction grid draws each mask
# in grey levels with a hatch per class (no hue, so no class can be mistaken for a shape's own colour).

# %%
pred = model.predict(xv).argmax(axis=-1)
result = ConfusionMatrix(len(SEGMENTATION_CLASS_NAMES)).update(yv, pred).result()
print(format_table(result, SEGMENTATION_CLASS_NAMES))
plotting.plot_segmentation_grid(xv, yv, pred, os.path.join(args.out, "predictions.png"), SEGMENTATION_CLASS_NAMES)
plotting.plot_history(history, os.path.join(args.out, "curves.png"), title="U-Net")
plotting.plot_confusion_matrix(result["confusion_matrix"], SEGMENTATION_CLASS_NAMES,
                               os.path.join(args.out, "confusion_matrix.png"))

# %% [markdown]
# ## What the first block sees
#
# The first encoder block (two 3x3 convolutions, each with batch norm and ReLU) turns the 3 colour channels
# into 16 feature maps of the same 32x32 size. Run on one validation image, each map is bright where its
# filter found what it looks for: edges of one orientation, one colour against another, the inside of a
# shape. The maps share one colour scale (the bar), so a dark map is a feature that is weak on this image,
# not one rescaled to look alike; the input is drawn beside them, so the bright places can be traced back to
# the shapes.

# %%
h = xv[:1]
for layer in model.encoders[0]:
    h = layer.forward(h)
feature_maps_fig = visualize.feature_maps_figure(
    xv[0], h[0], title=f"first encoder block: {h.shape[-1]} feature maps of the input on the left, one colour scale")
plotting.save_figure(feature_maps_fig, os.path.join(args.out, "feature_maps.png"))
print(f"wrote predictions.png, curves.png, confusion_matrix.png, feature_maps.png to {args.out}/")
