"""Subclassed models: `class Net(keras.Model)` with layers as attributes and a `call` of your own.

    class Net(keras.Model):
        def __init__(self, filters=8, **kwargs):
            super().__init__(**kwargs)
            self.conv = layers.Conv2D(filters, 3, padding="same", activation="relu")
            self.head = layers.Conv2D(4, 1, activation="softmax")

        def call(self, inputs, training=False):          # or call(self, inputs)
            return self.head(self.conv(inputs))

Recording. tinyseg's backward walks a graph of layer calls (tinyseg/graph.py), and a Python method is not a
graph. So the first time the model meets data (or `model.build(shape)`), it records one: it makes
keras.Input placeholders of the data's shapes, runs your `call` on them once (each layer called on a
placeholder records a Node, as in the functional API), and keeps the Graph(inputs, outputs) that results.
From then on forward and backward run that graph; your `call` is not run again (the class keeps it as
`call_to_record`, and `model.call(x, training, logits)` on arrays runs the graph, as for any tinyseg model, so
tinyseg.gradcheck.check_model and model.backward follow the same computation). It is recorded once per
value of `training`: with training=False for predict and evaluate, with training=True at the first step of
fit, so `if training:` may choose layers.

What `call` may do: call the layers that are attributes of the model (a layer twice: shared weights), on
tensors or lists of tensors; Python control flow on shapes (`x.shape[-1]`), on `training` and on settings
of the model (`self.depth`); loops that run a fixed number of times. What it may not: use the values of
tensors (`if x.mean() > 0`, NumPy on a tensor): a placeholder has none, and a recording made once could not
follow them; it raises a TypeError that says so. A layer made inside `call`, or kept anywhere but as an
attribute (or in a list attribute), is refused: its weights would not be tracked, saved or trained.

Weights are tracked as Keras tracks them: the layers in the order their attributes were first assigned
(a list attribute gives its layers in list order), each layer's weights in its own order (kernel, bias;
BatchNormalization's gamma, beta, moving mean, moving variance). So `set_weights(keras_model.get_weights())`
moves the weights of the same net written for Keras.

Saving: `get_config()` of a subclass gives its name and the arguments its `__init__` was called with (when
they are plain JSON values: numbers, strings, lists, dicts); override it (and `from_config`) for anything
else. A file names the class by the name `tinyseg.saving.register_keras_serializable(package=...)` gave it,
and load_model rebuilds it as `cls.from_config(config)`, built for the saved input shapes.
"""
import inspect
import json

from ..graph import Graph, Input, InputLayer, KerasTensor
from ..layers.base import Layer
from . import compile_utils
from .data import as_list
from .rollback import Snapshot


def is_subclassed(model):
    """True for a model (or model class) that brings its own `call`, kept as `call_to_record`."""
    cls = model if isinstance(model, type) else type(model)
    return getattr(cls, "call_to_record", None) is not None


# --- tracking layers assigned as attributes ---------------------------------------------------------------
def track(model, name, value):
    """Remember the layers of an attribute (a layer, or a list or tuple of layers), in assignment order."""
    tracked = model.__dict__.setdefault("_tracked", {})
    if isinstance(value, Layer):
        tracked[name] = [value]
    elif isinstance(value, (list, tuple)) and any(isinstance(v, Layer) for v in value):
        tracked[name] = [v for v in value if isinstance(v, Layer)]
    else:
        tracked.pop(name, None)


def tracked_layers(model):
    """The layers of the model's attributes, each once, in the order of their first assignment."""
    seen = []
    for layers in model.__dict__.get("_tracked", {}).values():
        seen += [layer for layer in layers if not any(layer is s for s in seen)]
    return seen


# --- recording call as a graph ----------------------------------------------------------------------------
RULES = ("call is run once on symbolic tensors to record its layer calls as a graph: it may call the model's "
         "layers and branch on shapes and on `training`, not on the values of tensors (see "
         "tinyseg/models/subclassing.py)")


