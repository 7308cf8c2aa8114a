"""The Keras-like model API: the seed program, summary, weights in Keras layouts, fit/evaluate/predict, errors."""
import numpy as np
import pytest

import tinyseg
from tests.helpers import seed_cnn
from tinyseg.gradcheck import check_model
from tinyseg.layers import Dense, Softmax
from tinyseg.models import Sequential
from tinyseg.optimizers import SGD
from tinyseg.utils import to_categorical


def test_seed_cnn_summary_counts_keras_parameters(capsys):
    model = seed_cnn()
    assert model.count_params() == 122_570
    model.summary()
    out = capsys.readouterr().out
    assert "Total params: 122,570" in out
    assert "(None, 30, 30, 32)" in out and "(None, 4, 4, 64)" in out and "(None, 1024)" in out
    assert [w.shape for w in model.get_weights()] == [
        (3, 3, 3, 32), (32,), (3, 3, 32, 64), (64,), (3, 3, 64, 64), (64,), (1024, 64), (64,), (64, 10), (10,)]


def test_seed_program_trains_and_history_has_keras_keys():
    rng = np.random.default_rng(0)
    x = rng.random((64, 32, 32, 3), dtype=np.float32)
    y = to_categorical(rng.integers(0, 10, 64), 10)
    tinyseg.set_random_seed(0)
    model = seed_cnn()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=32, validation_data=(x[:16], y[:16]), verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 for v in history.history.values())
    assert history.history["loss"][-1] < history.history["loss"][0]      # it learns the (random) labels
    loss, acc = model.evaluate(x, y, verbose=0)
    probs = model.predict(x)
    assert probs.shape == (64, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    assert acc == pytest.approx(np.mean(probs.argmax(1) == y.argmax(1)))
    assert loss == pytest.approx(-np.mean(np.log(probs[np.arange(64), y.argmax(1)])), rel=1e-4)


def test_epoch_loss_is_the_mean_of_batch_losses():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 5)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    model = Sequential([Dense(3, input_shape=(5,))])
    model.compile(optimizer=SGD(0.0001), loss="sparse_categorical_crossentropy")
    before = model.get_weights()
    batch_losses = []
    for i in range(0, 40, 10):                     # what fit does with shuffle=False, nearly frozen weights
        batch_losses.append(model.test_on_batch(x[i:i + 10], y[i:i + 10])[0])
    model.set_weights(before)
    history = model.fit(x, y, epochs=1, batch_size=10, shuffle=False, verbose=0)
    assert history.history["loss"][0] == pytest.approx(np.mean(batch_losses), rel=1e-3)


def test_fit_shuffle_is_seeded():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((30, 4)).astype(np.float32)
    y = rng.integers(0, 2, 30)
    runs = []
    for _ in range(2):
        tinyseg.set_random_seed(5)
        model = Sequential([Dense(2, input_shape=(4,))])
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        runs.append(model.fit(x, y, epochs=2, batch_size=7, verbose=0, seed=3).history["loss"])
    assert runs[0] == runs[1]


def test_keras_weights_give_the_same_predictions():
    """set_weights takes arrays in Keras's layouts: a model given another's weights predicts the same."""
    a, b = seed_cnn(), seed_cnn()
    x = np.random.default_rng(3).random((4, 32, 32, 3), dtype=np.float32)
    assert not np.allclose(a.predict(x), b.predict(x))
    b.set_weights(a.get_weights())
    np.testing.assert_array_equal(a.predict(x), b.predict(x))


def test_fused_softmax_cross_entropy_gradient_matches_unfused_chain():
    """Training through logits (fused) gives the same gradient as softmax layer + CE on probabilities."""
    tinyseg.set_floatx("float64")
    try:
        model = Sequential([Dense(4, input_shape=(3,)), Softmax()])
        model.compile(optimizer="sgd", loss="categorical_crossentropy")
        assert model.fused
        rng = np.random.default_rng(4)
        x = rng.standard_normal((5, 3))
        y = to_categorical(rng.integers(0, 4, 5), 4, dtype="float64")
        z = model.call(x, training=True, logits=True)
        model.loss.forward(y, z)
        model.backward(model.loss.backward(), logits=True)
        fused = model.layers[0].grads["kernel"].copy()
        p = model.call(x, training=True)                      # probabilities, then d(-mean y log p)/dp
        model.backward(-y / p / len(x))
        np.testing.assert_allclose(model.layers[0].grads["kernel"], fused, rtol=1e-10)
    finally:
        tinyseg.set_floatx("float32")


