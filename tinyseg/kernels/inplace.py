"""Optimizer updates done in place, in two reused work arrays: the same arithmetic as the formulas in
tinyseg/optimizers/, without the temporaries.

Written as math, Adam's three lines make seven temporary arrays of the parameter's size per parameter per
step (g - m, its scaled copy, g^2, g^2 - v, ..., the quotient). Each is a fresh allocation; for the larger
kernels that is a fresh mapping of memory from the system, whose every page costs a fault when it is first
written. Here each line writes into a work array instead (`ufunc(..., out=)`), with the operations in the same
order on the same operands, so the results are bit for bit those of the formulas (tests/optimizers say so).
"""
import numpy as np


class WorkArrays:
    """Two flat buffers per dtype, grown to the largest parameter seen and reused for every other: views of
    the first `size` values, in the parameter's shape. Not optimizer state: nothing in them outlives a call."""

    def __init__(self):
        self._buffers = {}

    def get(self, like):
        """(a, b): two work arrays of like's shape and dtype (their values are whatever was left there)."""
        key = np.dtype(like.dtype)
        buffers = self._buffers.get(key)
        if buffers is None or buffers[0].size < like.size:
            buffers = self._buffers[key] = (np.empty(like.size, key), np.empty(like.size, key))
        return tuple(buf[:like.size].reshape(like.shape) for buf in buffers)


def adam(theta, g, m, v, beta_1, beta_2, lr_t, epsilon, work):
    """Keras's Adam step in place (optimizers/adam.py): m, v and theta updated; m, v and g of theta's dtype.

        m <- m + (1 - b1) (g - m);   v <- v + (1 - b2) (g^2 - v);   theta <- theta - (lr_t m) / (sqrt(v) + eps)
    """
    a, b = work.get(theta)
    np.subtract(g, m, out=a)
    a *= 1 - beta_1
    m += a
    np.square(g, out=a)
    a -= v
    a *= 1 - beta_2
    v += a
    np.multiply(lr_t, m, out=a)
    np.sqrt(v, out=b)
    b += epsilon
    a /= b
    theta -= a
