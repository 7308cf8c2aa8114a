"""The contract every layer keeps.

    y = layer.forward(x, training=False)     keeps what backward needs: self.save_for_backward(x=x, ...)
    dx = layer.backward(dy)                  dy = dL/dy, same shape as y; returns dL/dx, same shape as x,
                                             and fills layer.grads[name] = dL/d(param) for every parameter

    y = layer(x)                             on a KerasTensor (keras.Input and what layers return): records the
                                             call in a graph instead (tinyseg/graph.py, the functional API)

What forward keeps for backward is explicit: `save_for_backward(x=x, cols=cols)` puts exactly those arrays in
`layer.saved` (a Saved: `layer.saved.x`, `layer.saved.cols`), and backward reads them from there, as
minitorch's `ctx.save_for_backward` does. A layer used at two places of a graph keeps one Saved per call
(save_cache / restore_cache below hand each call's back to its backward).

`params` and `grads` are dicts with the same keys (Keras's names: 'kernel', 'bias', 'gamma', 'beta').
`backward` never changes a parameter and never writes into the array it was given: updating weights is
the optimizer's job, so gradients can always be inspected and checked.

Freezing (Keras's `trainable`): `layer.trainable = False` keeps every weight of the layer out of training:

    layer.weights                 every weight array, in get_weights() order (the arrays themselves)
    layer.trainable_weights       those an optimizer updates: params, and none at all once frozen
    layer.non_trainable_weights   the rest: BatchNormalization's moving statistics, and everything once frozen

A model's training step hands the optimizer the trainable weights only, and its backward pass leaves out
what no trainable weight needs (tinyseg/graph.py). A frozen BatchNormalization also normalises with its
moving statistics in fit, and leaves them as they are (Keras's rule; normalization.py).

Shapes are channels-last: images (N, H, W, C), vectors (N, D). A layer learns its input shape the first time
it is built (`build(input_shape)`, input_shape without the batch axis). Images of another height and width
(the same channels) are welcome where the layer's math allows them: the layer then follows the new size
(`resize`: its output size and paddings are worked out again; the weights stay, since they depend on the
channels only), so a fully convolutional model trained on crops runs on whole images. Any other change of
shape is an error, not a silent broadcast.
"""
import types

import numpy as np

from .. import backend
from ..validation import flag

_NAME_COUNTS = {}
LAYER_CLASSES = {}          # class name -> class, filled as classes are defined: what load_model can rebuild


def _snake(name):
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out).replace("2_d", "2d")


def unique_name(prefix):
    """'conv2d', 'conv2d_1', 'conv2d_2', ... as Keras names layers."""
    count = _NAME_COUNTS.get(prefix, 0)
    _NAME_COUNTS[prefix] = count + 1
    return prefix if count == 0 else f"{prefix}_{count}"


def read_only(a):
    """A view of `a` that cannot be written: how a layer hands on a gradient without copying it (a merge to
    each of its inputs, the linear activation to its layer), while the caller's array stays as it was."""
    view = a.view()
    view.flags.writeable = False
    return view


def channel_sum(a):
    """Sum over every axis but the last: (..., C) -> (C,), as a matrix-vector product ones @ a.

    The same sum as a.sum(axis=(0, 1, 2)), but BLAS adds it in blocks: much faster for a short last axis, and
    more accurate, since NumPy adds along a leading axis one row at a time.
    """
    a2 = a.reshape(-1, a.shape[-1])
    return np.ones(a2.shape[0], dtype=a.dtype) @ a2


class Saved(types.SimpleNamespace):
    """What a layer's forward kept for its backward, by name: Saved(x=x, cols=cols).x is x."""


