"""Training a model: `compile`, the step `train_on_batch`, and the loops `fit`, `evaluate` and `predict`.

The centre is one training step (train_on_batch below), for every batch (x, y):

    z = graph.forward(x, training=True, logits=fused)    # fused: the loss applies the output softmax/sigmoid
    L = loss(y, z, s) + sum(model.losses)                # s: sample weights or None (sample_weights.py);
                                                         # + the weight penalties (kernel_regularizer=...)
    graph.backward(dL/dz, logits=fused)                  # fills every layer's grads (+ each penalty's dR/dw)
    optimizer.apply_gradients(zip(grads, params))        # the only place weights change (trainable ones:
                                                         # model.trainable_pairs() leaves frozen layers out)

Why fuse: softmax followed by cross-entropy has the gradient (p - y)/N, computed from logits with log-sum-exp;
running the two separately would divide by probabilities that can round to 0 (compile_utils.py).
fit runs the step over batches (data.py) for some epochs, with callbacks (tinyseg/callbacks.py) around it.

What fit and evaluate report: each metric is stateful (tinyseg/metrics/metric.py). It is reset when an
epoch (or an evaluation) starts, every step adds its batch's counts, and the logs read result() of all
counted so far: an epoch's mean IoU is the IoU of the epoch's whole confusion matrix. The loss is kept the
same way (a Mean of the batch losses, each weighted by its batch's size, as Keras does). The progress line,
the History and evaluate's return show those same numbers.

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
import warnings
from dataclasses import dataclass

import numpy as np

from .. import backend, losses, optimizers
from .. import metrics as metrics_module
from ..backend import NonFiniteError
from ..callbacks import CallbackList, History, TerminateOnNaN
from ..graph import output_activation
from ..kernels.bands import one_blas_thread
from ..layers.activations import sigmoid, softmax
from ..metrics.metric import states_kept_on_failure
from ..validation import integer
from . import compile_utils, data, fit_arguments, sample_weights, subclassing
from .data import ArrayBatches
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
    class_weight: object = None      # fit's class_weight {class: weight}, or None (sample_weights.py)

    @property
    def history(self):
        return self.callbacks.callbacks[-1]      # Trainer._fit_callbacks puts the History last


class Trainer:
    """The training API every Model has (Keras's Trainer): compile, train_on_batch / test_on_batch, fit,
    evaluate, predict. Model (model.py) gives it the graph, the layers and their parameters."""

    # --- compile -----------------------------------------------------------------------------------------
    def compile(self, optimizer="adam", loss="categorical_crossentropy", metrics=None, weighted_metrics=None):
        """Choose the optimizer, the loss and the metrics, as Keras's `compile`.

        A loss that works on logits (cross-entropy, Dice) needs the model to end in its activation (softmax
        or sigmoid: it is then fused into the loss) or in none (the outputs are then taken as logits).
        Metrics follow the loss's ignore_index, and are tried on a batch holding it (compile_utils.py).
        weighted_metrics: metrics that are also given the sample weights of fit and evaluate (functions
        metric(y_true, y_pred, sample_weight=None)); a name already among `metrics` is logged as 'weighted_'
        + name, as in Keras. Nothing is set until everything has been checked.
        """
        optimizer, loss = optimizers.get(optimizer), losses.get(loss)
        metrics = compile_utils.metric_list(metrics)
        weighted = compile_utils.metric_list(weighted_metrics, "weighted_metrics")
        if self._graph is None and subclassing.is_subclassed(self):     # its output is known once call is recorded
            return subclassing.compile_when_built(self, optimizer, loss, metrics, weighted)
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
        weighted_fns = [compile_utils.weighted_metric_for(m, loss, outputs_are_logits) for m in weighted]
        compile_utils.try_metrics(self, metrics + weighted, metric_fns + weighted_fns, loss)
        self.optimizer, self.loss, self.fused = optimizer, loss, fused
        names = [compile_utils.metric_name(m, fn) for m, fn in zip(metrics, metric_fns)]
        self.metric_names = names + compile_utils.weighted_metric_names(
            names, [compile_utils.metric_name(m, fn) for m, fn in zip(weighted, weighted_fns)])
        self._metric_fns, self._metric_specs = metric_fns, metrics
        self._weighted_metric_fns = weighted_fns
        self._loss_tracker = metrics_module.Mean(name="loss")

    def _require_compiled(self, what):
        if self.loss is None:
            raise RuntimeError(f"{what}: call model.compile(optimizer=..., loss=...) first")

    # --- one batch ---------------------------------------------------------------------------------------
    def train_on_batch(self, x, y, sample_weight=None, class_weight=None):
        """One step of gradient descent on (x, y); returns [loss, metrics...] for this batch (metrics of the
        outputs before the step; the metrics are reset first, as Keras does). All or nothing: if anything
        raises, the model (and every metric's state) is as it was before the call.
        sample_weight: (N,) or (N, H, W); class_weight: {class: weight} (not both; sample_weights.py)."""
        self._require_compiled("train_on_batch")
        with states_kept_on_failure(self._trackers()):
            self.reset_metrics()
            self._train_step(x, y, sample_weight, class_weight)
        return self._results()

    def _train_step(self, x, y, sample_weight=None, class_weight=None):
        """The step of the module docstring; its loss and outputs are added to the metrics' state."""
        # tinyseg's threads share out the work; BLAS's own must not spin on their cores (kernels/bands.py)
        with all_or_nothing(self), one_blas_thread(), states_kept_on_failure(self._trackers()):
            graph, xs = self._graph_and_inputs(x, "call", training=True)
            z = graph.forward(xs, training=True, logits=self.fused)[0]                  # forward
            s = self._batch_weights(y, z.shape, sample_weight, class_weight)
            self._update_metrics(y, z, self.loss(y, z, s) + sum(self.losses), s)     # loss + penalties
            if not self.trainable_weights:                # all frozen: nothing to step (Keras warns likewise)
                warnings.warn(f"{self.name}: the model has no trainable weights; fit changes nothing",
                              stacklevel=2)
                return
            graph.backward([self.loss.backward()], logits=self.fused, input_grad=False)   # backward: dL/dw
            for layer in self.layers:                     # + dR/dw of each penalised weight (regularizers.py)
                layer.add_regularization_gradients()
            self.optimizer.apply_gradients(self.trainable_pairs(), names=self.trainable_names())   # the step

    def test_on_batch(self, x, y, sample_weight=None):
        """[loss, metrics...] for one batch in inference mode (the penalties counted in the loss, as Keras does;
        the metrics are reset first)."""
        self._require_compiled("test_on_batch")
        with states_kept_on_failure(self._trackers()):
            self.reset_metrics()
            self._test_step(x, y, sample_weight)
        return self._results()

    def _test_step(self, x, y, sample_weight=None):
        with one_blas_thread():
            graph, xs = self._graph_and_inputs(x, "call")
            z = graph.forward(xs, training=False, logits=self.fused)[0]
        with states_kept_on_failure(self._trackers()):
            self._update_metrics(y, z, self.loss(y, z, sample_weight) + sum(self.losses), sample_weight)

    def predict_on_batch(self, x):
        """The model's outputs for one batch x, in inference mode (Keras's predict_on_batch)."""
        data.check_inputs(self, x, "x", nonempty=True)
        with one_blas_thread():
            return self._forward(x, training=False)

    def _trackers(self):
        return [self._loss_tracker] + list(self._metric_fns) + list(self._weighted_metric_fns)

    def reset_metrics(self):
        """Every metric's state (and the loss's running mean) back to empty, as Keras's reset_metrics."""
        for m in self._trackers():
            m.reset_state()

    def _update_metrics(self, y, z, loss, sample_weight=None):
        """Add a batch to the state: its loss (weighted by its size) and its outputs to every metric (the
        weighted metrics get the batch's sample weights); the output activation is applied only if a metric
        needs it."""
        self._loss_tracker.update_state(loss, sample_weight=len(y))
        if not self._metric_fns and not self._weighted_metric_fns:
            return
        if self.fused:                                  # z are logits: the loss's activation makes the outputs
            z = softmax(z) if self.loss.activation == "softmax" else sigmoid(z)
        for m in self._metric_fns:
            m.update_state(y, z)
        for m in self._weighted_metric_fns:
            m.update_state(y, z, sample_weight)

    def _results(self):
        """[loss, metrics...]: each result() of all counted since the last reset."""
        return [m.result() for m in self._trackers()]

    def _logs(self):
        return dict(zip(["loss"] + self.metric_names, self._results()))

    def _batch_weights(self, y, pred_shape, sample_weight, class_weight):
        """The sample weights of one batch: sample_weight as given, or those of class_weight (sample_weights.py)."""
        if class_weight is None:
            return sample_weight
        if sample_weight is not None:
            raise ValueError("class_weight and sample_weight cannot be given together (as in Keras): fold the class "
                             "weights into sample_weight")
        table = sample_weights.check_class_weight(self, class_weight)
        return sample_weights.class_weights_of(table, y, pred_shape, self.loss.ignore_index)

    # --- whole data sets ---------------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, augment=None, seed=None, class_weight=None, sample_weight=None):
        """Train for `epochs` passes over the data; returns the History (also `model.history`).

        x, y: arrays (x a list of arrays for several inputs), or x a PyDataset / Sequence (batches of (x, y))
        or a generator of (x, y) batches with steps_per_epoch. validation_data: (x_val, y_val), a PyDataset,
        or a generator with validation_steps; validation_split: the share of the array samples (taken from
        the end, before shuffling, as Keras does) held out instead.

        sample_weight: (N,) one weight per sample, or (N, H, W) one per pixel; class_weight: {class index:
        weight}, each position weighing its true class's weight (1 for classes not named), for training only.
        The loss is then Keras's sum_m s_m l_m / M (tinyseg/losses/base.py); a PyDataset or generator may give
        (x, y, sample_weight) batches, and validation_data a third array. models/sample_weights.py has the rules.

        Array batches, and a PyDataset's batches (as Keras reads them), are drawn in a new random order every
        epoch unless shuffle=False; a generator's come as it yields them. With `seed`, epoch e
        draws its order, its augmentations and its dropout masks (of Dropout layers without their own seed)
        from a generator of its own, np.random.default_rng([seed, e]), so a run resumed at initial_epoch=e
        (after load_model: initial_epoch=model.epochs_done) repeats what an unbroken run does from epoch e on;
        the shared generator (tinyseg.set_random_seed) is left as it was. Without a seed, everything draws
        from the shared generator.
        An epoch's loss is the mean of its batch losses weighted by batch size (as Keras); its metrics are
        those of the whole epoch (the mean IoU of its one confusion matrix; the module docstring).
        `augment(x, y, rng)`, if given, transforms each training batch (e.g. paired flips of images and masks);
        what it returns is checked like a streamed batch.
        `callbacks`: Keras's protocol (tinyseg/callbacks.py); `model.stop_training = True` ends training.
        A TerminateOnNaN is always among them: a NaN or infinite loss stops training.
        Before the first step everything that can be is checked (see the module docstring).
        """
        self._require_compiled("fit")
        epochs, initial_epoch = fit_arguments.check_epochs(epochs, initial_epoch)
        verbose = fit_arguments.check_verbose(verbose)
        seed = None if seed is None else integer(seed, "seed", low=0)
        fit_arguments.check_fit_kinds(shuffle, augment, callbacks, validation_split)
        batch_size = fit_arguments.batch_size(batch_size)
        validation_batch_size = fit_arguments.batch_size(validation_batch_size, "validation_batch_size") \
            if validation_batch_size is not None else batch_size
        with unbuilt_on_failure(self):
            if validation_split:
                (x, y, sample_weight), validation_data = data.split_validation(
                    self, x, y, validation_split, validation_data, sample_weight)
            train = data.source(self, x, y, data.FIT, batch_size, steps_per_epoch, shuffle, sample_weight)
            self._check_fit_weights(x, y, sample_weight, class_weight, augment)
            xv, yv, swv = (None, None, None) if validation_data is None else data.validation_triple(validation_data)
            val = None if validation_data is None else data.source(
                self, xv, yv, data.VALIDATION, validation_batch_size, validation_steps, sample_weight=swv)
            run = FitRun(train, val, self._fit_callbacks(callbacks, epochs, train, val, verbose), epochs, verbose,
                         augment, class_weight)
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

    def _check_fit_weights(self, x, y, sample_weight, class_weight, augment):
        """fit's class_weight and sample_weight, before the first step (arrays whole: sample_weights.py)."""
        if class_weight is not None and sample_weight is not None:
            self._batch_weights(y, None, sample_weight, class_weight)            # raises: not both
        if sample_weight is not None and augment is not None and sample_weight.ndim > 1:
            raise ValueError("fit: per-pixel sample_weight cannot be used with augment (the weights would not "
                             "move with the pixels); give one weight per sample, (N,)")
        if class_weight is None or self._graph is None:      # an unbuilt Sequential: checked at its first batch
            return
        table = sample_weights.check_class_weight(self, class_weight)
        if not data.is_stream(x):
            per_position = sample_weights.class_weights_of(table, y, data._prediction_shape(self, x, len(y)),
                                                           self.loss.ignore_index)
            sample_weights.refuse_all_zero(per_position, "the weights class_weight gives y")

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
        bar = ProgressBar(len(run.train), run.verbose)
        logs, steps = {}, 0
        self.reset_metrics()
        for step, (xb, yb, swb) in enumerate(run.train.epoch(rng)):
            run.callbacks.call("on_train_batch_begin", step, {})
            self._fit_step(run, xb, yb, swb, f"batch {step} of epoch {epoch + 1}", rng)
            steps += 1
            logs = self._logs()                          # the epoch so far: one state, read once
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

    def _fit_step(self, run, xb, yb, swb, where, rng):
        """One step of fit on a batch, augmented and checked first if need be; added to the metrics' state."""
        if run.augment is not None:
            if swb is not None and swb.ndim > 1:       # a streamed batch's (arrays were checked whole)
                self._check_fit_weights(xb, yb, swb, None, run.augment)
            xb, yb = run.augment(xb, yb, rng)
        if run.augment is not None or not isinstance(run.train, ArrayBatches):    # arrays were checked whole
            with unbuilt_on_failure(self):
                data.check_batch(self, xb, yb, where, swb)
        try:
            self._train_step(xb, yb, swb, run.class_weight)
        except NonFiniteError as err:
            raise NonFiniteError(f"fit, {where}: {err}", err.parameter, err.step) from None

    def _evaluate_source(self, source):
        """{'loss': ..., metric: ...} of the whole source: the metrics reset, every batch added, read once."""
        self.reset_metrics()
        for i, (xb, yb, swb) in enumerate(source.epoch()):
            if not isinstance(source, ArrayBatches):           # arrays were checked whole, up front
                data.check_batch(self, xb, yb, f"batch {i}", swb)
            self._test_step(xb, yb, swb)
        source.end_epoch()
        return self._logs()

    def evaluate(self, x=None, y=None, batch_size=None, verbose=1, steps=None, return_dict=False,
                 sample_weight=None):
        """Loss and metrics over the data, in inference mode: [loss, metric...] (a float if no metrics).

        x, y as for fit (arrays, a PyDataset, or a generator with steps). The loss is the batch-size weighted
        mean of the batch losses; each metric is that of the whole set (its state over every batch: the mean
        IoU of one confusion matrix), the same number fit's validation gives for the same data.
        sample_weight: as for fit, (N,) or (N, H, W); the batches of a PyDataset may carry them instead.
        """
        self._require_compiled("evaluate")
        verbose = fit_arguments.check_verbose(verbose)
        batch_size = fit_arguments.batch_size(batch_size)
        with unbuilt_on_failure(self):
            source = data.source(self, x, y, data.EVALUATE, batch_size, steps, sample_weight=sample_weight)
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
        fit_arguments.check_verbose(verbose)
        source = data.source(self, x, None, data.PREDICT, fit_arguments.batch_size(batch_size), steps)
        outs = []
        for i, (xb, _, _) in enumerate(source.epoch()):
            if not isinstance(source, ArrayBatches):           # arrays were checked whole, up front
                data.check_inputs(self, xb, f"batch {i}")
            with one_blas_thread():
                out = self._forward(xb, training=False)
            outs.append(out if self._list_outputs else [out])
        source.end_epoch()
        joined = [np.concatenate(parts, axis=0) for parts in zip(*outs)]
        return joined if self._list_outputs else joined[0]
