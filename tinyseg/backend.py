"""Global settings shared by every layer: the default float type and the random generator.

Keras keeps the same two settings in `keras.backend.floatx()` and `keras.utils.set_random_seed`; tinyseg
names them the same way so a Keras reader finds them.
"""
import numpy as np

_FLOATX = "float32"
_RNG = np.random.default_rng(0)


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


def set_random_seed(seed):
    """Seed the generator that initialises weights, shuffles batches and draws dropout masks."""
    global _RNG
    _RNG = np.random.default_rng(seed)


def rng():
    """The shared `numpy.random.Generator`."""
    return _RNG


def check_float_dtype(dtype, argument):
    """Return `dtype` as a NumPy dtype if it is float32 or float64, else raise naming `argument`."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{argument}: expected float32 or float64, got {dtype}")
    return dtype
