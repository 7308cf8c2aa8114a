"""Weight regularizers: a penalty on a parameter added to the loss, Keras's `kernel_regularizer=l2(0.01)`.

A layer given `kernel_regularizer` (or `bias_regularizer`, ...) adds the penalty R(w) of that parameter to
the loss a training step minimises, and its gradient dR/dw to the parameter's gradient before the optimizer's
step:

    L_total = loss(y, model(x)) + sum over penalised parameters w of R(w)
    dL_total/dw = dloss/dw + dR/dw

Keras's formulas (not halved: Keras's L2 is l2 * sum(w^2), whose gradient is 2 * l2 * w):

    L1(l1=0.01):          R(w) = l1 * sum |w|                       dR/dw = l1 * sign(w)   (0 at w = 0)
    L2(l2=0.01):          R(w) = l2 * sum w^2                       dR/dw = 2 * l2 * w
    L1L2(l1=0.0, l2=0.0): R(w) = l1 * sum |w| + l2 * sum w^2       dR/dw = l1 * sign(w) + 2 * l2 * w

`l1`, `l2` and `l1_l2` are the same classes under Keras's lower-case names. w may have any shape (a conv
kernel (KH, KW, C_in, C_out), a bias (C_out,)); R(w) is one number and dR/dw has w's shape and dtype.

What the training step does with it (tinyseg/models/model.py): the reported loss includes the penalties,
during training and in evaluate and validation (as in Keras), so a regularized model's loss is not comparable
with an unregularized one's; compare metrics instead. `model.losses` lists the penalties one by one.

L2 regularization and weight decay are different things once the optimizer is adaptive: with SGD, the L2
gradient 2*l2*w gives the step -lr*2*l2*w, which is the decay `w -= lr*wd*w` for wd = 2*l2. Adam divides
the whole gradient, penalty included, by the root of its running mean of squares, so large-gradient
weights are decayed less; AdamW (tinyseg/optimizers/adam.py) decays every weight by lr*wd*w outside that division.
"""
import numpy as np

from . import registry
from .validation import ArgumentError, is_real_number, real_number


def _factor(value, argument, who):
    """A non-negative finite number, as Keras's validate_float_arg asks (a string is refused in the same words)."""
    rule = "a non-negative finite number"
    if not is_real_number(value):
        raise ArgumentError(f"{who}: {argument} must be {rule}, got {value!r}")
    return real_number(value, f"{who}: {argument}", low=0, expected=rule)


class Regularizer(registry.Configurable):
    """The base class: `regularizer(w)` -> the penalty R(w) (a float); `regularizer.gradient(w)` -> dR/dw.

    Shapes: w is a weight array of any shape (a kernel (KH, KW, C_in, C_out), a bias (C_out,)); R(w) is one
    number; dR/dw has w's shape and dtype.

    A regularizer of your own overrides both (a penalty without its gradient could not be trained here), and
    get_config() for saving; load_model rebuilds only tinyseg's own.
    """

    def __call__(self, w):
        raise NotImplementedError(f"{type(self).__name__} must define __call__(self, w)")

    def gradient(self, w):
        raise NotImplementedError(f"{type(self).__name__} must define gradient(self, w)")

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class L1L2(Regularizer):
    """R(w) = l1 * sum|w| + l2 * sum w^2;  dR/dw = l1 * sign(w) + 2 * l2 * w.  Keras's `L1L2(l1=0.0, l2=0.0)`."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor(0.0 if l1 is None else l1, "l1", type(self).__name__)
        self.l2 = _factor(0.0 if l2 is None else l2, "l2", type(self).__name__)

    def __call__(self, w):
        w = np.asarray(w)
        penalty = 0.0
        if self.l1:
            penalty += self.l1 * float(np.abs(w).sum(dtype=np.float64))
        if self.l2:
            flat = w.reshape(-1).astype(np.float64)
            penalty += self.l2 * float(np.dot(flat, flat))
        return penalty

    def gradient(self, w):
        w = np.asarray(w)
        grad = np.zeros_like(w)
        if self.l1:
            grad += self.l1 * np.sign(w)
        if self.l2:
            grad += (2 * self.l2) * w
        return grad

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """R(w) = l1 * sum|w|;  dR/dw = l1 * sign(w) (the subgradient 0 at w = 0).  Keras's `L1(l1=0.01)`.

    Its pull toward 0 has the same size for every weight, small or large, which drives many weights to
    exactly 0 (a sparse kernel)."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1, l2=0.0)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """R(w) = l2 * sum w^2;  dR/dw = 2 * l2 * w.  Keras's `L2(l2=0.01)` (not halved: the 2 stays).

    Its pull toward 0 is proportional to the weight: large weights shrink fast, none become exactly 0."""

    def __init__(self, l2=0.01):
        super().__init__(l1=0.0, l2=l2)

    def get_config(self):
        return {"l2": self.l2}


l1, l2, l1_l2 = L1, L2, L1L2          # Keras's lower-case names for the same classes

REGULARIZERS = {cls.__name__: cls for cls in (L1, L2, L1L2)}
_BY_STRING = {"l1": L1, "l2": L2, "L1": L1, "L2": L2, "L1L2": L1L2}


def get(identifier, argument="regularizer"):
    """A Regularizer from None (none), 'l1' or 'l2' (Keras's defaults, 0.01), a config dict, or a Regularizer.

    argument: what the errors call it (a layer passes "conv2d: kernel_regularizer")."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_STRING:
        return _BY_STRING[identifier]()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier):
        raise TypeError(f"{argument} must be a tinyseg.regularizers.Regularizer, got the function {identifier!r}: "
                        "tinyseg needs its gradient too, so subclass Regularizer with __call__(w) and gradient(w)")
    raise ValueError(f"{argument}: unknown regularizer {identifier!r}; use 'l1', 'l2', or L1(...), L2(...), "
                     "L1L2(...) from tinyseg.regularizers")


def serialize(regularizer):
    """{'class_name': ..., 'config': ...} of one of tinyseg's regularizers (what a layer's config saves)."""
    return registry.serialize(regularizer, REGULARIZERS, "regularizer")


def deserialize(spec):
    """The regularizer serialize() described (Keras's extra 'module' and 'registered_name' keys are ignored)."""
    cls, config = registry.lookup(spec, REGULARIZERS, "regularizer")
    return cls.from_config(config)


def config_entries(layer, arguments):
    """{argument: serialize(regularizer)} for the layer's regularizer arguments that are set, for get_config
    (a layer without regularizers keeps the config it had before they existed)."""
    return {a: serialize(getattr(layer, a)) for a in arguments if getattr(layer, a, None) is not None}


__all__ = ["L1", "L1L2", "L2", "Regularizer", "deserialize", "get", "l1", "l1_l2", "l2", "serialize"]
