"""Subclassed models (tinyseg/models/subclassing.py): layers tracked as attributes, call recorded as a graph,
trained, saved by a registered class, and the errors of a call that cannot be recorded."""
import numpy as np
import pytest

import tinyseg
from tinyseg import layers
from tinyseg.gradcheck import check_layer, check_model
from tinyseg.saving import load_model, register_keras_serializable
from tinyseg.utils import to_categorical


class Net(tinyseg.Model):
    """Attributes assigned out of call order: weights follow the attributes, not the calls."""

    def __init__(self, filters=3, **kwargs):
        super().__init__(**kwargs)
        self.mid = layers.Conv2D(4, 3, padding="same")
        self.first = layers.Conv2D(filters, 3, padding="same", activation="relu")
        self.norm = layers.BatchNormalization()
        self.head = layers.Conv2D(2, 1, activation="softmax")

    def call(self, inputs, training=False):
        h = self.norm(self.first(inputs), training=training)
        return self.head(self.mid(h))


@register_keras_serializable(package="tests")
class SavedNet(Net):
    pass


class NoTraining(tinyseg.Model):
    def __init__(self):
        super().__init__()
        self.dense = layers.Dense(3, activation="softmax")

    def call(self, inputs):
        return self.dense(inputs)


def data(n=8, size=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, size, size, 3), dtype=np.float32)
    return x, to_categorical(rng.integers(0, 2, (n, size, size)), 2)


def test_weights_are_tracked_in_attribute_order_and_built_by_the_first_call():
    model = Net()
    assert [type(layer).__name__ for layer in model.layers] == ["Conv2D", "Conv2D", "BatchNormalization", "Conv2D"]
    assert model.get_weights() == []                               # not built yet: no weights, as in Keras
    x, _ = data()
    assert model(x).shape == (8, 6, 6, 2)
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(3, 3, 3, 4), (4,), (3, 3, 3, 3), (3,), (3,), (3,), (3,), (3,), (1, 1, 4, 2), (2,)]
    assert model.count_params() == 112 + 84 + 12 + 10                  # Keras's count for the same net
    model.set_weights(model.get_weights())                           # set_weights sees every array


def test_call_without_a_training_argument():
    model = NoTraining()
    model.compile("adam", "categorical_crossentropy")
    x = np.random.default_rng(0).random((6, 5), dtype=np.float32)
    y = to_categorical(np.arange(6) % 3, 3)
    history = model.fit(x, y, epochs=2, batch_size=3, verbose=0)
    assert len(history.history["loss"]) == 2 and model.predict(x).shape == (6, 3)


def test_compile_before_build_then_fit_evaluate_predict_and_summary(capsys):
    tinyseg.set_random_seed(0)
    model = Net()
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])    # output unknown until built
    assert model.metric_names == ["accuracy"]
    x, y = data()
    history = model.fit(x, y, epochs=3, batch_size=4, verbose=0)
    assert model.fused                                                # the softmax head joined the loss
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss, accuracy = model.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(model.predict_on_batch(x), model.predict(x, batch_size=3), rtol=1e-6)
    model.summary()
    text = capsys.readouterr().out
    assert 'Model: "net' in text and "batch_normalization" in text and f"Total params: {model.count_params()}" in text
    assert 0 <= accuracy <= 1 and np.isfinite(loss)


