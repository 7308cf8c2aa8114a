"""Accuracy metrics with Keras's names and arguments: Accuracy, BinaryAccuracy, CategoricalAccuracy,
SparseCategoricalAccuracy.

Each turns a batch into one match per position (a sample, or a pixel of a mask), m = 1 where the predicted
class is the true one and 0 elsewhere, and keeps two numbers over everything seen since the last reset:

    total = sum_m w_m [pred_m = true_m],    count = sum_m w_m,    accuracy = total / count

with w the sample weights (1 by default; (N,) spreads a sample's weight over its pixels, (N, H, W) weighs each
pixel; a weight of 0 leaves a position out). For two classes, with TP, TN, FP, FN the counts of true/false
positives/negatives, this is

    accuracy = (TP + TN) / (TP + TN + FP + FN)

and with K classes, correct / all. Nothing counted: 0 (as Keras). The ratio is taken once, of the sums: an
epoch's accuracy is that of all its pixels, and a batch with fewer (weighted) pixels weighs less.
"""
import numpy as np

from ..validation import real_number
from .confusion import sample_weights
from .iou_metrics import same_shape
from .metric import Metric, _ratio


class _MatchMean(Metric):
    """The weighted fraction of matches (module docstring); a subclass says what a match is (`_matches`)."""

    _state = {"total": 0.0, "count": 0.0}

    def _matches(self, y_true, y_pred):
        raise NotImplementedError

    def _counts(self, y_true, y_pred, sample_weight):
        matches = self._matches(np.asarray(y_true), np.asarray(y_pred))
        w = sample_weights(sample_weight, matches.shape)
        if w is None:
            return {"total": float(matches.sum()), "count": float(matches.size)}
        return {"total": float((w * matches).sum()), "count": float(w.sum())}

    def result(self):
        return _ratio(self.total, self.count)


def _one_hot_shapes(y_true, y_pred):
    if y_pred.ndim == 0 or y_true.shape != y_pred.shape:
        raise ValueError(f"y_true must be one-hot of y_pred's shape (N, ..., K), got y_true {y_true.shape} and "
                         f"y_pred {y_pred.shape}")


class Accuracy(_MatchMean):
    """How often y_pred equals y_true, both labels of one shape: (N,) or masks (N, H, W) (a trailing axis of 1
    on either is dropped). accuracy = sum w [y_pred = y_true] / sum w."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def _matches(self, y_true, y_pred):
        y_true, y_pred = same_shape(y_true, y_pred)
        return y_true == y_pred


class BinaryAccuracy(_MatchMean):
    """How often (y_pred > threshold) equals y_true (0 or 1): y_true and y_pred of one shape, (N, 1) or
    (N, H, W, 1) (a trailing axis of 1 on either is dropped). With TP, TN, FP, FN counted at the threshold:
    (TP + TN) / (TP + TN + FP + FN)."""

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        self.threshold = real_number(threshold, "threshold")
        super().__init__(name=name, dtype=dtype)

    def _matches(self, y_true, y_pred):
        y_true, y_pred = same_shape(y_true, y_pred)
        return y_true == (y_pred > self.threshold)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


class CategoricalAccuracy(_MatchMean):
    """How often argmax(y_pred) equals argmax(y_true) over the last axis: one-hot y_true and scores y_pred,
    both (N, K) or (N, H, W, K)."""

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def _matches(self, y_true, y_pred):
        _one_hot_shapes(y_true, y_pred)
        return y_true.argmax(axis=-1) == y_pred.argmax(axis=-1)


class SparseCategoricalAccuracy(_MatchMean):
    """How often argmax(y_pred) over the last axis equals y_true: class indices y_true (N,) or (N, H, W)
    (or with a trailing 1), scores y_pred (N, K) or (N, H, W, K)."""

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def _matches(self, y_true, y_pred):
        if y_pred.ndim == 0 or y_true.shape not in (y_pred.shape[:-1], y_pred.shape[:-1] + (1,)):
            raise ValueError(f"y_true must be class indices of shape {y_pred.shape[:-1]} for scores y_pred of "
                             f"shape {y_pred.shape}, got y_true {y_true.shape}")
        return y_true.reshape(y_pred.shape[:-1]) == y_pred.argmax(axis=-1)
