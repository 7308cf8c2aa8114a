"""Weight initialisers, with Keras's names and formulas.

    glorot_uniform:  U(-limit, limit),  limit = sqrt(6 / (fan_in + fan_out))      (Keras's default kernel)
    he_normal:       N(0, 2 / fan_in) truncated at 2 standard deviations
    zeros, ones

For a kernel of shape (KH, KW, C_in, C_out): fan_in = KH*KW*C_in, fan_out = KH*KW*C_out; for a dense kernel
(D_in, D_out): fan_in = D_in, fan_out = D_out.

A layer calls an initializer as Keras does, init(shape, dtype), once per weight when it is built. Every
initializer tinyseg hands a layer (its own, and a function of yours through `get`) is wrapped by `checked`:

- what it returns must be real numbers of the asked shape, finite once cast to the layer's dtype; else the
  error names the layer, the argument (kernel_initializer, ...) and the function, at build, instead of NaN
  predictions later and a fit that blames divergence;
- inside `size_ceiling(n)` the initializers together may create at most n numbers, checked before each
  array is allocated: load_model sets n to what its file stores, so a small file whose config declares a
  huge layer is refused before that layer's memory is asked for.
"""
import contextlib
import contextvars
import functools
import sys

import numpy as np

from . import backend


class CeilingExceeded(ValueError):
    """An initializer was asked for more numbers than the size_ceiling around it allows."""


_ceiling = contextvars.ContextVar("initializer_ceiling", default=None)     # [numbers still allowed] or None


@contextlib.contextmanager
def size_ceiling(numbers):
    """Within the block, the initializers together create at most `numbers` numbers (CeilingExceeded else)."""
    token = _ceiling.set([int(numbers)])
    try:
        yield
    finally:
        _ceiling.reset(token)


def _caller(wrapper, depth=2):
    """'conv2d_1: kernel_initializer ' for the layer whose build called `wrapper`, or '' if no layer did.

    Layers call init(shape, dtype), Keras's signature, so neither the layer nor the argument is passed: the
    layer is `self` in the frame that called the wrapper (`depth` frames up from here), and the argument is
    the layer's attribute holding the wrapper."""
    owner = sys._getframe(depth).f_locals.get("self")
    name = getattr(owner, "name", None)
    if not isinstance(name, str):
        return ""
    arguments = [key for key, value in getattr(owner, "__dict__", {}).items() if value is wrapper]
    return f"{name}: " + (f"{arguments[0]} " if arguments else "")


def checked(fn):
    """fn(shape, dtype) with its result checked and cast to dtype (module docstring); a wrapper already is."""
    if getattr(fn, "checks_its_weights", False):
        return fn

    @functools.wraps(fn)
    def initializer(shape, dtype):
        shape = tuple(int(d) for d in shape)
        _spend(int(np.prod(shape, dtype=object)), shape, initializer)      # before anything is allocated
        w = np.asarray(fn(shape, dtype))
        if w.dtype.kind not in "fiu" or w.shape != shape:
            raise ValueError(f"{_caller(initializer)}{_name(fn)} must return real numbers of shape {shape}, got "
                             f"{w.shape} {w.dtype}")
        with np.errstate(over="ignore", invalid="ignore"):
            w = np.array(w, dtype=dtype)          # a copy: two layers never share an array the function kept
        if not np.all(np.isfinite(w)):
            raise ValueError(f"{_caller(initializer)}{_name(fn)} returned NaN or inf (in {np.dtype(dtype).name}) "
                             f"for a weight of shape {shape}; an initial weight must be a finite number")
        return w

    initializer.checks_its_weights = True
    return initializer


def _spend(size, shape, wrapper):
    """Take `size` numbers from the size_ceiling around this call, if there is one."""
    left = _ceiling.get()
    if left is None:
        return
    if size > left[0]:
        raise CeilingExceeded(f"{_caller(wrapper, 3) or 'an initializer '}asks for a weight of shape {shape} "
                              f"({size} numbers), more than the {left[0]} left under the ceiling")
    left[0] -= size


def _name(fn):
    return getattr(fn, "__name__", None) or repr(fn)


def fans(shape):
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


@checked
def glorot_uniform(shape, dtype):
    fan_in, fan_out = fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return backend.rng().uniform(-limit, limit, size=shape).astype(dtype)


@checked
def he_normal(shape, dtype):
    std = np.sqrt(2.0 / fans(shape)[0])
    w = backend.rng().standard_normal(size=shape)
    while np.any(np.abs(w) > 2):                        # redraw the tails, as a truncated normal
        bad = np.abs(w) > 2
        w[bad] = backend.rng().standard_normal(size=int(bad.sum()))
    return (w * std / 0.87962566103423978).astype(dtype)   # 0.8796...: std of N(0,1) truncated at +-2


@checked
def zeros(shape, dtype):
    return np.zeros(shape, dtype=dtype)


@checked
def ones(shape, dtype):
    return np.ones(shape, dtype=dtype)


INITIALIZERS = {"glorot_uniform": glorot_uniform, "he_normal": he_normal, "zeros": zeros, "ones": ones}


def get(name):
    """The initializer named `name` (one of INITIALIZERS), or the function `name`, wrapped by `checked`."""
    if callable(name):
        return checked(name)
    if name not in INITIALIZERS:
        raise ValueError(f"initializer must be one of {sorted(INITIALIZERS)} or a function, got {name!r}")
    return INITIALIZERS[name]
