"""The soft Dice loss, and its sum with the cross-entropy."""

import numpy as np

from ..kernels.elementwise import sigmoid
from ..kernels.softmax import softmax
from ..validation import real_number
from .base import (
    Loss,
    _as_target_array,
    _binary_shape,
    _check_labels,
    _check_pred,
    _check_unit_values,
    _finite_number,
    _ignore_index,
    _one_hot,
    _position_weights,
    _shape_text,
)
from .crossentropy import SparseCategoricalCrossentropy


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

    Sample weights u (forward(..., sample_weight=u), (N,) or (N, H, W); losses/base.py) weigh each pixel inside
    the sums, which is how ignore_index works already (an ignored pixel weighs 0):

        I_k = sum_V u p_k t_k,   S_k = sum_V u p_k + sum_V u t_k

    There are no per-pixel losses to average, so Keras's "divide by M" has no meaning here; only the ratios of
    the weights and their size against `smooth` matter.

    Gradient: dD_k/dp_k = u (2 t_k (S_k + s) - (2 I_k + s)) / (S_k + s)^2 on each pixel (u = 1 without sample
    weights), then through the softmax (or sigmoid) Jacobian, as in layers/activations.py.
    """

    name = "dice"

    def __init__(self, smooth=1.0, ignore_index=None, mode="multiclass"):
        self.smooth = real_number(smooth, "smooth", low=0, low_open=True,
                                  expected="> 0 and finite (it defines the Dice of absent classes)")
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

    def forward(self, y_true, y_pred, sample_weight=None):
        _check_pred(y_pred, self.name)
        u = _position_weights(sample_weight, y_pred.shape, self.name, y_pred.dtype)
        if self.mode == "multiclass":
            labels, valid = self.check_targets(y_true, y_pred.shape)
            t = _one_hot(labels, y_pred.shape[-1], valid, y_pred.dtype)
            p = softmax(y_pred)
        else:
            t, valid = self.check_targets(y_true, y_pred.shape)
            t = t.astype(y_pred.dtype)
            p = sigmoid(y_pred)
        v = valid[..., None].astype(y_pred.dtype)                 # a pixel's weight: 0 where ignored ...
        if u is not None:
            v = v * u[..., None]                                   # ... times its sample weight
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

    def forward(self, y_true, y_pred, sample_weight=None):
        return (self.ce_weight * self.ce.forward(y_true, y_pred, sample_weight)
                + self.dice_weight * self.dice.forward(y_true, y_pred, sample_weight))

    def backward(self):
        return self.ce_weight * self.ce.backward() + self.dice_weight * self.dice.backward()

    def get_config(self):
        return {"ce_weight": self.ce_weight, "dice_weight": self.dice_weight,
                "class_weight": self.ce.get_config()["class_weight"], "ignore_index": self.ignore_index,
                "smooth": self.dice.smooth}
