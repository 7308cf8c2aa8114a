"""Losses. Each is a mean over the batch (and over pixels for masks), as Keras reduces them.

Every loss has `forward(y_true, y_pred) -> float` (also callable as loss(y_true, y_pred), Keras's argument
order) and `backward() -> dL/dy_pred`. Cross-entropy and Dice losses take *logits* and apply their
activation (softmax or sigmoid) themselves; crossentropy.py says why and gives the fused gradients.

    base.py            the Loss contract; checks of arguments and targets
    crossentropy.py    CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryCrossentropy
    dice.py            DiceLoss, CEDiceLoss
    regression.py      MeanSquaredError
"""
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


__all__ = ["BinaryCrossentropy", "CEDiceLoss", "CategoricalCrossentropy", "DiceLoss", "LOSSES", "LOSS_CLASSES", "Loss",
           "MeanSquaredError", "SparseCategoricalCrossentropy", "deserialize", "get", "serialize"]
