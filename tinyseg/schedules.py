"""Learning-rate schedules: the learning rate as a function of the step, Keras 3's classes and formulas.

A schedule is given wherever a learning rate is, `SGD(learning_rate=CosineDecay(0.1, 1000))`, and the
optimizer asks it for the rate of every step:

    lr(step t) = schedule(t),    t = optimizer.iterations before the step: 0 for the first step, 1 for the next

(Keras counts the same way). The schedule itself has no state: the step count is the optimizer's, saved with
its slots, so a run resumed from a file takes the rates an unbroken run would (tinyseg/saving.py).

    ExponentialDecay(lr0, decay_steps, decay_rate, staircase=False)
        lr(t) = lr0 * decay_rate ** (t / decay_steps)          (staircase: floor(t / decay_steps) instead)

    PiecewiseConstantDecay(boundaries=[b_0, ..., b_{n-1}], values=[v_0, ..., v_n])
        lr(t) = v_0 for t <= b_0,   v_i for b_{i-1} < t <= b_i,   v_n for t > b_{n-1}
        (a boundary step still has the rate before it: the change is felt from step b_i + 1)

    CosineDecay(lr0, decay_steps, alpha=0.0, warmup_target=None, warmup_steps=0)
        without warm-up (warmup_target None):  s = min(t, D)
            lr(t) = lr0 * ((1 - alpha) * (1 + cos(pi * s / D)) / 2 + alpha)
        with warm-up to warmup_target = T over W steps:  s = min(t, W + D)
            lr(t) = lr0 + (T - lr0) * s / W                               for s < W   (a straight line up)
            lr(t) = T * ((1 - alpha) * (1 + cos(pi * (s - W) / D)) / 2 + alpha)   after: the cosine from T
        D = decay_steps. The rate ends at alpha * lr0 (alpha * T with warm-up) and stays there.

Why schedules help: a large rate early moves fast across the loss surface, a small rate late settles into a
minimum instead of bouncing around it. A warm-up starts small because Adam's and momentum's running averages
know nothing yet at step 0, and a large first step on a fresh network can throw it far off.

The rates are Python floats (float64); Keras computes a float32 rate in float32, which differs in the 8th
digit. A float32 parameter still steps in float32 (a Python float does not upcast NumPy's float32 arrays).
"""
import bisect
import math

import numpy as np

from . import registry
from .validation import flag, real_number


def _real(value, argument, who):
    return real_number(value, f"{who}: {argument}")


def _positive(value, argument, who):
    return real_number(value, f"{who}: {argument}", low=0, low_open=True)


def _non_negative(value, argument, who):
    return real_number(value, f"{who}: {argument}", low=0)


def _count(value, checked):
    """The checked number, as an int if it was given as one (decay_steps=1000 saves as 1000, not 1000.0)."""
    return int(value) if isinstance(value, (int, np.integer)) else checked


