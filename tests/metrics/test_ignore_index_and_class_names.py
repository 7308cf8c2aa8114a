"""The compile metrics honour an ignore index, and results carry class names (counted by hand)."""
import json

import numpy as np
import pytest

from tinyseg import metrics
from tinyseg.metrics import ConfusionMatrix, accuracy_metric, format_table, mean_iou_metric, named_results

# 2 images of 2x3 pixels, 3 classes, label 9 = void
Y_TRUE = np.array([[[0, 0, 1], [9, 2, 2]],
                   [[1, 1, 9], [9, 0, 2]]])
Y_PRED = np.array([[[0, 1, 1], [2, 2, 0]],
                   [[1, 1, 0], [1, 0, 2]]])


def scores(pred, k=3):
    """One-hot scores whose argmax is pred."""
    return np.eye(k, dtype=np.float32)[pred]


def test_accuracy_metric_leaves_void_out_by_hand():
    # non-void pixels: 9; correct among them: (0,0) (1,2)... count: img0 0->0 y, 0->1 n, 1->1 y, 2->2 y, 2->0 n;
    # img1 1->1 y, 1->1 y, 0->0 y, 2->2 y  => 7 of 9
    assert accuracy_metric(Y_TRUE, scores(Y_PRED), ignore_index=9) == pytest.approx(7 / 9)
    # without the ignore index the void label 9 is simply another label, never predicted: 7 of 12
    assert accuracy_metric(Y_TRUE, scores(Y_PRED)) == pytest.approx(7 / 12)


def test_mean_iou_metric_leaves_void_out_by_hand():
    # confusion over the 9 kept pixels (rows true, cols pred):
    #   class 0: true at 3 pixels, predicted 0 at 2 of them, 1 at one      -> n00=2, n01=1
    #   class 1: true at 3 pixels, all predicted 1                          -> n11=3
    #   class 2: true at 3 pixels, predicted 2, 0, 2                        -> n22=2, n20=1
    # IoU0 = 2 / (3 + 3 - 2) = 1/2; IoU1 = 3 / (3 + 4 - 3) = 3/4; IoU2 = 2 / (3 + 2 - 2) = 2/3
    expected = (1 / 2 + 3 / 4 + 2 / 3) / 3
    assert mean_iou_metric(Y_TRUE, scores(Y_PRED), ignore_index=9) == pytest.approx(expected)
    # what the void pixels were predicted as (2, 0, 1) does not matter
    other = Y_PRED.copy()
    other[Y_TRUE == 9] = 0
    assert mean_iou_metric(Y_TRUE, scores(other), ignore_index=9) == pytest.approx(expected)


def test_get_binds_the_ignore_index_and_keeps_the_name():
    assert metrics.get("accuracy") is accuracy_metric                 # no ignore index: the metric itself
    acc = metrics.get("accuracy", ignore_index=9)
    miou = metrics.get("mean_iou", ignore_index=9)
    assert acc.name == "accuracy" and miou.name == "mean_iou"
    assert acc(Y_TRUE, scores(Y_PRED)) == pytest.approx(7 / 9)
    assert miou(Y_TRUE, scores(Y_PRED)) == pytest.approx(mean_iou_metric(Y_TRUE, scores(Y_PRED), 9))
    with pytest.raises(ValueError, match="ignore_index"):
        metrics.get("accuracy", ignore_index="void")


def test_class_accuracy_and_named_results():
    result = ConfusionMatrix(3, ignore_index=9).update(Y_TRUE, Y_PRED).result()
    np.testing.assert_allclose(result["class_accuracy"], [2 / 3, 1, 2 / 3])
    names = ["road", "car", "tree"]
    text = format_table(result, names, columns=("iou", "class_accuracy"))
    assert text.splitlines()[0].split() == ["class", "IoU", "accuracy", "support"]
    car = next(line for line in text.splitlines() if line.startswith("car"))
    assert car.split() == ["car", "0.7500", "1.0000", "3"]
    data = json.loads(json.dumps(named_results(result, names)))        # JSON-ready
    assert data["per_class"]["road"]["iou"] == pytest.approx(0.5)
    assert data["per_class"]["tree"]["accuracy"] == pytest.approx(2 / 3)
    assert data["confusion_matrix"]["classes"] == names
    assert data["confusion_matrix"]["counts"] == [[2, 1, 0], [0, 3, 0], [1, 0, 2]]
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        named_results(result, names[:2])
