"""Optimizers: how a gradient becomes a step. Formulas and argument names are Keras's.

Each optimizer updates parameters in place through `apply_gradients(grads_and_vars)`, a list of
(gradient, parameter) pairs in a fixed order (Keras's name and argument order). State (velocities, moments)
is kept per position in that list: `optimizer._slots[(position, name)]`, and `optimizer.iterations` counts
the steps taken. `get_state()` / `set_state()` hand both over as arrays, which is how a saved model keeps
its optimizer (tinyseg/saving.py).

    SGD:        theta <- theta - lr * g                                   (the seed's formula)
    momentum:   v <- mu * v - lr * g;          theta <- theta + v
    Nesterov:   v <- mu * v - lr * g;          theta <- theta + mu * v - lr * g
    Adam:       m <- b1 m + (1 - b1) g;        v <- b2 v + (1 - b2) g^2
                lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)
                theta <- theta - lr_t * m / (sqrt(v) + eps)

    RMSprop:    v <- rho v + (1 - rho) g^2
                d = v                                                      (centered=False)
                a <- rho a + (1 - rho) g;      d = max(v - a^2, 0)         (centered=True: a running variance)
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

What a step refuses, and why (before it changes any parameter or slot):
- a gradient whose shape is not its parameter's, or that is not a float array;
- a gradient holding NaN or inf. One NaN would stay in Adam's and RMSprop's running averages for ever
  (0.999 * NaN is NaN), so it is refused: `NonFiniteError` names the parameter and the step. The test costs
  one reduction per gradient, the dot product g.g, which is finite unless g holds a NaN or an inf or its
  squares (or their sum) overflow; only then does a second look (np.isfinite) tell which it was.

Squares that overflow: a float32 gradient beyond 1.8e19 is finite, but its square is not (float32 ends at
3.4e38), so v would become inf and the next step would compute inf - inf = NaN. When g.g says so, the slot
that averages g^2 (Adam's v, RMSprop's velocity) is widened to float64 for that parameter from then on;
float64 holds the square of any float32. The step m / sqrt(v) is an ordinary number again. (A float64
gradient beyond 1.3e154 has no wider type: it is refused as NonFiniteError.)
"""
import math
import numbers

import numpy as np

from .backend import NonFiniteError


