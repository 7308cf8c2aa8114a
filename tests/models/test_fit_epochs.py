"""fit(seed=...) gives every epoch its own random numbers: a new batch order and new augmentations each epoch,
and the same ones again in a run with the same seed.

Seen as a user sees it: an `augment` function is handed each training batch (before it reaches the model)
and the epoch's generator, so it can record which samples came in which order and what it drew."""
import numpy as np

import tinyseg
from tinyseg.layers import Conv2D
from tinyseg.models import Sequential

N, BATCH, EPOCHS = 12, 4, 3


def _model():
    tinyseg.set_random_seed(0)
    model = Sequential([Conv2D(2, 1, activation="softmax", input_shape=(2, 2, 1))])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def _recorded_fit(seed, shuffle=True):
    """Fit for EPOCHS epochs on N samples whose pixels hold their sample number; return, per epoch, the
    sample numbers in the order fit handed them out, and the numbers augment drew from the epoch's generator."""
    x = np.repeat(np.arange(N, dtype=np.float32), 4).reshape(N, 2, 2, 1)
    y = np.zeros((N, 2, 2), np.int64)
    order, draws = [], []

    def augment(xb, yb, rng):
        order.extend(xb[:, 0, 0, 0].astype(int).tolist())
        draws.append(rng.random())
        return xb, yb

    _model().fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0, seed=seed, augment=augment, shuffle=shuffle)
    per_epoch = N // BATCH
    return ([order[e * N:(e + 1) * N] for e in range(EPOCHS)],
            [draws[e * per_epoch:(e + 1) * per_epoch] for e in range(EPOCHS)])


def test_each_epoch_draws_a_new_order_and_new_augmentations():
    orders, draws = _recorded_fit(seed=7)
    for order in orders:
        assert sorted(order) == list(range(N))               # every sample once per epoch
    assert len({tuple(o) for o in orders}) == EPOCHS, orders  # no two epochs in the same order
    assert len({tuple(d) for d in draws}) == EPOCHS, draws    # nor with the same augmentations


def test_the_same_seed_repeats_every_epoch_and_another_seed_does_not():
    orders, draws = _recorded_fit(seed=7)
    assert _recorded_fit(seed=7) == (orders, draws)
    assert _recorded_fit(seed=8)[0] != orders


def test_without_shuffle_the_order_stays_but_the_augmentations_still_change():
    orders, draws = _recorded_fit(seed=7, shuffle=False)
    assert orders == [list(range(N))] * EPOCHS
    assert len({tuple(d) for d in draws}) == EPOCHS, draws
