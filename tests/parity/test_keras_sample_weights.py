"""Sample and class weights, one Keras program run by Keras 3 (torch backend) and by tinyseg.

The program is written once with `keras` as a parameter: a small segmentation network trained three epochs
with per-pixel sample weights (from arrays, and from a PyDataset whose batches are (x, y, sample_weight)),
validated and evaluated with weights, and a classifier trained with class_weight (integer labels, and one-hot
rows, which Keras reads by their argmax). After set_weights from Keras, both give the same losses (1e-4
relative) and predictions (1e-5).

Keras 3 divides a weighted loss by the number of positions, not by the sum of the weights
(sum_m s_m l_m / M, its "sum_over_batch_size"); tinyseg's losses do the same (tinyseg/losses/base.py), which
these losses would show within a step: the weights below have a mean near 1/2.

The segmentation head outputs logits (from_logits=True), so neither side clips probabilities (Keras clips
them to [1e-7, 1 - 1e-7] before its log); shuffle=False, since the two draw different orders.
"""

import numpy as np
import pytest

from tests.helpers import import_keras

keras = import_keras()          # Keras 3 on its torch backend, or the module is skipped

import tinyseg  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

IMG, K, D = (8, 8), 3, 6


# --- the program ------------------------------------------------------------------------------------------
def segmenter(keras):
    inputs = keras.Input(IMG + (3,))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(h)
    return keras.Model(inputs, keras.layers.Conv2D(K, 1)(h))


def classifier(keras):
    inputs = keras.Input((D,))
    h = keras.layers.Dense(8, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(K, activation="softmax")(h))


def weighted_batches(keras, x, y, s, batch_size):
    class Weighted(keras.utils.PyDataset):
        def __len__(self):
            return len(x) // batch_size

        def __getitem__(self, i):
            b = slice(i * batch_size, (i + 1) * batch_size)
            return x[b], y[b], s[b]
    return Weighted()


def train_segmenter(keras, model, data, from_dataset):
    x, y, s, xv, yv, sv = data
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    if from_dataset:
        history = model.fit(weighted_batches(keras, x, y, s, 4), epochs=3, verbose=0, shuffle=False,
                            validation_data=weighted_batches(keras, xv, yv, sv, 4))
    else:
        history = model.fit(x, y, sample_weight=s, batch_size=4, epochs=3, verbose=0, shuffle=False,
                            validation_data=(xv, yv, sv))
    per_image = np.broadcast_to(per_image_weights()[:, None, None], sv.shape)    # Keras 3 takes no (N,) here
    evaluated = model.evaluate(xv, yv, sample_weight=per_image, batch_size=4, verbose=0)
    return history.history, evaluated, model.predict(xv, verbose=0)


def train_classifier(keras, model, data, one_hot):
    x, y, xv, yv = data
    loss = "categorical_crossentropy" if one_hot else "sparse_categorical_crossentropy"
    if one_hot:
        y, yv = np.eye(K, dtype="float32")[y], np.eye(K, dtype="float32")[yv]
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss=loss)
    history = model.fit(x, y, class_weight={0: 0.25, 2: 3.0}, batch_size=5, epochs=3, verbose=0, shuffle=False,
                        validation_data=(xv, yv))
    return history.history, model.predict(xv, verbose=0)


# --- the comparison -----------------------------------------------------------------------------------------
def segmentation_data():
    rng = np.random.default_rng(0)
    x, xv = rng.random((8,) + IMG + (3,), dtype=np.float32), rng.random((4,) + IMG + (3,), dtype=np.float32)
    onehot = np.eye(K, dtype=np.float32)
    y, yv = onehot[rng.integers(0, K, (8,) + IMG)], onehot[rng.integers(0, K, (4,) + IMG)]
    s, sv = rng.random((8,) + IMG, dtype=np.float32), rng.random((4,) + IMG, dtype=np.float32)
    return x, y, s, xv, yv, sv


def per_image_weights():
    return np.array([0.5, 2.0, 0.0, 1.0], dtype=np.float32)


def classification_data():
    rng = np.random.default_rng(1)
    x, xv = rng.standard_normal((20, D)).astype(np.float32), rng.standard_normal((10, D)).astype(np.float32)
    return x, rng.integers(0, K, 20), xv, rng.integers(0, K, 10)


def pair(make):
    keras.utils.set_random_seed(0)
    k_model, t_model = make(keras), make(tinyseg)
    t_model.set_weights(k_model.get_weights())
    return k_model, t_model


def assert_same_run(k_hist, t_hist, k_pred, t_pred):
    assert sorted(t_hist) == sorted(k_hist)
    for key in k_hist:
        np.testing.assert_allclose(t_hist[key], k_hist[key], rtol=1e-4, err_msg=key)
    assert np.max(np.abs(t_pred - np.asarray(k_pred))) < 1e-5


@pytest.mark.parametrize("from_dataset", [False, True], ids=["arrays", "pydataset"])
def test_per_pixel_sample_weights_train_as_in_keras(from_dataset):
    k_model, t_model = pair(segmenter)
    data = segmentation_data()
    k_hist, k_eval, k_pred = train_segmenter(keras, k_model, data, from_dataset)
    t_hist, t_eval, t_pred = train_segmenter(tinyseg, t_model, data, from_dataset)
    assert_same_run(k_hist, t_hist, k_pred, t_pred)
    assert t_eval == pytest.approx(k_eval, rel=1e-4)
    # tinyseg also takes one weight per image, (N,), for every pixel of it (Keras 3 multiplies (N,) into W)
    assert t_model.evaluate(data[3], data[4], sample_weight=per_image_weights(), batch_size=4, verbose=0) == \
        pytest.approx(k_eval, rel=1e-4)
    unweighted = t_model.evaluate(data[3], data[4], verbose=0)
    assert abs(t_hist["val_loss"][-1] - unweighted) > 0.1 * unweighted       # the weights did count


@pytest.mark.parametrize("one_hot", [False, True], ids=["labels", "one-hot"])
def test_class_weight_trains_a_classifier_as_in_keras(one_hot):
    k_model, t_model = pair(classifier)
    data = classification_data()
    k_hist, k_pred = train_classifier(keras, k_model, data, one_hot)
    t_hist, t_pred = train_classifier(tinyseg, t_model, data, one_hot)
    assert_same_run(k_hist, t_hist, k_pred, t_pred)
