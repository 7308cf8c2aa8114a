"""Optimizers: how a gradient becomes a step. Formulas and argument names are Keras's.

    base.py       the Optimizer contract: apply_gradients(grads_and_vars), one call one step; the learning
                  rate or its schedule, weight decay, the checks that refuse a step before it changes
                  anything, the per-parameter slots and their state for saving
    clipping.py   clipnorm, global_clipnorm, clipvalue
    sgd.py        SGD, with (Nesterov) momentum        theta <- theta - lr * g
    adam.py       Adam, AdamW                          theta <- theta - lr_t * m / (sqrt(v) + eps)
    rmsprop.py    RMSprop                              theta <- theta - lr * g / sqrt(v + eps)

`get('adam')` makes one by name with Keras's defaults; `serialize` / `deserialize` turn one into a
JSON-able {'class_name', 'config'} and back (a model file keeps its optimizer that way, tinyseg/saving.py).
"""
import sys

from .. import registry, schedules
from .adam import Adam, AdamW
from .base import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

# Keras's spelling keras.optimizers.schedules.CosineDecay, also as `from tinyseg.optimizers.schedules import ...`
sys.modules[__name__ + ".schedules"] = schedules

OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}
OPTIMIZER_CLASSES = {cls.__name__: cls for cls in OPTIMIZERS.values()}


def get(optimizer):
    """An Optimizer from a name ('sgd', 'adam', 'adamw', 'rmsprop', with Keras's default settings) or an
    Optimizer."""
    return registry.get(optimizer, OPTIMIZERS, Optimizer, "optimizer", "tinyseg.optimizers")


def serialize(optimizer):
    """{'class_name', 'config'} of one of tinyseg's optimizers (a subclass could not be rebuilt: refused)."""
    return registry.serialize(optimizer, OPTIMIZER_CLASSES, "optimizer")


def deserialize(spec):
    """The optimizer serialize() described, with a fresh state (a schedule's config is rebuilt first)."""
    cls, config = registry.lookup(spec, OPTIMIZER_CLASSES, "optimizer")
    if isinstance(config.get("learning_rate"), dict):
        config["learning_rate"] = schedules.deserialize(config["learning_rate"])
    return cls(**config)


__all__ = ["OPTIMIZERS", "OPTIMIZER_CLASSES", "SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "deserialize", "get",
           "schedules", "serialize"]
