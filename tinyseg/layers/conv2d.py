"""Conv2D: a 2-D convolution, computed as im2col, one matrix product, and col2im for the input gradient.

Convolution (cross-correlation, as in every framework), channels-last:

    x: (N, H, W, C)    kernel K: (KH, KW, C, F)    bias b: (F,)    z, y: (N, OH, OW, F)

    z[n, i, j, f] = b[f] + sum_{u, v, c} xpad[n, i*sh + u*dh, j*sw + v*dw, c] * K[u, v, c, f]
    y = activation(z)

    n: the image of the batch; (i, j): the output pixel; (u, v): the kernel tap, its row and column in the
    window; c: the input channel; f: the filter; b: the bias (the notation of tinyseg/reference.py)

    OH = (H - KH') // sh + 1 for padding='valid', ceil(H / sh) for 'same' (rules in geometry.py)

The dilation (dh, dw) is 1 unless asked for (Keras's `dilation_rate`): an atrous convolution, whose KH taps
sit dh rows apart, so the window spans KH' = (KH - 1)*dh + 1 rows (KW' likewise) with the same KH*KW*C
weights; KH' takes KH's place in the output-size and padding rules. As in Keras, Conv2D refuses a stride
above 1 together with a dilation above 1.

im2col turns it into one matrix product:

    cols = im2col(x)                   (N*OH*OW, KH*KW*C)   (the dilated taps of each window: still KH*KW*C)
    Kmat = K.reshape(KH*KW*C, F)
    z    = cols @ Kmat + b             (N*OH*OW, F) -> reshape (N, OH, OW, F)

Backward, with G = dL/dz reshaped to (N*OH*OW, F):

    dL/dKmat = cols^T @ G              (KH*KW*C, F)
    dL/db    = sum of G over its rows  (F,)
    dL/dx    = col2im(G @ Kmat^T)      (N, H, W, C)    <- a transposed convolution of G with the same K

That last line is the whole definition of a transposed convolution: conv2d_transpose is the adjoint of
conv2d (for every x and y, <conv2d(x), y> = <x, conv2d_transpose(y)>). So Conv2DTranspose
(conv2d_transpose.py) runs these two the other way round: a U-Net decoder is an encoder run backwards.

Conv2D's forward and backward below are these lines in NumPy. Before them, one guarded line
(`if fast(): ...`) hands each step to kernels/convolution.py, which computes the same numbers band by band
on tinyseg's threads (only the order of the work changes); with TINYSEG_BACKEND=numpy (tinyseg/backend.py)
that line is skipped and the NumPy lines run. tinyseg/reference.py has the same convolution as plain loops,
and the tests prove all three equal.
"""
from .. import initializers, regularizers
from ..backend import fast
from ..kernels import convolution, winograd
from ..kernels.im2col import col2im_numpy as col2im
from ..kernels.im2col import im2col_numpy as im2col
from ..validation import positive_int
from ..winograd import back_pads
from .activations import LayerWithActivation
from .geometry import check_image_shape, check_padding, conv_geometry, pair


class _Convolution(LayerWithActivation):
    """What Conv2D and Conv2DTranspose share: arguments, checks, config."""

    regularizer_arguments = {"kernel": "kernel_regularizer", "bias": "bias_regularizer"}
    geometry_attributes = LayerWithActivation.geometry_attributes + ("pads",)

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, **kwargs):
        super().__init__(activation=activation, **kwargs)
        self.kernel_regularizer = regularizers.get(kernel_regularizer, f"{self.name}: kernel_regularizer")
        self.bias_regularizer = regularizers.get(bias_regularizer, f"{self.name}: bias_regularizer")
        self.filters = positive_int(filters, f"{self.name}: filters")
        self.kernel_size = pair(kernel_size, f"{self.name}: kernel_size")
        self.strides = pair(strides, f"{self.name}: strides")
        self.padding = check_padding(padding)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "use_bias": self.use_bias,
                **regularizers.config_entries(self, self.regularizer_arguments.values())}

    def build(self, input_shape):
        out = super().build(input_shape)
        self.add_weight("kernel", self.kernel_shape(self.input_shape[2]), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer)
        return out


