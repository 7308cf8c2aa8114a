"""Finite-difference gradient checks: is backward() the derivative of forward()?

For a layer f and a fixed random upstream gradient G we check the scalar L(x, theta) = sum(f(x) * G), whose
exact gradients are what backward(G) returns:

    dL/dx = layer.backward(G),   dL/dtheta = layer.grads[name]

Each entry is compared with the central difference

    n_i = (L(x + h e_i) - L(x - h e_i)) / (2 h)          (error O(h^2); h = 1e-5 in float64)

through the relative error   rel_i = |a_i - n_i| / max(floor, |a_i| + |n_i|),
and the report gives the largest rel_i, how many entries were checked and how many exceeded `tol`.
Run it in float64: in float32 the rounding of L alone is bigger than the quantities being compared.

A loss is checked the same way with G = 1: L = loss(y_true, y_pred), dL/dy_pred = loss.backward().
"""
import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class GradCheckReport:
    """What a check found: the worst relative error, per array and overall."""

    name: str
    max_rel_error: float = 0.0
    n_checked: int = 0
    n_failed: int = 0
    tol: float = 1e-6
    per_array: dict = field(default_factory=dict)   # array name -> (max_rel_error, n_checked, n_failed)

    @property
    def ok(self):
        return self.n_failed == 0 and self.n_checked > 0

    def add(self, array_name, analytic, numeric, floor):
        rel = np.abs(analytic - numeric) / np.maximum(floor, np.abs(analytic) + np.abs(numeric))
        worst = float(rel.max()) if rel.size else 0.0
        failed = int((rel > self.tol).sum())
        self.per_array[array_name] = (worst, int(rel.size), failed)
        self.max_rel_error = max(self.max_rel_error, worst)
        self.n_checked += int(rel.size)
        self.n_failed += failed

    def __str__(self):
        lines = [f"{self.name}: max relative error {self.max_rel_error:.2e} over {self.n_checked} partial "
                 f"derivatives, {self.n_failed} above {self.tol:g}"]
        for key, (worst, n, failed) in self.per_array.items():
            lines.append(f"  {key:<12} {worst:.2e}  ({n} checked, {failed} failed)")
        return "\n".join(lines)


def numeric_gradient(f, array, indices, h, weights=None):
    """Central differences with respect to array.flat[indices] (changed in place, then restored exactly).

    Without `weights`, f() returns a scalar L and the result is (L(+h) - L(-h)) / 2h. With `weights` G, f()
    returns an array y and the result is sum((y(+h) - y(-h)) * G) / 2h: subtracting element by element
    before summing keeps the rounding error of the big sum out of the small difference.
    """
    flat = array.reshape(-1)            # a view: writing to it moves the array f() reads
    out = np.empty(len(indices))
    for k, i in enumerate(indices):
        old = flat[i]
        flat[i] = old + h
        plus = np.array(f(), dtype=np.float64, copy=True)    # copies: f() may return a view of the input
        flat[i] = old - h
        minus = np.array(f(), dtype=np.float64, copy=True)
        flat[i] = old
        diff = plus - minus
        out[k] = (diff if weights is None else _dot(diff, weights)) / (2 * h)
    return out


def _pick(size, max_entries, rng):
    if max_entries is None or size <= max_entries:
        return np.arange(size)
    return np.sort(rng.choice(size, max_entries, replace=False))


def _dot(a, b):
    """sum(a * b), summed exactly (math.fsum) so its own rounding does not pollute the difference."""
    return math.fsum((a * b).ravel().tolist())


def noise_floor(scale, h, tol):
    """The `floor` of the relative error: 10 * eps * max(scale, 1) / (h * tol).

    The numeric derivative carries a rounding error of about eps * scale / (2h) (scale: the size of what is
    differenced). Dividing by `floor` instead of |a| + |n| when both are smaller than it holds such entries to
    an absolute error of tol * floor, about 2e-10 * scale, which rounding can meet; a wrong formula still
    fails by orders of magnitude.
    """
    return 10 * np.finfo(np.float64).eps * max(scale, 1.0) / (h * tol)


def check_layer(layer, x, training=False, h=1e-5, tol=1e-6, floor=None, max_entries=400, seed=0,
                forward=None, backward=None):
    """Check a layer's input gradient and every parameter gradient. Returns a GradCheckReport.

    For a model (anything with `layers` and no `params` of its own), every layer's parameters are checked.

    x must be float64 and the layer built in float64. `max_entries` caps how many entries of each array are
    checked (drawn at random); None checks all. `floor` defaults to noise_floor(||f(x) * G||, h, tol).
    `forward`/`backward` replace layer.forward/backward (the models use this to check their whole stack).
    """
    if x.dtype != np.float64:
        raise TypeError(f"check_layer: x must be float64 for a meaningful check, got {x.dtype}")
    forward = forward or (lambda inp: layer.forward(inp, training=training))
    backward = backward or layer.backward
    rng = np.random.default_rng(seed)
    x = x.copy()
    y = forward(x)
    upstream = rng.standard_normal(y.shape)
    dx = backward(upstream.copy())
    report = GradCheckReport(getattr(layer, "name", type(layer).__name__), tol=tol)

    def outputs():
        return forward(x)

    if floor is None:
        floor = noise_floor(np.linalg.norm(y * upstream), h, tol)
    idx = _pick(x.size, max_entries, rng)
    report.add("input", dx.reshape(-1)[idx], numeric_gradient(outputs, x, idx, h, upstream), floor)
    owners = [layer] if hasattr(layer, "params") else layer.layers        # a model: every layer's parameters
    for owner in owners:
        for key, param in owner.params.items():
            analytic = owner.grads[key].copy()
            idx = _pick(param.size, max_entries, rng)
            name = key if owner is layer else f"{owner.name}/{key}"
            report.add(name, analytic.reshape(-1)[idx], numeric_gradient(outputs, param, idx, h, upstream), floor)
    return report


def check_model(model, x, training=True, **kwargs):
    """check_layer for a whole model (Sequential or UNet): its input gradient and every layer's parameters,
    through model.call(..., logits=False) and model.backward."""
    return check_layer(model, x, forward=lambda inp: model.call(inp, training=training),
                       backward=model.backward, **kwargs)


def check_loss(loss, y_true, y_pred, h=1e-5, tol=1e-6, floor=None, max_entries=400, seed=0):
    """Check loss.backward() against central differences of loss.forward(y_true, y_pred) in y_pred.

    A loss is one number, so its rounding error (about eps * |L|, eps = 2.2e-16) divided by 2h is noise in
    every numeric partial derivative; `floor` defaults to noise_floor(|L|, h, tol).
    """
    if y_pred.dtype != np.float64:
        raise TypeError(f"check_loss: y_pred must be float64 for a meaningful check, got {y_pred.dtype}")
    rng = np.random.default_rng(seed)
    y_pred = y_pred.copy()
    value = loss.forward(y_true, y_pred)
    analytic = loss.backward().copy()
    if floor is None:
        floor = noise_floor(abs(value), h, tol)
    report = GradCheckReport(type(loss).__name__, tol=tol)
    idx = _pick(y_pred.size, max_entries, rng)
    numeric = numeric_gradient(lambda: float(loss.forward(y_true, y_pred)), y_pred, idx, h)
    report.add("y_pred", analytic.reshape(-1)[idx], numeric, floor)
    return report
