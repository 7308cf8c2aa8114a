"""fit / evaluate / train_on_batch with sample_weight and class_weight (tinyseg/models/sample_weights.py).

What they compute is compared with Keras 3 in tests/parity/test_keras_sample_weights.py; here: that each way of
giving weights means the same weights (class_weight = the per-pixel sample_weight built by hand, a generator of
(x, y, sample_weight) = the arrays, (N,) = the same weight on every pixel), that weighted metrics get them,
and that every bad weight is refused before the first step, leaving the model bit-identical.
"""
import numpy as np
import pytest

import tinyseg
from tests.test_bad_inputs import K, assert_unchanged, data, snapshot, trained_model
from tinyseg.layers import Conv2D, Dense, Input
from tinyseg.models import Model
from tinyseg.optimizers import SGD


def fresh(loss="sparse_categorical_crossentropy", **compile_args):
    tinyseg.set_random_seed(0)
    inputs = Input((6, 6, 2))
    model = Model(inputs, Conv2D(K, 3, padding="same", activation="softmax")(Conv2D(4, 3, padding="same")(inputs)))
    model.compile(optimizer=SGD(0.5), loss=loss, **compile_args)
    return model


def weights_after(fit_args, loss="sparse_categorical_crossentropy", y=None):
    x, labels = data()
    model = fresh(loss)
    model.fit(x, labels if y is None else y, epochs=2, batch_size=4, shuffle=False, verbose=0, **fit_args)
    return model.get_weights()


def assert_same_weights(a, b):
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-7)


# --- the same weights, given different ways ---------------------------------------------------------------
def test_class_weight_is_the_per_pixel_sample_weight_of_each_pixels_class():
    _, labels = data()
    table = {0: 0.2, 1: 3.0}                                # class 2 not named: weight 1, as in Keras
    by_hand = np.array([0.2, 3.0, 1.0], dtype=np.float32)[labels]
    assert_same_weights(weights_after({"class_weight": table}), weights_after({"sample_weight": by_hand}))
    assert_same_weights(weights_after({"class_weight": {0: 1.0, 1: 1.0, 2: 1.0}}), weights_after({}))


def test_class_weight_leaves_ignored_pixels_out():
    x, labels = data()
    labels[:, 0, :] = 255
    loss = tinyseg.losses.SparseCategoricalCrossentropy(ignore_index=255)
    model = fresh(loss)
    s = tinyseg.models.sample_weights.class_weights_of(np.array([0.5, 2.0, 1.0]), labels, (8, 6, 6, K), 255)
    assert np.all(s[:, 0, :] == 0) and np.array_equal(s[:, 1:], np.array([0.5, 2.0, 1.0])[labels[:, 1:]])
    model.fit(x, labels, class_weight={0: 0.5, 1: 2.0}, epochs=1, verbose=0)


def test_one_weight_per_image_is_that_weight_on_every_pixel():
    s = np.linspace(0.0, 2.0, 8).astype(np.float32)
    assert_same_weights(weights_after({"sample_weight": s}),
                        weights_after({"sample_weight": np.broadcast_to(s[:, None, None], (8, 6, 6)).copy()}))


def test_a_generator_of_weighted_batches_trains_as_the_arrays_do():
    x, labels = data()
    s = np.random.default_rng(3).random(labels.shape).astype(np.float32)

    def batches():
        while True:
            for i in (0, 4):
                yield x[i:i + 4], labels[i:i + 4], s[i:i + 4]
    model = fresh()
    model.fit(batches(), steps_per_epoch=2, epochs=2, verbose=0)
    assert_same_weights(model.get_weights(), weights_after({"sample_weight": s}))


def test_validation_split_splits_the_weights_too_and_evaluate_weighs():
    x, labels = data()
    s = np.r_[np.ones(6), 0.0, 2.0].astype(np.float32)       # of the held-out two, only the last counts
    model = fresh()
    history = model.fit(x, labels, sample_weight=s, validation_split=0.25, epochs=1, verbose=0)
    # sum_m s_m l_m / M over two images: the last image's mean loss, since its weight 2 = the number of images
    assert history.history["val_loss"][0] == pytest.approx(model.evaluate(x[7:], labels[7:], verbose=0), rel=1e-6)
    assert model.evaluate(x, labels, sample_weight=np.full(8, 2.0), verbose=0) == \
        pytest.approx(2 * model.evaluate(x, labels, verbose=0), rel=1e-6)


