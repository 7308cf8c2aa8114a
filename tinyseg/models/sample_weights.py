"""fit's `sample_weight` and `class_weight`: checked before the first step, and turned into the weights the loss
takes (losses/base.py gives the reduction, Keras 3's: L = sum_m s_m l_m / M over the M positions).

    fit(x, y, sample_weight=s)       s (N,): one weight per sample (every pixel of image n weighs s_n), or
                                     s (N, H, W): one weight per pixel, for (N, H, W, K) outputs
    fit(x, y, class_weight={c: w})   every position weighs the weight of its true class (1 for a class the dict
                                     does not name), for classification (N,) and segmentation (N, H, W) alike
    evaluate(x, y, sample_weight=s), train_on_batch(x, y, sample_weight, class_weight), test_on_batch(x, y, s)
    a PyDataset or generator may give batches (x, y, sample_weight)
    validation_data=(x_val, y_val, sample_weight_val)

Keras's rules, kept: class_weight and sample_weight not both at once; class_weight applies to training only,
not to validation; one-hot class targets (N, K) are read by their argmax, one-channel sigmoid targets by rounding
to 0 / 1. Where Keras 3.15 (torch backend) does otherwise, tinyseg says no instead of guessing:

    a weight that is negative, NaN or inf           Keras trains on it (a NaN loss); refused here
    sample_weight or class_weight that are all 0    Keras reports a loss of 0 and learns nothing; refused
    class_weight naming a class the model lacks     Keras ignores the key; refused (a typo, or the wrong model)
    class_weight with integer masks (N, H, W)       Keras fails inside fit (it reads one label per sample);
                                                    supported here, one weight per pixel
    class_weight with one-hot masks (N, H, W, K)    Keras fails likewise; refused here, with the way out
    sample_weight (N,) for (N, H, W, K) outputs     Keras multiplies it into the last axis (W), an error or,
                                                    when N == W, silently wrong; here each image weighs s_n
    class_weight with mean squared error            there are no classes to weigh; refused

A streamed batch whose weights are all 0 is allowed (its loss is 0, as in Keras); whole arrays of zeros are not.

An epoch's loss is, as in Keras, the batch losses averaged with batch-size weights: sum_b n_b L_b / sum_b n_b,
each L_b = sum_m s_m l_m / M_b over its own batch. Weighted metrics are called as metric(y_true, y_pred,
sample_weight=s) on each batch and averaged the same way.
"""

import numpy as np

from ..losses.base import _matches, _position_weights, _shape_text
from ..validation import integer, real_number


def _class_key(c, classes):
    """A class_weight key as a class index of the model's output, else an error naming class_weight."""
    c = integer(c, "class_weight keys", expected="integer class indices")
    if not 0 <= c < classes:
        raise ValueError(f"class_weight names class {c}, but the model's output has {classes} classes "
                         f"(0 to {classes - 1})")
    return c


def check_class_weight(model, class_weight):
    """class_weight {class index: weight} as a table of one float64 weight per class of the model's output
    (1 for the classes it does not name); None stays None. Raises, naming class_weight, for anything else."""
    if class_weight is None:
        return None
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight must be a dict {{class index: weight}}, got {type(class_weight).__name__}")
    if model._graph is not None and len(model.outputs) != 1:
        raise ValueError("class_weight is only supported for models with a single output (as in Keras)")
    if model.loss.activation is None:
        raise ValueError(f"class_weight weighs classes, but loss '{model.loss.name}' has no classes (it compares "
                         "values); pass sample_weight instead")
    k = model.output_shape[-1]
    classes = 2 if k == 1 else k                     # one sigmoid channel: classes 0 and 1
    table = np.ones(classes)
    for c, w in class_weight.items():
        table[_class_key(c, classes)] = real_number(w, f"class_weight[{c}]", low=0, expected="a finite number >= 0")
    if not table.any():
        raise ValueError("class_weight gives every class the weight 0: the loss would be 0 whatever the model does")
    return table


