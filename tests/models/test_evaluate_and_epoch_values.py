"""What evaluate and fit report: evaluate runs in inference mode (it never updates BatchNorm's moving
statistics, never drops units, and gives the loss of predict's outputs), an epoch's loss weighs each batch by its
size, so a short last batch counts for less, and its metrics are those of the whole epoch (the mean IoU of one
confusion matrix of all its batches, not a mean of the batches' IoUs). Every expected number is computed here with
NumPy from predict's outputs, not from the averaging under test; each test's docstring says how it was broken
on purpose to see it fail.
"""
import copy

import numpy as np
import pytest

import tinyseg
from tinyseg.layers import Activation, BatchNormalization, Conv2D, Dense, Dropout
from tinyseg.models import Sequential
from tinyseg.optimizers import SGD


# --- computed by hand, with no tinyseg code ----------------------------------------------------------------
def _cross_entropy_from_probabilities(probs, labels):
    """-mean log p[label] over every sample (or pixel); probs (..., K), labels (...)."""
    probs = np.asarray(probs, dtype=np.float64)
    picked = np.take_along_axis(probs, labels[..., None], axis=-1)[..., 0]
    return float(-np.mean(np.log(picked)))


def _accuracy_by_hand(probs, labels):
    return float(np.mean(probs.argmax(axis=-1) == labels))


def _mean_iou_by_hand(probs, labels, num_classes):
    """Mean over the classes present in truth or prediction of |T and P| / |T or P|."""
    pred = probs.argmax(axis=-1)
    ious = []
    for c in range(num_classes):
        union = np.sum((labels == c) | (pred == c))
        if union:
            ious.append(np.sum((labels == c) & (pred == c)) / union)
    return float(np.mean(ious))


