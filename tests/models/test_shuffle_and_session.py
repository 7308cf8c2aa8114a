"""fit(shuffle=True) reads a PyDataset's batches in a new seeded order every epoch, as Keras does;
backend.clear_session() starts the layer names again."""
import numpy as np

import tinyseg
from tinyseg import Input, Model, backend, utils
from tinyseg.layers import Conv2D, Dense


class Logged(utils.PyDataset):
    """Six batches of two samples; remembers which batch was asked for, in order."""

    def __init__(self, n_batches=6):
        super().__init__()
        rng = np.random.default_rng(0)
        self.x = rng.random((2 * n_batches, 3), dtype=np.float32)
        self.y = np.eye(2, dtype=np.float32)[np.arange(2 * n_batches) % 2]
        self.read = []

    def __len__(self):
        return len(self.x) // 2

    def __getitem__(self, i):
        self.read.append(i)
        return self.x[2 * i:2 * i + 2], self.y[2 * i:2 * i + 2]


def model():
    tinyseg.set_random_seed(0)
    x = Input((3,))
    m = Model(x, Dense(2, activation="softmax")(x))
    m.compile("sgd", "categorical_crossentropy")
    return m


def orders(data, epochs=2, **fit_kwargs):
    model().fit(data, epochs=epochs, verbose=0, **fit_kwargs)
    n = len(data)
    return [data.read[e * n:(e + 1) * n] for e in range(epochs)]


def test_shuffle_reads_every_batch_in_a_new_order_each_epoch_seeded_by_set_random_seed():
    first, second = orders(Logged(), epochs=2)
    assert sorted(first) == sorted(second) == list(range(6))
    assert first != list(range(6)) and second != first
    data = Logged()
    model_ = model()                                         # the same shared generator state as above
    tinyseg.set_random_seed(0)
    model_.fit(data, epochs=2, verbose=0)
    tinyseg.set_random_seed(0)
    again = Logged()
    model_.fit(again, epochs=2, verbose=0)
    assert again.read == data.read                           # set_random_seed makes the order repeat


def test_fits_seed_draws_epoch_e_from_its_own_generator():
    got = orders(Logged(), epochs=2, seed=5)
    assert got == [list(np.random.default_rng([5, e]).permutation(6)) for e in range(2)]


def test_shuffle_false_keeps_the_order_and_validation_is_read_in_order():
    assert orders(Logged(), epochs=2, shuffle=False) == [list(range(6))] * 2
    val = Logged()
    model().fit(Logged(), epochs=2, verbose=0, validation_data=val)
    assert val.read == list(range(6)) * 2


def test_steps_per_epoch_takes_distinct_batches_of_the_shuffled_order():
    data = Logged()
    model().fit(data, epochs=1, steps_per_epoch=3, verbose=0, seed=1)
    assert data.read == list(np.random.default_rng([1, 0]).permutation(6)[:3])


def test_clear_session_starts_the_names_again_and_keeps_the_settings():
    Conv2D(2, 1)
    assert Conv2D(2, 1).name != "conv2d"
    state = backend.rng().bit_generator.state
    backend.clear_session()
    assert Conv2D(2, 1).name == "conv2d" and Conv2D(2, 1).name == "conv2d_1"
    assert backend.rng().bit_generator.state == state and tinyseg.floatx() == "float32"
