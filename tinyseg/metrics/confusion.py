"""Counting: the confusion matrix n_ij of integer labels (the package docstring has the definitions)."""
import numpy as np

from ..validation import integer, positive_int


def _check_num_classes(num_classes):
    return positive_int(num_classes, "num_classes")


def _check_ignore_index(ignore_index):
    if ignore_index is None:
        return None
    return integer(ignore_index, "ignore_index", expected="an integer class index or None")


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


def sample_weights(sample_weight, shape):
    """sample_weight as float64 weights of `shape` (y_true's), or None when it is None; a ValueError naming it
    for anything else. Accepted: a scalar, one weight per sample (N,) (spread over a sample's pixels), or one
    per position, of y_true's shape (with a trailing axis of 1 too: Keras's (N, 1) for (N,) labels). Every
    weight must be finite and >= 0 (a weight of 0 leaves the position out)."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "iubf":
        raise TypeError(f"sample_weight must hold numbers, got dtype {w.dtype}")
    w = w.astype(np.float64)
    if w.ndim == len(shape) + 1 and w.shape[-1] == 1:
        w = w[..., 0]
    if w.ndim == 1 and len(shape) > 1 and w.shape[0] == shape[0]:
        w = w.reshape((-1,) + (1,) * (len(shape) - 1))          # one weight per sample, for all its pixels
    elif w.ndim not in (0, len(shape)) or (w.ndim and w.shape != tuple(shape)):
        raise ValueError(f"sample_weight must be a scalar, one weight per sample {tuple(shape[:1])} or one per "
                         f"position {tuple(shape)}, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or (w < 0).any():
        bad = "NaN" if np.isnan(w).any() else "negative" if (w < 0).any() else "infinite"
        raise ValueError(f"sample_weight must hold finite weights >= 0, got a {bad} one")
    return np.broadcast_to(w, shape)


def confusion_matrix(y_true, y_pred, num_classes, ignore_index=None, sample_weight=None):
    """n[i, j] = number of samples (pixels) whose true class is i and predicted class is j.

    Parameters
    ----------
    y_true, y_pred : integer arrays of the same shape, any shape: labels (N,), masks (N, H, W), ...
                     Class indices in [0, num_classes); scores must be turned into indices first (argmax).
    num_classes    : K.
    ignore_index   : a value of y_true whose pixels are left out entirely (e.g. 255 for VOC's object borders);
                     y_pred is not looked at there.
    sample_weight  : None, or weights w >= 0 (see sample_weights: a scalar, (N,) or y_true's shape); then
                     n[i, j] = sum of w over the pixels of true class i predicted as j.

    Returns
    -------
    (K, K) int64: rows are true classes, columns predicted classes; n.sum() = number of non-ignored pixels.
    With sample_weight: (K, K) float64, n.sum() = the weights' sum over the non-ignored pixels.

    How: the pair (i, j) is numbered k = K*i + j, one integer in [0, K^2), and np.bincount counts how often each
    k occurs in a single pass. It computes exactly the naive double loop

        for i in range(K): for j in range(K): n[i, j] = sum((y_true == i) & (y_pred == j))

    which reads the arrays K^2 times (tests/metrics/test_metrics.py checks the two agree).
    """
    y_true, y_pred, keep = _labels(y_true, y_pred, num_classes, ignore_index)
    w = sample_weights(sample_weight, y_true.shape)
    if keep is not None:
        y_true, y_pred = y_true[keep], y_pred[keep]
        w = None if w is None else w[keep]
    k = int(num_classes)
    pair = k * y_true.ravel() + y_pred.ravel()
    if w is not None:
        return np.bincount(pair, weights=w.ravel(), minlength=k * k).reshape(k, k)
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