def real(value, argument):
    """value as a Python float if it is a real number (not a bool, a string or a complex), else a TypeError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argument} must be a real number, got {value!r}")
    return float(value)


def _unit_interval(value, argument):
    """value in [0, 1), as the betas, rho and momentum must be."""
    value = real(value, argument)
    if not 0 <= value < 1:
        raise ValueError(f"{argument} must be in [0, 1), got {value!r}")
    return value


def _epsilon(value):
    value = real(value, "epsilon")
    if not 0 < value < math.inf:
        raise ValueError(f"epsilon must be a finite number > 0, got {value!r} (it keeps the step's division "
                         "by the root of the squares from 0 / 0)")
    return value


def _sum_of_squares(g):
    """g.g as a Python float: one pass, no temporary; NaN or inf if g holds NaN or inf or its squares overflow."""
    flat = g.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.dot(flat, flat))


class Optimizer:
    name = "optimizer"
    slot_names = ()              # the slots this optimizer may keep per parameter
    square_slots = ()            # the slots that average g^2, widened to float64 when g^2 overflows

    def __init__(self, learning_rate):
        learning_rate = real(learning_rate, "learning_rate")
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
        if not math.isfinite(learning_rate):
            raise ValueError(f"learning_rate must be finite, got {learning_rate!r}")
        self.learning_rate = learning_rate
        self.iterations = 0
        self._slots = {}
        self._wide = set()       # positions whose g^2 overflows the parameter's dtype in this step

    def apply_gradients(self, grads_and_vars, names=None):
        """Update every parameter in place from its gradient; one call is one step.

        Every pair is checked before anything changes (see the module docstring): a refused step changes no
        parameter, no slot and not `iterations`. `names`, if given, labels each parameter in the errors
        (a model passes "layer 'conv2d_1', parameter 'kernel'").
        """
        if not 0 < self.learning_rate < math.inf:            # it may have been set after construction
            raise ValueError(f"{self.name}: learning_rate must be a finite number > 0, got {self.learning_rate!r}")
        pairs = list(grads_and_vars)
        labels = list(names) if names is not None else [f"parameter {i}" for i in range(len(pairs))]
        if len(labels) != len(pairs):
            raise ValueError(f"{self.name}: {len(labels)} names for {len(pairs)} (gradient, parameter) pairs")
        for i, (g, theta) in enumerate(pairs):
            if not isinstance(g, np.ndarray) or not isinstance(theta, np.ndarray):
                raise TypeError(f"{self.name}: pair {i} must be two NumPy arrays (gradient, parameter), got "
                                f"({type(g).__name__}, {type(theta).__name__})")
            if g.shape != theta.shape:
                raise ValueError(f"{self.name}: gradient {i} has shape {g.shape}, parameter {theta.shape}")
            if g.dtype.kind != "f" or theta.dtype.kind != "f":
                raise TypeError(f"{self.name}: the gradient and the parameter of {labels[i]} must be float arrays, "
                                f"got {g.dtype} and {theta.dtype}")
        wide = set()
        for i, (g, theta) in enumerate(pairs):
            if math.isfinite(_sum_of_squares(g)):
                continue
            bad = ~np.isfinite(g)
            if bad.any():
                nan = int(np.isnan(g).sum())
                raise NonFiniteError(
                    f"{self.name}: the gradient of {labels[i]} holds {nan} NaN and {int(bad.sum()) - nan} infinite "
                    f"values (of {g.size}) at step {self.iterations + 1}; the step was not taken, no weight or "
                    "optimizer state changed. Common causes: a learning rate too high for the data, inputs not "
                    "scaled (images / 255), a loss on labels it does not expect.",
                    parameter=labels[i], step=self.iterations + 1)
            largest = float(np.max(np.abs(g)))
            # the largest |g| whose square is finite: sqrt(float32 max) ~ 1.8e19, sqrt(float64 max) ~ 1.3e154
            if largest > math.sqrt(float(np.finfo(g.dtype).max)):      # g^2 itself overflows, not just the sum
                if g.dtype == np.float64 and self.square_slots:
                    raise NonFiniteError(
                        f"{self.name}: the gradient of {labels[i]} reaches {largest:.3g} at step "
                        f"{self.iterations + 1}; its square overflows float64, so {self.name} cannot average "
                        "it. The step was not taken, nothing changed.", parameter=labels[i],
                        step=self.iterations + 1)
                wide.add(i)
        self.iterations += 1
        self._wide = wide
        try:
            for i, (g, theta) in enumerate(pairs):
                self.update(i, g, theta)
        finally:
            self._wide = set()

    def update(self, i, g, theta):
        raise NotImplementedError

    def slot(self, i, name, like):
        """Per-parameter state, created as zeros of the parameter's shape and dtype on first use."""
        key = (i, name)
        if key not in self._slots:
            self._slots[key] = np.zeros_like(like)
        return self._slots[key]

    def square_slot(self, i, name, g, theta):
        """The slot that averages g^2, and g^2 in its dtype: the parameter's dtype, or float64 from the first
        step whose g^2 overflows it (see the module docstring; the slot's values carry over exactly)."""
        v = self.slot(i, name, theta)
        if i in self._wide and v.dtype != np.float64:
            v = self._slots[(i, name)] = v.astype(np.float64)
        return v, np.square(g, dtype=v.dtype)

    def get_config(self):
        return {"learning_rate": self.learning_rate}

    # --- state, for saving and resuming ----------------------------------------------------------------
    def get_state(self):
        """{'iterations': int, 'slots': [(position, name, array copy), ...]} in a fixed order."""
        return {"iterations": int(self.iterations),
                "slots": [(i, name, self._slots[(i, name)].copy()) for i, name in sorted(self._slots)]}

    def set_state(self, state, params):
        """Take the step count and slots of get_state() for these parameters (the model's, in order).

        Everything is checked before anything is set: positions within params, known slot names, the
        parameter's shape, a float dtype (the parameter's, or float64 for a widened g^2 slot), finite values.
        """
        iterations = state.get("iterations") if isinstance(state, dict) else None
        if not isinstance(iterations, (int, np.integer)) or isinstance(iterations, bool) or iterations < 0:
            raise ValueError(f"{self.name}: the state's iterations must be a non-negative integer, got {iterations!r}")
        slots = {}
        for entry in state.get("slots", []):
            if not (isinstance(entry, (tuple, list)) and len(entry) == 3):
                raise ValueError(f"{self.name}: a slot must be (position, name, array), got {entry!r}")
            i, name, value = entry
            if not isinstance(i, (int, np.integer)) or isinstance(i, bool) or not 0 <= i < len(params):
                raise ValueError(f"{self.name}: slot position {i!r} is not one of the {len(params)} parameters")
            if name not in self.slot_names:
                raise ValueError(f"{self.name}: unknown slot {name!r} (this optimizer keeps {list(self.slot_names)})")
            theta = params[int(i)]
            value = np.asarray(value)
            allowed = {theta.dtype} | ({np.dtype(np.float64)} if name in self.square_slots else set())
            if value.shape != theta.shape or value.dtype not in allowed:
                raise ValueError(f"{self.name}: slot {name!r} of parameter {i} has shape {value.shape} and dtype "
                                 f"{value.dtype}; the parameter has shape {theta.shape} and dtype {theta.dtype}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{self.name}: slot {name!r} of parameter {i} holds NaN or inf")
            slots[(int(i), name)] = value.copy()
        self.iterations = int(iterations)
        self._slots = slots


