"""Losses. Each is a mean over the batch (and over pixels for masks), as Keras reduces them.

Every loss has `forward(y_true, y_pred) -> float` (also callable as loss(y_true, y_pred), Keras's argument
order) and `backward() -> dL/dy_pred`. Cross-entropy and Dice losses take *logits* z (scores before the
softmax or sigmoid) and apply the activation themselves: `activation` names it, and a model whose last layer
ends in that activation hands the loss its input instead of its output (see models/model.py). That fusion is
what makes the gradient simple and stable:

    softmax + cross-entropy:  L = -(1/M) sum_m sum_k y_mk log p_mk,  log p = z - logsumexp(z)
                              dL/dz = (p - y) / M
    sigmoid + binary CE:      L = (1/M) sum_m [max(z,0) - z y + log(1 + exp(-|z|))]
                              dL/dz = (sigmoid(z) - y) / M

M is the number of predictions averaged over: N for (N, K) scores, N*H*W for per-pixel (N, H, W, K) scores.
log-sum-exp, never log(p + 1e-7): the log of a softmax is computed exactly, even for huge logits.

Targets can be checked without predictions: `loss.check_targets(y_true, pred_shape)` raises the error that
forward would raise for a batch of them, given the shape the predictions will have (None for an axis whose
size is not known yet). `fit` runs it on the whole data set before the first step, so a label out of range
in the last batch stops the run before it starts, not after many steps.

Every argument is checked when the loss is made: class weights finite, non-negative and not all zero,
ignore_index an integer, smooth and the loss weights finite, from_logits True, False or None.
"""
import math
import numbers

import numpy as np

from .kernels.softmax import log_softmax, softmax
from .layers.activations import sigmoid


# --- argument checks (when a loss is made) --------------------------------------------------------------
def _from_logits(value):
    if value is not None and not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"from_logits must be True, False or None, got {value!r}")
    return None if value is None else bool(value)


def _ignore_index(value):
    if value is None:
        return None
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"ignore_index must be an integer label (e.g. 255) or None, got {value!r}")
    return int(value)


