"""A Keras program, written once with `keras` as a parameter, run by Keras 3 (torch backend) and by tinyseg.

The model is the Xception-style U-Net of keras.io's Oxford-pets segmentation example (an entry convolution,
three downsampling blocks of separable convolutions with strided 1x1 residuals, four upsampling blocks of
transposed convolutions with upsampled residuals, a softmax head), trained with RMSprop from a PyDataset
with a ModelCheckpoint, and predicted from the data set. After set_weights from Keras the two predict the
same (float32, 1e-5) and three epochs give the same losses (1e-4 relative).

Keras on the torch backend fails inside fit on per-pixel sparse cross-entropy ("grad_input must be
contiguous"), so the program uses one-hot targets and categorical cross-entropy on both sides.

Two settings keep the comparison about the frameworks and not about float32 chaos:
- Keras's cross-entropy on probabilities clips them to [1e-7, 1 - 1e-7] before the log (its gradient is 0
  where it clips); tinyseg fuses the softmax into an exact log-softmax. The freshly initialised head puts some
  pixels below 1e-7, so the shared starting weights scale the head's kernel by 0.05 (no pixel is clipped).
- RMSprop's first steps are nearly sign steps (g / sqrt(0.1 g^2)), which turn float32 rounding differences of
  small gradients into full-size step differences; with learning_rate=1e-4 and one batch per epoch the
  losses of both runs stay within 1e-5 of each other, well inside the 1e-4 asked for.
"""

import numpy as np
import pytest

from tests.helpers import assert_same_architecture, import_keras

keras = import_keras()          # Keras 3 on its torch backend, or the module is skipped

import tinyseg  # noqa: E402
from tinyseg.models.xception import xception_unet  # noqa: E402
from tinyseg.saving import load_model  # noqa: E402

# Keras's own NumPy-2 deprecation notices, hundreds per run, about its code, not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


# --- the program ------------------------------------------------------------------------------------------
def make_dataset_class(keras):
    class Pets(keras.utils.PyDataset):
        """Batches of (images, one-hot masks) in a fixed order."""

        def __init__(self, x, y, batch_size):
            super().__init__()
            self.x, self.y, self.batch_size = x, y, batch_size

        def __len__(self):
            return len(self.x) // self.batch_size

        def __getitem__(self, i):
            s = slice(i * self.batch_size, (i + 1) * self.batch_size)
            return self.x[s], self.y[s]
    return Pets


def train(keras, model, data, epochs, checkpoint):
    x, y, xv, yv = data
    Pets = make_dataset_class(keras)
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-4), loss="categorical_crossentropy")
    history = model.fit(Pets(x, y, 4), epochs=epochs, validation_data=Pets(xv, yv, 4), verbose=0,
                        callbacks=[keras.callbacks.ModelCheckpoint(checkpoint, save_best_only=True)])
    return history.history, model.predict(Pets(xv, yv, 4), verbose=0)


# --- the comparison -----------------------------------------------------------------------------------------
IMG, K = (32, 32), 4                          # the built-in shapes: background, circle, square, triangle


def shapes_data():
    (x, y), (xv, yv) = tinyseg.datasets.load_shapes(n_train=4, n_val=4, size=IMG[0], seed=0)
    onehot = tinyseg.utils.to_categorical
    return x.astype("float32"), onehot(y, K), xv.astype("float32"), onehot(yv, K)


@pytest.fixture(scope="module")
def both():
    keras.utils.set_random_seed(0)
    k_model = xception_unet(IMG, K, keras=keras)
    t_model = xception_unet(IMG, K, keras=tinyseg)
    return k_model, t_model


def shared_start(k_model, t_model):
    """Keras's initial weights with the head's kernel scaled by 0.05 (see the module docstring), in both."""
    weights = k_model.get_weights()
    weights[-2] = weights[-2] * 0.05
    k_model.set_weights(weights)
    t_model.set_weights(weights)


def test_both_build_the_same_layers_and_weights(both):
    assert_same_architecture(*both)


def test_same_weights_give_the_same_predictions(both):
    k_model, t_model = both
    t_model.set_weights(k_model.get_weights())
    x = np.random.default_rng(0).random((2,) + IMG + (3,), dtype=np.float32)
    k_out = np.asarray(k_model.predict(x, verbose=0))
    t_out = t_model.predict(x)
    assert np.max(np.abs(t_out - k_out)) < 1e-5


def test_three_epochs_of_rmsprop_from_a_pydataset_give_the_same_losses(both, tmp_path):
    k_model, t_model = both
    shared_start(k_model, t_model)
    data = shapes_data()
    k_hist, k_pred = train(keras, k_model, data, 3, str(tmp_path / "keras.keras"))
    t_hist, t_pred = train(tinyseg, t_model, data, 3, str(tmp_path / "tinyseg.keras"))
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(t_hist[key], k_hist[key], rtol=1e-4, err_msg=key)
    assert np.max(np.abs(t_pred - np.asarray(k_pred))) < 1e-3
    reloaded = load_model(tmp_path / "tinyseg.keras")             # the best epoch's checkpoint
    assert reloaded.predict(data[2]).shape == t_pred.shape
