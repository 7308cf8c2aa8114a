"""The scores of a confusion matrix: ratios of its counts, with 0/0 replaced as `absent` says (the package
docstring has the formulas and the policies)."""
import numpy as np

from .confusion import _as_class_indices, confusion_matrices_per_image

ABSENT_POLICIES = ("ignore", "zero", "one")


def _check_cm(cm):
    cm = np.asarray(cm)
    if cm.ndim < 2 or cm.shape[-1] != cm.shape[-2]:
        raise ValueError(f"a confusion matrix must be square, shape (K, K) (or a stack (..., K, K)), "
                         f"got shape {cm.shape}")
    if cm.dtype.kind not in "iuf" or (cm < 0).any():
        raise ValueError("a confusion matrix holds non-negative counts")
    return cm.astype(np.float64)


def _check_absent(absent):
    if absent not in ABSENT_POLICIES:
        raise ValueError(f"absent must be one of {ABSENT_POLICIES}, got {absent!r}")
    return {"ignore": np.nan, "zero": 0.0, "one": 1.0}[absent]


def _ratio(num, den, absent="ignore"):
    """num / den elementwise, with 0/0 replaced as `absent` says (NaN, 0 or 1), and no warnings."""
    num, den = np.broadcast_arrays(np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64))
    out = np.full(num.shape, _check_absent(absent))
    np.divide(num, den, out=out, where=den > 0)
    return out


def _mean(values):
    """Mean over the last axis leaving out NaN; NaN if nothing is left. A float for a single vector."""
    values = np.asarray(values, dtype=np.float64)
    defined = ~np.isnan(values)
    out = _ratio(np.where(defined, values, 0.0).sum(axis=-1), defined.sum(axis=-1))
    return float(out) if out.ndim == 0 else out


def _scalar(x):
    return float(x) if np.ndim(x) == 0 else x


def _average(per_class, average):
    if average is None:
        return per_class
    if average == "macro":
        return _mean(per_class)
    raise ValueError(f"average must be None (per class) or 'macro', got {average!r}")


def _counts(cm):
    """n_ii, t_i (row sums: true), p_i (column sums: predicted) and the total, for (..., K, K)."""
    cm = _check_cm(cm)
    return (np.diagonal(cm, axis1=-2, axis2=-1), cm.sum(axis=-1), cm.sum(axis=-2),
            cm.sum(axis=(-2, -1)))


def accuracy(cm, average="micro", absent="ignore"):
    """Fraction of samples classified correctly.

    average='micro' (default): sum_i n_ii / sum_ij n_ij, one number (the same as `pixel_accuracy`); for two
    classes this is (TP + TN) / (TP + TN + FP + FN).
    average=None: the one-vs-rest accuracy of each class, (TP_i + TN_i) / M, shape (..., K).
    An empty matrix gives 0/0, replaced as `absent` says.
    """
    tp, t, p, total = _counts(cm)
    if average == "micro":
        return _scalar(_ratio(tp.sum(axis=-1), total, absent))
    if average is None:
        tn = total[..., None] - t - p + tp           # M - TP - FP - FN, with FP = p - TP and FN = t - TP
        return _ratio(tp + tn, total[..., None], absent)
    raise ValueError(f"average must be 'micro' (overall) or None (per class), got {average!r}")


def pixel_accuracy(cm, absent="ignore"):
    """sum_i n_ii / sum_i t_i: the fraction of (non-ignored) pixels labelled correctly."""
    return accuracy(cm, average="micro", absent=absent)


def precision(cm, average=None, absent="ignore"):
    """precision_i = n_ii / p_i (0/0 when class i is never predicted). average=None: (..., K); 'macro': mean."""
    tp, _, p, _ = _counts(cm)
    return _average(_ratio(tp, p, absent), average)


def recall(cm, average=None, absent="ignore"):
    """recall_i = n_ii / t_i (0/0 when class i is absent from the truth). average=None: (..., K); 'macro': mean."""
    tp, t, _, _ = _counts(cm)
    return _average(_ratio(tp, t, absent), average)


def mean_class_accuracy(cm, absent="ignore"):
    """(1/K') sum_i n_ii / t_i: per-class accuracy (= recall) averaged over the classes present in the truth."""
    return recall(cm, average="macro", absent=absent)


def iou(cm, absent="ignore"):
    """IoU_i = n_ii / (t_i + p_i - n_ii), shape (..., K); 0/0 when class i is in neither truth nor prediction."""
    tp, t, p, _ = _counts(cm)
    return _ratio(tp, t + p - tp, absent)


def mean_iou(cm, absent="ignore"):
    """(1/K') sum_i IoU_i over the classes whose IoU is defined (all K unless absent='ignore')."""
    return _mean(iou(cm, absent))


def dice(cm, absent="ignore"):
    """Dice_i = 2 n_ii / (t_i + p_i), shape (..., K); 0/0 when class i is in neither truth nor prediction."""
    tp, t, p, _ = _counts(cm)
    return _ratio(2.0 * tp, t + p, absent)


def mean_dice(cm, absent="ignore"):
    """(1/K') sum_i Dice_i over the classes whose Dice is defined."""
    return _mean(dice(cm, absent))


def accuracy_score(y_true, y_pred):
    """Fraction of positions where y_true == y_pred; both integer class indices of the same shape.

    NaN for empty inputs. (For scores, take argmax first; with ignored pixels, use ConfusionMatrix.)
    """
    y_true = _as_class_indices("y_true", y_true)
    y_pred = _as_class_indices("y_pred", y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got y_true {y_true.shape} and "
                         f"y_pred {y_pred.shape}")
    return float(_ratio(np.count_nonzero(y_true == y_pred), y_true.size))


def per_image_mean_iou(y_true, y_pred, num_classes, ignore_index=None, absent="ignore"):
    """The mean IoU of each image computed on its own, averaged over images.

    y_true, y_pred: (N, H, W) (any (N, ...)) integer masks. Image b gets mIoU_b = mean_iou(n^(b)) from its own
    confusion matrix, so a class absent from image b is left out of mIoU_b (absent='ignore'); images with no
    defined IoU at all (every pixel ignored) are left out of the average:

        per-image mIoU = (1/N') sum_b mIoU_b

    Unlike the dataset-level `mean_iou(confusion_matrix(...))`, which pools all pixels before dividing, every
    image weighs the same here however many pixels its objects cover.
    """
    return _mean(mean_iou(confusion_matrices_per_image(y_true, y_pred, num_classes, ignore_index), absent))
