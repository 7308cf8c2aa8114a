"""FCN-8s: Long, Shelhamer and Darrell, "Fully Convolutional Networks for Semantic Segmentation" (CVPR 2015),
Figure 3, in the functional API.

    input (H, W, C), zero-padded to H', W' = the next multiples of 32        (the paper pads by 100 and crops)
    VGG encoder: five blocks of 3x3 convolutions + relu (2, 2, 3, 3, 3 of them; widths f, 2f, 4f, 8f, 8f),
                 each ending with a 2x2 max pooling: pool1 .. pool5 at strides 2, 4, 8, 16, 32
    fc6, fc7:    the classifier's fully connected layers as convolutions ("convolutionised"): a 7x7 and a 1x1
                 convolution with relu and dropout, so the network takes an image of any size
    score_fr:    1x1 convolution to num_classes scores, stride 32                         (FCN-32s stops here)
    upscore2:    Conv2DTranspose(kernel 4, stride 2), bilinear at first   -> stride 16
                 + score_pool4 (1x1 convolution of pool4 to num_classes scores)           (FCN-16s)
    upscore_pool4: Conv2DTranspose(kernel 4, stride 2), bilinear at first -> stride 8
                 + score_pool3 (1x1 convolution of pool3)                                 (FCN-8s)
    upscore8:    Conv2DTranspose(kernel 16, stride 8), bilinear at first  -> stride 1, cropped back to H x W
    activation:  softmax over the classes (or the given head activation)

Output stride: 32 for the coarsest scores, refined to 8 by the two skips; the output is at the input's size.
Any height and width work (the padding makes them divisible by 32). The transposed convolutions start as
bilinear upsampling (kernel_initializer='bilinear') and learn from there, and the skip scores start at zero,
as in the paper, so training begins from what the coarser net predicts.

Written against a Keras-like module `keras` (tinyseg by default), so the parity tests build the same lines
with Keras 3 (whose initializers have no 'bilinear': they pass deconv_initializer='glorot_uniform' and copy the
weights across).
"""
from .builder_arguments import class_count, image_shape, load_keras

VGG_CONVS = (2, 2, 3, 3, 3)                 # 3x3 convolutions in each of VGG-16's five blocks
VGG_WIDTHS = (1, 2, 4, 8, 8)                # the blocks' widths, in multiples of base_filters (VGG-16: 64)


def fcn8s(input_shape, num_classes, base_filters=16, fc_filters=128, fc_kernel=7, dropout=0.5,
          activation="softmax", deconv_initializer="bilinear", keras=None):
    """FCN-8s for (H, W, C) images, any H and W (padded to multiples of 32 inside, cropped back).

    base_filters: the first block's width (VGG-16's 64; 16 here, for two CPU cores); fc_filters: the width of
    fc6 and fc7 (VGG-16's 4096); fc_kernel: fc6's kernel size (7, the size of VGG's pool5 map at 224x224);
    dropout after fc6 and fc7; activation of the head; deconv_initializer of the three Conv2DTranspose.
    Returns an uncompiled Model (N, H, W, C) -> (N, H, W, num_classes). Output stride 8 (see the module).
    """
    keras = load_keras(keras)
    layers = keras.layers
    h, w, c = image_shape("fcn8s", input_shape)
    k = class_count("fcn8s", num_classes)
    pads = tuple((p // 2, p - p // 2) for p in ((-h) % 32, (-w) % 32))   # to multiples of 32, split evenly

    inputs = keras.Input((h, w, c))
    x = layers.ZeroPadding2D(pads)(inputs) if any(map(any, pads)) else inputs
    pools = []
    for convs, width in zip(VGG_CONVS, VGG_WIDTHS):                          # the VGG encoder
        for _ in range(convs):
            x = layers.Conv2D(base_filters * width, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
        pools.append(x)
    pool3, pool4, pool5 = pools[2:]                                           # strides 8, 16, 32

    x = layers.Conv2D(fc_filters, fc_kernel, padding="same", activation="relu", name="fc6")(pool5)
    x = layers.Dropout(dropout)(x)
    x = layers.Conv2D(fc_filters, 1, activation="relu", name="fc7")(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Conv2D(k, 1, name="score_fr")(x)                              # stride 32

    def up(scores, factor, name):
        return layers.Conv2DTranspose(k, 2 * factor, strides=factor, padding="same", use_bias=False,
                                      kernel_initializer=deconv_initializer, name=name)(scores)

    def skip_scores(pool, name):
        return layers.Conv2D(k, 1, kernel_initializer="zeros", name=name)(pool)

    x = layers.add([up(x, 2, "upscore2"), skip_scores(pool4, "score_pool4")])        # stride 16
    x = layers.add([up(x, 2, "upscore_pool4"), skip_scores(pool3, "score_pool3")])   # stride 8
    x = up(x, 8, "upscore8")                                                          # stride 1
    if any(map(any, pads)):
        x = layers.Cropping2D(pads)(x)
    outputs = layers.Activation(activation)(x)
    return keras.Model(inputs, outputs, name="fcn8s")
