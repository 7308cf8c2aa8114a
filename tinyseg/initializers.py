"""Weight initialisers, with Keras's names and formulas.

    glorot_uniform:  U(-limit, limit),  limit = sqrt(6 / (fan_in + fan_out))      (Keras's default kernel)
    he_normal:       N(0, 2 / fan_in) truncated at 2 standard deviations
    zeros, ones

For a kernel of shape (KH, KW, C_in, C_out): fan_in = KH*KW*C_in, fan_out = KH*KW*C_out; for a dense kernel
(D_in, D_out): fan_in = D_in, fan_out = D_out.
"""
import numpy as np

from . import backend


def fans(shape):
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def glorot_uniform(shape, dtype):
    fan_in, fan_out = fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return backend.rng().uniform(-limit, limit, size=shape).astype(dtype)


def he_normal(shape, dtype):
    std = np.sqrt(2.0 / fans(shape)[0])
    w = backend.rng().standard_normal(size=shape)
    while np.any(np.abs(w) > 2):                        # redraw the tails, as a truncated normal
        bad = np.abs(w) > 2
        w[bad] = backend.rng().standard_normal(size=int(bad.sum()))
    return (w * std / 0.87962566103423978).astype(dtype)   # 0.8796...: std of N(0,1) truncated at +-2


def zeros(shape, dtype):
    return np.zeros(shape, dtype=dtype)


def ones(shape, dtype):
    return np.ones(shape, dtype=dtype)


INITIALIZERS = {"glorot_uniform": glorot_uniform, "he_normal": he_normal, "zeros": zeros, "ones": ones}


def get(name):
    if callable(name):
        return name
    if name not in INITIALIZERS:
        raise ValueError(f"initializer must be one of {sorted(INITIALIZERS)} or a function, got {name!r}")
    return INITIALIZERS[name]