def class_weights_of(table, y, pred_shape, ignore_index=None, argument="y"):
    """The weight of each position's true class, shape pred_shape[:-1] (0 where y is ignore_index).

    y: class indices (N, ...) (a trailing axis of 1 accepted; floats are rounded, as Keras does), one-hot rows
    (N, K) (their argmax), or 0/1 targets for one sigmoid channel. One-hot masks (N, H, W, K) are refused."""
    y = np.asarray(y)
    pred_shape = tuple(pred_shape)
    if pred_shape[-1] == 1:                                          # one sigmoid channel: round to 0 / 1
        labels = y.reshape(y.shape[:-1]) if _matches(y.shape, pred_shape) else y
    elif _matches(y.shape, pred_shape):                              # one-hot
        if len(pred_shape) > 2:
            raise ValueError(f"class_weight with one-hot masks {y.shape} is not supported (Keras refuses it too): "
                             "pass the masks as integer labels (N, H, W) with "
                             "loss='sparse_categorical_crossentropy', or a per-pixel sample_weight")
        labels = y.argmax(axis=-1)
    else:
        labels = y[..., 0] if y.ndim == len(pred_shape) and y.shape[-1] == 1 else y
    if not _matches(labels.shape, pred_shape[:-1]):
        raise ValueError(f"{argument}: targets of shape {y.shape} do not fit outputs {_shape_text(pred_shape)}")
    labels = np.round(labels).astype(np.int64) if labels.dtype.kind in "fb" else labels.astype(np.int64)
    valid = labels != ignore_index if ignore_index is not None else np.ones(labels.shape, bool)
    if np.any(valid & ((labels < 0) | (labels >= len(table)))):
        bad = labels[valid & ((labels < 0) | (labels >= len(table)))].flat[0]
        raise ValueError(f"{argument}: label {bad} has no class weight (the model has {len(table)} classes)")
    return np.where(valid, table[np.where(valid, labels, 0)], 0.0)


def check_sample_weight(sample_weight, n, pred_shape, argument="sample_weight"):
    """sample_weight for n samples and predictions of pred_shape (None for an unknown size), as a NumPy array:
    (n,) or pred_shape[:-1] (a trailing axis of 1 accepted), finite, >= 0. None stays None."""
    if sample_weight is None:
        return None
    if not isinstance(sample_weight, np.ndarray):
        hint = " (convert a list with np.asarray)" if isinstance(sample_weight, (list, tuple)) else ""
        raise TypeError(f"{argument} must be a NumPy array, got {type(sample_weight).__name__}{hint}")
    if sample_weight.ndim == 0 or len(sample_weight) != n:
        raise ValueError(f"{argument} has shape {sample_weight.shape}: expected one weight per sample ({n} "
                         "samples), (N,), or one per position of the outputs")
    try:
        _position_weights(sample_weight, pred_shape, argument)
    except (TypeError, ValueError) as err:
        raise type(err)(str(err).replace(f"{argument}: sample_weight", argument)) from None
    return sample_weight


def refuse_all_zero(weights, argument):
    """Whole arrays of weights that are all 0 (the loss would be 0 whatever the model does)."""
    if weights is not None and weights.size and not np.any(weights):
        raise ValueError(f"{argument} is 0 everywhere: the loss would be 0 whatever the model does")


def check_loss_takes_weights(loss):
    """A Loss subclass whose forward has no sample_weight argument cannot be weighted: say so before a step."""
    import inspect
    try:
        params = inspect.signature(loss.forward).parameters
    except (TypeError, ValueError):
        return
    if "sample_weight" not in params and not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        raise TypeError(f"loss {type(loss).__name__}.forward(y_true, y_pred) takes no sample_weight; give it "
                        "forward(y_true, y_pred, sample_weight=None) (see tinyseg/losses/base.py)")
