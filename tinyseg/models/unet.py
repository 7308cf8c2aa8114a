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

Backward through the skip connections, the two rules a learner should see in `backward` below:
- a concatenation's gradient is *split*: the first F channels go back to the upsampling path, the rest to
  the skip;
- a tensor used twice (skip_i feeds both the pooling and, later, the concatenation) gets the *sum* of the
  gradients of its two uses.
"""
from ..layers import (BatchNormalization, Concatenate, Conv2D, Conv2DTranspose, Dropout, MaxPooling2D,
                      UpSampling2D)
from ..layers.activations import Activation
from .model import Model


def run_forward(layers, x, training):
    for layer in layers:
        x = layer.forward(x, training)
    return x


def run_backward(layers, grad):
    for layer in reversed(layers):
        grad = layer.backward(grad)
    return grad


class UNet(Model):
    """U-Net for per-pixel classification.

    Arguments: input_shape (H, W, C) with H and W divisible by 2**depth; num_classes K (K = 1: one sigmoid
    channel for binary masks); depth (number of poolings); base_filters; batch_norm; upsampling
    'transpose' (learned, Conv2DTranspose) or 'nearest'/'bilinear' (UpSampling2D followed by a 1x1 conv);
    dropout rate before the bottleneck block (0 = none); bn_momentum for the batch-norm moving statistics
    (0.9 rather than Keras's 0.99: with 0.99 they need several hundred steps to forget their initial values,
    and a short run would then predict with the wrong statistics).
    Output: (N, H, W, K) class probabilities (scores before softmax with call(..., logits=True)).
    """

    def __init__(self, input_shape=(64, 64, 3), num_classes=4, depth=3, base_filters=16, batch_norm=True,
                 upsampling="transpose", dropout=0.0, bn_momentum=0.9, name="unet"):
        super().__init__(name=name)
        input_shape = tuple(int(d) for d in input_shape)
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (H, W, C), got {input_shape}")
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive integer, got {depth!r}")
        step = 2 ** depth
        for axis, size in zip(("height", "width"), input_shape[:2]):
            if size % step or size == 0:
                nearest = max(step, round(size / step) * step)
                raise ValueError(f"input {axis} {size} is not divisible by 2**depth = {step} (depth={depth}); "
                                 f"the nearest valid {axis} is {nearest}")
        if upsampling not in ("transpose", "nearest", "bilinear"):
            raise ValueError(f"upsampling must be 'transpose', 'nearest' or 'bilinear', got {upsampling!r}")
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.config = dict(input_shape=input_shape, num_classes=num_classes, depth=depth,
                           base_filters=base_filters, batch_norm=batch_norm, upsampling=upsampling,
                           dropout=dropout, bn_momentum=bn_momentum, name=name)
        filters = [base_filters * 2 ** i for i in range(depth + 1)]

        self.encoders = [self._block(f) for f in filters[:-1]]
        self.pools = [MaxPooling2D((2, 2)) for _ in range(depth)]
        self.bottleneck = ([Dropout(dropout)] if dropout else []) + self._block(filters[-1])
        self.ups, self.concats, self.decoders = [], [], []
        for f in reversed(filters[:-1]):                      # created in data-flow order, so names read in order
            self.ups.append(self._up(f, upsampling))
            self.concats.append(Concatenate())
            self.decoders.append(self._block(f))
        self.head = Conv2D(num_classes, (1, 1), activation="sigmoid" if num_classes == 1 else "softmax")

        self.layers = []
        for enc, pool in zip(self.encoders, self.pools):
            self.layers += enc + [pool]
        self.layers += self.bottleneck
        for up, cat, dec in zip(self.ups, self.concats, self.decoders):
            self.layers += up + [cat] + dec
        self.layers.append(self.head)
        self._build(input_shape)

    def _block(self, filters):
        bn = self.config["batch_norm"]
        layers = []
        for _ in range(2):
            layers.append(Conv2D(filters, (3, 3), padding="same", use_bias=not bn))
            if bn:
                layers.append(BatchNormalization(momentum=self.config["bn_momentum"]))
            layers.append(Activation("relu"))
        return layers

    @staticmethod
    def _up(filters, upsampling):
        if upsampling == "transpose":
            return [Conv2DTranspose(filters, (2, 2), strides=(2, 2), padding="same")]
        return [UpSampling2D((2, 2), interpolation=upsampling), Conv2D(filters, (1, 1))]

    def _build(self, input_shape):
        """Build every layer by following shapes through the graph once (no data needed)."""
        def build_all(layers, shape):
            for layer in layers:
                shape = layer.build(shape)
            return shape

        shape, skips = input_shape, []
        for enc, pool in zip(self.encoders, self.pools):
            shape = build_all(enc, shape)
            skips.append(shape)
            shape = pool.build(shape)
        shape = build_all(self.bottleneck, shape)
        for up, cat, dec, skip in zip(self.ups, self.concats, self.decoders, reversed(skips)):
            shape = cat.build([build_all(up, shape), skip])
            shape = build_all(dec, shape)
        self.head.build(shape)

    @property
    def input_shape(self):
        return self.config["input_shape"]

    def call(self, x, training=False, logits=False):
        skips = []
        h = x
        for enc, pool in zip(self.encoders, self.pools):
            h = run_forward(enc, h, training)
            skips.append(h)                                   # kept for the decoder at the same scale
            h = pool.forward(h, training)
        h = run_forward(self.bottleneck, h, training)
        for up, cat, dec, skip in zip(self.ups, self.concats, self.decoders, reversed(skips)):
            h = run_forward(up, h, training)
            h = cat.forward([h, skip], training)              # channels: [upsampled | skip]
            h = run_forward(dec, h, training)
        if logits:
            return self.head.forward_linear(h, training)
        return self.head.forward(h, training)

    def backward(self, grad, logits=False, input_grad=True):
        g = self.head.backward_linear(grad) if logits else self.head.backward(grad)
        skip_grads = []
        for up, cat, dec in reversed(list(zip(self.ups, self.concats, self.decoders))):   # shallowest first
            g = run_backward(dec, g)
            g_up, g_skip = cat.backward(g)                    # the concatenation splits the gradient
            skip_grads.append(g_skip)
            g = run_backward(up, g_up)
        g = run_backward(self.bottleneck, g)
        for enc, pool, g_skip in zip(reversed(self.encoders), reversed(self.pools), reversed(skip_grads)):
            g = pool.backward(g) + g_skip                     # skip_i fed two branches: their gradients add
            if enc is self.encoders[0] and not input_grad:    # training needs no dL/d(image)
                enc[0].backward_params(run_backward(enc[1:], g))
                return None
            g = run_backward(enc, g)
        return g

    def get_config(self):
        return dict(self.config)
