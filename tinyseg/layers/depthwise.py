"""DepthwiseConv2D: a convolution that keeps the channels apart (SeparableConv2D, which then mixes them with
a 1x1 convolution, builds on it in separable.py).

Depthwise convolution, channels-last, depth multiplier M (each input channel gets its own M filters):

    x: (N, H, W, C)    depthwise_kernel K: (KH, KW, C, M)    bias b: (C*M,)    z, y: (N, OH, OW, C*M)

    z[n, i, j, c*M + m] = b[c*M + m] + sum_{u, v} xpad[n, i*sh + u*dh, j*sw + v*dw, c] * K[u, v, c, m]
    y = activation(z)

    OH = (H - KH') // sh + 1 for padding='valid', ceil(H / sh) for 'same' (rules in geometry.py), where
    KH' = (KH - 1)*dh + 1 is the effective kernel of dilation dh (KW' likewise); 'same' pads from KH' too.

Output channel c*M + m is filter m of input channel c: Keras's order, and PyTorch's for Conv2d(groups=C).
A Conv2D would sum over c as well; the depthwise one does not, so it has KH*KW*C*M weights, not KH*KW*C*F.

Backward of the depthwise part, with G = dL/dz viewed as (N, OH, OW, C, M):

    dL/dK[u, v, c, m] = sum_{n, i, j} xpad[n, i*sh + u*dh, j*sw + v*dw, c] * G[n, i, j, c, m]
    dL/db[c*M + m]    = sum_{n, i, j} G[n, i, j, c, m]
    dL/dx[n, h, w, c] = sum_{u, v, m} G[n, i, j, c, m] * K[u, v, c, m]
                        over the (i, j) with i*sh - pad_top + u*dh = h and j*sw - pad_left + v*dw = w
                        (the transposed depthwise convolution of G)

Strides with dilation: Keras's Conv2D refuses strides > 1 together with dilation_rate > 1, but Keras 3's
DepthwiseConv2D and SeparableConv2D accept them (its TensorFlow backend runs the dilated convolution at
stride 1 and subsamples); so do these layers, whose kernels handle any combination directly.

The loops live in kernels/depthwise.py (Numba, each with its NumPy twin): a depthwise convolution as im2col
plus a matmul would multiply C times more numbers than the formula has, almost all of them by zero.
"""
from .. import initializers, regularizers
from ..kernels.depthwise import depthwise_conv2d, depthwise_conv2d_input_grad, depthwise_conv2d_kernel_grad
from ..kernels.elementwise import add_bias
from ..validation import positive_int
from .activations import LayerWithActivation
from .base import channel_sum
from .geometry import check_image_shape, check_padding, conv_geometry, pair


def initializer_config(init):
    """The name initializers.get knows `init` by (so that a config stays plain JSON), else the function."""
    for name, fn in initializers.INITIALIZERS.items():
        if fn is init:
            return name
    return init


class _Depthwise(LayerWithActivation):
    """What DepthwiseConv2D and SeparableConv2D share: the depthwise part's arguments, checks, geometry."""

    geometry_attributes = LayerWithActivation.geometry_attributes + ("pads",)

    depthwise_key = "depthwise_kernel"      # Keras 3 names it 'kernel' in DepthwiseConv2D (set there)

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, dilation_rate=1,
                 activation=None, use_bias=True, depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(activation=activation, **kwargs)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer, f"{self.name}: depthwise_regularizer")
        self.bias_regularizer = regularizers.get(bias_regularizer, f"{self.name}: bias_regularizer")
        self.kernel_size = pair(kernel_size, f"{self.name}: kernel_size")
        self.strides = pair(strides, f"{self.name}: strides")
        self.padding = check_padding(padding)
        self.depth_multiplier = positive_int(depth_multiplier, f"{self.name}: depth_multiplier")
        self.dilation_rate = pair(dilation_rate, f"{self.name}: dilation_rate")
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "depth_multiplier": self.depth_multiplier,
                "dilation_rate": self.dilation_rate, "use_bias": self.use_bias,
                "depthwise_initializer": initializer_config(self.depthwise_initializer),
                "bias_initializer": initializer_config(self.bias_initializer),
                **regularizers.config_entries(self, self.regularizer_arguments.values())}

    def depthwise_geometry(self, input_shape):
        """(OH, OW) of the depthwise part; sets self.pads (top, bottom, left, right)."""
        check_image_shape(self, input_shape)
        out_hw, self.pads = conv_geometry(input_shape[:2], self.kernel_size, self.strides, self.padding,
                                          self.dilation_rate)
        return out_hw

    def depthwise_kernel_shape(self):
        return self.kernel_size + (self.input_shape[2], self.depth_multiplier)      # (KH, KW, C, M)

    def depthwise_forward(self, x):
        """d = depthwise(x, K) without bias: (N, OH, OW, C*M)."""
        return depthwise_conv2d(x, self.params[self.depthwise_key], self.strides, self.pads,
                                self.output_shape[:2], self.dilation_rate)

    def depthwise_backward(self, grad, input_grad):
        """Fill grads[depthwise_key] from dL/dd (N, OH, OW, C*M); return dL/dx (or None)."""
        kernel = self.params[self.depthwise_key]
        x = self.saved_for_backward().x
        self.grads[self.depthwise_key] = depthwise_conv2d_kernel_grad(x, grad, self.kernel_size,
                                                                      self.strides, self.pads, self.dilation_rate)
        if not input_grad:
            return None
        return depthwise_conv2d_input_grad(grad, kernel, self.strides, self.pads, x.shape,
                                           self.dilation_rate)


class DepthwiseConv2D(_Depthwise):
    """Depthwise convolution, Keras's `DepthwiseConv2D(kernel_size, strides, padding, depth_multiplier,
    dilation_rate, activation, use_bias)`.

    Shapes: x (N, H, W, C) -> y (N, OH, OW, C*depth_multiplier); kernel (KH, KW, C, M) (Keras 3's name);
    bias (C*M,). Weights in that order, glorot-uniform kernel (fans KH*KW*C and KH*KW*M, as Keras counts
    them for any 4-D kernel) and zero bias. Formula, output size and gradients: the module docstring.
    depthwise_regularizer, bias_regularizer (tinyseg.regularizers) add penalties on those weights to the loss.
    """

    regularizer_arguments = {"kernel": "depthwise_regularizer", "bias": "bias_regularizer"}

    def compute_output_shape(self, input_shape):
        oh, ow = self.depthwise_geometry(input_shape)
        return oh, ow, input_shape[2] * self.depth_multiplier

    depthwise_key = "kernel"

    def build(self, input_shape):
        out = super().build(input_shape)
        self.add_weight(self.depthwise_key, self.depthwise_kernel_shape(), self.depthwise_initializer)
        if self.use_bias:
            self.add_weight("bias", (out[2],), self.bias_initializer)
        return out

    def forward_linear(self, x, training=False):
        self.check_input(x)
        self.save_for_backward(x=x)
        z = self.depthwise_forward(x)
        if self.use_bias:
            add_bias(z, self.params["bias"])           # z += bias, in one parallel pass
        return z

    def backward_linear(self, grad, input_grad=True):
        dx = self.depthwise_backward(grad, input_grad)
        if self.use_bias:
            self.grads["bias"] = channel_sum(grad)
        return dx