def _finite_number(value, argument, positive=False):
    """A finite real number, > 0 if positive else >= 0."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argument} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{argument} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
    return value


def _class_weight(value):
    """A 1-D float64 array of finite, non-negative weights, one per class, not all zero (or None)."""
    if value is None:
        return None
    w = np.asarray(value)
    if w.dtype.kind not in "iuf" or w.ndim != 1 or w.size == 0:
        raise ValueError("class_weight must be a 1-D sequence of non-negative weights, one per class, got "
                         f"{value!r}")
    w = w.astype(np.float64)
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"class_weight must be a 1-D sequence of non-negative weights, one per class, finite; "
                         f"got {w.tolist()}")
    if not w.any():
        raise ValueError("class_weight is all zeros: every pixel would weigh nothing and the loss would be 0/0")
    return w


# --- target checks (whole data sets, or one batch) --------------------------------------------------------
def _shape_text(shape):
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _matches(shape, expected):
    """shape equals expected, where an expected None matches any size."""
    return len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))


def _as_target_array(y_true, name):
    """y_true as an array of real numbers (integers, floats or booleans), else a TypeError naming it."""
    y = np.asarray(y_true) if not isinstance(y_true, np.ndarray) else y_true
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{name}: y_true must hold numbers, got dtype {y.dtype}")
    return y


def _check_pred(y_pred, name):
    if not isinstance(y_pred, np.ndarray) or y_pred.dtype.kind != "f":
        raise TypeError(f"{name}: y_pred must be a float array, got "
                        f"{getattr(y_pred, 'dtype', type(y_pred).__name__)}")
    if not np.all(np.isfinite(y_pred)):
        raise ValueError(f"{name}: y_pred contains NaN or inf (did training diverge? try a smaller learning rate)")


def _check_labels(y_true, pred_shape, name, num_classes, ignore_index=None):
    """Integer class indices of shape pred_shape[:-1] (a trailing axis of 1 is accepted, as Keras does).

    Returns (labels, valid): the labels without that trailing axis, and where they are not ignore_index."""
    y_true = _as_target_array(y_true, name)
    pred_shape = tuple(pred_shape)
    if y_true.dtype.kind not in "iu":
        if y_true.dtype.kind == "f" and _matches(y_true.shape, pred_shape):
            raise TypeError(f"{name}: y_true looks one-hot (float, same shape as y_pred); use "
                            "categorical_crossentropy for one-hot targets")
        raise TypeError(f"{name}: y_true must hold integer class indices, got dtype {y_true.dtype}")
    if y_true.ndim == len(pred_shape) and y_true.shape[-1] == 1 and pred_shape[-1] != 1:
        y_true = y_true[..., 0]
    if not _matches(y_true.shape, pred_shape[:-1]):
        raise ValueError(f"{name}: y_true has shape {y_true.shape}; expected {_shape_text(pred_shape[:-1])} "
                         f"(y_pred {_shape_text(pred_shape)} without its class axis)")
    valid = y_true != ignore_index if ignore_index is not None else np.ones(y_true.shape, bool)
    bad = valid & ((y_true < 0) | (y_true >= num_classes))
    if bad.any():
        raise ValueError(f"{name}: y_true has label {y_true[bad].flat[0]} outside [0, {num_classes}) "
                         f"(y_pred has {num_classes} classes)"
                         + ("" if ignore_index is None else f" and not ignore_index={ignore_index}"))
    return y_true, valid


def _check_unit_values(y, name, hint):
    """Every value finite and in [0, 1]."""
    if y.dtype.kind == "b" or y.size == 0:
        return
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError(f"{name}: y_true contains NaN or inf")
    if y.min() < 0 or y.max() > 1:
        raise ValueError(f"{name}: y_true must lie in [0, 1] ({hint}), got values in [{y.min()}, {y.max()}]")


def _binary_shape(y_true, pred_shape, name):
    """(N, H, W) masks are accepted for (N, H, W, 1) logits; anything else must have the logits' shape."""
    pred_shape = tuple(pred_shape)
    if pred_shape[-1] == 1 and _matches(y_true.shape, pred_shape[:-1]):
        return y_true[..., None]
    if not _matches(y_true.shape, pred_shape):
        raise ValueError(f"{name}: y_true has shape {y_true.shape}, expected {_shape_text(pred_shape)}")
    return y_true


def _binary_targets(y_true, y_pred, name):
    """Targets in [0, 1] of y_pred's shape, in y_pred's dtype."""
    y = _binary_shape(_as_target_array(y_true, name), y_pred.shape, name)
    _check_unit_values(y, name, "binary masks as 0/1, not 0/255")
    return y.astype(y_pred.dtype)


def _one_hot(labels, num_classes, valid, dtype):
    """(…,) integer labels -> (…, K) one-hot; ignored positions are all zeros."""
    out = np.zeros(labels.shape + (num_classes,), dtype=dtype)
    np.put_along_axis(out, np.where(valid, labels, 0)[..., None], 1, axis=-1)
    out *= valid[..., None]
    return out


class Loss:
    """Base class: remembers what backward needs.

    `from_logits` (Keras's argument of the cross-entropies) states what the model outputs: True, raw scores
    (the model must end without an activation); False, probabilities (it must end in the loss's activation,
    which compile then fuses into the loss); None (the default), either. The loss itself always works on
    logits, so both ways compute the same numbers.
    """

    activation = None        # 'softmax' / 'sigmoid': the loss applies it to its input (logits)
    name = "loss"
    from_logits = None
    ignore_index = None      # a label whose positions count for nothing (losses on class indices)

    def __call__(self, y_true, y_pred):
        return self.forward(y_true, y_pred)

    def forward(self, y_true, y_pred):
        raise NotImplementedError

    def backward(self):
        raise NotImplementedError

    def check_targets(self, y_true, pred_shape):
        """Raise what forward would raise for these targets and predictions of `pred_shape` (None: any size)."""

    def check_output_shape(self, pred_shape):
        """Raise if this loss cannot work on predictions of `pred_shape` at all (compile asks, once)."""

    def get_config(self):
        return {}


