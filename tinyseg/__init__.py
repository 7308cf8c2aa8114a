"""tinyseg: a from-scratch deep-learning framework for image segmentation, written to be read.

Its names are Keras's, so a Keras program runs with one line changed, `import tinyseg as keras`:
keras.Input, keras.Model, keras.Sequential, keras.layers, keras.optimizers, keras.losses, keras.metrics,
keras.callbacks, keras.utils, keras.datasets, keras.saving, keras.regularizers, keras.optimizers.schedules,
keras.ops, keras.initializers.
"""
from . import (
    callbacks,
    datasets,
    initializers,
    layers,
    losses,
    metrics,
    models,
    ops,
    optimizers,
    regularizers,
    saving,
    schedules,
    utils,
)
from .backend import floatx, set_floatx, set_random_seed
from .graph import Input
from .models import Model, Sequential
from .saving import load_model

__version__ = "0.1.0"

__all__ = ["Input", "Model", "Sequential", "callbacks", "datasets", "floatx", "layers", "load_model", "losses",
           "metrics", "models", "optimizers", "regularizers", "saving", "schedules", "set_floatx", "set_random_seed",
           "utils"]
__all__ += ["initializers", "ops"]
