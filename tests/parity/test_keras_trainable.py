"""Fine-tuning with a frozen encoder: one program, written once with `keras` as a parameter, run by Keras 3
(torch backend) and by tinyseg.

The model is a small U-Net: an encoder (Conv2D, BatchNormalization, ReLU, max pooling) and a decoder
(Conv2D, upsampling, the encoder's features joined back by a skip connection, a softmax head). The program
freezes the encoder (`trainable = False` on its Conv2D and its BatchNormalization) and trains the rest with
Adam for three epochs. From the same weights (set_weights, with moving statistics that are not the initial
0 and 1, so that normalising with them is seen), the two sides must:
- split the parameters alike (count_params, trainable and non-trainable weights);
- predict the same before training (1e-5) and give the same losses over the three epochs (1e-4 relative);
- leave the frozen weights, the BatchNormalization's moving statistics among them, exactly as they were;
- predict the same after training (1e-5).

A second program freezes a layer between two fits without compiling again (Keras 3 on torch reads the
trainable weights at every step, so it takes effect at once; the optimizer keeps the slots it was built
with and updates only the weights still trainable): the same losses. Unfreezing a layer the optimizer was
not built with is refused by both.

Keras on the torch backend fails inside fit on per-pixel sparse cross-entropy ("grad_input must be
contiguous"), so, as test_keras_program.py does, the program uses one-hot masks and categorical cross-entropy.
"""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="the Keras comparison needs keras (pip install keras)")
if keras.backend.backend() != "torch":
    pytest.skip("the Keras comparison runs Keras 3 on the torch backend", allow_module_level=True)

import tinyseg  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

ENCODER = ("enc_conv", "enc_bn")
SIZE, K = 16, 4                       # the built-in shapes: background, circle, square, triangle


# --- the program ------------------------------------------------------------------------------------------
def small_unet(keras):
    layers = keras.layers
    x = keras.Input((SIZE, SIZE, 3))
    e = layers.Conv2D(8, 3, padding="same", name="enc_conv")(x)
    e = layers.BatchNormalization(name="enc_bn")(e)
    e = layers.Activation("relu", name="enc_relu")(e)
    p = layers.MaxPooling2D(2, name="enc_pool")(e)
    d = layers.Conv2D(8, 3, padding="same", activation="relu", name="dec_conv")(p)
    d = layers.UpSampling2D(2, name="dec_up")(d)
    d = layers.Concatenate(name="dec_cat")([d, e])
    y = layers.Conv2D(K, 1, activation="softmax", name="dec_head")(d)
    return keras.Model(x, y)


def freeze_encoder(model):
    for name in ENCODER:
        model.get_layer(name).trainable = False


def fine_tune(keras, model, x, y):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2), loss="categorical_crossentropy")
    history = model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    return history.history["loss"]


def freeze_between_fits(keras, model, x, y):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2), loss="categorical_crossentropy")
    losses = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history["loss"]
    model.get_layer("dec_conv").trainable = False
    losses += model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history["loss"]
    model.get_layer("dec_conv").trainable = True            # built with it: trains again
    model.get_layer("enc_conv").trainable = True            # frozen when the optimizer was built: refused
    with pytest.raises(ValueError, match="enc_conv"):
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    return losses


# --- the comparison -----------------------------------------------------------------------------------------
def split(model):
    """(total, trainable, non-trainable) parameter counts, from the weight lists."""
    size = lambda weights: int(sum(np.prod(tuple(w.shape)) for w in weights))  # noqa: E731
    return model.count_params(), size(model.trainable_weights), size(model.non_trainable_weights)


