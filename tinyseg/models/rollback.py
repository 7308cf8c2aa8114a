"""All or nothing: a call that fails leaves the model as it found it.

A training step changes two kinds of state. Weights and optimizer slots change in one place only, the
optimizer's update, which is the last thing a step does and checks every gradient before it writes anything:
they need no copy. Everything else a step changes is changed by its forward pass, and is copied here first:

    moving statistics     BatchNormalization's moving mean and variance (layer.state)
    layer generators      the random generators of layers with a seed of their own (Dropout(seed=...))
    the shared generator  tinyseg.backend.rng(), which unseeded Dropout layers and fit's shuffling draw from

`Snapshot` holds those copies, by name; `restore()` puts them back. Three guarantees are built on it:

    with all_or_nothing(model):      one training step: if the block raises, the model is as before it
    with until_first_step(model):    fit: if it fails before its first step, model.history, stop_training
                                     and the shared generator (epoch 1's shuffle) are as before the call
    with unbuilt_on_failure(model):  a check that builds a Sequential from its data: if it fails, the
                                     model is unbuilt again, and the generator its weights came from is put back
"""
import contextlib
from dataclasses import dataclass, field

import numpy as np

from .. import backend


@dataclass
class Snapshot:
    """Copies of what a forward pass changes besides weights and optimizer slots (see the module docstring)."""

    generator: np.random.Generator                           # the shared generator ...
    generator_state: dict                                    # ... and its state, to put back
    moving_statistics: list = field(default_factory=list)    # [(layer, {name: copy of layer.state[name]})]
    layer_generators: list = field(default_factory=list)     # [(layer, layer.get_rng_state())]

    @classmethod
    def take(cls, model=None):
        """The shared generator's state, and with a model its layers' moving statistics and generators."""
        generator = backend.rng()
        snapshot = cls(generator, generator.bit_generator.state)
        for layer in model.layers if model is not None else []:
            if getattr(layer, "state", None):
                snapshot.moving_statistics.append((layer, {k: v.copy() for k, v in layer.state.items()}))
            if layer.get_rng_state() is not None:
                snapshot.layer_generators.append((layer, layer.get_rng_state()))
        return snapshot

    def restore(self):
        for layer, state in self.moving_statistics:
            for k, v in state.items():
                layer.state[k][...] = v                      # in place: the arrays stay the layer's own
        for layer, state in self.layer_generators:
            layer.set_rng_state(state)
        self.generator.bit_generator.state = self.generator_state


@contextlib.contextmanager
def all_or_nothing(model):
    """One training step: if the block raises, the moving statistics and every generator are put back; the
    weights and optimizer slots were not written (the update comes last and checks first)."""
    saved = Snapshot.take(model)
    try:
        yield
    except BaseException:
        saved.restore()
        raise


@contextlib.contextmanager
def until_first_step(model):
    """fit: if the block raises before the optimizer's first update, model.history, model.stop_training and
    the shared generator are put back, so such a fit changed nothing. After a step the model is that step's."""
    saved, history, stop_training = Snapshot.take(), model.history, model.stop_training
    iterations = model.optimizer.iterations
    try:
        yield
    except BaseException:
        if model.optimizer.iterations == iterations:
            model.history, model.stop_training = history, stop_training
            saved.restore()
        raise


@contextlib.contextmanager
def unbuilt_on_failure(model):
    """If the block raises after building the model (a Sequential built by the data of a failed call), the
    model is unbuilt again and the shared generator its weights were drawn from is put back."""
    built, saved = model._graph is not None, Snapshot.take()
    try:
        yield
    except BaseException:
        if not built and model._graph is not None:
            model._unbuild()
            saved.restore()
        raise
