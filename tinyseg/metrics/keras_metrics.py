"""Keras-facing metrics: metric(y_true, y_out) on a model's targets and raw outputs, and get(name) for
compile(metrics=[...])."""
import numpy as np

from ..validation import flag
from .confusion import _check_ignore_index, confusion_matrix
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
