"""U-Net (Ronneberger et al., 2015), small and configurable, channels-last, 'same' padding throughout.

    input (N, H, W, C)
      encoder level i = 0 .. depth-1:   block_i (two 3x3 convs, F_i = base_filters * 2^i)  -> skip_i
                                        2x2 max pooling                                       H / 2^(i+1)
      bottleneck:                       block (F_depth)
      decoder level i = depth-1 .. 0:   upsample x2 (Conv2DTranspose 2x2 stride 2, or UpSampling2D + 1x1 conv)
                                        concatenate [upsampled, skip_i] on the channel axis
                                        block (F_i)
      head:                             1x1 conv to num_classes scores (softmax, or sigmoid for one class)
    output (N, H, W, num_classes)

A block is conv 3x3 -> [batch norm] -> relu, twice (the conv has no bias when batch norm follows: BN's beta
plays that role).

The model is a graph built with the functional API (`__init__` below calls each layer on the tensor of the
one before), so its forward and backward passes are the graph's (tinyseg/graph.py). Backward through the skip
connections follows the graph's two rules, which a learner should see at work here:
- a concatenation's gradient is *split*: the first F channels go back to the upsampling path, the rest to
  the skip (Concatenate.backward);
- a tensor used twice (skip_i feeds both the pooling and, later, the concatenation) gets the *sum* of the
  gradients of its two uses (the fan-out rule of Graph.backward).
"""
import numpy as np

from .. import backend
from ..graph import Input, InputLayer
from ..layers import BatchNormalization, Concatenate, Conv2D, Conv2DTranspose, Dropout, MaxPooling2D, UpSampling2D
from ..layers.activations import Activation
from .model import Model


def call_all(layers, x):
    """x -> layer_n(...layer_1(x)): a block of layers called one after the other on a tensor."""
    for layer in layers:
        x = layer(x)
    return x


