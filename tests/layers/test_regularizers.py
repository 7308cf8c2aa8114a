"""Weight regularizers (tinyseg/regularizers.py) and the layers' kernel_regularizer / bias_regularizer /
depthwise_regularizer / pointwise_regularizer: Keras's formulas (L2 = l2 * sum w^2, not halved), the penalty
in the reported loss, its gradient in the step: the gradients a training step hands the optimizer are checked
against central differences of loss + penalties in float64 (tinyseg.gradcheck, relative error < 1e-6); configs
and files keep them; against Keras 3's penalties; bad arguments, each named."""
import json

import numpy as np
import pytest

import tinyseg
from tinyseg import optimizers, regularizers
from tinyseg.gradcheck import GradCheckReport, noise_floor, numeric_gradient
from tinyseg.layers import Conv2D, Conv2DTranspose, Dense, DepthwiseConv2D, Flatten, SeparableConv2D
from tinyseg.models import Sequential
from tinyseg.regularizers import L1, L1L2, L2
from tinyseg.saving import load_model

W = np.array([[0.5, -2.0], [0.0, 3.0]])


def test_penalties_and_gradients_are_kerass_formulas():
    assert L2(0.01)(W) == pytest.approx(0.01 * (0.25 + 4 + 9), rel=1e-15)
    np.testing.assert_allclose(L2(0.01).gradient(W), 0.02 * W, rtol=1e-15)          # not halved: 2 * l2 * w
    assert L1(0.1)(W) == pytest.approx(0.1 * 5.5, rel=1e-15)
    np.testing.assert_array_equal(L1(0.1).gradient(W), 0.1 * np.array([[1.0, -1.0], [0.0, 1.0]]))   # 0 at 0
    both = L1L2(l1=0.1, l2=0.01)
    assert both(W) == pytest.approx(L1(0.1)(W) + L2(0.01)(W), rel=1e-15)
    np.testing.assert_allclose(both.gradient(W), L1(0.1).gradient(W) + L2(0.01).gradient(W), rtol=1e-15)
    g = L2(0.5).gradient(W.astype(np.float32))
    assert g.dtype == np.float32 and g.shape == W.shape


def test_keras_names_and_get():
    assert regularizers.l2 is L2 and regularizers.l1 is L1 and regularizers.l1_l2 is L1L2
    assert tinyseg.regularizers.L2(l2=0.01).l2 == 0.01 and L1L2(l2=0.1).get_config() == {"l1": 0.0, "l2": 0.1}
    assert regularizers.get(None) is None
    assert isinstance(regularizers.get("l2"), L2) and regularizers.get("l2").l2 == 0.01       # Keras's default
    assert regularizers.get({"class_name": "L1", "config": {"l1": 0.3}}).l1 == 0.3
    r = L2(0.2)
    assert regularizers.get(r) is r


@pytest.mark.parametrize("make, error, match", [
    (lambda: L2(-0.01), ValueError, "L2: l2 must be a non-negative finite number"),
    (lambda: L1(float("nan")), ValueError, "L1: l1 must be a non-negative finite number"),
    (lambda: L1L2(l1=0.1, l2=float("inf")), ValueError, "l2 must be a non-negative finite number"),
    (lambda: L2("0.01"), ValueError, "l2 must be a non-negative finite number"),
    (lambda: regularizers.get("l3"), ValueError, "unknown regularizer 'l3'"),
    (lambda: regularizers.get(lambda w: 0.01 * np.sum(w ** 2)), TypeError, "needs its gradient too"),
    (lambda: regularizers.deserialize({"class_name": "OrthogonalRegularizer", "config": {}}), ValueError,
     "unknown regularizer"),
    (lambda: Conv2D(2, 3, kernel_regularizer=-1, name="c"), ValueError, "c: kernel_regularizer: unknown regularizer"),
    (lambda: Dense(2, bias_regularizer="l3"), ValueError, "bias_regularizer: unknown regularizer 'l3'"),
    (lambda: SeparableConv2D(2, 3, pointwise_regularizer=np.sum), TypeError, "pointwise_regularizer must be a"),
    (lambda: DepthwiseConv2D(3, depthwise_regularizer=L2(-1.0)), ValueError, "l2 must be a non-negative"),
])
def test_bad_regularizers_are_refused_naming_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        make()


