"""Cross-entropy on logits: softmax + cross-entropy for classes, sigmoid + binary cross-entropy for masks.

A model ends in softmax (or sigmoid) and the loss takes *logits* z, the scores before it: compile fuses the
two (models/model.py: the model hands the loss the input of its last activation, and backward starts below
that activation), because the fused gradient is simple and stable:

    softmax + cross-entropy:  L = -(1/M) sum_m sum_k y_mk log p_mk,  log p = z - logsumexp(z)   (M, K)
                              dL/dz = (p - y) / M
    sigmoid + binary CE:      L = (1/M) sum_m [max(z,0) - z y + log(1 + exp(-|z|))]
                              dL/dz = (sigmoid(z) - y) / M

M is the number of predictions averaged over: N for (N, K) scores, N*H*W for per-pixel (N, H, W, K) scores.
With sample weights s (forward(y_true, y_pred, sample_weight=s), s of shape (N,) or (N, H, W); base.py) each
position's term, and its gradient, is multiplied by s_m, and the division stays by M (Keras's reduction).
log-sum-exp, never log(p + 1e-7): the log of a softmax is computed exactly, even for huge logits
(softmax_and_log_softmax below; its guarded line hands it to kernels/softmax.py, which computes the same p and
log p in one pass; TINYSEG_BACKEND=numpy skips it). tinyseg/reference.py has the softmax cross-entropy as a
plain loop.
"""
import numpy as np

from ..backend import fast
from ..kernels import softmax as kernels
from ..kernels.elementwise import sigmoid
from .base import (
    Loss,
    _as_target_array,
    _binary_shape,
    _binary_targets,
    _check_labels,
    _check_pred,
    _check_unit_values,
    _class_weight,
    _from_logits,
    _ignore_index,
    _matches,
    _position_weights,
    _shape_text,
)


def softmax_and_log_softmax(z):
    """p = softmax(z) and log p over the last axis (the classes) of logits z (..., K):

        m = max_k z_k,   log p = (z - m) - log(sum_k exp(z_k - m)),   p = exp(z - m) / sum_k exp(z_k - m)
    """
    if fast():      # the same p and log p, from one exp per score, shared between threads
        return kernels.softmax_and_log_softmax(z)
    shifted = z - z.max(axis=-1, keepdims=True)          # z - m: exp never overflows
    e = np.exp(shifted)
    total = e.sum(axis=-1, keepdims=True)
    return e / total, shifted - np.log(total)


