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

Adam's epsilon: Keras adds eps to sqrt(v) *before* the bias correction of v (above); PyTorch adds it after,
theta <- theta - lr * m_hat / (sqrt(v_hat) + eps) with m_hat = m/(1-b1^t), v_hat = v/(1-b2^t). The two
agree when eps_keras = eps_torch * sqrt(1 - b2^t), which changes with t; `Adam(epsilon_style='torch')`
uses PyTorch's placement so runs can be compared exactly.
"""
import numpy as np


class Optimizer:
    name = "optimizer"

    def __init__(self, learning_rate):
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
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


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def get(optimizer):
    """An Optimizer from a name ('sgd', 'adam', with Keras's default settings) or an existing Optimizer."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        return OPTIMIZERS[optimizer.lower()]()
    raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)} or a tinyseg.optimizers.Optimizer, "
                     f"got {optimizer!r}")
