"""The functional API: graphs of layers with fan-out, merges and shared layers, their gradients, their order,
their configs and files, and the errors a wrong graph gets."""
import numpy as np
import pytest

import tinyseg
from tinyseg import Input, Model, Sequential
from tinyseg.gradcheck import check_model
from tinyseg.layers import (
    Activation,
    BatchNormalization,
    Concatenate,
    Conv2D,
    Conv2DTranspose,
    Dense,
    Flatten,
    MaxPooling2D,
    UpSampling2D,
)
from tinyseg.saving import load_model


def perturb_biases(model, rng):
    """Biases start at 0; a generic point keeps ReLU inputs off their kink during the finite differences."""
    for layer in model.layers:
        for param in layer.params.values():
            param += rng.normal(0, 0.1, param.shape)


def fork_join_model():
    """input -> conv a -> relu ─┬─> conv b ──> concat -> shared conv s ─┐
                                 └─> (skip) ──┘                          └─> concat [s(h), s(h2)] -> head
    The relu output is read twice (fan-out), the concat joins, and `s` is called on two tensors."""
    x = Input((6, 6, 2), name="input_layer")
    h = Activation("relu", name="activation")(Conv2D(3, 3, padding="same", name="a")(x))
    b = Conv2D(3, 3, padding="same", name="b")(h)
    h2 = Concatenate(name="cat1")([b, h])
    shared = Conv2D(2, 1, name="s")
    left = shared(h2)
    right = shared(Conv2D(6, 1, name="c")(h2))
    out = Conv2D(3, 1, activation="softmax", name="head")(Concatenate(name="cat2")([left, right]))
    return Model(x, out)


def test_gradient_check_through_fan_out_concatenate_and_a_shared_layer(float64):
    tinyseg.set_random_seed(0)
    model = fork_join_model()
    assert [layer.name for layer in model.layers] == ["input_layer", "a", "activation", "b", "cat1", "c", "s",
                                                      "cat2", "head"]
    rng = np.random.default_rng(1)
    perturb_biases(model, rng)
    report = check_model(model, rng.standard_normal((2, 6, 6, 2)), max_entries=40)
    assert report.ok and report.max_rel_error < 1e-6, str(report)
    assert "s/kernel" in report.per_array


def test_shared_layer_gradient_is_the_sum_over_its_calls(float64):
    """The parameter gradient of a layer called twice equals the sum of the gradients of two copies of it."""
    tinyseg.set_random_seed(0)
    x = Input((5, 5, 2))
    conv = Conv2D(2, 3, padding="same", name="shared")
    y = Concatenate()([conv(x), conv(Activation("tanh")(x))])
    model = Model(x, y)
    a, b = Conv2D(2, 3, padding="same"), Conv2D(2, 3, padding="same")
    twin = Model(x2 := Input((5, 5, 2)), Concatenate()([a(x2), b(Activation("tanh")(x2))]))
    a.set_weights(conv.get_weights())
    b.set_weights(conv.get_weights())
    rng = np.random.default_rng(0)
    xs, g = rng.standard_normal((3, 5, 5, 2)), rng.standard_normal((3, 5, 5, 4))
    np.testing.assert_allclose(model.call(xs, training=True), twin.call(xs, training=True), rtol=1e-14)
    np.testing.assert_allclose(model.backward(g), twin.backward(g), rtol=1e-12, atol=1e-14)
    for key in conv.params:
        np.testing.assert_allclose(conv.grads[key], a.grads[key] + b.grads[key], rtol=1e-12, atol=1e-14)


def test_fan_out_gradient_is_the_sum_of_both_paths(float64):
    """y = [relu(h) | h] with h = conv(x): dL/dh gets both paths; dropping one changes the input gradient."""
    x = Input((4, 4, 1))
    h = Conv2D(2, 3, padding="same")(x)
    model = Model(x, Concatenate()([Activation("relu")(h), h]))
    rng = np.random.default_rng(3)
    xs, g = rng.standard_normal((2, 4, 4, 1)), rng.standard_normal((2, 4, 4, 4))
    model.call(xs, training=True)
    full = model.backward(g)
    g_skip_only = g.copy()
    g_skip_only[..., :2] = 0
    model.call(xs, training=True)
    skip_only = model.backward(g_skip_only)
    g_relu_only = g - g_skip_only
    model.call(xs, training=True)
    relu_only = model.backward(g_relu_only)
    np.testing.assert_allclose(full, skip_only + relu_only, rtol=1e-12, atol=1e-14)
    assert not np.allclose(full, skip_only)