class CategoricalCrossentropy(Loss):
    """Softmax cross-entropy with one-hot (or soft) targets.

    y_true: (N, K) or (N, H, W, K) floats in [0, 1], normally one-hot rows; y_pred: logits of the same shape;
    sample_weight s: None (all 1), (N,) or (N, H, W) (base.py); M = y_pred.size / K positions.

        L = -(1/M) sum_m s_m sum_k y_mk log softmax(z_m)_k,    dL/dz_m = s_m (softmax(z_m) sum_k y_mk - y_m) / M,

    which is s_m (softmax(z_m) - y_m) / M for rows that sum to 1.
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

    def forward(self, y_true, y_pred, sample_weight=None):
        _check_pred(y_pred, self.name)
        y_true = self.check_targets(y_true, y_pred.shape).astype(y_pred.dtype, copy=False)
        s = _position_weights(sample_weight, y_pred.shape, self.name, y_pred.dtype)
        p, logp = softmax_and_log_softmax(y_pred)
        m = y_pred.size // y_pred.shape[-1]
        self._cache = (p, y_true, s, m)
        per_position = -(y_true * logp).sum(axis=-1)                 # l_m, shape y_pred.shape[:-1]
        return float((per_position if s is None else s * per_position).sum() / m)

    def backward(self):
        p, y, s, m = self._cache
        # d/dz of -sum_k y_k log p_k is p * sum_k y_k - y: (p - y) for rows that sum to 1 (one-hot)
        grad = (p * y.sum(axis=-1, keepdims=True) - y) / m
        return grad if s is None else grad * s[..., None]

    def get_config(self):
        return {"from_logits": self.from_logits}


class SparseCategoricalCrossentropy(Loss):
    """Softmax cross-entropy with integer class labels, per image or per pixel.

    y_true: (N,) or (N, H, W) integers in [0, K) (or `ignore_index`); y_pred: logits (N, K) or (N, H, W, K).
    With class weights w (default all 1) and the set V of positions whose label is not ignore_index:

        L = sum_{m in V} s_m w_{y_m} * (-log softmax(z_m)_{y_m})  /  sum_{m in V} w_{y_m}
        dL/dz_m = s_m w_{y_m} (softmax(z_m) - onehot(y_m)) / sum_{m in V} w_{y_m}      (0 for ignored positions)

    So the mean is over the pixels that are not ignored, weighted (PyTorch's `weight` + `ignore_index`
    convention; with no weights and nothing ignored it is the plain mean, Keras's). A batch in which every
    pixel is ignored has loss 0 and gradient 0. s: fit's sample weights (None: all 1), of shape (N,) or
    (N, H, W) (base.py); they scale each term without entering the denominator, as Keras's do, so with no
    class weights and nothing ignored L = sum_m s_m nll_m / M, Keras's "sum_over_batch_size".
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

    def forward(self, y_true, y_pred, sample_weight=None):
        _check_pred(y_pred, self.name)
        labels, valid = self.check_targets(y_true, y_pred.shape)
        s = _position_weights(sample_weight, y_pred.shape, self.name, y_pred.dtype)
        w = valid.astype(y_pred.dtype)
        if self.class_weight is not None:
            w = w * self.class_weight.astype(y_pred.dtype)[np.where(valid, labels, 0)]
        total = w.sum()                            # the denominator: sample weights do not enter it
        if s is not None:
            w = w * s
        p, logp = softmax_and_log_softmax(y_pred)
        picked = np.where(valid, labels, 0)        # ignored positions read class 0 and get weight 0
        self._cache = (p, picked, w, total)
        if total == 0:
            return 0.0
        logp_true = np.take_along_axis(logp, picked[..., None], axis=-1)[..., 0]     # log p at each label
        return float(-(w * logp_true).sum() / total)

    def backward(self):
        p, picked, w, total = self._cache
        if total == 0:
            return np.zeros_like(p)
        # w (p - onehot(label)) / total: p scaled, then w / total taken off at each position's label
        scale = (w / total).astype(p.dtype, copy=False)
        grad = p * scale[..., None]
        k = p.shape[-1]
        at_label = np.arange(0, grad.size, k) + picked.reshape(-1)      # flat index of each row's label
        grad.reshape(-1)[at_label] -= scale.reshape(-1)
        return grad

    def get_config(self):
        return {"class_weight": None if self.class_weight is None else self.class_weight.tolist(),
                "ignore_index": self.ignore_index, "from_logits": self.from_logits}


class BinaryCrossentropy(Loss):
    """Sigmoid cross-entropy on logits: one independent yes/no per output (binary masks: (N, H, W, 1)).

    L = mean( max(z, 0) - z*y + log(1 + exp(-|z|)) )   (= -y log s - (1-y) log(1-s), s = sigmoid(z), written so
    that no exp overflows);  dL/dz = (sigmoid(z) - y) / M, M = number of entries.
    With sample weights w (N,) or (N, H, W) (base.py), each position's entries are multiplied by w_m, and M stays
    the number of entries: L = sum w_m e_mc / M, dL/dz_mc = w_m (sigmoid(z_mc) - y_mc) / M.
    """

    activation = "sigmoid"
    name = "binary_crossentropy"

    def __init__(self, from_logits=None):
        self.from_logits = _from_logits(from_logits)

    def check_targets(self, y_true, pred_shape):
        y = _binary_shape(_as_target_array(y_true, self.name), pred_shape, self.name)
        _check_unit_values(y, self.name, "binary masks as 0/1, not 0/255")

    def forward(self, y_true, y_pred, sample_weight=None):
        _check_pred(y_pred, self.name)
        y = _binary_targets(y_true, y_pred, self.name)
        w = _position_weights(sample_weight, y_pred.shape, self.name, y_pred.dtype)
        w = None if w is None else w[..., None]                  # the same weight for a position's channels
        z = y_pred
        self._cache = (sigmoid(z), y, w, z.size)
        entries = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
        return float((entries if w is None else w * entries).sum() / z.size)

    def backward(self):
        s, y, w, m = self._cache
        grad = (s - y) / m
        return grad if w is None else grad * w

    def get_config(self):
        return {"from_logits": self.from_logits}
