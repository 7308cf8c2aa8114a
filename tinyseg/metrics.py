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

The models' compile(metrics=[...]) uses `get(name, ignore_index=None)`, which returns a callable
metric(y_true, y_out) on the model's targets and raw outputs (see `accuracy_metric` and `mean_iou_metric`),
with the ignore index bound when one is given: pixels labelled ignore_index count in no metric.
"""
import numpy as np

ABSENT_POLICIES = ("ignore", "zero", "one")


# --------------------------------------------------------------------------------------------------------------
# The confusion matrix
# --------------------------------------------------------------------------------------------------------------

def _check_num_classes(num_classes):
    if not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return int(num_classes)


def _check_ignore_index(ignore_index):
    if ignore_index is None:
        return None
    if not isinstance(ignore_index, (int, np.integer)) or isinstance(ignore_index, bool):
        raise ValueError(f"ignore_index must be an integer class index or None, got {ignore_index!r}")
    return int(ignore_index)


def _as_class_indices(name, y):
    """y as an int64 array of class indices; a TypeError for scores, probabilities or NaN."""
    y = np.asarray(y)
    if y.dtype.kind in "iub":
        return y.astype(np.int64, copy=False)
    if y.dtype.kind in "fc":
        nan = " and contains NaN" if np.isnan(y).any() else ""
        raise TypeError(f"{name} has dtype {y.dtype}{nan}; pass integer class indices (for scores or "
                        f"probabilities of shape (..., K), take scores.argmax(axis=-1)), not floats")
    raise TypeError(f"{name} must hold integer class indices, got dtype {y.dtype}")


def _check_range(name, y, num_classes, keep, ignore_index):
    """ValueError naming the first value of y outside [0, K) among the pixels that count (`keep`)."""
    bad = (y < 0) | (y >= num_classes)
    if keep is not None:
        bad &= keep
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        also = f" or equal ignore_index={ignore_index}" if ignore_index is not None else ""
        raise ValueError(f"{name} contains {int(y[where])} (first at index {where}); class indices must lie in "
                         f"[0, {num_classes}) for num_classes={num_classes}{also}")


def _labels(y_true, y_pred, num_classes, ignore_index):
    """Validate a pair of label arrays; return the true and predicted classes of the pixels that count, and the
    boolean mask of those pixels (None when nothing is ignored)."""
    num_classes = _check_num_classes(num_classes)
    ignore_index = _check_ignore_index(ignore_index)
    y_true = _as_class_indices("y_true", y_true)
    y_pred = _as_class_indices("y_pred", y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got y_true {y_true.shape} and "
                         f"y_pred {y_pred.shape}")
    keep = None if ignore_index is None else (y_true != ignore_index)
    _check_range("y_true", y_true, num_classes, keep, ignore_index)
    _check_range("y_pred", y_pred, num_classes, keep, None)     # predictions on ignored pixels do not matter
    return y_true, y_pred, keep


def confusion_matrix(y_true, y_pred, num_classes, ignore_index=None):
    """n[i, j] = number of samples (pixels) whose true class is i and predicted class is j.

    Parameters
    ----------
    y_true, y_pred : integer arrays of the same shape, any shape: labels (N,), masks (N, H, W), ...
                     Class indices in [0, num_classes); scores must be turned into indices first (argmax).
    num_classes    : K.
    ignore_index   : a value of y_true whose pixels are left out entirely (e.g. 255 for VOC's object borders);
                     y_pred is not looked at there.

    Returns
    -------
    (K, K) int64: rows are true classes, columns predicted classes; n.sum() = number of non-ignored pixels.

    How: the pair (i, j) is numbered k = K*i + j, one integer in [0, K^2), and np.bincount counts how often each
    k occurs in a single pass. It computes exactly the naive double loop

        for i in range(K): for j in range(K): n[i, j] = sum((y_true == i) & (y_pred == j))

    which reads the arrays K^2 times (tests/test_metrics.py checks the two agree).
    """
    y_true, y_pred, keep = _labels(y_true, y_pred, num_classes, ignore_index)
    if keep is not None:
        y_true, y_pred = y_true[keep], y_pred[keep]
    k = int(num_classes)
    pair = k * y_true.ravel() + y_pred.ravel()
    return np.bincount(pair, minlength=k * k).reshape(k, k).astype(np.int64)


def confusion_matrices_per_image(y_true, y_pred, num_classes, ignore_index=None):
    """One confusion matrix per image: y_true, y_pred (N, ...) -> (N, K, K) int64, n[b] for image b alone.

    Same bincount, with the image index b folded into the pair number: k = b*K^2 + K*i + j.
    """
    y_true, y_pred, keep = _labels(y_true, y_pred, num_classes, ignore_index)
    if y_true.ndim < 1:
        raise ValueError("y_true and y_pred must have a batch axis first, shape (N, ...), got a scalar")
    n, k = y_true.shape[0], int(num_classes)
    image = np.broadcast_to(np.arange(n).reshape((n,) + (1,) * (y_true.ndim - 1)), y_true.shape)
    if keep is not None:
        y_true, y_pred, image = y_true[keep], y_pred[keep], image[keep]
    pair = k * k * image.ravel() + k * y_true.ravel() + y_pred.ravel()
    return np.bincount(pair, minlength=n * k * k).reshape(n, k, k).astype(np.int64)


# --------------------------------------------------------------------------------------------------------------
# Metrics of a confusion matrix. Each accepts one matrix (K, K) or a stack (..., K, K).
# --------------------------------------------------------------------------------------------------------------

def _check_cm(cm):
    cm = np.asarray(cm)
    if cm.ndim < 2 or cm.shape[-1] != cm.shape[-2]:
        raise ValueError(f"a confusion matrix must be square, shape (K, K) (or a stack (..., K, K)), "
                         f"got shape {cm.shape}")
    if cm.dtype.kind not in "iuf" or (cm < 0).any():
        raise ValueError("a confusion matrix holds non-negative counts")
    return cm.astype(np.float64)


def _check_absent(absent):
    if absent not in ABSENT_POLICIES:
        raise ValueError(f"absent must be one of {ABSENT_POLICIES}, got {absent!r}")
    return {"ignore": np.nan, "zero": 0.0, "one": 1.0}[absent]


def _ratio(num, den, absent="ignore"):
    """num / den elementwise, with 0/0 replaced as `absent` says (NaN, 0 or 1), and no warnings."""
    num, den = np.broadcast_arrays(np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64))
    out = np.full(num.shape, _check_absent(absent))
    np.divide(num, den, out=out, where=den > 0)
    return out


def _mean(values):
    """Mean over the last axis leaving out NaN; NaN if nothing is left. A float for a single vector."""
    values = np.asarray(values, dtype=np.float64)
    defined = ~np.isnan(values)
    out = _ratio(np.where(defined, values, 0.0).sum(axis=-1), defined.sum(axis=-1))
    return float(out) if out.ndim == 0 else out


def _scalar(x):
    return float(x) if np.ndim(x) == 0 else x


def _average(per_class, average):
    if average is None:
        return per_class
    if average == "macro":
        return _mean(per_class)
    raise ValueError(f"average must be None (per class) or 'macro', got {average!r}")


def _counts(cm):
    """n_ii, t_i (row sums: true), p_i (column sums: predicted) and the total, for (..., K, K)."""
    cm = _check_cm(cm)
    return (np.diagonal(cm, axis1=-2, axis2=-1), cm.sum(axis=-1), cm.sum(axis=-2),
            cm.sum(axis=(-2, -1)))


def accuracy(cm, average="micro", absent="ignore"):
    """Fraction of samples classified correctly.

    average='micro' (default): sum_i n_ii / sum_ij n_ij, one number (the same as `pixel_accuracy`); for two
    classes this is (TP + TN) / (TP + TN + FP + FN).
    average=None: the one-vs-rest accuracy of each class, (TP_i + TN_i) / M, shape (..., K).
    An empty matrix gives 0/0, replaced as `absent` says.
    """
    tp, t, p, total = _counts(cm)
    if average == "micro":
        return _scalar(_ratio(tp.sum(axis=-1), total, absent))
    if average is None:
        tn = total[..., None] - t - p + tp           # M - TP - FP - FN, with FP = p - TP and FN = t - TP
        return _ratio(tp + tn, total[..., None], absent)
    raise ValueError(f"average must be 'micro' (overall) or None (per class), got {average!r}")


def pixel_accuracy(cm, absent="ignore"):
    """sum_i n_ii / sum_i t_i: the fraction of (non-ignored) pixels labelled correctly."""
    return accuracy(cm, average="micro", absent=absent)


def precision(cm, average=None, absent="ignore"):
    """precision_i = n_ii / p_i (0/0 when class i is never predicted). average=None: (..., K); 'macro': mean."""
    tp, _, p, _ = _counts(cm)
    return _average(_ratio(tp, p, absent), average)


def recall(cm, average=None, absent="ignore"):
    """recall_i = n_ii / t_i (0/0 when class i is absent from the truth). average=None: (..., K); 'macro': mean."""
    tp, t, _, _ = _counts(cm)
    return _average(_ratio(tp, t, absent), average)


def mean_class_accuracy(cm, absent="ignore"):
    """(1/K') sum_i n_ii / t_i: per-class accuracy (= recall) averaged over the classes present in the truth."""
    return recall(cm, average="macro", absent=absent)


def iou(cm, absent="ignore"):
    """IoU_i = n_ii / (t_i + p_i - n_ii), shape (..., K); 0/0 when class i is in neither truth nor prediction."""
    tp, t, p, _ = _counts(cm)
    return _ratio(tp, t + p - tp, absent)


def mean_iou(cm, absent="ignore"):
    """(1/K') sum_i IoU_i over the classes whose IoU is defined (all K unless absent='ignore')."""
    return _mean(iou(cm, absent))


def dice(cm, absent="ignore"):
    """Dice_i = 2 n_ii / (t_i + p_i), shape (..., K); 0/0 when class i is in neither truth nor prediction."""
    tp, t, p, _ = _counts(cm)
    return _ratio(2.0 * tp, t + p, absent)


def mean_dice(cm, absent="ignore"):
    """(1/K') sum_i Dice_i over the classes whose Dice is defined."""
    return _mean(dice(cm, absent))


# --------------------------------------------------------------------------------------------------------------
# On labels
# --------------------------------------------------------------------------------------------------------------

def accuracy_score(y_true, y_pred):
    """Fraction of positions where y_true == y_pred; both integer class indices of the same shape.

    NaN for empty inputs. (For scores, take argmax first; with ignored pixels, use ConfusionMatrix.)
    """
    y_true = _as_class_indices("y_true", y_true)
    y_pred = _as_class_indices("y_pred", y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got y_true {y_true.shape} and "
                         f"y_pred {y_pred.shape}")
    return float(_ratio(np.count_nonzero(y_true == y_pred), y_true.size))


def per_image_mean_iou(y_true, y_pred, num_classes, ignore_index=None, absent="ignore"):
    """The mean IoU of each image computed on its own, averaged over images.

    y_true, y_pred: (N, H, W) (any (N, ...)) integer masks. Image b gets mIoU_b = mean_iou(n^(b)) from its own
    confusion matrix, so a class absent from image b is left out of mIoU_b (absent='ignore'); images with no
    defined IoU at all (every pixel ignored) are left out of the average:

        per-image mIoU = (1/N') sum_b mIoU_b

    Unlike the dataset-level `mean_iou(confusion_matrix(...))`, which pools all pixels before dividing, every
    image weighs the same here however many pixels its objects cover.
    """
    return _mean(mean_iou(confusion_matrices_per_image(y_true, y_pred, num_classes, ignore_index), absent))


class ConfusionMatrix:
    """Accumulates the confusion matrix over a whole dataset, batch by batch.

        cm = ConfusionMatrix(num_classes=3, ignore_index=255)
        for x, y in batches:
            cm.update(y, model.predict(x).argmax(axis=-1))
        print(format_table(cm.result()))

    update(y_true, y_pred) adds confusion_matrix(y_true, y_pred) to the running `matrix`; since counts add, the
    result after any split into batches equals the one-shot result on all the data. With per_image=True it
    also keeps the sum and count of per-image mean IoUs (the first axis of each batch indexes images), and
    result() reports their average as 'per_image_mean_iou'.
    """

    def __init__(self, num_classes, ignore_index=None, per_image=False):
        self.num_classes = _check_num_classes(num_classes)
        self.ignore_index = _check_ignore_index(ignore_index)
        self.per_image = bool(per_image)
        self.reset()

    def reset(self):
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        # one (K, K) matrix per image seen: result(absent=...) decides what each image's 0/0 IoUs mean
        self._image_matrices = []

    def update(self, y_true, y_pred):
        if self.per_image:
            per_image = confusion_matrices_per_image(y_true, y_pred, self.num_classes, self.ignore_index)
            self.matrix += per_image.sum(axis=0)
            self._image_matrices.extend(per_image)
        else:
            self.matrix += confusion_matrix(y_true, y_pred, self.num_classes, self.ignore_index)
        return self

    def result(self, absent="ignore"):
        """Every metric of the accumulated matrix: per-class arrays (K,) and their means (floats)."""
        cm = self.matrix
        out = {
            "confusion_matrix": cm.copy(),
            "support": cm.sum(axis=1),
            "accuracy": pixel_accuracy(cm, absent),
            "pixel_accuracy": pixel_accuracy(cm, absent),
            "mean_class_accuracy": mean_class_accuracy(cm, absent),
            "class_accuracy": recall(cm, absent=absent),          # n_ii / t_i: the accuracy on class i's pixels
            "iou": iou(cm, absent),
            "mean_iou": mean_iou(cm, absent),
            "dice": dice(cm, absent),
            "mean_dice": mean_dice(cm, absent),
            "precision": precision(cm, absent=absent),
            "mean_precision": precision(cm, "macro", absent),
            "recall": recall(cm, absent=absent),
            "mean_recall": recall(cm, "macro", absent),
        }
        if self.per_image:
            k = self.num_classes
            images = np.array(self._image_matrices, dtype=np.int64).reshape(-1, k, k)
            out["per_image_mean_iou"] = _mean(mean_iou(images, absent))        # NaN before any image
        return out


TABLE_COLUMNS = {"iou": ("IoU", "mean_iou"), "class_accuracy": ("accuracy", "mean_class_accuracy"),
                 "dice": ("Dice", "mean_dice"), "precision": ("precision", "mean_precision"),
                 "recall": ("recall", "mean_recall")}


def format_table(result, class_names=None, columns=("iou", "dice", "precision", "recall")):
    """A printable table of per-class values (default IoU, Dice, precision, recall) and support, then the means.

    result: the dict of ConfusionMatrix.result(). Undefined (NaN) values print as '-'.
    columns: per-class keys of `result` to show, from TABLE_COLUMNS ('class_accuracy' is n_ii / t_i, the same
    number as recall, under the name segmentation papers give it: the accuracy on the pixels of class i).
    """
    k = len(result["iou"])
    if class_names is None:
        class_names = [str(i) for i in range(k)]
    if len(class_names) != k:
        raise ValueError(f"class_names has {len(class_names)} names for {k} classes")
    unknown = [c for c in columns if c not in TABLE_COLUMNS]
    if unknown:
        raise ValueError(f"format_table: unknown columns {unknown}; choose from {sorted(TABLE_COLUMNS)}")
    width = max([5] + [len(str(name)) for name in class_names] + [len("mean class accuracy")])

    def cell(value):
        return f"{'-':>11}" if np.isnan(value) else f"{value:11.4f}"

    lines = [f"{'class':<{width}}" + "".join(f"{TABLE_COLUMNS[c][0]:>11}" for c in columns) + f"{'support':>11}"]
    lines.append("-" * len(lines[0]))
    for i, name in enumerate(class_names):
        lines.append(f"{str(name):<{width}}" + "".join(cell(result[c][i]) for c in columns)
                     + f"{int(result['support'][i]):>11d}")
    lines.append("-" * len(lines[0]))
    lines.append(f"{'mean':<{width}}" + "".join(cell(result[TABLE_COLUMNS[c][1]]) for c in columns))
    lines.append(f"{'pixel accuracy':<{width}}" + cell(result["pixel_accuracy"]))
    lines.append(f"{'mean class accuracy':<{width}}" + cell(result["mean_class_accuracy"]))
    if "per_image_mean_iou" in result:
        lines.append(f"{'per-image mean IoU':<{width}}" + cell(result["per_image_mean_iou"]))
    return "\n".join(lines)


def named_results(result, class_names):
    """ConfusionMatrix.result() as plain JSON data, every per-class number under its class's name.

        {"mean_iou": ..., "pixel_accuracy": ..., "mean_class_accuracy": ..., ...,
         "per_class": {"Sky": {"iou": ..., "accuracy": ..., "dice": ..., "precision": ..., "recall": ...,
                               "support": ...}, ...},
         "confusion_matrix": {"rows": "true class", "columns": "predicted class", "classes": [names],
                              "counts": [[...], ...]}}

    Undefined values (NaN: a class in neither truth nor prediction) become null.
    """
    k = len(result["iou"])
    if len(class_names) != k:
        raise ValueError(f"named_results: {len(class_names)} class names for {k} classes")

    def number(v):
        v = float(v)
        return None if np.isnan(v) else v

    per_class = {}
    for i, name in enumerate(class_names):
        per_class[str(name)] = {"iou": number(result["iou"][i]), "accuracy": number(result["class_accuracy"][i]),
                                "dice": number(result["dice"][i]), "precision": number(result["precision"][i]),
                                "recall": number(result["recall"][i]), "support": int(result["support"][i])}
    out = {key: number(result[key]) for key in ("mean_iou", "pixel_accuracy", "mean_class_accuracy", "mean_dice",
                                                "mean_precision", "mean_recall", "per_image_mean_iou")
           if key in result}
    out["per_class"] = per_class
    out["confusion_matrix"] = {"rows": "true class", "columns": "predicted class",
                               "classes": [str(n) for n in class_names],
                               "counts": np.asarray(result["confusion_matrix"]).astype(int).tolist()}
    return out


# --------------------------------------------------------------------------------------------------------------
# Keras-facing metrics: metric(y_true, y_out) on a model's targets and raw outputs
# --------------------------------------------------------------------------------------------------------------

def outputs_to_labels(y_true, y_out, from_logits=False):
    """Turn a model's targets and outputs into class indices: (true (...), predicted (...), K).

    y_out: scores (N, K) or (N, H, W, K), channels last. Predicted class = argmax over the last axis; with one
           channel, class 1 where the probability is above 1/2, and K = 2: y_out > 0.5 for probabilities (a
           model ending in a sigmoid), y_out > 0 for logits (from_logits=True: a model without an output
           activation whose loss applies the sigmoid; sigmoid(z) > 1/2 exactly when z > 0).
    y_true: one of
           - one-hot (or soft) targets of y_out's shape            -> argmax over the last axis
             (with one channel: 1 where y_true > 0.5)
           - class indices of shape y_out.shape[:-1], or y_out.shape[:-1] + (1,)   (Keras's "sparse" targets);
             floats are accepted when they are whole numbers.
    """
    y_out = np.asarray(y_out)
    y_true = np.asarray(y_true)
    if y_out.ndim < 2:
        raise ValueError(f"y_out must be scores with channels last, (N, K) or (N, H, W, K), got shape {y_out.shape}")
    k = y_out.shape[-1]
    if k == 1:
        pred = (y_out[..., 0] > (0.0 if from_logits else 0.5)).astype(np.int64)
        if y_true.shape not in (y_out.shape, y_out.shape[:-1]):
            raise ValueError(f"with one output channel, y_true must have shape {y_out.shape} or "
                             f"{y_out.shape[:-1]}, got {y_true.shape}")
        true = y_true.reshape(pred.shape) > 0.5
        return true.astype(np.int64), pred, 2
    pred = y_out.argmax(axis=-1)
    if y_true.shape == y_out.shape:                                     # one-hot
        return y_true.argmax(axis=-1), pred, k
    if y_true.shape in (y_out.shape[:-1], y_out.shape[:-1] + (1,)):     # sparse class indices
        true = y_true.reshape(pred.shape)
        if true.dtype.kind == "f":
            if not np.all(np.isfinite(true)) or np.any(true != np.round(true)):
                raise TypeError("sparse y_true holds non-integer values; pass class indices or one-hot targets")
            true = true.astype(np.int64)
        return true, pred, k
    raise ValueError(f"y_true must be one-hot of shape {y_out.shape} or class indices of shape "
                     f"{y_out.shape[:-1]}, got {y_true.shape}")


def accuracy_metric(y_true, y_out, ignore_index=None, from_logits=False):
    """Fraction of samples (or pixels) where the predicted class equals the true class; see outputs_to_labels
    for the shapes accepted. Positions whose true label is `ignore_index` count neither as right nor as wrong:

        accuracy = #{m in V : pred_m = true_m} / #V,    V = the positions with true_m != ignore_index

    (NaN when every position is ignored). from_logits: y_out are logits (see outputs_to_labels)."""
    true, pred, _ = outputs_to_labels(y_true, y_out, from_logits)
    if ignore_index is None:
        return accuracy_score(true, pred)
    keep = true != _check_ignore_index(ignore_index)
    return accuracy_score(true[keep], pred[keep])


def mean_iou_metric(y_true, y_out, ignore_index=None, from_logits=False):
    """Mean IoU over the batch (one confusion matrix for the whole batch); K = y_out.shape[-1], or 2 for one
    channel. Classes absent from both targets and predictions are left out; pixels whose true label is
    `ignore_index` are left out of the confusion matrix (as in ConfusionMatrix). from_logits: as in
    outputs_to_labels."""
    true, pred, k = outputs_to_labels(y_true, y_out, from_logits)
    return mean_iou(confusion_matrix(true, pred, k, ignore_index))


accuracy_metric.name = "accuracy"
mean_iou_metric.name = "mean_iou"

METRICS = {"accuracy": accuracy_metric, "acc": accuracy_metric, "mean_iou": mean_iou_metric}


def get(name, ignore_index=None, from_logits=False):
    """The metric callable for a name used in compile(metrics=[...]); a callable is returned unchanged.

    ignore_index: None gives the metric itself; an integer gives metric(y_true, y_out) with that ignore index
    bound (so compile can hand the loss's ignore_index to every metric), with the same `name`.
    from_logits: True binds from_logits=True (compile does, for a model whose outputs are logits that the
    loss turns into probabilities), so a one-channel output is thresholded at 0 instead of 0.5.
    """
    if callable(name):
        return name
    if not isinstance(name, str) or name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known metrics: {sorted(METRICS)}, or pass a function "
                         f"metric(y_true, y_out)")
    if not isinstance(from_logits, (bool, np.bool_)):
        raise TypeError(f"from_logits must be True or False, got {from_logits!r}")
    fn = METRICS[name]
    if ignore_index is None and not from_logits:
        return fn
    if ignore_index is not None:
        ignore_index = _check_ignore_index(ignore_index)

    def metric(y_true, y_out):
        return fn(y_true, y_out, ignore_index=ignore_index, from_logits=bool(from_logits))

    metric.name = fn.name
    metric.__name__ = fn.__name__ + ("" if ignore_index is None else f"_ignore_{ignore_index}") + \
        ("_from_logits" if from_logits else "")
    metric.__doc__ = f"{fn.__name__} with ignore_index={ignore_index}, from_logits={bool(from_logits)}.\n\n{fn.__doc__}"
    metric.ignore_index = ignore_index
    metric.from_logits = bool(from_logits)
    return metric
