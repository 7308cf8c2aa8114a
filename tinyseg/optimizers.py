"""Optimizers: how a gradient becomes a step. Formulas and argument names are Keras's.

Each optimizer updates parameters in place through `apply_gradients(grads_and_vars)`, a list of
(gradient, parameter) pairs in a fixed order (Keras's name and argument order). State (velocities, moments)
is kept per position in that list.

    SGD:        theta <- theta - lr * g                                   (the seed's formula)
    momentum:   v <- mu * v - lr * g;          theta <- theta + v
    Nesterov:   v <- mu * v - lr * g;          theta <- theta + mu * v - lr * g
    Adam:       m <- b1 m + (1 - b1) g;        v <- b2 v + (1 - b2) g^2
                lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)
                theta <- theta - lr_t * m / (sqrt(v) + eps)

    RMSprop:    v <- rho v + (1 - rho) g^2
                d = v                                                      (centered=False)
                a <- rho a + (1 - rho) g;      d = v - a^2                 (centered=True: a running variance)
                step = lr * g / sqrt(d + eps)
                theta <- theta - step                                      (momentum = 0)
                s <- mu s + step;              theta <- theta - s          (momentum mu > 0)

Adam's epsilon: Keras adds eps to sqrt(v) *before* the bias correction of v (above); PyTorch adds it after,
theta <- theta - lr * m_hat / (sqrt(v_hat) + eps) with m_hat = m/(1-b1^t), v_hat = v/(1-b2^t). The two
agree when eps_keras = eps_torch * sqrt(1 - b2^t), which changes with t; `Adam(epsilon_style='torch')`
uses PyTorch's placement so runs can be compared exactly.

RMSprop's epsilon: Keras adds eps *inside* the square root, sqrt(d + eps); PyTorch's torch.optim.RMSprop adds
it outside, sqrt(d) + eps. They would agree when eps_torch = sqrt(d + eps) - sqrt(d), which differs from entry
to entry and step to step, so no torch eps converts a Keras one; Keras's default 1e-7 under the root acts like
sqrt(1e-7) ~ 3e-4 outside it where d is near 0. `RMSprop(epsilon_style='torch')` uses PyTorch's placement.
Everything else is the same formula: PyTorch's alpha is rho; its centered version subtracts a^2 under the root
as Keras does; its momentum buffer b <- mu b + g / sqrt(...), theta <- theta - lr b is Keras's s = lr b while
lr is constant.
"""
import math

import numpy as np


class Optimizer:
    name = "optimizer"

    def __init__(self, learning_rate):
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
        if not math.isfinite(learning_rate):
            raise ValueError(f"learning_rate must be finite, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.iterations = 0
        self._slots = {}

    def apply_gradients(self, grads_and_vars):
        """Update every parameter in place from its gradient; one call is one step."""
        grads_and_vars = list(grads_and_vars)
        for i, (g, theta) in enumerate(grads_and_vars):      # check all before changing any
            if g.shape != theta.shape:
                raise ValueError(f"{self.name}: gradient {i} has shape {g.shape}, parameter {theta.shape}")
        self.iterations += 1
        for i, (g, theta) in enumerate(grads_and_vars):
            self.update(i, g, theta)

    def update(self, i, g, theta):
        raise NotImplementedError

    def slot(self, i, name, like):
        """Per-parameter state, created as zeros of the parameter's shape and dtype on first use."""
        key = (i, name)
        if key not in self._slots:
            self._slots[key] = np.zeros_like(like)
        return self._slots[key]

    def get_config(self):
        return {"learning_rate": self.learning_rate}


class SGD(Optimizer):
    """Gradient descent, with optional (Nesterov) momentum: SGD(learning_rate=0.01, momentum=0.0, nesterov=False)."""

    name = "sgd"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        super().__init__(learning_rate)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def update(self, i, g, theta):
        lr = self.learning_rate              # a Python float: float32 parameters stay float32
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


class Adam(Optimizer):
    """Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7), Keras's defaults and formula."""

    name = "adam"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, epsilon_style="keras"):
        super().__init__(learning_rate)
        for arg, value in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0 <= value < 1:
                raise ValueError(f"{arg} must be in [0, 1), got {value!r}")
        if epsilon_style not in ("keras", "torch"):
            raise ValueError(f"epsilon_style must be 'keras' or 'torch', got {epsilon_style!r}")
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.epsilon_style = epsilon_style

    def update(self, i, g, theta):
        t = self.iterations
        b1, b2 = self.beta_1, self.beta_2
        m = self.slot(i, "m", theta)
        v = self.slot(i, "v", theta)
        m += (1 - b1) * (g - m)                  # = b1 m + (1 - b1) g, without a temporary for b1 m
        v += (1 - b2) * (g * g - v)
        if self.epsilon_style == "keras":
            lr_t = self.learning_rate * (1 - b2 ** t) ** 0.5 / (1 - b1 ** t)    # Python floats: no upcast
            theta -= lr_t * m / (np.sqrt(v) + self.epsilon)
        else:
            m_hat = m / (1 - b1 ** t)
            v_hat = v / (1 - b2 ** t)
            theta -= self.learning_rate * m_hat / (np.sqrt(v_hat) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "epsilon_style": self.epsilon_style}


class RMSprop(Optimizer):
    """RMSprop(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False), Keras's defaults and
    formula (in the module docstring): each step divides g by the root of a running mean of g^2.

    Slots, with Keras's names: 'velocity' (v), 'average_gradient' (a, when centered), 'momentum' (s, when
    momentum > 0). epsilon_style='torch' adds eps outside the root, as torch.optim.RMSprop does.
    """

    name = "rmsprop"

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 epsilon_style="keras"):
        super().__init__(learning_rate)
        for arg, value in (("rho", rho), ("momentum", momentum)):
            if not 0 <= value < 1:
                raise ValueError(f"{arg} must be in [0, 1), got {value!r}")
        if not 0 < epsilon < math.inf:
            raise ValueError(f"epsilon must be a finite number > 0, got {epsilon!r}")
        if not isinstance(centered, (bool, np.bool_)):
            raise ValueError(f"centered must be True or False, got {centered!r}")
        if epsilon_style not in ("keras", "torch"):
            raise ValueError(f"epsilon_style must be 'keras' or 'torch', got {epsilon_style!r}")
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)
        self.epsilon_style = epsilon_style

    def update(self, i, g, theta):
        rho, lr, eps = self.rho, self.learning_rate, self.epsilon        # Python floats: no upcast
        v = self.slot(i, "velocity", theta)
        v *= rho
        v += (1 - rho) * np.square(g)
        if self.centered:
            a = self.slot(i, "average_gradient", theta)
            a *= rho
            a += (1 - rho) * g
            d = v - np.square(a)
        else:
            d = v
        if self.epsilon_style == "keras":
            step = lr * g / np.sqrt(d + eps)
        else:
            step = lr * g / (np.sqrt(d) + eps)
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


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop}


def get(optimizer):
    """An Optimizer from a name ('sgd', 'adam', 'rmsprop', with Keras's default settings) or an Optimizer."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        return OPTIMIZERS[optimizer.lower()]()
    raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)} or a tinyseg.optimizers.Optimizer, "
                     f"got {optimizer!r}")
