"""tinyseg.ops and layers.Lambda: each op on symbolic tensors records a layer whose backward passes a float64
gradient check inside a model, and computes on arrays what the recorded layer computes; Lambda of ops has a
backward, and a Lambda of anything else is refused when the model is built (Keras parity: tests/parity/)."""
import numpy as np
import pytest

import tinyseg as keras
from tinyseg import ops
from tinyseg.gradcheck import check_model
from tinyseg.layers import Lambda, Permute
from tinyseg.layers.tensor_ops import Mean

# op name -> (function of one symbolic-or-array tensor x of shape (N, 6, 5, 4), what it records)
OPS = {
    "nn.relu": (lambda x: ops.nn.relu(x), "ReLU"),
    "nn.sigmoid": (lambda x: ops.nn.sigmoid(x), "Sigmoid"),
    "nn.softmax": (lambda x: ops.nn.softmax(x, axis=-1), "Softmax"),
    "add": (lambda x: ops.add(x, ops.nn.relu(x)), "Add"),
    "add number": (lambda x: ops.add(2.5, x), "Rescaling"),
    "subtract": (lambda x: ops.subtract(x, ops.nn.sigmoid(x)), "Subtract"),
    "multiply": (lambda x: ops.multiply(x, ops.nn.sigmoid(x)), "Multiply"),
    "multiply number": (lambda x: ops.multiply(x, -0.5), "Rescaling"),
    "concatenate": (lambda x: ops.concatenate([x, ops.nn.relu(x)], axis=-1), "Concatenate"),
    "concatenate rows": (lambda x: ops.concatenate([x, ops.nn.relu(x)], axis=1), "Concatenate"),
    "mean": (lambda x: ops.mean(x, axis=(1, 2), keepdims=True), "Mean"),
    "mean last": (lambda x: ops.mean(x, axis=-1), "Mean"),
    "reshape": (lambda x: ops.reshape(x, (-1, 30, 4)), "Reshape"),
    "transpose": (lambda x: ops.transpose(x, (0, 2, 3, 1)), "Permute"),
    "image.resize": (lambda x: ops.image.resize(x, (9, 3)), "Resizing"),
    "image.resize nearest": (lambda x: ops.image.resize(x, (3, 7), interpolation="nearest"), "Resizing"),
}


def sample(shape=(2, 6, 5, 4), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("name", OPS)
def test_symbolic_op_records_its_layer_with_a_checked_backward(name, float64):
    fn, layer_name = OPS[name]
    x = keras.Input((6, 5, 4))
    y = fn(keras.layers.Conv2D(4, 1)(x))          # a weight before the op: its gradient passes through the op
    model = keras.Model(x, y)
    assert y.node.layer.__class__.__name__ == layer_name
    report = check_model(model, sample())
    assert report.ok, str(report)


@pytest.mark.parametrize("name", OPS)
def test_on_arrays_an_op_computes_what_its_layer_does(name, float64):
    fn, _ = OPS[name]
    x = keras.Input((6, 5, 4))
    model = keras.Model(x, fn(x))
    a = sample()
    np.testing.assert_allclose(fn(a), model.predict(a, verbose=0), rtol=1e-12, atol=1e-12)


def test_lambda_of_ops_has_a_backward(float64):
    x = keras.Input((6, 5, 4))
    h = keras.layers.Conv2D(3, 3, padding="same")(x)
    y = Lambda(lambda t: ops.nn.sigmoid(ops.multiply(ops.add(t, 1.0), ops.nn.relu(t))), name="gate")(h)
    model = keras.Model(x, y)
    assert y.node.layer.name == "gate" and y.shape == (None, 6, 5, 3)
    report = check_model(model, sample())
    assert report.ok, str(report)


def test_lambda_on_arrays_and_with_arguments(float64):
    layer = Lambda(lambda t, k: ops.multiply(t, k), arguments={"k": 3.0})
    a = sample()
    np.testing.assert_allclose(layer(a), 3 * a)
    np.testing.assert_allclose(layer.backward(np.ones_like(a)), np.full_like(a, 3.0))
    assert layer(sample((1, 9, 7, 4))).shape == (1, 9, 7, 4)      # another image size: recorded again


def test_lambda_without_a_backward_is_refused_when_the_model_is_built():
    x = keras.Input((6, 5, 4))
    with pytest.raises(TypeError, match=r"Lambda\(<lambda>\) could not be recorded .* tinyseg.ops"):
        Lambda(lambda t: np.exp(t))(x)
    with pytest.raises(TypeError, match="returned a float for a symbolic tensor"):
        Lambda(lambda t: 1.0)(x)
    with pytest.raises(TypeError, match="could not be recorded"):
        Lambda(lambda t: np.tanh(t))(sample().astype("float32"))      # on arrays: at the first call, too


def test_lambda_refuses_hidden_weights_and_saving():
    x = keras.Input((6, 5, 4))
    conv = keras.layers.Conv2D(2, 1)
    with pytest.raises(ValueError, match="calls layers with weights"):
        Lambda(lambda t: conv(t))(x)
    with pytest.raises(ValueError, match="not saved in a model file"):
        Lambda(lambda t: ops.nn.relu(t)).get_config()
    with pytest.raises(TypeError, match="function must be callable"):
        Lambda("relu")


@pytest.mark.parametrize("call, match", [
    (lambda x: ops.mean(x), "give the axes of one sample"),
    (lambda x: ops.mean(x, axis=0), "includes the batch axis"),
    (lambda x: ops.mean(x, axis=(1, 2, 3)), "leaves a scalar per sample"),
    (lambda x: ops.reshape(x, (2, 30, 4)), "starts with the batch axis"),
    (lambda x: ops.transpose(x), "the batch axis stays first"),
    (lambda x: ops.nn.softmax(x, axis=1), "over the last axis"),
    (lambda x: ops.add(x, ops.mean(x, axis=-1, keepdims=True)), "same shape"),
    (lambda x: ops.image.resize(x, 4), "size must be \\(height, width\\)"),
])
def test_bad_symbolic_calls_named(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call(keras.Input((6, 5, 4)))


def test_arrays_are_not_broadcast():
    with pytest.raises(ValueError, match="nothing is broadcast"):
        ops.add(np.ones((2, 3)), np.ones((2, 1)))


def test_permute_and_mean_layers_refuse_bad_arguments():
    with pytest.raises(ValueError, match="dims must be a permutation"):
        Permute((0, 1))
    with pytest.raises(ValueError, match="axis must be an axis or a tuple"):
        Mean("rows").build((6, 5, 4))
