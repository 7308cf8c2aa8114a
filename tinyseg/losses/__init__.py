"""Losses. Each is a mean over the batch (and over pixels for masks), as Keras reduces them.

Every loss has `forward(y_true, y_pred, sample_weight=None) -> float` (also callable as loss(y_true, y_pred,
sample_weight), Keras's argument order) and `backward() -> dL/dy_pred`. Sample weights, (N,) or (N, H, W),
reduce as Keras 3 does, sum_m s_m l_m / M over the M positions (base.py). Cross-entropy and Dice losses
take *logits* and apply their activation (softmax or sigmoid) themselves; crossentropy.py says why and gives
the fused gradients.

    base.py            the Loss contract; checks of arguments and targets
    crossentropy.py    CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryCrossentropy
    dice.py            DiceLoss, CEDiceLoss
    regression.py      MeanSquaredError
"""
from .. import registry
from .base import Loss
from .crossentropy import BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy
from .dice import CEDiceLoss, DiceLoss
from .regression import MeanSquaredError

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
    return registry.get(loss, LOSSES, Loss, "loss", "tinyseg.losses")


def serialize(loss):
    """{'class_name', 'config'} of one of tinyseg's losses (another class could not be rebuilt: refused)."""
    return registry.serialize(loss, LOSS_CLASSES, "loss")


def deserialize(spec):
    """The loss serialize() described."""
    cls, config = registry.lookup(spec, LOSS_CLASSES, "loss")
    return cls(**config)


__all__ = ["BinaryCrossentropy", "CEDiceLoss", "CategoricalCrossentropy", "DiceLoss", "LOSSES", "LOSS_CLASSES", "Loss",
           "MeanSquaredError", "SparseCategoricalCrossentropy", "deserialize", "get", "serialize"]
