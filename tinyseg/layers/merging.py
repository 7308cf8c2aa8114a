"""Merge layers: several arrays in, one array out (a U-Net's skip connection, a residual block's sum).

Every merge layer takes a list [x_1, x_2, ..., x_n] of n >= 2 arrays (Subtract: exactly 2) with one batch
size N, and returns one array y. backward(g), g = dL/dy, returns the list [dL/dx_1, ..., dL/dx_n] in the same
order. Where a gradient is g itself or a slice of it (Add, Subtract's first input, Concatenate), it is
handed out as a read-only view of g, not a copy: nothing is copied, and a learner who tries to edit one
gradient in place gets an error ("assignment destination is read-only") instead of silently changing
another branch's gradient or g.

Element-wise merges. All inputs have one shape (N, d_1, d_2, ...), and y has that shape too. Nothing is
broadcast: inputs of shapes (N, 8, 8, 4) and (N, 8, 8, 1) are an error, not a silent copy along channels.

    Add        y = x_1 + x_2 + ... + x_n                 dL/dx_i = g
    Subtract   y = x_1 - x_2                             dL/dx_1 = g,   dL/dx_2 = -g
    Multiply   y = x_1 * x_2 * ... * x_n                 dL/dx_i = g * prod_{j != i} x_j
    Average    y = (x_1 + x_2 + ... + x_n) / n           dL/dx_i = g / n

(all products element by element). Multiply's prod_{j != i} x_j is the product of the inputs before i times
the product of the inputs after i, never y / x_i: that would divide by zero wherever x_i = 0, where the
derivative is perfectly well defined (d(ab)/da = b, whatever a is).

Concatenate joins along one axis instead:

    inputs  x_1 (N, ..., C_1, ...), x_2 (N, ..., C_2, ...), ...    equal on every axis but `axis`
    y       = [x_1 | x_2 | ...] along axis                         (N, ..., C_1 + C_2 + ..., ...)

and backward splits the gradient: each input receives its own slice of g,

    dL/dx_1 = g[..., 0 : C_1, ...],   dL/dx_2 = g[..., C_1 : C_1 + C_2, ...],   ...

A merge is the dual of a branch. When one tensor feeds two layers (the skip connection leaves the encoder for
both the next encoder block and, later, a Concatenate), its gradient is the SUM of the gradients coming back
along the two paths; when tensors are merged into one, the one gradient is handed back to each of them (Add),
or SPLIT between them (Concatenate). Copying one value to many outputs in the forward pass means adding in
the backward pass, and adding many values into one output means copying: each is the other's transpose.

The function forms add(inputs), subtract, multiply, average and concatenate(inputs, axis=-1) are Keras's:
each makes the layer and calls it on the list.
"""
import numpy as np

from .base import Layer


def read_only(a):
    """A view of `a` that cannot be written: how a merge hands one gradient to several inputs without copies."""
    view = a.view()
    view.flags.writeable = False
    return view


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


class _ElementwiseMerge(_Merge):
    """Add, Subtract, Multiply, Average: inputs of one shape, an output of that shape."""

    def _output_shape(self, shapes):
        if len(set(shapes)) != 1:
            raise ValueError(f"{self.name}: inputs must all have the same shape ({type(self).__name__} "
                             "broadcasts nothing), got shapes " + _shapes(shapes))
        return shapes[0]


class Add(_ElementwiseMerge):
    """Keras's `Add()`: y = x_1 + x_2 + ... + x_n, element by element; dL/dx_i = g for every input.

    Shapes: x_i (N, ...), all the same; y the same shape. backward returns n read-only views of g.
    """

    def forward(self, inputs, training=False):
        self.check_inputs(inputs)
        y = inputs[0] + inputs[1]                   # a new array: the inputs are never written to
        for x in inputs[2:]:
            y += x
        return y

    def backward(self, grad):
        self.check_grad(grad)
        return [read_only(grad) for _ in self.input_shape]


class Subtract(_ElementwiseMerge):
    """Keras's `Subtract()`: exactly two inputs, y = x_1 - x_2; dL/dx_1 = g, dL/dx_2 = -g.

    Shapes: x_1, x_2 (N, ...), the same; y the same shape.
    """

    n_inputs = 2

    def forward(self, inputs, training=False):
        self.check_inputs(inputs)
        return inputs[0] - inputs[1]

    def backward(self, grad):
        self.check_grad(grad)
        return [read_only(grad), -grad]


