"""Four behaviours users rely on that no other test stated (issue 16). Each test was checked to fail when the
behaviour is broken on purpose; the docstrings say how.

1. `evaluate` runs in inference mode: it never updates BatchNorm's moving statistics, never drops units,
   and gives the loss of `predict`'s outputs.
2. `mean_iou` leaves out classes absent from both truth and prediction (so perfect predictions give 1.0).
3. An epoch's loss and metrics weight each batch by its size, so a short last batch counts for less.
4. mask_mode='auto' reads all-0 and all-255 masks as binary, and refuses a folder that mixes 0/255 masks
   with class-index masks.
"""
import copy

import numpy as np
import pytest
from PIL import Image

import tinyseg
from tinyseg.datasets.folder import load_image_folder
from tinyseg.layers import Activation, BatchNormalization, Conv2D, Dense, Dropout
from tinyseg.metrics import ConfusionMatrix, confusion_matrix, iou, mean_iou, mean_iou_metric
from tinyseg.models import Sequential
from tinyseg.optimizers import SGD


# --- helpers computed by hand, with no tinyseg code --------------------------------------------------------
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


# --- 1. evaluate does not train ----------------------------------------------------------------------------
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


# --- 2. mean IoU leaves out absent classes -----------------------------------------------------------------
def _labels_0_1():
    """Labels only in {0, 1} although there are three classes: class 2 is in no target and no prediction."""
    return np.random.default_rng(2).integers(0, 2, (6, 4, 4))


def test_mean_iou_metric_leaves_out_a_class_absent_from_truth_and_prediction():
    """Broken on purpose with mean_iou_metric passing absent='zero' to mean_iou: 0.666... instead of 1."""
    labels = _labels_0_1()
    perfect = np.eye(3, dtype=np.float32)[labels]                      # scores (6, 4, 4, 3), argmax = label
    assert mean_iou_metric(labels, perfect) == 1.0
    assert mean_iou_metric(perfect, perfect) == 1.0                    # one-hot targets too