def test_two_inputs_and_two_outputs():
    x1, x2 = Input((4, 4, 1), name="left"), Input((4, 4, 2), name="right")
    joined = Concatenate()([x1, x2])
    y1 = Conv2D(2, 1, name="one")(joined)
    y2 = Conv2D(3, 1, name="two")(joined)
    model = Model([x1, x2], [y1, y2])
    a, b = np.ones((2, 4, 4, 1), np.float32), np.zeros((2, 4, 4, 2), np.float32)
    out = model.predict([a, b])
    assert [o.shape for o in out] == [(2, 4, 4, 2), (2, 4, 4, 3)]
    model.call([a, b], training=True)
    da, db = model.backward([np.ones((2, 4, 4, 2), np.float32), np.ones((2, 4, 4, 3), np.float32)])
    assert da.shape == a.shape and db.shape == b.shape
    with pytest.raises(ValueError, match="2 outputs"):
        model.compile(loss="mse")
    with pytest.raises(ValueError, match="2 inputs"):
        model.predict(a)


# --- what Keras would do -------------------------------------------------------------------------------
def test_layers_and_weights_follow_keras_order():
    """Keras sorts by depth (longest path to the output), ties by the walk from the outputs: here 'c' (on the
    long path) comes before 'b' (the shortcut), whatever order they were created in."""
    inp = Input((8, 8, 3), name="input_layer")
    b = Conv2D(4, 1, name="b")(inp)
    x = Conv2D(4, 3, padding="same", name="a")(inp)
    x = BatchNormalization(name="bn")(x)
    x = Conv2D(4, 3, padding="same", name="c")(x)
    z = Concatenate(name="join")([x, b])
    model = Model(inp, Conv2D(2, 1, name="head")(z))
    assert [layer.name for layer in model.layers] == ["input_layer", "a", "bn", "c", "b", "join", "head"]
    shapes = [w.shape for w in model.get_weights()]
    assert shapes[:2] == [(3, 3, 3, 4), (4,)] and shapes[6:8] == [(3, 3, 4, 4), (4,)] and shapes[8] == (1, 1, 3, 4)


def test_summary_shows_connected_to():
    lines = []
    fork_join_model().summary(print_fn=lines.append)
    text = lines[0]
    assert "Connected to" in text and "cat1[0][0]" in text and "b[0][0], activation[0][0]" in text
    assert "s (Conv2D)" in text and "cat1[0][0], c[0][0]" in text      # the shared layer's two calls