def takes(fn, keyword):
    """True if fn can be given the keyword argument `keyword` (by name, or through **kwargs)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return keyword in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def record(model, shapes, list_inputs, training):
    """The Graph of model.call on placeholders of `shapes` (one per input, without the batch axis).

    All or nothing: if call cannot be recorded, the layers it built are unbuilt again and the shared
    generator (their initial weights) is put back."""
    layers = tracked_layers(model)
    before = [(layer, layer.built, len(layer.inbound_nodes)) for layer in layers]
    saved = Snapshot.take()
    try:
        inputs = [Input(tuple(shape), dtype=model.dtype) for shape in shapes]
        arg = inputs if list_inputs else inputs[0]
        try:
            call = type(model).call_to_record
            out = call(model, arg, training=training) if takes(call, "training") else call(model, arg)
        except (TypeError, AttributeError) as err:
            raise TypeError(f"{model.name}: {type(model).__name__}.call could not be recorded "
                            f"({type(err).__name__}: {err}); {RULES}") from err
        outputs = as_list(out)
        if not outputs or not all(isinstance(t, KerasTensor) for t in outputs):
            raise TypeError(f"{model.name}: {type(model).__name__}.call must return the output of a layer (or a "
                            f"list of them), got {type(out).__name__}; {RULES}")
        graph = Graph(inputs, outputs)
        strangers = [layer for layer in graph.layers
                     if not isinstance(layer, InputLayer) and not any(layer is t for t in layers)]
        if strangers:
            names = ", ".join(f"'{layer.name}' ({type(layer).__name__})" for layer in strangers)
            raise ValueError(f"{model.name}: call uses the layer {names}, which is not an attribute of the model: "
                             "create it in __init__ and assign it (self.conv = layers.Conv2D(...)), so that its "
                             "weights are tracked, trained and saved")
    except BaseException:
        for layer, built, n in before:
            del layer.inbound_nodes[n:]
            if not built and layer.built:
                forget_build(layer)
        saved.restore()
        raise
    return graph, isinstance(out, (list, tuple))


def build(model, input_shape):
    """Record model.call for inputs of input_shape ((None, H, W, C), or a list of them for a call that takes a
    list); then compile with the settings compile was given before (compile_when_built)."""
    listed = isinstance(input_shape, list) and all(isinstance(s, (list, tuple)) for s in input_shape)
    shapes = [tuple(s)[1:] for s in (input_shape if listed else [input_shape])]
    graph, list_outputs = record(model, shapes, listed, training=False)
    model._graph, model._train_graph, model._list_inputs, model._list_outputs = graph, None, listed, list_outputs
    if model._pending_compile is not None:
        try:
            model.compile(*model._pending_compile)
        except BaseException:
            model._unbuild()
            raise
        model._pending_compile = None


def training_graph(model):
    """The graph of call(training=True), recorded at the first training step."""
    if model._train_graph is None:
        shapes = [t.shape[1:] for t in model._graph.inputs]
        model._train_graph, _ = record(model, shapes, model._list_inputs, training=True)
    return model._train_graph


def compile_when_built(model, optimizer, loss, metrics, weighted=()):
    """compile on a model not yet built: its output is unknown until call is recorded, so build() compiles
    with these settings; the loss, the optimizer and the metric names (which fit's logs need) are set now."""
    fns = [compile_utils.metric_for(m, loss) for m in metrics]
    weighted_fns = [compile_utils.weighted_metric_for(m, loss) for m in weighted]
    model.optimizer, model.loss = optimizer, loss
    model._pending_compile = (optimizer, loss, metrics, list(weighted) or None)
    names = [compile_utils.metric_name(m, fn) for m, fn in zip(metrics, fns)]
    model.metric_names = names + compile_utils.weighted_metric_names(
        names, [compile_utils.metric_name(m, fn) for m, fn in zip(weighted, weighted_fns)])
    model._metric_fns, model._weighted_metric_fns, model._metric_specs, model.fused = [], [], metrics, False


def forget_build(layer):
    """The layer as before its first build: no shapes, weights or recorded calls (the next build makes them)."""
    layer.built = False
    layer.input_shape = layer.output_shape = None
    layer.params, layer.grads, layer.inbound_nodes = {}, {}, []
    if hasattr(layer, "state"):
        layer.state = {}


# --- saving ---------------------------------------------------------------------------------------------
def init_arguments(cls, args, kwargs):
    """{argument: value} of a call cls(*args, **kwargs) (Keras's auto-config), or None if one is not JSON."""
    try:
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
    except TypeError:
        return None
    arguments = {}
    for name, value in list(bound.arguments.items())[1:]:
        kind = inspect.signature(cls.__init__).parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                return None
        else:
            arguments[name] = value
    try:
        json.dumps(arguments, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return arguments


def build_config(model):
    """What load_model builds the model for: the input shapes and whether call takes a list."""
    return {"input_shapes": [list(t.shape[1:]) for t in model.inputs], "list_inputs": model._list_inputs}
