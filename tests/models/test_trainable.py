"""Freezing (Keras's `trainable`): what a frozen layer keeps, what the model counts and trains, what the
optimizer does with weights frozen before or after its first step, and what is saved.

The Keras side of the same rules is tests/parity/test_keras_trainable.py.
"""
import numpy as np
import pytest

import tinyseg
from tinyseg import layers, optimizers
from tinyseg.gradcheck import GradCheckReport, noise_floor, numeric_gradient
from tinyseg.saving import load_model


def encoder_decoder(dtype="float32", seed=0):
    """A small U-Net-like model: encoder Conv2D + BatchNormalization + pooling, decoder upsampling + skip."""
    tinyseg.set_random_seed(seed)
    x = tinyseg.Input((8, 8, 3), dtype=dtype)
    e = layers.Conv2D(4, 3, padding="same", name="enc_conv", dtype=dtype)(x)
    e = layers.BatchNormalization(name="enc_bn", dtype=dtype)(e)
    e = layers.Activation("relu", name="enc_relu", dtype=dtype)(e)
    p = layers.MaxPooling2D(2, name="enc_pool", dtype=dtype)(e)
    d = layers.Conv2D(4, 3, padding="same", activation="relu", name="dec_conv", dtype=dtype)(p)
    d = layers.UpSampling2D(2, name="dec_up", dtype=dtype)(d)
    d = layers.Concatenate(name="dec_cat", dtype=dtype)([d, e])
    y = layers.Conv2D(2, 1, activation="softmax", name="dec_head", dtype=dtype)(d)
    return tinyseg.Model(x, y)


ENCODER = ("enc_conv", "enc_bn")


def data(n=8, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8, 3), dtype=np.float32)
    y = (x[..., 0] > 0.5).astype(np.int64)
    return x, y


def freeze_encoder(model):
    for name in ENCODER:
        model.get_layer(name).trainable = False


def test_a_frozen_encoder_stays_bit_identical_through_fit_while_the_decoder_trains():
    model = encoder_decoder()
    x, y = data()
    freeze_encoder(model)
    model.compile("adam", "sparse_categorical_crossentropy")
    frozen = {n: [w.copy() for w in model.get_layer(n).get_weights()] for n in ENCODER}
    decoder = {n: [w.copy() for w in model.get_layer(n).get_weights()] for n in ("dec_conv", "dec_head")}
    model.fit(x, y, epochs=3, batch_size=4, verbose=0)
    for name, before in frozen.items():                      # kernel, bias, gamma, beta and the moving statistics
        for a, b in zip(model.get_layer(name).get_weights(), before):
            assert a.tobytes() == b.tobytes(), name
    for name, before in decoder.items():
        assert any(not np.array_equal(a, b) for a, b in zip(model.get_layer(name).get_weights(), before)), name


def test_without_freezing_the_same_fit_moves_the_encoder():
    """The test above could not pass by accident: unfrozen, the encoder and its statistics move."""
    model = encoder_decoder()
    x, y = data()
    model.compile("adam", "sparse_categorical_crossentropy")
    before = model.get_layer("enc_bn").get_weights()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    after = model.get_layer("enc_bn").get_weights()
    assert all(not np.array_equal(a, b) for a, b in zip(after, before))


def test_weight_lists_and_counts_split_as_keras_does():
    model = encoder_decoder()
    bn = model.get_layer("enc_bn")
    assert [w.shape for w in bn.weights] == [(4,)] * 4
    assert len(bn.trainable_weights) == 2 and len(bn.non_trainable_weights) == 2
    total = model.count_params()
    assert model.count_trainable_params() == total - 8          # the moving mean and variance
    freeze_encoder(model)
    assert bn.trainable_weights == [] and all(a is b for a, b in zip(bn.non_trainable_weights, bn.weights))
    assert model.count_params() == total
    assert model.count_non_trainable_params() == (3 * 3 * 3 * 4 + 4) + 16
    assert model.count_trainable_params() + model.count_non_trainable_params() == total
    assert all(w is model.get_layer("enc_conv").params["kernel"] for w in model.non_trainable_weights[:1])
    assert len(model.weights) == len(model.get_weights())
    assert all(a is b for a, b in zip(model.weights, [w for la in model.layers for w in la.weights]))
    text = []
    model.summary(print_fn=text.append, line_length=100)
    assert f"Trainable params: {total - 128:,}" in text[0] and "Non-trainable params: 128" in text[0]


def test_model_trainable_false_freezes_every_layer_and_true_unfreezes_them():
    model = encoder_decoder()
    model.trainable = False
    assert model.trainable is False and not any(layer.trainable for layer in model.layers)
    assert model.trainable_weights == [] and model.count_trainable_params() == 0
    model.get_layer("dec_head").trainable = True                # as in Keras: a frozen model trains nothing
    assert model.trainable_weights == []
    model.trainable = True
    assert all(layer.trainable for layer in model.layers) and model.count_trainable_params() > 0


