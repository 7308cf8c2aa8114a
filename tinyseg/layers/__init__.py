"""Layers, one family per file; names as in Keras."""
from .activations import Activation, Linear, ReLU, Sigmoid, Softmax, Tanh
from .base import Layer
from .convolution import Conv2D, Conv2DTranspose
from .dense import Dense, Flatten
from .merging import Add, Average, Concatenate, Multiply, Subtract, add, average, concatenate, multiply, subtract
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D
from .regularization import Dropout
from .reshaping import Cropping2D, Reshape, ZeroPadding2D
from .upsampling import UpSampling2D

__all__ = ["Activation", "Add", "Average", "AveragePooling2D", "BatchNormalization", "Concatenate", "Conv2D",
           "Conv2DTranspose", "Cropping2D", "Dense", "Dropout", "Flatten", "GlobalAveragePooling2D",
           "GlobalMaxPooling2D", "Layer", "Linear", "MaxPooling2D", "Multiply", "ReLU", "Reshape", "Sigmoid",
           "Softmax", "Subtract", "Tanh", "UpSampling2D", "ZeroPadding2D"]
# The function forms add, average, concatenate, multiply and subtract are importable from here, as in Keras,
# but left out of __all__: saving.layer_classes() reads __all__ as the list of layer classes.
