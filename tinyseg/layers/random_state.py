"""Where a layer's random draws come from: its own generator when it was made with a seed, else the shared one.

Dropout's masks and the augmentation layers' transformations are drawn from

    layer.generator()  =  numpy.random.default_rng(seed), the layer's own     (a seeded layer)
                       =  tinyseg.backend.rng(), the shared generator        (seed=None; set_random_seed seeds it)

so a seeded layer draws the same sequence in every run, and `reseed()` starts that sequence again (what a
finite-difference gradient check needs: the same function at every evaluation). The own generator's state is
saved with a model (get_rng_state / set_rng_state), so draws continue where they were after a save and a load.
"""
import numpy as np

from .. import backend
from ..validation import integer


class SeededGenerator:
    """The mixin of a layer that draws random numbers: call init_generator(seed) in its __init__."""

    def init_generator(self, seed):
        self.seed = None if seed is None else integer(seed, f"{self.name}: seed", low=0,
                                                      expected="None or a non-negative integer")
        self._generator = None if seed is None else np.random.default_rng(self.seed)

    def reseed(self, seed=None):
        """Restart the layer's generator from `seed` (default: the seed the layer was made with)."""
        if seed is None and self.seed is None:
            raise ValueError(f"{self.name}: reseed() needs a seed: this layer was made with seed=None and draws "
                             "from the shared tinyseg.backend.rng()")
        self.seed = self.seed if seed is None else integer(seed, f"{self.name}: seed", low=0)
        self._generator = np.random.default_rng(self.seed)

    def generator(self):
        """The layer's own generator if seeded, else the shared one."""
        # Looked up at every draw, not stored: set_random_seed() replaces the shared generator.
        return self._generator if self._generator is not None else backend.rng()

    def get_rng_state(self):
        """The state of the layer's own generator (a seeded layer); None for one that draws from the shared one."""
        return None if self._generator is None else self._generator.bit_generator.state

    def set_rng_state(self, state):
        """Put back what get_rng_state() returned (all or nothing: a bad state changes nothing)."""
        if self._generator is None:
            raise ValueError(f"{self.name}: has no generator of its own (seed=None) to set the state of")
        generator = np.random.default_rng(0)
        try:
            generator.bit_generator.state = state
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"{self.name}: not a state of its generator ({err})") from None
        self._generator = generator
