"""Dropout: during training, zero each value with probability `rate` and scale the survivors up.

Inverted dropout, as in Keras and PyTorch. With a fresh mask m of independent Bernoulli(1 - rate) draws:

    training:   y = x * m / (1 - rate)             dL/dx = g * m / (1 - rate)     (the same m)
    inference:  y = x                              dL/dx = g

Dividing by the keep probability at training time makes E[y] = x, so inference needs no rescaling and the
trained network is used as it is. Shapes: any; y and dL/dx have the shape of x.
"""
import numbers

from .base import Layer
from .random_state import SeededGenerator


class Dropout(SeededGenerator, Layer):
    """Keras's `Dropout(rate, seed=None)`: inverted dropout, active only when forward(x, training=True).

    rate: the probability of dropping a value, in [0, 1).
    seed: masks come from the layer's own `numpy.random.Generator` seeded with `seed`, so a seeded layer
        draws the same sequence of masks in every run. With seed=None the masks come from the shared
        generator `tinyseg.backend.rng()` (seeded by `tinyseg.set_random_seed`).

    Each training forward draws a new mask and keeps it for backward, which multiplies by that same mask.
    To replay masks, call `reseed()`: it restarts the layer's generator from its seed, so the next forwards
    draw the same masks as the forwards after construction did. A finite-difference gradient check, which
    calls forward many times and needs the same function each time, does exactly that before every forward.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(rate, numbers.Real) or isinstance(rate, bool) or not 0 <= rate < 1:
            raise ValueError(f"{self.name}: rate must be a number in [0, 1) (the fraction of values dropped), "
                             f"got {rate!r}")
        self.rate = float(rate)
        self.init_generator(seed)

    def forward(self, x, training=False):
        self.check_input(x)
        if not training or self.rate == 0:
            self.save_for_backward(x_shape=x.shape, mask=None)        # backward passes the gradient through
            return x
        keep = self.generator().random(x.shape) >= self.rate          # True with probability 1 - rate
        # m / (1 - rate), in the layer's dtype, so a float32 x stays float32
        mask = keep.astype(self.dtype) / self.dtype.type(1 - self.rate)
        self.save_for_backward(x_shape=x.shape, mask=mask)
        return x * mask

    def backward(self, grad):
        saved = self.saved_for_backward()
        self.check_grad(grad)
        if grad.shape != saved.x_shape:
            raise ValueError(f"{self.name}: grad has shape {grad.shape}, but the last forward saw {saved.x_shape}")
        if saved.mask is None:
            return grad.copy()              # a new array: the caller's grad stays theirs
        return grad * saved.mask

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
