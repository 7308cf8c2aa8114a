"""Training a model: `compile`, the step `train_on_batch`, and the loops `fit`, `evaluate` and `predict`.

The centre is one training step (train_on_batch below), for every batch (x, y):

    z = graph.forward(x, training=True, logits=fused)    # fused: the loss applies the output softmax/sigmoid
    L = loss(y, z) + sum(model.losses)                   # + the weight penalties (kernel_regularizer=...)
    graph.backward(dL/dz, logits=fused)                  # fills every layer's grads (+ each penalty's dR/dw)
    optimizer.apply_gradients(zip(grads, params))        # the only place weights change (trainable ones:
                                                         # model.trainable_pairs() leaves frozen layers out)

Why fuse: softmax followed by cross-entropy has the gradient (p - y)/N, computed from logits with log-sum-exp;
running the two separately would divide by probabilities that can round to 0 (compile_utils.py).
fit runs the step over batches (data.py) for some epochs, with callbacks (tinyseg/callbacks.py) around it.

A call that fails changes nothing. `fit` checks all it can before the first step: the arrays x and y (and
the validation arrays) whole, their shapes against the model's input and output, every label against the
loss (in [0, K) or its ignore_index), finiteness, and every argument. A streamed batch (PyDataset,
generator) or an augmented one is checked before its forward pass. One step is all or nothing
(rollback.all_or_nothing): if anything in it raises (a target, a metric, a gradient that is NaN or inf:
NonFiniteError, naming the layer and the parameter), BatchNorm's moving statistics and the random generators
are put back, and no weight or optimizer slot has changed, since the optimizer's update is the last thing a
step does and checks everything first. So a fit that fails before its first step leaves the model as it was
(a Sequential it built is unbuilt again), and one that fails at a later batch leaves it as the steps before
that batch made it. A loss that is NaN or inf stops fit (Keras's TerminateOnNaN, always on).

Resuming: `model.save(path)` keeps the optimizer's state and the number of epochs done; after
`model = load_model(path)`, `model.fit(x, y, epochs=4, initial_epoch=model.epochs_done, seed=s)` continues
exactly where an unbroken `fit(x, y, epochs=4, seed=s)` would be, because with a seed the random numbers of
epoch e (its data order, augmentations, dropout masks) are drawn from their own generator, seeded by (s, e).
"""
import contextlib
import numbers
import warnings
from dataclasses import dataclass

import numpy as np

from .. import backend, losses, optimizers
from ..backend import NonFiniteError
from ..callbacks import CallbackList, History, TerminateOnNaN
from ..graph import output_activation
from ..kernels.bands import one_blas_thread
from ..layers.activations import sigmoid, softmax
from . import compile_utils, data
from .data import ArrayBatches, count_argument
from .progress import ProgressBar, format_logs
from .rollback import all_or_nothing, unbuilt_on_failure, until_first_step

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


# --- checking fit's settings -------------------------------------------------------------------------------
def _check_verbose(verbose):
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    if verbose == "auto":
        return 1
    return count_argument(verbose, "verbose", minimum=0)


def _batch_size(value, argument="batch_size"):
    return 32 if value is None else count_argument(value, argument, minimum=1)


def _check_epochs(epochs, initial_epoch):
    epochs = count_argument(epochs, "epochs", minimum=1)
    initial_epoch = count_argument(initial_epoch, "initial_epoch", minimum=0)
    if initial_epoch >= epochs:
        raise ValueError(f"epochs must be a positive integer above initial_epoch={initial_epoch}, got {epochs!r}")
    return epochs, initial_epoch


def _check_fit_kinds(shuffle, augment, callbacks, validation_split):
    """The arguments of fit that must be of one kind: a flag, a function, a list, a number."""
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
    if augment is not None and not callable(augment):
        raise TypeError(f"augment must be a function augment(x, y, rng) -> (x, y), got {augment!r}")
    if callbacks is not None and not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of callbacks, got {type(callbacks).__name__}")
    if isinstance(validation_split, (bool, np.bool_)) or not isinstance(validation_split, numbers.Real):
        raise TypeError(f"validation_split must be a number in [0, 1), got {validation_split!r}")


