"""Layers, one family per file; names as in Keras."""
from .activations import Activation, Linear, ReLU, Sigmoid, Softmax, Tanh
from .base import Layer
from .convolution import Conv2D, Conv2DTranspose
from .dense import Dense, Flatten
from .depthwise import DepthwiseConv2D, SeparableConv2D
from .merging import Concatenate
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, MaxPooling2D
from .regularization import Dropout
from .upsampling import UpSampling2D

__all__ = ["Activation", "AveragePooling2D", "BatchNormalization", "Concatenate", "Conv2D", "Conv2DTranspose",
           "Dense", "DepthwiseConv2D", "Dropout", "Flatten", "Layer", "Linear", "MaxPooling2D", "ReLU",
           "SeparableConv2D", "Sigmoid", "Softmax", "Tanh", "UpSampling2D"]

# The functional API's input placeholder, and saving by name (imported last: graph.py uses the layers above)
from ..graph import Input, InputLayer  # noqa: E402
from .base import deserialize, serialize  # noqa: E402

__all__ += ["Input", "InputLayer", "deserialize", "serialize"]
