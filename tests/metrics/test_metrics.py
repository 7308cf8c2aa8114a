"""Metrics: every expected number below is worked out by hand from a confusion matrix written out in full
(or from predictions made perfect on purpose); then the Keras-facing metrics, on probabilities and logits."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinyseg import metrics
from tinyseg.layers import Conv2D
from tinyseg.losses import BinaryCrossentropy
from tinyseg.metrics import (
    ConfusionMatrix,
    accuracy,
    accuracy_metric,
    accuracy_score,
    confusion_matrix,
    dice,
    format_table,
    iou,
    mean_class_accuracy,
    mean_dice,
    mean_iou,
    mean_iou_metric,
    per_image_mean_iou,
    pixel_accuracy,
    precision,
    recall,
)
from tinyseg.models import Sequential

# ------------------------------------------------------------------------------------------------------------
# A 3x4 mask, K = 4 classes, one ignored pixel (255). Class 3 appears in neither truth nor prediction.
#
#   y_true            y_pred            (true, pred) pairs, row by row
#   0 0 1 1           0 1 1 1           (0,0) (0,1) (1,1) (1,1)
#   0 2 1 1           0 2 1 0           (0,0) (2,2) (1,1) (1,0)
#   0 0 X 2           0 0 2 1           (0,0) (0,0)  --   (2,1)
#
# n_ij (rows true, columns predicted):     t_i (row sums)    p_j (column sums) = 5 5 1 0
#        0  1  2  3
#   0 [  4  1  0  0 ]                      5
#   1 [  1  3  0  0 ]                      4
#   2 [  0  1  1  0 ]                      2
#   3 [  0  0  0  0 ]                      0                 total = 11 (12 pixels, 1 ignored)
# ------------------------------------------------------------------------------------------------------------
Y_TRUE = np.array([[[0, 0, 1, 1],
                    [0, 2, 1, 1],
                    [0, 0, 255, 2]]])
Y_PRED = np.array([[[0, 1, 1, 1],
                    [0, 2, 1, 0],
                    [0, 0, 2, 1]]])
CM = np.array([[4, 1, 0, 0],
               [1, 3, 0, 0],
               [0, 1, 1, 0],
               [0, 0, 0, 0]])
NAN = np.nan


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(Y_TRUE, Y_PRED, num_classes=4, ignore_index=255)
    assert cm.dtype == np.int64 and cm.shape == (4, 4)
    np.testing.assert_array_equal(cm, CM)


def test_ignored_pixels_are_excluded():
    # Change the prediction under the ignored pixel: nothing may change. Without ignore_index, 255 is an error.
    pred = Y_PRED.copy()
    pred[0, 2, 2] = 3
    np.testing.assert_array_equal(confusion_matrix(Y_TRUE, pred, 4, ignore_index=255), CM)
    assert confusion_matrix(Y_TRUE, Y_PRED, 4, ignore_index=255).sum() == 11
    with pytest.raises(ValueError, match=r"y_true contains 255"):
        confusion_matrix(Y_TRUE, Y_PRED, 4)


def test_ignore_index_inside_the_class_range():
    # ignore_index = 0 drops the true-background pixels (5 of them): rows 1 and 2 stay, row 0 becomes empty.
    cm = confusion_matrix(Y_TRUE[Y_TRUE != 255], Y_PRED[Y_TRUE != 255], 4, ignore_index=0)
    expected = CM.copy()
    expected[0] = 0
    np.testing.assert_array_equal(cm, expected)


def test_segmentation_metrics_by_hand():
    assert pixel_accuracy(CM) == pytest.approx((4 + 3 + 1) / 11)
    # recall_i = n_ii / t_i; the mean leaves out class 3 (t_3 = 0).
    np.testing.assert_allclose(recall(CM), [4 / 5, 3 / 4, 1 / 2, NAN])
    assert mean_class_accuracy(CM) == pytest.approx((4 / 5 + 3 / 4 + 1 / 2) / 3)     # = 41/60
    assert recall(CM, average="macro") == pytest.approx(41 / 60)
    # precision_i = n_ii / p_i
    np.testing.assert_allclose(precision(CM), [4 / 5, 3 / 5, 1 / 1, NAN])
    assert precision(CM, average="macro") == pytest.approx((4 / 5 + 3 / 5 + 1) / 3)
    # IoU_i = n_ii / (t_i + p_i - n_ii):  4/(5+5-4), 3/(4+5-3), 1/(2+1-1)
    np.testing.assert_allclose(iou(CM), [2 / 3, 1 / 2, 1 / 2, NAN])
    assert mean_iou(CM) == pytest.approx((2 / 3 + 1 / 2 + 1 / 2) / 3)                   # = 5/9
    # Dice_i = 2 n_ii / (t_i + p_i):  8/10, 6/9, 2/3
    np.testing.assert_allclose(dice(CM), [4 / 5, 2 / 3, 2 / 3, NAN])
    assert mean_dice(CM) == pytest.approx((4 / 5 + 2 / 3 + 2 / 3) / 3)                  # = 32/45
    # Dice = 2 IoU / (1 + IoU), class by class
    np.testing.assert_allclose(dice(CM)[:3], 2 * iou(CM)[:3] / (1 + iou(CM)[:3]))


def test_absent_policy():
    # class 3 is 0/0 in every ratio: NaN and left out (K' = 3), or 0 / 1 and counted (K = 4).
    assert np.isnan(iou(CM)[3]) and np.isnan(dice(CM)[3])
    assert iou(CM, absent="zero")[3] == 0.0 and iou(CM, absent="one")[3] == 1.0
    assert mean_iou(CM, absent="ignore") == pytest.approx(5 / 9)
    assert mean_iou(CM, absent="zero") == pytest.approx((2 / 3 + 1 / 2 + 1 / 2) / 4)         # 5/12
    assert mean_iou(CM, absent="one") == pytest.approx((2 / 3 + 1 / 2 + 1 / 2 + 1) / 4)      # 2/3
    assert mean_dice(CM, absent="zero") == pytest.approx((4 / 5 + 2 / 3 + 2 / 3) / 4)
    with pytest.raises(ValueError, match=r"absent must be one of"):
        mean_iou(CM, absent="skip")


def test_class_in_truth_never_predicted():
    # y_true = [0, 0, 1, 1], y_pred = [0, 0, 0, 0]:  n = [[2, 0], [2, 0]],  t = (2, 2),  p = (4, 0)
    cm = confusion_matrix([0, 0, 1, 1], [0, 0, 0, 0], 2)
    np.testing.assert_array_equal(cm, [[2, 0], [2, 0]])
    np.testing.assert_allclose(iou(cm), [2 / (2 + 4 - 2), 0.0])         # class 1: 0 / (2 + 0 - 0) = 0, not NaN
    np.testing.assert_allclose(dice(cm), [4 / 6, 0.0])
    np.testing.assert_allclose(recall(cm), [1.0, 0.0])
    assert mean_iou(cm) == pytest.approx(0.25)                          # (1/2 + 0) / 2
    # Never predicted: precision_1 = 0/0 -> NaN, and the macro mean is precision_0 alone.
    np.testing.assert_allclose(precision(cm), [2 / 4, NAN])
    assert precision(cm, average="macro") == pytest.approx(0.5)
    assert precision(cm, average="macro", absent="zero") == pytest.approx(0.25)


def test_binary_classification_by_hand():
    # y_true = 1 1 1 0 0 0 0 1, y_pred = 1 0 0 0 1 0 0 1. Positive class 1: TP=2 FN=2 FP=1 TN=3.
    cm = confusion_matrix([1, 1, 1, 0, 0, 0, 0, 1], [1, 0, 0, 0, 1, 0, 0, 1], 2)
    np.testing.assert_array_equal(cm, [[3, 1], [2, 2]])                 # [[TN, FP], [FN, TP]]
    assert accuracy(cm) == pytest.approx((2 + 3) / (2 + 3 + 1 + 2))
    np.testing.assert_allclose(precision(cm), [3 / 5, 2 / 3])           # class 0: 3/(3+2); class 1: 2/(2+1)
    np.testing.assert_allclose(recall(cm), [3 / 4, 2 / 4])
    np.testing.assert_allclose(accuracy(cm, average=None), [5 / 8, 5 / 8])   # one-vs-rest, equal for K=2
    assert accuracy_score([1, 1, 1, 0, 0, 0, 0, 1], [1, 0, 0, 0, 1, 0, 0, 1]) == pytest.approx(5 / 8)


def test_one_vs_rest_accuracy_three_classes():
    # On CM, class 0: TP=4, FP=1, FN=1, TN=11-6=5 -> 9/11; class 1: TP=3 FP=2 FN=1 TN=5 -> 8/11;
    # class 2: TP=1 FP=0 FN=1 TN=9 -> 10/11; class 3: TN=11 -> 11/11.
    np.testing.assert_allclose(accuracy(CM, average=None), [9 / 11, 8 / 11, 10 / 11, 1.0])
    with pytest.raises(ValueError, match=r"average must be"):
        accuracy(CM, average="macro")
    with pytest.raises(ValueError, match=r"average must be"):
        recall(CM, average="weighted")


def test_empty_matrix_gives_nan_without_warnings():
    cm = np.zeros((3, 3), dtype=np.int64)
    with np.errstate(all="raise"):
        assert np.isnan(pixel_accuracy(cm)) and np.isnan(mean_iou(cm)) and np.isnan(mean_class_accuracy(cm))


def test_predict_all_background():
    # 10x10 image: a 2x2 object of class 1 and a 2x2 object of class 2 on background; the model says "background"
    # everywhere. n = [[92, 0, 0], [4, 0, 0], [4, 0, 0]].
    y_true = np.zeros((1, 10, 10), dtype=np.int64)
    y_true[0, 1:3, 1:3] = 1
    y_true[0, 6:8, 5:7] = 2
    cm = confusion_matrix(y_true, np.zeros_like(y_true), 3)
    np.testing.assert_array_equal(cm, [[92, 0, 0], [4, 0, 0], [4, 0, 0]])
    assert pixel_accuracy(cm) == pytest.approx(0.92)                    # looks great
    np.testing.assert_allclose(iou(cm), [92 / 100, 0.0, 0.0])           # IoU_0 = 92 / (92 + 100 - 92)
    assert mean_iou(cm) == pytest.approx(0.92 / 3)                      # about 0.31: it found nothing
    assert mean_class_accuracy(cm) == pytest.approx(1 / 3)


def test_per_image_differs_from_dataset_iou():
    # image A: all class 1, predicted perfectly.    image B: one class-1 pixel among background, missed.
    y_true = np.array([[[1, 1, 1, 1]], [[0, 0, 0, 1]]])
    y_pred = np.array([[[1, 1, 1, 1]], [[0, 0, 0, 0]]])
    # Dataset: n = [[3, 0], [1, 4]], t = (3, 5), p = (4, 4): IoU = (3/4, 4/5), mean 0.775.
    assert mean_iou(confusion_matrix(y_true, y_pred, 2)) == pytest.approx((3 / 4 + 4 / 5) / 2)
    # Per image: A has IoU (NaN, 1) -> 1 (class 0 absent, left out); B has n = [[3, 0], [1, 0]] -> IoU (3/4, 0)
    # -> 3/8. Average (1 + 3/8) / 2 = 0.6875.
    assert per_image_mean_iou(y_true, y_pred, 2) == pytest.approx((1 + 3 / 8) / 2)
    stream = ConfusionMatrix(2, per_image=True)
    stream.update(y_true[:1], y_pred[:1]).update(y_true[1:], y_pred[1:])
    result = stream.result()
    assert result["per_image_mean_iou"] == pytest.approx(0.6875)
    assert result["mean_iou"] == pytest.approx(0.775)


def test_per_image_skips_fully_ignored_images():
    y_true = np.array([[[1, 0]], [[9, 9]]])
    y_pred = np.array([[[1, 1]], [[0, 0]]])
    # image 0: n = [[0, 1], [0, 1]] -> IoU (0, 1/2) -> 1/4; image 1 entirely ignored -> left out.
    assert per_image_mean_iou(y_true, y_pred, 2, ignore_index=9) == pytest.approx(0.25)


def test_per_image_mean_iou_of_a_streamed_matrix_follows_absent():
    """Image 0 holds only class 0, predicted right: class 1's IoU is 0/0. With absent='one' that image's mIoU
    is (1 + 1) / 2 = 1, with 'zero' (1 + 0) / 2 = 1/2, with 'ignore' 1 (class 1 left out)."""
    y_true = np.zeros((1, 2, 2), dtype=np.int64)
    cm = ConfusionMatrix(2, per_image=True).update(y_true, y_true)
    assert cm.result(absent="ignore")["per_image_mean_iou"] == pytest.approx(1.0)
    assert cm.result(absent="zero")["per_image_mean_iou"] == pytest.approx(0.5)
    assert cm.result(absent="one")["per_image_mean_iou"] == pytest.approx(1.0)
    # the same numbers as the one-shot function, for each policy
    for absent in ("ignore", "zero", "one"):
        assert cm.result(absent=absent)["per_image_mean_iou"] == pytest.approx(
            per_image_mean_iou(y_true, y_true, 2, absent=absent))


# --- a class absent from both truth and prediction is left out of the mean IoU (so perfect predictions give 1)
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


def _as_comparable(result):
    return {k: np.asarray(v, dtype=np.float64) for k, v in result.items()}


@pytest.mark.parametrize("per_image", [False, True])
def test_streaming_equals_one_shot(per_image):
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, size=(7, 6, 5))
    y_pred = rng.integers(0, 4, size=(7, 6, 5))          # class 4 never predicted
    y_true[rng.random(y_true.shape) < 0.1] = 255
    stream = ConfusionMatrix(5, ignore_index=255, per_image=per_image)
    for start, stop in [(0, 1), (1, 4), (4, 7)]:
        stream.update(y_true[start:stop], y_pred[start:stop])
    one_shot = ConfusionMatrix(5, ignore_index=255, per_image=per_image).update(y_true, y_pred)
    np.testing.assert_array_equal(stream.matrix, confusion_matrix(y_true, y_pred, 5, ignore_index=255))
    a, b = _as_comparable(stream.result()), _as_comparable(one_shot.result())
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], err_msg=key)
    assert b["mean_iou"] == pytest.approx(mean_iou(confusion_matrix(y_true, y_pred, 5, ignore_index=255)))
    if per_image:
        assert b["per_image_mean_iou"] == pytest.approx(per_image_mean_iou(y_true, y_pred, 5, ignore_index=255))
    stream.reset()
    assert stream.matrix.sum() == 0 and np.isnan(stream.result()["pixel_accuracy"])
    if per_image:
        assert np.isnan(stream.result()["per_image_mean_iou"])


def test_result_holds_every_metric():
    result = ConfusionMatrix(4, ignore_index=255).update(Y_TRUE, Y_PRED).result()
    np.testing.assert_array_equal(result["confusion_matrix"], CM)
    np.testing.assert_array_equal(result["support"], [5, 4, 2, 0])
    assert result["pixel_accuracy"] == pytest.approx(8 / 11)
    assert result["mean_iou"] == pytest.approx(5 / 9)
    assert result["mean_dice"] == pytest.approx(32 / 45)
    assert result["mean_class_accuracy"] == pytest.approx(41 / 60)
    assert result["mean_recall"] == pytest.approx(41 / 60)
    assert result["mean_precision"] == pytest.approx(0.8)
    np.testing.assert_allclose(result["iou"], [2 / 3, 1 / 2, 1 / 2, NAN])
    assert "per_image_mean_iou" not in result


def test_format_table():
    result = ConfusionMatrix(4, ignore_index=255).update(Y_TRUE, Y_PRED).result()
    text = format_table(result, class_names=["background", "cat", "dog", "bird"])
    lines = text.splitlines()
    assert lines[0].split() == ["class", "IoU", "Dice", "precision", "recall", "support"]
    cat = next(line for line in lines if line.startswith("cat"))
    assert cat.split() == ["cat", "0.5000", "0.6667", "0.6000", "0.7500", "4"]
    bird = next(line for line in lines if line.startswith("bird"))
    assert bird.split() == ["bird", "-", "-", "-", "-", "0"]
    mean = next(line for line in lines if line.startswith("mean "))
    assert mean.split()[1:3] == [f"{5 / 9:.4f}", f"{32 / 45:.4f}"]
    assert f"{8 / 11:.4f}" in next(line for line in lines if line.startswith("pixel accuracy"))
    with pytest.raises(ValueError, match=r"class_names has 2 names for 4 classes"):
        format_table(result, class_names=["a", "b"])


# ------------------------------------------------------------------------------------------------------------
# The bincount against the naive double loop
# ------------------------------------------------------------------------------------------------------------

def naive_confusion_matrix(y_true, y_pred, k, ignore_index=None):
    n = np.zeros((k, k), dtype=np.int64)
    keep = np.ones(y_true.shape, bool) if ignore_index is None else (y_true != ignore_index)
    for i in range(k):
        for j in range(k):
            n[i, j] = np.sum((y_true == i) & (y_pred == j) & keep)
    return n


@st.composite
def label_pairs(draw):
    k = draw(st.integers(1, 5))
    ignore_index = draw(st.sampled_from([None, -1, 255, 0]))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6))
    true_values = list(range(k)) + ([] if ignore_index is None else [ignore_index])
    y_true = draw(hnp.arrays(np.int64, shape, elements=st.sampled_from(true_values)))
    y_pred = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, k - 1)))
    return y_true, y_pred, k, ignore_index


@settings(max_examples=200, deadline=None)
@given(label_pairs())
def test_confusion_matrix_equals_naive_double_loop(case):
    y_true, y_pred, k, ignore_index = case
    cm = confusion_matrix(y_true, y_pred, k, ignore_index=ignore_index)
    np.testing.assert_array_equal(cm, naive_confusion_matrix(y_true, y_pred, k, ignore_index))
    n_kept = y_true.size if ignore_index is None else int(np.sum(y_true != ignore_index))
    assert cm.sum() == n_kept
    if y_true.ndim >= 1 and y_true.shape[0] > 0:
        per_image = metrics.confusion_matrices_per_image(y_true, y_pred, k, ignore_index)
        for b in range(y_true.shape[0]):
            np.testing.assert_array_equal(per_image[b],
                                          naive_confusion_matrix(y_true[b], y_pred[b], k, ignore_index))


# ------------------------------------------------------------------------------------------------------------
# Bad inputs
# ------------------------------------------------------------------------------------------------------------

def test_shape_mismatch():
    with pytest.raises(ValueError, match=r"same shape.*\(2, 3\).*\(2, 4\)"):
        confusion_matrix(np.zeros((2, 3), int), np.zeros((2, 4), int), 2)
    with pytest.raises(ValueError, match=r"same shape"):
        accuracy_score([0, 1], [0, 1, 1])


def test_out_of_range_labels():
    with pytest.raises(ValueError, match=r"y_true contains 3 \(first at index \(1,\)\).*\[0, 3\)"):
        confusion_matrix([0, 3, 1], [0, 1, 1], 3)
    with pytest.raises(ValueError, match=r"y_pred contains -1.*\[0, 3\)"):
        confusion_matrix([0, 1, 1], [0, -1, 1], 3)
    with pytest.raises(ValueError, match=r"y_true contains 7.*or equal ignore_index=255"):
        confusion_matrix([0, 7, 255], [0, 1, 1], 3, ignore_index=255)
    with pytest.raises(ValueError, match=r"num_classes must be a positive integer"):
        confusion_matrix([0], [0], 0)


def test_float_labels_are_rejected():
    with pytest.raises(TypeError, match=r"y_pred has dtype float64.*argmax"):
        confusion_matrix([0, 1], np.array([0.2, 0.8]), 2)
    with pytest.raises(TypeError, match=r"y_true has dtype float64 and contains NaN.*class indices"):
        confusion_matrix(np.array([0.0, np.nan]), [0, 1], 2)
    with pytest.raises(TypeError, match=r"y_true has dtype float"):
        accuracy_score(np.array([1.0, 0.0]), np.array([1, 0]))


def test_bad_confusion_matrix():
    with pytest.raises(ValueError, match=r"must be square"):
        iou(np.zeros((2, 3)))


# ------------------------------------------------------------------------------------------------------------
# Keras-facing metrics
# ------------------------------------------------------------------------------------------------------------

SCORES = np.array([[2.0, 0.1, 0.3],     # argmax 0
                   [0.1, 0.2, 3.0],     # argmax 2
                   [0.5, 0.4, 0.1],     # argmax 0
                   [0.0, 1.0, 0.2]])    # argmax 1
SPARSE = np.array([0, 2, 1, 1])         # the third is wrong: 3/4


def test_get():
    assert metrics.get("accuracy") is accuracy_metric and metrics.get("acc") is accuracy_metric
    assert metrics.get("mean_iou") is mean_iou_metric
    assert metrics.get(accuracy_score) is accuracy_score
    with pytest.raises(ValueError, match=r"unknown metric 'f1'.*'acc', 'accuracy', 'mean_iou'"):
        metrics.get("f1")


def test_accuracy_metric_one_hot_and_sparse():
    one_hot = np.eye(3)[SPARSE]
    assert accuracy_metric(one_hot, SCORES) == pytest.approx(3 / 4)
    assert accuracy_metric(SPARSE, SCORES) == pytest.approx(3 / 4)
    assert accuracy_metric(SPARSE[:, None], SCORES) == pytest.approx(3 / 4)       # Keras's (N, 1)
    assert accuracy_metric(SPARSE.astype(np.float32), SCORES) == pytest.approx(3 / 4)
    with pytest.raises(TypeError, match=r"non-integer"):
        accuracy_metric(np.array([0, 2, 1.5, 1]), SCORES)
    with pytest.raises(ValueError, match=r"one-hot of shape \(4, 3\) or class indices of shape \(4,\)"):
        accuracy_metric(np.zeros((4, 2)), SCORES)


def test_accuracy_metric_per_pixel():
    # (N, H, W, K) = (2, 1, 2, 3): the four pixels carry SCORES' rows.
    scores = SCORES.reshape(2, 1, 2, 3)
    sparse = SPARSE.reshape(2, 1, 2)
    assert accuracy_metric(sparse, scores) == pytest.approx(3 / 4)
    assert accuracy_metric(np.eye(3)[sparse], scores) == pytest.approx(3 / 4)
    # mean IoU over the batch: true (0, 2, 1, 1), pred (0, 2, 0, 1): n = [[1,0,0],[1,1,0],[0,0,1]]
    # IoU = (1/(1+2-1), 1/(2+1-1), 1/1) = (1/2, 1/2, 1) -> 2/3
    assert mean_iou_metric(sparse, scores) == pytest.approx(2 / 3)
    assert mean_iou_metric(np.eye(3)[sparse], scores) == pytest.approx(2 / 3)


def test_single_channel_thresholds_at_half():
    probs = np.array([[0.9], [0.2], [0.6], [0.4]])      # predicted 1, 0, 1, 0
    target = np.array([[1], [0], [0], [0]])               # the third is wrong
    assert accuracy_metric(target, probs) == pytest.approx(3 / 4)
    assert accuracy_metric(target[:, 0], probs) == pytest.approx(3 / 4)
    assert accuracy_metric(target.astype(np.float32), probs) == pytest.approx(3 / 4)
    true, pred, k = metrics.outputs_to_labels(target, probs)
    np.testing.assert_array_equal(true, [1, 0, 0, 0])
    np.testing.assert_array_equal(pred, [1, 0, 1, 0])
    assert k == 2
    # K = 2: true (1, 0, 0, 0), pred (1, 0, 1, 0): n = [[2, 1], [0, 1]], IoU = (2/3, 1/2) -> 7/12
    assert mean_iou_metric(target, probs) == pytest.approx((2 / 3 + 1 / 2) / 2)
    with pytest.raises(ValueError, match=r"one output channel"):
        accuracy_metric(np.zeros((4, 2)), probs)


def test_outputs_to_labels_thresholds_logits_at_zero():
    logits = np.array([[0.25], [-0.25], [3.0]])          # sigmoid: 0.56, 0.44, 0.95 -> classes 1, 0, 1
    _, pred, k = metrics.outputs_to_labels(np.array([1, 0, 1]), logits, from_logits=True)
    assert k == 2 and pred.tolist() == [1, 0, 1]
    _, pred, _ = metrics.outputs_to_labels(np.array([1, 0, 1]), logits)          # probabilities: 0.5
    assert pred.tolist() == [0, 0, 1]


@pytest.mark.parametrize("from_logits", [None, True])
def test_model_without_activation_and_a_sigmoid_loss_scores_its_logits_at_zero(from_logits):
    """A model ending in a plain Conv2D(1, 1) outputs logits that the binary cross-entropy takes through a
    sigmoid. Logits of 0.25 are probability 0.56: foreground everywhere, which is every target, so accuracy
    and mean IoU are 1. Thresholding the raw logits at 0.5 called them background (accuracy 0)."""
    model = Sequential([Conv2D(1, 1, input_shape=(2, 2, 1))])
    model.compile("sgd", loss=BinaryCrossentropy(from_logits=from_logits), metrics=["accuracy", "mean_iou"])
    model.layers[0].set_weights([np.zeros((1, 1, 1, 1)), np.array([0.25])])
    x = np.ones((2, 2, 2, 1), dtype=np.float32)
    y = np.ones((2, 2, 2, 1), dtype=np.float32)
    _, accuracy, miou = model.test_on_batch(x, y)
    assert accuracy == pytest.approx(1.0) and miou == pytest.approx(1.0)
