"""The functional API: symbolic tensors, nodes, and backpropagation through a graph of layers.

Building a model runs no numbers. `Input` makes a placeholder, and calling a layer on placeholders records
what would be computed:

    x = Input((32, 32, 3))          a KerasTensor: shape (None, 32, 32, 3), made by an InputLayer
    h = Conv2D(8, 3)(x)             builds the layer for that shape and records a Node (layer, inputs) -> h
    y = layers.add([h, x2])         a merge layer's node has several inputs
    model = Model(x, y)             walks back from y to x and puts the nodes in order (topological_order)

Forward runs the nodes in that order, each after the nodes its inputs come from, keeping every tensor's
value by tensor. Backward runs them in reverse. Two rules are the whole of backpropagation through a graph:

    chain rule, per node:  dL/d(inputs) = node.layer.backward(dL/d(output))
    fan-out, per tensor:   a tensor read by k nodes gets the SUM of the k gradients they send back,
                           dL/dt = sum over its readers r of dL/dt through r

A merge layer does the converse inside its own backward: Concatenate *splits* one gradient among its
inputs, Add hands each input a copy of it. A skip connection is a fork (a tensor read twice: sum) followed
later by a join (a merge: split or copy).

Frozen layers (trainable=False). The backward pass is for the trainable weights (and for the inputs, when
their gradient is asked for), so it runs only where one of them lies behind: a node none of whose inputs
leads back to a trainable weight is skipped, and so is everything before it. A frozen encoder is therefore
never backpropagated; a frozen layer after a trainable one still passes the gradient through to its input.

A layer called at several places (shared weights) is one layer with several nodes: each call keeps its own
forward cache (saved after its forward, put back before its backward), and the layer's parameter
gradient is the sum over its calls, by the same fan-out rule applied to the weights.

Two steps a node. A layer with an activation, Conv2D(..., activation='relu'), is two steps, its own math
z = forward_linear(x) (im2col and one product, in layers/conv2d.py) and then y = activation(z); the passes
run the two as two steps (backward: dL/dz = activation's backward of dL/dy, then dL/dx from the layer's own),
so from fit a call reaches the layer's math through this file alone. `output_activation(layer)` is the one
place that knows where a layer's activation is and what it is called; a layer without one has the identity.

Logits. A model's output usually ends in an activation (softmax, sigmoid), either as a layer of its own
(Activation('softmax')) or as the last step of a layer (Conv2D(..., activation='softmax')). A loss that fuses
that activation with its log (softmax + cross-entropy) wants the scores z just before it, the logits, and
their gradient dL/dz. So `forward(xs, logits=True)` and `backward(grads, logits=True)` stop each output one
step early: they skip the output's activation step.
"""
import functools
import operator
from collections import Counter
from typing import Callable, NamedTuple

import numpy as np

from .layers.activations import Activation, ActivationFunction, LayerWithActivation
from .layers.base import Layer


class KerasTensor:
    """A placeholder in a graph: its shape (None for the batch axis), its dtype, and the node that makes it."""

    def __init__(self, shape, dtype, node):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.node = node

    @property
    def name(self):
        return self.node.layer.name

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype.name}, name={self.name}>"

    # A placeholder has a shape but no values. Code that asks for them (an `if` on a tensor, NumPy on it) is
    # code the graph cannot record: say so, instead of Python's silent `True` for any object.
    def __bool__(self):
        raise TypeError(f"the symbolic tensor {self.name!r} {self.shape} has no value to test: a graph records "
                        "layer calls once, so Python control flow may depend on shapes (tensor.shape) and on "
                        "`training`, not on the values of tensors")

    def __array__(self, dtype=None, copy=None):
        raise TypeError(f"the symbolic tensor {self.name!r} {self.shape} has no values for NumPy: call layers on "
                        "it (a graph records layer calls), and NumPy only on the arrays a model returns")


class Node:
    """One call of a layer: the tensors it read, whether they came as a list, and the tensor it made."""

    def __init__(self, layer, inputs, list_input):
        self.layer = layer
        self.inputs = inputs                       # [KerasTensor]
        self.list_input = list_input               # the layer takes a list (a merge layer)
        self.index = len(layer.inbound_nodes)      # this call's number for the layer: 0, 1, ...
        self.output = KerasTensor((None,) + tuple(layer.output_shape), layer.dtype, self)
        layer.inbound_nodes.append(self)

    def __repr__(self):
        return f"<Node {self.layer.name}[{self.index}] <- {[t.name for t in self.inputs]}>"


