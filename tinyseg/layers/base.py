"""The contract every layer keeps.

    y = layer.forward(x, training=False)     remembers what backward needs (its "cache") on the layer
    dx = layer.backward(dy)                  dy = dL/dy, same shape as y; returns dL/dx, same shape as x,
                                             and fills layer.grads[name] = dL/d(param) for every parameter

`params` and `grads` are dicts with the same keys (Keras's names: 'kernel', 'bias', 'gamma', 'beta').
`backward` never changes a parameter and never writes into the array it was given: updating weights is
the optimizer's job, so gradients can always be inspected and checked.

Shapes are channels-last: images (N, H, W, C), vectors (N, D). A layer learns its input shape the first time
it is built (`build(input_shape)`, input_shape without the batch axis); after that an input of another
shape is an error, not a silent broadcast.
"""
import numpy as np

from .. import backend

_NAME_COUNTS = {}


def _snake(name):
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out).replace("2_d", "2d")


def unique_name(prefix):
    """'conv2d', 'conv2d_1', 'conv2d_2', ... as Keras names layers."""
    count = _NAME_COUNTS.get(prefix, 0)
    _NAME_COUNTS[prefix] = count + 1
    return prefix if count == 0 else f"{prefix}_{count}"


def channel_sum(a):
    """Sum over every axis but the last: (..., C) -> (C,), as a matrix-vector product ones @ a.

    The same numbers as a.sum(axis=(0, 1, 2)), but BLAS adds them in blocks: about 15x faster on a
    (4, 128, 128, 16) float32 array, and more accurate, since NumPy adds along a leading axis one row at a time.
    """
    a2 = a.reshape(-1, a.shape[-1])
    return np.ones(a2.shape[0], dtype=a.dtype) @ a2


class Layer:
    """Base class: naming, building, input checks, weights in Keras order."""

    def __init__(self, name=None, input_shape=None, dtype=None):
        self.name = name or unique_name(_snake(type(self).__name__))
        self.dtype = backend.check_float_dtype(dtype or backend.floatx(), f"{self.name}: dtype")
        self.params = {}
        self.grads = {}
        self.input_shape = None           # without the batch axis, set by build()
        self.output_shape = None
        self.built = False
        self._declared_input_shape = tuple(input_shape) if input_shape is not None else None

    # --- building ---------------------------------------------------------------------------------------
    def build(self, input_shape):
        """Create the weights for inputs of shape (N,) + input_shape; return the output shape."""
        input_shape = tuple(int(d) for d in input_shape)
        self.output_shape = tuple(self.compute_output_shape(input_shape))
        self.input_shape = input_shape
        self.built = True
        return self.output_shape

    def compute_output_shape(self, input_shape):
        return input_shape

    # --- running ----------------------------------------------------------------------------------------
    def forward(self, x, training=False):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def backward_params(self, grad):
        """Fill self.grads from dL/dy without needing dL/dx (the model's first layer, whose input is the data).

        Layers for which dL/dx costs real work (Conv2D: a matmul and a col2im) skip computing it."""
        self.backward(grad)

    def __call__(self, x, training=False):
        return self.forward(x, training=training)

    def check_input(self, x, argument="x"):
        """Build on first use; then insist on an array of this layer's dtype and built shape."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{self.name}: {argument} must be a NumPy array, got {type(x).__name__}")
        if x.dtype != self.dtype:
            raise TypeError(
                f"{self.name}: {argument} has dtype {x.dtype} but the layer computes in {self.dtype}; "
                f"cast with x.astype('{self.dtype}') or create the layer with dtype='{x.dtype}'"
                if x.dtype.kind == "f" else
                f"{self.name}: {argument} has dtype {x.dtype}; expected {self.dtype} "
                "(convert integer images with x.astype('float32') / 255)")
        if not self.built:
            self.build(x.shape[1:])
        elif x.shape[1:] != self.input_shape:
            raise ValueError(
                f"{self.name}: {argument} has shape {x.shape}, expected (batch,) + {self.input_shape}")

    def check_grad(self, grad):
        expected = (grad.shape[0],) + self.output_shape if hasattr(grad, "shape") else None
        if not isinstance(grad, np.ndarray) or grad.shape != expected:
            got = getattr(grad, "shape", type(grad).__name__)
            raise ValueError(f"{self.name}: grad has shape {got}, expected (batch,) + {self.output_shape}")

    # --- weights ----------------------------------------------------------------------------------------
    def weight_names(self):
        """Parameter names in Keras's get_weights() order."""
        return list(self.params)

    def get_weights(self):
        return [self.params[k].copy() for k in self.weight_names()]

    def set_weights(self, weights):
        names = self.weight_names()
        if len(weights) != len(names):
            raise ValueError(f"{self.name}: set_weights expects {len(names)} arrays ({names}), got {len(weights)}")
        for key, w in zip(names, weights):
            w = np.asarray(w)
            if w.shape != self.params[key].shape:
                raise ValueError(f"{self.name}: weight '{key}' must have shape {self.params[key].shape}, "
                                 f"got {w.shape}")
            self.params[key][...] = w

    def count_params(self):
        return int(sum(p.size for p in self.params.values()))

    def get_config(self):
        """The constructor arguments that rebuild this layer (used by save/load)."""
        return {"name": self.name, "dtype": self.dtype.name}

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"
