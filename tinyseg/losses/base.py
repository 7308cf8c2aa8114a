"""What every loss shares: the Loss contract, and the checks of arguments and targets.

    loss.forward(y_true, y_pred) -> float      (also loss(y_true, y_pred), Keras's argument order)
    loss.backward()              -> dL/dy_pred, from what forward remembered

Targets can be checked without predictions: `loss.check_targets(y_true, pred_shape)` raises the error that
forward would raise for a batch of them, given the shape the predictions will have (None for an axis whose
size is not known yet). `fit` runs it on the whole data set before the first step, so a label out of range
in the last batch stops the run before it starts, not after many steps.

Every argument is checked when the loss is made: class weights finite, non-negative and not all zero, of a
scale whose sum over a batch is finite in float32 (_check_weight_scale),
ignore_index an integer, smooth and the loss weights finite, from_logits True, False or None.

Sample weights (Keras's `sample_weight`, what fit(sample_weight=..., class_weight=...) hands the loss)
--------------------------------------------------------------------------------------------------------
    loss.forward(y_true, y_pred, sample_weight=s)

A prediction y_pred of shape (N, ..., K) has M = N * ... positions (N for (N, K) scores, N*H*W for (N, H, W, K)
masks); the last axis holds one position's classes or channels. s gives each position a weight s_m >= 0:

    s of shape (N,)            one weight per sample; every pixel of image n weighs s_n (reshaped to (N, 1, 1))
    s of shape (N, H, W)       one weight per position (y_pred.shape[:-1]); (N, H, W, 1) is accepted too

A loss with one value l_m per position (the cross-entropies, mean squared error) then reduces as Keras 3's
default reduction "sum_over_batch_size" does, dividing by the number of positions, NOT by the sum of weights:

    L = sum_m s_m l_m / M,        dL/dy_pred_m = s_m dl_m/dy_pred_m / M

(so doubling every weight doubles the loss, and weights of 0 shrink it; with s = 1 it is the plain mean).
A loss that ignores labels or weighs classes itself (SparseCategoricalCrossentropy's ignore_index and
class_weight: a weight v_m per position) keeps its own normalisation, by sum_m v_m instead of M, which is the
number of kept positions when there are no class weights: Keras's masked mean. Dice puts s_m inside its sums.
"""

import numpy as np

from ..validation import flag, integer, real_number


# --- argument checks (when a loss is made) --------------------------------------------------------------
def _from_logits(value):
    return flag(value, "from_logits", allow_none=True)


def _ignore_index(value):
    if value is None:
        return None
    return integer(value, "ignore_index", expected="an integer label (e.g. 255) or None")


def _finite_number(value, argument, positive=False):
    """A finite real number, > 0 if positive else >= 0."""
    return real_number(value, argument, low=0, low_open=positive,
                       expected=f"a finite number {'> 0' if positive else '>= 0'}")


def _class_weight(value):
    """A 1-D float64 array of finite, non-negative weights, one per class, not all zero (or None)."""
    if value is None:
        return None
    w = np.asarray(value)
    if w.dtype.kind not in "iuf" or w.ndim != 1 or w.size == 0:
        raise ValueError("class_weight must be a 1-D sequence of non-negative weights, one per class, got "
                         f"{value!r}")
    w = w.astype(np.float64)
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"class_weight must be a 1-D sequence of non-negative weights, one per class, finite; "
                         f"got {w.tolist()}")
    if not w.any():
        raise ValueError("class_weight is all zeros: every pixel would weigh nothing and the loss would be 0/0")
    _check_weight_scale(w)
    return w


MAX_POSITIONS = 2 ** 31      # the most positions (pixels) of one batch that the weighted sum must hold


