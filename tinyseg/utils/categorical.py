"""Small helpers with Keras's names.

to_categorical: integer labels -> one-hot vectors along a new last axis.

    y (...)  with values in 0..K-1   ->   Y (..., K),   Y[..., k] = 1 if y[...] == k else 0

    class labels  (N,)       ->  (N, K)
    CIFAR labels  (N, 1)     ->  (N, K)         (a trailing axis of size 1 is dropped, as Keras does)
    masks         (N, H, W)  ->  (N, H, W, K)   (channels-last, ready for a softmax over the last axis)

The inverse is `np.argmax(Y, axis=-1)`.
"""
import numpy as np

from ..validation import positive_int


def _class_indices(y):
    """y as int64 class indices: numbers only, floats only if whole, a trailing axis of size 1 dropped."""
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"to_categorical: y must hold integer class labels, got dtype {y.dtype}")
    if y.dtype.kind == "f":
        fractional = ~np.isfinite(y) | (y != np.round(y))
        if np.any(fractional):
            raise ValueError(f"to_categorical: y must hold whole numbers (class indices), got e.g. "
                             f"{float(y[fractional].ravel()[0])}")
    # Keras drops a trailing axis of size 1, so CIFAR's (N, 1) labels become (N, K), not (N, 1, K).
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    return y.astype(np.int64)


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot encode integer class labels, as `keras.utils.to_categorical`.

    Parameters
    ----------
    y : array-like of integers in 0..num_classes-1, any shape (...). Floats are accepted only if every value
        is a whole number (1.0, not 1.5); a trailing axis of size 1 is dropped, so (N, 1) gives (N, K).
    num_classes : K; if None, K = max(y) + 1.
    dtype : dtype of the result (default 'float32').

    Returns
    -------
    Y : array of shape y.shape + (K,) with Y[..., k] = (y == k).

    Raises
    ------
    ValueError for negative labels, labels >= num_classes, non-whole numbers, or an empty y without num_classes.
    TypeError for values that are not numbers.
    """
    y = _class_indices(y)
    if num_classes is None:
        if y.size == 0:
            raise ValueError("to_categorical: cannot infer num_classes from an empty y; pass num_classes")
        num_classes = int(y.max()) + 1
    num_classes = positive_int(num_classes, "to_categorical: num_classes")

    if y.size:
        if y.min() < 0:
            raise ValueError(f"to_categorical: labels must be >= 0, got {int(y.min())}")
        if y.max() >= num_classes:
            raise ValueError(f"to_categorical: label {int(y.max())} is out of range for num_classes="
                             f"{num_classes} (labels must be 0..{num_classes - 1})")

    # Row k of the identity matrix is the one-hot vector of class k; indexing with y picks one row per label.
    return np.eye(num_classes, dtype=dtype)[y]
