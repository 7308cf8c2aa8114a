"""Training dynamics survive a save (the pattern of test_resume.py): an optimizer with a learning-rate schedule,
clipping and weight decay, and a model with weight regularizers, saved after 2 epochs and resumed after
load_model, end bit-identical to 4 epochs in one go; the file keeps the schedule as its config."""
import io
import json
import zipfile

import numpy as np
import pytest

import tinyseg
from tests.models.resume_kit import data, saved_after_two_epochs
from tinyseg.layers import Activation, BatchNormalization, Conv2D, Dropout
from tinyseg.models import Sequential, UNet
from tinyseg.optimizers import SGD, Adam, AdamW, RMSprop
from tinyseg.regularizers import L1, L1L2, L2
from tinyseg.saving import load_model
from tinyseg.schedules import CosineDecay, ExponentialDecay, PiecewiseConstantDecay

# 14 samples in batches of 4: 4 steps an epoch, 16 in the whole run; every schedule changes within it
OPTIMIZERS = {
    "sgd, cosine with warm-up, global_clipnorm": lambda: SGD(
        CosineDecay(0.0, 10, alpha=0.1, warmup_target=0.2, warmup_steps=4), momentum=0.9, global_clipnorm=0.5),
    "adamw, piecewise constant, clipnorm": lambda: AdamW(
        PiecewiseConstantDecay([3, 9], [0.02, 0.01, 0.002]), weight_decay=0.05, clipnorm=0.1),
    "rmsprop, exponential staircase, clipvalue, weight decay": lambda: RMSprop(
        ExponentialDecay(0.01, 4, 0.5, staircase=True), momentum=0.5, centered=True, clipvalue=0.01,
        weight_decay=0.1),
    "adam, exponential": lambda: Adam(ExponentialDecay(0.01, 3, 0.7), epsilon_style="torch"),
}


def sequential():
    """Regularized convolutions, BatchNorm, both kinds of Dropout."""
    return Sequential([Conv2D(4, 3, padding="same", input_shape=(8, 8, 2), kernel_regularizer=L2(1e-3),
                              bias_regularizer=L1(1e-3)),
                       BatchNormalization(momentum=0.8), Activation("relu"), Dropout(0.25), Dropout(0.25, seed=7),
                       Conv2D(3, 1, activation="softmax", kernel_regularizer=L1L2(1e-3, 1e-2))])


def unet():
    return UNet(input_shape=(8, 8, 2), num_classes=3, depth=1, base_filters=2, dropout=0.25)


MODELS = {"regularized sequential": sequential, "unet": unet}


def made(kind, opt):
    tinyseg.set_random_seed(11)
    model = MODELS[kind]()
    model.compile(optimizer=OPTIMIZERS[opt](), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("kind", list(MODELS))
def test_two_plus_two_epochs_equal_four(tmp_path, kind, opt):
    x, y = data()
    fit, unbroken, first, resumed = saved_after_two_epochs(lambda: made(kind, opt), x, y, tmp_path / "run.npz")
    assert resumed.optimizer.iterations == 8
    assert resumed.optimizer.get_config() == first.optimizer.get_config()
    assert resumed.optimizer.learning_rate == first.optimizer.learning_rate      # the schedule at step 8
    history = resumed.fit(x, y, epochs=4, initial_epoch=resumed.epochs_done, **fit)

    assert history.history["loss"] == unbroken.history.history["loss"][2:]
    wa, wb = resumed.get_weights(), unbroken.get_weights()
    for i, (p, q) in enumerate(zip(wa, wb)):
        assert p.dtype == q.dtype and np.array_equal(p, q), f"weight {i} differs"
    for key, slot in unbroken.optimizer._slots.items():
        assert np.array_equal(resumed.optimizer._slots[key], slot), key


def read_entries(path):
    """{entry name: bytes} of a model file, and its JSON header."""
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    return entries, json.loads(np.load(io.BytesIO(entries["tinyseg_header.npy"])).item())


def test_the_file_keeps_the_schedule_clipping_and_decay_as_config(tmp_path):
    model = made("regularized sequential", "adamw, piecewise constant, clipnorm")
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    model.save(tmp_path / "m.npz")
    _, header = read_entries(tmp_path / "m.npz")
    config = header["compile"]["optimizer"]["config"]
    assert header["compile"]["optimizer"]["class_name"] == "AdamW"
    assert config["learning_rate"] == {"class_name": "PiecewiseConstantDecay",
                                       "config": {"boundaries": [3, 9], "values": [0.02, 0.01, 0.002],
                                                  "name": "PiecewiseConstant"}}
    assert (config["weight_decay"], config["clipnorm"], config["clipvalue"], config["global_clipnorm"]) == \
        (0.05, 0.1, None, None)
    layers = header["architecture"]["config"]["layers"]
    assert any(spec["config"].get("kernel_regularizer") == {"class_name": "L2", "config": {"l2": 1e-3}}
               for spec in layers)
    loaded = load_model(tmp_path / "m.npz")
    assert isinstance(loaded.optimizer._learning_rate, PiecewiseConstantDecay)
    assert loaded.optimizer.iterations == 4 and loaded.optimizer.learning_rate == 0.01


def test_a_file_with_an_unknown_schedule_is_refused_with_a_reason(tmp_path):
    model = made("unet", "adam, exponential")
    model.save(tmp_path / "m.npz")
    entries, header = read_entries(tmp_path / "m.npz")
    header["compile"]["optimizer"]["config"]["learning_rate"] = {"class_name": "OneCycle", "config": {}}
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array(json.dumps(header)))
    entries["tinyseg_header.npy"] = buffer.getvalue()
    with zipfile.ZipFile(tmp_path / "bad.npz", "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        load_model(tmp_path / "bad.npz")
    assert load_model(tmp_path / "bad.npz", compile=False).optimizer is None