def _check_weight_scale(w):
    """The loss sums the weights of a batch's positions in the predictions' dtype, float32 or float64, and
    divides by that sum. So every weight times MAX_POSITIONS must be finite in float32 (1e39 is inf there, and
    the loss then inf/inf = NaN, which fit blamed on a convolution's gradient), and no weight > 0 may round to
    0. Only the ratios of the weights count (L is a weighted mean), so scaling them all loses nothing."""
    limit = float(np.finfo(np.float32).max) / MAX_POSITIONS
    if w.max() > limit:
        raise ValueError(f"class_weight holds {w.max():g}; each weight must be at most {limit:.3g}, so that their "
                         f"sum over a batch ({MAX_POSITIONS} pixels at most) is finite in float32. Only their "
                         f"ratios matter: divide them all by {w.max():g}")
    lost = (w > 0) & (w.astype(np.float32) == 0)
    if lost.any():
        raise ValueError(f"class_weight holds {w[lost][0]:g}, which float32 rounds to 0; only the "
                         "ratios of the weights matter: multiply them all by the same number, or give that class 0")


# --- target checks (whole data sets, or one batch) --------------------------------------------------------
def _shape_text(shape):
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _matches(shape, expected):
    """shape equals expected, where an expected None matches any size."""
    return len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))


def _as_target_array(y_true, name):
    """y_true as an array of real numbers (integers, floats or booleans), else a TypeError naming it."""
    y = np.asarray(y_true) if not isinstance(y_true, np.ndarray) else y_true
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{name}: y_true must hold numbers, got dtype {y.dtype}")
    return y


def _check_pred(y_pred, name):
    if not isinstance(y_pred, np.ndarray) or y_pred.dtype.kind != "f":
        raise TypeError(f"{name}: y_pred must be a float array, got "
                        f"{getattr(y_pred, 'dtype', type(y_pred).__name__)}")
    if not np.all(np.isfinite(y_pred)):
        raise ValueError(f"{name}: y_pred contains NaN or inf (did training diverge? try a smaller learning rate)")


def _check_labels(y_true, pred_shape, name, num_classes, ignore_index=None):
    """Integer class indices of shape pred_shape[:-1] (a trailing axis of 1 is accepted, as Keras does).

    Returns (labels, valid): the labels without that trailing axis, and where they are not ignore_index."""
    y_true = _as_target_array(y_true, name)
    pred_shape = tuple(pred_shape)
    if y_true.dtype.kind not in "iu":
        if y_true.dtype.kind == "f" and _matches(y_true.shape, pred_shape):
            raise TypeError(f"{name}: y_true looks one-hot (float, same shape as y_pred); use "
                            "categorical_crossentropy for one-hot targets")
        raise TypeError(f"{name}: y_true must hold integer class indices, got dtype {y_true.dtype}")
    if y_true.ndim == len(pred_shape) and y_true.shape[-1] == 1 and pred_shape[-1] != 1:
        y_true = y_true[..., 0]
    if not _matches(y_true.shape, pred_shape[:-1]):
        raise ValueError(f"{name}: y_true has shape {y_true.shape}; expected {_shape_text(pred_shape[:-1])} "
                         f"(y_pred {_shape_text(pred_shape)} without its class axis)")
    valid = y_true != ignore_index if ignore_index is not None else np.ones(y_true.shape, bool)
    bad = valid & ((y_true < 0) | (y_true >= num_classes))
    if bad.any():
        raise ValueError(f"{name}: y_true has label {y_true[bad].flat[0]} outside [0, {num_classes}) "
                         f"(y_pred has {num_classes} classes)"
                         + ("" if ignore_index is None else f" and not ignore_index={ignore_index}"))
    return y_true, valid


def _check_unit_values(y, name, hint):
    """Every value finite and in [0, 1]."""
    if y.dtype.kind == "b" or y.size == 0:
        return
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError(f"{name}: y_true contains NaN or inf")
    if y.min() < 0 or y.max() > 1:
        raise ValueError(f"{name}: y_true must lie in [0, 1] ({hint}), got values in [{y.min()}, {y.max()}]")


