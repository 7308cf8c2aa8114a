"""Keras's Model: `Model(inputs, outputs)` for any graph of layers, and the training API every model shares.

    x = Input((64, 64, 3));  ...;  y = Conv2D(4, 1, activation='softmax')(h)
    model = Model(x, y)                      # Sequential and UNet are Models built the same way
    model.compile(optimizer, loss, metrics); model.fit(...); model.evaluate(...); model.predict(...)

As in Keras, a model is split over a few files, one idea each:

    model.py           what a model is: its graph, layers, weights, config, and the two passes on arrays
    trainer.py         how it is trained: compile, train_on_batch (the step), fit, evaluate, predict
    compile_utils.py   the loss joined to the output activation, the metrics to the loss
    data.py            where batches come from (arrays, PyDataset, generator) and how they are checked
    rollback.py        all or nothing: what a failed call puts back
    summary.py         the summary() table

The forward and backward passes are the graph's (tinyseg/graph.py):

    call(x, training, logits)                the forward pass; logits=True stops before the output activation
    backward(grad, logits, input_grad)       from dL/d(output) (or dL/d(logits)) back to dL/dx, filling every
                                             layer's grads (input_grad=False: skip dL/dx, which training never
                                             uses; the first layers then save their input-gradient work)

Freezing, as in Keras: `layer.trainable = False` (or `model.trainable = False` for every layer) keeps a
layer's weights out of model.trainable_weights, so no step updates them; the backward pass skips what only
frozen weights lie behind (graph.py), and a frozen BatchNormalization normalises with its moving statistics
in fit too. Freezing takes effect at the next step; a layer unfrozen after the optimizer's first step needs
compile with a new optimizer, as Keras's does (optimizers/base.py).
"""
import numpy as np

from .. import backend, saving
from ..graph import Graph, InputLayer, KerasTensor, Node, is_symbolic
from ..kernels.bands import one_blas_thread
from ..layers.base import deserialize, serialize
from ..validation import flag, integer
from . import summary as summary_table
from .data import as_list
from .trainer import Trainer

MODEL_CLASSES = {}          # class name -> Model class, for load_model (filled as classes are defined)


