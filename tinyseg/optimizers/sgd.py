"""Stochastic gradient descent, with optional (Nesterov) momentum, Keras's formulas:

    SGD:        theta <- theta - lr * g                                   (momentum = 0)
    momentum:   v <- mu * v - lr * g;          theta <- theta + v
    Nesterov:   v <- mu * v - lr * g;          theta <- theta + mu * v - lr * g

theta, g and v share one shape (any); lr is this step's rate (a Python float, so a float32 parameter stays
float32). PyTorch's torch.optim.SGD keeps b <- mu b + g and steps theta <- theta - lr b: the same path while
lr is constant (v = -lr b).
"""
from ..validation import flag
from .base import Optimizer, unit_interval


class SGD(Optimizer):
    """Gradient descent, with optional (Nesterov) momentum: SGD(learning_rate=0.01, momentum=0.0, nesterov=False),
    and the arguments every optimizer takes (weight_decay, clipnorm, clipvalue, global_clipnorm; base.py).
    Slot: 'velocity' (v, when momentum > 0)."""

    name = "sgd"
    slot_names = ("velocity",)

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm)
        self.momentum = unit_interval(momentum, "momentum")
        self.nesterov = flag(nesterov, "nesterov")

    def update(self, i, g, theta, lr):
        if self.momentum == 0:
            theta -= lr * g
            return
        mu = self.momentum
        v = self.slot(i, "velocity", theta)
        v *= mu
        v -= lr * g
        if self.nesterov:
            theta += mu * v - lr * g
        else:
            theta += v

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
