"""A subclassed Keras model, written once with `keras` as a parameter, run by Keras 3 (torch backend) and by
tinyseg: `class SegNet(keras.Model)` with its layers as attributes and `call(self, inputs, training=False)`
(a convolution, BatchNormalization told `training`, a pooled branch upsampled and joined to a skip, a softmax
head), registered with register_keras_serializable. Both track the same weights in the same order, so after
set_weights from Keras they predict the same (1e-5), three epochs of fit give the same losses (1e-4
relative), and the tinyseg model saves and loads by its registered name.

As in test_keras_program.py, the targets are one-hot with categorical cross-entropy (Keras's torch backend
fails on per-pixel sparse targets), and the shared starting weights scale the head's kernel by 0.05 so that
no pixel's probability falls under Keras's clipping at 1e-7 (tinyseg takes the exact log-softmax).
"""

import numpy as np
import pytest

from tests.helpers import assert_same_architecture, import_keras

keras = import_keras()          # Keras 3 on its torch backend, or the module is skipped

import tinyseg  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


# --- the program ------------------------------------------------------------------------------------------
def make_segnet(keras):
    @keras.saving.register_keras_serializable(package="parity")
    class SegNet(keras.Model):
        def __init__(self, num_classes=3, filters=6, **kwargs):
            super().__init__(**kwargs)
            self.num_classes, self.filters = num_classes, filters
            self.entry = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")
            self.norm = keras.layers.BatchNormalization()
            self.down = keras.layers.MaxPooling2D(2)
            self.mid = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")
            self.up = keras.layers.UpSampling2D(2)
            self.join = keras.layers.Concatenate()
            self.head = keras.layers.Conv2D(num_classes, 1, activation="softmax")

        def call(self, inputs, training=False):
            skip = self.norm(self.entry(inputs), training=training)
            h = self.up(self.mid(self.down(skip)))
            return self.head(self.join([h, skip]))

        def get_config(self):
            return {**super().get_config(), "num_classes": self.num_classes, "filters": self.filters}
    return SegNet


def train(keras, model, x, y, epochs):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="categorical_crossentropy")
    history = model.fit(x, y, batch_size=4, epochs=epochs, shuffle=False, verbose=0)
    return history.history["loss"], model.predict(x, verbose=0)


# --- the comparison -----------------------------------------------------------------------------------------
SIZE, K = 8, 3


def data():
    rng = np.random.default_rng(0)
    x = rng.random((8, SIZE, SIZE, 3), dtype=np.float32)
    y = tinyseg.utils.to_categorical(rng.integers(0, K, (8, SIZE, SIZE)), K)
    return x, y.astype(np.float32)


@pytest.fixture(scope="module")
def both():
    keras.utils.set_random_seed(0)
    k_model, t_model = make_segnet(keras)(num_classes=K), make_segnet(tinyseg)(num_classes=K)
    x = data()[0]
    k_model(x[:1])                                  # both are built by their first call
    t_model(x[:1])
    weights = [np.asarray(w) for w in k_model.get_weights()]
    weights[-2] = weights[-2] * 0.05                # no probability under Keras's 1e-7 clip (module docstring)
    k_model.set_weights(weights)
    t_model.set_weights(weights)
    return k_model, t_model


def test_both_track_the_same_weights_in_the_same_order(both):
    assert_same_architecture(*both)


def test_same_weights_give_the_same_predictions(both):
    k_model, t_model = both
    x = np.random.default_rng(1).random((2, SIZE, SIZE, 3), dtype=np.float32)
    assert np.max(np.abs(t_model.predict(x) - np.asarray(k_model.predict(x, verbose=0)))) < 1e-5


def test_three_epochs_give_the_same_losses_and_the_model_saves_by_its_registered_name(both, tmp_path):
    k_model, t_model = both
    x, y = data()
    k_loss, k_pred = train(keras, k_model, x, y, 3)
    t_loss, t_pred = train(tinyseg, t_model, x, y, 3)
    np.testing.assert_allclose(t_loss, k_loss, rtol=1e-4)
    assert np.max(np.abs(t_pred - np.asarray(k_pred))) < 1e-4
    t_model.save(tmp_path / "segnet.npz")
    loaded = tinyseg.load_model(tmp_path / "segnet.npz")
    assert type(loaded) is type(t_model) and loaded.get_config()["num_classes"] == K
    np.testing.assert_array_equal(loaded.predict(x), t_pred)
