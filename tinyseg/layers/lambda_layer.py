"""Lambda: a layer made of a function of tinyseg.ops, with the backward those ops already have.

    Lambda(lambda t: ops.nn.relu(ops.add(t, 1.0)))

tinyseg computes gradients by hand, layer by layer, so it cannot differentiate an arbitrary Python function.
What it can do is run the function once on a symbolic tensor, when the layer is built: every tinyseg.ops
function called on a symbolic tensor records the layer that computes it (ops.add -> Add, ops.nn.relu ->
ReLU, ...), so the function leaves behind a small graph of layers (graph.py), each with its backward. Then

    forward(x)     the recorded graph run on x                            y = f(x)
    backward(dy)   the graph run backwards, layer by layer                dx = J_f(x)^T dy   (the chain rule)

A function that uses anything else on its argument (NumPy, math, a Python branch on its values) cannot be
recorded: the layer says so when the model is built, not at the first step. The function may not use
layers with weights either (their weights would be hidden from the model: call those layers in the model).
A Lambda is not saved in a model file, which holds no code (Keras too refuses it unless told its file is
trusted).
"""
from ..graph import Graph, InputLayer, KerasTensor, Node
from .base import Layer


class Lambda(Layer):
    """Keras's `Lambda(function, arguments=None)`: y = function(x, **arguments), function built of tinyseg.ops.

    Shapes: whatever the function makes of x (N, ...). Formula and gradient: see the module docstring."""

    def __init__(self, function, output_shape=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"{self.name}: function must be callable (a function of tinyseg.ops), got "
                            f"{type(function).__name__}")
        if arguments is not None and not isinstance(arguments, dict):
            raise TypeError(f"{self.name}: arguments must be a dict of keyword arguments for the function, got "
                            f"{type(arguments).__name__}")
        self.function = function
        self.arguments = dict(arguments or {})
        self.graph = None

    def _what(self):
        return f"{self.name}: Lambda({getattr(self.function, '__name__', repr(self.function))})"

    def _record(self, input_shape):
        """The graph the function leaves behind when called on a symbolic tensor of input_shape."""
        placeholder = Node(InputLayer(shape=input_shape, name=f"{self.name}/input", dtype=self.dtype), [], False)
        x = placeholder.output
        advice = ("a Lambda's function must be made of tinyseg.ops functions (and parameter-free layers), which "
                  "record what they compute so that it has a backward")
        try:
            y = self.function(x, **self.arguments)
        except Exception as err:
            raise TypeError(f"{self._what()} could not be recorded on a symbolic tensor of shape (None,) + "
                            f"{tuple(input_shape)}: {type(err).__name__}: {err}; {advice}") from err
        if not isinstance(y, KerasTensor):
            raise TypeError(f"{self._what()} returned a {type(y).__name__} for a symbolic tensor, not a tensor of "
                            f"the graph; {advice}")
        graph = Graph([x], [y])
        weighted = [layer.name for layer in graph.layers if layer.params]
        if weighted:
            raise ValueError(f"{self._what()} calls layers with weights ({', '.join(weighted)}); their weights "
                             "would be hidden from the model: call them in the model, not inside a Lambda")
        return graph

    def compute_output_shape(self, input_shape):
        self.graph = self._record(tuple(input_shape))
        return self.graph.outputs[0].shape[1:]

    def inner_layers(self):
        return [] if self.graph is None else [node.layer for node in self.graph.nodes]

    def accepts_size(self, shape):
        return len(shape) == len(self.input_shape)

    def forward(self, x, training=False):
        self.check_input(x)
        return self.graph.forward([x], training=training)[0]

    def backward(self, grad):
        self.check_grad(grad)
        return self.graph.backward([grad])[0]

    def get_config(self):
        raise ValueError(f"{self._what()}: a Lambda layer is not saved in a model file (a file holds no code); "
                         "rebuild the model in Python and load its weights instead")
