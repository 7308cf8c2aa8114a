"""SegNet: Badrinarayanan, Kendall and Cipolla, "SegNet: A Deep Convolutional Encoder-Decoder Architecture for
Image Segmentation" (TPAMI 2017), Figure 2 (and Figure 3's decoder, left), in the functional API.

    input (H, W, C)
    encoder level i = 0 .. depth-1:  conv 3x3 + batch norm + relu, convs[i] times (width f_i)   -> skip_i
                                     2x2 max pooling (remembering where each window's maximum was)
    decoder level i = depth-1 .. 0:  MaxUnpooling2D([x, skip_i]): each value back at its window's argmax,
                                     zeros elsewhere (a sparse map at skip_i's size)
                                     conv 3x3 + batch norm + relu, convs[i] times: width f_i, the last one
                                     f_{i-1} (the next level's width; f_0 at level 0), which densifies the map
    head:                            1x1 convolution to num_classes scores, softmax ("soft-max classifier")
    output (H, W, num_classes)

Widths f_i = base_filters * (1, 2, 4, 8, 8)[i] and convs = (2, 2, 3, 3, 3)[:depth] follow VGG-16's thirteen
convolutional layers (base_filters 64 in the paper; 16 here, for two CPU cores).

Output stride: 2**depth at the bottleneck (32 at the default depth 5); the decoder returns to stride 1. Unlike
FCN and U-Net, no features cross from encoder to decoder: only the pooling indices do (here: the pooling's
input, from which MaxUnpooling2D recomputes them; tinyseg/layers/unpooling.py says why). Any H, W >= 2**depth
work: where a level's size is odd, its 2x2 pooling leaves out the last row or column, which the unpooling fills
with zeros and the decoder's convolutions then fill in.

Keras has no MaxUnpooling2D, so this builder runs on tinyseg only; its tests compare it with PyTorch's
max_unpool2d through tinyseg.interop.to_torch.
"""
from .builder_arguments import class_count, image_shape, load_keras, positive_ints

VGG_CONVS = (2, 2, 3, 3, 3)
VGG_WIDTHS = (1, 2, 4, 8, 8)


def segnet(input_shape, num_classes, base_filters=16, depth=5, convs=None, activation="softmax", bn_momentum=0.9,
           keras=None):
    """SegNet for (H, W, C) images with H, W >= 2**depth.

    base_filters: the first level's width; depth: the number of poolings (1 .. 5); convs: 3x3 convolutions
    per level (default VGG-16's (2, 2, 3, 3, 3)[:depth]); activation of the head; bn_momentum of every batch
    norm (0.9, as tinyseg's UNet, so that short runs predict with settled statistics).
    Returns an uncompiled Model (N, H, W, C) -> (N, H, W, num_classes). Output stride 2**depth.
    """
    keras = load_keras(keras)
    layers = keras.layers
    if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= len(VGG_WIDTHS):
        raise ValueError(f"segnet: depth must be an integer from 1 to {len(VGG_WIDTHS)}, got {depth!r}")
    convs = positive_ints("segnet", "convs", VGG_CONVS[:depth] if convs is None else convs)
    if len(convs) != depth:
        raise ValueError(f"segnet: convs must give one count per level (depth={depth}), got {convs}")
    h, w, c = image_shape("segnet", input_shape, minimum=2 ** depth,
                          why=f"{depth} 2x2 poolings need 2**depth = {2 ** depth} pixels")
    k = class_count("segnet", num_classes)
    widths = [base_filters * m for m in VGG_WIDTHS[:depth]]

    def conv_bn_relu(x, filters):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)      # BN's beta is the bias
        x = layers.BatchNormalization(momentum=bn_momentum)(x)
        return layers.Activation("relu")(x)

    inputs = keras.Input((h, w, c))
    x, skips = inputs, []
    for width, n in zip(widths, convs):                                      # encoder
        for _ in range(n):
            x = conv_bn_relu(x, width)
        skips.append(x)                                                      # where the maxima are
        x = layers.MaxPooling2D(2)(x)
    for level in reversed(range(depth)):                                     # decoder
        x = layers.MaxUnpooling2D(2)([x, skips[level]])
        for j in range(convs[level]):
            last = j == convs[level] - 1
            x = conv_bn_relu(x, widths[max(level - 1, 0)] if last else widths[level])
    outputs = layers.Conv2D(k, 1, activation=activation)(x)
    return keras.Model(inputs, outputs, name="segnet")