def _binary_shape(y_true, pred_shape, name):
    """(N, H, W) masks are accepted for (N, H, W, 1) logits; anything else must have the logits' shape."""
    pred_shape = tuple(pred_shape)
    if pred_shape[-1] == 1 and _matches(y_true.shape, pred_shape[:-1]):
        return y_true[..., None]
    if not _matches(y_true.shape, pred_shape):
        raise ValueError(f"{name}: y_true has shape {y_true.shape}, expected {_shape_text(pred_shape)}")
    return y_true


def _binary_targets(y_true, y_pred, name):
    """Targets in [0, 1] of y_pred's shape, in y_pred's dtype."""
    y = _binary_shape(_as_target_array(y_true, name), y_pred.shape, name)
    _check_unit_values(y, name, "binary masks as 0/1, not 0/255")
    return y.astype(y_pred.dtype)


def _position_weights(sample_weight, pred_shape, name, dtype=None):
    """sample_weight as one weight per position of predictions of `pred_shape` (see the module docstring):
    an array that broadcasts to pred_shape[:-1] ((N,) is reshaped to (N, 1, 1) for (N, H, W, K) scores), in
    `dtype` if given; None stays None. Raises, naming sample_weight, for another shape (a None in pred_shape
    matches any size), for values that are not real numbers, negative, NaN or infinite."""
    if sample_weight is None:
        return None
    s = np.asarray(sample_weight)
    if s.dtype.kind not in "iuf":
        raise TypeError(f"{name}: sample_weight must hold real numbers, got dtype {s.dtype}")
    positions = tuple(pred_shape)[:-1]
    if s.ndim == len(positions) + 1 and s.shape[-1] == 1:
        s = s[..., 0]                                            # (N, H, W, 1) -> (N, H, W); (N, 1) -> (N,)
    if s.ndim == 1 and len(positions) > 1 and _matches(s.shape, positions[:1]):
        s = s.reshape(s.shape + (1,) * (len(positions) - 1))     # one weight per sample, for all its pixels
    elif not _matches(s.shape, positions):
        per_pixel = f" or one per position {_shape_text(positions)}" if len(positions) > 1 else ""
        raise ValueError(f"{name}: sample_weight has shape {s.shape}; expected one weight per sample "
                         f"{_shape_text(positions[:1])}{per_pixel} (y_pred {_shape_text(pred_shape)})")
    if s.dtype.kind == "f" and not np.all(np.isfinite(s)):
        raise ValueError(f"{name}: sample_weight contains NaN or inf")
    if s.size and s.min() < 0:
        raise ValueError(f"{name}: sample_weight must be >= 0, got {s.min()}")
    return s if dtype is None else s.astype(dtype, copy=False)


def _one_hot(labels, num_classes, valid, dtype):
    """(…,) integer labels -> (…, K) one-hot; ignored positions are all zeros."""
    out = np.zeros(labels.shape + (num_classes,), dtype=dtype)
    np.put_along_axis(out, np.where(valid, labels, 0)[..., None], 1, axis=-1)
    out *= valid[..., None]
    return out


class Loss:
    """Base class: remembers what backward needs.

    `from_logits` (Keras's argument of the cross-entropies) states what the model outputs: True, raw scores
    (the model must end without an activation); False, probabilities (it must end in the loss's activation,
    which compile then fuses into the loss); None (the default), either. The loss itself always works on
    logits, so both ways compute the same numbers.
    """

    activation = None        # 'softmax' / 'sigmoid': the loss applies it to its input (logits)
    name = "loss"
    from_logits = None
    ignore_index = None      # a label whose positions count for nothing (losses on class indices)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None:           # a subclass's forward may take no sample_weight
            return self.forward(y_true, y_pred)
        return self.forward(y_true, y_pred, sample_weight=sample_weight)

    def forward(self, y_true, y_pred, sample_weight=None):
        raise NotImplementedError

    def backward(self):
        raise NotImplementedError

    def check_targets(self, y_true, pred_shape):
        """Raise what forward would raise for these targets and predictions of `pred_shape` (None: any size)."""

    def check_output_shape(self, pred_shape):
        """Raise if this loss cannot work on predictions of `pred_shape` at all (compile asks, once)."""

    def get_config(self):
        return {}
