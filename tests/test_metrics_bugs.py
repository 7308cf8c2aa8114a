"""Two metric bugs of issue 13, each pinned by a test that failed before its fix."""
import numpy as np
import pytest

from tinyseg import layers, metrics
from tinyseg.models import Sequential


def test_confusion_matrix_per_image_mean_iou_follows_absent():
    """Image 0 holds only class 0, predicted right: class 1's IoU is 0/0. With absent='one' that image's mIoU
    is (1 + 1) / 2 = 1, with 'zero' (1 + 0) / 2 = 1/2, with 'ignore' 1 (class 1 left out)."""
    y_true = np.zeros((1, 2, 2), dtype=np.int64)
    cm = metrics.ConfusionMatrix(2, per_image=True).update(y_true, y_true)
    assert cm.result(absent="ignore")["per_image_mean_iou"] == pytest.approx(1.0)
    assert cm.result(absent="zero")["per_image_mean_iou"] == pytest.approx(0.5)
    assert cm.result(absent="one")["per_image_mean_iou"] == pytest.approx(1.0)
    # the same numbers as the one-shot function, for each policy
    for absent in ("ignore", "zero", "one"):
        assert cm.result(absent=absent)["per_image_mean_iou"] == pytest.approx(
            metrics.per_image_mean_iou(y_true, y_true, 2, absent=absent))


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
    model = Sequential([layers.Conv2D(1, 1, input_shape=(2, 2, 1))])
    model.compile("sgd", loss=__import__("tinyseg").losses.BinaryCrossentropy(from_logits=from_logits),
                  metrics=["accuracy", "mean_iou"])
    model.layers[0].set_weights([np.zeros((1, 1, 1, 1)), np.array([0.25])])
    x = np.ones((2, 2, 2, 1), dtype=np.float32)
    y = np.ones((2, 2, 2, 1), dtype=np.float32)
    _, accuracy, miou = model.test_on_batch(x, y)
    assert accuracy == pytest.approx(1.0) and miou == pytest.approx(1.0)
