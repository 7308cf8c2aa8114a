"""Element-wise activations and softmax, as layers and as `activation=` strings.

Each maps x to y of the same shape; the backward multiplies the upstream gradient dy by the derivative.

    relu:     y = max(x, 0)                       dx = dy * [x > 0]
    sigmoid:  y = 1 / (1 + exp(-x))               dx = dy * y * (1 - y)
    tanh:     y = tanh(x)                         dx = dy * (1 - y^2)
    softmax:  y_k = exp(x_k - m) / sum_j exp(x_j - m),  m = max_j x_j   (over the last axis)
              dx_k = y_k * (dy_k - sum_j dy_j y_j)
    linear:   y = x                               dx = dy

Subtracting the maximum m changes nothing mathematically and keeps exp() from overflowing.

Three kinds of class, three names:

    ActivationFunction     a parameter-free layer y = f(x): Linear, ReLU, Sigmoid, Tanh, Softmax
    Activation             Keras's Activation('relu') layer: the activation function named by a string
    LayerWithActivation    a layer with an `activation=` argument, y = activation(z) with z its linear part
                           (Conv2D, Dense, ...): subclasses write forward_linear and backward_linear
"""
import numpy as np

from ..kernels.elementwise import relu, relu_backward, sigmoid
from ..kernels.softmax import softmax
from .base import Layer, read_only


class ActivationFunction(Layer):
    """A parameter-free layer y = f(x) with an element-wise (or last-axis) derivative."""

    activation_name = None

    def forward(self, x, training=False):
        self.check_input(x)
        y = self.function(x)
        self.save_for_backward(x=x, y=y)         # the derivative is written with one or the other
        return y

    def backward(self, grad):
        self.saved_for_backward()
        self.check_grad(grad)
        return self.derivative_times(grad)

    def function(self, x):
        raise NotImplementedError

    def derivative_times(self, grad):
        raise NotImplementedError


class Linear(ActivationFunction):
    """y = x (the activation of a layer given no activation)."""

    activation_name = "linear"

    def function(self, x):
        return x

    def derivative_times(self, grad):
        return read_only(grad)               # dy itself: a view that cannot be written, not a copy


class ReLU(ActivationFunction):
    """y = max(x, 0); dx = dy * [x > 0] (the kink at 0 gets derivative 0)."""

    activation_name = "relu"

    def function(self, x):
        return relu(x)                       # max(x, 0), one parallel pass (kernels/elementwise.py)

    def derivative_times(self, grad):
        return relu_backward(grad, self.saved.x)  # grad * [x > 0], a new array: the caller's grad is not touched


class Sigmoid(ActivationFunction):
    """y = 1 / (1 + exp(-x)); dx = dy * y * (1 - y)."""

    activation_name = "sigmoid"

    def function(self, x):
        return sigmoid(x)

    def derivative_times(self, grad):
        y = self.saved.y
        return grad * y * (1 - y)


class Tanh(ActivationFunction):
    """y = tanh(x); dx = dy * (1 - y^2)."""

    activation_name = "tanh"

    def function(self, x):
        return np.tanh(x)

    def derivative_times(self, grad):
        y = self.saved.y
        return grad * (1 - y * y)


class Softmax(ActivationFunction):
    """y = softmax(x) over the last axis (classes); dx = y * (dy - sum(dy * y, last axis)).

    Works on (N, K) class scores and on (N, H, W, K) per-pixel scores alike.
    """

    activation_name = "softmax"

    def function(self, x):
        return softmax(x)

    def derivative_times(self, grad):
        y = self.saved.y
        return y * (grad - (grad * y).sum(axis=-1, keepdims=True))


ACTIVATIONS = {cls.activation_name: cls for cls in (Linear, ReLU, Sigmoid, Tanh, Softmax)}


def get(activation, dtype=None, name=None):
    """Turn None, a name ('relu', 'sigmoid', 'tanh', 'softmax', 'linear') or a layer into an activation layer."""
    if activation is None:
        activation = "linear"
    if isinstance(activation, ActivationFunction):
        # a fresh instance: an activation keeps its layer's cache, so it must never be shared by two layers
        return type(activation)(dtype=dtype, name=name)
    if isinstance(activation, str) and activation.lower() in ACTIVATIONS:
        return ACTIVATIONS[activation.lower()](dtype=dtype, name=name)
    raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or None, got {activation!r}")


class Activation(Layer):
    """Keras's `Activation('relu')`: a layer that applies the named activation."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = get(activation, dtype=self.dtype, name=self.name + "/" + str(activation))

    def inner_layers(self):
        return [self.activation]

    def forward(self, x, training=False):
        self.check_input(x)
        return self.activation.forward(x, training)

    def backward(self, grad):
        self.check_grad(grad)
        return self.activation.backward(grad)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation.activation_name}


class LayerWithActivation(Layer):
    """A layer computing y = activation(z), where z is its linear part (Conv2D, Dense, Conv2DTranspose, ...).

    Subclasses write `forward_linear` and `backward_linear`; the activation is chained on here. A loss that
    fuses softmax or sigmoid with its log (see tinyseg/losses/) asks the model for z directly.

    backward(grad, input_grad=False) fills the parameter gradients and skips dL/dx (None): training never
    needs the gradient of the data, and for a model's first layer dL/dx is real work (a col2im for Conv2D).
    """

    def __init__(self, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.activation = get(activation, dtype=self.dtype, name=f"{self.name}/{activation or 'linear'}")

    def inner_layers(self):
        return [self.activation]

    def forward(self, x, training=False):
        return self.activation.forward(self.forward_linear(x, training), training)

    def backward(self, grad, input_grad=True):
        self.check_grad(grad)
        grad_z = self.activation.backward(grad)
        if input_grad:
            return self.backward_linear(grad_z)
        return self.backward_linear(grad_z, input_grad=False)

    def forward_linear(self, x, training=False):
        raise NotImplementedError

    def backward_linear(self, grad, input_grad=True):
        """dL/dz -> dL/dx (None if input_grad is False), filling self.grads."""
        raise NotImplementedError

    def get_config(self):
        return {**super().get_config(), "activation": self.activation.activation_name}