class Layer:
    """Base class: naming, building, input checks, weights in Keras order, config for saving."""

    multiple_inputs = False     # True for merge layers: forward takes a list of arrays, backward returns a list
    fixed_size = False          # True where the output depends on the exact input size (Flatten, Reshape)
    saved = None                # what the last forward kept for backward (a Saved), None before any forward
    # what a new image size changes (resize): part of one call's state, like `saved`, for a shared layer
    geometry_attributes = ("input_shape", "output_shape")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        LAYER_CLASSES[cls.__name__] = cls

    def __init__(self, name=None, input_shape=None, dtype=None, trainable=True):
        self.name = name or unique_name(_snake(type(self).__name__))
        self.dtype = backend.check_float_dtype(dtype or backend.floatx(), f"{self.name}: dtype")
        self.trainable = trainable
        self.params = {}
        self.grads = {}
        self.input_shape = None           # without the batch axis, set by build()
        self.output_shape = None
        self.built = False
        self._declared_input_shape = tuple(input_shape) if input_shape is not None else None
        self.inbound_nodes = []           # one graph Node per symbolic call (tinyseg/graph.py)

    # --- building ---------------------------------------------------------------------------------------
    def build(self, input_shape):
        """Create the weights for inputs of shape (N,) + input_shape; return the output shape."""
        input_shape = tuple(int(d) for d in input_shape)
        if any(d < 1 for d in input_shape):
            raise ValueError(f"{self.name}: cannot be built for input shape (batch,) + {input_shape}: every axis "
                             "after the batch axis needs a size of at least 1 (0 channels, 0 rows or 0 columns "
                             "hold no data)")
        self.output_shape = tuple(self.compute_output_shape(input_shape))
        self.input_shape = input_shape
        self.built = True
        return self.output_shape

    def compute_output_shape(self, input_shape):
        return input_shape

    # --- running ----------------------------------------------------------------------------------------
    def forward(self, x, training=False):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def __call__(self, x, training=False):
        """On arrays: forward(x). On KerasTensors: build for their shape and return the symbolic output."""
        from ..graph import call_symbolic, is_symbolic
        if is_symbolic(x):
            return call_symbolic(self, x)
        return self.forward(x, training=training)

    def save_for_backward(self, **values):
        """Keep `values` (arrays, shapes, flags) for the next backward, as self.saved.<name>."""
        self.saved = Saved(**values)

    def saved_for_backward(self):
        """self.saved, or a clear error if no forward has run yet."""
        if self.saved is None:
            raise RuntimeError(f"{self.name}: backward() called before forward()")
        return self.saved

    def inner_layers(self):
        """Layers this one runs inside its own forward (its activation): their saved values are part of its."""
        return []

    def save_cache(self):
        """What the last forward kept for backward, here and in the inner layers; and the geometry it ran with.

        A layer used at two places of a graph keeps one of these per call: the graph saves it after each call's
        forward and hands it back with restore_cache before that call's backward."""
        return (self.saved, {key: getattr(self, key) for key in self.geometry_attributes},
                [layer.save_cache() for layer in self.inner_layers()])

    def restore_cache(self, cache):
        self.saved, geometry, inner = cache
        for key, value in geometry.items():
            setattr(self, key, value)
        for layer, value in zip(self.inner_layers(), inner):
            layer.restore_cache(value)

    def check_input(self, x, argument="x"):
        """Build on first use; then insist on an array of this layer's dtype and built shape."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{self.name}: {argument} must be a NumPy array, got {type(x).__name__}")
        if x.dtype != self.dtype:
            raise TypeError(
                f"{self.name}: {argument} has dtype {x.dtype} but the layer computes in {self.dtype}; "
                f"cast with x.astype('{self.dtype}') or create the layer with dtype='{x.dtype}'"
                if x.dtype.kind == "f" else
                f"{self.name}: {argument} has dtype {x.dtype}; expected {self.dtype} "
                "(convert integer images with x.astype('float32') / 255)")
        if not self.built:
            self.build(x.shape[1:])
        elif x.shape[1:] != self.input_shape:
            if not self.accepts_size(x.shape[1:]):
                raise ValueError(
                    f"{self.name}: {argument} has shape {x.shape}, expected (batch,) + {self.input_shape}")
            self.resize(x.shape[1:])

    def accepts_size(self, shape):
        """Can this built layer run on one sample of `shape`: an image of the same channels, other H and W?"""
        return (not self.fixed_size and len(shape) == 3 and len(self.input_shape) == 3
                and shape[-1] == self.input_shape[-1])

    def resize(self, shape):
        """Follow a new image size (see the module docstring): output shape and geometry for `shape`."""
        output_shape = tuple(self.compute_output_shape(tuple(shape)))      # raises before anything changes
        self.input_shape, self.output_shape = tuple(shape), output_shape

    def check_grad(self, grad):
        if not self.built:
            raise RuntimeError(f"{self.name}: backward() called before forward()")
        expected = (grad.shape[0],) + self.output_shape if hasattr(grad, "shape") else None
        if not isinstance(grad, np.ndarray) or grad.shape != expected:
            got = getattr(grad, "shape", type(grad).__name__)
            raise ValueError(f"{self.name}: grad has shape {got}, expected (batch,) + {self.output_shape}")

    # --- weights ----------------------------------------------------------------------------------------
    def add_weight(self, name, shape, initializer, trainable=True):
        """Keras's add_weight, called by build: a new weight initializer(shape, dtype), kept as params[name]
        (trained) or state[name] (trainable=False: BatchNormalization's moving statistics). The initializer's
        checks (tinyseg/initializers.py) name this layer and the argument it came from in their errors."""
        from .. import initializers
        argument = next((key for key, value in vars(self).items() if value is initializer), "initializer")
        w = initializers.checked(initializer)(tuple(shape), self.dtype, where=f"{self.name}: {argument} ")
        (self.params if trainable else self.state)[name] = w
        return w

    @property
    def trainable(self):
        """False keeps every weight of this layer out of training (see the module docstring)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = flag(value, f"{self.name}: trainable")

    @property
    def weights(self):
        """Every weight array (not copies), in get_weights() order."""
        return [self._weight(k) for k in self.weight_names()]

    @property
    def trainable_weights(self):
        """The arrays an optimizer updates: the params, none if the layer is frozen."""
        return list(self.params.values()) if self.trainable else []

    @property
    def non_trainable_weights(self):
        """The other weights, in get_weights() order: all of them if the layer is frozen."""
        trained = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trained]

    def weight_names(self):
        """Parameter names in Keras's get_weights() order."""
        return list(self.params)

    def _weight(self, key):
        """The array behind a weight name: a trained parameter, or a non-trained one (BatchNorm's state)."""
        return self.params[key] if key in self.params else self.state[key]

    def get_weights(self):
        return [self._weight(k).copy() for k in self.weight_names()]

    def check_weights(self, weights, first_index=None):
        """What set_weights(weights) would write, checked whole before any of it is: the count, each array's
        shape, a real dtype (float or integer: not bool, complex, strings or objects) and finite values after
        conversion to the weight's dtype (a float64 1e39 becomes inf in float32). Returns the converted arrays.

        first_index: where these arrays start in a model's list, for the messages."""
        names = self.weight_names()
        if isinstance(weights, (np.ndarray, dict, set, str)) or not hasattr(weights, "__len__"):
            raise TypeError(f"{self.name}: set_weights expects a list of {len(names)} arrays ({names}), got "
                            f"{type(weights).__name__}")
        if len(weights) != len(names):
            raise ValueError(f"{self.name}: set_weights expects {len(names)} arrays ({names}), got {len(weights)}")
        out = []
        for j, (key, w) in enumerate(zip(names, weights)):
            target = self._weight(key)
            where = "" if first_index is None else f" (array {first_index + j} of the list)"
            try:
                a = np.asarray(w)
            except (TypeError, ValueError) as err:
                raise TypeError(f"{self.name}: weight '{key}' is not an array{where} ({err})") from None
            if a.dtype.kind not in "fiu":
                raise TypeError(f"{self.name}: weight '{key}' must hold real numbers (float or integer), got dtype "
                                f"{a.dtype}{where}")
            if a.shape != target.shape:
                raise ValueError(f"{self.name}: weight '{key}' must have shape {target.shape}, got {a.shape}{where}")
            with np.errstate(over="ignore", invalid="ignore"):
                converted = a.astype(target.dtype)
            if not np.all(np.isfinite(converted)):
                beyond = a.dtype.kind == "f" and np.all(np.isfinite(a))
                raise ValueError(f"{self.name}: weight '{key}' holds NaN or inf"
                                 + (f" once converted to {target.dtype} (values beyond its range)" if beyond else "")
                                 + where)
            out.append(converted)
        return out

    def set_weights(self, weights):
        """Write arrays in get_weights() order, in place (the arrays keep their identity); all or none."""
        checked = self.check_weights(weights)
        for key, w in zip(self.weight_names(), checked):
            self._weight(key)[...] = w

    def get_rng_state(self):
        """The state of the layer's own random generator (JSON-able), or None if it has none (most layers)."""
        return None

    def set_rng_state(self, state):
        """Put back what get_rng_state() returned."""

    def count_params(self):
        """All weights, trained or not (Keras's "Total params")."""
        return int(sum(w.size for w in self.weights))

    def count_trainable_params(self):
        return int(sum(w.size for w in self.trainable_weights))

    def count_non_trainable_params(self):
        return int(sum(w.size for w in self.non_trainable_weights))

    # --- weight regularization (tinyseg/regularizers.py) ---------------------------------------------------
    regularizer_arguments = {}  # parameter name -> the constructor argument that penalises it (Conv2D, Dense, ...)

    def weight_regularizers(self):
        """{parameter name: Regularizer} for this layer's penalised parameters (none for most layers, and none
        for a frozen one: as in Keras, only trainable weights are penalised)."""
        if not self.trainable:
            return {}
        found = {key: getattr(self, argument, None) for key, argument in self.regularizer_arguments.items()}
        return {key: r for key, r in found.items() if r is not None and key in self.params}

    def regularization_losses(self):
        """[R(w) for each penalised parameter w]: what this layer adds to the training loss (floats)."""
        return [r(self.params[key]) for key, r in self.weight_regularizers().items()]

    def add_regularization_gradients(self):
        """grads[key] += dR/dw for each penalised parameter, after backward filled grads (a new array: the
        one backward made is not written into)."""
        for key, r in self.weight_regularizers().items():
            self.grads[key] = self.grads[key] + r.gradient(self.params[key])

    def get_config(self):
        """The constructor arguments that rebuild this layer: type(layer).from_config(layer.get_config()).
        'trainable' is there for a frozen layer only (a trainable one is the default), so the configs of
        trainable layers read as before."""
        config = {"name": self.name, "dtype": self.dtype.name}
        return config if self.trainable else {**config, "trainable": False}

    @classmethod
    def from_config(cls, config):
        """A new layer (unbuilt, fresh weights) made from get_config()'s dictionary."""
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


def serialize(layer):
    """{'class_name': ..., 'config': ...}: what it takes to make the layer again (without its weights)."""
    if type(layer).__name__ not in LAYER_CLASSES or LAYER_CLASSES[type(layer).__name__] is not type(layer):
        raise ValueError(f"{layer.name}: its class {type(layer).__name__} is not a registered tinyseg layer "
                         "class, so a saved model could not rebuild it")
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(spec):
    """The layer that serialize() described, found by its class name."""
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str) or \
            not isinstance(spec.get("config"), dict):
        raise ValueError(f"deserialize: expected {{'class_name': str, 'config': dict}}, got {spec!r}")
    cls = LAYER_CLASSES.get(spec["class_name"])
    if cls is None:
        raise ValueError(f"deserialize: unknown layer class {spec['class_name']!r} "
                         f"(known: {sorted(LAYER_CLASSES)})")
    return cls.from_config(dict(spec["config"]))
