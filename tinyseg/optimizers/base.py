"""What every optimizer shares: the update contract, the learning rate, clipping, weight decay, the slots.

An optimizer updates parameters in place through `apply_gradients(grads_and_vars)`, a list of (gradient,
parameter) pairs (Keras's name and argument order). One call is one step; the subclass supplies only
`update(i, g, theta, lr)`, the formula for one parameter. As in Keras, the first step builds the optimizer:
it keeps the list of the parameters it was given (`optimizer.variables`), and state (velocities, moments) is
kept per position in that list: `optimizer._slots[(position, name)]`; `optimizer.iterations` counts the steps
taken. A later step may update fewer of them (a layer frozen since: its slots stay as they were), never one
it was not built with (a layer unfrozen since): that is refused, as Keras refuses it, since its moments
would start from zero in the middle of a run; compile again with a new optimizer to train it.
`get_state()` / `set_state()` hand the step count and slots over as arrays, which is how a saved model keeps
its optimizer (tinyseg/saving.py).

What every optimizer also takes (Keras's base-optimizer arguments), in the order a step applies them:

    learning_rate     a float, or a schedule (tinyseg.schedules, also tinyseg.optimizers.schedules):
                      lr = schedule(t) with t = iterations before the step (0 for the first), as Keras counts
    clipnorm, global_clipnorm, clipvalue      at most one (Keras refuses two); formulas in clipping.py
    weight_decay wd   decoupled decay of the weights before the update (Loshchilov & Hutter; AdamW):
                      theta <- theta - lr * wd * theta;  then the optimizer's update from the clipped g

PyTorch's `weight_decay` of SGD, Adam and RMSprop is an L2 term added to the gradient (g + wd*theta), not this
decay: to have that in tinyseg, give the layers kernel_regularizer=L2(wd / 2) and bias_regularizer=L2(wd / 2)
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

import numpy as np

from .. import schedules
from ..backend import NonFiniteError
from ..kernels import inplace
from ..schedules import LearningRateSchedule
from ..validation import integer, is_real_number, real_number
from .clipping import clip, sum_of_squares


def _optional_positive(value, argument):
    """None, or a finite number > 0 (a clipping threshold)."""
    if value is None:
        return None
    return real_number(value, argument, low=0, low_open=True,
                       expected="a finite number > 0 (or None for no clipping)")


def _learning_rate(value):
    """A schedule as it is, or a float > 0 (the checks made when an optimizer is created)."""
    if isinstance(value, LearningRateSchedule):
        return value
    if callable(value):
        raise TypeError(f"learning_rate must be a number or a tinyseg.schedules.LearningRateSchedule, got the "
                        f"function {value!r} (wrap it in a LearningRateSchedule subclass)")
    return real_number(value, "learning_rate", low=0, low_open=True)


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
        self.weight_decay = None if weight_decay is None else real_number(
            weight_decay, "weight_decay", low=0, expected="a finite number >= 0 (or None)")
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
        self._positions = None   # id(parameter) -> its position in `variables`, from the first step on
        self._variables = []
        self._wide = set()       # positions whose g^2 overflows the parameter's dtype in this step
        self.work = inplace.WorkArrays()       # scratch for the in-place updates: not state

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
            if not is_real_number(value) or not 0 <= value < math.inf:
                raise ValueError(f"{self.name}: the schedule {type(lr).__name__} gave the learning rate {value!r} "
                                 f"for step {self.iterations}; it must be a finite number >= 0")
            return float(value)
        if not is_real_number(lr) or not 0 < lr < math.inf:
            raise ValueError(f"{self.name}: learning_rate must be a finite number > 0, got {lr!r}")
        return float(lr)

    @property
    def built(self):
        return self._positions is not None

    @property
    def variables(self):
        """The parameters this optimizer was built with (its first step's, or set_state's), in order."""
        return list(self._variables)

    def build(self, variables):
        """Keep `variables` (the parameter arrays) as the ones this optimizer updates, slots by position."""
        self._variables = list(variables)
        self._positions = {id(v): i for i, v in enumerate(self._variables)}

    def _positions_of(self, pairs, labels):
        """Each pair's position among `variables` (0, 1, ... before the first step, which builds them)."""
        if not self.built:
            return list(range(len(pairs)))
        positions = []
        for (_, theta), label in zip(pairs, labels):
            if id(theta) not in self._positions:
                raise ValueError(
                    f"{self.name}: {label} is not among the {len(self._variables)} parameters this optimizer was "
                    "built with at its first step (it was frozen then, or is new); as in Keras, an optimizer "
                    "only updates the parameters it was built with. To train it, compile again with a new "
                    "optimizer: model.compile(optimizer=keras.optimizers.Adam(...), loss=...)")
            positions.append(self._positions[id(theta)])
        return positions

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
        self._check_pairs(pairs, labels)
        positions = self._positions_of(pairs, labels)
        squares = [sum_of_squares(g) for g, _ in pairs]
        self._refuse_non_finite(pairs, squares, labels)
        grads = self.clip_gradients([g for g, _ in pairs], squares)
        wide = self._overflowing_squares(grads, pairs, squares, labels)
        # nothing has changed so far; from here the step cannot be refused
        if not self.built:
            self.build([theta for _, theta in pairs])
        self.iterations += 1
        self._wide = {positions[k] for k in wide}
        try:
            for i, g, (_, theta) in zip(positions, grads, pairs):
                if self.weight_decay:
                    theta *= 1 - lr * self.weight_decay          # theta - lr*wd*theta, without a temporary
                self.update(i, g, theta, lr)
        finally:
            self._wide = set()

    def _check_pairs(self, pairs, labels):
        """Each pair two float arrays of one shape."""
        for i, (g, theta) in enumerate(pairs):
            if not isinstance(g, np.ndarray) or not isinstance(theta, np.ndarray):
                raise TypeError(f"{self.name}: pair {i} must be two NumPy arrays (gradient, parameter), got "
                                f"({type(g).__name__}, {type(theta).__name__})")
            if g.shape != theta.shape:
                raise ValueError(f"{self.name}: gradient {i} has shape {g.shape}, parameter {theta.shape}")
            if g.dtype.kind != "f" or theta.dtype.kind != "f":
                raise TypeError(f"{self.name}: the gradient and the parameter of {labels[i]} must be float arrays, "
                                f"got {g.dtype} and {theta.dtype}")

    def _refuse_non_finite(self, pairs, squares, labels):
        """NonFiniteError for the first gradient holding NaN or inf (looked for only where g.g is not finite)."""
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

    def _overflowing_squares(self, grads, pairs, squares, labels):
        """The positions whose (clipped) g^2 overflows the gradient's dtype: their square slots are widened to
        float64 (module docstring). A float64 g^2 that overflows has no wider type: NonFiniteError."""
        wide = set()
        for i, (g, (raw, _)) in enumerate(zip(grads, pairs)):
            if math.isfinite(squares[i] if g is raw else sum_of_squares(g)):
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
        return wide

    def clip_gradients(self, grads, squares=None):
        """The gradients after this optimizer's clipnorm, global_clipnorm or clipvalue (clipping.py).

        grads: a list of arrays (not changed: a clipped gradient is a new array, an unclipped one is returned
        as it is); squares: their sums of squares g.g if already known. Returns a list of the same shapes.
        """
        if squares is None:
            squares = [sum_of_squares(g) for g in grads]
        return clip(grads, squares, clipnorm=self.clipnorm, global_clipnorm=self.global_clipnorm,
                    clipvalue=self.clipvalue)

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

    def plain_slots(self, i, g, theta, *names):
        """True when g and the slots `names` of parameter i have theta's dtype and none widens in this step:
        the case that the in-place updates (kernels/inplace.py) take."""
        return (i not in self._wide and g.dtype == theta.dtype
                and all(self.slot(i, name, theta).dtype == theta.dtype for name in names))

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
    def get_state(self, params=None):
        """{'iterations': int, 'slots': [(position, name, array copy), ...]} in a fixed order.

        positions: in `variables`; or, given `params` (the model's trainable weights when it is saved), in
        params, leaving out the slots of parameters not among them (frozen since the first step)."""
        known = self._positions or {}
        renumber = {i: i for i, _ in self._slots} if params is None else {
            known[id(p)]: j for j, p in enumerate(params) if id(p) in known}
        slots = [(renumber[i], name, value.copy()) for (i, name), value in self._slots.items() if i in renumber]
        return {"iterations": int(self.iterations), "slots": sorted(slots, key=lambda slot: slot[:2])}

    def set_state(self, state, params):
        """Take the step count and slots of get_state() for these parameters (the model's, in order), which
        the optimizer is then built with (see `variables`).

        Everything is checked before anything is set: positions within params, known slot names, the
        parameter's shape, a float dtype (the parameter's, or float64 for a widened g^2 slot), finite values.
        """
        iterations = integer(state.get("iterations") if isinstance(state, dict) else None,
                             f"{self.name}: the state's iterations", low=0, expected="a non-negative integer")
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
        self.iterations = iterations
        self._slots = slots
        self.build(params)


def unit_interval(value, argument):
    """value in [0, 1), as the betas, rho and momentum must be."""
    return real_number(value, argument, low=0, high=1, high_open=True)


def positive_epsilon(value):
    """A finite epsilon > 0: it keeps the step's division by the root of the squares from 0 / 0."""
    return real_number(value, "epsilon", low=0, low_open=True, expected="a finite number > 0")
