"""The old home of Conv2D and Conv2DTranspose, kept so that `tinyseg.layers.convolution.X` still works.

The layers now live one per file (conv2d.py, conv2d_transpose.py) and the banded kernels they call in
kernels/convolution.py.
"""
from ..kernels.convolution import (
    BAND_BYTES,
    band_cols,
    band_plan,
    bands,
    conv2d,
    conv2d_kernel_grad,
    conv2d_transpose,
)
from ..kernels.im2col import col2im, im2col
from .conv2d import Conv2D, _Convolution, check_strides_with_dilation
from .conv2d_transpose import Conv2DTranspose
from .geometry import check_image_shape

__all__ = ["BAND_BYTES", "Conv2D", "Conv2DTranspose", "_Convolution", "band_cols", "band_plan", "bands",
           "check_image_shape", "check_strides_with_dilation", "col2im", "conv2d", "conv2d_kernel_grad",
           "conv2d_transpose", "im2col"]