# --- evaluate does not train --------------------------------------------------------------------------------
def _conv_bn_dropout_model():
    tinyseg.set_random_seed(0)
    model = Sequential([
        Conv2D(4, 3, padding="same", input_shape=(6, 6, 2)),
        BatchNormalization(momentum=0.5),
        Activation("relu"),
        Dropout(0.5),
        Conv2D(3, 1, activation="softmax"),
    ])
    model.compile(optimizer=SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_evaluate_is_inference_mode_with_batchnorm_and_dropout():
    """Broken on purpose with test_on_batch calling call(x, training=True): the two evaluates differed
    (dropout drew new masks, BatchNorm normalised with batch statistics and moved its averages)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 6, 6, 2)).astype(np.float32)
    y = rng.integers(0, 3, (10, 6, 6))
    model = _conv_bn_dropout_model()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0, seed=0)        # moving statistics away from 0 and 1
    bn = model.layers[1]
    state_before = {k: v.copy() for k, v in bn.state.items()}
    weights_before = [w.copy() for w in model.get_weights()]

    first = model.evaluate(x, y, batch_size=4, verbose=0)
    second = model.evaluate(x, y, batch_size=4, verbose=0)
    assert first == second                                             # same numbers, exactly

    probs = model.predict(x)
    assert first[0] == pytest.approx(_cross_entropy_from_probabilities(probs, y), rel=1e-5)
    assert first[1] == pytest.approx(_accuracy_by_hand(probs, y))

    for key, before in state_before.items():                           # bit-identical moving statistics
        np.testing.assert_array_equal(bn.state[key], before, err_msg=key)
    for after, before in zip(model.get_weights(), weights_before):
        np.testing.assert_array_equal(after, before)


# --- a short last batch weighs by its size; metrics are of the whole epoch ----------------------------------
def test_epoch_values_weight_a_short_last_batch_by_its_size():
    """10 training samples in batches of 4, 4, 2 and 7 validation samples in batches of 4, 3.

    The expected values come from predict() on a copy of the model stepped batch by batch with
    train_on_batch, and from losses and metrics computed here with NumPy, not from fit's averaging.
    Broken on purpose with fit adding up unweighted batch values (totals += values; seen += 1): the training
    loss differed from the weighted hand value (1.560 against 1.712). Broken with evaluate dividing unweighted
    sums by the number of batches: val_loss differed (1.460 against 1.507).
    Until issue 23, mean_iou here was pinned to the size-weighted mean of the batches' IoUs; the issue calls
    that a bug (IoU is not additive), and it is now the IoU of the whole epoch's predictions (each batch's made
    by the weights before its step) and of the whole validation set. Broken on purpose with the Mean of batch
    values back in place of MeanIoU's state: mean_iou and val_mean_iou differed from the whole-set values.
    """
    rng = np.random.default_rng(5)
    x = rng.standard_normal((10, 5)).astype(np.float32)
    y = rng.integers(0, 3, 10)
    x_val = rng.standard_normal((7, 5)).astype(np.float32)
    y_val = rng.integers(0, 3, 7)
    tinyseg.set_random_seed(3)
    model = Sequential([Dense(3, activation="softmax", input_shape=(5,))])
    model.compile(optimizer=SGD(0.5), loss="sparse_categorical_crossentropy", metrics=["accuracy", "mean_iou"])

    # By hand: the values each batch reports are those of the weights before its step.
    stepped = copy.deepcopy(model)
    sizes, per_batch, epoch_probs = [], [], []
    for start in range(0, 10, 4):
        xb, yb = x[start:start + 4], y[start:start + 4]
        probs = stepped.predict(xb)
        epoch_probs.append(probs)
        per_batch.append([_cross_entropy_from_probabilities(probs, yb), _accuracy_by_hand(probs, yb),
                          _mean_iou_by_hand(probs, yb, 3)])
        sizes.append(len(xb))
        stepped.train_on_batch(xb, yb)
    assert sizes == [4, 4, 2]
    per_batch, sizes = np.array(per_batch), np.array(sizes)
    weighted = (per_batch * sizes[:, None]).sum(axis=0) / sizes.sum()
    unweighted = per_batch.mean(axis=0)
    assert np.all(np.abs(weighted - unweighted) > 0.01)                 # the data tell the two apart
    epoch_probs = np.concatenate(epoch_probs)
    whole_epoch_miou = _mean_iou_by_hand(epoch_probs, y, 3)
    assert abs(whole_epoch_miou - weighted[2]) > 0.01                   # and the whole epoch from its batches
    expected = {"loss": weighted[0], "accuracy": _accuracy_by_hand(epoch_probs, y), "mean_iou": whole_epoch_miou}
    assert expected["accuracy"] == pytest.approx(weighted[1])           # accuracy is additive: the same number

    val_probs = stepped.predict(x_val)
    val_expected = {
        "val_loss": _cross_entropy_from_probabilities(val_probs, y_val),   # every sample weighs the same
        "val_accuracy": _accuracy_by_hand(val_probs, y_val),
        "val_mean_iou": _mean_iou_by_hand(val_probs, y_val, 3),         # one confusion matrix of all 7
    }
    val_batch_weighted_miou = (4 * _mean_iou_by_hand(val_probs[:4], y_val[:4], 3)
                               + 3 * _mean_iou_by_hand(val_probs[4:], y_val[4:], 3)) / 7
    assert abs(val_expected["val_mean_iou"] - val_batch_weighted_miou) > 0.01

    logs = model.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0,
                     validation_data=(x_val, y_val)).history
    for name, value in expected.items():
        assert logs[name][0] == pytest.approx(value, rel=1e-5), name
    for name, value in val_expected.items():
        assert logs[name][0] == pytest.approx(value, rel=1e-5), name
    np.testing.assert_array_equal(np.concatenate([w.ravel() for w in model.get_weights()]),
                                  np.concatenate([w.ravel() for w in stepped.get_weights()]))
    evaluated = model.evaluate(x_val, y_val, batch_size=4, verbose=0, return_dict=True)
    for name, value in evaluated.items():
        assert value == pytest.approx(val_expected["val_" + name], rel=1e-5), name
