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
    summary.py         the summary() table;  serialization.py  the model in a file's architecture entry
    subclassing.py     class Net(Model) with a call of its own: its layers tracked, its call recorded as a graph

The forward and backward passes are the graph's (tinyseg/graph.py):

    call(x, training, logits)                the forward pass; logits=True stops before the output activation
                                             (a subclass's own call is recorded as a graph: subclassing.py)
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
from ..layers.base import _snake, deserialize, serialize, unique_name
from ..validation import flag, integer
from . import subclassing
from . import summary as summary_table
from .data import as_list
from .trainer import Trainer

MODEL_CLASSES = {}          # class name -> Model class, for load_model (filled as classes are defined)


class Model(Trainer):
    """A model of layers: Model(inputs, outputs) from keras.Input tensors, or a subclass (Sequential, UNet).

    inputs: one KerasTensor from `Input(...)` or a list of them; outputs: the tensor(s) that layers called on
    them returned. With a list of inputs, call/fit/predict take a list of arrays in the same order; with a
    list of outputs, call and predict return a list (compile trains models with one output).

    Subclassing, as in Keras: `class Net(Model)` whose __init__ assigns layers as attributes and whose
    `call(self, inputs, training=False)` (or `call(self, inputs)`) calls them. The model is built by its first
    data (or `build(input_shape)`): `call` is then run once on symbolic tensors and its layer calls recorded as
    a graph, which fit, evaluate and predict run forward and backward. So `call` may branch on shapes and on
    `training`, not on the values of tensors: `if x.mean() > 0:` raises a TypeError saying so, and a layer
    that is not an attribute of the model is refused (a ValueError naming it). See subclassing.py.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__.split(".")[0] == "tinyseg":      # a user's class: tinyseg.saving.register_keras_serializable
            MODEL_CLASSES[cls.__name__] = cls
        if "call" in cls.__dict__:         # a call of its own is the recipe of the graph (subclassing.py), and
            cls.call_to_record = cls.__dict__["call"]      # model.call runs that graph, which backward follows
            cls.call = Model.call

    def __new__(cls, *args, **kwargs):
        model = super().__new__(cls)
        if subclassing.is_subclassed(cls):                  # Keras's auto-config: what __init__ was called with
            model.__dict__["_init_arguments"] = subclassing.init_arguments(cls, args, kwargs)
        return model

    def __setattr__(self, name, value):
        subclassing.track(self, name, value)               # layers in the order their attributes are assigned
        super().__setattr__(name, value)

    def __init__(self, inputs=None, outputs=None, name=None):
        subclassed = subclassing.is_subclassed(self)
        self.name = name or (unique_name(_snake(type(self).__name__)) if subclassed else "functional")
        self.loss = None
        self.optimizer = None
        self.metric_names = []
        self._metric_fns = []
        self._weighted_metric_fns = []
        self._metric_specs = []     # what compile(metrics=...) was given, for saving
        self.fused = False
        self.stop_training = False
        self.history = None
        self.epochs_done = 0        # epochs fit has completed: initial_epoch for the fit that resumes them
        self._class_names = None
        self._graph = None
        self._train_graph = self._last_graph = None     # subclasses: call recorded with training=True; the last run
        self._pending_compile = None                    # subclasses: compile's arguments, until the model is built
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
        """The graph that runs x (Sequential builds its graph here on first use, a subclass records its call)."""
        if self._graph is None and subclassing.is_subclassed(self):
            first = x if isinstance(x, (list, tuple)) else [x]
            if not all(hasattr(a, "shape") and len(a.shape) >= 2 for a in first):
                raise TypeError(f"{what}: x must be an array (or a list of arrays) with a batch axis")
            self.build([a.shape for a in first] if isinstance(x, (list, tuple)) else x.shape)
        if self._graph is None:
            raise RuntimeError(f"{what}: this Model has no layers; build it as Model(inputs, outputs)")
        return self._graph

    def build(self, input_shape):
        """A subclass: record call on inputs of input_shape ((None, H, W, C), a list of them for a call that
        takes a list); compile's settings, if given before, are then checked against its output."""
        if subclassing.is_subclassed(self):
            subclassing.build(self, input_shape)

    def _training_graph(self):
        """The graph of call(training=True), recorded at the first training step (a subclass; else the graph)."""
        return subclassing.training_graph(self) if subclassing.is_subclassed(self) else self._graph

    # --- structure ---------------------------------------------------------------------------------------
    @property
    def layers(self):
        """Every layer, in Keras's order (inputs first, then by depth; a subclass: the order its attributes were
        assigned): the order of get_weights()."""
        if subclassing.is_subclassed(self):
            return subclassing.tracked_layers(self)
        return list(self._graph.layers) if self._graph else []

    def get_layer(self, name=None, index=None):
        """The layer called `name`, or the one at position `index` of model.layers (Keras's get_layer)."""
        if (name is None) == (index is None):
            raise ValueError("get_layer: give name or index: either a layer name or a layer index, not both "
                             f"(got name={name!r}, index={index!r})")
        layers = self.layers
        if index is not None:
            index = integer(index, "get_layer: index", expected="an integer")
            if not -len(layers) <= index < len(layers):
                raise ValueError(f"get_layer: index {index} is out of range: asked for the layer at index {index}, "
                                 f"but the model has {len(layers)} layers")
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"get_layer: no layer named {name!r}; the model's layers are {[x.name for x in layers]}")

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
            return self._forward(x, training=training)

    # --- the two passes ------------------------------------------------------------------------------------
    def call(self, x, training=False, logits=False):
        """The forward pass on arrays; see the module docstring. (A subclass's own call is kept as
        call_to_record: model.call runs the graph recorded from it.)"""
        return self._forward(x, training=training, logits=logits)

    def _forward(self, x, training=False, logits=False):
        """The graph's forward pass (a subclass: of its recorded call), whatever `call` a subclass defines."""
        graph, xs = self._graph_and_inputs(x, "call", training)
        outs = graph.forward(xs, training=training, logits=logits)
        return outs if self._list_outputs else outs[0]

    def _graph_and_inputs(self, x, what, training=False):
        """The graph that runs x (for a subclass, the one recorded with this `training`), and x as its list of
        input arrays; float data of another precision is cast to the model's, as Keras does (x / 255.0 is
        float64). The graph is the one backward() then follows."""
        graph = self._graph_for(x, what)
        graph = self._last_graph = self._training_graph() if training else graph
        xs = self._input_list(x, "x", len(graph.inputs))
        xs = [a.astype(t.dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.dtype != t.dtype
              else a for a, t in zip(xs, graph.inputs)]
        return graph, xs

    def backward(self, grad, logits=False, input_grad=True):
        """dL/d(inputs) from dL/d(outputs) (one array, or a list for several outputs); None if not input_grad."""
        if self._last_graph is None:
            raise RuntimeError("backward: the model has not run forward yet")
        grads = list(grad) if self._list_outputs else [grad]
        dxs = self._last_graph.backward(grads, logits=logits, input_grad=input_grad)
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
        """A subclass back to unbuilt (rollback.unbuilt_on_failure): its layers forget the build of its graph."""
        if not subclassing.is_subclassed(self):
            raise RuntimeError(f"{self.name}: a Model is built when it is made")
        for layer in self.layers:
            subclassing.forget_build(layer)
        self._graph = self._train_graph = self._last_graph = None

    # --- saving --------------------------------------------------------------------------------------------
    def get_config(self):
        """The graph as data: each layer's config and, per call, the (layer, call) its inputs come from.

        A subclass: its name and the arguments __init__ was called with (override it for arguments that are
        not plain JSON values, calling super().get_config() and adding yours)."""
        if subclassing.is_subclassed(self):
            arguments = self.__dict__.get("_init_arguments")
            if arguments is None:
                raise NotImplementedError(
                    f"{type(self).__name__}.__init__ was called with arguments that are not plain JSON values "
                    "(numbers, strings, lists, dicts); define get_config() returning what rebuilds the model, "
                    "and from_config(config) if cls(**config) does not")
            named = subclassing.takes(type(self).__init__, "name")      # from_config calls cls(**config)
            return {"name": self.name, **arguments} if named else dict(arguments)
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
        """Rebuild a model from get_config(): make every layer, then replay its calls in dependency order.
        A subclass: cls(**config)."""
        if subclassing.is_subclassed(cls):
            return cls(**config)
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
                             "give the first layer input_shape=(...), start with keras.Input(shape), run it "
                             "on data once, or call model.build((None, H, W, C))")
        show_trainable = flag(show_trainable, "summary: show_trainable")
        (print_fn or print)(summary_table.summary_text(self, line_length, positions, show_trainable))


MODEL_CLASSES["Model"] = MODEL_CLASSES["Functional"] = Model
__all__ = ["KerasTensor", "Model"]
