"""tinyseg.ops.nn: activations, as keras.ops.nn (formulas and gradients in tinyseg/layers/activations.py).

On a symbolic tensor each records its layer (ReLU, Sigmoid, Softmax); on an array it computes at once."""
import numpy as np

from ..graph import is_symbolic
from ..kernels.softmax import softmax as _softmax_last_axis


def relu(x):
    """max(x, 0)."""
    if is_symbolic(x):
        from ..layers import ReLU
        return ReLU()(x)
    return np.maximum(x, 0)


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""
    if is_symbolic(x):
        from ..layers import Sigmoid
        return Sigmoid()(x)
    x = np.asarray(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softmax(x, axis=-1):
    """exp(x - max) / sum exp(x - max) along `axis` (the last axis on a symbolic tensor: the classes)."""
    if is_symbolic(x):
        if axis not in (-1, len(x.shape) - 1):
            raise ValueError(f"ops.nn.softmax: on a symbolic tensor the softmax runs over the last axis (the "
                             f"classes), axis=-1; got axis={axis}")
        from ..layers import Softmax
        return Softmax()(x)
    x = np.asarray(x)
    if axis in (-1, x.ndim - 1) and x.dtype.kind == "f":
        return _softmax_last_axis(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


__all__ = ["relu", "sigmoid", "softmax"]