# --- the model: loss, gradients, configs --------------------------------------------------------------------
def regularized_model(dtype="float64"):
    """Every layer kind that takes a regularizer, each weight with a different one, random non-zero weights."""
    tinyseg.set_random_seed(3)
    model = Sequential([
        Conv2D(3, 3, padding="same", input_shape=(6, 6, 2), activation="tanh", dtype=dtype,
               kernel_regularizer=L2(0.05), bias_regularizer=L1(0.02)),
        DepthwiseConv2D(3, depth_multiplier=2, activation="tanh", dtype=dtype,
                        depthwise_regularizer=L1L2(0.01, 0.03), bias_regularizer=L2(0.1)),
        SeparableConv2D(2, 3, padding="same", activation="tanh", dtype=dtype, depthwise_regularizer=L2(0.02),
                        pointwise_regularizer=L1(0.03), bias_regularizer=L2(0.04)),
        Conv2DTranspose(2, 2, strides=2, activation="tanh", dtype=dtype, kernel_regularizer=L2(0.06),
                        bias_regularizer=L1(0.05)),
        Flatten(dtype=dtype),
        Dense(3, activation="softmax", dtype=dtype, kernel_regularizer=L1L2(0.02, 0.02), bias_regularizer="l2"),
    ])
    rng = np.random.default_rng(0)
    model.set_weights([rng.standard_normal(w.shape) * 0.5 for w in model.get_weights()])
    return model


def penalties_by_hand(model):
    return [r(layer.params[key]) for layer in model.layers for key, r in layer.weight_regularizers().items()]


def test_model_losses_lists_one_penalty_per_regularized_weight():
    model = regularized_model()
    assert len(model.losses) == 11
    assert model.losses == penalties_by_hand(model)
    assert model.losses[0] == pytest.approx(0.05 * float(np.sum(model.layers[0].params["kernel"] ** 2)))


def test_the_gradients_of_a_training_step_are_those_of_loss_plus_penalties(monkeypatch):
    """What train_on_batch hands the optimizer, against central differences of
    L(theta) = loss(y, model(x)) + sum(model.losses), for every entry of every parameter: < 1e-6 in float64."""
    model = regularized_model()
    model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((3, 6, 6, 2)), np.array([0, 2, 1])
    handed = {}
    monkeypatch.setattr(model.optimizer, "apply_gradients",
                        lambda pairs, names=None: handed.update(grads=[g.copy() for g, _ in pairs]))
    reported = model.train_on_batch(x, y)[0]

    def total():
        z = model.call(x, training=True, logits=model.fused)
        return float(model.loss.forward(y, z)) + sum(model.losses)

    assert reported == pytest.approx(total(), rel=1e-14)                # the penalties are in the loss fit reports
    h, tol = 1e-5, 1e-6
    report = GradCheckReport("loss + penalties", tol=tol)
    floor = noise_floor(abs(total()), h, tol)
    for analytic, name, param in zip(handed["grads"], model.trainable_names(), model.trainable_weights):
        numeric = numeric_gradient(total, param, np.arange(param.size), h)      # every entry
        short = name.replace("layer ", "").replace(", parameter ", "/").replace("'", "")     # conv2d/kernel
        report.add(short, analytic.reshape(-1), numeric, floor)
    print(report)
    assert report.ok and report.max_rel_error < tol, str(report)
    assert len(report.per_array) == 11 and report.n_checked == model.count_params()
    # and the penalty's gradient is really in there: without it the kernel's check would fail
    bare = handed["grads"][0] - L2(0.05).gradient(model.layers[0].params["kernel"])
    numeric = numeric_gradient(total, model.layers[0].params["kernel"], np.arange(54), h)
    assert np.max(np.abs(bare.reshape(-1) - numeric)) > 1e-3


