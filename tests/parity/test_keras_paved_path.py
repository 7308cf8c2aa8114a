"""The rest of Keras's paved path, written once with `keras` as a parameter and run by Keras 3 (torch backend)
and by tinyseg: clear_session's layer names, initializer classes with a seed, get_layer, predict_on_batch,
and fit(shuffle=True) reading a PyDataset's batches in a new order each epoch.

The two frameworks draw different random numbers, so a seeded initializer is compared with itself (the same
seed gives the same weights, another seed others) and the shuffled order by what any shuffle must be (each
epoch a permutation of the batches, the epochs in different orders); the predictions of one set of weights
are compared across the two (1e-5, float32).
"""
import numpy as np
import pytest

from tests.helpers import import_keras

keras = import_keras()          # Keras 3 on its torch backend, or the module is skipped

import tinyseg  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


# --- the program ------------------------------------------------------------------------------------------
def small_model(keras, seed):
    keras.backend.clear_session()                         # layer names start again: conv2d, conv2d_1, ...
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu",
                            kernel_initializer=keras.initializers.HeNormal(seed=seed))(inputs)
    outputs = keras.layers.Conv2D(2, 1, activation="softmax",
                                  kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(h)
    return keras.Model(inputs, outputs)


def recording_dataset(keras, x, y, seen):
    class Batches(keras.utils.PyDataset):
        """Six batches of two images; records which batch was asked for."""

        def __init__(self):
            super().__init__()

        def __len__(self):
            return 6

        def __getitem__(self, i):
            seen.append(int(i))
            return x[2 * i:2 * i + 2], y[2 * i:2 * i + 2]
    return Batches()


def epoch_orders(keras, x, y, seed):
    """The batch order of each of three epochs of fit(shuffle=True) on a PyDataset."""
    keras.utils.set_random_seed(seed)
    model = small_model(keras, seed)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")     # one-hot: Keras's torch backend fails
    seen = []                                                           # on per-pixel sparse targets
    onehot = keras.utils.to_categorical(y, 2)
    model.fit(recording_dataset(keras, x, onehot, seen), epochs=3, shuffle=True, verbose=0)
    seen = seen[-18:]                                 # Keras reads batch 0 once more first, to learn its shapes
    return [seen[6 * e:6 * e + 6] for e in range(3)]


# --- the comparison -----------------------------------------------------------------------------------------
def data():
    rng = np.random.default_rng(0)
    return rng.random((12, 8, 8, 3), dtype=np.float32), rng.integers(0, 2, (12, 8, 8))


@pytest.mark.parametrize("framework", [keras, tinyseg], ids=["keras", "tinyseg"])
def test_clear_session_names_and_get_layer(framework):
    model = small_model(framework, seed=1)
    names = [layer.name for layer in model.layers]
    assert names[1:] == ["conv2d", "conv2d_1"]
    assert model.get_layer("conv2d_1") is model.layers[-1]
    assert model.get_layer(index=1) is model.get_layer("conv2d")
    with pytest.raises(ValueError):
        model.get_layer("no_such_layer")


@pytest.mark.parametrize("framework", [keras, tinyseg], ids=["keras", "tinyseg"])
def test_a_seeded_initializer_gives_the_same_weights_again(framework):
    first, again, other = (small_model(framework, seed).get_weights() for seed in (1, 1, 2))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(first[0]), np.asarray(other[0]))
    # He-normal: a standard deviation of sqrt(2 / fan_in), fan_in = 3 * 3 * 3
    assert np.std(np.asarray(first[0])) == pytest.approx(np.sqrt(2 / 27), rel=0.35)


def test_predict_on_batch_agrees_with_keras_and_with_predict():
    x, _ = data()
    k_model, t_model = small_model(keras, 1), small_model(tinyseg, 1)
    t_model.set_weights(k_model.get_weights())
    k_out = np.asarray(k_model.predict_on_batch(x))
    t_out = t_model.predict_on_batch(x)
    assert np.max(np.abs(t_out - k_out)) < 1e-5
    np.testing.assert_allclose(t_out, t_model.predict(x, verbose=0), rtol=0, atol=1e-6)


@pytest.mark.parametrize("framework", [keras, tinyseg], ids=["keras", "tinyseg"])
def test_fit_with_shuffle_reads_a_pydatasets_batches_in_a_new_order_each_epoch(framework):
    x, y = data()
    orders = epoch_orders(framework, x, y, seed=3)
    assert all(sorted(order) == list(range(6)) for order in orders)      # each epoch reads every batch once
    assert len({tuple(order) for order in orders}) > 1                    # and not always in one order