def test_control_flow_on_training_records_two_graphs():
    class Noisy(tinyseg.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(4)
            self.drop = layers.Dropout(0.5, seed=1)

        def call(self, inputs, training=False):
            h = self.dense(inputs)
            return self.drop(h, training=training) if training else h

    model = Noisy()
    x = np.ones((16, 3), dtype=np.float32)
    np.testing.assert_array_equal(model(x), model(x, training=False))
    trained = model(x, training=True)
    assert np.any(trained == 0)                                      # the dropout layer runs only in training
    model.backward(np.ones_like(trained))                            # back through the graph that ran: dropout's
    np.testing.assert_allclose(model.dense.grads["bias"], ((trained != 0) * 2.0).sum(axis=0))   # mask / (1 - 0.5)
    assert sum(1 for n in model._train_graph.nodes if n.layer is model.drop) == 1
    assert not any(n.layer is model.drop for n in model._graph.nodes)


def test_train_step_of_a_subclassed_model_passes_a_float64_gradient_check(float64):
    tinyseg.set_random_seed(3)
    model = Net()
    model.compile("sgd", "categorical_crossentropy")
    x, y = data(n=3, size=4, seed=2)
    x, y = x.astype(np.float64), y.astype(np.float64)
    model.build(x.shape)
    assert model.fused and model.dtype == np.float64

    def step_loss(inp):             # the loss of a training step: logits (fused), BatchNorm in training mode
        return np.asarray(model.loss.forward(y, model._forward(inp, training=True, logits=model.fused)))

    def step_backward(grad):
        return model.backward(model.loss.backward() * grad, logits=model.fused)

    report = check_layer(model, x, forward=step_loss, backward=step_backward, max_entries=30)
    assert len(report.per_array) == 1 + 8                            # the input, 8 trained arrays
    assert report.ok and report.max_rel_error < 1e-6, str(report)
    report = check_model(model, x, max_entries=20)                  # model.call runs the recorded graph
    assert len(report.per_array) == 1 + 8 and report.ok, str(report)
    z = model.call(x, logits=True)                                  # and stops before the head's softmax
    np.testing.assert_allclose(model.predict(x), np.exp(z) / np.exp(z).sum(-1, keepdims=True), rtol=1e-12)


def test_save_and_load_a_registered_subclass(tmp_path):
    model = SavedNet(filters=5)
    model.compile("adam", "categorical_crossentropy")
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    model.save(tmp_path / "net.npz")
    loaded = load_model(tmp_path / "net.npz")
    assert type(loaded) is SavedNet and loaded.get_config() == {"name": model.name, "filters": 5}
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.optimizer.iterations == model.optimizer.iterations
    loaded.fit(x, y, epochs=1, batch_size=4, verbose=0)                  # and trains on


def test_get_config_names_what_init_takes():
    model = NoTraining()                                             # __init__(self): no name to give back
    assert model.get_config() == {} and type(NoTraining.from_config(model.get_config())) is NoTraining
    assert Net(filters=2, name="mine").get_config() == {"name": "mine", "filters": 2}


def test_an_unregistered_subclass_is_refused_at_save_and_found_through_custom_objects(tmp_path):
    model = Net()
    model.build((None, 6, 6, 3))
    with pytest.raises(ValueError, match="register_keras_serializable"):
        model.save(tmp_path / "net.npz")
    assert not (tmp_path / "net.npz").exists()
    saved = SavedNet()
    saved.build((None, 6, 6, 3))
    saved.save(tmp_path / "saved.npz")
    from tinyseg.models.model import MODEL_CLASSES
    del MODEL_CLASSES["tests>SavedNet"]                                # a process that did not register it
    try:
        with pytest.raises(ValueError, match="register_keras_serializable"):
            load_model(tmp_path / "saved.npz")
        assert type(load_model(tmp_path / "saved.npz", custom_objects={"SavedNet": SavedNet})) is SavedNet
    finally:
        MODEL_CLASSES["tests>SavedNet"] = SavedNet


def test_a_layer_that_is_not_an_attribute_is_refused_and_nothing_is_built():
    class Stray(tinyseg.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(4)
            self.others = {"head": layers.Dense(2)}                    # in a dict: not tracked

        def call(self, inputs):
            return self.others["head"](self.dense(inputs))

    model = Stray()
    with pytest.raises(ValueError, match=r"call uses the layer 'dense_\d+' \(Dense\), which is not an attribute"):
        model(np.ones((1, 3), dtype=np.float32))
    assert model._graph is None and not model.dense.built and model.dense.inbound_nodes == []


def test_branching_on_tensor_values_is_a_clear_error():
    class Branchy(tinyseg.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(2)

        def call(self, inputs):
            h = self.dense(inputs)
            if h:                                                      # a value only data could decide
                return h
            return inputs

    class Numpyish(Branchy):
        def call(self, inputs):
            return self.dense(inputs) if np.mean(inputs) > 0 else inputs

    for cls in (Branchy, Numpyish):
        model = cls()
        model.compile("sgd", "categorical_crossentropy")
        with pytest.raises(TypeError, match="not on the values of tensors"):
            model.fit(np.ones((2, 3), dtype=np.float32), np.eye(2, dtype=np.float32), verbose=0)
        assert model._graph is None and not model.dense.built


def test_a_list_of_layers_and_a_list_of_inputs():
    class Two(tinyseg.Model):
        def __init__(self):
            super().__init__()
            self.blocks = [layers.Dense(3, activation="relu") for _ in range(2)]
            self.join = layers.Concatenate()
            self.head = layers.Dense(2, activation="softmax")

        def call(self, inputs):
            a, b = inputs
            for block in self.blocks:                                    # a fixed loop: recorded unrolled
                a = block(a)
            return self.head(self.join([a, b]))

    model = Two()
    a, b = np.ones((4, 5), dtype=np.float32), np.ones((4, 2), dtype=np.float32)
    model.compile("sgd", "categorical_crossentropy")
    model.fit([a, b], np.eye(2, dtype=np.float32)[[0, 1, 0, 1]], epochs=1, verbose=0)
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dense", "Concatenate", "Dense"]
    assert model.predict([a, b]).shape == (4, 2)


def test_get_layer_and_its_errors():
    model = Net()
    model.build((None, 6, 6, 3))
    assert model.get_layer(index=1) is model.first and model.get_layer(model.head.name) is model.head
    assert model.get_layer(index=-1) is model.head
    with pytest.raises(ValueError, match="either a layer name or a layer index"):
        model.get_layer()
    with pytest.raises(ValueError, match="not both"):
        model.get_layer(name=model.head.name, index=0)
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="index 4, but the model has 4 layers"):
        model.get_layer(index=4)


def test_predict_on_batch_checks_its_input():
    model = Net()
    model.build((None, 6, 6, 3))
    with pytest.raises(ValueError, match="expected"):
        model.predict_on_batch(np.ones((1, 6, 6, 2), dtype=np.float32))
