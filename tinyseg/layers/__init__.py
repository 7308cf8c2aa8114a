"""Layers, one family per file; names as in Keras."""
from .activations import Activation, Linear, ReLU, Sigmoid, Softmax, Tanh
from .base import Layer
from .convolution import Conv2D, Conv2DTranspose
from .dense import Dense, Flatten