# --- configs and files ------------------------------------------------------------------------------------
def test_config_round_trip_and_file_give_the_same_predictions(tmp_path):
    tinyseg.set_random_seed(2)
    model = fork_join_model()
    perturb_biases(model, np.random.default_rng(0))
    x = np.random.default_rng(1).random((2, 6, 6, 2), dtype=np.float32)
    rebuilt = Model.from_config(model.get_config())
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_array_equal(rebuilt.predict(x), model.predict(x))
    model.save(tmp_path / "graph.npz")
    loaded = load_model(tmp_path / "graph.npz")
    assert type(loaded) is Model and [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_a_layer_class_unknown_to_tinyseg_is_refused_at_save(tmp_path):
    class Mine(Activation):
        pass
    x = Input((4, 4, 1))
    model = Model(x, Mine("relu")(x))
    del tinyseg.layers.base.LAYER_CLASSES["Mine"]
    with pytest.raises(ValueError, match="not a registered tinyseg layer"):
        model.save(tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())


def test_sequential_starting_with_input_and_its_config(tmp_path):
    model = Sequential([Input((8, 8, 1)), Conv2D(2, 3), MaxPooling2D(), Flatten(), Dense(3, activation="softmax")])
    assert model.output_shape == (3,) and model.count_params() == 2 * 9 + 2 + 18 * 3 + 3
    model.save(tmp_path / "s.npz")
    x = np.random.default_rng(0).random((2, 8, 8, 1), dtype=np.float32)
    np.testing.assert_array_equal(load_model(tmp_path / "s.npz").predict(x), model.predict(x))


# --- bad graphs ---------------------------------------------------------------------------------------------
def test_layer_called_on_something_that_is_not_a_graph_tensor():
    x = Input((4, 4, 1))
    with pytest.raises(TypeError, match="input 1 is a ndarray, not a tensor of the graph"):
        Concatenate()([x, np.zeros((1, 4, 4, 1))])
    with pytest.raises(TypeError, match="takes one tensor, not a list"):
        Conv2D(1, 1)([x])
    with pytest.raises(TypeError, match="takes a list of tensors"):
        Concatenate()(x)


def test_outputs_that_do_not_depend_on_the_inputs_name_the_missing_input():
    a, b = Input((4, 4, 1), name="image"), Input((4, 4, 1), name="mask")
    y = Concatenate()([Conv2D(1, 1)(a), b])
    with pytest.raises(ValueError, match="depend on the input 'mask'"):
        Model(a, y)
    with pytest.raises(ValueError, match="input 'mask' is not connected"):
        Model([a, b], Conv2D(1, 1)(a))
    with pytest.raises(TypeError, match="inputs must be tensors"):
        Model(np.zeros((1, 4, 4, 1)), y)


def test_the_same_input_tensor_twice_is_refused():
    """Model([x, x], y) would read one array for both inputs and silently ignore the other."""
    x = Input((4, 4, 1), name="image")
    with pytest.raises(ValueError, match=r"inputs\[0\] and inputs\[1\] are the same tensor \('image'\)"):
        Model([x, x], Conv2D(1, 1)(x))


@pytest.mark.parametrize("shape, position", [((4.5,), 0), ((8, 8.0, 3), 1), ((8, True, 3), 1), ((8, None), 1)])
def test_input_refuses_a_dimension_that_is_not_an_integer_by_position(shape, position):
    with pytest.raises(ValueError, match=rf"Input: shape\[{position}\] must be a positive integer"):
        Input(shape)
    assert Input((np.int64(4), 2)).shape == (None, 4, 2)        # NumPy integers are integers


def test_output_activation_names_the_last_step_and_stops_one_step_before_it():
    from tinyseg.graph import output_activation
    from tinyseg.layers import Softmax
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 4)).astype(np.float32)
    conv = Conv2D(4, 1, activation="softmax")
    conv(Input((3, 3, 4)))
    kinds = {"conv": conv, "layer": Activation("sigmoid"), "function": Softmax(), "none": BatchNormalization()}
    assert {k: output_activation(v).name for k, v in kinds.items()} == \
        {"conv": "softmax", "layer": "sigmoid", "function": "softmax", "none": "linear"}
    np.testing.assert_array_equal(output_activation(conv).forward_logits(x, False), conv.forward_linear(x))
    np.testing.assert_array_equal(output_activation(kinds["layer"]).forward_logits(x, False), x)


def test_merging_tensors_of_different_shapes_names_both_shapes_and_the_layer():
    a, b = Input((4, 4, 1)), Input((2, 2, 1))
    with pytest.raises(ValueError, match=r"join.*\(batch, 4, 4, 1\), \(batch, 2, 2, 1\)"):
        Concatenate(name="join")([a, b])


def test_a_shared_layer_on_two_shapes_and_mixed_dtypes_are_refused():
    conv = Conv2D(2, 3, name="shared")
    conv(Input((8, 8, 1)))
    with pytest.raises(ValueError, match="shared.*built for input shape \\(8, 8, 1\\).*\\(6, 6, 1\\)"):
        conv(Input((6, 6, 1)))
    with pytest.raises(TypeError, match="float64"):
        Conv2D(1, 1)(Input((4, 4, 1), dtype="float64"))


def test_a_layer_twice_in_a_sequential_is_refused():
    conv = Conv2D(1, 3, padding="same", input_shape=(4, 4, 1))
    with pytest.raises(ValueError, match="already in this Sequential.*functional API"):
        Sequential([conv, conv])


