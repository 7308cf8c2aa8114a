"""Callbacks: code that `fit` runs at fixed points of training, with Keras's names and protocol.

    on_train_begin(logs)                          once, before the first epoch
      on_epoch_begin(epoch, logs)                 epoch counts from 0
        on_train_batch_begin(batch, logs)
        on_train_batch_end(batch, logs)           logs: the running epoch means ('loss', metrics)
      on_epoch_end(epoch, logs)                   logs: the epoch's values, with 'val_...' if validated
    on_train_end(logs)

A callback sees the model as `self.model` and the run's settings as `self.params` ({'epochs', 'steps',
'verbose', 'metrics'}; 'metrics' names the logs fit writes at an epoch's end, as in Keras 2); setting
`self.model.stop_training = True` ends training after the current batch. `fit` returns its History
callback. Writing to a callback's `logs` adds an entry for the callbacks after it (and for History, which
always runs last).
"""
import csv
import math
import os
import string

import numpy as np


class CallbackError(RuntimeError):
    """A callback raised: the message names the callback and the hook; the original error is its __cause__."""


class Callback:
    """Base class: every hook does nothing. Subclass and override the hooks you need."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass


HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
         "on_train_batch_end")


class CallbackList:
    """The callbacks of one fit, called in order; an error is re-raised as a CallbackError naming its callback.

    Objects that are not Callback subclasses are accepted if they have some of the hooks (the others are
    skipped), as Keras 2's duck-typed callbacks did.
    """

    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not any(callable(getattr(cb, hook, None)) for hook in HOOKS):
                raise TypeError(f"callbacks: {cb!r} has none of the callback methods {HOOKS}")
            if hasattr(cb, "set_model"):
                cb.set_model(model)
            if hasattr(cb, "set_params"):
                cb.set_params(params)

    def call(self, hook, *args):
        for cb in self.callbacks:
            method = getattr(cb, hook, None)
            if method is None:
                continue
            try:
                method(*args)
            except Exception as err:
                raise CallbackError(f"callback {type(cb).__name__}.{hook} raised {type(err).__name__}: {err}") \
                    from err


class History(Callback):
    """Records every epoch's logs: `history.history['loss']`, `history.history['val_mean_iou']`, ...;
    `history.epoch` is the list of epoch numbers. `fit` returns it."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


# --- watching one number ---------------------------------------------------------------------------------
_HIGHER_IS_BETTER = ("acc", "iou", "dice", "precision", "recall", "auc")