def shared_weights(k_model):
    """Keras's initial weights, with moving statistics away from 0 and 1 (frozen, they are what the encoder's
    normalisation uses) and the head's kernel scaled by 0.05 (no probability near Keras's 1e-7 clip)."""
    rng = np.random.default_rng(5)
    weights = [np.asarray(w) for w in k_model.get_weights()]
    names = [w.path for w in k_model.weights]
    for i, name in enumerate(names):
        if name.endswith("moving_mean"):
            weights[i] = rng.normal(0, 0.3, weights[i].shape).astype(np.float32)
        if name.endswith("moving_variance"):
            weights[i] = rng.uniform(0.5, 2.0, weights[i].shape).astype(np.float32)
        if name == "dec_head/kernel":
            weights[i] = weights[i] * 0.05
    return weights


def shapes_data():
    (x, y), _ = tinyseg.datasets.load_shapes(n_train=8, n_val=1, size=SIZE, seed=0)
    return x.astype("float32"), tinyseg.utils.to_categorical(y, K)


@pytest.fixture(scope="module")
def runs():
    keras.utils.set_random_seed(0)
    k_model, t_model = small_unet(keras), small_unet(tinyseg)
    start = shared_weights(k_model)
    k_model.set_weights(start)
    t_model.set_weights(start)
    freeze_encoder(k_model)
    freeze_encoder(t_model)
    x, y = shapes_data()
    before = (np.asarray(k_model.predict(x, verbose=0)), t_model.predict(x))
    splits = (split(k_model), split(t_model))
    losses = (fine_tune(keras, k_model, x, y), fine_tune(tinyseg, t_model, x, y))
    after = (np.asarray(k_model.predict(x, verbose=0)), t_model.predict(x))
    return dict(k_model=k_model, t_model=t_model, start=start, before=before, splits=splits, losses=losses,
                after=after)


def test_the_parameter_counts_split_alike(runs):
    k_split, t_split = runs["splits"]
    assert t_split == k_split
    assert t_split[2] == 3 * 3 * 3 * 8 + 8 + 4 * 8           # the frozen conv, and all four of the BN's arrays
    t_model = runs["t_model"]
    assert (t_model.count_trainable_params(), t_model.count_non_trainable_params()) == k_split[1:]


def test_same_weights_give_the_same_predictions(runs):
    k_out, t_out = runs["before"]
    assert np.max(np.abs(t_out - k_out)) < 1e-5


def test_three_epochs_give_the_same_losses_and_predictions(runs):
    k_losses, t_losses = runs["losses"]
    np.testing.assert_allclose(t_losses, k_losses, rtol=1e-4)
    assert k_losses[-1] < k_losses[0]                          # the decoder did learn
    k_out, t_out = runs["after"]
    assert np.max(np.abs(t_out - k_out)) < 1e-5


def test_the_frozen_weights_are_untouched_on_both_sides(runs):
    start = runs["start"]
    for model in (runs["k_model"], runs["t_model"]):
        weights = [np.asarray(w) for w in model.get_weights()]
        frozen = [i for i, w in enumerate(model.weights)
                  if any(w is v for name in ENCODER for v in model.get_layer(name).weights)]
        assert len(frozen) == 6
        for i in frozen:
            assert weights[i].tobytes() == start[i].tobytes(), (type(model).__module__, i)
        trained = [i for i in range(len(start)) if i not in frozen]
        assert all(not np.array_equal(weights[i], start[i]) for i in trained)


def test_freezing_between_two_fits_and_unfreezing_go_as_in_keras():
    keras.utils.set_random_seed(1)
    k_model, t_model = small_unet(keras), small_unet(tinyseg)
    start = shared_weights(k_model)
    for model in (k_model, t_model):
        model.set_weights(start)
        freeze_encoder(model)
    x, y = shapes_data()
    k_losses, t_losses = freeze_between_fits(keras, k_model, x, y), freeze_between_fits(tinyseg, t_model, x, y)
    np.testing.assert_allclose(t_losses, k_losses, rtol=1e-4)
    for k_w, t_w in zip(k_model.get_layer("dec_conv").get_weights(), t_model.get_layer("dec_conv").get_weights()):
        np.testing.assert_allclose(t_w, np.asarray(k_w), atol=1e-5)