class InputLayer(Layer):
    """The layer behind `Input(shape)`: it has no inputs and passes the model's data through unchanged."""

    def __init__(self, shape=None, batch_size=None, name=None, dtype=None, batch_shape=None, input_shape=None):
        if batch_shape is not None:
            batch_size, shape = batch_shape[0], batch_shape[1:]
        shape = shape if shape is not None else input_shape
        if shape is None:
            raise ValueError("Input: give shape=(H, W, C) (the shape of one sample, without the batch axis)")
        shape = _positive_shape(shape)
        super().__init__(name=name, dtype=dtype)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.build(shape)

    def forward(self, x, training=False):
        self.check_input(x)
        return x

    def resize(self, shape):
        """Other image sizes pass through; the declared shape (the model's config) stays as it was."""

    def get_config(self):
        config = {**super().get_config(), "batch_shape": [self.batch_size] + list(self.input_shape)}
        config.pop("trainable", None)              # it has no weights: Keras's InputLayer takes no trainable
        return config


def _positive_shape(shape):
    """shape as a tuple of ints, each an integer >= 1 (4.5 or True is refused, never rounded), else raise."""
    expected = "a tuple of positive integers (one sample, without the batch axis)"
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        raise ValueError(f"Input: shape must be {expected}, got {shape!r}")
    dims = []
    for i, d in enumerate(shape):
        try:
            if isinstance(d, (bool, np.bool_)):
                raise TypeError
            dims.append(operator.index(d))              # an integer type: 4 and np.int64(4), not 4.0 or 4.5
        except TypeError:
            raise ValueError(f"Input: shape[{i}] must be a positive integer, got {d!r} in shape {tuple(shape)!r}; "
                             f"shape must be {expected}") from None
    if not dims or min(dims) < 1:
        raise ValueError(f"Input: shape must be {expected}, got {tuple(shape)!r}")
    return tuple(dims)


def Input(shape=None, batch_size=None, name=None, dtype=None, batch_shape=None):
    """Keras's `keras.Input(shape)`: the placeholder a functional model starts from.

    shape: one sample's shape without the batch axis, e.g. (H, W, C); dtype: the default float type unless
    given. Returns a KerasTensor of shape (None,) + shape.
    """
    layer = InputLayer(shape=shape, batch_size=batch_size, name=name or None, dtype=dtype, batch_shape=batch_shape)
    return Node(layer, [], False).output


def is_symbolic(inputs):
    """True for a KerasTensor or a list or tuple holding one."""
    if isinstance(inputs, KerasTensor):
        return True
    return isinstance(inputs, (list, tuple)) and any(isinstance(t, KerasTensor) for t in inputs)


def call_symbolic(layer, inputs):
    """`layer(inputs)` on KerasTensors: build the layer for their shapes (the first time) and record a Node."""
    list_input = isinstance(inputs, (list, tuple))
    tensors = list(inputs) if list_input else [inputs]
    for i, t in enumerate(tensors):
        if not isinstance(t, KerasTensor):
            raise TypeError(f"{layer.name}: input {i} is a {type(t).__name__}, not a tensor of the graph; call "
                            "layers on keras.Input(...) or on the outputs of other layers (or all on arrays)")
    if list_input != layer.multiple_inputs:
        raise TypeError(f"{layer.name}: a {type(layer).__name__} takes "
                        + ("a list of tensors [a, b, ...]" if layer.multiple_inputs else "one tensor, not a list")
                        + f", got {'a list' if list_input else 'one tensor'}")
    for i, t in enumerate(tensors):
        if t.dtype != layer.dtype:
            raise TypeError(f"{layer.name}: input {i} ({t.name}) has dtype {t.dtype.name} but the layer computes "
                            f"in {layer.dtype.name}; create both with the same dtype (tinyseg.set_floatx)")
    shapes = [t.shape[1:] for t in tensors]
    shape = shapes if list_input else shapes[0]
    if not layer.built:
        layer.build(shape)
    elif (list(shape) if list_input else shape) != (list(layer.input_shape) if list_input else layer.input_shape):
        raise ValueError(f"{layer.name}: was built for input shape {layer.input_shape} and is now called on "
                         f"{shape}; a layer used twice (shared weights) must see the same shape each time")
    return Node(layer, tensors, list_input).output


