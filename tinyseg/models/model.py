"""Keras's Model: `Model(inputs, outputs)` for any graph of layers, and the training API every model shares.

    x = Input((64, 64, 3));  ...;  y = Conv2D(4, 1, activation='softmax')(h)
    model = Model(x, y)                      # Sequential and UNet are Models built the same way
    model.compile(optimizer, loss, metrics); model.fit(...); model.evaluate(...); model.predict(...)

The forward and backward passes are the graph's (tinyseg/graph.py):

    call(x, training, logits)                the forward pass; logits=True stops before the output activation
    backward(grad, logits, input_grad)       from dL/d(output) (or dL/d(logits)) back to dL/dx, filling every
                                             layer's grads (input_grad=False: skip dL/dx, which training never
                                             uses; the first layers then save their input-gradient work)

One training step is then, for every batch:

    z = call(x, training=True, logits=fused)      # fused: the loss applies the output softmax/sigmoid itself
    L = loss(y, z) + sum(model.losses)            # + the weight penalties (kernel_regularizer=...), if any
    G = loss.backward()                           # dL/dz
    backward(G, logits=fused, input_grad=False)   # fills layer.grads; then each penalty's dR/dw is added
    optimizer.apply_gradients(zip(grads, params))  # the only place weights change

Why fuse: softmax followed by cross-entropy has the gradient (p - y)/N, computed from logits with log-sum-exp;
running the two separately would divide by probabilities that can round to 0.

A call that fails changes nothing. `fit` checks all it can before the first step: the arrays x and y (and
the validation arrays) whole, their shapes against the model's input and output, every label against the
loss (in [0, K) or its ignore_index), finiteness, and every argument. A streamed batch (PyDataset,
generator) or an augmented one is checked before its forward pass. One step is all or nothing: if anything
in it raises (a target, a metric, a gradient that is NaN or inf: NonFiniteError, naming the layer and the
parameter), BatchNorm's moving statistics and the random generators are put back, and no weight or optimizer
slot has changed, since the optimizer's update is the last thing a step does and checks everything first.
So a fit that fails before its first step leaves the model as it was (a Sequential it built is unbuilt
again), and one that fails at a later batch leaves it as the steps before that batch made it.
A loss that is NaN or inf stops fit (Keras's TerminateOnNaN, always on).

Resuming: `model.save(path)` keeps the optimizer's state and the number of epochs done; after
`model = load_model(path)`, `model.fit(x, y, epochs=4, initial_epoch=model.epochs_done, seed=s)` continues
exactly where an unbroken `fit(x, y, epochs=4, seed=s)` would be, because with a seed the random numbers of
epoch e (its data order, augmentations, dropout masks) are drawn from their own generator, seeded by (s, e).
"""
import contextlib
import functools
import inspect
import numbers

import numpy as np

from .. import backend, losses, optimizers, saving
from .. import metrics as metrics_module
from ..backend import NonFiniteError
from ..callbacks import CallbackList, History, TerminateOnNaN
from ..graph import Graph, InputLayer, KerasTensor, Node, is_symbolic, output_activation
from ..kernels.bands import one_blas_thread
from ..layers.activations import sigmoid, softmax
from ..layers.base import deserialize, serialize
from .data import ArrayBatches, as_list, batches, count_argument, is_stream, num_samples, take
from .progress import ProgressBar, format_logs

MODEL_CLASSES = {}          # class name -> Model class, for load_model (filled as classes are defined)


