"""fit, evaluate and predict on PyDatasets and generators, and the callbacks of Keras's protocol."""
import csv

import numpy as np
import pytest

import tinyseg
from tinyseg import Input, Model, callbacks, utils
from tinyseg.callbacks import CallbackError
from tinyseg.layers import Activation, Conv2D
from tinyseg.saving import load_model


def tiny_model(seed=0):
    tinyseg.set_random_seed(seed)
    x = Input((8, 8, 1))
    h = Activation("relu")(Conv2D(4, 3, padding="same")(x))
    model = Model(x, Conv2D(2, 1, activation="softmax")(h))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def tiny_data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8, 1), dtype=np.float32)
    return x, (x[..., 0] > 0.5).astype(np.int64)


class Batches(utils.PyDataset):
    """Batches of arrays in a fixed order; counts on_epoch_end calls; can be told to break at some batch."""

    def __init__(self, x, y, batch_size, bad_batch=None):
        super().__init__()
        self.x, self.y, self.batch_size, self.bad_batch = x, y, batch_size, bad_batch
        self.epochs_ended = 0

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        x, y = self.x[s], self.y[s]
        if i == self.bad_batch:
            x = x.astype(np.float64)
        return x, y

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_pydataset_training_equals_array_training_without_shuffling():
    x, y = tiny_data()
    a, b = tiny_model(), tiny_model()
    ha = a.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    data = Batches(x, y, 8)
    hb = b.fit(data, epochs=2, verbose=0, shuffle=False, validation_data=Batches(x[:8], y[:8], 4))
    assert data.epochs_ended == 2
    np.testing.assert_array_equal(ha.history["loss"], hb.history["loss"])
    np.testing.assert_array_equal(a.predict(x), b.predict(Batches(x, y, 5)))
    assert b.evaluate(Batches(x, y, 8), verbose=0) == pytest.approx(a.evaluate(x, y, batch_size=8, verbose=0))
    assert set(hb.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert tinyseg.utils.Sequence is tinyseg.utils.PyDataset


def test_generator_needs_steps_per_epoch_and_is_not_restarted():
    x, y = tiny_data()
    model = tiny_model()

    def forever():
        i = 0
        while True:
            s = slice(i % 3 * 8, i % 3 * 8 + 8)
            yield x[s], y[s]
            i += 1

    with pytest.raises(ValueError, match="steps_per_epoch"):
        model.fit(forever(), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="validation_steps"):
        model.fit(forever(), steps_per_epoch=2, validation_data=forever(), verbose=0)
    history = model.fit(forever(), steps_per_epoch=2, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3
    out = model.predict((xb for xb, _ in forever()), steps=2)
    assert out.shape == (16, 8, 8, 2)


def test_a_dataset_whose_batches_change_dtype_mid_epoch_stops_before_that_step():
    x, y = tiny_data()
    model = tiny_model()
    model.fit(x[:8], y[:8], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"Batches\[2\].*changed.*float64.*Batches\[0\] had.*float32"):
        model.fit(Batches(x, y, 8, bad_batch=2), epochs=1, verbose=0, shuffle=False)


def test_model_checkpoint_and_early_stopping_and_the_file_reloads(tmp_path):
    x, y = tiny_data(32)
    model = tiny_model()
    path = tmp_path / "best.keras"            # a Keras program's file name: tinyseg's format under that name
    seen = []
    cbs = [callbacks.ModelCheckpoint(str(path), save_best_only=True),
           callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True),
           callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(logs["val_loss"]))]
    model.fit(Batches(x[:24], y[:24], 8), epochs=30, validation_data=Batches(x[24:], y[24:], 8), verbose=0,
              callbacks=cbs)
    best = int(np.argmin(seen))
    assert len(seen) < 30 or best == 29               # stopped early unless it kept improving
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))   # both hold the best epoch's weights
    assert cbs[1].best == pytest.approx(seen[best])


def test_csv_logger_and_learning_rate_scheduler(tmp_path):
    x, y = tiny_data()
    model = tiny_model()
    log = tmp_path / "log.csv"
    model.fit(x, y, epochs=3, verbose=0, callbacks=[
        callbacks.LearningRateScheduler(lambda epoch, lr: 0.01 * 0.5 ** epoch), callbacks.CSVLogger(str(log))])
    rows = list(csv.DictReader(open(log)))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert [float(r["learning_rate"]) for r in rows] == [0.01, 0.005, 0.0025]
    assert model.optimizer.learning_rate == 0.0025


def test_reduce_lr_on_plateau_reduces_after_patience():
    x, y = tiny_data()
    model = tiny_model()
    cb = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=10.0)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[cb])       # min_delta 10: no epoch counts as better
    assert model.optimizer.learning_rate == pytest.approx(0.001 * 0.5 ** 2)


def test_a_callback_that_raises_is_named_and_the_weights_are_those_of_the_last_step():
    x, y = tiny_data()
    model = tiny_model()
    after_step = {}

    class Broken(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                after_step["weights"] = self.model.get_weights()
                raise RuntimeError("disk full")

    with pytest.raises(CallbackError, match=r"Broken.on_train_batch_end raised RuntimeError: disk full"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[Broken()])
    for a, b in zip(model.get_weights(), after_step["weights"]):
        np.testing.assert_array_equal(a, b)


def test_stop_training_from_a_callback_and_terminate_on_nan():
    x, y = tiny_data()
    model = tiny_model()

    class StopAfterOne(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True

    assert len(model.fit(x, y, epochs=5, verbose=0, callbacks=[StopAfterOne()]).history["loss"]) == 1
    stopper = callbacks.TerminateOnNaN()
    stopper.set_model(model)
    stopper.on_train_batch_end(0, {"loss": float("nan")})
    assert model.stop_training


def test_validation_split_holds_out_the_last_samples():
    x, y = tiny_data(20)
    model = tiny_model()
    history = model.fit(x, y, epochs=1, verbose=0, validation_split=0.25, shuffle=False)
    expected = model.evaluate(x[15:], y[15:], verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(expected[0])


@pytest.mark.parametrize("make", [
    lambda path: callbacks.ModelCheckpoint(path, monitor="val_loss", save_best_only=True),
    lambda path: callbacks.ModelCheckpoint(path.replace(".npz", "-{val_loss:.2f}.npz")),
    lambda path: callbacks.EarlyStopping(monitor="val_loss"),
    lambda path: callbacks.ReduceLROnPlateau(monitor="val_accuracy")])
def test_a_validation_monitor_without_validation_data_fails_before_the_first_step(tmp_path, make):
    """It used to be a KeyError at the end of the first epoch, after the epoch's work (Keras 3 warns, and a
    ModelCheckpoint then saves every epoch as if save_best_only were False)."""
    x, y = tiny_data()
    model = tiny_model()
    before = model.get_weights()
    with pytest.raises(CallbackError, match=r"'val_\w+' is a validation value, but this fit has no validation "
                                            r"data.*validation_data=.*or watch '(loss|accuracy)'"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[make(str(tmp_path / "m.npz"))])
    assert model.optimizer.iterations == 0 and model.history is None and not list(tmp_path.iterdir())
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.ModelCheckpoint(str(tmp_path / "m.npz"))])
    assert (tmp_path / "m.npz").exists()         # the default monitor='val_loss' is not used without best-only
    model.fit(x, y, epochs=1, verbose=0, validation_split=0.25, callbacks=[make(str(tmp_path / "v.npz"))])
