"""Permute and Mean: the layers behind tinyseg.ops.transpose and tinyseg.ops.mean on symbolic tensors.

Both take the batch axis as it is and work on the axes of one sample, which Keras counts from 1:

    Permute(dims)           x (N, d_1, ..., d_k) -> y (N, d_p1, ..., d_pk),   dims = (p1, ..., pk), a permutation
                            y = transpose(x, (0,) + dims)                      of 1..k
                            dx = transpose(dy, the inverse permutation)

    Mean(axis, keepdims)    y = the mean of x over `axis` (axes >= 1; -1 the last)
                            dx = dy, put back on the averaged axes and spread evenly: dy / (number averaged)
"""
import numbers

import numpy as np

from .base import Layer


def _axes(value, rank, argument):
    """Axes (counting the batch axis 0) as sorted non-negative ints, none of them the batch axis."""
    axes = value if isinstance(value, (list, tuple)) else (value,)
    if not axes or not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axes):
        raise ValueError(f"{argument} must be an axis or a tuple of axes (integers), got {value!r}")
    if not all(-rank <= a < rank for a in axes):
        raise ValueError(f"{argument}={value!r} is out of range for tensors of rank {rank} (the batch axis included)")
    out = sorted({int(a) % rank for a in axes})
    if 0 in out:
        raise ValueError(f"{argument}={value!r} includes the batch axis 0: a layer works on each sample alone")
    return tuple(out)


class Permute(Layer):
    """Keras's `Permute(dims)`: reorder the axes of each sample; dims counts them from 1 (the batch axis stays).

    Shapes: x (N, d_1, ..., d_k) -> y (N, d_dims[0], ..., d_dims[k-1]). Gradient: dy permuted back."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        dims = tuple(dims) if isinstance(dims, (list, tuple)) else None
        if dims is None or sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f"{self.name}: dims must be a permutation of 1..k (the sample's axes, counted from 1), "
                             f"got {dims!r}")
        self.dims = tuple(int(d) for d in dims)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != len(self.dims):
            raise ValueError(f"{self.name}: dims {self.dims} permutes {len(self.dims)} axes but the input has "
                             f"{len(input_shape)} (input shape (batch,) + {tuple(input_shape)})")
        return tuple(input_shape[d - 1] for d in self.dims)

    def accepts_size(self, shape):
        return len(shape) == len(self.input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        return np.transpose(x, (0,) + self.dims).copy()

    def backward(self, grad):
        self.check_grad(grad)
        return np.transpose(grad, (0,) + tuple(int(i) + 1 for i in np.argsort(self.dims))).copy()

    def get_config(self):
        return {**super().get_config(), "dims": self.dims}


class Mean(Layer):
    """The mean over `axis` (an axis or a tuple of them, counting the batch axis 0, which may not be one of
    them), as keras.ops.mean; keepdims keeps the averaged axes with size 1. Gradient: dy / count, spread."""

    def __init__(self, axis, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        axes = _axes(self.axis, len(input_shape) + 1, f"{self.name}: axis")
        if self.keepdims:
            return tuple(1 if i + 1 in axes else d for i, d in enumerate(input_shape))
        out = tuple(d for i, d in enumerate(input_shape) if i + 1 not in axes)
        if not out:
            raise ValueError(f"{self.name}: averaging over every axis of a sample leaves a scalar per sample; "
                             "use keepdims=True (or GlobalAveragePooling2D)")
        return out

    def accepts_size(self, shape):
        return len(shape) == len(self.input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        return x.mean(axis=_axes(self.axis, x.ndim, self.name), keepdims=self.keepdims)

    def backward(self, grad):
        self.check_grad(grad)
        shape = (len(grad),) + self.input_shape
        axes = _axes(self.axis, len(shape), self.name)
        count = int(np.prod([shape[a] for a in axes]))
        kept = grad if self.keepdims else np.expand_dims(grad, axes)
        return np.broadcast_to(kept / count, shape).copy()

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "keepdims": self.keepdims}