def test_a_model_with_nothing_trainable_warns_and_changes_nothing():
    model = encoder_decoder()
    model.trainable = False
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = data()
    before = model.get_weights()
    with pytest.warns(UserWarning, match="no trainable weights"):
        model.fit(x, y, epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))
    assert model.optimizer.iterations == 0


def test_a_frozen_batch_normalization_runs_in_inference_mode_in_training():
    bn = layers.BatchNormalization()
    x = np.random.default_rng(0).standard_normal((4, 3, 3, 2)).astype(np.float32) * 3 + 1
    bn.build(x.shape[1:])
    bn.trainable = False
    assert np.array_equal(bn(x, training=True), bn(x, training=False))
    assert np.array_equal(bn.state["moving_mean"], np.zeros(2)) and np.all(bn.state["moving_variance"] == 1)
    bn.trainable = True
    assert not np.allclose(bn(x, training=True), bn(x, training=False))


def test_the_backward_pass_skips_the_frozen_encoder(monkeypatch):
    model = encoder_decoder()
    freeze_encoder(model)
    model.compile("sgd", "sparse_categorical_crossentropy")
    called = []
    for layer in model.layers:           # the backward of each layer's own math (before its activation, if any)
        own = "backward_linear" if hasattr(layer, "backward_linear") else "backward"
        original = getattr(layer, own)
        monkeypatch.setattr(layer, own, lambda g, *a, _f=original, _n=layer.name, **k:
                            called.append(_n) or _f(g, *a, **k))
    model.train_on_batch(*data(4))
    assert called == ["dec_head", "dec_cat", "dec_up", "dec_conv"]
    called.clear()
    model.get_layer("enc_conv").trainable = True             # now the gradient goes back to the input's layer
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.train_on_batch(*data(4))
    assert called == ["dec_head", "dec_cat", "dec_up", "dec_conv", "enc_pool", "enc_relu", "enc_bn", "enc_conv"]


def test_a_partly_frozen_model_gets_the_right_gradients_in_float64(monkeypatch):
    """What train_on_batch hands the optimizer, against central differences of the loss, for every entry of
    every trainable weight (< 1e-6 in float64); the frozen weights are neither handed over nor changed."""
    model = encoder_decoder("float64", seed=2)
    model.get_layer("enc_conv").trainable = False
    model.get_layer("dec_conv").trainable = False                 # frozen between two trainable layers
    model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    x, y = data(3, seed=4)
    x = x.astype(np.float64)
    handed = {}
    monkeypatch.setattr(model.optimizer, "apply_gradients",
                        lambda pairs, names=None: handed.update(grads=[g.copy() for g, _ in pairs], names=names))
    frozen = [w.copy() for name in ("enc_conv", "dec_conv") for w in model.get_layer(name).weights]
    model.train_on_batch(x, y)
    assert all(np.array_equal(a, b) for a, b in
               zip([w for name in ("enc_conv", "dec_conv") for w in model.get_layer(name).weights], frozen))
    assert model.get_layer("enc_conv").grads == {}                # a frozen first layer: no backward at all
    assert [n.split("'")[1] for n in handed["names"]] == ["enc_bn", "enc_bn", "dec_head", "dec_head"]

    def loss():
        return float(model.loss.forward(y, model.call(x, training=True, logits=model.fused)))

    h, tol = 1e-5, 1e-6
    report = GradCheckReport("partly frozen", tol=tol)
    floor = noise_floor(abs(loss()), h, tol)
    for analytic, name, param in zip(handed["grads"], handed["names"], model.trainable_weights):
        report.add(name, analytic.reshape(-1), numeric_gradient(loss, param, np.arange(param.size), h), floor)
    print(report)
    assert report.ok and report.max_rel_error < tol, str(report)
    assert report.n_checked == model.count_trainable_params() == 4 + 4 + 8 * 2 + 2


def test_trainable_must_be_true_or_false():
    layer = layers.Dense(2)
    with pytest.raises(TypeError, match="trainable must be True or False, got 'no'"):
        layer.trainable = "no"
    assert layer.trainable is True
    with pytest.raises(TypeError, match="trainable must be True or False, got 0"):
        layers.Conv2D(2, 3, trainable=0)
    model = encoder_decoder()
    with pytest.raises(TypeError, match="trainable must be True or False"):
        model.trainable = None
    assert model.trainable is True and all(layer.trainable for layer in model.layers)


def test_freezing_after_a_first_fit_takes_effect_without_compiling_again():
    """As Keras 3 does on the torch backend: the next step leaves the frozen layer (and its optimizer
    slots) alone."""
    model = encoder_decoder()
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    model.get_layer("dec_head").trainable = False
    head, slots = model.get_layer("dec_head").get_weights(), model.optimizer.get_state()["slots"]
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_layer("dec_head").get_weights(), head))
    positions = {id(w): i for i, w in enumerate(model.optimizer.variables)}
    head_slots = {positions[id(w)] for w in model.get_layer("dec_head").weights}
    for (i, name, before), (j, _, after) in zip(slots, model.optimizer.get_state()["slots"]):
        assert i == j and (np.array_equal(before, after) == (i in head_slots)), (i, name)


