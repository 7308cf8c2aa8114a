"""Precision and Recall of binary decisions, with Keras's names and arguments.

A prediction is positive where y_pred > threshold (one count per threshold), a label where y_true != 0. Over
everything seen since the last reset, with w the sample weights (1 by default):

    TP = sum w [pred and true]      FP = sum w [pred and not true]      FN = sum w [not pred and true]
    precision = TP / (TP + FP)      of the positions called positive, the share that are
    recall    = TP / (TP + FN)      of the positive positions, the share found

Shapes: y_true and y_pred of one shape, (N,), (N, 1), (N, K) or (N, H, W, 1)... (a trailing axis of 1 on either
is dropped); y_pred scores in [0, 1] (probabilities), or logits with thresholds=0. class_id=c keeps only
y[..., c] of one-hot targets and scores (N, ..., K). sample_weight: None, a scalar, (N,) or y_true's shape.
Nothing counted: 0 (as Keras). `top_k` is Keras's too, but not supported here: it is refused by name.
"""
import numpy as np

from ..validation import ArgumentError, integer, real_number
from .confusion import sample_weights
from .iou_metrics import same_shape
from .metric import Metric, _ratio


def _thresholds(thresholds):
    if thresholds is None:
        return [0.5]
    many = isinstance(thresholds, (list, tuple, np.ndarray))
    values = list(thresholds) if many else [thresholds]
    if not values:
        raise ArgumentError("thresholds must be a number or a non-empty list of numbers, got []")
    return [real_number(t, "thresholds") for t in values]


class _BinaryCounts(Metric):
    """TP, FP and FN at each threshold (module docstring)."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        if top_k is not None:
            raise ArgumentError(f"top_k is not supported by tinyseg's {type(self).__name__}; leave it None "
                                f"(got {top_k!r})")
        self.init_thresholds = thresholds
        self.thresholds = _thresholds(thresholds)
        self.top_k = None
        self.class_id = None if class_id is None else integer(class_id, "class_id", low=0)
        n = len(self.thresholds)
        self._state = {"true_positives": np.zeros(n), "false_positives": np.zeros(n), "false_negatives": np.zeros(n)}
        super().__init__(name=name, dtype=dtype)

    def _counts(self, y_true, y_pred, sample_weight):
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        if y_pred.dtype.kind not in "iubf" or y_true.dtype.kind not in "iubf":
            raise TypeError("y_true and y_pred must hold numbers")
        if self.class_id is not None:
            if y_true.shape != y_pred.shape or y_pred.ndim < 2 or self.class_id >= y_pred.shape[-1]:
                raise ValueError(f"with class_id={self.class_id}, y_true and y_pred must be one-hot targets and "
                                 f"scores of one shape (N, ..., K) with K > {self.class_id}, got y_true "
                                 f"{y_true.shape} and y_pred {y_pred.shape}")
            y_true, y_pred = y_true[..., self.class_id], y_pred[..., self.class_id]
        y_true, y_pred = same_shape(y_true, y_pred)
        if np.isnan(y_pred).any():
            raise ValueError("y_pred contains NaN")
        w = sample_weights(sample_weight, y_true.shape)
        w = np.ones(y_true.shape) if w is None else w
        true = y_true != 0
        pred = y_pred[None] > np.asarray(self.thresholds).reshape((-1,) + (1,) * y_pred.ndim)   # (T, ...)
        axes = tuple(range(1, pred.ndim))
        return {"true_positives": (w * (pred & true)).sum(axis=axes),
                "false_positives": (w * (pred & ~true)).sum(axis=axes),
                "false_negatives": (w * (~pred & true)).sum(axis=axes)}

    def _per_threshold(self, num, den):
        values = [_ratio(a, b) for a, b in zip(num, den)]
        return values[0] if len(values) == 1 else values

    def get_config(self):
        return {**super().get_config(), "thresholds": self.init_thresholds, "top_k": self.top_k,
                "class_id": self.class_id}


class Precision(_BinaryCounts):
    """precision = TP / (TP + FP) over everything seen: of the positions predicted positive (y_pred > threshold),
    the (weighted) share that are positive. A list of thresholds gives a list of values."""

    def result(self):
        return self._per_threshold(self.true_positives, self.true_positives + self.false_positives)


class Recall(_BinaryCounts):
    """recall = TP / (TP + FN) over everything seen: of the positive positions (y_true != 0), the (weighted)
    share predicted positive (y_pred > threshold). A list of thresholds gives a list of values."""

    def result(self):
        return self._per_threshold(self.true_positives, self.true_positives + self.false_negatives)
