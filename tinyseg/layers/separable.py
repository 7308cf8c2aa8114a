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
The pointwise part is a 1x1 convolution of d; the layer's one guarded line (`if fast(): ...`) hands it to
kernels/convolution.py, which computes the same products band by band on tinyseg's threads, as for Conv2D.
"""
from .. import initializers, regularizers
from ..backend import fast
from ..kernels import convolution
from ..validation import positive_int
from .base import channel_sum
from .depthwise import _Depthwise, initializer_config

NO_PADS = (0, 0, 0, 0)      # the pointwise part's 1x1 window needs no padding (top, bottom, left, right)


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
        kernel, bias = self.params["pointwise_kernel"], self.params.get("bias")
        if fast():      # the same product as a 1x1 convolution of d, band by band on tinyseg's threads
            return convolution.conv2d(d, kernel, (1, 1), NO_PADS, d.shape[1:3], bias)
        z = d.reshape(-1, d.shape[3]) @ kernel[0, 0]                   # z = d2 @ P2, (N*OH*OW, F)
        if bias is not None:
            z += bias                                                   #   + b
        return z.reshape(d.shape[:3] + (self.filters,))

    def backward_linear(self, grad, input_grad=True):
        d, kernel = self.saved_for_backward().d, self.params["pointwise_kernel"]
        if fast():      # the same products as the 1x1 convolution's backward, band by band on tinyseg's threads
            dp, db, grad_d = convolution.conv2d_backward(d, None, grad, kernel, (1, 1), NO_PADS, (1, 1),
                                                         self.use_bias, True)
        else:
            d2, p2 = d.reshape(-1, d.shape[3]), kernel[0, 0]
            g2 = grad.reshape(-1, self.filters)                         # G (N*OH*OW, F)
            dp = (d2.T @ g2).reshape(kernel.shape)                      # dL/dP2 = d2^T @ G
            db = channel_sum(grad)                                      # dL/db = sum of G's rows
            grad_d = (g2 @ p2.T).reshape(d.shape)                       # dL/dd = G @ P2^T, (N, OH, OW, C*M)
        dx = self.depthwise_backward(grad_d, input_grad)                # dL/dK, and dL/dx unless not wanted
        self.grads["pointwise_kernel"] = dp
        if self.use_bias:
            self.grads["bias"] = db
        return dx