class CategoricalCrossentropy(Loss):
    """Softmax cross-entropy with one-hot (or soft) targets.

    y_true: (N, K) or (N, H, W, K) floats in [0, 1], normally one-hot rows; y_pred: logits of the same shape.
    L = -(1/M) sum_m sum_k y_mk log softmax(z_m)_k,    dL/dz = (softmax(z) * sum_k y_k - y) / M,
    which is (softmax(z) - y) / M for rows that sum to 1.
    """

    activation = "softmax"
    name = "categorical_crossentropy"

    def __init__(self, from_logits=None):
        self.from_logits = _from_logits(from_logits)

    def check_targets(self, y_true, pred_shape):
        y_true = _as_target_array(y_true, self.name)
        pred_shape = tuple(pred_shape)
        if y_true.dtype.kind in "iub" or _matches(y_true.shape, pred_shape[:-1]) or (
                y_true.ndim == len(pred_shape) and y_true.shape[-1] == 1 and pred_shape[-1] != 1):
            raise TypeError(
                f"{self.name}: y_true holds integer class labels (shape {y_true.shape}, dtype {y_true.dtype}) "
                f"but this loss expects one-hot targets of shape {_shape_text(pred_shape)}. Use "
                "loss='sparse_categorical_crossentropy' for integer labels, or convert them with "
                "tinyseg.utils.to_categorical(y, num_classes).")
        if not _matches(y_true.shape, pred_shape):
            raise ValueError(f"{self.name}: y_true has shape {y_true.shape}, expected {_shape_text(pred_shape)}")
        if y_true.size and (not np.all(np.isfinite(y_true)) or y_true.min() < 0 or y_true.max() > 1):
            raise ValueError(f"{self.name}: y_true must hold probabilities in [0, 1] (one-hot rows)")
        return y_true

    def forward(self, y_true, y_pred):
        _check_pred(y_pred, self.name)
        y_true = self.check_targets(y_true, y_pred.shape).astype(y_pred.dtype, copy=False)
        logp = log_softmax(y_pred)
        m = y_pred.size // y_pred.shape[-1]
        self._cache = (np.exp(logp), y_true, m)
        return float(-(y_true * logp).sum() / m)

    def backward(self):
        p, y, m = self._cache
        # d/dz of -sum_k y_k log p_k is p * sum_k y_k - y: (p - y) for rows that sum to 1 (one-hot)
        return (p * y.sum(axis=-1, keepdims=True) - y) / m

    def get_config(self):
        return {"from_logits": self.from_logits}