def check_strides_with_dilation(layer):
    """Keras's Conv2D refuses strides > 1 together with dilation_rate > 1 (TensorFlow's convolution has no
    such kernel); so does ours, with the same message, so a model written for one runs on the other."""
    if max(layer.strides) > 1 and max(layer.dilation_rate) > 1:
        raise ValueError(f"{layer.name}: strides > 1 is not supported together with dilation_rate > 1; got "
                         f"strides={layer.strides} and dilation_rate={layer.dilation_rate}")


ALGORITHMS = ("auto", "im2col", "winograd")
WINOGRAD_CHANNELS = (16, 16)    # 'auto': Winograd if min(C, filters) >= 16 and max(C, filters) >= 16 (Conv2D)


class Conv2D(_Convolution):
    """2-D convolution layer, Keras's `Conv2D(filters, kernel_size, strides, padding, dilation_rate, activation,
    use_bias)`.

    Shapes: x (N, H, W, C) -> y (N, OH, OW, filters); kernel (KH, KW, C, filters); bias (filters,).
    Formula, output size and gradients: see the module docstring. Weights start as Keras's do:
    glorot-uniform kernel, zero bias. dilation_rate (int or pair, default 1) spaces the kernel's taps; with it
    above 1 the strides must be 1 (Keras's rule). kernel_regularizer, bias_regularizer (e.g.
    tinyseg.regularizers.L2(1e-4)) add a penalty on those weights to the training loss.

    algorithm: how the forward and both gradients are computed (the numbers agree up to rounding):

        'im2col'    im2col and one matrix product (module docstring), for every kernel
        'winograd'  Winograd's F(4x4, 3x3) tiles (tinyseg/winograd.py): 36 products for 16 outputs instead
                    of 144; only for a 3x3 kernel with strides 1 and dilation_rate 1
        'auto'      (default) 'winograd' where it is allowed and the input channels C and the filters are
                    both at least 16; else 'im2col'. Always 'im2col' with the NumPy backend
                    (backend.py), whose plain lines below are the module docstring's formulas.

    The rule is measured (a layer's forward and backward, one thread): per output value Winograd does 4x fewer
    multiplications, but it pays for tile transforms, per channel. From 16 channels in and out on, the
    products it saves outweigh them (a whole step of the layer about 0.85 of im2col's time at 16 channels,
    less from 32 on); with fewer channels, as in the 3-channel input layer, the transforms cost more than
    the products they save. The image size does not enter the rule: from 4x4 images on (one tile a side, the
    rest padding) the tiles measured about as fast as im2col or faster, and the gain grows with the tiles.
    With Winograd the kernel gradient runs the tiles backwards too (kernels/winograd.py): a U-Net's training
    step measured faster this way than with im2col's kernel gradient, at 1 and 2 threads, 128x128 and CamVid
    size.
    Winograd's float32 rounding error is about ten times im2col's (still about 1e-6 of the output's scale);
    in float64 both agree with PyTorch to 1e-10 (tests/layers/test_conv2d_winograd.py).
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", dilation_rate=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros", algorithm="auto",
                 **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, activation=activation,
                         use_bias=use_bias, kernel_initializer=kernel_initializer,
                         bias_initializer=bias_initializer, **kwargs)
        self.dilation_rate = pair(dilation_rate, f"{self.name}: dilation_rate")
        check_strides_with_dilation(self)
        if algorithm not in ALGORITHMS:
            raise ValueError(f"{self.name}: algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
        if algorithm == "winograd" and not self.winograd_allowed():
            raise ValueError(f"{self.name}: algorithm='winograd' needs kernel_size (3, 3), strides (1, 1) and "
                             f"dilation_rate (1, 1); got kernel_size={self.kernel_size}, strides={self.strides}, "
                             f"dilation_rate={self.dilation_rate}")
        self.algorithm = algorithm
        self.winograd_transforms = winograd.KernelTransforms()   # G g G^T, kept until the kernel changes

    def get_config(self):
        return {**super().get_config(), "dilation_rate": self.dilation_rate, "algorithm": self.algorithm}

    def compute_output_shape(self, input_shape):
        check_image_shape(self, input_shape)
        (oh, ow), self.pads = conv_geometry(input_shape[:2], self.kernel_size, self.strides, self.padding,
                                           self.dilation_rate)
        return oh, ow, self.filters

    def kernel_shape(self, channels):
        return self.kernel_size + (channels, self.filters)

    def winograd_allowed(self):
        """True if Winograd's F(4x4, 3x3) computes this layer: a 3x3 kernel, strides 1, dilation_rate 1."""
        return self.kernel_size == (3, 3) and self.strides == (1, 1) and self.dilation_rate == (1, 1)

    def uses_winograd(self, x):
        """True if this forward (and its backward) runs Winograd's tiles: the rule of `algorithm` above."""
        if self.algorithm != "auto":
            return self.algorithm == "winograd"
        channels = sorted((x.shape[3], self.filters))
        return (fast() and self.winograd_allowed() and channels[0] >= WINOGRAD_CHANNELS[0]
                and channels[1] >= WINOGRAD_CHANNELS[1])

    def forward_linear(self, x, training=False):
        self.check_input(x)
        kernel, bias = self.params["kernel"], self.params.get("bias")
        (kh, kw), (sh, sw), out_hw = self.kernel_size, self.strides, self.output_shape[:2]
        use_winograd = self.uses_winograd(x)
        if use_winograd:    # the same numbers by F(4x4, 3x3) tiles: y = AT [U * (BT d B)] A, U = G g G^T
            z, cols = winograd.conv2d(x, self.winograd_transforms.get(kernel, "forward"), self.pads, out_hw,
                                      bias), None
        elif fast():        # the same numbers, band by band on tinyseg's threads
            z, cols = convolution.conv2d_forward(x, kernel, bias, self.strides, self.pads, out_hw,
                                                 self.dilation_rate, training)
        else:
            cols = im2col(x, kh, kw, sh, sw, self.pads, out_hw, dilation=self.dilation_rate)  # (N*OH*OW, KH*KW*C)
            z = cols @ kernel.reshape(-1, self.filters)                                       # (N*OH*OW, F)
            if bias is not None:
                z += bias
            z = z.reshape((len(x),) + self.output_shape)
        self.save_for_backward(x=x, cols=cols, winograd=use_winograd)
        return z

    def backward_linear(self, grad, input_grad=True):
        x, cols, use_winograd = self.saved_for_backward().x, self.saved.cols, self.saved.winograd
        kernel = self.params["kernel"]
        im2col_input_grad = input_grad and not use_winograd
        if fast() and use_winograd:     # dL/dK = G^T [sum over tiles of V^T @ (A dY AT)] G: the tiles backwards
            dk, db = winograd.kernel_grad(x, grad, self.pads, bias=self.use_bias)
            dx = None
        elif fast():    # the same numbers, band by band on tinyseg's threads
            dk, db, dx = convolution.conv2d_backward(x, cols, grad, kernel, self.strides, self.pads,
                                                     self.dilation_rate, self.use_bias, im2col_input_grad)
            self.saved.cols = None      # used once: its memory goes back before the next step
        else:
            (kh, kw), (sh, sw), out_hw = self.kernel_size, self.strides, self.output_shape[:2]
            if cols is None:
                cols = im2col(x, kh, kw, sh, sw, self.pads, out_hw, dilation=self.dilation_rate)
            g = grad.reshape(-1, self.filters)                                   # G: (N*OH*OW, F)
            dk = (cols.T @ g).reshape(kernel.shape)                              # dL/dKmat = cols^T @ G
            db = g.sum(axis=0)                                                   # dL/db = sum of G's rows
            dx = col2im(g @ kernel.reshape(-1, self.filters).T, x.shape, kh, kw, sh, sw, self.pads, out_hw,
                        dilation=self.dilation_rate) if im2col_input_grad else None  # dL/dx = col2im(G @ Kmat^T)
        if input_grad and use_winograd:     # dL/dx: a 3x3 convolution of G with the flipped kernel, by tiles too
            dx = winograd.conv2d(grad, self.winograd_transforms.get(kernel, "backward"), back_pads(self.pads),
                                 x.shape[1:3])
        self.grads["kernel"] = dk
        if self.use_bias:
            self.grads["bias"] = db
        return dx
