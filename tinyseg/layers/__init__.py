"""Layers, one idea per file (a layer, or a family of small ones); names as in Keras."""
from .activations import Activation, Linear, ReLU, Sigmoid, Softmax, Tanh
from .augmentation import (
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
)
from .base import Layer
from .conv2d import Conv2D
from .conv2d_transpose import Conv2DTranspose
from .dense import Dense, Flatten
from .depthwise import DepthwiseConv2D
from .global_pooling import GlobalAveragePooling2D, GlobalAvgPool2D, GlobalMaxPool2D, GlobalMaxPooling2D
from .merging import Add, Average, Concatenate, Multiply, Subtract, add, average, concatenate, multiply, subtract
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, AvgPool2D, MaxPool2D, MaxPooling2D
from .preprocessing import CenterCrop, Rescaling, Resizing
from .regularization import Dropout
from .reshaping import Cropping2D, Reshape, ZeroPadding2D
from .separable import SeparableConv2D
from .tensor_ops import Permute
from .unpooling import MaxUnpooling2D, max_pool2d_with_argmax
from .upsampling import UpSampling2D

__all__ = ["Activation", "Add", "Average", "AveragePooling2D", "AvgPool2D", "BatchNormalization", "Concatenate",
           "Conv2D", "Conv2DTranspose", "Cropping2D", "Dense", "DepthwiseConv2D", "Dropout", "Flatten",
           "GlobalAveragePooling2D", "GlobalAvgPool2D", "GlobalMaxPool2D", "GlobalMaxPooling2D", "Layer", "Linear",
           "MaxPool2D", "MaxPooling2D", "Multiply", "ReLU", "Reshape", "SeparableConv2D", "Sigmoid", "Softmax",
           "Subtract", "Tanh", "UpSampling2D", "ZeroPadding2D", "add", "average", "concatenate", "multiply",
           "subtract"]
__all__ += ["CenterCrop", "RandomBrightness", "RandomContrast", "RandomCrop", "RandomFlip", "RandomRotation",
            "RandomTranslation", "RandomZoom", "Rescaling", "Resizing", "Permute"]
__all__ += ["MaxUnpooling2D", "max_pool2d_with_argmax"]

# The functional API's input placeholder, and saving by name (imported last: graph.py uses the layers above)
from ..graph import Input, InputLayer  # noqa: E402
from .base import deserialize, serialize  # noqa: E402
from .lambda_layer import Lambda  # noqa: E402  (records a graph of layers: after graph.py)

__all__ += ["Input", "InputLayer", "Lambda", "deserialize", "serialize"]