def test_train_on_batch_takes_either_kind_of_weight():
    x, labels = data()
    a, b = fresh(), fresh()
    la = a.train_on_batch(x, labels, class_weight={1: 4.0})
    lb = b.train_on_batch(x, labels, sample_weight=np.array([1.0, 4.0, 1.0])[labels])
    assert la == pytest.approx(lb, rel=1e-6)
    assert_same_weights(a.get_weights(), b.get_weights())


# --- weighted metrics ----------------------------------------------------------------------------------------
def test_weighted_metrics_get_the_batch_weights_under_keras_names():
    seen = []

    def weighted_error(y_true, y_pred, sample_weight=None):
        seen.append(None if sample_weight is None else sample_weight.shape)
        wrong = (y_pred.argmax(-1) != y_true).astype(float)
        w = np.ones(wrong.shape) if sample_weight is None else np.broadcast_to(
            sample_weight.reshape(sample_weight.shape + (1,) * (wrong.ndim - sample_weight.ndim)), wrong.shape)
        return (w * wrong).sum() / w.sum()
    model = fresh(metrics=[weighted_error], weighted_metrics=[weighted_error])
    assert model.metric_names == ["weighted_error", "weighted_weighted_error"]
    x, labels = data()
    s = (labels == 0).astype(np.float32)                  # only class 0 counts
    logs = model.fit(x, labels, sample_weight=s, batch_size=8, epochs=1, verbose=0).history
    assert seen == [None, (8, 6, 6)]
    assert logs["weighted_error"] != logs["weighted_weighted_error"]
    _, plain, weighted = model.evaluate(x, labels, sample_weight=s, verbose=0)
    pred = model.predict(x).argmax(-1)
    assert weighted == pytest.approx((pred != 0)[labels == 0].mean())
    assert plain == pytest.approx((pred != labels).mean())


def test_a_weighted_metric_function_that_takes_no_weights_is_refused_at_compile():
    def error_rate(y_true, y_pred):
        return (y_pred.argmax(-1) != y_true).mean()
    with pytest.raises(ValueError, match="weighted metric 'error_rate' takes no sample_weight"):
        fresh(weighted_metrics=[error_rate])
    with pytest.raises(TypeError, match="weighted_metrics must be a list"):
        fresh(weighted_metrics="accuracy")


def test_a_weighted_stateful_metric_counts_each_pixel_by_its_weight():
    model = fresh(metrics=["accuracy"], weighted_metrics=["accuracy"])
    assert model.metric_names == ["accuracy", "weighted_accuracy"]
    x, labels = data()
    s = (labels == 0).astype(np.float32) * 2.0            # only class 0 counts (weight 2)
    _, plain, weighted = model.evaluate(x, labels, sample_weight=s, batch_size=3, verbose=0)
    pred = model.predict(x).argmax(-1)
    assert plain == pytest.approx((pred == labels).mean())
    assert weighted == pytest.approx((pred == 0)[labels == 0].mean())


# --- bad weights: refused before the first step, nothing changed -------------------------------------------
def _stream(weights):
    x, labels = data()

    def batches():
        while True:
            yield x[:4], labels[:4], weights
    return batches()


