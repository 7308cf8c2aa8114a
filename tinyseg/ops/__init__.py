"""tinyseg.ops: the part of keras.ops that segmentation models use, on symbolic tensors and on arrays.

On a symbolic tensor (keras.Input and what layers return), each op records the layer that computes it, so a
functional model (or a layers.Lambda) built from ops has a backward, layer by layer:

    ops.add(a, b)              Add()([a, b])             ops.add(a, 2.0)        Rescaling(1, offset=2.0)(a)
    ops.subtract(a, b)         Subtract()([a, b])        ops.multiply(a, 0.5)   Rescaling(0.5)(a)
    ops.multiply(a, b)         Multiply()([a, b])        ops.concatenate(xs)    Concatenate(axis)(xs)
    ops.mean(x, axis)          Mean(axis, keepdims)(x)   ops.reshape(x, shape)  Reshape(shape[1:])(x)
    ops.transpose(x, axes)     Permute(axes[1:])(x)      ops.nn.relu(x)         ReLU()(x)   (sigmoid, softmax)
    ops.image.resize(x, size)  Resizing(*size, ...)(x)

On NumPy arrays they compute the value at once (no layer is made, nothing is recorded). As everywhere in
tinyseg, nothing is broadcast silently: two tensors combined element by element have one shape (a Python
number is the one exception, as in Keras), and the batch axis stays where it is on symbolic tensors.
"""
import numbers

import numpy as np

from ..graph import is_symbolic
from . import image, nn
from .nn import relu, sigmoid, softmax


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _elementwise(name, merge, scale, a, b):
    """a op b: a merge layer on two tensors, Rescaling with a number; on arrays, NumPy (same shapes)."""
    from .. import layers
    if _is_number(a) and not _is_number(b) and name != "subtract":
        a, b = b, a                                    # 2 + x = x + 2, 2 * x = x * 2
    if is_symbolic([a, b]):
        if _is_number(b):
            if scale is None:
                raise TypeError(f"ops.{name}: on a symbolic tensor the second argument must be a tensor, got {b!r}")
            return layers.Rescaling(*scale(float(b)))(a)
        return merge()([a, b])
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape and a.ndim and b.ndim:
        raise ValueError(f"ops.{name}: the two arrays must have one shape (nothing is broadcast), got {a.shape} and "
                         f"{b.shape}")
    return getattr(np, name)(a, b)


def add(x1, x2):
    """x1 + x2, element by element (gradient: dy to each)."""
    from ..layers import Add
    return _elementwise("add", Add, lambda c: (1.0, c), x1, x2)


def subtract(x1, x2):
    """x1 - x2, element by element (gradient: dy and -dy)."""
    from ..layers import Subtract
    return _elementwise("subtract", Subtract, lambda c: (1.0, -c), x1, x2)


def multiply(x1, x2):
    """x1 * x2, element by element (gradient: dy * x2 and dy * x1)."""
    from ..layers import Multiply
    return _elementwise("multiply", Multiply, lambda c: (c, 0.0), x1, x2)


def concatenate(xs, axis=-1):
    """The tensors joined along `axis` (gradient: dy split)."""
    if is_symbolic(xs):
        from ..layers import Concatenate
        return Concatenate(axis=axis)(list(xs))
    return np.concatenate(xs, axis=axis)


def mean(x, axis=None, keepdims=False):
    """The mean over `axis` (gradient: dy spread evenly). On a symbolic tensor, axis may not be None or 0 (the
    batch axis)."""
    if is_symbolic(x):
        if axis is None:
            raise ValueError("ops.mean: on a symbolic tensor give the axes of one sample to average (axis=None "
                             "would average over the batch too)")
        from ..layers.tensor_ops import Mean
        return Mean(axis, keepdims=keepdims)(x)
    return np.mean(x, axis=axis if axis is None else (tuple(axis) if isinstance(axis, list) else axis),
                   keepdims=keepdims)


def reshape(x, newshape):
    """x with its values laid out in `newshape` (row-major; gradient: dy reshaped back). On a symbolic tensor
    newshape includes the batch axis, as in Keras, which must be -1 or None (it stays the batch axis)."""
    if is_symbolic(x):
        newshape = tuple(newshape)
        if not newshape or newshape[0] not in (-1, None):
            raise ValueError(f"ops.reshape: on a symbolic tensor newshape starts with the batch axis, -1 or None, "
                             f"got {newshape!r}")
        from ..layers import Reshape
        return Reshape(newshape[1:])(x)
    return np.reshape(x, newshape)


def transpose(x, axes=None):
    """x with its axes reordered (gradient: dy put back). On a symbolic tensor axes[0] must be 0: the batch
    axis stays first."""
    if is_symbolic(x):
        rank = len(x.shape)
        axes = tuple(range(rank))[::-1] if axes is None else tuple(axes)
        if not axes or axes[0] != 0:
            raise ValueError(f"ops.transpose: on a symbolic tensor the batch axis stays first (axes[0] == 0), got "
                             f"axes={axes!r}")
        from ..layers import Permute
        return Permute(axes[1:])(x)
    return np.transpose(x, axes)


__all__ = ["add", "concatenate", "image", "mean", "multiply", "nn", "relu", "reshape", "sigmoid", "softmax",
           "subtract", "transpose"]
