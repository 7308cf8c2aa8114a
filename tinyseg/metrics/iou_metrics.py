"""IoU metrics with Keras's names and arguments: IoU, MeanIoU, OneHotIoU, OneHotMeanIoU.

Each keeps one confusion matrix n (K, K) for everything seen since the last reset (confusion.py counts a
batch's, weighted: n[i, j] = sum of the weights of the pixels of true class i predicted as j), and reads the
IoU off it once:

    TP_c = n_cc,   FP_c = sum_i n_ic - n_cc,   FN_c = sum_j n_cj - n_cc
    IoU_c = TP_c / (TP_c + FP_c + FN_c)                         (intersection / union of class c's pixels)
    result = (1/|C'|) sum_{c in C'} IoU_c

with C the classes asked for (target_class_ids; all K for the Mean ones) and C' those of C whose union is not
empty (a class in neither truth nor prediction has no IoU and is left out). Nothing counted: result 0.

Shapes: y_true (N, ...) class indices (sparse_y_true=True) or one-hot / scores (N, ..., K), argmax over
`axis`; y_pred the same with sparse_y_pred; after that both must have the same shape (N, ...), e.g. masks
(N, H, W). sample_weight: None, a scalar, (N,) (one weight a sample) or (N, ...) (one a pixel); finite, >= 0.

Where tinyseg differs from Keras on purpose: a label outside [0, K) (other than ignore_class) is an error
naming it, not silently left out; floats where class indices belong (scores given with sparse_y_pred=True,
Keras's default) are an error, not truncated to 0; fractional weights count as they are (Keras's default int
state truncates them, with a warning).
"""
import numpy as np

from ..validation import ArgumentError, flag, integer, positive_int
from .confusion import confusion_matrix
from .metric import Metric
from .scores import iou

_SPARSE_HINT = {"y_true": "sparse_y_true", "y_pred": "sparse_y_pred"}


def class_indices(name, y, sparse, axis):
    """y as integer class indices: argmax over `axis` when not sparse; whole-number floats accepted when sparse."""
    y = np.asarray(y)
    if y.dtype.kind not in "iubf":
        raise TypeError(f"{name} must hold numbers, got dtype {y.dtype}")
    if not sparse:
        if y.ndim == 0:
            raise ValueError(f"{name} must be one-hot or scores with a class axis ({_SPARSE_HINT[name]}=False), "
                             "got a scalar")
        return np.asarray(y.argmax(axis=axis))
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise TypeError(f"{name} holds non-integer values, but {_SPARSE_HINT[name]}=True expects class "
                            f"indices; for one-hot targets or scores pass {_SPARSE_HINT[name]}=False (argmax "
                            "over the class axis)")
        y = y.astype(np.int64)
    return y


def same_shape(y_true, y_pred):
    """The two label arrays with one shape; a trailing axis of 1 on either (Keras's (N, 1)) is dropped."""
    if y_true.shape != y_pred.shape:
        if y_true.shape == y_pred.shape + (1,):
            y_true = y_true[..., 0]
        elif y_pred.shape == y_true.shape + (1,):
            y_pred = y_pred[..., 0]
        else:
            raise ValueError(f"y_true and y_pred must be labels of one shape (after argmax for one-hot), got "
                             f"y_true {y_true.shape} and y_pred {y_pred.shape}")
    return y_true, y_pred


class IoU(Metric):
    """The mean IoU of the classes `target_class_ids`, from the confusion matrix of everything seen (module
    docstring): IoU_c = TP_c / (TP_c + FP_c + FN_c). One id gives that class's IoU.

    num_classes: K. target_class_ids: a list of class ids in [0, K). ignore_class: a label of y_true whose
    pixels count nowhere (e.g. 255 for void). sparse_y_true / sparse_y_pred: True for class indices, False for
    one-hot targets or scores (argmax over `axis`).
    """

    _state = {}

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None,
                 sparse_y_true=True, sparse_y_pred=True, axis=-1):
        self.num_classes = positive_int(num_classes, "num_classes")
        if isinstance(target_class_ids, (str, bytes)) or not hasattr(target_class_ids, "__len__") \
                or len(target_class_ids) == 0:
            raise ArgumentError(f"target_class_ids must be a non-empty list of class ids, got {target_class_ids!r}")
        self.target_class_ids = [integer(c, "target_class_ids", low=0, expected=f"class ids in [0, {num_classes})")
                                 for c in target_class_ids]
        if max(self.target_class_ids) >= self.num_classes:
            raise ArgumentError(f"target_class_ids must be class ids in [0, {num_classes}), got {target_class_ids!r}")
        self.ignore_class = None if ignore_class is None else integer(
            ignore_class, "ignore_class", expected="an integer label or None")
        self.sparse_y_true = flag(sparse_y_true, "sparse_y_true")
        self.sparse_y_pred = flag(sparse_y_pred, "sparse_y_pred")
        self.axis = integer(axis, "axis")
        self._state = {"total_cm": np.zeros((self.num_classes, self.num_classes))}
        super().__init__(name=name, dtype=dtype)

    def _counts(self, y_true, y_pred, sample_weight):
        y_true = class_indices("y_true", y_true, self.sparse_y_true, self.axis)
        y_pred = class_indices("y_pred", y_pred, self.sparse_y_pred, self.axis)
        y_true, y_pred = same_shape(y_true, y_pred)
        cm = confusion_matrix(y_true, y_pred, self.num_classes, self.ignore_class, sample_weight)
        return {"total_cm": cm}

    def result(self):
        per_class = iou(self.total_cm)[self.target_class_ids]      # NaN where the union is empty
        defined = per_class[~np.isnan(per_class)]
        return float(defined.mean()) if defined.size else 0.0

    fixed_arguments = ()      # the arguments a subclass sets itself, left out of its config

    def get_config(self):
        config = {**super().get_config(), "num_classes": self.num_classes, "target_class_ids": self.target_class_ids,
                  "ignore_class": self.ignore_class, "sparse_y_true": self.sparse_y_true,
                  "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}
        return {key: value for key, value in config.items() if key not in self.fixed_arguments}


class MeanIoU(IoU):
    """The mean IoU of all K classes over everything seen: (1/K') sum_c TP_c / (TP_c + FP_c + FN_c), K' the
    classes whose union is not empty (module docstring). Note Keras's default sparse_y_pred=True: for a model's
    scores (N, H, W, K) pass sparse_y_pred=False (or use the string 'mean_iou' in compile)."""

    fixed_arguments = ("target_class_ids",)

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_true=True,
                 sparse_y_pred=True, axis=-1):
        num_classes = positive_int(num_classes, "num_classes")
        super().__init__(num_classes, list(range(num_classes)), name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred, axis=axis)


class OneHotIoU(IoU):
    """IoU (of target_class_ids) for one-hot targets (N, ..., K): y_true's class is its argmax over `axis`."""

    fixed_arguments = ("sparse_y_true",)

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None,
                 sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, target_class_ids, name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=False, sparse_y_pred=sparse_y_pred, axis=axis)


class OneHotMeanIoU(MeanIoU):
    """MeanIoU for one-hot targets (N, ..., K): y_true's class is its argmax over `axis`."""

    fixed_arguments = ("target_class_ids", "sparse_y_true")

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, name=name, dtype=dtype, ignore_class=ignore_class, sparse_y_true=False,
                         sparse_y_pred=sparse_y_pred, axis=axis)
