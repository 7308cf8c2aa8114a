"""Gradient clipping, Keras's `clipnorm`, `global_clipnorm` and `clipvalue` (one at most per optimizer):

    clipnorm c        each gradient rescaled to at most norm c:   g <- g * c / ||g||   where ||g|| > c
    global_clipnorm c all gradients rescaled together:           g_i <- g_i * c / N   where N > c,
                      N = sqrt(sum_i ||g_i||^2), the norm of all gradients as one vector
    clipvalue v       each entry clipped:                          g <- min(max(g, -v), v)

Shapes: grads is a list of arrays of any shapes; the result is a list of the same shapes and dtypes.
Clipping makes new arrays (a layer's grads keep what backward computed) and comes after the step's check for
NaN and inf, so a NaN gradient is reported as such, not clipped into something else.

Norms are sums of squares: where those overflow (a float32 gradient near 1e19) the norm is taken of
g / max|g| and scaled back, so a huge but finite gradient is clipped, not zeroed.

PyTorch: torch.nn.utils.clip_grad_norm_ is global_clipnorm (per parameter when called on one), with
max_norm / (N + 1e-6) for c / N: its clipped gradients are these times N / (N + 1e-6);
clip_grad_value_ is clipvalue.
"""
import math

import numpy as np


def sum_of_squares(g):
    """g.g as a Python float: one pass, no temporary; NaN or inf if g holds NaN or inf or its squares overflow."""
    flat = g.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.dot(flat, flat))


def norm(g, squares):
    """||g||, from squares = g.g when that is finite, else from g / max|g| (whose squares are at most 1) scaled
    back."""
    if math.isfinite(squares):
        return math.sqrt(squares)
    largest = float(np.max(np.abs(g)))
    scaled = (g / largest).reshape(-1).astype(np.float64)
    return largest * math.sqrt(float(np.dot(scaled, scaled)))


def scaled(g, scale):
    """g * scale in g's dtype, through float64 when scale is below the dtype's normal numbers (a float32
    gradient near 1e38 clipped to norm 1 would otherwise be scaled by a subnormal, losing its digits)."""
    if scale >= np.finfo(g.dtype).tiny:
        return g * scale
    return (g.astype(np.float64) * scale).astype(g.dtype)


def clip(grads, squares, clipnorm=None, global_clipnorm=None, clipvalue=None):
    """The gradients after the one clipping that is set (none: the list as it is).

    grads: a list of arrays (not changed: a clipped gradient is a new array, an unclipped one is returned as
    it is); squares: their sums of squares g.g. Returns a list of the same shapes.
    """
    if clipnorm is not None:
        c = clipnorm
        norms = [norm(g, ss) for g, ss in zip(grads, squares)]
        return [scaled(g, c / n) if n > c else g for g, n in zip(grads, norms)]
    if global_clipnorm is not None:
        c = global_clipnorm
        total = math.hypot(*(norm(g, ss) for g, ss in zip(grads, squares)))    # hypot: no overflow
        return [scaled(g, c / total) for g in grads] if total > c else list(grads)
    if clipvalue is not None:
        return [np.clip(g, -clipvalue, clipvalue) for g in grads]
    return list(grads)