class SparseCategoricalCrossentropy(Loss):
    """Softmax cross-entropy with integer class labels, per image or per pixel.

    y_true: (N,) or (N, H, W) integers in [0, K) (or `ignore_index`); y_pred: logits (N, K) or (N, H, W, K).
    With class weights w (default all 1) and the set V of positions whose label is not ignore_index:

        L = sum_{m in V} w_{y_m} * (-log softmax(z_m)_{y_m})  /  sum_{m in V} w_{y_m}
        dL/dz_m = w_{y_m} (softmax(z_m) - onehot(y_m)) / sum_{m in V} w_{y_m}      (0 for ignored positions)

    So the mean is over the pixels that are not ignored, weighted (PyTorch's `weight` + `ignore_index`
    convention; with no weights and nothing ignored it is the plain mean, Keras's). A batch in which every
    pixel is ignored has loss 0 and gradient 0.
    """

    activation = "softmax"
    name = "sparse_categorical_crossentropy"

    def __init__(self, class_weight=None, ignore_index=None, from_logits=None):
        self.from_logits = _from_logits(from_logits)
        self.class_weight = _class_weight(class_weight)
        self.ignore_index = _ignore_index(ignore_index)

    def check_output_shape(self, pred_shape):
        k = tuple(pred_shape)[-1]
        if self.class_weight is not None and len(self.class_weight) != k:
            raise ValueError(f"{self.name}: class_weight has {len(self.class_weight)} entries, y_pred {k} classes")

    def check_targets(self, y_true, pred_shape):
        self.check_output_shape(pred_shape)
        return _check_labels(y_true, pred_shape, self.name, tuple(pred_shape)[-1], self.ignore_index)

    def forward(self, y_true, y_pred):
        _check_pred(y_pred, self.name)
        k = y_pred.shape[-1]
        labels, valid = self.check_targets(y_true, y_pred.shape)
        onehot = _one_hot(labels, k, valid, y_pred.dtype)
        w = valid.astype(y_pred.dtype)
        if self.class_weight is not None:
            w = w * self.class_weight.astype(y_pred.dtype)[np.where(valid, labels, 0)]
        total = w.sum()
        logp = log_softmax(y_pred)
        self._cache = (np.exp(logp), onehot, w, total)
        if total == 0:
            return 0.0
        # log p at each position's own label (ignored positions read class 0 and get weight 0)
        logp_true = np.take_along_axis(logp, np.where(valid, labels, 0)[..., None], axis=-1)[..., 0]
        return float(-(w * logp_true).sum() / total)

    def backward(self):
        p, onehot, w, total = self._cache
        if total == 0:
            return np.zeros_like(p)
        return (p - onehot) * (w / total)[..., None]

    def get_config(self):
        return {"class_weight": None if self.class_weight is None else self.class_weight.tolist(),
                "ignore_index": self.ignore_index, "from_logits": self.from_logits}


