"""Dense (fully connected) and Flatten.

Dense:   x (N, D_in),  kernel W (D_in, D_out),  bias b (D_out,)  ->  y (N, D_out)

    y = x @ W + b
    dL/dW = x^T @ G,   dL/db = sum_n G[n],   dL/dx = G @ W^T        where G = dL/dy, (N, D_out)

Flatten: x (N, H, W, C) -> y (N, H*W*C) in C order, so the channel index runs fastest (Keras's channels-last
order; PyTorch's NCHW flatten orders the same numbers differently, which interop.py accounts for).

Dense's lines are these formulas in NumPy; the bias add alone has a guarded line (`if fast(): ...`) that
does it in place in one parallel pass (kernels/elementwise.py; TINYSEG_BACKEND=numpy skips it).
"""
import numpy as np

from .. import initializers, regularizers
from ..backend import fast
from ..kernels.elementwise import add_bias
from .activations import LayerWithActivation
from .base import Layer, channel_sum


class Dense(LayerWithActivation):
    """y = activation(x @ kernel + bias), Keras's `Dense(units, activation, use_bias)`.

    Shapes: x (N, D_in) -> y (N, units); kernel (D_in, units); bias (units,). Gradients in the module docstring.
    kernel_regularizer, bias_regularizer (tinyseg.regularizers) add a penalty on those weights to the loss.
    """

    regularizer_arguments = {"kernel": "kernel_regularizer", "bias": "bias_regularizer"}

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(activation=activation, **kwargs)
        self.kernel_regularizer = regularizers.get(kernel_regularizer, f"{self.name}: kernel_regularizer")
        self.bias_regularizer = regularizers.get(bias_regularizer, f"{self.name}: bias_regularizer")
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units < 1:
            raise ValueError(f"{self.name}: units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"{self.name}: expects vectors (batch, features), got input shape (batch,) + "
                             f"{tuple(input_shape)}; put a Flatten() before it")
        return (self.units,)

    def build(self, input_shape):
        out = super().build(input_shape)
        self.add_weight("kernel", (self.input_shape[0], self.units), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer)
        return out

    def forward_linear(self, x, training=False):
        self.check_input(x)
        self.save_for_backward(x=x)
        y = x @ self.params["kernel"]                            # (N, D_out)
        if self.use_bias and fast():        # the same y + b, in place, in one parallel pass
            return add_bias(y, self.params["bias"])
        return y + self.params["bias"] if self.use_bias else y

    def backward_linear(self, grad, input_grad=True):
        x = self.saved_for_backward().x
        self.grads["kernel"] = x.T @ grad                        # dL/dW = x^T @ G
        if self.use_bias:
            self.grads["bias"] = channel_sum(grad)               # dL/db = sum_n G[n]
        return grad @ self.params["kernel"].T if input_grad else None      # dL/dx = G @ W^T

    def get_config(self):
        return {**super().get_config(), "units": self.units, "use_bias": self.use_bias,
                **regularizers.config_entries(self, self.regularizer_arguments.values())}


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1*d2*...); backward reshapes the gradient back."""

    fixed_size = True           # the next Dense was built for this many features

    def compute_output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x, training=False):
        self.check_input(x)
        return x.reshape(x.shape[0], -1)

    def backward(self, grad):
        self.check_grad(grad)
        return grad.reshape((grad.shape[0],) + self.input_shape)