def test_whole_seed_cnn_passes_gradient_check():
    tinyseg.set_random_seed(7)
    model = seed_cnn(dtype="float64")
    x = np.random.default_rng(5).standard_normal((2, 32, 32, 3))
    report = check_model(model, x, max_entries=25)
    assert len(report.per_array) == 1 + 10                     # the input and all ten weight arrays
    assert report.ok and report.max_rel_error < 1e-6, str(report)


# --- bad input -----------------------------------------------------------------------------------------
def compiled_seed_cnn(loss="categorical_crossentropy"):
    model = seed_cnn()
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


def test_integer_labels_to_categorical_crossentropy_name_the_fix():
    model = compiled_seed_cnn()
    x = np.zeros((4, 32, 32, 3), np.float32)
    y = np.array([[3], [1], [0], [9]], dtype=np.uint8)               # CIFAR-10's label layout
    with pytest.raises(TypeError, match="sparse_categorical_crossentropy.*to_categorical"):
        model.fit(x, y, verbose=0)


def test_wrong_channel_count_names_the_channels():
    model = compiled_seed_cnn()
    with pytest.raises(ValueError, match="built for 3 channels, x has 1"):
        model.fit(np.zeros((4, 32, 32, 1), np.float32), to_categorical(np.zeros(4, int), 10), verbose=0)


def test_wrong_image_size_and_uint8_and_nan_inputs():
    model = compiled_seed_cnn()
    y = to_categorical(np.zeros(2, int), 10)
    with pytest.raises(ValueError, match=r"expected \(batch,\) \+ \(32, 32, 3\)"):
        model.fit(np.zeros((2, 28, 28, 3), np.float32), y, verbose=0)
    with pytest.raises(TypeError, match="uint8.*astype"):
        model.fit(np.zeros((2, 32, 32, 3), np.uint8), y, verbose=0)
    x = np.zeros((2, 32, 32, 3), np.float32)
    x[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="2 samples but its targets have 3"):
        model.fit(np.zeros((2, 32, 32, 3), np.float32), to_categorical(np.zeros(3, int), 10), verbose=0)


def test_labels_out_of_range_are_named():
    model = compiled_seed_cnn("sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"label 10 outside \[0, 10\)"):
        model.fit(np.zeros((2, 32, 32, 3), np.float32), np.array([1, 10]), verbose=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"optimizer": "adagrad"}, "optimizer must be one of"),
    ({"loss": "hinge"}, "loss must be one of"),
    ({"metrics": ["f1"]}, "f1"),
])
def test_unknown_names_in_compile(kwargs, match):
    model = seed_cnn()
    with pytest.raises(ValueError, match=match):
        model.compile(**{"optimizer": "adam", "loss": "categorical_crossentropy", **kwargs})


def test_unknown_activation_and_mismatched_output_activation():
    with pytest.raises(ValueError, match="activation must be one of"):
        Dense(3, activation="swish")
    model = Sequential([Dense(3, activation="relu", input_shape=(2,))])
    with pytest.raises(ValueError, match="End the model with activation='softmax'"):
        model.compile(loss="categorical_crossentropy")


