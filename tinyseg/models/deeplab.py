"""DeepLabV3+: Chen, Zhu, Papandreou, Schroff and Adam, "Encoder-Decoder with Atrous Separable Convolution for
Semantic Image Segmentation" (ECCV 2018), Figure 2, on a small residual encoder, in the functional API.

    input (H, W, C)
    encoder (a small ResNet):
      stem:    conv 3x3 stride 2 + batch norm + relu (width f)                              stride 2
      stage 1: residual block, stride 2 (width f)      -> low-level features                stride 4
      stage 2: residual block, stride 2 (width 2f)                                          stride 8
      stage 3: residual block, stride 2 (width 4f)                                          stride 16
      stage 4: residual block, dilation 2 (width 8f)   (atrous instead of a 5th stride)     stride 16
    ASPP (atrous spatial pyramid pooling), five branches on the stride-16 features, concatenated:
      1x1 conv;  3x3 conv with dilation r for each r in atrous_rates;
      image pooling: global average -> 1x1 conv + relu -> bilinear resize back to the feature map's size
      then 1x1 conv (aspp_filters) + batch norm + relu
    decoder:
      upsample by 4, bilinear                                                               stride 4
      concatenate with the low-level features reduced by a 1x1 conv (low_level_filters)
      two 3x3 convs (aspp_filters) + batch norm + relu, then a 1x1 conv to num_classes scores
      bilinear resize to the input size (by 4 again)                                        stride 1
      activation: softmax over the classes (or the given head activation)

A residual block is conv 3x3 (stride s, dilation d) + BN + relu + conv 3x3 (dilation d) + BN, added to its
input (through a 1x1 conv + BN of stride s where the shape changes), then relu. Every convolution before a
batch norm has no bias (BN's beta is one). Output stride: 16 (the encoder's), H and W must be multiples of 16.

The paper's rates 6, 12, 18 suit its 33x33 stride-16 maps (513x513 crops); CamVid at 176x240 gives an 11x15
map, on which a 3x3 kernel at rate 18 sees only padding off its centre. The default atrous_rates (2, 4, 6) are
the paper's divided by 3, as 11-15 is about a third of 33. The image-pooling branch has no batch norm: over a
1x1 map, a batch of one image has no variance to normalise by.

Written against a Keras-like module `keras` (tinyseg by default), so the parity tests build the same lines
with Keras 3.
"""
from .builder_arguments import class_count, image_shape, load_keras, positive_ints

OUTPUT_STRIDE = 16
BACKBONES = ("resnet",)


def deeplabv3plus(input_shape, num_classes, base_filters=16, atrous_rates=(2, 4, 6), aspp_filters=64,
                  low_level_filters=16, backbone="resnet", activation="softmax", bn_momentum=0.9, keras=None):
    """DeepLabV3+ for (H, W, C) images with H and W multiples of 16 (the output stride).

    base_filters: the stem's width (stages: f, 2f, 4f, 8f); atrous_rates: the dilations of ASPP's 3x3 branches
    (the paper's (6, 12, 18), scaled: see the module docstring); aspp_filters: the width of every ASPP branch
    and of the decoder (256 in the paper); low_level_filters: the reduced low-level features (48 in the paper);
    backbone: 'resnet' (the small residual encoder above); activation of the head; bn_momentum of every
    batch norm. Returns an uncompiled Model (N, H, W, C) -> (N, H, W, num_classes).
    """
    keras = load_keras(keras)
    layers = keras.layers
    if backbone not in BACKBONES:
        raise ValueError(f"deeplabv3plus: backbone must be one of {BACKBONES}, got {backbone!r}")
    rates = positive_ints("deeplabv3plus", "atrous_rates", atrous_rates)
    h, w, c = image_shape("deeplabv3plus", input_shape, multiple=OUTPUT_STRIDE,
                          why=f"the encoder's output stride is {OUTPUT_STRIDE}")
    k = class_count("deeplabv3plus", num_classes)
    f = base_filters

    def conv_bn(x, filters, kernel=3, strides=1, dilation=1, relu=True):
        x = layers.Conv2D(filters, kernel, strides=strides, dilation_rate=dilation, padding="same",
                          use_bias=False)(x)
        x = layers.BatchNormalization(momentum=bn_momentum)(x)
        return layers.Activation("relu")(x) if relu else x

    def residual(x, filters, strides=1, dilation=1):
        y = conv_bn(x, filters, strides=strides, dilation=dilation)
        y = conv_bn(y, filters, dilation=dilation, relu=False)
        shortcut = x if strides == 1 and x.shape[-1] == filters else \
            conv_bn(x, filters, kernel=1, strides=strides, relu=False)
        return layers.Activation("relu")(layers.add([y, shortcut]))

    inputs = keras.Input((h, w, c))
    x = conv_bn(inputs, f, strides=2)                                         # stride 2
    low_level = x = residual(x, f, strides=2)                                 # stride 4
    x = residual(x, 2 * f, strides=2)                                         # stride 8
    x = residual(x, 4 * f, strides=2)                                         # stride 16
    x = residual(x, 8 * f, dilation=2)                                        # stride 16, atrous

    # ASPP: the same features seen at several rates, and as a whole (image pooling)
    fh, fw = h // OUTPUT_STRIDE, w // OUTPUT_STRIDE
    branches = [conv_bn(x, aspp_filters, kernel=1)]
    branches += [conv_bn(x, aspp_filters, dilation=r) for r in rates]
    pooled = layers.GlobalAveragePooling2D(keepdims=True)(x)                 # (N, 1, 1, 8f)
    pooled = layers.Conv2D(aspp_filters, 1, activation="relu")(pooled)
    branches.append(layers.Resizing(fh, fw, interpolation="bilinear")(pooled))
    x = conv_bn(layers.Concatenate()(branches), aspp_filters, kernel=1)

    # decoder: upsample by 4, join the low-level features, refine, upsample to the input size
    x = layers.UpSampling2D(4, interpolation="bilinear")(x)                 # stride 4
    x = layers.Concatenate()([x, conv_bn(low_level, low_level_filters, kernel=1)])
    x = conv_bn(conv_bn(x, aspp_filters), aspp_filters)
    x = layers.Conv2D(k, 1)(x)
    x = layers.Resizing(h, w, interpolation="bilinear")(x)                  # stride 1
    outputs = layers.Activation(activation)(x)
    return keras.Model(inputs, outputs, name="deeplabv3plus")