class Model(Trainer):
    """A model of layers: Model(inputs, outputs) from keras.Input tensors, or a subclass (Sequential, UNet).

    inputs: one KerasTensor from `Input(...)` or a list of them; outputs: the tensor(s) that layers called on
    them returned. With a list of inputs, call/fit/predict take a list of arrays in the same order; with a
    list of outputs, call and predict return a list (compile trains models with one output).
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        MODEL_CLASSES[cls.__name__] = cls

    def __init__(self, inputs=None, outputs=None, name=None):
        self.name = name or "functional"
        self.loss = None
        self.optimizer = None
        self.metric_names = []
        self._metric_fns = []
        self._metric_specs = []     # what compile(metrics=...) was given, for saving
        self.fused = False
        self.stop_training = False
        self.history = None
        self.epochs_done = 0        # epochs fit has completed: initial_epoch for the fit that resumes them
        self._class_names = None
        self._graph = None
        self._list_inputs = self._list_outputs = False
        if inputs is None and outputs is None:
            return
        if inputs is None or outputs is None:
            raise ValueError("Model: give both inputs and outputs, as in Model(inputs=x, outputs=y)")
        self._set_graph(inputs, outputs)

    def _set_graph(self, inputs, outputs):
        self._list_inputs = isinstance(inputs, (list, tuple))
        self._list_outputs = isinstance(outputs, (list, tuple))
        self._graph = Graph(as_list(inputs), as_list(outputs))
        names = [layer.name for layer in self._graph.layers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"Model: layer names must be unique, but {twice} name more than one layer")

    def _graph_for(self, x, what):
        """The graph that runs x (Sequential builds its graph here on first use)."""
        if self._graph is None:
            raise RuntimeError(f"{what}: this Model has no layers; build it as Model(inputs, outputs)")
        return self._graph

    # --- structure ---------------------------------------------------------------------------------------
    @property
    def layers(self):
        """Every layer, in Keras's order (inputs first, then by depth): the order of get_weights()."""
        return list(self._graph.layers) if self._graph else []

    @property
    def inputs(self):
        return list(self._graph.inputs) if self._graph else []

    @property
    def outputs(self):
        return list(self._graph.outputs) if self._graph else []

    @property
    def input_shape(self):
        """One sample's input shape, without the batch axis (a list of them for several inputs)."""
        shapes = [t.shape[1:] for t in self.inputs]
        return shapes if self._list_inputs else (shapes[0] if shapes else None)

    @property
    def output_shape(self):
        shapes = [t.shape[1:] for t in self.outputs]
        return shapes if self._list_outputs else (shapes[0] if shapes else None)

    @property
    def output_layer(self):
        if len(self.outputs) != 1:
            raise ValueError(f"{self.name}: the model has {len(self.outputs)} outputs "
                             f"({[t.name for t in self.outputs]}); compile and fit train models with one output")
        return self.outputs[0].node.layer

    def accepts_size(self, shape, built_shape):
        """True if images of `shape` (H', W', C) can replace the built (H, W, C): the same channels and no
        layer whose output depends on the exact size (Flatten, Reshape). Subclasses may ask for more."""
        return (len(shape) == 3 == len(built_shape) and shape[-1] == built_shape[-1]
                and not any(layer.fixed_size for layer in self.layers))

    @property
    def class_names(self):
        """The names of the output classes (a list of strings, one per output channel), or None; saved with
        the model. A single sigmoid channel takes two names, for 0 and 1."""
        return None if self._class_names is None else list(self._class_names)

    @class_names.setter
    def class_names(self, names):
        if names is None:
            self._class_names = None
            return
        if isinstance(names, str) or not isinstance(names, (list, tuple)) or \
                not all(isinstance(n, str) for n in names):
            raise TypeError(f"class_names must be a list of strings or None, got {names!r}")
        if self._graph is not None and len(self.outputs) == 1:
            k = self.output_shape[-1]
            allowed = (1, 2) if k == 1 else (k,)
            if len(names) not in allowed:
                raise ValueError(f"class_names has {len(names)} names, but the model outputs {k} class"
                                 f"{'es' if k != 1 else ''}" + (" (give 2 names: for 0 and for 1)" if k == 1 else ""))
        self._class_names = list(names)

    @property
    def dtype(self):
        return self.layers[0].dtype if self.layers else np.dtype(backend.floatx())

    def __call__(self, x, training=False):
        if is_symbolic(x):
            raise TypeError(f"{self.name}: calling a model on graph tensors (a model inside a model) is not "
                            "supported; build one Model from the layers themselves")
        with one_blas_thread():
            return self.call(x, training=training)

    # --- the two passes ------------------------------------------------------------------------------------
    def call(self, x, training=False, logits=False):
        """The forward pass on arrays; see the module docstring."""
        graph, xs = self._graph_and_inputs(x, "call")
        outs = graph.forward(xs, training=training, logits=logits)
        return outs if self._list_outputs else outs[0]

    def _graph_and_inputs(self, x, what):
        """The graph that runs x, and x as its list of input arrays; float data of another precision is cast
        to the model's, as Keras does (x / 255.0 is float64)."""
        graph = self._graph_for(x, what)
        xs = self._input_list(x, "x", len(graph.inputs))
        xs = [a.astype(t.dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.dtype != t.dtype
              else a for a, t in zip(xs, graph.inputs)]
        return graph, xs

    def backward(self, grad, logits=False, input_grad=True):
        """dL/d(inputs) from dL/d(outputs) (one array, or a list for several outputs); None if not input_grad."""
        if self._graph is None:
            raise RuntimeError("backward: the model has not run forward yet")
        grads = list(grad) if self._list_outputs else [grad]
        dxs = self._graph.backward(grads, logits=logits, input_grad=input_grad)
        if not input_grad:
            return None
        return dxs if self._list_inputs else dxs[0]

    def _input_list(self, x, argument, n):
        if self._list_inputs:
            if not isinstance(x, (list, tuple)) or len(x) != n:
                raise ValueError(f"{argument}: the model has {n} inputs; pass a list of {n} arrays")
            return list(x)
        if isinstance(x, (list, tuple)):
            raise TypeError(f"{argument}: the model has one input; pass one array, not a {type(x).__name__}")
        return [x]

    # --- parameters --------------------------------------------------------------------------------------
    _trainable = True

    @property
    def trainable(self):
        """Setting it sets every layer's trainable (False freezes the whole model; True unfreezes every layer).
        A frozen model hands its optimizer no weight, whatever its layers say, as in Keras."""
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        value = flag(value, f"{self.name}: trainable")
        for layer in self.layers:
            layer.trainable = value
        self._trainable = value

    def _trained(self):
        """[(layer, parameter name)] for every weight an optimizer updates, in get_weights() order."""
        if not self.trainable:
            return []
        return [(layer, k) for layer in self.layers if layer.trainable for k in layer.params]

    def trainable_pairs(self):
        """(gradient, parameter) for every trained parameter (frozen layers left out), in a fixed order."""
        return [(layer.grads[k], layer.params[k]) for layer, k in self._trained()]

    @property
    def trainable_weights(self):
        """The trained parameter arrays themselves (not copies), in the order of trainable_pairs()."""
        return [layer.params[k] for layer, k in self._trained()]

    @property
    def non_trainable_weights(self):
        """The other weights (moving statistics, frozen layers' weights), in get_weights() order."""
        trained = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trained]

    @property
    def weights(self):
        """Every weight array (not copies), in get_weights() order."""
        return [w for layer in self.layers for w in layer.weights]

    def trainable_names(self):
        """"layer 'conv2d', parameter 'kernel'", ... in the order of trainable_pairs()."""
        return [f"layer '{layer.name}', parameter '{k}'" for layer, k in self._trained()]

    def get_layer(self, name=None, index=None):
        """The layer called `name`, or the one at `index` of model.layers (Keras's get_layer: give one)."""
        if (name is None) == (index is None):
            raise ValueError(f"get_layer: give name or index (one of them), got name={name!r}, index={index!r}")
        layers = self.layers
        if index is not None:
            index = integer(index, "get_layer: index", expected="an integer")
            if not -len(layers) <= index < len(layers):
                raise ValueError(f"get_layer: index {index} is out of range: the model has {len(layers)} layers")
            return layers[index]
        found = [layer for layer in layers if layer.name == name]
        if not found:
            raise ValueError(f"get_layer: no layer named {name!r}; the layers are {[la.name for la in layers]}")
        return found[0]

    def get_weights(self):
        """Every layer's weights in Keras's order (conv kernel (KH, KW, C_in, C_out), bias (C_out,), ...)."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        """Set every weight from a list in get_weights() order. All or nothing: every array is checked (count,
        shape, a float or integer dtype, finite values in the weight's dtype) before any is written."""
        if isinstance(weights, (np.ndarray, dict, set, str)) or not hasattr(weights, "__iter__"):
            raise TypeError(f"set_weights: expected a list of arrays (as get_weights() returns), got "
                            f"{type(weights).__name__}")
        weights = list(weights)
        expected = sum(len(layer.weight_names()) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"set_weights: the model has {expected} weight arrays, got {len(weights)}")
        checked, i = [], 0
        for layer in self.layers:
            n = len(layer.weight_names())
            checked.append(layer.check_weights(weights[i:i + n], first_index=i))
            i += n
        for layer, arrays in zip(self.layers, checked):
            for key, w in zip(layer.weight_names(), arrays):
                layer._weight(key)[...] = w

    def count_params(self):
        """All weights, trained or not (Keras's "Total params")."""
        return int(sum(layer.count_params() for layer in self.layers))

    @property
    def losses(self):
        """The weight penalties (kernel_regularizer=..., tinyseg/regularizers.py), one float per penalised
        parameter, as Keras's model.losses: the loss a training step minimises is loss(y, model(x)) + their sum."""
        return [p for layer in self.layers for p in layer.regularization_losses()]

    def count_trainable_params(self):
        return int(sum(w.size for w in self.trainable_weights))

    def count_non_trainable_params(self):
        return int(sum(w.size for w in self.non_trainable_weights))

    def _unbuild(self):
        raise RuntimeError(f"{self.name}: a Model is built when it is made")

    # --- saving --------------------------------------------------------------------------------------------
    def get_config(self):
        """The graph as data: each layer's config and, per call, the (layer, call) its inputs come from."""
        graph = self._graph
        local = {}                                     # node -> its number among its layer's calls here
        for node in [t.node for t in graph.inputs] + graph.nodes:
            local.setdefault(node, sum(1 for n in local if n.layer is node.layer))

        def ref(tensor):
            return [tensor.node.layer.name, local[tensor.node]]

        layers = []
        for layer in graph.layers:
            calls = [n for n in graph.nodes if n.layer is layer]
            layers.append({**serialize(layer), "name": layer.name,
                           "inbound_nodes": [[ref(t) for t in n.inputs] for n in calls]})
        return {"name": self.name, "layers": layers, "input_layers": [ref(t) for t in graph.inputs],
                "output_layers": [ref(t) for t in graph.outputs], "list_inputs": self._list_inputs,
                "list_outputs": self._list_outputs}

    @classmethod
    def from_config(cls, config):
        """Rebuild a model from get_config(): make every layer, then replay its calls in dependency order."""
        layers = {spec["name"]: deserialize(spec) for spec in config["layers"]}
        tensors = {}                                   # (layer name, call number) -> KerasTensor
        pending = []
        for spec in config["layers"]:
            layer = layers[spec["name"]]
            if isinstance(layer, InputLayer):
                tensors[(spec["name"], 0)] = Node(layer, [], False).output
            pending += [(spec["name"], i, refs) for i, refs in enumerate(spec["inbound_nodes"])]
        while pending:
            ready = [p for p in pending if all(tuple(r) in tensors for r in p[2])]
            if not ready:
                raise ValueError(f"from_config: the calls of {[p[0] for p in pending]} refer to tensors that "
                                 "no layer makes")
            for name, i, refs in ready:
                inputs = [tensors[tuple(r)] for r in refs]
                layer = layers[name]
                tensors[(name, i)] = layer(inputs if layer.multiple_inputs else inputs[0])
            pending = [p for p in pending if p not in ready]
        ins = [tensors[tuple(r)] for r in config["input_layers"]]
        outs = [tensors[tuple(r)] for r in config["output_layers"]]
        return cls(ins if config.get("list_inputs") else ins[0], outs if config.get("list_outputs") else outs[0],
                   name=config.get("name"))

    def save(self, path, include_optimizer=True):
        """Write architecture, weights, class names and the training position to one .npz file, and with
        include_optimizer the compile settings and the optimizer's state (see tinyseg.saving); load with
        load_model."""
        saving.save_model(self, path, include_optimizer=include_optimizer)

    def save_weights(self, path):
        """Write only the weights (get_weights()) to an .npz file; load_weights reads them into a like model."""
        saving.save_weights(self, path)

    def load_weights(self, path):
        saving.load_weights(self, path)

    # --- description -------------------------------------------------------------------------------------
    def summary(self, line_length=None, positions=None, print_fn=None, show_trainable=False):
        """Print a Keras-like table: layer (type), output shape, parameter count, what it is connected to.

        It fits line_length columns (default: the terminal's width), folding long cells onto more lines;
        positions: the right edge of each column (fractions of line_length, or columns), as in Keras.
        print_fn: where the text goes (default print). show_trainable: a column saying which layers train
        (Y), are frozen (N) or have no weights (-)."""
        if self._graph is None:
            raise ValueError(f"summary: the model '{self.name}' is not built yet, so its shapes are unknown: "
                             "give the first layer input_shape=(...), start with keras.Input(shape), or run it "
                             "on data once")
        show_trainable = flag(show_trainable, "summary: show_trainable")
        (print_fn or print)(summary_table.summary_text(self, line_length, positions, show_trainable))


MODEL_CLASSES["Model"] = MODEL_CLASSES["Functional"] = Model


def serialize_model(model):
    """{'class_name', 'config'}, and 'frozen_layers': the positions in model.layers of the layers with
    trainable=False, which a model whose config does not list its layers (UNet) would otherwise forget."""
    cls = type(model).__name__
    if MODEL_CLASSES.get(cls) is not type(model):
        raise ValueError(f"save: the model class {cls} is not a registered tinyseg model class")
    spec = {"class_name": cls, "config": model.get_config()}
    frozen = [i for i, layer in enumerate(model.layers) if not layer.trainable]
    if frozen:
        spec["frozen_layers"] = frozen
    if not model.trainable:
        spec["trainable"] = False
    return spec


def deserialize_model(spec):
    cls = MODEL_CLASSES.get(spec.get("class_name")) if isinstance(spec, dict) else None
    if cls is None or not isinstance(spec.get("config"), dict):
        raise ValueError(f"unknown model class {spec.get('class_name') if isinstance(spec, dict) else spec!r} in "
                         f"the model file (known: {sorted(MODEL_CLASSES)})")
    model = cls.from_config(dict(spec["config"]))
    frozen, n = spec.get("frozen_layers", []), len(model.layers)
    if not isinstance(frozen, list) or not all(type(i) is int and 0 <= i < n for i in frozen):
        raise ValueError(f"frozen_layers must be a list of layer positions in [0, {n}), got {frozen!r}")
    for i in frozen:
        model.layers[i].trainable = False
    if spec.get("trainable", True) is not True:
        model.trainable = spec["trainable"]                # checked by the setter: True or False
    return model


__all__ = ["KerasTensor", "Model", "deserialize_model", "serialize_model"]
