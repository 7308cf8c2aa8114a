"""Saved is what you get back (issue 12): a run saved after 2 epochs and resumed after load_model ends with
weights bit-identical to 4 epochs in one go, for SGD, momentum, RMSprop and Adam, for a Sequential and a
U-Net; the file keeps the optimizer's state, the compile settings, the class names, the dtype; files get the
usual permissions and crashed saves leave nothing behind for ever."""
import json
import os
import stat
import time
import zipfile

import numpy as np
import pytest

import tinyseg
from tests.models.resume_kit import data, saved_after_two_epochs
from tinyseg import callbacks
from tinyseg.layers import Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten
from tinyseg.losses import SparseCategoricalCrossentropy
from tinyseg.models import Sequential, UNet
from tinyseg.optimizers import SGD, Adam, RMSprop
from tinyseg.saving import STALE_SECONDS, TEMP_PREFIX, TEMP_SUFFIX, load_model, save_model

OPTIMIZERS = {
    "sgd": lambda: SGD(0.1),
    "momentum": lambda: SGD(0.05, momentum=0.9, nesterov=True),
    "rmsprop": lambda: RMSprop(0.01, momentum=0.5, centered=True),
    "adam": lambda: Adam(0.01),
}


def sequential():
    """Conv, BatchNorm, a Dropout drawing from the shared generator and one with its own seed."""
    return Sequential([Conv2D(4, 3, padding="same", input_shape=(8, 8, 2)), BatchNormalization(momentum=0.8),
                       Activation("relu"), Dropout(0.25), Dropout(0.25, seed=7), Conv2D(3, 1, activation="softmax")])


def unet(dtype=None):
    return UNet(input_shape=(8, 8, 2), num_classes=3, depth=1, base_filters=2, dropout=0.25, dtype=dtype)


MODELS = {"sequential": sequential, "unet": unet}


