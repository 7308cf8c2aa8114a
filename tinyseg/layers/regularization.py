"""Dropout: during training, zero each value with probability `rate` and scale the survivors up.

Inverted dropout, as in Keras and PyTorch. With a fresh mask m of independent Bernoulli(1 - rate) draws:

    training:   y = x * m / (1 - rate)             dL/dx = g * m / (1 - rate)     (the same m)
    inference:  y = x                              dL/dx = g

Dividing by the keep probability at training time makes E[y] = x, so inference needs no rescaling and the
trained network is used as it is. Shapes: any; y and dL/dx have the shape of x.
"""
import numbers

import numpy as np

from .. import backend
from .base import Layer


class Dropout(Layer):
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
        if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0):
            raise ValueError(f"{self.name}: seed must be None or a non-negative integer, got {seed!r}")
        self.rate = float(rate)
        self.seed = None if seed is None else int(seed)
        self._generator = None if seed is None else np.random.default_rng(self.seed)

    def reseed(self, seed=None):
        """Restart this layer's mask generator from `seed` (default: the seed the layer was created with)."""
        if seed is None and self.seed is None:
            raise ValueError(f"{self.name}: reseed() needs a seed: this layer was created with seed=None and "
                             "draws from the shared tinyseg.backend.rng()")
        if seed is not None:
            self.seed = int(seed)
        self._generator = np.random.default_rng(self.seed)

    def get_rng_state(self):
        """The state of the layer's own generator (a seeded layer), None for one that draws from the shared one.

        Saved with the model, so that masks continue where they were after a save and a load."""
        return None if self._generator is None else self._generator.bit_generator.state

    def set_rng_state(self, state):
        if self._generator is None:
            raise ValueError(f"{self.name}: has no generator of its own (seed=None) to set the state of")
        generator = np.random.default_rng(0)
        try:
            generator.bit_generator.state = state
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"{self.name}: not a state of its generator ({err})") from None
        self._generator = generator

    def generator(self):
        """The Generator masks are drawn from: the layer's own if seeded, else the shared one."""
        # Looked up at every draw, not stored: set_random_seed() replaces the shared generator.
        return self._generator if self._generator is not None else backend.rng()

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