def test_the_step_is_the_optimizer_on_the_regularized_gradient_and_layer_grads_hold_it():
    """SGD with L2(l2) on a weight takes theta - lr (g + 2 l2 theta): the decoupled decay wd = 2 l2 exactly as
    the regularizers module says (equal to rounding)."""
    def model(reg):
        tinyseg.set_random_seed(5)
        m = Sequential([Dense(4, input_shape=(3,), dtype="float64", kernel_regularizer=reg, bias_regularizer=reg),
                        Dense(2, activation="softmax", dtype="float64", kernel_regularizer=reg,
                              bias_regularizer=reg)])
        rng = np.random.default_rng(2)
        m.set_weights([rng.standard_normal(w.shape) for w in m.get_weights()])
        return m

    x, y = np.random.default_rng(3).standard_normal((5, 3)), np.array([0, 1, 1, 0, 1])
    penalised, decayed = model(L2(0.05)), model(None)
    penalised.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    decayed.compile(optimizer=optimizers.SGD(0.1, weight_decay=0.1), loss="sparse_categorical_crossentropy")
    for _ in range(3):
        loss_p = penalised.train_on_batch(x, y)[0]
        loss_d = decayed.train_on_batch(x, y)[0]
        assert loss_p > loss_d                                       # the penalty is reported, the decay is not
    for a, b in zip(penalised.get_weights(), decayed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_evaluate_counts_the_penalties_as_keras_does():
    model = regularized_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((3, 6, 6, 2)), np.array([1, 0, 2])
    z = model.call(x, training=False, logits=model.fused)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(float(model.loss.forward(y, z)) + sum(model.losses),
                                                            rel=1e-12)


def test_configs_keep_regularizers_only_when_set_and_rebuild_them():
    plain = Conv2D(2, 3, name="c")
    assert "kernel_regularizer" not in plain.get_config()
    for layer in regularized_model().layers:
        config = json.loads(json.dumps(layer.get_config()))
        again = type(layer).from_config(config)
        assert again.get_config() == layer.get_config()
        assert {k: r.get_config() for k, r in [(a, getattr(again, a, None)) for a in
                                               again.regularizer_arguments.values()] if r is not None} == \
            {k: r.get_config() for k, r in [(a, getattr(layer, a, None)) for a in
                                            layer.regularizer_arguments.values()] if r is not None}


def test_a_saved_model_keeps_its_regularizers_and_trains_on_identically(tmp_path):
    model = regularized_model()
    model.compile(optimizer=optimizers.AdamW(0.01), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((4, 6, 6, 2)), np.array([0, 1, 2, 1])
    model.train_on_batch(x, y)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.losses == model.losses
    assert loaded.train_on_batch(x, y) == model.train_on_batch(x, y)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_regularizer_of_your_own_trains_but_is_refused_at_save(tmp_path):
    class Quartic(regularizers.Regularizer):
        def __call__(self, w):
            return float(np.sum(w ** 4))

        def gradient(self, w):
            return 4 * w ** 3

    layer = Dense(2, kernel_regularizer=Quartic(), input_shape=(3,))
    model = Sequential([layer])
    model.compile(optimizer="sgd", loss="mse")
    model.train_on_batch(np.ones((2, 3), np.float32), np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="regularizer class Quartic is not one of tinyseg's"):
        model.save(tmp_path / "m.npz")


# --- against Keras 3 -------------------------------------------------------------------------------------------
def test_penalties_match_keras():
    from tests.helpers import import_keras
    keras = import_keras()
    w = np.random.default_rng(6).standard_normal((3, 3, 2, 4)).astype(np.float32)
    for ours, theirs in [(L2(0.01), keras.regularizers.L2(0.01)), (L1(0.02), keras.regularizers.L1(0.02)),
                         (L1L2(0.01, 0.03), keras.regularizers.L1L2(0.01, 0.03))]:
        expected = float(keras.ops.convert_to_numpy(theirs(keras.ops.convert_to_tensor(w))))
        assert ours(w) == pytest.approx(expected, rel=1e-6)
