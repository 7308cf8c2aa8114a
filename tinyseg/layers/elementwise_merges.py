"""Add, Subtract, Multiply, Average: inputs of one shape, combined element by element (merge_base.py has
what every merge shares).

All inputs have one shape (N, d_1, d_2, ...), and y has that shape too. Nothing is broadcast: inputs of
shapes (N, 8, 8, 4) and (N, 8, 8, 1) are an error, not a silent copy along channels.

    Add        y = x_1 + x_2 + ... + x_n                 dL/dx_i = g
    Subtract   y = x_1 - x_2                             dL/dx_1 = g,   dL/dx_2 = -g
    Multiply   y = x_1 * x_2 * ... * x_n                 dL/dx_i = g * prod_{j != i} x_j
    Average    y = (x_1 + x_2 + ... + x_n) / n           dL/dx_i = g / n

(all products element by element). Multiply's prod_{j != i} x_j is the product of the inputs before i times
the product of the inputs after i, never y / x_i: that would divide by zero wherever x_i = 0, where the
derivative is perfectly well defined (d(ab)/da = b, whatever a is).
"""
import numpy as np

from .base import read_only
from .merge_base import _Merge, _shapes


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

    def forward(self, inputs, training=False):
        self.check_inputs(inputs)
        self.save_for_backward(inputs=list(inputs))      # backward multiplies by the other inputs
        y = inputs[0] * inputs[1]
        for x in inputs[2:]:
            y *= x
        return y

    def backward(self, grad):
        xs = self.saved_for_backward().inputs
        self.check_grad(grad)
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