# --- ordering --------------------------------------------------------------------------------------------
def topological_order(inputs, outputs):
    """(nodes, layers): the nodes that lead from `inputs` to `outputs`, each after the nodes it reads from,
    and their layers in Keras's order (which is also the order of get_weights()).

    Keras sorts by depth, the length of the longest path from a node to an output, deepest first, and breaks
    ties by the order in which a walk back from the outputs first meets each layer; we do the same, so a
    Keras program and its tinyseg twin list layers and weights alike.
    """
    order, first_seen = _walk_back(list(inputs), list(outputs))
    depth = {node: 0 for node in order}            # longest path to an output, walking back from the outputs
    for node in reversed(order):
        for t in node.inputs:
            if t.node in depth:
                depth[t.node] = max(depth[t.node], depth[node] + 1)
    layer_depth = {}
    for node in order:
        layer_depth[node.layer] = max(layer_depth.get(node.layer, 0), depth[node])
    nodes = sorted(order, key=lambda n: -depth[n])                       # stable: keeps the walk's order
    layers = sorted(layer_depth, key=lambda layer: (-layer_depth[layer], first_seen[layer]))
    return nodes, layers


def _walk_back(inputs, outputs):
    """(order, first_seen): a depth-first walk from each output back to the inputs, listing every node after
    the nodes it reads from, and the order in which the walk first met each layer."""
    done, order, first_seen = set(), [], {}

    def visit(tensor):
        node = tensor.node
        if node in done:
            return
        first_seen.setdefault(node.layer, len(first_seen))
        if not any(tensor is t for t in inputs):
            if not node.inputs:
                raise ValueError(f"Model: the outputs depend on the input '{node.layer.name}', which is not "
                                 f"among the model's inputs {[t.name for t in inputs]} (graph disconnected)")
            for t in node.inputs:
                visit(t)
        done.add(node)
        order.append(node)                         # after every node it reads from

    for t in outputs:
        visit(t)
    for t in inputs:
        if t.node not in done:
            raise ValueError(f"Model: the input '{t.name}' is not connected to any output")
    return order, first_seen


# --- the output activation: the last step, and the logits one step before it ------------------------------
class OutputActivation(NamedTuple):
    """Where a layer's output ends: the activation it applies last, and the layer stopped one step before it.

    name:             'softmax', 'sigmoid', 'relu', ..., or 'linear' for a layer without an activation
    forward_logits:   (x, training) -> z, the layer's output before that activation (the logits)
    backward_logits:  (dL/dz, input_grad) -> dL/dx (None if not input_grad), filling the layer's grads
    activate:         (z, training) -> y = activation(z), the layer's last step
    activation_grad:  dL/dy -> dL/dz, that step's backward
    """

    name: str
    forward_logits: Callable
    backward_logits: Callable
    activate: Callable = lambda z, training: z
    activation_grad: Callable = lambda grad: grad


def output_activation(layer):
    """The OutputActivation of a layer (see the module docstring); the one place that tests layer types for it.

        Activation('softmax'), Softmax()     the layer is the activation: one step early is its input, x
        Conv2D(..., activation='softmax')    the activation is the layer's last step: forward_linear gives z
        anything else (BatchNormalization)   'linear': stopping early changes nothing
    """
    if isinstance(layer, (ActivationFunction, Activation)):
        name = layer.activation_name if isinstance(layer, ActivationFunction) else layer.activation.activation_name
        return OutputActivation(name, lambda x, training: x, lambda grad, input_grad: grad, layer.forward,
                                layer.backward)
    if isinstance(layer, LayerWithActivation):
        return OutputActivation(layer.activation.activation_name, layer.forward_linear,
                                lambda grad, input_grad: layer.backward_linear(grad, input_grad=input_grad),
                                layer.activation.forward, layer.activation.backward)
    return OutputActivation("linear", layer.forward, functools.partial(_backward_node, layer))


# --- the two passes --------------------------------------------------------------------------------------
def _backward_node(layer, grad, input_grad):
    """layer.backward, with dL/dx skipped (None) when input_grad is False."""
    if isinstance(layer, LayerWithActivation):         # these layers can skip computing dL/dx themselves
        return layer.backward(grad, input_grad=input_grad)
    dx = layer.backward(grad)
    return dx if input_grad else None


def _add_to_sums(sums, grads):
    """sums[key] += grads[key] for every key (a copy the first time): a shared layer's calls add up."""
    for key, value in grads.items():
        sums[key] = sums[key] + value if key in sums else value.copy()


