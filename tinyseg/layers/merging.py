"""Concatenate: join several arrays along one axis (a U-Net's skip connection joins channels).

    inputs  x_1 (N, ..., C_1, ...), x_2 (N, ..., C_2, ...), ...    equal on every axis but `axis`
    y       = [x_1 | x_2 | ...] along axis                         (N, ..., C_1 + C_2 + ..., ...)

Backward splits the gradient: each input receives its own slice of g = dL/dy,

    dL/dx_1 = g[..., 0 : C_1, ...],   dL/dx_2 = g[..., C_1 : C_1 + C_2, ...],   ...

This is the dual of a branch. When one tensor feeds two layers (the skip connection leaves the encoder for
both the next encoder block and, later, this layer), its gradient is the SUM of the gradients coming back
along the two paths; when two tensors are joined into one, the one gradient is SPLIT between them. Copying
one value to many outputs in the forward pass means adding in the backward pass, and joining many values
into one output means splitting: sum and split are each other's transposes.
"""
import numpy as np

from .base import Layer


class Concatenate(Layer):
    """Keras's `Concatenate(axis=-1)`: y = concatenate([x_1, x_2, ...], axis).

    forward takes a list (or tuple) of at least two arrays; backward(g) returns the list of their gradients,
    in the same order. `axis` counts the batch axis, as in Keras (axis=-1, or 3 for images, is the channel
    axis); the batch axis itself cannot be joined. Because there are several inputs, `input_shape` is the
    list of their shapes (each without the batch axis), fixed the first time the layer runs.
    """

    multiple_inputs = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise ValueError(f"{self.name}: axis must be an integer, got {axis!r}")
        self.axis = int(axis)
        self._split_at = None

    def _axis_without_batch(self, rank):
        """The concatenation axis as an index into a shape without the batch axis (rank counts the batch)."""
        if not -rank <= self.axis < rank:
            raise ValueError(f"{self.name}: axis={self.axis} is out of range for inputs of rank {rank}")
        axis = self.axis % rank
        if axis == 0:
            raise ValueError(f"{self.name}: cannot concatenate along the batch axis (axis={self.axis})")
        return axis - 1

    # --- building: from a list of shapes -----------------------------------------------------------------
    def compute_output_shape(self, input_shapes):
        shapes = [tuple(int(d) for d in s) for s in input_shapes]
        if len(shapes) < 2:
            raise ValueError(f"{self.name}: needs at least two inputs, got {len(shapes)}")
        if len({len(s) for s in shapes}) != 1:
            raise ValueError(f"{self.name}: inputs must have the same rank, got shapes "
                             + _shapes(shapes))
        k = self._axis_without_batch(len(shapes[0]) + 1)
        rest = {s[:k] + s[k + 1:] for s in shapes}
        if len(rest) != 1:
            raise ValueError(f"{self.name}: inputs must agree on every axis but the concatenation axis "
                             f"{self.axis}, got shapes " + _shapes(shapes))
        out = list(shapes[0])
        out[k] = sum(s[k] for s in shapes)
        return tuple(out)

    def build(self, input_shapes):
        shapes = [tuple(int(d) for d in s) for s in input_shapes]
        self.output_shape = self.compute_output_shape(shapes)
        self.input_shape = shapes
        k = self._axis_without_batch(len(shapes[0]) + 1)
        self._split_at = np.cumsum([s[k] for s in shapes])[:-1]     # where backward cuts the gradient
        self.built = True
        return self.output_shape

    def check_inputs(self, inputs):
        """Layer.check_input for a list: arrays of the layer's dtype, one batch size, the built shapes."""
        if not isinstance(inputs, (list, tuple)):
            raise TypeError(f"{self.name}: expects a list of arrays [x_1, x_2, ...], got {type(inputs).__name__}")
        for i, x in enumerate(inputs):
            if not isinstance(x, np.ndarray):
                raise TypeError(f"{self.name}: input {i} must be a NumPy array, got {type(x).__name__}")
            if x.dtype != self.dtype:
                raise TypeError(f"{self.name}: input {i} has dtype {x.dtype} but the layer computes in "
                                f"{self.dtype}")
            if x.ndim < 2:
                raise ValueError(f"{self.name}: input {i} has shape {x.shape}; expected (batch, ...)")
        if len({x.shape[0] for x in inputs}) > 1:
            raise ValueError(f"{self.name}: inputs must have the same batch size, got shapes "
                             + ", ".join(str(x.shape) for x in inputs))
        shapes = [x.shape[1:] for x in inputs]
        if not self.built:
            self.build(shapes)
        elif shapes != self.input_shape:
            raise ValueError(f"{self.name}: got input shapes " + ", ".join(str(x.shape) for x in inputs)
                             + ", expected " + _shapes(self.input_shape))

    # --- running ----------------------------------------------------------------------------------------
    def forward(self, inputs, training=False):
        self.check_inputs(inputs)
        return np.concatenate(inputs, axis=self._axis_without_batch(inputs[0].ndim) + 1)

    def backward(self, grad):
        """Split g along the axis into one piece per input; the pieces are copies, not views of g."""
        if not self.built:
            raise RuntimeError(f"{self.name}: backward() called before forward()")
        self.check_grad(grad)
        axis = self._axis_without_batch(grad.ndim) + 1
        return [piece.copy() for piece in np.split(grad, self._split_at, axis=axis)]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def _shapes(shapes):
    """'(batch, 8, 8, 4), (batch, 8, 8, 2)': shapes without the batch axis, shown as inputs would have them."""
    return ", ".join("(" + ", ".join(["batch"] + [str(d) for d in s]) + ")" for s in shapes)