def test_unfreezing_after_the_first_step_is_refused_until_a_new_optimizer_as_in_keras():
    model = encoder_decoder()
    freeze_encoder(model)
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    model.get_layer("enc_conv").trainable = True
    before, iterations = model.get_weights(), model.optimizer.iterations
    with pytest.raises(ValueError, match="enc_conv.*not among the 4 parameters this optimizer was built with"):
        model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))
    assert model.optimizer.iterations == iterations
    model.compile("adam", "sparse_categorical_crossentropy")          # a new optimizer: trains it
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert not np.array_equal(model.get_layer("enc_conv").get_weights()[0], before[0])


def test_save_and_load_keep_trainable_and_the_optimizer_slots(tmp_path):
    model = encoder_decoder()
    freeze_encoder(model)
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    model.get_layer("dec_conv").trainable = False                    # frozen after the optimizer was built
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    assert [la.trainable for la in loaded.layers] == [la.trainable for la in model.layers]
    assert loaded.get_layer("enc_bn").get_config()["trainable"] is False
    assert loaded.count_trainable_params() == model.count_trainable_params()
    # the same next steps: the slots came back on the right weights
    model.fit(x, y, epochs=1, batch_size=4, verbose=0, shuffle=False)
    loaded.fit(x, y, epochs=1, batch_size=4, verbose=0, shuffle=False)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_get_layer_by_name_or_index():
    model = encoder_decoder()
    assert model.get_layer("dec_head") is model.layers[-1] is model.get_layer(index=-1)
    assert model.get_layer(index=0) is model.layers[0]
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="give name or index"):
        model.get_layer()
    with pytest.raises(ValueError, match="out of range"):
        model.get_layer(index=99)


def test_summary_can_show_which_layers_train():
    model = encoder_decoder()
    freeze_encoder(model)
    text = []
    model.summary(print_fn=text.append, line_length=120, show_trainable=True)
    rows = {line.split()[0]: line.split()[-1] for line in text[0].splitlines() if line.startswith(("enc_", "dec_"))}
    assert rows == {"enc_conv": "N", "enc_bn": "N", "enc_relu": "-", "enc_pool": "-", "dec_conv": "Y",
                    "dec_up": "-", "dec_cat": "-", "dec_head": "Y"}
    assert "Trainable" in text[0].splitlines()[2]
    with pytest.raises(TypeError, match="show_trainable must be True or False"):
        model.summary(show_trainable="yes")


def test_a_unet_keeps_its_frozen_layers_through_save_and_load(tmp_path):
    """UNet's config is its constructor's arguments, not its layers: the file lists the frozen ones."""
    from tinyseg.models import UNet
    model = UNet(input_shape=(16, 16, 3), num_classes=2, depth=1, base_filters=4)
    for layer in model.layers[:4]:
        layer.trainable = False
    model.save(tmp_path / "unet.npz")
    loaded = load_model(tmp_path / "unet.npz")
    assert [la.trainable for la in loaded.layers] == [la.trainable for la in model.layers]
    assert loaded.count_trainable_params() == model.count_trainable_params() < model.count_params()
    model.trainable = False
    model.save(tmp_path / "frozen.npz")
    loaded = load_model(tmp_path / "frozen.npz")
    assert loaded.trainable is False and loaded.trainable_weights == []


def test_a_file_whose_frozen_layers_are_not_positions_is_refused():
    from tinyseg.models.serialization import deserialize_model, serialize_model
    spec = serialize_model(encoder_decoder())
    for bad in ([99], ["enc_conv"], [True], "0"):
        with pytest.raises(ValueError, match="frozen_layers must be a list of layer positions"):
            deserialize_model({**spec, "frozen_layers": bad})
    with pytest.raises(TypeError, match="trainable must be True or False"):
        deserialize_model({**spec, "trainable": "no"})


def test_the_config_of_a_frozen_layer_rebuilds_it_frozen():
    layer = layers.Conv2D(2, 3, name="c", trainable=False)
    assert layer.get_config()["trainable"] is False
    assert layers.Conv2D.from_config(layer.get_config()).trainable is False
    assert "trainable" not in layers.Conv2D(2, 3).get_config()          # the default, left out


def test_a_frozen_layer_adds_no_penalty_to_the_loss_as_in_keras():
    from tinyseg.regularizers import L2
    dense = layers.Dense(2, kernel_regularizer=L2(0.1))
    x = tinyseg.Input((3,))
    model = tinyseg.Model(x, dense(x))
    assert len(model.losses) == 1
    dense.trainable = False
    assert model.losses == [] and dense.weight_regularizers() == {}
