"""Metrics for classification and segmentation, all read off one confusion matrix.

Classification (one-vs-rest for each class c, over M samples)
---------------------------------------------------------------
    TP_c = samples of class c predicted as c          FP_c = samples of another class predicted as c
    FN_c = samples of class c predicted as another    TN_c = M - TP_c - FP_c - FN_c

    accuracy    = (TP + TN) / (TP + TN + FP + FN)    in the binary case (c = the positive class);
                  with K classes: correct / all = sum_c TP_c / M
    precision_c = TP_c / (TP_c + FP_c)               of the samples called c, the fraction that are c
    recall_c    = TP_c / (TP_c + FN_c)               of the samples that are c, the fraction called c

Segmentation (Long, Shelhamer and Darrell, "Fully Convolutional Networks", 2015; pixels are the samples)
------------------------------------------------------------------------------------------------------
    n_ij = number of pixels of true class i predicted as class j        (the confusion matrix, K x K)
    t_i  = sum_j n_ij    pixels whose true class is i                   (row sum, "support")
    p_j  = sum_i n_ij    pixels predicted as class j                    (column sum)

    pixel accuracy      = sum_i n_ii / sum_i t_i
    mean class accuracy = (1/K') sum_i n_ii / t_i                       (= macro recall)
    IoU_i               = n_ii / (t_i + p_i - n_ii)                     (intersection / union)
    mean IoU            = (1/K') sum_i IoU_i
    Dice_i              = 2 n_ii / (t_i + p_i)                          (= F1 of class i = 2 IoU_i / (1 + IoU_i))
    precision_i         = n_ii / p_i,     recall_i = n_ii / t_i

so TP_i = n_ii, FP_i = p_i - n_ii, FN_i = t_i - n_ii, and IoU_i = TP / (TP + FP + FN), Dice_i = 2TP / (2TP + FP + FN).

K' and the 0/0 policy
---------------------
Each per-class value is a ratio, and a ratio is 0/0 when its denominator counts nothing: IoU and Dice when class
i is absent from both truth and prediction (t_i = p_i = 0), recall when class i is absent from the truth
(t_i = 0), precision when class i is never predicted (p_i = 0). Every function takes `absent` to say what 0/0
becomes:

    absent='ignore'  (default)  the per-class value is NaN and the means leave it out: K' counts only the
                                classes with a defined value (FCN's convention; a class that a dataset or an
                                image does not contain cannot be segmented well or badly)
    absent='zero'               0/0 = 0, and the means divide by K
    absent='one'                0/0 = 1 (nothing to find, nothing wrongly found: perfect), means divide by K

A class present in the truth but never predicted is *not* 0/0: its IoU, Dice and recall are 0/t_i = 0 and they
pull the means down. Likewise a class predicted but absent from the truth has IoU 0 and precision 0.

Dataset-level versus per-image IoU
----------------------------------
`ConfusionMatrix` sums n_ij over every pixel of every image and computes IoU once ("dataset IoU", what FCN,
PASCAL VOC and Cityscapes report): big images and big objects weigh more. `per_image_mean_iou` computes the mean
IoU of each image on its own and averages those numbers: every image weighs the same, so a tiny object that is
missed costs as much as a large one (and a class absent from an image is left out of that image's mean). The
two numbers differ in general; test_metrics.py builds an example.

Stateful metrics (Keras's protocol: update_state, result, reset_state)
----------------------------------------------------------------------
`MeanIoU`, `IoU`, `OneHotMeanIoU`, `OneHotIoU`, `Accuracy`, `BinaryAccuracy`, `CategoricalAccuracy`,
`SparseCategoricalAccuracy`, `Precision`, `Recall`, with Keras's names and arguments, keep counts (a confusion
matrix; a weighted total and its weight) over every batch since the last reset_state, and result() computes
the ratio once, of those sums. fit and evaluate use them: an epoch's mean IoU is the IoU of the whole epoch's
confusion matrix, not a mean of per-batch IoUs (IoU is not additive), and the history, the progress line and
evaluate's result show that one number. compile turns a name into a stateful metric (`by_name`: 'accuracy',
'mean_iou', with the loss's ignore_index) and a function metric(y_true, y_out) into a MeanMetricWrapper.
`get(name, ignore_index=None, from_logits=False)` still returns the plain functions (`accuracy_metric`,
`mean_iou_metric`), one batch's value, with the ignore index bound when one is given.

The package, one job a module:

    confusion.py       counting: confusion_matrix, confusion_matrices_per_image (and the label checks)
    scores.py          the ratios of a matrix: accuracy, precision, recall, iou, dice and their means
    results.py         ConfusionMatrix (a whole dataset, batch by batch), format_table, named_results
    keras_metrics.py   outputs_to_labels, the functions accuracy_metric, mean_iou_metric and get, and NamedMetric /
                       by_name, the stateful metric compile makes of a name
    metric.py          the protocol: Metric, Mean, MeanMetricWrapper
    iou_metrics.py     IoU, MeanIoU, OneHotIoU, OneHotMeanIoU
    accuracy_metrics.py  Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy
    confusion_metrics.py Precision, Recall
"""
from .accuracy_metrics import Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy
from .confusion import confusion_matrices_per_image, confusion_matrix
from .confusion_metrics import Precision, Recall
from .iou_metrics import IoU, MeanIoU, OneHotIoU, OneHotMeanIoU
from .keras_metrics import METRICS, NamedMetric, accuracy_metric, by_name, get, mean_iou_metric, outputs_to_labels
from .metric import Mean, MeanMetricWrapper, Metric
from .results import TABLE_COLUMNS, ConfusionMatrix, format_table, named_results
from .scores import (
    ABSENT_POLICIES,
    accuracy,
    accuracy_score,
    dice,
    iou,
    mean_class_accuracy,
    mean_dice,
    mean_iou,
    per_image_mean_iou,
    pixel_accuracy,
    precision,
    recall,
)

__all__ = ["Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "IoU", "Mean", "MeanIoU", "MeanMetricWrapper",
           "Metric", "NamedMetric", "OneHotIoU", "OneHotMeanIoU", "Precision", "Recall", "SparseCategoricalAccuracy",
           "by_name",
           "ABSENT_POLICIES", "METRICS", "TABLE_COLUMNS", "ConfusionMatrix", "accuracy", "accuracy_metric",
           "accuracy_score", "confusion_matrices_per_image", "confusion_matrix", "dice", "format_table", "get", "iou",
           "mean_class_accuracy", "mean_dice", "mean_iou", "mean_iou_metric", "named_results", "outputs_to_labels",
           "per_image_mean_iou", "pixel_accuracy", "precision", "recall"]
