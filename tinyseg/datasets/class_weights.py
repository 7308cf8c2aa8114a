"""Class weights for imbalanced label sets: median-frequency balancing (SegNet's) and inverse frequency.

In a street scene road and sky cover half the pixels and a pedestrian a few hundredths of a percent. A plain
per-pixel loss then learns the big classes and ignores the small ones, which mean IoU counts as much as
the road. Weighting each pixel's loss by a weight of its true class (SparseCategoricalCrossentropy's
class_weight) restores the balance.

Counts. Over the training masks, leaving out every pixel labelled ignore_index (void: it is in no loss),

    n_c     = number of pixels of class c
    N_c     = number of pixels of the images in which class c appears (n_c > 0 in that image)
    N       = number of pixels of all images

Median-frequency balancing (Eigen and Fergus, 2015; SegNet, Badrinarayanan et al., 2017):

    f_c = n_c / N_c                       the share of class c in the images where it appears
    w_c = median_c(f_c) / f_c             the median is over the classes that appear

so the class of median frequency has weight 1, rarer classes more, commoner classes less. Dividing by N_c,
not N, measures a class where it occurs: a class present in few images is not made to look rare only for that.

Inverse frequency (our definition, the "balanced" weights of scikit-learn):

    w_c = N / (K' n_c)                    K' = the number of classes that appear

so that if every class had N / K' pixels all weights would be 1, and the weight per pixel averages to one,
sum_c (n_c / N) w_c = 1.

A class that appears in no training mask gets weight 0: it never meets the loss, and a weight computed from
no pixels would be infinite.

    counts = class_pixel_counts(masks, num_classes, ignore_index=11)
    w = median_frequency_weights(counts)              # or inverse_frequency_weights(counts)
    w = class_weights("median", masks, num_classes, ignore_index=11)          # the same in one call
    w = class_weights([1, 2, 0.5], masks, num_classes=3)                      # a list is checked and returned
"""
import numpy as np

METHODS = ("none", "median", "inverse")


class ClassCounts:
    """n (K,) pixels per class, n_images (K,) pixels of the images containing each class, total N, and the
    number of images per class (see the module docstring)."""

    def __init__(self, n, n_images, total, images):
        self.n, self.n_images, self.total, self.images = n, n_images, total, images

    @property
    def present(self):
        return self.n > 0


def class_pixel_counts(masks, num_classes, ignore_index=None):
    """Count n_c, N_c, N over an iterable of (H, W) integer masks (arrays, or a generator reading files).

    Values other than 0..num_classes-1 and ignore_index raise ValueError (check_label_values names files).
    """
    k = int(num_classes)
    n = np.zeros(k, np.int64)
    n_images = np.zeros(k, np.int64)
    images = np.zeros(k, np.int64)
    total = 0
    for i, mask in enumerate(masks):
        mask = np.asarray(mask)
        values = mask[mask != ignore_index] if ignore_index is not None else mask.ravel()
        if values.size and (values.min() < 0 or values.max() >= k):
            bad = values[(values < 0) | (values >= k)][0]
            raise ValueError(f"class_pixel_counts: mask {i} holds label {int(bad)}, not a class of 0..{k - 1}"
                             + ("" if ignore_index is None else f" nor ignore_index={ignore_index}"))
        here = np.bincount(values.astype(np.int64), minlength=k)
        n += here
        n_images[here > 0] += values.size            # this image's (non-void) pixels, for every class in it
        images[here > 0] += 1
        total += values.size
    return ClassCounts(n, n_images, total, images)


def median_frequency_weights(counts):
    """w_c = median(f) / f_c with f_c = n_c / N_c (module docstring); 0 for classes that never appear."""
    present = counts.present
    if not present.any():
        raise ValueError("median_frequency_weights: no class appears in the masks (every pixel is void)")
    f = np.zeros(len(counts.n))
    f[present] = counts.n[present] / counts.n_images[present]
    w = np.zeros(len(counts.n))
    w[present] = np.median(f[present]) / f[present]
    return w


def inverse_frequency_weights(counts):
    """w_c = N / (K' n_c), K' the number of classes that appear (module docstring); 0 for absent classes."""
    present = counts.present
    if not present.any():
        raise ValueError("inverse_frequency_weights: no class appears in the masks (every pixel is void)")
    w = np.zeros(len(counts.n))
    w[present] = counts.total / (present.sum() * counts.n[present])
    return w


def check_class_weights(weights, num_classes, what="class weights"):
    """A float64 (K,) copy of `weights`, or ValueError if their number is not K or one is negative, NaN or
    infinite (each would make the loss meaningless: a negative weight rewards mistakes)."""
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numbers, got {weights!r}") from None
    if w.ndim != 1 or len(w) != num_classes:
        raise ValueError(f"{what}: {w.size} value(s) given for {num_classes} classes; give one weight per class "
                         f"(0..{num_classes - 1})")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{what} must be finite numbers, got {w.tolist()}")
    if np.any(w < 0):
        raise ValueError(f"{what} must not be negative (class {int(np.argmax(w < 0))} has {w[w < 0][0]})")
    if not np.any(w > 0):
        raise ValueError(f"{what}: every weight is 0, so no pixel would count in the loss")
    return w


def class_weights(method, masks, num_classes, ignore_index=None):
    """The weights for method 'none' (None is returned), 'median', 'inverse', or a sequence of K numbers
    (checked by check_class_weights). masks: an iterable of (H, W) masks (only read for 'median'/'inverse')."""
    if method is None or (isinstance(method, str) and method.lower() == "none"):
        return None
    if isinstance(method, str):
        if method.lower() not in METHODS:
            raise ValueError(f"class weights must be one of {METHODS} or a list of {num_classes} numbers, "
                             f"got {method!r}")
        counts = class_pixel_counts(masks, num_classes, ignore_index)
        return (median_frequency_weights if method.lower() == "median" else inverse_frequency_weights)(counts)
    return check_class_weights(method, num_classes)


def parse_class_weights(values):
    """The command line's --class-weights: ['median'] -> 'median'; ['1', '2.5'] or ['1,2.5'] -> [1.0, 2.5]."""
    if len(values) == 1 and values[0].lower() in METHODS:
        return values[0].lower()
    numbers = [v for text in values for v in text.replace(",", " ").split()]
    try:
        return [float(v) for v in numbers]
    except ValueError:
        raise ValueError(f"--class-weights takes none, median, inverse or a list of numbers, got "
                         f"{' '.join(values)!r}") from None