def check_array(x, argument, expected_shape=None):
    """A float array without NaN whose shape after the batch axis is expected_shape."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{argument} must be a NumPy array, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{argument} has dtype {x.dtype}; expected float32 images "
                        "(convert with x.astype('float32') / 255 for 8-bit images)")
    if x.ndim < 2 or 0 in x.shape[1:]:
        raise ValueError(f"{argument} has shape {x.shape}: expected (batch, ...) with every axis after the batch "
                         "axis of size 1 or more (0 channels, rows or columns hold no data)")
    if expected_shape is not None and x.shape[1:] != tuple(expected_shape):
        hint = ""
        if x.ndim == len(expected_shape) + 1 and x.shape[1:-1] == tuple(expected_shape[:-1]):
            hint = f": the model was built for {expected_shape[-1]} channels, x has {x.shape[-1]}"
        raise ValueError(f"{argument} has shape {x.shape}, expected (batch,) + {tuple(expected_shape)}{hint}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{argument} contains NaN or inf values")


_NOTE_SHOWN = False


def first_run_compile(verbose):
    """Before the first step of a fresh install, compile every kernel, sharing the work between the
    machine's cores (kernels/warmup.py; with one thread the kernels compile on first use, as always), and
    say so once if verbose."""
    global _NOTE_SHOWN
    from ..kernels import compiled_before, get_backend, get_num_threads, warmup
    if not _NOTE_SHOWN and get_backend() == "numba" and not compiled_before():
        threads = get_num_threads()
        if verbose:
            on = f" on {threads} cores" if threads > 1 else ""
            print(f"Compiling tinyseg's kernels for this machine{on} (first run only, about 10-20 s; later runs "
                  "load them from the cache)", flush=True)
        if threads > 1:
            warmup.compile_all(threads)
    _NOTE_SHOWN = True


def _takes_keyword(fn, name):
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _metric_name(m, fn):
    return m if isinstance(m, str) else getattr(fn, "name", getattr(fn, "__name__", repr(fn)))


class Model:
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
        graph = self._graph_for(x, "call")
        xs = self._input_list(x, "x", len(graph.inputs))
        # Float data of another precision is cast to the model's, as Keras does (x / 255.0 is float64)
        xs = [a.astype(t.dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.dtype != t.dtype
              else a for a, t in zip(xs, graph.inputs)]
        outs = graph.forward(xs, training=training, logits=logits)
        return outs if self._list_outputs else outs[0]

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

    # --- compile -----------------------------------------------------------------------------------------
    def compile(self, optimizer="adam", loss="categorical_crossentropy", metrics=None):
        """Choose the optimizer, the loss and the metrics, as Keras's `compile`.

        A loss that works on logits (cross-entropy, Dice) needs the model to end in its activation (softmax
        or sigmoid: it is then fused into the loss) or in none (the outputs are then taken as logits).

        Metrics follow the loss's ignore_index: a metric named by a string is asked for with it
        (tinyseg.metrics.get(name, ignore_index)), a function that has an `ignore_index` argument gets it
        bound. Then, if the loss ignores a label, every metric is tried on a tiny batch whose targets hold that
        label: one that cannot leave it out is refused here, and not after a training step. Nothing is set
        until everything has been checked.
        """
        optimizer = optimizers.get(optimizer)
        loss = losses.get(loss)
        if metrics is None:
            metrics = []
        if isinstance(metrics, str) or callable(metrics) or not isinstance(metrics, (list, tuple)):
            raise TypeError(f"metrics must be a list of metric names or functions, got {metrics!r}")
        metrics = list(metrics)
        final = output_activation(self.output_layer).name
        if loss.from_logits is True and final != "linear":
            raise ValueError(f"compile: the loss has from_logits=True (raw scores), but the last layer ends in "
                             f"'{final}'; remove that activation or pass from_logits=False")
        if loss.from_logits is False and loss.activation is not None and final == "linear":
            raise ValueError(f"compile: the loss has from_logits=False (probabilities), but the last layer has no "
                             f"activation; end the model with activation='{loss.activation}' or pass "
                             "from_logits=True")
        if loss.activation is None or final == "linear":
            fused = False
        elif final == loss.activation:
            fused = True
        else:
            raise ValueError(
                f"compile: loss '{loss.name}' applies {loss.activation} to the model's scores, but the "
                f"last layer ends in '{final}'. End the model with activation='{loss.activation}' "
                "(or with no activation, to output raw logits).")
        if self._graph is not None and len(self.outputs) == 1:
            try:
                loss.check_output_shape((None,) + tuple(self.output_shape))
            except ValueError as err:
                raise ValueError(f"compile: {err}") from None
        # A model without an output activation, whose loss applies one, outputs logits: a metric named by a
        # string is told so (a one-channel output is then class 1 where z > 0, not z > 0.5).
        outputs_are_logits = loss.activation is not None and final == "linear"
        metric_fns = [self._metric_for(m, loss, outputs_are_logits) for m in metrics]
        self._try_metrics(metrics, metric_fns, loss)
        self.optimizer, self.loss, self.fused = optimizer, loss, fused
        self.metric_names, self._metric_fns = [_metric_name(m, f) if not isinstance(m, str) else m
                                               for m, f in zip(metrics, metric_fns)], metric_fns
        self._metric_specs = metrics

    @staticmethod
    def _metric_for(m, loss, from_logits=False):
        """The callable for one entry of compile(metrics=[...]), told the loss's ignore_index where it can be,
        and (metric names only) whether the model's outputs are logits."""
        ignore_index = getattr(loss, "ignore_index", None)
        if isinstance(m, str) and from_logits:
            return metrics_module.get(m, ignore_index=ignore_index, from_logits=True)
        if isinstance(m, str) and ignore_index is not None and _takes_keyword(metrics_module.get, "ignore_index"):
            return metrics_module.get(m, ignore_index=ignore_index)
        fn = metrics_module.get(m)
        if ignore_index is None or isinstance(m, str):
            return fn
        bound = getattr(fn, "ignore_index", None)
        if bound is not None:
            if bound != ignore_index:
                raise ValueError(f"compile: metric {_metric_name(m, fn)!r} leaves out label {bound}, but the loss "
                                 f"ignores label {ignore_index}; give both the same ignore_index")
            return fn
        if _takes_keyword(fn, "ignore_index"):
            wrapped = functools.partial(fn, ignore_index=ignore_index)
            wrapped.name, wrapped.ignore_index = _metric_name(m, fn), ignore_index
            return wrapped
        return fn

    def _try_metrics(self, specs, fns, loss):
        """With a loss that ignores a label: run every metric on a tiny batch holding that label (see compile)."""
        ignore_index = getattr(loss, "ignore_index", None)
        if ignore_index is None or not fns or self._graph is None or len(self.outputs) != 1:
            return
        k = self.output_shape[-1]
        shape = (2,) * len(self.output_shape)                 # 2 samples (of 2 x 2 pixels for images)
        labels = (np.arange(int(np.prod(shape))) % (2 if k == 1 else k)).reshape(shape)
        probs = labels[..., None].astype(self.dtype) if k == 1 else np.eye(k, dtype=self.dtype)[labels]
        labels.flat[-1] = ignore_index
        for spec, fn in zip(specs, fns):
            try:
                fn(labels, probs)
            except Exception as err:
                name = _metric_name(spec, fn)
                raise ValueError(
                    f"compile: metric {name!r} fails on targets that hold the loss's ignore_index={ignore_index} "
                    f"({type(err).__name__}: {err}); use a metric that leaves that label out (a metric name, "
                    "which compile asks for with the loss's ignore_index, or a function with an ignore_index "
                    "argument)") from None

    def _require_compiled(self, what):
        if self.loss is None:
            raise RuntimeError(f"{what}: call model.compile(optimizer=..., loss=...) first")

    # --- parameters --------------------------------------------------------------------------------------
    def trainable_pairs(self):
        """(gradient, parameter) for every trained parameter, in a fixed order."""
        return [(layer.grads[k], layer.params[k]) for layer in self.layers for k in layer.params]

    @property
    def trainable_weights(self):
        """The trained parameter arrays themselves (not copies), in the order of trainable_pairs()."""
        return [layer.params[k] for layer in self.layers for k in layer.params]

    def trainable_names(self):
        """"layer 'conv2d', parameter 'kernel'", ... in the order of trainable_pairs()."""
        return [f"layer '{layer.name}', parameter '{k}'" for layer in self.layers for k in layer.params]

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
        return int(sum(layer.count_params() for layer in self.layers))

    @property
    def losses(self):
        """The weight penalties (kernel_regularizer=..., tinyseg/regularizers.py), one float per penalised
        parameter, as Keras's model.losses: the loss a training step minimises is loss(y, model(x)) + their sum."""
        return [p for layer in self.layers for p in layer.regularization_losses()]

    def count_trainable_params(self):
        return int(sum(p.size for layer in self.layers for p in layer.params.values()))

    # --- what a failed step puts back ----------------------------------------------------------------------
    def _snapshot(self):
        """What a forward pass changes besides caches: BatchNorm's moving statistics and the random generators."""
        states = [(layer, {k: v.copy() for k, v in layer.state.items()})
                  for layer in self.layers if getattr(layer, "state", None)]
        rngs = [(layer, layer.get_rng_state()) for layer in self.layers if layer.get_rng_state() is not None]
        return states, rngs, backend.rng(), backend.rng().bit_generator.state

    def _restore(self, snapshot):
        states, rngs, generator, generator_state = snapshot
        for layer, state in states:
            for k, v in state.items():
                layer.state[k][...] = v
        for layer, state in rngs:
            layer.set_rng_state(state)
        generator.bit_generator.state = generator_state

    # --- one batch ---------------------------------------------------------------------------------------
    def _outputs(self, z):
        """Turn what call(..., logits=self.fused) returned into the model's outputs (probabilities)."""
        if not self.fused:
            return z
        return softmax(z) if self.loss.activation == "softmax" else sigmoid(z)

    def _metrics(self, y, z):
        """Metric values on the outputs; the output activation is applied only if a metric needs it."""
        if not self._metric_fns:
            return []
        out = self._outputs(z)
        return [float(fn(y, out)) for fn in self._metric_fns]

    def train_on_batch(self, x, y):
        """One step of gradient descent on (x, y); returns [loss, metrics...] for this batch (metrics of the
        outputs before the step).

        All or nothing (see the module docstring): if anything raises, the model is as it was before the call.
        """
        self._require_compiled("train_on_batch")
        snapshot = self._snapshot()
        try:
            # tinyseg's threads share out the work; BLAS's own must not spin on their cores (kernels/bands.py)
            with one_blas_thread():
                z = self.call(x, training=True, logits=self.fused)
                values = [self.loss.forward(y, z) + sum(self.losses)] + self._metrics(y, z)   # + penalties
                self.backward(self.loss.backward(), logits=self.fused, input_grad=False)
                for layer in self.layers:                # + dR/dw of each penalised weight (regularizers.py)
                    layer.add_regularization_gradients()
                self.optimizer.apply_gradients(self.trainable_pairs(), names=self.trainable_names())
        except BaseException:
            self._restore(snapshot)
            raise
        return values

    def test_on_batch(self, x, y):
        self._require_compiled("test_on_batch")
        with one_blas_thread():
            z = self.call(x, training=False, logits=self.fused)
        return [self.loss.forward(y, z) + sum(self.losses)] + self._metrics(y, z)    # Keras counts them here too

    # --- checking data -----------------------------------------------------------------------------------
    def _check_x(self, x, argument):
        """Arrays for every input, of the right shapes (a Sequential not yet built accepts any shape)."""
        xs = as_list(x) if self._list_inputs else [x]
        shapes = [t.shape[1:] for t in self.inputs] if self._graph is not None else [None] * len(xs)
        if self._list_inputs and len(xs) != len(shapes):
            raise ValueError(f"{argument}: the model has {len(shapes)} inputs; pass a list of {len(shapes)} arrays")
        for i, (a, shape) in enumerate(zip(xs, shapes)):
            if shape is not None and isinstance(a, np.ndarray) and a.shape[1:] != shape and \
                    self.accepts_size(a.shape[1:], shape):
                shape = None                           # another image size that every layer can follow
            check_array(a, argument if len(xs) == 1 else f"{argument}[{i}]", shape)
        if len({len(a) for a in xs}) > 1:
            raise ValueError(f"{argument}: the input arrays have different numbers of samples "
                             f"{[len(a) for a in xs]}")

    def _prediction_shape(self, x, n):
        """The shape the model's output will have for x (n samples): None for the axes of a resized image."""
        out = tuple(self.output_shape)
        first = as_list(x)[0]
        if tuple(first.shape[1:]) == tuple(self.inputs[0].shape[1:]):
            return (n,) + out
        return (n,) + (None,) * (len(out) - 1) + out[-1:]

    def _check_xy(self, x, y, argument="x", y_argument=None):
        """x as _check_x; y an array with one target per sample, that the loss accepts for these outputs.
        argument / y_argument: what the messages call x and y ('x' and 'y' for fit's own arguments)."""
        y_argument = y_argument or ("y" if argument == "x" else f"the targets of {argument}")
        self._check_x(x, argument)
        if y is None:
            raise ValueError(f"{argument}: the targets y are missing (fit and evaluate need y; predict does not)")
        if not isinstance(y, np.ndarray):
            hint = " (convert a list with np.asarray(y))" if isinstance(y, (list, tuple)) else ""
            raise TypeError(f"{y_argument} must be a NumPy array, got {type(y).__name__}{hint}")
        if y.ndim == 0:
            raise ValueError(f"{y_argument} must have a batch axis, got a 0-d array")
        if len(y) != num_samples(x):
            raise ValueError(f"{argument} has {num_samples(x)} samples but its targets have {len(y)}")
        if num_samples(x) == 0:
            raise ValueError(f"{argument} has no samples")
        self._graph_for(x, "fit")
        if len(self.outputs) == 1:
            try:
                self.loss.check_targets(y, self._prediction_shape(x, len(y)))
            except (TypeError, ValueError) as err:
                raise type(err)(f"{y_argument}: {err}") from None

    @contextlib.contextmanager
    def _building(self):
        """Undo, if the block raises, a build that the block did (a Sequential built by the data of a failed
        call is unbuilt again, and the generator its weights were drawn from put back)."""
        built, state = self._graph is not None, backend.rng().bit_generator.state
        try:
            yield
        except BaseException:
            if not built and self._graph is not None:
                self._unbuild()
                backend.rng().bit_generator.state = state
            raise

    def _unbuild(self):
        raise RuntimeError(f"{self.name}: a Model is built when it is made")

    def _source(self, x, y, batch_size, steps, shuffle, argument, steps_argument, want_y=True,
                batch_argument="batch_size"):
        """Check what was given and return its batch source (models/data.py)."""
        if not is_stream(x):
            if want_y:
                self._check_xy(x, y, argument, "validation_data[1]" if argument.startswith("validation") else None)
            else:
                self._check_x(x, argument)
                if num_samples(x) == 0:
                    raise ValueError(f"{argument} has no samples")
        batch_size = 32 if batch_size is None else count_argument(batch_size, batch_argument, minimum=1)
        return batches(x, y, batch_size, steps, shuffle, want_y, steps_argument)

    def _check_batch(self, xb, yb, where):
        """A streamed or augmented batch, checked before it reaches the model."""
        if yb is None:
            self._check_x(xb, where)
            if num_samples(xb) == 0:
                raise ValueError(f"{where} has no samples")
        else:
            self._check_xy(xb, yb, where)

    # --- whole data sets ---------------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, augment=None, seed=None):
        """Train for `epochs` passes over the data; returns the History (also `model.history`).

        x, y: arrays (x a list of arrays for several inputs), or x a PyDataset / Sequence (batches of (x, y),
        read in order; the data set shuffles itself in its on_epoch_end) or a generator of (x, y) batches
        with steps_per_epoch. validation_data: (x_val, y_val), a PyDataset, or a generator with
        validation_steps; validation_split: the share of the array samples (taken from the end, before
        shuffling, as Keras does) held out instead.

        Array batches are drawn in a new random order every epoch unless shuffle=False. With `seed`, epoch e
        draws its order, its augmentations and its dropout masks (of Dropout layers without their own seed)
        from a generator of its own, np.random.default_rng([seed, e]), so a run resumed at initial_epoch=e
        (after load_model: initial_epoch=model.epochs_done) repeats what an unbroken run does from epoch e on;
        the shared generator (tinyseg.set_random_seed) is left as it was. Without a seed, everything draws
        from the shared generator.
        An epoch's loss and metrics are the batch values averaged with batch-size weights (Keras does the
        same, so with equal batches it is the plain mean of the batch losses).
        `augment(x, y, rng)`, if given, transforms each training batch (e.g. paired flips of images and masks);
        what it returns is checked like a streamed batch.
        `callbacks`: Keras's protocol (tinyseg/callbacks.py); `model.stop_training = True` ends training.
        A TerminateOnNaN is always among them: a NaN or infinite loss stops training.
        Before the first step everything that can be is checked (see the module docstring).
        """
        self._require_compiled("fit")
        epochs = count_argument(epochs, "epochs", minimum=1)
        initial_epoch = count_argument(initial_epoch, "initial_epoch", minimum=0)
        if initial_epoch >= epochs:
            raise ValueError(f"epochs must be a positive integer above initial_epoch={initial_epoch}, "
                             f"got {epochs!r}")
        self._check_flag(shuffle, "shuffle")
        verbose = self._check_verbose(verbose)
        if seed is not None:
            seed = count_argument(seed, "seed", minimum=0)
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be a function augment(x, y, rng) -> (x, y), got {augment!r}")
        if callbacks is not None and not isinstance(callbacks, (list, tuple)):
            raise TypeError(f"callbacks must be a list of callbacks, got {type(callbacks).__name__}")
        if isinstance(validation_split, (bool, np.bool_)) or not isinstance(validation_split, numbers.Real):
            raise TypeError(f"validation_split must be a number in [0, 1), got {validation_split!r}")
        with self._building():
            if validation_split:
                if validation_data is not None or is_stream(x) or not 0 < validation_split < 1:
                    raise ValueError("validation_split must be in (0, 1), for array data without validation_data, "
                                     f"got {validation_split!r}")
                if x is None or y is None or not isinstance(y, np.ndarray):
                    self._check_xy(x, y, "x")
                cut = num_samples(x) - int(round(num_samples(x) * validation_split))
                if cut < 1 or cut == num_samples(x):
                    raise ValueError(f"validation_split={validation_split!r} of {num_samples(x)} samples leaves "
                                     f"{cut} for training and {num_samples(x) - cut} for validation; both need one")
                validation_data = (take(x, slice(cut, None)), y[cut:])
                x, y = take(x, slice(0, cut)), y[:cut]
            train = self._source(x, y, batch_size, steps_per_epoch, shuffle, "x", "steps_per_epoch")
            val = None
            if validation_data is not None:
                if is_stream(validation_data):
                    vx, vy = validation_data, None
                elif isinstance(validation_data, (tuple, list)) and len(validation_data) == 2:
                    vx, vy = validation_data
                else:
                    raise ValueError("validation_data must be a pair (x_val, y_val), a PyDataset or a generator")
                given = validation_batch_size is not None
                val = self._source(vx, vy, validation_batch_size if given else batch_size, validation_steps, False,
                                   "validation_data[0]" if vy is not None else "validation_data", "validation_steps",
                                   batch_argument="validation_batch_size" if given else "batch_size")
            callback_list = list(callbacks or [])
            if not any(isinstance(cb, TerminateOnNaN) for cb in callback_list):
                callback_list.append(TerminateOnNaN())
            history = History()
            names = ["loss"] + self.metric_names
            params = {"epochs": epochs, "steps": len(train), "verbose": verbose}
            callback_list = CallbackList(callback_list + [history], self, params)

        # If the run fails before its first step (a bad first batch), the shuffle drawn for epoch 1 and the
        # history are put back too: such a fit changes nothing. After a step the model is that step's.
        undo = (self.history, self.stop_training, backend.rng(), backend.rng().bit_generator.state,
                self.optimizer.iterations)
        self.stop_training = False
        self.history = history
        try:
            callback_list.call("on_train_begin", {})
            first_run_compile(verbose)
            logs = {}
            for epoch in range(initial_epoch, epochs):
                shared = None
                if seed is None:
                    rng = backend.rng()
                else:
                    rng = np.random.default_rng([seed, epoch])
                    shared = backend.set_rng(rng)          # unseeded Dropout layers draw from it too
                try:
                    logs = self._fit_epoch(epoch, epochs, train, val, x, names, verbose, callback_list, augment,
                                           rng)
                finally:
                    if shared is not None:
                        backend.set_rng(shared)
                if self.stop_training:
                    break
            callback_list.call("on_train_end", dict(logs))
        except BaseException:
            if self.optimizer.iterations == undo[4]:
                self.history, self.stop_training = undo[0], undo[1]
                undo[2].bit_generator.state = undo[3]
            raise
        return history

    def _fit_epoch(self, epoch, epochs, train, val, x, names, verbose, callback_list, augment, rng):
        """One epoch of fit: its steps, its validation, its callbacks; returns its logs."""
        callback_list.call("on_epoch_begin", epoch, {})
        if verbose:
            print(f"Epoch {epoch + 1}/{epochs}")
        bar = ProgressBar(len(train), verbose)
        totals, seen, logs, steps = np.zeros(len(names)), 0, {}, 0
        for step, (xb, yb) in enumerate(train.epoch(rng)):
            callback_list.call("on_train_batch_begin", step, {})
            where = f"batch {step} of epoch {epoch + 1}"
            if augment is not None:
                xb, yb = augment(xb, yb, rng)
            if augment is not None or is_stream(x):
                with self._building():
                    self._check_batch(xb, yb, where)
            try:
                values = self.train_on_batch(xb, yb)
            except NonFiniteError as err:
                raise NonFiniteError(f"fit, {where}: {err}", err.parameter, err.step) from None
            totals += np.asarray(values) * len(yb)
            seen += len(yb)
            steps += 1
            logs = dict(zip(names, totals / seen))
            bar.update(step + 1, logs)
            callback_list.call("on_train_batch_end", step, dict(logs))
            if self.stop_training:
                break
        train.end_epoch()
        if steps == len(train):
            self.epochs_done = epoch + 1                 # a whole epoch: what a resumed fit starts after
        if val is not None and steps == len(train):      # an epoch stopped part-way is not validated
            logs.update({"val_" + k: v for k, v in self._evaluate_source(val, names).items()})
        bar.close(logs)
        callback_list.call("on_epoch_end", epoch, logs)
        return logs

    @staticmethod
    def _check_flag(value, argument):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{argument} must be True or False, got {value!r}")

    @staticmethod
    def _check_verbose(verbose):
        if isinstance(verbose, (bool, np.bool_)):
            return int(verbose)
        if verbose == "auto":
            return 1
        return count_argument(verbose, "verbose", minimum=0)

    def _evaluate_source(self, source, names):
        totals, seen = np.zeros(len(names)), 0
        for i, (xb, yb) in enumerate(source.epoch()):
            if not isinstance(source, ArrayBatches):           # arrays were checked whole, up front
                self._check_xy(xb, yb, f"batch {i}")
            totals += np.asarray(self.test_on_batch(xb, yb)) * len(yb)
            seen += len(yb)
        source.end_epoch()
        return dict(zip(names, (totals / seen).tolist()))

    def evaluate(self, x=None, y=None, batch_size=None, verbose=1, steps=None, return_dict=False):
        """Loss and metrics over the data, in inference mode: [loss, metric...] (a float if no metrics).

        x, y as for fit (arrays, a PyDataset, or a generator with steps); values are batch-size weighted means.
        """
        self._require_compiled("evaluate")
        verbose = self._check_verbose(verbose)
        names = ["loss"] + self.metric_names
        with self._building():
            source = self._source(x, y, batch_size, steps, False, "x", "steps")
        values = self._evaluate_source(source, names)
        if verbose:
            print(format_logs(values))
        if return_dict:
            return values
        values = list(values.values())
        return float(values[0]) if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose=0, steps=None):
        """The model's outputs (after its final activation) for x, batch by batch, in inference mode.

        x: arrays, or a PyDataset / generator (with steps) whose batches are x or (x, y)."""
        self._check_verbose(verbose)
        source = self._source(x, None, batch_size, steps, False, "x", "steps", want_y=False)
        outs = []
        for i, (xb, _) in enumerate(source.epoch()):
            if is_stream(x):
                self._check_x(xb, f"batch {i}")
            with one_blas_thread():
                out = self.call(xb, training=False)
            outs.append(out if self._list_outputs else [out])
        source.end_epoch()
        joined = [np.concatenate(parts, axis=0) for parts in zip(*outs)]
        return joined if self._list_outputs else joined[0]

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
    def summary(self, print_fn=print):
        """Print a Keras-like table: layer (type), output shape, parameter count, what it is connected to."""
        if self._graph is None:
            raise ValueError(f"summary: the model '{self.name}' is not built yet, so its shapes are unknown: "
                             "give the first layer input_shape=(...), start with keras.Input(shape), or run it "
                             "on data once")
        rows = self._summary_rows()
        headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if len(rows[0]) == 4 else [])
        widths = [max(len(h), *(len(r[i]) for r in rows)) + 2 for i, h in enumerate(headers)]
        width = sum(widths)
        total, trainable = self.count_params(), self.count_trainable_params()

        def line(cells):
            return "".join(f"{c:<{w}}" for c, w in zip(cells, widths)).rstrip()

        lines = [f'Model: "{self.name}"', "_" * width, line(headers), "=" * width]
        for i, row in enumerate(rows):
            lines.append(line(row))
            lines.append("_" * width if i < len(rows) - 1 else "=" * width)
        lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                  f"Non-trainable params: {total - trainable:,}", "_" * width]
        print_fn("\n".join(lines))

    def _summary_rows(self):
        graph = self._graph
        local = {}
        for node in [t.node for t in graph.inputs] + graph.nodes:
            local.setdefault(node, sum(1 for n in local if n.layer is node.layer))
        first_output = {t.node.layer: t for t in graph.inputs}
        for node in graph.nodes:
            first_output.setdefault(node.layer, node.output)
        rows = []
        for layer in graph.layers:
            calls = [n for n in graph.nodes if n.layer is layer]
            sources = ", ".join(f"{t.node.layer.name}[{local[t.node]}][0]" for n in calls for t in n.inputs)
            shape = first_output[layer].shape
            rows.append([f"{layer.name} ({type(layer).__name__})", str(shape), f"{layer.count_params():,}",
                         sources or "-"])
        return rows


MODEL_CLASSES["Model"] = MODEL_CLASSES["Functional"] = Model


def serialize_model(model):
    cls = type(model).__name__
    if MODEL_CLASSES.get(cls) is not type(model):
        raise ValueError(f"save: the model class {cls} is not a registered tinyseg model class")
    return {"class_name": cls, "config": model.get_config()}


def deserialize_model(spec):
    cls = MODEL_CLASSES.get(spec.get("class_name")) if isinstance(spec, dict) else None
    if cls is None or not isinstance(spec.get("config"), dict):
        raise ValueError(f"unknown model class {spec.get('class_name') if isinstance(spec, dict) else spec!r} in "
                         f"the model file (known: {sorted(MODEL_CLASSES)})")
    return cls.from_config(dict(spec["config"]))


__all__ = ["KerasTensor", "Model", "check_array", "deserialize_model", "serialize_model"]
