"""Layers, one family per file; names as in Keras."""
from .activations import Activation, Linear, ReLU, Sigmoid, Softmax, Tanh
from .base import Layer
from .convolution import Conv2D, Conv2DTranspose
from .dense import Dense, Flatten
from .merging import Concatenate
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, MaxPooling2D
from .regularization import Dropout
from .upsampling import UpSampling2D

__all__ = ["Activation", "AveragePooling2D", "BatchNormalization", "Concatenate", "Conv2D", "Conv2DTranspose",
           "Dense", "Dropout", "Flatten", "Layer", "Linear", "MaxPooling2D", "ReLU", "Sigmoid", "Softmax", "Tanh",
           "UpSampling2D"]

# The functional API's input placeholder, and saving by name (imported last: graph.py uses the layers above)
from ..graph import Input, InputLayer  # noqa: E402
from .base import deserialize, serialize  # noqa: E402

__all__ += ["Input", "InputLayer", "deserialize", "serialize"]