class LearningRateSchedule:
    """The base class: `schedule(step)` -> the learning rate (a float) of the step with that index.

    step: a number >= 0, the optimizer's `iterations` before the step (an int; floats are accepted, as Keras
    casts the step to float); the result is a Python float >= 0.

    A schedule of your own overrides `__call__(step)`, and `get_config()` (the constructor's arguments) if a
    model compiled with it is to be saved; load_model rebuilds only tinyseg's own schedules.
    """

    def __call__(self, step):
        raise NotImplementedError(f"{type(self).__name__} must define __call__(self, step)")

    def get_config(self):
        raise NotImplementedError(f"{type(self).__name__} must define get_config() to be saved")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _step(self, step):
        """The step as a float, checked: a non-negative real number (the optimizer passes its iterations)."""
        return real_number(step, f"{type(self).__name__}: the step", low=0, expected="a number >= 0")

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class ExponentialDecay(LearningRateSchedule):
    """lr(t) = initial_learning_rate * decay_rate ** (t / decay_steps); with staircase=True the exponent is
    floor(t / decay_steps), so the rate drops by a factor decay_rate every decay_steps steps.

    Keras's `ExponentialDecay(initial_learning_rate, decay_steps, decay_rate, staircase=False)`. The same
    as PyTorch's ExponentialLR(gamma) stepped every step when decay_steps = 1 and decay_rate = gamma, and as
    StepLR(step_size=decay_steps, gamma=decay_rate) with staircase=True.
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="ExponentialDecay"):
        who = "ExponentialDecay"
        self.initial_learning_rate = _positive(initial_learning_rate, "initial_learning_rate", who)
        self.decay_steps = _count(decay_steps, _positive(decay_steps, "decay_steps", who))
        self.decay_rate = _positive(decay_rate, "decay_rate", who)
        self.staircase = flag(staircase, f"{who}: staircase")
        self.name = str(name)

    def __call__(self, step):
        p = self._step(step) / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """lr(t) = values[i], where i is the number of boundaries below t (boundaries strictly increasing):

        values[0] for t <= boundaries[0],  values[1] for boundaries[0] < t <= boundaries[1], ...,
        values[-1] for t > boundaries[-1]

    Keras's `PiecewiseConstantDecay(boundaries, values)`; len(values) = len(boundaries) + 1. PyTorch's
    MultiStepLR(milestones, gamma) is the case values[i] = lr0 * gamma**i, with milestones = boundaries + 1
    (torch's milestone m is the first step with the new rate; Keras's boundary b is the last with the old).
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        who = "PiecewiseConstantDecay"
        for argument, given in (("boundaries", boundaries), ("values", values)):
            if isinstance(given, (str, bytes, dict)) or not hasattr(given, "__iter__"):
                raise TypeError(f"{who}: {argument} must be a list of numbers, got {given!r}")
        boundaries = [_count(b, _real(b, "boundaries", who)) for b in boundaries]
        values = [_non_negative(v, "values", who) for v in values]
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"{who}: values must have one more entry than boundaries (one rate before the first "
                             f"boundary and one after each); got {len(boundaries)} boundaries and {len(values)} "
                             "values")
        if any(b >= c for b, c in zip(boundaries, boundaries[1:])):
            raise ValueError(f"{who}: boundaries must be strictly increasing, got {boundaries}")
        self.boundaries, self.values, self.name = boundaries, values, str(name)

    def __call__(self, step):
        # bisect_left counts the boundaries strictly below t: a boundary step keeps the rate before it
        return self.values[bisect.bisect_left(self.boundaries, self._step(step))]

    def get_config(self):
        return {"boundaries": list(self.boundaries), "values": list(self.values), "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Half a cosine from the initial rate down to alpha times it over decay_steps, optionally after a
    linear warm-up (formulas in the module docstring).

    Keras 3's `CosineDecay(initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
    warmup_target=None, warmup_steps=0)`, arguments in its order. With warmup_target T, the rate climbs in a
    straight line from initial_learning_rate (often 0) to T over warmup_steps, then decays from T over
    decay_steps more. PyTorch's CosineAnnealingLR(T_max=decay_steps, eta_min=alpha * lr0) has the same
    formula up to decay_steps (it then climbs again, this one stays at the end value); the warm-up is
    LinearLR(start_factor=lr0 / T, total_iters=warmup_steps) followed by it (SequentialLR).
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay", warmup_target=None,
                 warmup_steps=0):
        who = "CosineDecay"
        self.initial_learning_rate = _non_negative(initial_learning_rate, "initial_learning_rate", who)
        self.decay_steps = _count(decay_steps, _positive(decay_steps, "decay_steps", who))
        self.alpha = _real(alpha, "alpha", who)
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"{who}: alpha (the final rate as a fraction of the decay's start) must be in [0, 1], "
                             f"got {alpha!r}")
        self.warmup_target = None if warmup_target is None else _positive(warmup_target, "warmup_target", who)
        self.warmup_steps = _count(warmup_steps, _non_negative(warmup_steps, "warmup_steps", who))
        if self.warmup_target is None and self.warmup_steps > 0:
            # Keras ignores warmup_steps then; a warm-up asked for and silently not done is a trap
            raise ValueError(f"{who}: warmup_steps={warmup_steps!r} needs warmup_target, the rate the warm-up "
                             "climbs to (it starts at initial_learning_rate)")
        if self.warmup_target is None and self.initial_learning_rate == 0:
            raise ValueError(f"{who}: initial_learning_rate=0 without a warm-up makes every rate 0; give "
                             "initial_learning_rate > 0, or warmup_target to climb from 0")
        self.name = str(name)

    def __call__(self, step):
        t = self._step(step)
        d, w = float(self.decay_steps), float(self.warmup_steps)
        if self.warmup_target is None:
            start, s = self.initial_learning_rate, min(t, d)
        else:
            s = min(t, w + d)
            if s < w:
                return self.initial_learning_rate + (self.warmup_target - self.initial_learning_rate) * s / w
            start, s = self.warmup_target, s - w
        cosine = 0.5 * (1.0 + math.cos(math.pi * s / d))
        return start * ((1 - self.alpha) * cosine + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


SCHEDULES = {cls.__name__: cls for cls in (ExponentialDecay, PiecewiseConstantDecay, CosineDecay)}


def serialize(schedule):
    """{'class_name': ..., 'config': ...} of one of tinyseg's schedules (JSON-able; saved in a model file)."""
    return registry.serialize(schedule, SCHEDULES, "learning-rate schedule")


def deserialize(spec):
    """The schedule serialize() described. Keras's own form, with 'module' and 'registered_name', is read too."""
    cls, config = registry.lookup(spec, SCHEDULES, "learning-rate schedule")
    return cls.from_config(config)


__all__ = ["CosineDecay", "ExponentialDecay", "LearningRateSchedule", "PiecewiseConstantDecay", "deserialize",
           "serialize"]
