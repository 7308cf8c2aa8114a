"""What every merge layer shares: a list of inputs in, one array out; backward returns a list of gradients.

Every merge layer takes a list [x_1, x_2, ..., x_n] of n >= 2 arrays (Subtract: exactly 2) with one batch
size N, and returns one array y. backward(g), g = dL/dy, returns the list [dL/dx_1, ..., dL/dx_n] in the same
order. Where a gradient is g itself or a slice of it (Add, Subtract's first input, Concatenate), it is
handed out as a read-only view of g, not a copy: nothing is copied, and a learner who tries to edit one
gradient in place gets an error ("assignment destination is read-only") instead of silently changing
another branch's gradient or g.

A merge is the dual of a branch. When one tensor feeds two layers (the skip connection leaves the encoder for
both the next encoder block and, later, a Concatenate), its gradient is the SUM of the gradients coming back
along the two paths; when tensors are merged into one, the one gradient is handed back to each of them (Add),
or SPLIT between them (Concatenate). Copying one value to many outputs in the forward pass means adding in
the backward pass, and adding many values into one output means copying: each is the other's transpose.
"""
import numpy as np

from .base import Layer


class _Merge(Layer):
    """What every merge layer shares: a list of inputs, its checks, and building from a list of shapes.

    `input_shape` is the list of the inputs' shapes (each without the batch axis), fixed the first time the
    layer runs. A subclass gives `_output_shape(shapes)` (its own rule, after the shared checks) and the math.
    """

    multiple_inputs = True          # forward takes a list of arrays; backward returns a list of gradients

    n_inputs = None                 # None: any number >= 2; Subtract needs exactly 2

    # --- building: from a list of shapes -----------------------------------------------------------------
    def _check_shapes(self, input_shapes):
        """The shapes as tuples of ints, after the checks every merge needs: enough inputs, one rank."""
        if not isinstance(input_shapes, (list, tuple)) or not all(isinstance(s, (list, tuple))
                                                                  for s in input_shapes):
            raise TypeError(f"{self.name}: expects a list of input shapes, one per input (each without the "
                            f"batch axis), got {input_shapes!r}")
        shapes = [tuple(int(d) for d in s) for s in input_shapes]
        if self.n_inputs is not None and len(shapes) != self.n_inputs:
            raise ValueError(f"{self.name}: needs exactly {self.n_inputs} inputs, got {len(shapes)}")
        if len(shapes) < 2:
            raise ValueError(f"{self.name}: needs at least two inputs, got {len(shapes)}")
        if len({len(s) for s in shapes}) != 1:
            raise ValueError(f"{self.name}: inputs must have the same rank, got shapes " + _shapes(shapes))
        return shapes

    def _output_shape(self, shapes):
        raise NotImplementedError

    def compute_output_shape(self, input_shapes):
        return self._output_shape(self._check_shapes(input_shapes))

    def build(self, input_shapes):
        shapes = self._check_shapes(input_shapes)
        self.output_shape = self._output_shape(shapes)
        self.input_shape = shapes
        self.built = True
        return self.output_shape

    # --- checking what runs through ----------------------------------------------------------------------
    def _check_arrays(self, inputs):
        """inputs is a list of arrays of the layer's dtype, each with a batch axis."""
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

    def check_inputs(self, inputs):
        """Layer.check_input for a list: arrays of the layer's dtype, one batch size, the built shapes."""
        self._check_arrays(inputs)
        if len({x.shape[0] for x in inputs}) > 1:
            raise ValueError(f"{self.name}: inputs must have the same batch size, got shapes "
                             + ", ".join(str(x.shape) for x in inputs))
        shapes = [x.shape[1:] for x in inputs]
        if not self.built:
            self.build(shapes)
        elif shapes != self.input_shape:
            same_channels = len(shapes) == len(self.input_shape) and all(
                len(s) == 3 == len(b) and s[-1] == b[-1] for s, b in zip(shapes, self.input_shape))
            if not same_channels:
                raise ValueError(f"{self.name}: got input shapes " + ", ".join(str(x.shape) for x in inputs)
                                 + ", expected " + _shapes(self.input_shape))
            # other image sizes (Layer.resize): the inputs must still agree with each other
            self.output_shape = self._output_shape(self._check_shapes(shapes))
            self.input_shape = [tuple(s) for s in shapes]

    def check_grad(self, grad):
        if not self.built:
            raise RuntimeError(f"{self.name}: backward() called before forward()")
        super().check_grad(grad)


def _shapes(shapes):
    """'(batch, 8, 8, 4), (batch, 8, 8, 2)': shapes without the batch axis, shown as inputs would have them."""
    return ", ".join("(" + ", ".join(["batch"] + [str(d) for d in s]) + ")" for s in shapes)
