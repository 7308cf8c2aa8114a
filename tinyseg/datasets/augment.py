"""Augmentation and splitting for arrays of images and masks: random flips and quarter turns applied to an
image and its mask alike, and a seeded train/validation split.

    x_aug, y_aug = random_flip_rotate(x, y, rng)              # (N, H, W, C) and (N, H, W), same shapes back
    (x_train, y_train), (x_val, y_val) = train_val_split(x, y, val_fraction=0.2, seed=0)
"""
import numpy as np

from .. import backend


def random_flip_rotate(x, y, rng=None):
    """Random flips and quarter turns, the same for each image and its mask.

    Sample i is flipped upside down with probability 1/2, left-right with probability 1/2, then rotated by
    k * 90 degrees, k uniform in {0, 1, 2, 3}; for non-square images only k in {0, 2} (a quarter turn would
    swap height and width). These transforms move pixels without changing them, so a mask stays exact.

    Parameters
    ----------
    x : (N, H, W, C) images.
    y : (N, H, W) masks or (N, H, W, K) one-hot masks, or None.
    rng : a numpy Generator, an int seed, or None for tinyseg's shared generator (`set_random_seed`).

    Returns
    -------
    x_aug, y_aug : new arrays of the same shapes and dtypes (y_aug is None if y is None).
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"random_flip_rotate: x must be (N, H, W, C), got shape {x.shape}")
    if y is not None:
        y = np.asarray(y)
        if y.ndim not in (3, 4) or y.shape[:3] != x.shape[:3]:
            raise ValueError(f"random_flip_rotate: y must be (N, H, W) or (N, H, W, K) matching x {x.shape}, "
                             f"got shape {y.shape}")
    rng = backend.rng() if rng is None else np.random.default_rng(rng)
    n, height, width = x.shape[:3]
    flip_ud = rng.integers(0, 2, size=n).astype(bool)
    flip_lr = rng.integers(0, 2, size=n).astype(bool)
    turns = rng.integers(0, 4, size=n) if height == width else 2 * rng.integers(0, 2, size=n)

    x_out = np.empty_like(x)
    y_out = None if y is None else np.empty_like(y)
    # Samples that drew the same transform are transformed together: at most 16 groups, never a loop over N.
    for ud, lr, k in set(zip(flip_ud.tolist(), flip_lr.tolist(), turns.tolist())):
        group = np.flatnonzero((flip_ud == ud) & (flip_lr == lr) & (turns == k))
        x_out[group] = _flip_rotate(x[group], ud, lr, k)
        if y is not None:
            y_out[group] = _flip_rotate(y[group], ud, lr, k)
    return x_out, y_out


def _flip_rotate(batch, flip_ud, flip_lr, turns):
    """Flip then rotate a batch over its spatial axes 1 (height) and 2 (width)."""
    if flip_ud:
        batch = batch[:, ::-1]
    if flip_lr:
        batch = batch[:, :, ::-1]
    return np.rot90(batch, turns, axes=(1, 2))


def train_val_split(x, y, val_fraction=0.2, seed=0):
    """Shuffle and split into ((x_train, y_train), (x_val, y_val)), with round(N * val_fraction) validation
    samples; the same seed gives the same split."""
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"train_val_split: x and y have different lengths, {len(x)} and {len(y)}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"train_val_split: val_fraction must be between 0 and 1, got {val_fraction!r}")
    n_val = int(round(len(x) * val_fraction))
    if not 0 < n_val < len(x):
        raise ValueError(f"train_val_split: {len(x)} samples with val_fraction={val_fraction} leave "
                         f"{n_val} for validation and {len(x) - n_val} for training; each needs at least one")
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])
