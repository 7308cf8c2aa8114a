"""Sequential: a plain stack of layers, each feeding the next (Keras's `Sequential`).

    forward:   x_0 = x,  x_i = layer_i.forward(x_{i-1}),  output = x_L
    backward:  g_L = dL/d(output),  g_{i-1} = layer_i.backward(g_i)      (the chain rule, last layer first)

It is the simplest graph: once the input shape is known (from the first layer's `input_shape=`, a leading
`Input(shape)`, or the first batch it sees), the stack is called on an Input tensor layer by layer and runs
on the same graph machinery as every other model (tinyseg/graph.py).
"""
from ..graph import Input, InputLayer, KerasTensor
from ..layers.base import Layer, deserialize, serialize
from .model import Model


class Sequential(Model):
    """A linear stack of layers: `Sequential([...])` or `model.add(layer)` one at a time.

    The first item may be `Input(shape)` (or an InputLayer), or the first layer may give `input_shape=`;
    the model is then built at once, so `summary()` works before any data is seen. Otherwise it is built by
    the first batch it runs on.
    """

    def __init__(self, layers=None, name=None):
        super().__init__(name=name or "sequential")
        self._layers = []
        self._input = None                       # the Input tensor the stack is called on, once known
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self):
        """The layers in order (without the input placeholder, as in Keras)."""
        return list(self._layers)

    @property
    def output_layer(self):
        if not self._layers:
            raise ValueError(f"{self.name}: the model has no layers; add some with model.add(...)")
        return self._layers[-1]

    def add(self, layer):
        """Append a layer (or, first of all, an Input tensor or InputLayer that fixes the input shape)."""
        if isinstance(layer, KerasTensor) or isinstance(layer, InputLayer):
            if self._layers or self._input is not None:
                raise ValueError("add: an Input can only come first in a Sequential model")
            self._input = layer if isinstance(layer, KerasTensor) else layer.inbound_nodes[0].output \
                if layer.inbound_nodes else Input(layer.input_shape, dtype=layer.dtype, name=layer.name)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"add: expected a tinyseg layer, got {type(layer).__name__}")
        if any(layer is other for other in self._layers):
            raise ValueError(f"add: layer '{layer.name}' is already in this Sequential model; a layer used twice "
                             "(shared weights) needs the functional API: Model(inputs, outputs)")
        if layer.multiple_inputs:
            raise TypeError(f"add: a {type(layer).__name__} joins several tensors, which a Sequential stack "
                            "cannot give it; use the functional API")
        if not self._layers and self._input is None and layer._declared_input_shape is not None:
            self._input = Input(layer._declared_input_shape, dtype=layer.dtype)
        self._layers.append(layer)
        if self._graph is not None:                          # extend the built stack by one call
            self._set_graph(self._input, layer(self._graph.outputs[0]))
        elif self._input is not None:
            self._build_stack()

    def _build_stack(self):
        x = self._input
        for layer in self._layers:
            x = layer(x)
        self._set_graph(self._input, x)

    def _graph_for(self, x, what):
        if not self._layers:
            raise RuntimeError(f"{what}: the model has no layers; add some with model.add(...)")
        if self._graph is None:
            first = x[0] if isinstance(x, (list, tuple)) else x
            self._input = Input(first.shape[1:], dtype=self._layers[0].dtype)
            self._build_stack()
        return self._graph

    def _unbuild(self):
        """Back to the unbuilt stack that a failed first call found (rollback.unbuilt_on_failure): the layers forget
        their shapes and weights, which the next build makes again."""
        for layer in self._layers:
            layer.built = False
            layer.input_shape = layer.output_shape = None
            layer.params, layer.grads, layer.inbound_nodes = {}, {}, []
            if hasattr(layer, "state"):
                layer.state = {}
        self._input, self._graph = None, None

    def get_config(self):
        """{'name', 'layers': [each layer's serialize(), the first with its 'input_shape' if known]}."""
        specs = []
        for i, layer in enumerate(self._layers):
            spec = serialize(layer)
            if i == 0 and self._input is not None:
                spec["config"]["input_shape"] = list(self._input.shape[1:])
            specs.append(spec)
        return {"name": self.name, "layers": specs}

    @classmethod
    def from_config(cls, config):
        model = cls(name=config.get("name"))
        for i, spec in enumerate(config["layers"]):
            spec = {"class_name": spec["class_name"], "config": dict(spec["config"])}
            shape = spec["config"].pop("input_shape", None)
            layer = deserialize(spec)
            if i == 0 and shape is not None:
                model.add(Input(tuple(shape), dtype=layer.dtype))
            model.add(layer)
        return model