def _better(mode, monitor):
    """A function (current, best, min_delta) -> bool for 'min', 'max' or 'auto' (max for accuracy, IoU, Dice,
    precision, recall; min for losses and anything else), as Keras decides."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        name = monitor[4:] if monitor.startswith("val_") else monitor
        mode = "max" if any(word in name for word in _HIGHER_IS_BETTER) else "min"
    if mode == "min":
        return (lambda current, best, delta: current < best - delta), math.inf
    return (lambda current, best, delta: current > best + delta), -math.inf


def check_logs_will_exist(params, names, who):
    """Before the first step: refuse a 'val_...' name that the epoch logs will not hold because the fit has no
    validation data (otherwise a KeyError would come only at the end of the first epoch). params: the fit's
    self.params, whose 'metrics' are the names of its epoch logs; other unknown names are left to the epoch's
    end, since a callback may add logs of its own."""
    logs = params.get("metrics") if isinstance(params, dict) else None
    if logs is None or any(n.startswith("val_") for n in logs):
        return
    for name in names:
        if name.startswith("val_") and name not in logs:
            raise ValueError(f"{who}: {name!r} is a validation value, but this fit has no validation data, so the "
                             f"epoch logs will hold only {sorted(logs)}; pass validation_data=(x_val, y_val) or "
                             f"validation_split=... to fit, or watch {name[4:]!r}")


def _monitored(logs, monitor, who):
    if monitor not in (logs or {}):
        raise KeyError(f"{who}: monitor={monitor!r} is not in the epoch's logs {sorted(logs or {})}; "
                       "'val_...' values need validation_data")
    return float(logs[monitor])


class ModelCheckpoint(Callback):
    """Save the model after an epoch: `ModelCheckpoint(filepath, monitor='val_loss', save_best_only=False,
    save_weights_only=False, mode='auto', verbose=0)`.

    `filepath` may hold `{epoch}` and log names as format fields, e.g. 'model-{epoch:02d}-{val_loss:.2f}.npz'
    (epoch counted from 1, as Keras prints it). Any extension is accepted (a Keras program's 'x.keras' gets a
    tinyseg file under that name; load it with tinyseg.saving.load_model). With save_best_only, a file is
    written only when the monitored value improves on the best so far.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        if save_freq != "epoch":
            raise ValueError(f"ModelCheckpoint: only save_freq='epoch' is supported, got {save_freq!r}")
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.is_better, self.best = _better(mode, monitor)
        if initial_value_threshold is not None:
            self.best = float(initial_value_threshold)

    def on_train_begin(self, logs=None):
        fields = [f for _, f, _, _ in string.Formatter().parse(self.filepath) if f]
        watched = ([self.monitor] if self.save_best_only else []) + [f.split(".")[0].split("[")[0] for f in fields]
        check_logs_will_exist(self.params, watched, "ModelCheckpoint")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            current = _monitored(logs, self.monitor, "ModelCheckpoint")
            if not self.is_better(current, self.best, 0.0):
                return
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {current:.5f}")
            self.best = current
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class EarlyStopping(Callback):
    """Stop when the monitored value has not improved for `patience` epochs: `EarlyStopping(monitor='val_loss',
    min_delta=0, patience=0, mode='auto', baseline=None, restore_best_weights=False, start_from_epoch=0)`.

    "Improved" means better than the best so far by more than min_delta. With restore_best_weights the model
    gets back the weights of its best epoch when training ends (if some epoch was best).
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        if not isinstance(patience, (int, np.integer)) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be a non-negative integer, got {patience!r}")
        self.monitor = monitor
        self.min_delta = abs(float(min_delta))
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = int(start_from_epoch)
        self.is_better, self._initial_best = _better(mode, monitor)

    def on_train_begin(self, logs=None):
        check_logs_will_exist(self.params, [self.monitor], "EarlyStopping")
        self.wait = 0
        self.stopped_epoch = 0
        self.best = self._initial_best if self.baseline is None else float(self.baseline)
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.start_from_epoch:
            return
        current = _monitored(logs, self.monitor, "EarlyStopping")
        self.wait += 1
        if self.is_better(current, self.best, self.min_delta):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class CSVLogger(Callback):
    """Append one row per epoch to a CSV file: `CSVLogger(filename, separator=',', append=False)`.

    The header is 'epoch' and the log names in sorted order; each row is flushed when written, so an
    interrupted run leaves whole rows only.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = bool(append)
        self._file = None
        self._keys = None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._keys = None
        self._header_written = exists

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = sorted(logs)
        writer = csv.writer(self._file, delimiter=self.separator)
        if not self._header_written:
            writer.writerow(["epoch"] + self._keys)
            self._header_written = True
        writer.writerow([epoch] + [logs.get(k, "NA") for k in self._keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


def _set_learning_rate(model, value, who):
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{who}: the learning rate must be a finite number > 0, got {value!r}")
    model.optimizer.learning_rate = value


class LearningRateScheduler(Callback):
    """Set the learning rate before every epoch: `LearningRateScheduler(schedule)` with
    `schedule(epoch, lr) -> new lr` (epoch from 0). The rate used is logged as 'learning_rate'."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be a function (epoch, lr) -> lr, got {schedule!r}")
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        _set_learning_rate(self.model, self.schedule(epoch, self.model.optimizer.learning_rate),
                           "LearningRateScheduler")
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{self.model.optimizer.learning_rate}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.learning_rate


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` when the monitored value has not improved for `patience`
    epochs: `ReduceLROnPlateau(monitor='val_loss', factor=0.1, patience=10, mode='auto', min_delta=1e-4,
    cooldown=0, min_lr=0.0)`. After a reduction, `cooldown` epochs pass before waiting starts again."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0):
        super().__init__()
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor!r}")
        self.monitor, self.factor, self.patience, self.verbose = monitor, float(factor), int(patience), verbose
        self.min_delta, self.cooldown, self.min_lr = float(min_delta), int(cooldown), float(min_lr)
        self.is_better, self._initial_best = _better(mode, monitor)

    def on_train_begin(self, logs=None):
        check_logs_will_exist(self.params, [self.monitor], "ReduceLROnPlateau")
        self.best, self.wait, self.cooldown_counter = self._initial_best, 0, 0

    def on_epoch_end(self, epoch, logs=None):
        current = _monitored(logs, self.monitor, "ReduceLROnPlateau")
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.learning_rate
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.is_better(current, self.best, self.min_delta):
            self.best, self.wait = current, 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            old = self.model.optimizer.learning_rate
            new = max(old * self.factor, self.min_lr)
            if new < old:
                _set_learning_rate(self.model, new, "ReduceLROnPlateau")
                if self.verbose:
                    print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
            self.cooldown_counter, self.wait = self.cooldown, 0


class LambdaCallback(Callback):
    """A callback from functions: `LambdaCallback(on_epoch_end=lambda epoch, logs: ...)`, and likewise
    on_epoch_begin, on_train_begin, on_train_end, on_train_batch_begin, on_train_batch_end."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None):
        super().__init__()
        given = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end)
        for hook, function in given.items():
            if function is not None:
                if not callable(function):
                    raise TypeError(f"LambdaCallback: {hook} must be a function, got {function!r}")
                setattr(self, hook, function)


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch's loss is NaN or infinite (Keras's TerminateOnNaN).

    fit always runs one (unless one is among its callbacks already): a loss that is not a number would make
    every later step meaningless. `stopped_at` is (epoch, batch, loss) once it has stopped a run, else None.
    """

    def __init__(self):
        super().__init__()
        self._epoch = None
        self.stopped_at = None

    def on_train_begin(self, logs=None):
        self.stopped_at = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            where = f"Batch {batch}" if self._epoch is None else f"Epoch {self._epoch + 1}, batch {batch}"
            print(f"{where}: invalid loss {loss}, terminating training (TerminateOnNaN). The weights are those "
                  "after this batch's step; a smaller learning rate or scaled inputs usually help.")
            self.stopped_at = (self._epoch, batch, float(loss))
            self.model.stop_training = True
