"""RMSprop, Keras's formula and defaults: each step divides g by the root of a running mean of g^2.

    v <- rho v + (1 - rho) g^2
    d = v                                                      (centered=False)
    a <- rho a + (1 - rho) g;      d = max(v - a^2, 0)         (centered=True: a running variance)
    step = lr * g / sqrt(d + eps)
    theta <- theta - step                                      (momentum = 0)
    s <- mu s + step;              theta <- theta - s          (momentum mu > 0)

theta, g, v, a and s share one shape (any).

RMSprop's epsilon: Keras adds eps *inside* the square root, sqrt(d + eps); PyTorch's torch.optim.RMSprop adds
it outside, sqrt(d) + eps. They would agree when eps_torch = sqrt(d + eps) - sqrt(d), which differs from entry
to entry and step to step, so no torch eps converts a Keras one; Keras's default 1e-7 under the root acts like
sqrt(1e-7) ~ 3e-4 outside it where d is near 0. `RMSprop(epsilon_style='torch')` uses PyTorch's placement.
Everything else is the same formula: PyTorch's alpha is rho; its centered version subtracts a^2 under the root
as Keras does; its momentum buffer b <- mu b + g / sqrt(...), theta <- theta - lr b is Keras's s = lr b while
lr is constant.
"""
import numpy as np

from ..validation import flag, one_of
from .base import Optimizer, positive_epsilon, unit_interval


class RMSprop(Optimizer):
    """RMSprop(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False), Keras's defaults and
    formula (in the module docstring).

    Slots, with Keras's names: 'velocity' (v), 'average_gradient' (a, when centered), 'momentum' (s, when
    momentum > 0). epsilon_style='torch' adds eps outside the root, as torch.optim.RMSprop does.
    Also weight_decay, clipnorm, clipvalue, global_clipnorm (base.py).
    Centered, d = v - a^2 is a variance, >= 0; rounding can make it a hair negative when g barely varies, and
    the root of a negative number is NaN, so d is clipped at 0 first.
    """

    name = "rmsprop"
    slot_names = ("velocity", "average_gradient", "momentum")
    square_slots = ("velocity",)

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 epsilon_style="keras", weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm)
        self.rho = unit_interval(rho, "rho")
        self.momentum = unit_interval(momentum, "momentum")
        self.epsilon = positive_epsilon(epsilon)
        self.centered = flag(centered, "centered")
        self.epsilon_style = one_of(epsilon_style, "epsilon_style", ("keras", "torch"))

    def update(self, i, g, theta, lr):
        rho, eps = self.rho, self.epsilon        # Python floats (lr too): no upcast
        v, g2 = self.square_slot(i, "velocity", g, theta)
        v *= rho
        v += (1 - rho) * g2
        if self.centered:
            a = self.slot(i, "average_gradient", theta)
            a *= rho
            a += (1 - rho) * g
            d = np.maximum(v - np.square(a, dtype=v.dtype), 0)
        else:
            d = v
        if self.epsilon_style == "keras":
            step = lr * g / np.sqrt(d + eps)
        else:
            step = lr * g / (np.sqrt(d) + eps)
        step = step.astype(theta.dtype, copy=False)
        if self.momentum > 0:
            s = self.slot(i, "momentum", theta)
            s *= self.momentum
            s += step
            theta -= s
        else:
            theta -= step

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered, "epsilon_style": self.epsilon_style}
