"""The one comparison the parity tests of weightless one-input layers share (global pooling, padding,
cropping, reshape): the tinyseg layer and layer_to_torch(layer) get the same float64 input, NCHW for torch,
and the same upstream gradient; returns the relative errors (interop.pytorch.relative_error) of the output
and of the input gradient."""
import numpy as np


def one_input_errors(layer, x, seed=0):
    from tinyseg.interop.pytorch import layer_to_torch, nhwc_to_nchw, relative_error, to_tensor
    y = layer.forward(x)
    g = np.random.default_rng(seed).standard_normal(y.shape)
    dx = layer.backward(g)
    xt = to_tensor(nhwc_to_nchw(x), requires_grad=True)
    yt = layer_to_torch(layer)(xt)
    yt.backward(to_tensor(nhwc_to_nchw(g)))
    return {"output": relative_error(nhwc_to_nchw(y), yt), "input": relative_error(nhwc_to_nchw(dx), xt.grad)}
