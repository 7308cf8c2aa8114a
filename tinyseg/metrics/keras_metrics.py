"""Keras-facing metrics: metric(y_true, y_out) on a model's targets and raw outputs, get(name) for them, and
by_name(name), the stateful metric compile(metrics=[...]) makes of a name."""
import numpy as np

from ..validation import flag
from .accuracy_metrics import Accuracy
from .confusion import _check_ignore_index, confusion_matrix, sample_weights
from .iou_metrics import MeanIoU
from .metric import Metric
from .scores import accuracy_score, mean_iou


def outputs_to_labels(y_true, y_out, from_logits=False):
    """Turn a model's targets and outputs into class indices: (true (...), predicted (...), K).

    y_out: scores (N, K) or (N, H, W, K), channels last. Predicted class = argmax over the last axis; with one
           channel, class 1 where the probability is above 1/2, and K = 2: y_out > 0.5 for probabilities (a
           model ending in a sigmoid), y_out > 0 for logits (from_logits=True: a model without an output
           activation whose loss applies the sigmoid; sigmoid(z) > 1/2 exactly when z > 0).
    y_true: one of
           - one-hot (or soft) targets of y_out's shape            -> argmax over the last axis
             (with one channel: 1 where y_true > 0.5)
           - class indices of shape y_out.shape[:-1], or y_out.shape[:-1] + (1,)   (Keras's "sparse" targets);
             floats are accepted when they are whole numbers.
    """
    y_out = np.asarray(y_out)
    y_true = np.asarray(y_true)
    if y_out.ndim < 2:
        raise ValueError(f"y_out must be scores with channels last, (N, K) or (N, H, W, K), got shape {y_out.shape}")
    k = y_out.shape[-1]
    if k == 1:
        pred = (y_out[..., 0] > (0.0 if from_logits else 0.5)).astype(np.int64)
        if y_true.shape not in (y_out.shape, y_out.shape[:-1]):
            raise ValueError(f"with one output channel, y_true must have shape {y_out.shape} or "
                             f"{y_out.shape[:-1]}, got {y_true.shape}")
        true = y_true.reshape(pred.shape) > 0.5
        return true.astype(np.int64), pred, 2
    pred = y_out.argmax(axis=-1)
    if y_true.shape == y_out.shape:                                     # one-hot
        return y_true.argmax(axis=-1), pred, k
    if y_true.shape in (y_out.shape[:-1], y_out.shape[:-1] + (1,)):     # sparse class indices
        true = y_true.reshape(pred.shape)
        if true.dtype.kind == "f":
            if not np.all(np.isfinite(true)) or np.any(true != np.round(true)):
                raise TypeError("sparse y_true holds non-integer values; pass class indices or one-hot targets")
            true = true.astype(np.int64)
        return true, pred, k
    raise ValueError(f"y_true must be one-hot of shape {y_out.shape} or class indices of shape "
                     f"{y_out.shape[:-1]}, got {y_true.shape}")


def accuracy_metric(y_true, y_out, ignore_index=None, from_logits=False):
    """Fraction of samples (or pixels) where the predicted class equals the true class; see outputs_to_labels
    for the shapes accepted. Positions whose true label is `ignore_index` count neither as right nor as wrong:

        accuracy = #{m in V : pred_m = true_m} / #V,    V = the positions with true_m != ignore_index

    (NaN when every position is ignored). from_logits: y_out are logits (see outputs_to_labels)."""
    true, pred, _ = outputs_to_labels(y_true, y_out, from_logits)
    if ignore_index is None:
        return accuracy_score(true, pred)
    keep = true != _check_ignore_index(ignore_index)
    return accuracy_score(true[keep], pred[keep])


def mean_iou_metric(y_true, y_out, ignore_index=None, from_logits=False):
    """Mean IoU over the batch (one confusion matrix for the whole batch); K = y_out.shape[-1], or 2 for one
    channel. Classes absent from both targets and predictions are left out; pixels whose true label is
    `ignore_index` are left out of the confusion matrix (as in ConfusionMatrix). from_logits: as in
    outputs_to_labels."""
    true, pred, k = outputs_to_labels(y_true, y_out, from_logits)
    return mean_iou(confusion_matrix(true, pred, k, ignore_index))


accuracy_metric.name = "accuracy"
mean_iou_metric.name = "mean_iou"

METRICS = {"accuracy": accuracy_metric, "acc": accuracy_metric, "mean_iou": mean_iou_metric}