class Graph:
    """The ordered nodes of a model, and the two passes over them."""

    def __init__(self, inputs, outputs):
        self.inputs, self.outputs = list(inputs), list(outputs)
        for role, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            if not tensors:
                raise ValueError(f"Model: {role} is empty")
            for t in tensors:
                if not isinstance(t, KerasTensor):
                    raise TypeError(f"Model: {role} must be tensors made by keras.Input(...) and by calling "
                                    f"layers on them, got a {type(t).__name__}")
        for i, t in enumerate(self.inputs):
            first = next(j for j, u in enumerate(self.inputs) if u is t)
            if first != i:
                raise ValueError(f"Model: inputs[{first}] and inputs[{i}] are the same tensor ('{t.name}'); give "
                                 "each input its own keras.Input(...) (the model would read one array for both "
                                 "and silently ignore the other)")
        self.nodes, self.layers = topological_order(self.inputs, self.outputs)
        self.nodes = [n for n in self.nodes if not any(n.output is t for t in self.inputs)]
        counts = Counter(node.layer for node in self.nodes)
        self.shared = {layer for layer, k in counts.items() if k > 1}
        self._caches = {}                          # node -> the forward cache of a shared layer's call
        self._output_nodes = {t.node for t in self.outputs}

    def forward(self, xs, training=False, logits=False):
        """Run the graph on arrays xs (one per input); return the list of output arrays (with logits=True, each
        output's value one step before its activation: see output_activation)."""
        values = {id(t): x for t, x in zip(self.inputs, xs)}           # tensor -> its value in this pass
        for node in self.nodes:
            args = [values[id(t)] for t in node.inputs]
            arg = args if node.list_input else args[0]
            steps = output_activation(node.layer)           # the layer's own math z, then y = activation(z)
            z = steps.forward_logits(arg, training)             # e.g. Conv2D.forward_linear: im2col, a product
            early = logits and node in self._output_nodes       # logits: stop one step early
            values[id(node.output)] = z if early else steps.activate(z, training)
            if node.layer in self.shared:
                self._caches[node] = node.layer.save_cache()
        return [values[id(t)] for t in self.outputs]

    def gradient_paths(self, input_grad=True):
        """The ids of the tensors whose gradient the backward pass needs: those with a trainable weight
        before them (or a model input, with input_grad). The rest, a frozen encoder for one, is not
        backpropagated at all: its gradient would reach no weight the step updates."""
        wanted = {id(t) for t in self.inputs} if input_grad else set()
        for node in self.nodes:
            if node.layer.trainable_weights or any(id(t) in wanted for t in node.inputs):
                wanted.add(id(node.output))
        return wanted

    def backward(self, output_grads, logits=False, input_grad=True):
        """From dL/d(output) for each output back to dL/d(input) for each input (None with input_grad=False:
        training never needs the gradient of the data, and the first layers then skip computing it).

        Fills the `grads` of every layer with trainable weights. The two rules of the module docstring are the
        lines marked (1) and (2); a node none of whose inputs leads back to a trainable weight (or to an input
        whose gradient is asked for) is skipped (gradient_paths).
        """
        grads = {id(t): g for t, g in zip(self.outputs, output_grads)}       # tensor -> dL/d(tensor)
        shared_sums = {}
        wanted = self.gradient_paths(input_grad)
        for node in reversed(self.nodes):
            g = grads.pop(id(node.output), None)
            if id(node.output) not in wanted:              # nothing before it trains: no backward to run
                continue
            layer = node.layer
            if layer in self.shared:
                layer.restore_cache(self._caches[node])
            needed = any(id(t) in wanted for t in node.inputs)          # does anything before it want dL/dx?
            steps = output_activation(layer)
            early = logits and node in self._output_nodes                  # logits: start one step early
            dz = g if early else steps.activation_grad(g)                  # dL/dz, back through the activation
            dx = steps.backward_logits(dz, needed)                         # (1) chain rule
            if layer in self.shared:
                _add_to_sums(shared_sums.setdefault(layer, {}), layer.grads)
            if dx is None:
                continue
            for t, d in zip(node.inputs, dx if node.list_input else [dx]):
                grads[id(t)] = grads[id(t)] + d if id(t) in grads else d                     # (2) fan-out
        for layer, sums in shared_sums.items():
            layer.grads.update(sums)
        return [grads.get(id(t)) for t in self.inputs]


__all__ = ["Graph", "Input", "InputLayer", "KerasTensor", "Node", "OutputActivation", "output_activation",
           "topological_order"]
