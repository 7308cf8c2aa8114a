"""A whole dataset's confusion matrix, accumulated batch by batch, and its reports (a table, plain JSON)."""
import numpy as np

from .confusion import _check_ignore_index, _check_num_classes, confusion_matrices_per_image, confusion_matrix
from .scores import _mean, dice, iou, mean_class_accuracy, mean_dice, mean_iou, pixel_accuracy, precision, recall


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