def test_mean_iou_in_compile_and_evaluate_leaves_out_an_absent_class():
    """Broken on purpose as above: evaluate reported mean_iou 0.666... instead of 1."""
    labels = _labels_0_1()
    x = np.eye(3, dtype=np.float32)[labels]                            # the input already says the class
    model = Sequential([Conv2D(3, 1, activation="softmax", input_shape=(4, 4, 3))])
    model.set_weights([10 * np.eye(3, dtype=np.float32).reshape(1, 1, 3, 3), np.zeros(3, np.float32)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["mean_iou"])
    assert np.array_equal(model.predict(x).argmax(axis=-1), labels)     # perfect predictions
    loss, miou = model.evaluate(x, labels, batch_size=4, verbose=0)
    assert miou == 1.0


def test_confusion_matrix_mean_iou_leaves_out_an_absent_class():
    """Broken on purpose with mean_iou's default absent='zero': 0.666... instead of 1."""
    labels = _labels_0_1()
    cm = confusion_matrix(labels, labels, 3)
    assert cm[2].sum() == 0 and cm[:, 2].sum() == 0
    per_class = iou(cm)
    assert per_class[:2].tolist() == [1.0, 1.0] and np.isnan(per_class[2])
    assert mean_iou(cm) == 1.0
    assert ConfusionMatrix(3).update(labels, labels).result()["mean_iou"] == 1.0
    assert mean_iou(cm, absent="zero") == pytest.approx(2 / 3)           # the other policy, asked for by name


# --- 3. a short last batch weighs by its size --------------------------------------------------------------
def test_epoch_values_weight_a_short_last_batch_by_its_size():
    """10 training samples in batches of 4, 4, 2 and 7 validation samples in batches of 4, 3.

    The expected values come from predict() on a copy of the model stepped batch by batch with
    train_on_batch, and from losses and metrics computed here with NumPy, not from fit's averaging.
    Broken on purpose with fit adding up unweighted batch values (totals += values; seen += 1): the training
    loss differed from the weighted hand value (1.560 against 1.712). Broken with evaluate dividing unweighted
    sums by the number of batches: val_loss differed (1.460 against 1.507).
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
    sizes, per_batch = [], []
    for start in range(0, 10, 4):
        xb, yb = x[start:start + 4], y[start:start + 4]
        probs = stepped.predict(xb)
        per_batch.append([_cross_entropy_from_probabilities(probs, yb), _accuracy_by_hand(probs, yb),
                          _mean_iou_by_hand(probs, yb, 3)])
        sizes.append(len(xb))
        stepped.train_on_batch(xb, yb)
    assert sizes == [4, 4, 2]
    per_batch, sizes = np.array(per_batch), np.array(sizes)
    weighted = (per_batch * sizes[:, None]).sum(axis=0) / sizes.sum()
    unweighted = per_batch.mean(axis=0)
    assert np.all(np.abs(weighted - unweighted) > 0.01)                 # the data tell the two apart

    val_probs = stepped.predict(x_val)
    val_expected = {
        "val_loss": _cross_entropy_from_probabilities(val_probs, y_val),   # every sample weighs the same
        "val_accuracy": _accuracy_by_hand(val_probs, y_val),
        "val_mean_iou": (4 * _mean_iou_by_hand(val_probs[:4], y_val[:4], 3)
                         + 3 * _mean_iou_by_hand(val_probs[4:], y_val[4:], 3)) / 7,
    }
    val_unweighted_miou = (_mean_iou_by_hand(val_probs[:4], y_val[:4], 3)
                           + _mean_iou_by_hand(val_probs[4:], y_val[4:], 3)) / 2
    assert abs(val_expected["val_mean_iou"] - val_unweighted_miou) > 0.01

    logs = model.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0,
                     validation_data=(x_val, y_val)).history
    for i, name in enumerate(["loss", "accuracy", "mean_iou"]):
        assert logs[name][0] == pytest.approx(weighted[i], rel=1e-5), name
    for name, value in val_expected.items():
        assert logs[name][0] == pytest.approx(value, rel=1e-5), name
    np.testing.assert_array_equal(np.concatenate([w.ravel() for w in model.get_weights()]),
                                  np.concatenate([w.ravel() for w in stepped.get_weights()]))
    evaluated = model.evaluate(x_val, y_val, batch_size=4, verbose=0, return_dict=True)
    for name, value in evaluated.items():
        assert value == pytest.approx(val_expected["val_" + name], rel=1e-5), name


# --- 4. mask_mode='auto' on all-0 and all-255 masks --------------------------------------------------------
def _write_folder(tmp_path, masks):
    """images/img{i}.png (random RGB) and masks/img{i}.png ('L', the given uint8 values) for each mask."""
    images_dir, masks_dir = tmp_path / "images", tmp_path / "masks"
    images_dir.mkdir(parents=True)
    masks_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, mask in enumerate(masks):
        image = rng.integers(0, 256, size=mask.shape + (3,), dtype=np.uint8)
        Image.fromarray(image).save(images_dir / f"img{i}.png")
        Image.fromarray(np.asarray(mask, dtype=np.uint8)).save(masks_dir / f"img{i}.png")
    return images_dir, masks_dir


def test_auto_mask_mode_reads_all_255_as_object_and_all_0_as_background(tmp_path):
    """Broken on purpose with auto choosing 'binary' only when a folder holds both 0 and 255: the all-255
    masks came back as class 255."""
    full, empty = np.full((5, 4), 255), np.zeros((5, 4))
    images, masks = _write_folder(tmp_path / "full", [full, full])
    _, y, _ = load_image_folder(images, masks)
    assert y.dtype == np.uint8
    assert np.all(y == 1), f"all-255 masks gave values {np.unique(y).tolist()}, expected class 1"
    images, masks = _write_folder(tmp_path / "empty", [empty, empty])
    _, y, _ = load_image_folder(images, masks)
    assert np.all(y == 0), f"all-0 masks gave values {np.unique(y).tolist()}, expected class 0"
    images, masks = _write_folder(tmp_path / "both", [empty, full])
    _, y, _ = load_image_folder(images, masks)
    np.testing.assert_array_equal(y, [empty, full / 255])


def test_auto_mask_mode_refuses_index_masks_mixed_with_0_255_masks(tmp_path):
    """Without the check (the code before issue 16), such a folder loaded silently, 255 kept as class 255."""
    rng = np.random.default_rng(1)
    index = rng.integers(0, 3, (5, 4))                                   # classes 0, 1, 2
    binary = rng.choice([0, 255], (5, 4))
    images, masks = _write_folder(tmp_path / "mixed", [index, binary, np.full((5, 4), 255)])
    with pytest.raises(ValueError, match=r"img1\.png.*img2\.png.*img0\.png.*mask_mode") as error:
        load_image_folder(images, masks)
    assert "0 and 255" in str(error.value)
    # Said explicitly, either reading is allowed.
    _, y, _ = load_image_folder(images, masks, mask_mode="index")
    assert y[1].max() == 255
    _, y, _ = load_image_folder(images, masks, mask_mode="binary")
    assert set(np.unique(y).tolist()) == {0, 1}
    # An all-0 mask fits both readings, so it does not make a folder of index masks ambiguous.
    images, masks = _write_folder(tmp_path / "index", [index, np.zeros((5, 4))])
    _, y, _ = load_image_folder(images, masks)
    np.testing.assert_array_equal(y, [index, np.zeros((5, 4))])