def made(kind, opt, dtype=None):
    tinyseg.set_random_seed(11)
    model = MODELS[kind](dtype) if dtype else MODELS[kind]()
    model.compile(optimizer=OPTIMIZERS[opt](), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def assert_bit_identical(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for i, (p, q) in enumerate(zip(wa, wb)):
        assert p.dtype == q.dtype and np.array_equal(p, q), f"weight {i} differs"


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("kind", list(MODELS))
def test_two_plus_two_epochs_equal_four(tmp_path, kind, opt):
    x, y = data()
    fit, unbroken, first, resumed = saved_after_two_epochs(lambda: made(kind, opt), x, y, tmp_path / "run.npz")
    assert resumed.epochs_done == 2 and resumed.optimizer.iterations == first.optimizer.iterations == 8
    history = resumed.fit(x, y, epochs=4, initial_epoch=resumed.epochs_done, **fit)

    assert history.epoch == [2, 3]
    assert_bit_identical(resumed, unbroken)
    assert resumed.optimizer.iterations == unbroken.optimizer.iterations == 16
    for key, slot in unbroken.optimizer._slots.items():
        assert np.array_equal(resumed.optimizer._slots[key], slot), key
    assert history.history["loss"] == unbroken.history.history["loss"][2:]


def test_a_float64_unet_resumes_in_float64(tmp_path):
    x, y = data(np.float64)
    unbroken = made("unet", "adam", dtype="float64")
    unbroken.fit(x, y, epochs=4, batch_size=4, verbose=0, seed=1)
    first = made("unet", "adam", dtype="float64")
    first.fit(x, y, epochs=2, batch_size=4, verbose=0, seed=1)
    first.save(tmp_path / "m.npz")
    resumed = load_model(tmp_path / "m.npz")
    assert resumed.dtype == np.float64 and resumed.get_config()["dtype"] == "float64"
    assert all(w.dtype == np.float64 for w in resumed.get_weights())
    assert all(s.dtype == np.float64 for s in resumed.optimizer._slots.values())
    resumed.fit(x, y, epochs=4, initial_epoch=2, batch_size=4, verbose=0, seed=1)
    assert_bit_identical(resumed, unbroken)


def test_a_checkpoint_written_by_the_callback_resumes(tmp_path):
    x, y = data()
    unbroken = made("sequential", "adam")
    unbroken.fit(x, y, epochs=3, batch_size=4, verbose=0, seed=2)
    first = made("sequential", "adam")
    first.fit(x, y, epochs=3, batch_size=4, verbose=0, seed=2,
              callbacks=[callbacks.ModelCheckpoint(str(tmp_path / "epoch-{epoch}.npz"))])
    resumed = load_model(tmp_path / "epoch-1.npz")
    assert resumed.epochs_done == 1
    resumed.fit(x, y, epochs=3, initial_epoch=resumed.epochs_done, batch_size=4, verbose=0, seed=2)
    assert_bit_identical(resumed, unbroken)


# --- what the file keeps ------------------------------------------------------------------------------------
def test_the_file_keeps_optimizer_compile_settings_class_names_and_ignore_index(tmp_path):
    x, y = data()
    y[0, 0] = 255
    model = made("unet", "adam")
    model.compile(optimizer=RMSprop(0.02, rho=0.8, momentum=0.3, centered=True, epsilon_style="torch"),
                  loss=SparseCategoricalCrossentropy(class_weight=[1.0, 2.0, 0.5], ignore_index=255),
                  metrics=["accuracy"])
    model.class_names = ["background", "circle", "square"]
    model.fit(x, y, epochs=1, batch_size=7, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.class_names == ["background", "circle", "square"]
    assert type(loaded.loss) is SparseCategoricalCrossentropy and loaded.loss.ignore_index == 255
    assert loaded.loss.get_config() == model.loss.get_config()
    assert type(loaded.optimizer) is RMSprop and loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == 2 and loaded.metric_names == ["accuracy"]
    assert {k: v.dtype for k, v in loaded.optimizer._slots.items()} == \
        {k: v.dtype for k, v in model.optimizer._slots.items()}
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)


def test_mean_iou_follows_the_loss_ignore_index_or_is_refused_at_compile():
    """With tinyseg.metrics.get(name, ignore_index) (the metrics module's side of issue 12) compile binds the
    loss's ignore_index; a metrics module without it gets mean_iou refused at compile, not after a step."""
    import inspect

    from tinyseg import metrics
    model = made("unet", "adam")
    loss = SparseCategoricalCrossentropy(ignore_index=255)
    if "ignore_index" in inspect.signature(metrics.get).parameters:
        model.compile(optimizer="adam", loss=loss, metrics=["mean_iou"])
        assert model._metric_fns[0].ignore_index == 255
    else:
        with pytest.raises(ValueError, match="metric 'mean_iou' fails on targets that hold the loss's ignore_index"):
            model.compile(optimizer="adam", loss=loss, metrics=["mean_iou"])


def test_class_names_default_to_none_and_an_uncompiled_model_loads_uncompiled(tmp_path):
    model = unet()
    save_model(model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.class_names is None and loaded.loss is None and loaded.epochs_done == 0


def test_include_optimizer_false_and_compile_false(tmp_path):
    x, y = data()
    model = made("sequential", "adam")
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "bare.npz", include_optimizer=False)
    assert load_model(tmp_path / "bare.npz").optimizer is None
    model.save(tmp_path / "full.npz")
    assert load_model(tmp_path / "full.npz", compile=False).optimizer is None
    assert_bit_identical(load_model(tmp_path / "full.npz", compile=False), model)


def my_metric(y_true, y_out):
    return float(np.mean(y_out.argmax(-1) == y_true))


def test_a_metric_function_needs_custom_objects_to_load(tmp_path):
    model = made("sequential", "adam")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy", my_metric])
    model.save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match=r"metric function 'my_metric'.*custom_objects"):
        load_model(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz", custom_objects={"my_metric": my_metric})
    assert loaded.metric_names == ["accuracy", "my_metric"]
    assert load_model(tmp_path / "m.npz", compile=False).loss is None


def test_a_widened_adam_slot_is_saved_and_loaded(tmp_path):
    """A gradient beyond 1.8e19 widens Adam's v to float64 for that parameter; the file keeps it so."""
    model = Sequential([Dense(2, input_shape=(3,), activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.array([[1e25, 0.0, 1.0], [1.0, 2.0, 3.0]], np.float32)
    model.train_on_batch(x, np.array([0, 1]))
    assert model.optimizer._slots[(0, "v")].dtype == np.float64
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.optimizer._slots[(0, "v")].dtype == np.float64
    assert np.array_equal(loaded.optimizer._slots[(0, "v")], model.optimizer._slots[(0, "v")])


@pytest.mark.parametrize("what", ["loss", "optimizer"])
def test_a_loss_or_optimizer_class_of_your_own_is_refused_at_save(tmp_path, what):
    class MyLoss(SparseCategoricalCrossentropy):
        pass

    class MyAdam(Adam):
        pass

    model = sequential()
    model.compile(optimizer=MyAdam() if what == "optimizer" else "adam",
                  loss=MyLoss() if what == "loss" else "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=f"{what} class My.* is not one of tinyseg's"):
        model.save(tmp_path / "m.npz")
    assert not os.listdir(tmp_path)
    model.save(tmp_path / "m.npz", include_optimizer=False)            # architecture and weights: fine


def test_the_header_is_plain_json_without_pickles(tmp_path):
    model = made("sequential", "momentum")
    x, y = data()
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        names = sorted(z.namelist())
    assert names[-1] == "weight_0007.npy" and "optimizer_0000.npy" in names
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        header = json.loads(str(archive["tinyseg_header"]))
        assert all(archive[name].dtype != object for name in archive.files)
    assert header["format_version"] == 1 and header["training"]["epochs_done"] == 1
    assert header["compile"]["optimizer"] == {"class_name": "SGD", "config": model.optimizer.get_config()}
    assert header["optimizer_state"]["slots"] == [[i, "velocity"] for i in range(6)]     # conv, BN, conv


# --- files on disk ------------------------------------------------------------------------------------------
def test_a_new_file_has_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        save_model(sequential(), tmp_path / "m.npz")
        assert stat.S_IMODE(os.stat(tmp_path / "m.npz").st_mode) == 0o644
        os.umask(0o077)
        save_model(sequential(), tmp_path / "private.npz")
        assert stat.S_IMODE(os.stat(tmp_path / "private.npz").st_mode) == 0o600
    finally:
        os.umask(old)


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "m.npz"
    save_model(sequential(), path)
    os.chmod(path, 0o640)
    save_model(sequential(), path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_stale_temporary_files_of_crashed_saves_are_removed(tmp_path):
    stale = tmp_path / f"{TEMP_PREFIX}crashed{TEMP_SUFFIX}"
    young = tmp_path / f"{TEMP_PREFIX}running{TEMP_SUFFIX}"
    other = tmp_path / "notes.tmp"
    for f in (stale, young, other):
        f.write_bytes(b"partial")
    old = time.time() - STALE_SECONDS - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    save_model(sequential(), tmp_path / "m.npz")
    assert sorted(os.listdir(tmp_path)) == sorted(["m.npz", young.name, other.name])


def test_a_crash_between_write_and_rename_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save_model(sequential(), path)
    before = path.read_bytes()

    def crash(src, dst):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save_model(sequential(), path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]


def test_a_layer_unknown_to_load_model_is_refused_at_save(tmp_path):
    class Doubling(Dense):
        pass

    Doubling.__name__ = "NotRegistered"                # a class load_model could not find by its name
    model = Sequential([Doubling(2, input_shape=(3,)), Flatten()])
    with pytest.raises(ValueError, match="is not a registered tinyseg layer class"):
        model.save(tmp_path / "m.npz")
    assert not os.listdir(tmp_path)