def get(name, ignore_index=None, from_logits=False):
    """The metric callable for a name used in compile(metrics=[...]); a callable is returned unchanged.

    ignore_index: None gives the metric itself; an integer gives metric(y_true, y_out) with that ignore index
    bound (so compile can hand the loss's ignore_index to every metric), with the same `name`.
    from_logits: True binds from_logits=True (compile does, for a model whose outputs are logits that the
    loss turns into probabilities), so a one-channel output is thresholded at 0 instead of 0.5.
    """
    if callable(name):
        return name
    if not isinstance(name, str) or name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known metrics: {sorted(METRICS)}, or pass a function "
                         f"metric(y_true, y_out)")
    from_logits = flag(from_logits, "from_logits")
    fn = METRICS[name]
    if ignore_index is None and not from_logits:
        return fn
    if ignore_index is not None:
        ignore_index = _check_ignore_index(ignore_index)

    def metric(y_true, y_out):
        return fn(y_true, y_out, ignore_index=ignore_index, from_logits=from_logits)

    metric.name = fn.name
    metric.__name__ = fn.__name__ + ("" if ignore_index is None else f"_ignore_{ignore_index}") + \
        ("_from_logits" if from_logits else "")
    metric.__doc__ = f"{fn.__name__} with ignore_index={ignore_index}, from_logits={from_logits}.\n\n{fn.__doc__}"
    metric.ignore_index = ignore_index
    metric.from_logits = from_logits
    return metric


class NamedMetric(Metric):
    """The metric compile makes of a name, 'accuracy' (or 'acc') or 'mean_iou', accumulated over batches.

    Each batch's targets and scores become class indices as `outputs_to_labels` says (one-hot or sparse
    targets; argmax of the scores, or a threshold for one channel, K = 2), and the labels go to Keras's
    Accuracy or MeanIoU(K) (K read off the first batch's scores), the state of everything seen:

        accuracy = sum_m w_m [pred_m = true_m] / sum_m w_m                  (Accuracy)
        mean_iou = (1/K') sum_c TP_c / (TP_c + FP_c + FN_c)                 (MeanIoU, one confusion matrix)

    Positions whose true label is `ignore_index` get weight 0: they count in neither. This is what Keras's
    compile does with 'accuracy' (it picks Binary-, Sparse- or CategoricalAccuracy from the shapes of the first
    batch); 'mean_iou' is tinyseg's name (Keras has none).
    """

    def __init__(self, name, ignore_index=None, from_logits=False):
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; known metrics: {sorted(METRICS)}")
        self.ignore_index = None if ignore_index is None else _check_ignore_index(ignore_index)
        self.from_logits = flag(from_logits, "from_logits")
        self._kind = "mean_iou" if name == "mean_iou" else "accuracy"
        self._inner = None
        super().__init__(name=name)

    def _get_state(self):
        return {"inner": self._inner, "state": None if self._inner is None else self._inner._get_state()}

    def _set_state(self, state):
        self._inner = state["inner"]
        if self._inner is not None:
            self._inner._set_state(state["state"])

    def update_state(self, y_true, y_pred, sample_weight=None):
        true, pred, k = outputs_to_labels(y_true, y_pred, self.from_logits)
        w = sample_weights(sample_weight, true.shape)
        if self._kind == "accuracy" and self.ignore_index is not None:
            w = (1.0 if w is None else w) * (true != self.ignore_index)
        inner = self._inner
        if inner is None:
            inner = Accuracy(name=self.name) if self._kind == "accuracy" else \
                MeanIoU(k, name=self.name, ignore_class=self.ignore_index)
        elif self._kind == "mean_iou" and inner.num_classes != k:
            raise ValueError(f"metric {self.name!r}: this batch's outputs have {k} classes, earlier ones had "
                             f"{inner.num_classes}")
        inner.update_state(true, pred, w)           # raises before changing anything
        self._inner = inner

    def result(self):
        return 0.0 if self._inner is None else self._inner.result()

    def reset_state(self):
        if getattr(self, "_inner", None) is not None:
            self._inner.reset_state()

    def get_config(self):
        return {"name": self.name, "ignore_index": self.ignore_index, "from_logits": self.from_logits}


def by_name(name, ignore_index=None, from_logits=False):
    """The stateful metric for a name given to compile(metrics=[...]) (NamedMetric); unknown names are refused
    as by get."""
    get(name)
    return NamedMetric(name, ignore_index=ignore_index, from_logits=from_logits)
