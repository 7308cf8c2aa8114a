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

The forward and backward below are these lines in NumPy, after one guarded line (`if fast(): ...`) that
hands the step to kernels/convolution.py, as Conv2D does (TINYSEG_BACKEND=numpy skips it).
"""
import numpy as np

from ..backend import fast
from ..kernels.convolution import conv2d, conv2d_kernel_grad, conv2d_transpose
from ..kernels.im2col import col2im_numpy as col2im
from ..kernels.im2col import im2col_numpy as im2col
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
        kernel, bias = self.params["kernel"], self.params.get("bias")
        out_shape = (x.shape[0],) + self.output_shape
        if fast():      # the same numbers, band by band on tinyseg's threads
            return conv2d_transpose(x, kernel, self.strides, self.pads, out_shape, bias)
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        kmat = kernel.reshape(-1, kernel.shape[3])                               # Kmat: (KH*KW*F, C)
        z = col2im(x.reshape(-1, x.shape[3]) @ kmat.T, out_shape, kh, kw, sh, sw, self.pads, x.shape[1:3])
        return z + bias if bias is not None else z                               # col2im(x_flat @ Kmat^T) + b

    def backward_linear(self, grad, input_grad=True):
        x, kernel = self.saved_for_backward().x, self.params["kernel"]
        if fast():      # the same numbers, band by band on tinyseg's threads
            grad = np.ascontiguousarray(grad)        # a view (from Concatenate's backward) is copied once
            dk = conv2d_kernel_grad(grad, x, self.kernel_size, self.strides, self.pads)[0]
            db = channel_sum(grad) if self.use_bias else None
            dx = conv2d(grad, kernel, self.strides, self.pads, x.shape[1:3]) if input_grad else None
        else:
            (kh, kw), (sh, sw) = self.kernel_size, self.strides
            cols = im2col(grad, kh, kw, sh, sw, self.pads, x.shape[1:3])        # im2col(G): (N*H*W, KH*KW*F)
            x_flat, kmat = x.reshape(-1, x.shape[3]), kernel.reshape(-1, kernel.shape[3])
            dk = cols.T @ x_flat                                                 # dL/dKmat = im2col(G)^T @ x_flat
            db = grad.reshape(-1, grad.shape[3]).sum(axis=0) if self.use_bias else None      # dL/db = sum of G
            dx = (cols @ kmat).reshape(x.shape) if input_grad else None          # dL/dx = im2col(G) @ Kmat
        self.grads["kernel"] = dk.reshape(kernel.shape)
        if self.use_bias:
            self.grads["bias"] = db
        return dx