class SGD(Optimizer):
    """Gradient descent, with optional (Nesterov) momentum: SGD(learning_rate=0.01, momentum=0.0, nesterov=False)."""

    name = "sgd"
    slot_names = ("velocity",)

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        super().__init__(learning_rate)
        self.momentum = _unit_interval(momentum, "momentum")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
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


def _epsilon_style(value):
    if value not in ("keras", "torch"):
        raise ValueError(f"epsilon_style must be 'keras' or 'torch', got {value!r}")
    return value


class Adam(Optimizer):
    """Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7), Keras's defaults and formula.

    Slots: 'm' (the running mean of g) and 'v' (of g^2; float64 for a float32 parameter once g^2 overflowed).
    """

    name = "adam"
    slot_names = ("m", "v")
    square_slots = ("v",)

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, epsilon_style="keras"):
        super().__init__(learning_rate)
        self.beta_1 = _unit_interval(beta_1, "beta_1")
        self.beta_2 = _unit_interval(beta_2, "beta_2")
        self.epsilon = _epsilon(epsilon)
        self.epsilon_style = _epsilon_style(epsilon_style)

    def update(self, i, g, theta):
        t = self.iterations
        b1, b2 = self.beta_1, self.beta_2
        m = self.slot(i, "m", theta)
        v, g2 = self.square_slot(i, "v", g, theta)
        if v.dtype == m.dtype:
            m += (1 - b1) * (g - m)              # = b1 m + (1 - b1) g, without a temporary for b1 m
        else:                                    # widened: g - m may overflow too; |the update| does not
            m += ((1 - b1) * (g.astype(v.dtype) - m)).astype(m.dtype)
        v += (1 - b2) * (g2 - v)
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
    Centered, d = v - a^2 is a variance, >= 0; rounding can make it a hair negative when g barely varies, and
    the root of a negative number is NaN, so d is clipped at 0 first.
    """

    name = "rmsprop"
    slot_names = ("velocity", "average_gradient", "momentum")
    square_slots = ("velocity",)

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 epsilon_style="keras"):
        super().__init__(learning_rate)
        self.rho = _unit_interval(rho, "rho")
        self.momentum = _unit_interval(momentum, "momentum")
        self.epsilon = _epsilon(epsilon)
        if not isinstance(centered, (bool, np.bool_)):
            raise ValueError(f"centered must be True or False, got {centered!r}")
        self.centered = bool(centered)
        self.epsilon_style = _epsilon_style(epsilon_style)

    def update(self, i, g, theta):
        rho, lr, eps = self.rho, self.learning_rate, self.epsilon        # Python floats: no upcast
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


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop}
OPTIMIZER_CLASSES = {cls.__name__: cls for cls in OPTIMIZERS.values()}


def get(optimizer):
    """An Optimizer from a name ('sgd', 'adam', 'rmsprop', with Keras's default settings) or an Optimizer."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        return OPTIMIZERS[optimizer.lower()]()
    raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)} or a tinyseg.optimizers.Optimizer, "
                     f"got {optimizer!r}")


def serialize(optimizer):
    """{'class_name', 'config'} of one of tinyseg's optimizers (a subclass could not be rebuilt: refused)."""
    cls = type(optimizer)
    if OPTIMIZER_CLASSES.get(cls.__name__) is not cls:
        raise ValueError(f"the optimizer class {cls.__name__} is not one of tinyseg's {sorted(OPTIMIZER_CLASSES)}, "
                         "so a saved model could not rebuild it")
    return {"class_name": cls.__name__, "config": optimizer.get_config()}


def deserialize(spec):
    """The optimizer serialize() described, with a fresh state."""
    cls = OPTIMIZER_CLASSES.get(spec.get("class_name")) if isinstance(spec, dict) else None
    if cls is None or not isinstance(spec.get("config"), dict):
        raise ValueError(f"unknown optimizer {spec!r} (known: {sorted(OPTIMIZER_CLASSES)})")
    return cls(**spec["config"])
