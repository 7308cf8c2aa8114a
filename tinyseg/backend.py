"""Global settings shared by every layer: the default float type, the random generator and the backend; and
the error that non-finite numbers raise.

Keras keeps the first two settings in `keras.backend.floatx()` and `keras.utils.set_random_seed`; tinyseg
names them the same way so a Keras reader finds them.

The backend says which code a layer runs:

    'numba' (default)   the layer's one guarded line `if fast(): ...` calls its kernel (tinyseg/kernels/):
                        the same numbers, computed band by band on tinyseg's threads
    'numpy'             that line is skipped: the layer runs the plain NumPy lines below it, the formulas of
                        its docstring, which a debugger can step through; the kernels that a layer still
                        calls run their NumPy twins

Set it with the environment variable TINYSEG_BACKEND=numpy before the first import, or `set_backend('numpy')`
at run time. (NUMBA_DISABLE_JIT=1 is the other way to step through code: it runs the kernels' own loops as
Python.)
"""
import os

import numpy as np

_FLOATX = "float32"
_RNG = np.random.default_rng(0)
_BACKENDS = ("numba", "numpy")
_BACKEND = os.environ.get("TINYSEG_BACKEND", "numba")
if _BACKEND not in _BACKENDS:
    raise ValueError(f"TINYSEG_BACKEND must be one of {_BACKENDS}, got {_BACKEND!r}")


def get_backend():
    """'numba' or 'numpy': which code the layers run (see the module docstring)."""
    return _BACKEND


def set_backend(name):
    """Choose 'numba' (the layers call their kernels) or 'numpy' (the plain NumPy lines, and the kernels'
    NumPy twins) for every layer from now on."""
    global _BACKEND
    if name not in _BACKENDS:
        raise ValueError(f"set_backend: name must be one of {_BACKENDS}, got {name!r}")
    _BACKEND = name


def fast():
    """True if layers take their kernel's fast path (the backend is 'numba'): the test of the one guarded line
    in each layer's forward and backward."""
    return _BACKEND == "numba"


def floatx():
    """The dtype new layers create their weights in ('float32' unless `set_floatx` changed it)."""
    return _FLOATX


def set_floatx(dtype):
    """Make new layers use `dtype` ('float32' or 'float64') for their weights and inputs."""
    global _FLOATX
    dtype = np.dtype(dtype).name
    if dtype not in ("float32", "float64"):
        raise ValueError(f"set_floatx: dtype must be 'float32' or 'float64', got {dtype!r}")
    _FLOATX = dtype


class NonFiniteError(FloatingPointError):
    """A NaN or an infinity where training needs a finite number (a gradient, a batch statistic).

    Raised *before* the value is used, so the call that raises changes nothing. `parameter` names what went
    bad (e.g. "layer 'conv2d_1', parameter 'kernel'") and `step` the optimizer step it would have been.
    """

    def __init__(self, message, parameter=None, step=None):
        super().__init__(message)
        self.parameter = parameter
        self.step = step


def set_random_seed(seed):
    """Seed the generator that initialises weights, shuffles batches and draws dropout masks."""
    global _RNG
    _RNG = np.random.default_rng(seed)


def rng():
    """The shared `numpy.random.Generator`."""
    return _RNG


def set_rng(generator):
    """Make `generator` the shared one and return the one it replaces (fit uses this for a seeded run)."""
    global _RNG
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"set_rng: expected a numpy.random.Generator, got {type(generator).__name__}")
    old, _RNG = _RNG, generator
    return old


def check_float_dtype(dtype, argument):
    """Return `dtype` as a NumPy dtype if it is float32 or float64, else raise naming `argument`."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{argument}: expected float32 or float64, got {dtype}")
    return dtype


def clear_session(free_memory=True):
    """Keras's `keras.backend.clear_session()`: forget the names given so far, so the next Conv2D() is called
    'conv2d' again (and the next subclassed Net 'net'). As in Keras, the float type and the random generator
    are settings, not session state, and stay; free_memory: also run Python's garbage collector, which frees
    the arrays of models no longer referenced."""
    import gc

    from .layers import base
    base._NAME_COUNTS.clear()
    if free_memory:
        gc.collect()
