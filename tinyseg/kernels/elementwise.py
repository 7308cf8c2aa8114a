"""Element-wise functions: ReLU forward and backward and the bias add of Conv2D and Dense (one parallel pass
each), and the logistic sigmoid.

    sigmoid(x)              y  = 1 / (1 + exp(-x)), never taking exp of a large positive number
    relu(x)                 y  = max(x, 0)
    relu_backward(g, x)     dx = g where x > 0, else 0
    add_bias(y, b)          y[..., f] += b[f]       in place; y (..., F), b (F,)

NumPy runs these on one core, and its backward makes a boolean mask first and selects second (two passes and
a temporary); the kernels split the values between threads and read each input once. NumPy's `y += b` over
a short last axis (F = 16 output channels) pays its inner-loop start-up once per pixel; the kernel does not.

Each function has a plain NumPy twin (``*_numpy``) that defines what the Numba kernel must compute; tests
prove them equal.
"""
import numpy as np

from .bands import piece, run_pieces
from .config import get_backend, pjit


def sigmoid(x):
    """The logistic function 1 / (1 + exp(-x)), written with exp(-|x|) so that no exp overflows (NumPy)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def relu_numpy(x):
    return np.maximum(x, 0)


def relu_backward_numpy(g, x):
    return np.where(x > 0, g, 0).astype(g.dtype, copy=False)    # not g * (x > 0): inf * 0 would be NaN


def add_bias_numpy(y, b):
    y += b.astype(y.dtype, copy=False)
    return y


@pjit
def _add_bias(chunk, chunks, y, b):
    r0, r1 = piece(y.shape[0], chunk, chunks)      # this thread's rows of y (pixels, F)
    rows = y[r0:r1]             # indices from 0: the compiler then knows they are not negative, and vectorises
    for r in range(rows.shape[0]):
        for f in range(rows.shape[1]):
            rows[r, f] += b[f]


@pjit
def _relu(chunk, chunks, x, out):
    r0, r1 = piece(x.size, chunk, chunks)      # this thread's values
    xs, outs = x[r0:r1], out[r0:r1]            # indices from 0: known not negative, so the loop vectorises
    for i in range(xs.size):
        outs[i] = 0 if xs[i] < 0 else xs[i]    # NaN stays NaN, as in np.maximum


@pjit
def _relu_backward(chunk, chunks, g, x, out):
    r0, r1 = piece(x.size, chunk, chunks)      # this thread's values
    gs, xs, outs = g[r0:r1], x[r0:r1], out[r0:r1]
    for i in range(xs.size):
        outs[i] = gs[i] if xs[i] > 0 else 0


def relu(x):
    """max(x, 0), a new array of x's shape and dtype."""
    if get_backend() == "numpy":
        return relu_numpy(x)
    out = np.empty_like(x, order="C")
    run_pieces(_relu, np.ascontiguousarray(x).reshape(-1), out.reshape(-1))
    return out


def relu_backward(g, x):
    """g * [x > 0], a new array (g and x have one shape)."""
    if get_backend() == "numpy":
        return relu_backward_numpy(g, x)
    out = np.empty_like(g, order="C")
    run_pieces(_relu_backward, np.ascontiguousarray(g).reshape(-1), np.ascontiguousarray(x).reshape(-1),
               out.reshape(-1))
    return out


def add_bias(y, b):
    """y += b over y's last axis, in place, and return y. y (..., F), b (F,) cast to y's dtype first; nothing
    else is broadcast."""
    if y.shape[-1:] != b.shape:
        raise ValueError(f"add_bias: b must have shape ({y.shape[-1]},) to match y's last axis, got {b.shape}")
    if get_backend() == "numpy" or not y.flags.c_contiguous:
        return add_bias_numpy(y, b)
    run_pieces(_add_bias, y.reshape(-1, b.shape[0]), np.ascontiguousarray(b, dtype=y.dtype))
    return y
