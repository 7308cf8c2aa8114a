"""Which network `tinyseg train --model NAME` builds, with which knobs, and the U-Net depth that follows the
image size when --depth is not given.

    build_model(args, input_shape, num_classes)   tinyseg.models.ARCHITECTURES[args.model](...), uncompiled
    default_depth(size, crop)                      (depth, the sentence the log prints about it)
    unet_receptive_field(depth)                    pixels (along one axis) an output pixel of the U-Net sees

The receptive field. A pixel of a U-Net's output is computed from a window of the input; the window grows
with depth, since each level's 3x3 convolutions look twice as far (in input pixels) as the level above:
at level i (after i poolings) one 3x3 convolution widens the window by 2 * 2**i pixels, a 2x2 pooling by
2**i. Following one output pixel back through the graph, the decoder block, the skip to the encoder block of
its level and the upsampling to the level below, down to the bottleneck, gives (unet_receptive_field)

    depth          1    2    3    4    5
    pixels        18   44  100  204  412      (13 * 2**depth - 8, plus up to 4 where the 2x2 grids misalign)

which tests/cli/test_model_choice.py measures on a real U-Net (perturb one input column, see which output
columns move). A pixel sees only what its window holds: a depth-2 U-Net sees 44 pixels, fine for 32 x 32
shapes, but at 176 x 240 a car or the road's edge is wider than that, and the pixel has to guess from
texture. So the default is the smallest depth whose window covers the image's shorter side (the crop's, if
smaller), as far as the size allows: 2**depth must divide both sides (the poolings halve them exactly), and
at most MAX_AUTO_DEPTH (each level doubles the filters, so the parameters grow about 4 times per level).

    32 x 32 -> 2,  88 x 120 -> 3,  176 x 240 -> 4,  352 x 480 -> 5,  180 x 240 -> 2 (180 is not divisible by 8)

benchmarks/unet_depth.py trains U-Nets of several depths on the same CamVid batches: the mean IoU rises while
the field grows towards the image's side and little beyond, while each level costs more time per step.
"""
import argparse
import inspect

MAX_AUTO_DEPTH = 5
UNET = "unet"
# the knobs the CLI has for a builder: flag -> keyword argument; a builder gets those its signature names
KNOBS = {"--depth": "depth", "--base-filters": "base_filters", "--no-batch-norm": "batch_norm",
         "--upsampling": "upsampling"}


def architectures():
    """The registry of builders, name -> builder(input_shape, num_classes, **knobs) (tinyseg.models)."""
    from . import models
    return models.ARCHITECTURES


def check_model_name(name):
    """The name if the registry has it, else ValueError listing the names it has."""
    names = architectures()
    if name not in names:
        raise ValueError(f"expected one of {', '.join(sorted(names))}, got {name!r}")
    return name


def model_name_argument(text):
    """The argparse type of --model: a name the registry has (argparse turns the error into one line)."""
    try:
        return check_model_name(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _encoder_span(level, lo, hi):
    """Input pixels lo..hi (one axis) that the outputs lo..hi of encoder block `level` depend on: its two
    3x3 convolutions (1 pixel each way each), then the 2x2 pooling before it (output p <- inputs 2p, 2p+1)."""
    lo, hi = lo - 2, hi + 2
    if level == 0:
        return lo, hi
    return _encoder_span(level - 1, 2 * lo, 2 * hi + 1)


def _decoder_span(level, depth, lo, hi):
    """The same for decoder block `level` (level == depth: the bottleneck): its two convolutions, then the
    union of the skip (encoder block `level`) and the upsampled level below (output p <- input p // 2)."""
    if level == depth:
        return _encoder_span(depth, lo, hi)
    lo, hi = lo - 2, hi + 2
    skip = _encoder_span(level, lo, hi)
    below = _decoder_span(level + 1, depth, lo // 2, hi // 2)
    return min(skip[0], below[0]), max(skip[1], below[1])


def unet_receptive_field(depth):
    """The widest window (pixels along one axis) of input that one output pixel of tinyseg's U-Net of this
    depth depends on, over the 2**depth positions of the pooling grid."""
    spans = [_decoder_span(0, depth, p, p) for p in range(2 ** depth)]
    return max(hi - lo + 1 for lo, hi in spans)


def largest_depth(*sizes):
    """The largest depth d <= MAX_AUTO_DEPTH with 2**d dividing every side of the given (H, W) sizes."""
    d = 0
    while d < MAX_AUTO_DEPTH and all(s % 2 ** (d + 1) == 0 for size in sizes for s in size):
        d += 1
    return d


def default_depth(size, crop=None):
    """(depth, reason): the smallest depth whose receptive field covers the shorter side of what the network
    sees in training (the crop, else the image), capped by what divides the size and the crop."""
    seen = crop or size
    side = min(seen)
    wanted = next((d for d in range(1, MAX_AUTO_DEPTH + 1) if unet_receptive_field(d) >= side), MAX_AUTO_DEPTH)
    allowed = largest_depth(*[s for s in (size, crop) if s is not None])
    depth = max(1, min(wanted, allowed))
    reason = (f"depth {depth} follows the image size: an output pixel sees {unet_receptive_field(depth)} pixels, "
              f"the shorter side is {side}")
    if depth < wanted:
        reason += (f"; depth {wanted} (a field of {unet_receptive_field(wanted)}) would cover it, but "
                   f"{seen[0]} x {seen[1]} is not divisible by {2 ** wanted}: --size with multiples of "
                   f"{2 ** wanted} allows it")
    return depth, reason + "; --depth sets it"


def flag_given(args, flag, defaults):
    """Whether `flag` (e.g. '--base-filters') was set to other than the parser's default."""
    key = flag[2:].replace("-", "_")
    return getattr(args, key) != defaults.get(key)


def check_knobs(args, defaults):
    """ValueError, before any work, for a knob flag the chosen builder has no keyword for."""
    taken = inspect.signature(architectures()[check_model_name(args.model)]).parameters
    for flag, keyword in KNOBS.items():
        if keyword not in taken and flag_given(args, flag, defaults):
            raise ValueError(f"{flag} does not apply to --model {args.model} (its builder takes "
                             f"{', '.join(p for p in taken if p not in ('input_shape', 'num_classes'))})")


def build_model(args, input_shape, num_classes):
    """The chosen builder called with the knobs it takes: depth, base_filters, batch_norm, upsampling."""
    build = architectures()[args.model]
    taken = inspect.signature(build).parameters
    values = {"depth": args.depth, "base_filters": args.base_filters, "batch_norm": not args.no_batch_norm,
              "upsampling": args.upsampling}
    knobs = {k: v for k, v in values.items() if k in taken and v is not None}
    return build(input_shape, num_classes, **knobs)


def takes_its_size_only(model):
    """Whether the network's graph fixes the image size: a Resizing layer to a size set when it was built (as
    DeepLabV3+'s decoder has), or a ZeroPadding2D worked out from it (FCN-8s's, up to a multiple of 32).
    predict and evaluate then cut images into windows of its training size."""
    from .layers import Resizing, ZeroPadding2D
    return any(isinstance(layer, (Resizing, ZeroPadding2D)) for layer in model.layers)