def test_fit_before_compile_and_bad_fit_arguments():
    model = seed_cnn()
    x, y = np.zeros((2, 32, 32, 3), np.float32), to_categorical(np.zeros(2, int), 10)
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(x, y)
    model.compile()
    with pytest.raises(ValueError, match="epochs"):
        model.fit(x, y, epochs=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(x, y, batch_size=0)


def test_set_weights_checks_count_and_shapes():
    model = seed_cnn()
    weights = model.get_weights()
    with pytest.raises(ValueError, match="10 weight arrays, got 9"):
        model.set_weights(weights[:-1])
    weights[0] = weights[0].transpose(3, 2, 0, 1)                     # a PyTorch OIHW kernel by mistake
    with pytest.raises(ValueError, match=r"'kernel' must have shape \(3, 3, 3, 32\)"):
        model.set_weights(weights)


def test_training_backward_skips_only_the_input_gradient():
    """input_grad=False (what train_on_batch uses) returns None and leaves every parameter gradient the same."""
    from tinyseg.models.unet import UNet
    for model in (seed_cnn(), UNet(input_shape=(8, 8, 3), num_classes=3, depth=1, base_filters=2)):
        x = np.random.default_rng(6).random((2,) + tuple(model.input_shape), dtype=np.float32)
        g = np.random.default_rng(7).standard_normal((2,) + tuple(model.output_shape)).astype(np.float32)
        model.call(x, training=True, logits=True)
        assert model.backward(g, logits=True).shape == x.shape
        full = [layer.grads[k].copy() for layer in model.layers for k in layer.params]
        model.call(x, training=True, logits=True)
        assert model.backward(g, logits=True, input_grad=False) is None
        skipped = [layer.grads[k] for layer in model.layers for k in layer.params]
        for a, b in zip(full, skipped):
            np.testing.assert_array_equal(a, b)


def test_summary_fits_an_80_column_terminal_by_folding_cells(capsys, monkeypatch):
    """A U-Net's natural table is about 120 columns wide; in an 80-column terminal every line fits and nothing
    is lost: a long cell folds at its spaces onto more lines, a layer's name above its (Type)."""
    from tinyseg.models import UNet
    model = UNet()
    monkeypatch.setenv("COLUMNS", "80")                 # what shutil.get_terminal_size reads first
    model.summary()
    lines = capsys.readouterr().out.splitlines()
    wide = []
    model.summary(line_length=200, print_fn=wide.append)
    wide = wide[0].splitlines()
    assert max(len(line) for line in lines) <= 80 < max(len(line) for line in wide)
    assert len(lines) > len(wide)
    text = "\n".join(lines)
    for layer in model.layers:                          # every name, and every input of a concatenation
        assert layer.name in text
    for cat in model.concats:
        for t in cat.inbound_nodes[0].inputs:
            assert f"{t.name}[0][0]" in text
    assert any(line.startswith("(BatchNormalization)") for line in lines)    # folded under its name
    assert "Total params: 484,196" in text


def test_summary_fold_and_positions():
    from tinyseg.models.summary import fold
    assert fold("b[0][0], activation[0][0]", 12) == ["b[0][0],", "activation[0", "][0]"]
    assert fold("conv2d (Conv2D)", 15) == ["conv2d (Conv2D)"]
    model = seed_cnn()
    out = []
    model.summary(line_length=100, positions=[0.4, 0.7, 0.85, 1.0], print_fn=out.append)
    header = out[0].splitlines()[2]
    assert header.index("Output Shape") == 40 and header.index("Param #") == 70 and header.index("Connected") == 85
    with pytest.raises(ValueError, match="positions must give the right edge of each of the 4 columns"):
        model.summary(positions=[0.5, 1.0])
    with pytest.raises(TypeError, match="line_length must be an integer"):
        model.summary(line_length=80.5)


def test_all_or_nothing_puts_back_moving_statistics_and_every_generator():
    """rollback.all_or_nothing: what a training step's forward pass changes is as before when the block raises."""
    from tinyseg import Input, Model, backend
    from tinyseg.layers import BatchNormalization, Dropout
    from tinyseg.models.rollback import all_or_nothing
    x = Input((4, 4, 2))
    model = Model(x, Dropout(0.5, seed=3)(BatchNormalization()(x)))
    bn, dropout = model.layers[1], model.layers[2]
    before = ({k: v.copy() for k, v in bn.state.items()}, dropout.get_rng_state(), backend.rng().bit_generator.state)
    data = np.random.default_rng(0).normal(size=(3, 4, 4, 2)).astype(np.float32)
    with pytest.raises(RuntimeError, match="late failure"):
        with all_or_nothing(model):
            model.call(data, training=True)                       # moves the statistics, draws a mask
            backend.rng().random()
            assert not np.array_equal(bn.state["moving_mean"], before[0]["moving_mean"])
            raise RuntimeError("late failure")
    for k, v in before[0].items():
        np.testing.assert_array_equal(bn.state[k], v)
    assert dropout.get_rng_state() == before[1] and backend.rng().bit_generator.state == before[2]
