"""Conv2DTranspose: the adjoint of a convolution, i.e. Conv2D's backward run as a forward.

A transposed convolution ("deconvolution") maps x (N, H, W, C) to y (N, OH, OW, F) with the kernel of the
Conv2D that maps (N, OH, OW, F) back to (N, H, W, C) (conv2d.py has that convolution's formulas):

    kernel K: (KH, KW, F, C), as in Keras    bias b: (F,)    Kmat = K.reshape(KH*KW*F, C)

    OH = H*sh + max(KH - sh, 0) for padding='valid', H*sh for 'same' (geometry.deconv_output_length)

    z  = col2im(x_flat @ Kmat^T) + b         = conv2d_transpose(x, K) + b;   y = activation(z)

Backward, with G = dL/dz:

    dL/dx    = im2col(G) @ Kmat              = conv2d(G, K): a plain convolution
    dL/dKmat = im2col(G)^T @ x_flat          (KH*KW*F, C) -> (KH, KW, F, C): the kernel gradient of the
                                             convolution G -> x, with x in the place of its output gradient
    dL/db    = sum of G over N, OH, OW

With kernel 2 and stride 2 every input pixel paints its own 2x2 block: a learned upsampling. Keras's
dilation_rate is left out here (a U-Net decoder does not use it).
"""
import numpy as np

from ..kernels.convolution import conv2d, conv2d_kernel_grad, conv2d_transpose
from .base import channel_sum
from .conv2d import _Convolution
from .geometry import check_image_shape, conv_geometry, deconv_output_length


class Conv2DTranspose(_Convolution):
    """Transposed convolution, Keras's `Conv2DTranspose(filters, kernel_size, strides, padding, activation,
    use_bias)`.

    Shapes: x (N, H, W, C) -> y (N, OH, OW, filters); kernel (KH, KW, filters, C); bias (filters,).
    Formula, output size and gradients: see the module docstring.
    """

    def compute_output_shape(self, input_shape):
        check_image_shape(self, input_shape)
        oh = deconv_output_length(input_shape[0], self.kernel_size[0], self.strides[0], self.padding)
        ow = deconv_output_length(input_shape[1], self.kernel_size[1], self.strides[1], self.padding)
        # the pads of the convolution (OH, OW) -> (H, W) that this layer is the adjoint of
        _, self.pads = conv_geometry((oh, ow), self.kernel_size, self.strides, self.padding)
        return oh, ow, self.filters

    def kernel_shape(self, channels):
        return self.kernel_size + (self.filters, channels)      # Keras's layout for a transposed kernel

    def forward_linear(self, x, training=False):
        self.check_input(x)
        self.save_for_backward(x=x)
        # z = col2im(x_flat @ Kmat^T) + b
        return conv2d_transpose(x, self.params["kernel"], self.strides, self.pads,
                                (x.shape[0],) + self.output_shape, self.params.get("bias"))

    def backward_linear(self, grad, input_grad=True):
        kernel = self.params["kernel"]
        grad = np.ascontiguousarray(grad)            # a view (from Concatenate's backward) is copied once
        # dL/dKmat = im2col(G)^T @ x_flat
        self.grads["kernel"] = conv2d_kernel_grad(grad, self.saved_for_backward().x, self.kernel_size, self.strides,
                                                  self.pads)[0].reshape(kernel.shape)
        if self.use_bias:
            self.grads["bias"] = channel_sum(grad)   # dL/db = sum of G
        if not input_grad:
            return None
        # dL/dx = im2col(G) @ Kmat
        return conv2d(grad, kernel, self.strides, self.pads, self.input_shape[:2])