def test_calling_a_model_on_graph_tensors_is_refused():
    x = Input((4, 4, 1))
    model = Model(x, Conv2D(1, 1)(x))
    with pytest.raises(TypeError, match="model inside a model"):
        model(Input((4, 4, 1)))


def test_unet_is_a_graph_model_with_its_old_weight_order():
    from tinyseg.models.unet import UNet
    model = UNet(input_shape=(8, 8, 1), num_classes=2, depth=1, base_filters=2, batch_norm=False)
    names = [layer.name for layer in model.layers]
    expected = [layer.name for block in model.encoders for layer in block] + [model.pools[0].name]
    expected += [layer.name for layer in model.bottleneck] + [layer.name for layer in model.ups[0]]
    expected += [model.concats[0].name] + [layer.name for layer in model.decoders[0]] + [model.head.name]
    assert names == expected
    assert isinstance(model, Model) and model._graph is not None
    lines = []
    model.summary(print_fn=lines.append)
    assert "Connected to" in lines[0]
    assert Conv2DTranspose in {type(layer) for layer in model.layers} and UpSampling2D not in \
        {type(layer) for layer in model.layers}


def test_keras_cifar10_load_data_reads_tinyseg_data_or_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYSEG_DATA", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(FileNotFoundError, match=r"TINYSEG_DATA \(.*\).*Keras's cache folder .*\.keras/datasets"):
        tinyseg.datasets.cifar10.load_data()
    from tests.data.test_datasets import _fake_cifar
    _, (x_train, _), _ = _fake_cifar(tmp_path / "home" / ".keras" / "datasets")     # where Keras caches it
    (xt, _), _ = tinyseg.datasets.cifar10.load_data()
    np.testing.assert_array_equal(xt, x_train)
    monkeypatch.setenv("TINYSEG_DATA", str(tmp_path / "home" / ".keras" / "datasets" / "cifar-10-batches-py"))
    (xt, _), _ = tinyseg.datasets.cifar10.load_data()
    np.testing.assert_array_equal(xt, x_train)


def test_plot_model_draws_every_layer(tmp_path):
    from matplotlib.image import imread
    model = fork_join_model()
    path = tinyseg.utils.plot_model(model, str(tmp_path / "model.png"), show_shapes=True)
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 300            # nine boxes in six rows, drawn top to bottom
    with pytest.raises(ValueError, match="not built"):
        tinyseg.utils.plot_model(Sequential([Conv2D(1, 1)]), str(tmp_path / "no.png"))


def test_from_logits_must_agree_with_the_last_layer():
    x = Input((4, 4, 1))
    probs = Model(x, Conv2D(2, 1, activation="softmax")(x))
    scores = Model(x, Conv2D(2, 1)(x))
    with pytest.raises(ValueError, match="from_logits=True.*ends in 'softmax'"):
        probs.compile(loss=tinyseg.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="from_logits=False.*no activation"):
        scores.compile(loss=tinyseg.losses.SparseCategoricalCrossentropy(from_logits=False))
    scores.compile(loss=tinyseg.losses.SparseCategoricalCrossentropy(from_logits=True))
    probs.compile(loss="sparse_categorical_crossentropy")
    assert probs.fused and not scores.fused


def test_gradient_check_of_residual_blocks_with_add(float64):
    """Two residual blocks (x + f(x), the input read by both branches) and a strided shortcut, as in the
    Xception-style U-Net, through add and multiply."""
    from tinyseg.layers import SeparableConv2D, add, multiply
    tinyseg.set_random_seed(1)
    x = Input((8, 8, 2))
    h = Conv2D(3, 3, padding="same")(x)
    r = add([h, BatchNormalization()(SeparableConv2D(3, 3, padding="same")(Activation("tanh")(h)))])
    down = add([MaxPooling2D(3, strides=2, padding="same")(r), Conv2D(3, 1, strides=2, padding="same")(h)])
    gate = multiply([down, Activation("sigmoid")(Conv2D(3, 1)(down))])
    model = Model(x, Conv2D(2, 1, activation="softmax")(UpSampling2D(2)(gate)))
    rng = np.random.default_rng(2)
    perturb_biases(model, rng)
    report = check_model(model, rng.standard_normal((2, 8, 8, 2)), max_entries=30)
    assert report.ok and report.max_rel_error < 1e-6, str(report)
