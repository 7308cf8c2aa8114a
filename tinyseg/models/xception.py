"""The Xception-style U-Net of keras.io's Oxford-pets segmentation example, in the functional API.

Written against a Keras-like module `keras`, so the same lines build it with tinyseg (the default) or, in the
comparison tests, with Keras itself: `xception_unet((H, W), num_classes, keras=keras)`.

Read it as a lesson in the functional API: `keras.Input` makes the placeholder, every layer is called on the
tensor of the one before, `layers.add([x, shortcut])` joins a residual branch, and `keras.Model(inputs,
outputs)` turns the graph into a model that trains with fit (tutorials/06_functional_api.py).

Architecture: an entry block Conv2D(32, 3, strides=2) -> BatchNormalization -> relu; three downsampling
blocks (64, 128, 256 filters) of [relu, SeparableConv2D, BN] twice and a 3x3 stride-2 max pooling, plus a
strided 1x1 convolution of the block's input, joined by add; four upsampling blocks (256, 128, 64, 32) of
[relu, Conv2DTranspose, BN] twice and UpSampling2D(2), plus UpSampling2D(2) -> 1x1 convolution of the block's
input, joined by add; a 3x3 softmax head. H and W must be multiples of 16.
"""


def xception_unet(img_size=(160, 160), num_classes=3, filters=(32, 64, 128, 256), keras=None):
    """The model for (H, W, 3) images and num_classes softmax outputs; filters: the entry block's, then the
    three downsampling blocks' (the upsampling blocks use them in reverse). H and W: multiples of 16."""
    if keras is None:
        import tinyseg as keras
    layers = keras.layers
    entry, downs = filters[0], filters[1:]
    inputs = keras.Input(shape=tuple(img_size) + (3,))
    x = layers.Conv2D(entry, 3, strides=2, padding="same")(inputs)       # entry block
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    block_input = x
    for f in downs:                                                        # down: H / 2 each
        for _ in range(2):
            x = layers.Activation("relu")(x)
            x = layers.SeparableConv2D(f, 3, padding="same")(x)
            x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        shortcut = layers.Conv2D(f, 1, strides=2, padding="same")(block_input)
        x = layers.add([x, shortcut])
        block_input = x
    for f in tuple(reversed(downs)) + (entry,):                           # up: H * 2 each
        for _ in range(2):
            x = layers.Activation("relu")(x)
            x = layers.Conv2DTranspose(f, 3, padding="same")(x)
            x = layers.BatchNormalization()(x)
        x = layers.UpSampling2D(2)(x)
        shortcut = layers.Conv2D(f, 1, padding="same")(layers.UpSampling2D(2)(block_input))
        x = layers.add([x, shortcut])
        block_input = x
    outputs = layers.Conv2D(num_classes, 3, activation="softmax", padding="same")(x)
    return keras.Model(inputs, outputs)
