"""Save and load: exact round trips, atomic writes, no pickles, clear errors for foreign or damaged files."""
import json
import os
import zipfile

import numpy as np
import pytest

from tinyseg.layers import (
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPooling2D,
    UpSampling2D,
)
from tinyseg.models import Sequential
from tinyseg.models.unet import UNet
from tinyseg.saving import load_model, save_model


def small_sequential():
    return Sequential([Conv2D(4, 3, padding="same", activation="relu", input_shape=(8, 8, 2)),
                       BatchNormalization(), MaxPooling2D(2), UpSampling2D(2, interpolation="bilinear"),
                       AveragePooling2D(2, strides=1), Dropout(0.3), Flatten(), Dense(3, activation="softmax")])


@pytest.mark.parametrize("make", [small_sequential,
                                  lambda: UNet(input_shape=(8, 8, 3), num_classes=3, depth=2, base_filters=4),
                                  lambda: UNet(input_shape=(8, 8, 1), num_classes=1, depth=1, base_filters=2,
                                               upsampling="nearest", batch_norm=False)])
def test_round_trip_is_bit_identical(tmp_path, make):
    model = make()
    shape = (5,) + tuple(model.input_shape)
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    # move batch-norm statistics away from their initial values so they are really saved
    model.compile(optimizer="adam", loss="mse")
    model.call(x, training=True)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = load_model(path)
    assert type(loaded) is type(model)
    assert [type(a) for a in loaded.layers] == [type(b) for b in model.layers]
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.predict(x), loaded.predict(x))


def test_file_holds_no_pickles_and_carries_a_version(tmp_path):
    path = tmp_path / "m.npz"
    save_model(small_sequential(), path)
    with np.load(path, allow_pickle=False) as archive:                # would raise on an object array
        header = json.loads(str(archive["tinyseg_header"]))
        assert header["format_version"] == 1
        assert all(archive[name].dtype != object for name in archive.files)


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save_model(small_sequential(), path)
    before = path.read_bytes()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_model(small_sequential(), path)
    assert path.read_bytes() == before                                # the old file is untouched
    assert os.listdir(tmp_path) == ["m.npz"]                          # and no temporary file is left


def test_foreign_and_damaged_files(tmp_path):
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    with pytest.raises(ValueError, match="not a tinyseg model file"):
        load_model(foreign)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="damaged or not a tinyseg model file"):
        load_model(text)
    good = tmp_path / "good.npz"
    save_model(small_sequential(), good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(ValueError, match="damaged"):
        load_model(truncated)
    with pytest.raises(FileNotFoundError, match="no file"):
        load_model(tmp_path / "missing.npz")


def test_pickled_payload_is_refused(tmp_path):
    """An npz whose entry is an object array (a pickle) is refused, and the pickle never runs."""
    marker = tmp_path / "ran"
    path = tmp_path / "evil.npz"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))
    header = {"format": "tinyseg-model", "format_version": 1, "num_weights": 1,
              "architecture": {"class_name": "Sequential", "config": {"name": "s", "layers": []}}}
    np.savez(path, tinyseg_header=np.array(json.dumps(header)), weight_0000=np.array([Evil()], dtype=object))
    with pytest.raises(ValueError, match="damaged or not a tinyseg model file"):
        load_model(path)
    assert not marker.exists()


def test_wrong_version_and_mismatched_weights(tmp_path):
    path = tmp_path / "m.npz"
    save_model(small_sequential(), path)
    with zipfile.ZipFile(path) as z:
        entries = {name: z.read(name) for name in z.namelist()}
    with np.load(path) as archive:
        header = json.loads(str(archive["tinyseg_header"]))
        arrays = {k: archive[k] for k in archive.files}
    header["format_version"] = 99
    arrays["tinyseg_header"] = np.array(json.dumps(header))
    np.savez(tmp_path / "v99.npz", **arrays)
    with pytest.raises(ValueError, match="format version 99"):
        load_model(tmp_path / "v99.npz")
    header["format_version"] = 1
    arrays["tinyseg_header"] = np.array(json.dumps(header))
    arrays["weight_0000"] = np.zeros((2, 2))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="do not fit its architecture"):
        load_model(tmp_path / "bad.npz")
    assert entries


# --- every function that writes saved state into a model is all or nothing ---------------------------------
def _trained_with_adam():
    model = small_sequential()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((4, 8, 8, 2), dtype=np.float32)
    model.fit(x, np.arange(4) % 3, epochs=1, batch_size=2, verbose=0)
    return model


@pytest.mark.parametrize("spoil, match", [
    (lambda slots: slots[:-1] + [(slots[-1][0], slots[-1][1], np.full_like(slots[-1][2], np.nan))], "holds NaN"),
    (lambda slots: slots[:-1] + [(slots[-1][0], slots[-1][1], slots[-1][2][:1])], "has shape"),
    (lambda slots: slots + [(99, "m", slots[0][2])], "slot position 99"),
])
def test_optimizer_set_state_changes_nothing_when_its_last_slot_is_bad(spoil, match):
    """What load_model(compile=True) calls to put back Adam's m and v: the step count and every slot are
    checked before any is set."""
    model = _trained_with_adam()
    optimizer, params = model.optimizer, model.trainable_weights
    before = optimizer.get_state()
    state = {"iterations": 99, "slots": spoil(list(before["slots"]))}
    with pytest.raises(ValueError, match=match):
        optimizer.set_state(state, params)
    after = optimizer.get_state()
    assert after["iterations"] == before["iterations"] == 2
    assert [(i, n) for i, n, _ in after["slots"]] == [(i, n) for i, n, _ in before["slots"]]
    assert all(np.array_equal(a[2], b[2]) for a, b in zip(after["slots"], before["slots"]))


def test_dropout_set_rng_state_changes_nothing_when_refused():
    layer = Dropout(0.5, seed=3)
    layer.build((6,))
    state = layer.get_rng_state()
    with pytest.raises(ValueError, match="not a state of its generator"):
        layer.set_rng_state({"bit_generator": "PCG64", "state": "spoiled"})
    assert layer.get_rng_state() == state


def test_model_load_weights_changes_nothing_when_the_last_array_is_not_finite(tmp_path):
    model, other = _trained_with_adam(), _trained_with_adam()
    weights = other.get_weights()
    weights[-1] = np.full_like(weights[-1], np.nan)
    path = tmp_path / "w.npz"
    other.save_weights(path)
    with zipfile.ZipFile(path) as z:                      # the last array replaced by NaN, in a file
        arrays = {name[:-4]: np.load(z.open(name)) for name in z.namelist()}
    arrays[f"weight_{len(weights) - 1:04d}"] = weights[-1]
    np.savez(path, **arrays)
    before = model.get_weights()
    with pytest.raises(ValueError, match="load_weights: .*holds NaN or inf"):
        model.load_weights(path)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