@contextlib.contextmanager
def epoch_generator(seed, epoch):
    """The generator an epoch draws from: the shared one without a seed; with a seed, its own,
    np.random.default_rng([seed, epoch]), made the shared one for the epoch (unseeded Dropout layers draw
    from it too) and the shared one put back after."""
    if seed is None:
        yield backend.rng()
        return
    rng = np.random.default_rng([seed, epoch])
    shared = backend.set_rng(rng)
    try:
        yield rng
    finally:
        backend.set_rng(shared)


@dataclass
class FitRun:
    """What one call of fit runs with, checked: its batch sources, callbacks and settings."""

    train: object                    # the training batches (data.py)
    val: object                      # the validation batches, or None
    callbacks: CallbackList
    epochs: int
    verbose: int
    augment: object                  # augment(x, y, rng) -> (x, y), or None

    @property
    def history(self):
        return self.callbacks.callbacks[-1]      # Trainer._fit_callbacks puts the History last


class Trainer:
    """The training API every Model has (Keras's Trainer): compile, train_on_batch / test_on_batch, fit,
    evaluate, predict. Model (model.py) gives it the graph, the layers and their parameters."""

    # --- compile -----------------------------------------------------------------------------------------
    def compile(self, optimizer="adam", loss="categorical_crossentropy", metrics=None):
        """Choose the optimizer, the loss and the metrics, as Keras's `compile`.

        A loss that works on logits (cross-entropy, Dice) needs the model to end in its activation (softmax
        or sigmoid: it is then fused into the loss) or in none (the outputs are then taken as logits).
        Metrics follow the loss's ignore_index, and are tried on a batch holding it (compile_utils.py).
        Nothing is set until everything has been checked.
        """
        optimizer, loss = optimizers.get(optimizer), losses.get(loss)
        metrics = compile_utils.metric_list(metrics)
        final = output_activation(self.output_layer).name
        fused = compile_utils.fuses(loss, final)
        if self._graph is not None and len(self.outputs) == 1:
            try:
                loss.check_output_shape((None,) + tuple(self.output_shape))
            except ValueError as err:
                raise ValueError(f"compile: {err}") from None
        # A model without an output activation, whose loss applies one, outputs logits: a metric named by a
        # string is told so (a one-channel output is then class 1 where z > 0, not z > 0.5).
        outputs_are_logits = loss.activation is not None and final == "linear"
        metric_fns = [compile_utils.metric_for(m, loss, outputs_are_logits) for m in metrics]
        compile_utils.try_metrics(self, metrics, metric_fns, loss)
        self.optimizer, self.loss, self.fused = optimizer, loss, fused
        self.metric_names = [compile_utils.metric_name(m, fn) for m, fn in zip(metrics, metric_fns)]
        self._metric_fns, self._metric_specs = metric_fns, metrics

    def _require_compiled(self, what):
        if self.loss is None:
            raise RuntimeError(f"{what}: call model.compile(optimizer=..., loss=...) first")

    # --- one batch ---------------------------------------------------------------------------------------
    def train_on_batch(self, x, y):
        """One step of gradient descent on (x, y); returns [loss, metrics...] for this batch (metrics of the
        outputs before the step). All or nothing: if anything raises, the model is as it was before the call."""
        self._require_compiled("train_on_batch")
        # tinyseg's threads share out the work; BLAS's own must not spin on their cores (kernels/bands.py)
        with all_or_nothing(self), one_blas_thread():
            graph, xs = self._graph_and_inputs(x, "call")
            z = graph.forward(xs, training=True, logits=self.fused)[0]                  # forward
            values = [self.loss.forward(y, z) + sum(self.losses)] + self._metrics(y, z)   # loss + penalties
            if not self.trainable_weights:                # all frozen: nothing to step (Keras warns likewise)
                warnings.warn(f"{self.name}: the model has no trainable weights; fit changes nothing",
                              stacklevel=2)
                return values
            graph.backward([self.loss.backward()], logits=self.fused, input_grad=False)   # backward: dL/dw
            for layer in self.layers:                     # + dR/dw of each penalised weight (regularizers.py)
                layer.add_regularization_gradients()
            self.optimizer.apply_gradients(self.trainable_pairs(), names=self.trainable_names())   # the step
        return values

    def test_on_batch(self, x, y):
        """[loss, metrics...] for one batch in inference mode (the penalties counted in the loss, as Keras does)."""
        self._require_compiled("test_on_batch")
        with one_blas_thread():
            graph, xs = self._graph_and_inputs(x, "call")
            z = graph.forward(xs, training=False, logits=self.fused)[0]
        return [self.loss.forward(y, z) + sum(self.losses)] + self._metrics(y, z)

    def _metrics(self, y, z):
        """Metric values on the outputs; the output activation is applied only if a metric needs it."""
        if not self._metric_fns:
            return []
        if self.fused:                                  # z are logits: the loss's activation makes the outputs
            z = softmax(z) if self.loss.activation == "softmax" else sigmoid(z)
        return [float(fn(y, z)) for fn in self._metric_fns]

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
        epochs, initial_epoch = _check_epochs(epochs, initial_epoch)
        verbose = _check_verbose(verbose)
        seed = None if seed is None else count_argument(seed, "seed", minimum=0)
        _check_fit_kinds(shuffle, augment, callbacks, validation_split)
        batch_size = _batch_size(batch_size)
        validation_batch_size = _batch_size(validation_batch_size, "validation_batch_size") \
            if validation_batch_size is not None else batch_size
        with unbuilt_on_failure(self):
            if validation_split:
                (x, y), validation_data = data.split_validation(self, x, y, validation_split, validation_data)
            train = data.source(self, x, y, data.FIT, batch_size, steps_per_epoch, shuffle)
            val = None if validation_data is None else data.source(
                self, *data.validation_pair(validation_data), data.VALIDATION, validation_batch_size,
                validation_steps)
            run = FitRun(train, val, self._fit_callbacks(callbacks, epochs, train, val, verbose), epochs, verbose,
                         augment)
        with until_first_step(self):
            self.stop_training, self.history = False, run.history
            run.callbacks.call("on_train_begin", {})
            first_run_compile(verbose)
            logs = {}
            for epoch in range(initial_epoch, epochs):
                with epoch_generator(seed, epoch) as rng:
                    logs = self._fit_epoch(run, epoch, rng)
                if self.stop_training:
                    break
            run.callbacks.call("on_train_end", dict(logs))
        return run.history

    def _fit_callbacks(self, callbacks, epochs, train, val, verbose):
        """The callbacks of one fit: the user's, a TerminateOnNaN unless given, and the History last.

        params (Keras's): epochs, steps, verbose, and, as Keras 2 gave them, 'metrics': the names of the
        logs fit will write at an epoch's end (a callback that watches one can check it before training)."""
        callback_list = list(callbacks or [])
        if not any(isinstance(cb, TerminateOnNaN) for cb in callback_list):
            callback_list.append(TerminateOnNaN())
        names = ["loss"] + self.metric_names
        params = {"epochs": epochs, "steps": len(train), "verbose": verbose,
                  "metrics": names + (["val_" + n for n in names] if val is not None else [])}
        return CallbackList(callback_list + [History()], self, params)

    def _fit_epoch(self, run, epoch, rng):
        """One epoch of fit: its steps, its validation, its callbacks; returns its logs."""
        run.callbacks.call("on_epoch_begin", epoch, {})
        if run.verbose:
            print(f"Epoch {epoch + 1}/{run.epochs}")
        names = ["loss"] + self.metric_names
        bar = ProgressBar(len(run.train), run.verbose)
        totals, seen, logs, steps = np.zeros(len(names)), 0, {}, 0
        for step, (xb, yb) in enumerate(run.train.epoch(rng)):
            run.callbacks.call("on_train_batch_begin", step, {})
            values, n = self._fit_step(run, xb, yb, f"batch {step} of epoch {epoch + 1}", rng)
            totals, seen, steps = totals + np.asarray(values) * n, seen + n, steps + 1
            logs = dict(zip(names, totals / seen))
            bar.update(step + 1, logs)
            run.callbacks.call("on_train_batch_end", step, dict(logs))
            if self.stop_training:
                break
        run.train.end_epoch()
        if steps == len(run.train):
            self.epochs_done = epoch + 1                 # a whole epoch: what a resumed fit starts after
            if run.val is not None:                      # an epoch stopped part-way is not validated
                logs.update({"val_" + k: v for k, v in self._evaluate_source(run.val).items()})
        bar.close(logs)
        run.callbacks.call("on_epoch_end", epoch, logs)
        return logs

    def _fit_step(self, run, xb, yb, where, rng):
        """One step of fit on a batch, augmented and checked first if need be: ([loss, metrics...], samples)."""
        if run.augment is not None:
            xb, yb = run.augment(xb, yb, rng)
        if run.augment is not None or not isinstance(run.train, ArrayBatches):    # arrays were checked whole
            with unbuilt_on_failure(self):
                data.check_batch(self, xb, yb, where)
        try:
            return self.train_on_batch(xb, yb), len(yb)
        except NonFiniteError as err:
            raise NonFiniteError(f"fit, {where}: {err}", err.parameter, err.step) from None

    def _evaluate_source(self, source):
        names = ["loss"] + self.metric_names
        totals, seen = np.zeros(len(names)), 0
        for i, (xb, yb) in enumerate(source.epoch()):
            if not isinstance(source, ArrayBatches):           # arrays were checked whole, up front
                data.check_xy(self, xb, yb, f"batch {i}")
            totals += np.asarray(self.test_on_batch(xb, yb)) * len(yb)
            seen += len(yb)
        source.end_epoch()
        return dict(zip(names, (totals / seen).tolist()))

    def evaluate(self, x=None, y=None, batch_size=None, verbose=1, steps=None, return_dict=False):
        """Loss and metrics over the data, in inference mode: [loss, metric...] (a float if no metrics).

        x, y as for fit (arrays, a PyDataset, or a generator with steps); values are batch-size weighted means.
        """
        self._require_compiled("evaluate")
        verbose = _check_verbose(verbose)
        batch_size = _batch_size(batch_size)
        with unbuilt_on_failure(self):
            source = data.source(self, x, y, data.EVALUATE, batch_size, steps)
        values = self._evaluate_source(source)
        if verbose:
            print(format_logs(values))
        if return_dict:
            return values
        values = list(values.values())
        return float(values[0]) if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose=0, steps=None):
        """The model's outputs (after its final activation) for x, batch by batch, in inference mode.

        x: arrays, or a PyDataset / generator (with steps) whose batches are x or (x, y)."""
        _check_verbose(verbose)
        source = data.source(self, x, None, data.PREDICT, _batch_size(batch_size), steps)
        outs = []
        for i, (xb, _) in enumerate(source.epoch()):
            if not isinstance(source, ArrayBatches):           # arrays were checked whole, up front
                data.check_inputs(self, xb, f"batch {i}")
            with one_blas_thread():
                out = self.call(xb, training=False)
            outs.append(out if self._list_outputs else [out])
        source.end_epoch()
        joined = [np.concatenate(parts, axis=0) for parts in zip(*outs)]
        return joined if self._list_outputs else joined[0]