BAD_FIT = [
    ("per-pixel of the wrong shape", dict(sample_weight=np.ones((8, 6))), ValueError,
     r"sample_weight has shape \(8, 6\); expected one weight per sample \(8,\) or one per position \(8, 6, 6\)"),
    ("one per sample, too few", dict(sample_weight=np.ones(7)), ValueError, r"sample_weight has shape \(7,\)"),
    ("a list", dict(sample_weight=[1.0] * 8), TypeError, "sample_weight must be a NumPy array"),
    ("negative", dict(sample_weight=-np.ones(8)), ValueError, "sample_weight must be >= 0"),
    ("NaN", dict(sample_weight=np.r_[np.ones(7), np.nan]), ValueError, "sample_weight contains NaN"),
    ("all zero", dict(sample_weight=np.zeros((8, 6, 6))), ValueError, "sample_weight is 0 everywhere"),
    ("a class the model lacks", dict(class_weight={0: 1.0, 3: 2.0}), ValueError,
     r"class_weight names class 3, but the model's output has 3 classes \(0 to 2\)"),
    ("a negative class weight", dict(class_weight={1: -1.0}), ValueError, r"class_weight\[1\] must be a finite"),
    ("a NaN class weight", dict(class_weight={1: float("nan")}), ValueError, r"class_weight\[1\] must be a finite"),
    ("every class weight zero", dict(class_weight={0: 0, 1: 0, 2: 0}), ValueError, "every class the weight 0"),
    ("class weights zero on every label", dict(class_weight={0: 0, 1: 0}, y=lambda y: y % 2), ValueError,
     "the weights class_weight gives y is 0 everywhere"),
    ("a class key that is not an integer", dict(class_weight={"road": 1.0}), TypeError, "keys must be integer"),
    ("class_weight not a dict", dict(class_weight=[1.0, 2.0, 1.0]), TypeError, "class_weight must be a dict"),
    ("both at once", dict(class_weight={0: 1.0}, sample_weight=np.ones(8)), ValueError, "cannot be given together"),
    ("with one-hot masks", dict(class_weight={0: 2.0}, loss="categorical_crossentropy",
                                y=lambda y: np.eye(K, dtype=np.float32)[y]), ValueError,
     r"class_weight with one-hot masks \(8, 6, 6, 3\) is not supported \(Keras refuses it too\)"),
    ("with mean squared error", dict(class_weight={0: 2.0}, loss="mse",
                                     y=lambda y: np.eye(K, dtype=np.float32)[y]), ValueError, "has no classes"),
    ("per-pixel with augment", dict(sample_weight=np.ones((8, 6, 6)), augment=lambda x, y, rng: (x, y)),
     ValueError, "per-pixel sample_weight cannot be used with augment"),
    ("weights with a generator", dict(x=lambda: _stream(np.ones(4)), sample_weight=np.ones(8), steps_per_epoch=1),
     ValueError, "sample_weight must be None when x is a PyDataset or a generator"),
    ("a generator's weights of the wrong shape", dict(x=lambda: _stream(np.ones((4, 6))), steps_per_epoch=1),
     ValueError, r"batch 0 of epoch 1: sample_weight has shape \(4, 6\)"),
    ("a generator's weights and class_weight", dict(x=lambda: _stream(np.ones(4)), steps_per_epoch=1,
                                                    class_weight={0: 2.0}), ValueError, "cannot be given together"),
]


@pytest.mark.parametrize("case, args, error, match", BAD_FIT, ids=[c[0] for c in BAD_FIT])
def test_bad_weights_are_refused_before_the_first_step(case, args, error, match):
    args = dict(args)
    model = fresh(args.pop("loss")) if "loss" in args else trained_model(metrics=())
    x, labels = data()
    y = args.pop("y", lambda y: y)(labels)
    if "x" in args:
        x, y = args.pop("x")(), None
    before = snapshot(model)
    with pytest.raises(error, match=match):
        model.fit(x, y, epochs=1, batch_size=4, verbose=0, **args)
    assert_unchanged(model, before)


def test_bad_weights_in_evaluate_and_train_on_batch():
    model = trained_model(metrics=())
    x, labels = data()
    before = snapshot(model)
    with pytest.raises(ValueError, match=r"sample_weight has shape \(8, 6, 6, 2\)"):
        model.evaluate(x, labels, sample_weight=np.ones((8, 6, 6, 2)), verbose=0)
    with pytest.raises(ValueError, match="sample_weight contains NaN"):
        model.train_on_batch(x, labels, sample_weight=np.full(8, np.nan))
    with pytest.raises(ValueError, match="class_weight names class 5"):
        model.train_on_batch(x, labels, class_weight={5: 1.0})
    assert_unchanged(model, before)


def test_a_loss_without_sample_weight_is_refused_by_name():
    class Plain(tinyseg.losses.Loss):
        activation = "softmax"

        def forward(self, y_true, y_pred):
            return 0.0

    inputs = Input((4,))
    model = Model(inputs, Dense(K)(inputs))
    model.compile(optimizer=SGD(0.1), loss=Plain())
    with pytest.raises(TypeError, match=r"Plain.forward\(y_true, y_pred\) takes no sample_weight"):
        model.fit(np.zeros((4, 4), np.float32), np.zeros(4, int), sample_weight=np.ones(4), verbose=0)
