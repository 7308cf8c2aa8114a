"""A functional model built from keras.ops, written once with the framework as a parameter: Keras 3 (torch
backend) and tinyseg predict the same after set_weights (float32, 1e-5); and a Lambda of ops likewise."""
import numpy as np
import pytest

import tinyseg
from tests.helpers import KERAS_TOL, import_keras, rel_error

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def ops_model(keras):
    ops = keras.ops
    x = keras.Input((8, 8, 3))
    h = keras.layers.Rescaling(1 / 127.5, offset=-1)(x)
    h = keras.layers.Conv2D(4, 3, padding="same")(h)
    h = ops.nn.relu(h)
    gate = ops.nn.sigmoid(ops.mean(h, axis=(1, 2), keepdims=True))
    h = ops.add(h, ops.multiply(h, 0.5))
    h = ops.concatenate([h, ops.subtract(h, ops.nn.relu(h))], axis=-1)
    h = ops.image.resize(h, (5, 6))
    h = ops.transpose(h, (0, 2, 1, 3))
    h = ops.reshape(h, (-1, 5, 6, 8))
    h = keras.layers.Lambda(lambda t: ops.multiply(ops.nn.sigmoid(t), ops.add(t, 1.0)))(h)
    h = keras.layers.Conv2D(4, 1)(h)
    out = ops.nn.softmax(ops.add(h, ops.multiply(h, 0.25)), axis=-1)
    return keras.Model(x, [out, gate])


def test_ops_model_predicts_as_keras():
    keras = import_keras()
    theirs, ours = ops_model(keras), ops_model(tinyseg)
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    x = rng.uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    for got, expected in zip(ours.predict(x, verbose=0), theirs.predict(x, verbose=0)):
        assert got.shape == expected.shape
        assert rel_error(got, keras.ops.convert_to_numpy(expected)) < KERAS_TOL