class BinaryCrossentropy(Loss):
    """Sigmoid cross-entropy on logits: one independent yes/no per output (binary masks: (N, H, W, 1)).

    L = mean( max(z, 0) - z*y + log(1 + exp(-|z|)) )   (= -y log s - (1-y) log(1-s), s = sigmoid(z), written so
    that no exp overflows);  dL/dz = (sigmoid(z) - y) / M, M = number of entries.
    """

    activation = "sigmoid"
    name = "binary_crossentropy"

    def __init__(self, from_logits=None):
        self.from_logits = _from_logits(from_logits)

    def check_targets(self, y_true, pred_shape):
        y = _binary_shape(_as_target_array(y_true, self.name), pred_shape, self.name)
        _check_unit_values(y, self.name, "binary masks as 0/1, not 0/255")

    def forward(self, y_true, y_pred):
        _check_pred(y_pred, self.name)
        y = _binary_targets(y_true, y_pred, self.name)
        z = y_pred
        self._cache = (sigmoid(z), y, z.size)
        return float((np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean())

    def backward(self):
        s, y, m = self._cache
        return (s - y) / m

    def get_config(self):
        return {"from_logits": self.from_logits}


class MeanSquaredError(Loss):
    """L = mean((y_pred - y_true)^2) over every entry;  dL/dy_pred = 2 (y_pred - y_true) / M.

    The difference and the mean of its squares are computed in float64 and scaled by the largest |difference|
    s, L = s^2 mean((d / s)^2): float32 predictions 1e30 away from their targets give L = 1e60 (a float64
    number), where squaring in float32 would give inf.
    """

    name = "mean_squared_error"

    def check_targets(self, y_true, pred_shape):
        y_true = _as_target_array(y_true, self.name)
        if not _matches(y_true.shape, tuple(pred_shape)):
            raise ValueError(f"{self.name}: y_true has shape {y_true.shape}, expected {_shape_text(pred_shape)}")
        if y_true.dtype.kind == "f" and not np.all(np.isfinite(y_true)):
            raise ValueError(f"{self.name}: y_true contains NaN or inf")
        return y_true

    def forward(self, y_true, y_pred):
        _check_pred(y_pred, self.name)
        y_true = self.check_targets(y_true, y_pred.shape)
        diff = np.subtract(y_pred, y_true, dtype=np.float64)
        scale = float(np.max(np.abs(diff))) if diff.size else 0.0
        self._diff, self._dtype = diff, y_pred.dtype
        if scale == 0:
            return 0.0
        return scale * (scale * float(np.mean(np.square(diff / scale))))

    def backward(self):
        # may overflow the predictions' dtype (a float32 error beyond 1.7e38): the inf is then refused, by
        # name, by the optimizer's check of the gradients, so numpy need not warn here as well
        with np.errstate(over="ignore"):
            return (2 * self._diff / self._diff.size).astype(self._dtype)


class DiceLoss(Loss):
    """Soft Dice loss on logits, computed over the whole batch.

    Multiclass (y_pred (N, H, W, K) logits, y_true (N, H, W) labels): p = softmax(z), t = onehot(y); over the
    pixels V that are not `ignore_index`,

        I_k = sum_V p_k t_k,   S_k = sum_V p_k + sum_V t_k,   D_k = (2 I_k + s) / (S_k + s)
        L = 1 - (1/K) sum_k D_k

    Binary (y_pred (N, H, W, 1), y_true (N, H, W) of 0/1): p = sigmoid(z), one class (the foreground).

    Absent classes: every class is in the mean. A class absent from the batch's truth has I_k = 0, so
    D_k = s / (sum p_k + s): near 1 when the model predicts none of it, lower the more it predicts it.
    That is why `smooth` (s) must be > 0.

    Gradient: dD_k/dp_k = (2 t_k (S_k + s) - (2 I_k + s)) / (S_k + s)^2 on each pixel, then through the
    softmax (or sigmoid) Jacobian, as in layers/activations.py.
    """

    name = "dice"

    def __init__(self, smooth=1.0, ignore_index=None, mode="multiclass"):
        if isinstance(smooth, (bool, np.bool_)) or not isinstance(smooth, numbers.Real):
            raise TypeError(f"smooth must be a real number, got {smooth!r}")
        if not 0 < smooth < math.inf:
            raise ValueError(f"smooth must be > 0 and finite (it defines the Dice of absent classes), got {smooth!r}")
        self.smooth = float(smooth)
        if mode not in ("multiclass", "binary"):
            raise ValueError(f"mode must be 'multiclass' or 'binary', got {mode!r}")
        self.ignore_index = _ignore_index(ignore_index)
        self.mode = mode
        self.activation = "softmax" if mode == "multiclass" else "sigmoid"

    def check_output_shape(self, pred_shape):
        if self.mode == "binary" and tuple(pred_shape)[-1] != 1:
            raise ValueError(f"{self.name}: mode='binary' expects one logit channel, got {_shape_text(pred_shape)}")

    def check_targets(self, y_true, pred_shape):
        pred_shape = tuple(pred_shape)
        self.check_output_shape(pred_shape)
        if self.mode == "multiclass":
            return _check_labels(y_true, pred_shape, self.name, pred_shape[-1], self.ignore_index)
        y_true = _as_target_array(y_true, self.name)
        valid = (y_true != self.ignore_index) if self.ignore_index is not None else np.ones(y_true.shape, bool)
        t = _binary_shape(np.where(valid, y_true, 0), pred_shape, self.name)
        _check_unit_values(t, self.name, "binary masks as 0/1, not 0/255")
        return t, valid.reshape(t.shape[:-1])

    def forward(self, y_true, y_pred):
        _check_pred(y_pred, self.name)
        if self.mode == "multiclass":
            labels, valid = self.check_targets(y_true, y_pred.shape)
            t = _one_hot(labels, y_pred.shape[-1], valid, y_pred.dtype)
            p = softmax(y_pred)
        else:
            t, valid = self.check_targets(y_true, y_pred.shape)
            t = t.astype(y_pred.dtype)
            p = sigmoid(y_pred)
        v = valid[..., None].astype(y_pred.dtype)
        axes = tuple(range(y_pred.ndim - 1))
        inter = (p * t * v).sum(axis=axes)
        total = (p * v).sum(axis=axes) + (t * v).sum(axis=axes)
        dice = (2 * inter + self.smooth) / (total + self.smooth)
        self._cache = (p, t, v, inter, total)
        return float(1 - dice.mean())

    def backward(self):
        p, t, v, inter, total = self._cache
        k = p.shape[-1]
        s = self.smooth
        dp = -(2 * t * (total + s) - (2 * inter + s)) / (total + s) ** 2 / k * v      # dL/dp
        if self.activation == "softmax":
            return p * (dp - (dp * p).sum(axis=-1, keepdims=True))
        return dp * p * (1 - p)

    def get_config(self):
        return {"smooth": self.smooth, "ignore_index": self.ignore_index, "mode": self.mode}


class CEDiceLoss(Loss):
    """L = ce_weight * SparseCategoricalCrossentropy + dice_weight * DiceLoss (multiclass), on the same logits.

    The gradient is the same weighted sum of the two gradients: cross-entropy gives every pixel a steady
    signal, Dice keeps small classes from being drowned by the background.
    """

    activation = "softmax"
    name = "ce_dice"

    def __init__(self, ce_weight=1.0, dice_weight=1.0, class_weight=None, ignore_index=None, smooth=1.0):
        self.ce = SparseCategoricalCrossentropy(class_weight=class_weight, ignore_index=ignore_index)
        self.dice = DiceLoss(smooth=smooth, ignore_index=ignore_index)
        self.ce_weight = _finite_number(ce_weight, "ce_weight")
        self.dice_weight = _finite_number(dice_weight, "dice_weight")
        if self.ce_weight == 0 and self.dice_weight == 0:
            raise ValueError("ce_weight and dice_weight are both 0: the loss would be 0 whatever the model does")
        self.ignore_index = self.ce.ignore_index

    def check_output_shape(self, pred_shape):
        self.ce.check_output_shape(pred_shape)

    def check_targets(self, y_true, pred_shape):
        return self.ce.check_targets(y_true, pred_shape)

    def forward(self, y_true, y_pred):
        return self.ce_weight * self.ce.forward(y_true, y_pred) + self.dice_weight * self.dice.forward(y_true, y_pred)

    def backward(self):
        return self.ce_weight * self.ce.backward() + self.dice_weight * self.dice.backward()

    def get_config(self):
        return {"ce_weight": self.ce_weight, "dice_weight": self.dice_weight,
                "class_weight": self.ce.get_config()["class_weight"], "ignore_index": self.ignore_index,
                "smooth": self.dice.smooth}


LOSSES = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "dice": DiceLoss,
    "ce_dice": CEDiceLoss,
}
LOSS_CLASSES = {cls.__name__: cls for cls in LOSSES.values()}


def get(loss):
    """A Loss from a name ('categorical_crossentropy', 'sparse_categorical_crossentropy',
    'binary_crossentropy', 'mse', 'dice', 'ce_dice') or an existing Loss."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss.lower() in LOSSES:
        return LOSSES[loss.lower()]()
    raise ValueError(f"loss must be one of {sorted(LOSSES)} or a tinyseg.losses.Loss, got {loss!r}")


def serialize(loss):
    """{'class_name', 'config'} of one of tinyseg's losses (another class could not be rebuilt: refused)."""
    cls = type(loss)
    if LOSS_CLASSES.get(cls.__name__) is not cls:
        raise ValueError(f"the loss class {cls.__name__} is not one of tinyseg's {sorted(LOSS_CLASSES)}, so a "
                         "saved model could not rebuild it")
    return {"class_name": cls.__name__, "config": loss.get_config()}


def deserialize(spec):
    """The loss serialize() described."""
    cls = LOSS_CLASSES.get(spec.get("class_name")) if isinstance(spec, dict) else None
    if cls is None or not isinstance(spec.get("config"), dict):
        raise ValueError(f"unknown loss {spec!r} (known: {sorted(LOSS_CLASSES)})")
    return cls(**spec["config"])