def _check_arguments(input_shape, num_classes, depth, base_filters, upsampling):
    """(input_shape, num_classes, depth, base_filters) as ints, checked; raise naming a wrong one."""
    input_shape = tuple(int(d) for d in input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (H, W, C), got {input_shape}")
    if not isinstance(depth, (int, np.integer)) or isinstance(depth, bool) or depth < 1:
        raise ValueError(f"depth must be a positive integer, got {depth!r}")
    step = 2 ** depth
    for axis, size in zip(("height", "width"), input_shape[:2]):
        if size % step or size == 0:
            nearest = max(step, round(size / step) * step)
            raise ValueError(f"input {axis} {size} is not divisible by 2**depth = {step} (depth={depth}); "
                             f"the nearest valid {axis} is {nearest}")
    if upsampling not in ("transpose", "nearest", "bilinear"):
        raise ValueError(f"upsampling must be 'transpose', 'nearest' or 'bilinear', got {upsampling!r}")
    if not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if not isinstance(base_filters, (int, np.integer)) or isinstance(base_filters, bool) or base_filters < 1:
        raise ValueError(f"base_filters must be a positive integer, got {base_filters!r}")
    return input_shape, int(num_classes), int(depth), int(base_filters)


class UNet(Model):
    """U-Net for per-pixel classification.

    Arguments: input_shape (H, W, C) with H and W divisible by 2**depth; num_classes K (K = 1: one sigmoid
    channel for binary masks); depth (number of poolings); base_filters; batch_norm; upsampling
    'transpose' (learned, Conv2DTranspose) or 'nearest'/'bilinear' (UpSampling2D followed by a 1x1 conv);
    dropout rate before the bottleneck block (0 = none); bn_momentum for the batch-norm moving statistics
    (0.9 rather than Keras's 0.99: with 0.99 they need several hundred steps to forget their initial values,
    and a short run would then predict with the wrong statistics); dtype 'float32' or 'float64' for every
    layer (default: tinyseg.floatx() when the model is made; it is in the config, so a float64 U-Net is
    float64 again after save and load).
    activation: the head's (default None: sigmoid for one class, else softmax).
    Output: (N, H, W, K) class probabilities (scores before softmax with call(..., logits=True)).
    The blocks stay reachable as lists of layers: encoders, pools, bottleneck, ups, concats, decoders, head.
    """

    def __init__(self, input_shape=(64, 64, 3), num_classes=4, depth=3, base_filters=16, batch_norm=True,
                 upsampling="transpose", dropout=0.0, bn_momentum=0.9, name="unet", dtype=None, activation=None):
        dtype = backend.check_float_dtype(dtype or backend.floatx(), "UNet: dtype").name
        input_shape, num_classes, depth, base_filters = _check_arguments(input_shape, num_classes, depth,
                                                                         base_filters, upsampling)
        self.config = dict(input_shape=input_shape, num_classes=num_classes, depth=depth,
                           base_filters=base_filters, batch_norm=batch_norm, upsampling=upsampling,
                           dropout=dropout, bn_momentum=bn_momentum, name=name, dtype=dtype)
        if activation is not None:              # only when asked: configs saved before it load unchanged
            self.config["activation"] = activation
        filters = [base_filters * 2 ** i for i in range(depth + 1)]

        # The layers, created in data-flow order so that their names read in order.
        self.encoders, self.pools = [], []
        for f in filters[:-1]:
            self.encoders.append(self._block(f))
            self.pools.append(MaxPooling2D((2, 2), dtype=dtype))
        self.bottleneck = ([Dropout(dropout, dtype=dtype)] if dropout else []) + self._block(filters[-1])
        self.ups, self.concats, self.decoders = [], [], []
        for f in reversed(filters[:-1]):
            self.ups.append(self._up(f, upsampling, dtype))
            self.concats.append(Concatenate(dtype=dtype))
            self.decoders.append(self._block(f))
        if activation is None:
            activation = "sigmoid" if num_classes == 1 else "softmax"
        self.head = Conv2D(num_classes, (1, 1), activation=activation, dtype=dtype)

        # The graph: the encoder keeps each level's output for the decoder at the same scale.
        image = Input(input_shape, dtype=dtype)
        h, skips = image, []
        for enc, pool in zip(self.encoders, self.pools):
            h = call_all(enc, h)
            skips.append(h)                                   # read twice: by the pooling and by a concat
            h = pool(h)
        h = call_all(self.bottleneck, h)
        for up, cat, dec, skip in zip(self.ups, self.concats, self.decoders, reversed(skips)):
            h = cat([call_all(up, h), skip])                  # channels: [upsampled | skip]
            h = call_all(dec, h)
        super().__init__(image, self.head(h), name=name)

    def _block(self, filters):
        bn, dtype = self.config["batch_norm"], self.config["dtype"]
        layers = []
        for _ in range(2):
            layers.append(Conv2D(filters, (3, 3), padding="same", use_bias=not bn, dtype=dtype))
            if bn:
                layers.append(BatchNormalization(momentum=self.config["bn_momentum"], dtype=dtype))
            layers.append(Activation("relu", dtype=dtype))
        return layers

    @staticmethod
    def _up(filters, upsampling, dtype):
        if upsampling == "transpose":
            return [Conv2DTranspose(filters, (2, 2), strides=(2, 2), padding="same", dtype=dtype)]
        return [UpSampling2D((2, 2), interpolation=upsampling, dtype=dtype), Conv2D(filters, (1, 1), dtype=dtype)]

    def accepts_size(self, shape, built_shape):
        """Any image of the same channels whose height and width are multiples of 2**depth."""
        step = 2 ** self.config["depth"]
        if len(shape) == 3 and shape[-1] == built_shape[-1]:
            for axis, size in zip(("height", "width"), shape[:2]):
                if size % step:
                    nearest = max(step, round(size / step) * step)
                    raise ValueError(f"{self.name}: image {axis} {size} is not a multiple of 2**depth = {step}; "
                                     f"the nearest valid {axis} is {nearest} (pad the image, as "
                                     "tinyseg.inference does)")
        return super().accepts_size(shape, built_shape)

    @property
    def layers(self):
        """The layers in weight order, without the input placeholder (as before the graph)."""
        return [layer for layer in super().layers if not isinstance(layer, InputLayer)]

    def get_config(self):
        return dict(self.config)

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def unet(input_shape, num_classes, depth=3, base_filters=16, batch_norm=True, upsampling="transpose", dropout=0.0,
         activation=None, bn_momentum=0.9):
    """The UNet above as an architecture builder (tinyseg.models.ARCHITECTURES["unet"]): Ronneberger, Fischer
    and Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation" (MICCAI 2015), Figure 1, with
    'same' padding (so the output has the input's size) and batch norm.

    Output stride 2**depth at the bottleneck, back to 1 through depth skip concatenations. H and W must be
    multiples of 2**depth. Returns an uncompiled UNet (N, H, W, C) -> (N, H, W, num_classes).
    """
    return UNet(input_shape=input_shape, num_classes=num_classes, depth=depth, base_filters=base_filters,
                batch_norm=batch_norm, upsampling=upsampling, dropout=dropout, bn_momentum=bn_momentum,
                activation=activation)
