"""What test_resume.py and test_resume_dynamics.py share: the data, the augmentation that draws from fit's
generator, and a run saved after 2 epochs and loaded again, beside the same run in one go."""
import numpy as np

from tinyseg import backend
from tinyseg.saving import load_model


def data(dtype=np.float32):
    """14 images (8, 8, 2) and their masks of 3 classes: 4 steps an epoch in batches of 4."""
    rng = np.random.default_rng(3)
    return rng.random((14, 8, 8, 2)).astype(dtype), rng.integers(0, 3, (14, 8, 8))


def flip(x, y, rng):
    """Paired horizontal flips of a random half of the batch: draws from fit's generator."""
    flipped = rng.random(len(x)) < 0.5
    x, y = x.copy(), y.copy()
    x[flipped], y[flipped] = x[flipped, :, ::-1], y[flipped, :, ::-1]
    return x, y


def saved_after_two_epochs(make, x, y, path):
    """(fit, unbroken, first, resumed): make() fitted 4 epochs in one go (unbroken); make() fitted 2 epochs
    (first) and saved to path; and the model loaded from path (resumed, not fitted yet) after the shared
    generator was moved elsewhere, as in another process. fit: the keyword arguments of those fits, for
    resumed's."""
    fit = dict(batch_size=4, verbose=0, seed=5, augment=flip, validation_data=(x[:4], y[:4]))
    unbroken = make()
    unbroken.fit(x, y, epochs=4, **fit)
    first = make()
    first.fit(x, y, epochs=2, **fit)
    first.save(path)
    backend.set_random_seed(999)
    return fit, unbroken, first, load_model(path)
