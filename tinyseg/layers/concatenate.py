"""Concatenate: join a list of inputs along one axis; backward splits the gradient (merge_base.py has what
every merge shares).

    inputs  x_1 (N, ..., C_1, ...), x_2 (N, ..., C_2, ...), ...    equal on every axis but `axis`
    y       = [x_1 | x_2 | ...] along axis                         (N, ..., C_1 + C_2 + ..., ...)

    dL/dx_1 = g[..., 0 : C_1, ...],   dL/dx_2 = g[..., C_1 : C_1 + C_2, ...],   ...

each handed out as a read-only view of g. A U-Net's skip connection is one.
"""
import numpy as np

from .base import read_only
from .merge_base import _Merge, _shapes


class Concatenate(_Merge):
    """Keras's `Concatenate(axis=-1)`: y = concatenate([x_1, x_2, ...], axis).

    forward takes a list (or tuple) of at least two arrays; backward(g) returns the list of their gradients,
    in the same order. `axis` counts the batch axis, as in Keras (axis=-1, or 3 for images, is the channel
    axis); the batch axis itself cannot be joined. Because there are several inputs, `input_shape` is the
    list of their shapes (each without the batch axis), fixed the first time the layer runs.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise ValueError(f"{self.name}: axis must be an integer, got {axis!r}")
        self.axis = int(axis)

    def _axis_without_batch(self, rank):
        """The concatenation axis as an index into a shape without the batch axis (rank counts the batch)."""
        if not -rank <= self.axis < rank:
            raise ValueError(f"{self.name}: axis={self.axis} is out of range for inputs of rank {rank}")
        axis = self.axis % rank
        if axis == 0:
            raise ValueError(f"{self.name}: cannot concatenate along the batch axis (axis={self.axis})")
        return axis - 1

    def _output_shape(self, shapes):
        k = self._axis_without_batch(len(shapes[0]) + 1)
        rest = {s[:k] + s[k + 1:] for s in shapes}
        if len(rest) != 1:
            raise ValueError(f"{self.name}: inputs must agree on every axis but the concatenation axis "
                             f"{self.axis}, got shapes " + _shapes(shapes))
        out = list(shapes[0])
        out[k] = sum(s[k] for s in shapes)
        return tuple(out)

    # --- running ----------------------------------------------------------------------------------------
    def forward(self, inputs, training=False):
        self.check_inputs(inputs)
        axis = self._axis_without_batch(inputs[0].ndim) + 1
        self.save_for_backward(split_at=np.cumsum([x.shape[axis] for x in inputs])[:-1])   # where to cut g
        return np.concatenate(inputs, axis=axis)

    def backward(self, grad):
        """Split g along the axis into one piece per input: read-only views of g, no copies."""
        split_at = self.saved_for_backward().split_at
        self.check_grad(grad)
        axis = self._axis_without_batch(grad.ndim) + 1
        return [read_only(piece) for piece in np.split(grad, split_at, axis=axis)]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