class Multiply(_ElementwiseMerge):
    """Keras's `Multiply()`: y = x_1 * x_2 * ... * x_n, element by element.

    Shapes: x_i (N, ...), all the same; y the same shape.

        dL/dx_i = g * (x_1 * ... * x_{i-1}) * (x_{i+1} * ... * x_n)      (the products before and after i)

    computed from those two products, without dividing y by x_i (which fails where x_i = 0).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._inputs = None

    def forward(self, inputs, training=False):
        self.check_inputs(inputs)
        self._inputs = list(inputs)                 # backward multiplies by the other inputs
        y = inputs[0] * inputs[1]
        for x in inputs[2:]:
            y *= x
        return y

    def backward(self, grad):
        self.check_grad(grad)
        xs = self._inputs
        if xs is None:
            raise RuntimeError(f"{self.name}: backward() called before forward()")
        if grad.shape[0] != xs[0].shape[0]:          # g * x_j would broadcast a batch of 1 silently
            raise ValueError(f"{self.name}: grad has batch size {grad.shape[0]} but the last forward had "
                             f"{xs[0].shape[0]}")
        # after[i] = x_{i+1} * ... * x_n (1 for the last input), built from the end; multiplying by 1 is exact
        after = [np.ones_like(xs[0])]
        for x in reversed(xs[1:]):
            after.append(x * after[-1])
        after.reverse()
        grads, before = [], np.ones_like(xs[0])     # before = x_1 * ... * x_{i-1}
        for x, rest in zip(xs, after):
            grads.append(grad * before * rest)
            before = before * x
        return grads


class Average(_ElementwiseMerge):
    """Keras's `Average()`: y = (x_1 + x_2 + ... + x_n) / n, element by element; dL/dx_i = g / n.

    Shapes: x_i (N, ...), all the same; y the same shape.
    """

    def forward(self, inputs, training=False):
        self.check_inputs(inputs)
        y = inputs[0] + inputs[1]
        for x in inputs[2:]:
            y += x
        y /= len(inputs)
        return y

    def backward(self, grad):
        self.check_grad(grad)
        n = len(self.input_shape)
        return [grad / n for _ in range(n)]         # n new arrays, one per input


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
        self._split_at = None

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

    def build(self, input_shapes):
        out = super().build(input_shapes)
        k = self._axis_without_batch(len(self.input_shape[0]) + 1)
        self._split_at = np.cumsum([s[k] for s in self.input_shape])[:-1]     # where backward cuts the gradient
        return out

    # --- running ----------------------------------------------------------------------------------------
    def forward(self, inputs, training=False):
        self.check_inputs(inputs)
        return np.concatenate(inputs, axis=self._axis_without_batch(inputs[0].ndim) + 1)

    def backward(self, grad):
        """Split g along the axis into one piece per input: read-only views of g, no copies."""
        self.check_grad(grad)
        axis = self._axis_without_batch(grad.ndim) + 1
        return [read_only(piece) for piece in np.split(grad, self._split_at, axis=axis)]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


# --- Keras's function forms: make the layer, call it on the list ------------------------------------------
def add(inputs, **kwargs):
    """add([x_1, x_2, ...]) = Add(**kwargs)([x_1, x_2, ...])."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """subtract([x_1, x_2]) = Subtract(**kwargs)([x_1, x_2])."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """multiply([x_1, x_2, ...]) = Multiply(**kwargs)([x_1, x_2, ...])."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """average([x_1, x_2, ...]) = Average(**kwargs)([x_1, x_2, ...])."""
    return Average(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """concatenate([x_1, x_2, ...], axis) = Concatenate(axis=axis, **kwargs)([x_1, x_2, ...])."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def _shapes(shapes):
    """'(batch, 8, 8, 4), (batch, 8, 8, 2)': shapes without the batch axis, shown as inputs would have them."""
    return ", ".join("(" + ", ".join(["batch"] + [str(d) for d in s]) + ")" for s in shapes)
