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
    AdamW:      theta <- theta - lr * wd * theta;   then Adam's three lines        (wd = 0.004 by default)

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

What every optimizer also takes (Keras's base-optimizer arguments), in the order a step applies them:

    learning_rate     a float, or a schedule (tinyseg.schedules, also tinyseg.optimizers.schedules):
                      lr = schedule(t) with t = iterations before the step (0 for the first), as Keras counts
    clipnorm c        each gradient rescaled to at most norm c:   g <- g * c / ||g||   where ||g|| > c
    global_clipnorm c all gradients rescaled together:           g_i <- g_i * c / N   where N > c,
                      N = sqrt(sum_i ||g_i||^2), the norm of all gradients as one vector
    clipvalue v       each entry clipped:                          g <- min(max(g, -v), v)
    weight_decay wd   decoupled decay of the weights before the update (Loshchilov & Hutter; AdamW):
                      theta <- theta - lr * wd * theta;  then the optimizer's update from the clipped g

At most one of the three clippings (Keras refuses two). Clipping comes after the check for NaN and inf (a
NaN gradient is reported as such, not clipped into something else) and makes new arrays: layer.grads keep
the gradients backward computed. Norms are sums of squares: where those overflow (a float32 gradient near
1e19) the norm is taken of g / max|g| and scaled back, so a huge but finite gradient is clipped, not zeroed.

PyTorch: torch.nn.utils.clip_grad_norm_ is global_clipnorm (per parameter when called on one), with
max_norm / (N + 1e-6) for c / N: its clipped gradients are these times N / (N + 1e-6);
clip_grad_value_ is clipvalue. torch.optim.AdamW is AdamW(epsilon_style='torch'); torch's `weight_decay` of
SGD, Adam and RMSprop is an L2 term added to the gradient (g + wd*theta), not this decay: to have that in
tinyseg, give the layers kernel_regularizer=L2(wd / 2) and bias_regularizer=L2(wd / 2)
(tinyseg/regularizers.py; Keras's L2 is not halved, so its gradient is wd * theta).

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
import sys

import numpy as np

from . import schedules
from .backend import NonFiniteError
from .schedules import LearningRateSchedule

# Keras's spelling keras.optimizers.schedules.CosineDecay, also as `from tinyseg.optimizers.schedules import ...`
sys.modules[__name__ + ".schedules"] = schedules


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


def _optional_positive(value, argument):
    """None, or a finite number > 0 (a clipping threshold)."""
    if value is None:
        return None
    value = real(value, argument)
    if not 0 < value < math.inf:
        raise ValueError(f"{argument} must be a finite number > 0 (or None for no clipping), got {value!r}")
    return value


def _weight_decay(value):
    if value is None:
        return None
    value = real(value, "weight_decay")
    if not 0 <= value < math.inf:
        raise ValueError(f"weight_decay must be a finite number >= 0 (or None), got {value!r}")
    return value


def _learning_rate(value):
    """A schedule as it is, or a float > 0 (the checks made when an optimizer is created)."""
    if isinstance(value, LearningRateSchedule):
        return value
    if callable(value):
        raise TypeError(f"learning_rate must be a number or a tinyseg.schedules.LearningRateSchedule, got the "
                        f"function {value!r} (wrap it in a LearningRateSchedule subclass)")
    value = real(value, "learning_rate")
    if not value > 0:
        raise ValueError(f"learning_rate must be > 0, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"learning_rate must be finite, got {value!r}")
    return value


def _norm(g, sum_of_squares):
    """||g||, from g.g when that is finite, else from g / max|g| (whose squares are at most 1) scaled back."""
    if math.isfinite(sum_of_squares):
        return math.sqrt(sum_of_squares)
    largest = float(np.max(np.abs(g)))
    scaled = (g / largest).reshape(-1).astype(np.float64)
    return largest * math.sqrt(float(np.dot(scaled, scaled)))


def _scaled(g, scale):
    """g * scale in g's dtype, through float64 when scale is below the dtype's normal numbers (a float32
    gradient near 1e38 clipped to norm 1 would otherwise be scaled by a subnormal, losing its digits)."""
    if scale >= np.finfo(g.dtype).tiny:
        return g * scale
    return (g.astype(np.float64) * scale).astype(g.dtype)


def _sum_of_squares(g):
    """g.g as a Python float: one pass, no temporary; NaN or inf if g holds NaN or inf or its squares overflow."""
    flat = g.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.dot(flat, flat))


class Optimizer:
    """What every optimizer shares: the learning rate (or its schedule), clipping, weight decay, the step
    count, the per-parameter slots, and the checks a step makes (module docstring).

    `learning_rate` reads as the rate the next step will take (a schedule's value at `iterations`); setting it
    replaces a float (a callback does so between epochs) or puts a schedule in its place. An optimizer made
    with a schedule refuses a plain number, as Keras does: the schedule owns the rate.
    """

    name = "optimizer"
    slot_names = ()              # the slots this optimizer may keep per parameter
    square_slots = ()            # the slots that average g^2, widened to float64 when g^2 overflows

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None):
        self._learning_rate = _learning_rate(learning_rate)
        self.weight_decay = _weight_decay(weight_decay)
        self.clipnorm = _optional_positive(clipnorm, "clipnorm")
        self.clipvalue = _optional_positive(clipvalue, "clipvalue")
        self.global_clipnorm = _optional_positive(global_clipnorm, "global_clipnorm")
        given = {k: v for k, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                                   ("global_clipnorm", global_clipnorm)) if v is not None}
        if len(given) > 1:
            raise ValueError("only one of clipnorm, clipvalue and global_clipnorm can be set (as in Keras), got "
                             + ", ".join(f"{k}={v!r}" for k, v in given.items()))
        self.iterations = 0
        self._slots = {}
        self._wide = set()       # positions whose g^2 overflows the parameter's dtype in this step

    @property
    def learning_rate(self):
        """The rate of the next step: the float, or schedule(iterations)."""
        lr = self._learning_rate
        return lr(self.iterations) if isinstance(lr, LearningRateSchedule) else lr

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, LearningRateSchedule):
            self._learning_rate = value
            return
        if isinstance(self._learning_rate, LearningRateSchedule):
            raise TypeError(f"{self.name}: this optimizer's learning rate is the schedule "
                            f"{type(self._learning_rate).__name__}, so it cannot be set to {value!r} (as in Keras); "
                            "create the optimizer with a float learning_rate to set it from a callback")
        self._learning_rate = value          # checked at the next step (a callback may set anything)

    def _step_learning_rate(self):
        """This step's rate, checked: the float (> 0), or what the schedule gives at `iterations` (>= 0: a
        cosine ends at 0)."""
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            value = lr(self.iterations)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or \
                    not 0 <= value < math.inf:
                raise ValueError(f"{self.name}: the schedule {type(lr).__name__} gave the learning rate {value!r} "
                                 f"for step {self.iterations}; it must be a finite number >= 0")
            return float(value)
        if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, numbers.Real) or not 0 < lr < math.inf:
            raise ValueError(f"{self.name}: learning_rate must be a finite number > 0, got {lr!r}")
        return float(lr)

    def apply_gradients(self, grads_and_vars, names=None):
        """Update every parameter in place from its gradient; one call is one step.

        In order: this step's learning rate; every pair checked (shapes, float dtypes, no NaN or inf); the
        gradients clipped; the weights decayed; each parameter updated (`update`). Everything that can refuse
        the step does so before anything changes (see the module docstring): a refused step changes no
        parameter, no slot and not `iterations`. `names`, if given, labels each parameter in the errors
        (a model passes "layer 'conv2d_1', parameter 'kernel'").
        """
        lr = self._step_learning_rate()
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
        squares = [_sum_of_squares(g) for g, _ in pairs]
        for i, ((g, _), ss) in enumerate(zip(pairs, squares)):
            bad = None if math.isfinite(ss) else ~np.isfinite(g)
            if bad is not None and bad.any():
                nan = int(np.isnan(g).sum())
                raise NonFiniteError(
                    f"{self.name}: the gradient of {labels[i]} holds {nan} NaN and {int(bad.sum()) - nan} infinite "
                    f"values (of {g.size}) at step {self.iterations + 1}; the step was not taken, no weight or "
                    "optimizer state changed. Common causes: a learning rate too high for the data, inputs not "
                    "scaled (images / 255), a loss on labels it does not expect.",
                    parameter=labels[i], step=self.iterations + 1)
        grads = self.clip_gradients([g for g, _ in pairs], squares)
        wide = set()
        for i, (g, (raw, _)) in enumerate(zip(grads, pairs)):
            if math.isfinite(squares[i] if g is raw else _sum_of_squares(g)):
                continue
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
            for i, (g, (_, theta)) in enumerate(zip(grads, pairs)):
                if self.weight_decay:
                    theta *= 1 - lr * self.weight_decay          # theta - lr*wd*theta, without a temporary
                self.update(i, g, theta, lr)
        finally:
            self._wide = set()

    def clip_gradients(self, grads, squares=None):
        """The gradients after this optimizer's clipnorm, global_clipnorm or clipvalue (module docstring).

        grads: a list of arrays (not changed: a clipped gradient is a new array, an unclipped one is returned
        as it is); squares: their sums of squares g.g if already known. Returns a list of the same shapes.
        """
        if squares is None:
            squares = [_sum_of_squares(g) for g in grads]
        if self.clipnorm is not None:
            c = self.clipnorm
            norms = [_norm(g, ss) for g, ss in zip(grads, squares)]
            return [_scaled(g, c / n) if n > c else g for g, n in zip(grads, norms)]
        if self.global_clipnorm is not None:
            c = self.global_clipnorm
            total = math.hypot(*(_norm(g, ss) for g, ss in zip(grads, squares)))    # hypot: no overflow
            return [_scaled(g, c / total) for g in grads] if total > c else list(grads)
        if self.clipvalue is not None:
            v = self.clipvalue
            return [np.clip(g, -v, v) for g in grads]
        return list(grads)

    def update(self, i, g, theta, lr):
        """Update parameter i (theta, in place) from its clipped gradient g with this step's rate lr; the
        slots are this optimizer's. `iterations` already counts this step (1 for the first)."""
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
        """The constructor's arguments (a schedule as {'class_name', 'config'}): what a model file keeps."""
        lr = self._learning_rate
        return {"learning_rate": schedules.serialize(lr) if isinstance(lr, LearningRateSchedule) else lr,
                "weight_decay": self.weight_decay, "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm}

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
    """Gradient descent, with optional (Nesterov) momentum: SGD(learning_rate=0.01, momentum=0.0, nesterov=False),
    and the arguments every optimizer takes (weight_decay, clipnorm, clipvalue, global_clipnorm; module
    docstring). Slot: 'velocity' (v, when momentum > 0)."""

    name = "sgd"
    slot_names = ("velocity",)

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm)
        self.momentum = _unit_interval(momentum, "momentum")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        self.nesterov = bool(nesterov)

    def update(self, i, g, theta, lr):
        # lr is a Python float: float32 parameters stay float32
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
    Also weight_decay, clipnorm, clipvalue, global_clipnorm (module docstring); AdamW is Adam with a default
    weight_decay.
    """

    name = "adam"
    slot_names = ("m", "v")
    square_slots = ("v",)

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, epsilon_style="keras",
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm)
        self.beta_1 = _unit_interval(beta_1, "beta_1")
        self.beta_2 = _unit_interval(beta_2, "beta_2")
        self.epsilon = _epsilon(epsilon)
        self.epsilon_style = _epsilon_style(epsilon_style)

    def update(self, i, g, theta, lr):
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
            lr_t = lr * (1 - b2 ** t) ** 0.5 / (1 - b1 ** t)    # Python floats: no upcast
            theta -= lr_t * m / (np.sqrt(v) + self.epsilon)
        else:
            m_hat = m / (1 - b1 ** t)
            v_hat = v / (1 - b2 ** t)
            theta -= lr * m_hat / (np.sqrt(v_hat) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "epsilon_style": self.epsilon_style}


class RMSprop(Optimizer):
    """RMSprop(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False), Keras's defaults and
    formula (in the module docstring): each step divides g by the root of a running mean of g^2.

    Slots, with Keras's names: 'velocity' (v), 'average_gradient' (a, when centered), 'momentum' (s, when
    momentum > 0). epsilon_style='torch' adds eps outside the root, as torch.optim.RMSprop does.
    Also weight_decay, clipnorm, clipvalue, global_clipnorm (module docstring).
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
        self.rho = _unit_interval(rho, "rho")
        self.momentum = _unit_interval(momentum, "momentum")
        self.epsilon = _epsilon(epsilon)
        if not isinstance(centered, (bool, np.bool_)):
            raise ValueError(f"centered must be True or False, got {centered!r}")
        self.centered = bool(centered)
        self.epsilon_style = _epsilon_style(epsilon_style)

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


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), Keras's `AdamW(learning_rate=0.001,
    weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7)`:

        theta <- theta - lr * wd * theta          first, with the weights before this step's update
        theta <- theta - lr_t * m / (sqrt(v) + eps)   then Adam's update (module docstring), g unchanged

    The decay is kept out of m and v: an L2 term in the gradient would be divided by sqrt(v) with the rest,
    so weights with large gradients would hardly be decayed; here every weight shrinks by the same factor
    1 - lr*wd per step, and then Adam moves it. With a schedule, lr is the step's scheduled rate in both
    lines (as in Keras and PyTorch).

    PyTorch's torch.optim.AdamW(lr, betas, eps, weight_decay) is the same algorithm in the same order
    (param.mul_(1 - lr * wd), then Adam's update) with epsilon after the bias correction: it equals
    AdamW(epsilon_style='torch'). Its defaults differ: weight_decay=0.01 and eps=1e-8 (Keras: 0.004, 1e-7).
    Slots as Adam's: 'm' and 'v', each of its parameter's shape; theta and g of any shape, the same.
    """

    name = "adamw"

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 epsilon_style="keras", clipnorm=None, clipvalue=None, global_clipnorm=None):
        if weight_decay is None:
            raise ValueError("AdamW: weight_decay must be a number >= 0 (it is what AdamW adds to Adam), got None")
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, epsilon_style=epsilon_style,
                         weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm)


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}
OPTIMIZER_CLASSES = {cls.__name__: cls for cls in OPTIMIZERS.values()}


def get(optimizer):
    """An Optimizer from a name ('sgd', 'adam', 'adamw', 'rmsprop', with Keras's default settings) or an
    Optimizer."""
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
    """The optimizer serialize() described, with a fresh state (a schedule's config is rebuilt first)."""
    cls = OPTIMIZER_CLASSES.get(spec.get("class_name")) if isinstance(spec, dict) else None
    if cls is None or not isinstance(spec.get("config"), dict):
        raise ValueError(f"unknown optimizer {spec!r} (known: {sorted(OPTIMIZER_CLASSES)})")
    config = dict(spec["config"])
    if isinstance(config.get("learning_rate"), dict):
        config["learning_rate"] = schedules.deserialize(config["learning_rate"])
    return cls(**config)
