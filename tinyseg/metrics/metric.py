"""Stateful metrics, Keras's protocol: a metric counts what it needs over many batches, and its value is read
once, off those counts.

    m = MeanIoU(num_classes=3)
    for x, y in batches:
        m.update_state(y, model.predict(x))     # adds this batch's counts to the state
    m.result()                                  # the value of everything seen since the last reset
    m.reset_state()                             # counts back to zero (fit does it at every epoch's start)

Why a state and not a mean of batch values: a ratio of sums is not the mean of the ratios. The IoU of a class
is TP / (TP + FP + FN) summed over the whole set; averaging the batches' IoUs weighs a batch where the class
covers 3 pixels as much as one where it covers 3000 (and differs from the whole set's IoU by about 0.015 on 20
masks in batches of 4). So each metric keeps counts (a confusion matrix, a weighted total and its weight), and
fit, evaluate, the progress line and the history all read the same `result()`.

A failed update_state changes nothing: `_counts(y_true, y_pred, sample_weight)` computes (and checks) this
batch's counts first, and update_state adds them only when all of them are there.

This module has the protocol (Metric), Mean (a weighted mean of values: fit's loss) and MeanMetricWrapper (a
function metric(y_true, y_pred) averaged over the samples, for functions given to compile).
"""
import contextlib

import numpy as np

from ..registry import Configurable
from ..validation import ArgumentError
from .confusion import sample_weights


class Metric(Configurable):
    """The protocol every metric follows (Keras's `keras.metrics.Metric`).

    A subclass names its state in `_state` (attribute name -> initial array) and defines
    `_counts(y_true, y_pred, sample_weight)`, returning this batch's increment of each state array (a dict),
    and `result()`, a float (or a list of floats) computed from the state.
    """

    _state = {}

    def __init__(self, dtype=None, name=None):
        if name is not None and not isinstance(name, str):
            raise ArgumentError(f"name must be a string or None, got {name!r}")
        self.name = name or _snake_case(type(self).__name__)
        self.dtype = "float32" if dtype is None else str(np.dtype(dtype))
        self.reset_state()

    # --- the protocol ----------------------------------------------------------------------------------
    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch to the state; all or nothing (nothing is added if anything raises)."""
        counts = self._counts(y_true, y_pred, sample_weight)
        for key, value in counts.items():
            setattr(self, key, getattr(self, key) + value)

    def result(self):
        raise NotImplementedError

    def reset_state(self):
        """The state back to what it was before any update_state."""
        for key, value in self._state.items():
            setattr(self, key, np.array(value, dtype=np.float64))

    def __call__(self, y_true, y_pred, sample_weight=None):
        """update_state, then result(): the value including this batch."""
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    def _get_state(self):
        return {key: np.array(getattr(self, key)) for key in self._state}

    def _set_state(self, state):
        for key, value in state.items():
            setattr(self, key, value)

    @property
    def variables(self):
        """The state arrays (copies)."""
        return [np.array(getattr(self, key)) for key in self._state]

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


def _snake_case(name):
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


@contextlib.contextmanager
def states_kept_on_failure(metrics):
    """Put every metric's state back as it was if the block raises (a training step that fails after its
    metrics were updated must leave them as they were)."""
    saved = [m._get_state() for m in metrics]
    try:
        yield
    except BaseException:
        for m, state in zip(metrics, saved):
            m._set_state(state)
        raise


def _ratio(num, den):
    """num / den, and 0 when nothing was counted (den = 0), as Keras's metrics report an empty state."""
    return float(num / den) if den > 0 else 0.0


class Mean(Metric):
    """The weighted mean of the values given: result = sum_m w_m v_m / sum_m w_m.

    update_state(values, sample_weight=None): values a number or an array (each element is one sample;
    with weights of the first axis's length, the other axes are averaged first, as Keras does). fit keeps
    its loss with it, each batch's loss weighted by the batch's size."""

    _state = {"total": 0.0, "count": 0.0}

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, values, sample_weight=None):
        values = np.asarray(values, dtype=np.float64)
        per_sample = values.reshape(values.shape[:1] + (-1,)).mean(axis=1) if values.ndim > 1 else values
        if sample_weight is None:
            w = np.ones_like(per_sample)
        else:
            w = np.asarray(sample_weights(sample_weight, per_sample.shape), dtype=np.float64)
        self.total, self.count = self.total + (w * per_sample).sum(), self.count + w.sum()

    def result(self):
        return _ratio(self.total, self.count)


class MeanMetricWrapper(Mean):
    """A function fn(y_true, y_pred, **kwargs) as a metric: the weighted mean of its values over all samples.

    fn returns one value per sample (N,) (or per position, averaged over each sample's positions), or one
    number for the whole batch, which then stands for each of the batch's N samples (so equal batches give the
    plain mean of the batch values, and a smaller last batch weighs less)."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        if not callable(fn):
            raise ArgumentError(f"fn must be a function fn(y_true, y_pred), got {fn!r}")
        self._fn, self._fn_kwargs = fn, kwargs
        super().__init__(name=name or getattr(fn, "name", getattr(fn, "__name__", "mean_metric_wrapper")),
                         dtype=dtype)

    weights_to_fn = False     # True (compile's weighted_metrics): fn weighs its own values, fn(..., sample_weight)

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self.weights_to_fn:
            fn_weights, sample_weight = {"sample_weight": sample_weight}, None
        else:
            fn_weights = {}
        values = np.asarray(self._fn(y_true, y_pred, **self._fn_kwargs, **fn_weights), dtype=np.float64)
        if values.ndim == 0:                        # one number for the batch: it stands for each sample
            values = np.full(len(np.asarray(y_true)), float(values))
        super().update_state(values, sample_weight)

    def get_config(self):
        return {**super().get_config(), "fn": getattr(self._fn, "__name__", repr(self._fn)), **self._fn_kwargs}
