"""SeparableConv2D: a depthwise convolution (depthwise.py has its formulas), then a 1x1 convolution.

A depthwise convolution (no bias), then a 1x1 convolution that mixes the C*M channels into F filters, i.e.
one matrix product per pixel:

    pointwise_kernel P: (1, 1, C*M, F)    bias b: (F,)    d: (N, OH, OW, C*M)    z, y: (N, OH, OW, F)

    d = depthwise(x, K)
    z = d2 @ P2 + b       d2 = d as (N*OH*OW, C*M),  P2 = P as (C*M, F);  y = activation(z)

    weights: KH*KW*C*M + C*M*F + F, against KH*KW*C*F + F for a Conv2D with the same window and filters.

Its backward is the chain rule through the two, with G = dL/dz as (N*OH*OW, F):

    dL/dP2 = d2^T @ G          (C*M, F) -> (1, 1, C*M, F)
    dL/db  = sum of G over its rows
    dL/dd  = G @ P2^T          (N*OH*OW, C*M) -> (N, OH, OW, C*M), then the depthwise backward:
    dL/dK  = depthwise kernel gradient of (x, dL/dd),   dL/dx = depthwise input gradient of dL/dd

The depthwise part's arguments, geometry and kernels are those of DepthwiseConv2D (its base class here).
"""
from .. import initializers, regularizers
from ..kernels.elementwise import add_bias
from ..validation import positive_int
from .base import channel_sum
from .depthwise import _Depthwise, initializer_config


class SeparableConv2D(_Depthwise):
    """Depthwise then pointwise (1x1) convolution, Keras's `SeparableConv2D(filters, kernel_size, strides,
    padding, depth_multiplier, dilation_rate, activation, use_bias)`.

    Shapes: x (N, H, W, C) -> y (N, OH, OW, filters); depthwise_kernel (KH, KW, C, M); pointwise_kernel
    (1, 1, C*M, filters); bias (filters,). Weights in that order (Keras's), both kernels glorot-uniform, zero
    bias; no bias between the two parts. Formula, output size and gradients: the module docstring.
    depthwise_regularizer, pointwise_regularizer, bias_regularizer (tinyseg.regularizers) add penalties on
    those weights to the loss.
    """

    regularizer_arguments = {"depthwise_kernel": "depthwise_regularizer", "pointwise_kernel": "pointwise_regularizer",
                             "bias": "bias_regularizer"}

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
                 dilation_rate=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", pointwise_regularizer=None,
                 **kwargs):
        super().__init__(kernel_size, strides=strides, padding=padding, depth_multiplier=depth_multiplier,
                         dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                         depthwise_initializer=depthwise_initializer, bias_initializer=bias_initializer,
                         **kwargs)
        self.filters = positive_int(filters, f"{self.name}: filters")
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer, f"{self.name}: pointwise_regularizer")

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "pointwise_initializer": initializer_config(self.pointwise_initializer)}

    def compute_output_shape(self, input_shape):
        oh, ow = self.depthwise_geometry(input_shape)
        return oh, ow, self.filters

    def build(self, input_shape):
        out = super().build(input_shape)
        cm = self.input_shape[2] * self.depth_multiplier
        self.add_weight(self.depthwise_key, self.depthwise_kernel_shape(), self.depthwise_initializer)
        self.add_weight("pointwise_kernel", (1, 1, cm, self.filters), self.pointwise_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer)
        return out

    def forward_linear(self, x, training=False):
        self.check_input(x)
        d = self.depthwise_forward(x)                                   # (N, OH, OW, C*M)
        self.save_for_backward(x=x, d=d)
        p2 = self.params["pointwise_kernel"][0, 0]                      # (C*M, F)
        z = (d.reshape(-1, d.shape[3]) @ p2).reshape(d.shape[:3] + (self.filters,))
        if self.use_bias:
            add_bias(z, self.params["bias"])
        return z

    def backward_linear(self, grad, input_grad=True):
        d, p2 = self.saved_for_backward().d, self.params["pointwise_kernel"][0, 0]
        g2 = grad.reshape(-1, self.filters)                             # G (N*OH*OW, F)
        grad_d = (g2 @ p2.T).reshape(d.shape)                           # dL/dd = G @ P2^T, (N, OH, OW, C*M)
        dx = self.depthwise_backward(grad_d, input_grad)                # dL/dK, and dL/dx unless not wanted
        self.grads["pointwise_kernel"] = (d.reshape(-1, d.shape[3]).T @ g2).reshape(
            self.params["pointwise_kernel"].shape)                      # dL/dP2 = d2^T @ G
        if self.use_bias:
            self.grads["bias"] = channel_sum(grad)
        return dx
