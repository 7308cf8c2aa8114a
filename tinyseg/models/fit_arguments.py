"""The checks of fit's, evaluate's and predict's plain arguments (numbers, flags, functions), made before any
work starts; the data is checked in data.py."""
import numpy as np

from ..validation import flag, integer, is_real_number


def check_verbose(verbose):
    """verbose as 0, 1 or 2 (True, False and 'auto' as Keras reads them)."""
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    if verbose == "auto":
        return 1
    return integer(verbose, "verbose", low=0)


def batch_size(value, argument="batch_size"):
    """A batch size: 32 if None (Keras's default), else an integer >= 1."""
    return 32 if value is None else integer(value, argument, low=1)


def check_epochs(epochs, initial_epoch):
    """(epochs, initial_epoch): integers with 0 <= initial_epoch < epochs."""
    epochs = integer(epochs, "epochs", low=1)
    initial_epoch = integer(initial_epoch, "initial_epoch", low=0)
    if initial_epoch >= epochs:
        raise ValueError(f"epochs must be a positive integer above initial_epoch={initial_epoch}, got {epochs!r}")
    return epochs, initial_epoch


def check_fit_kinds(shuffle, augment, callbacks, validation_split):
    """The arguments of fit that must be of one kind: a flag, a function, a list, a number."""
    flag(shuffle, "shuffle")
    if augment is not None and not callable(augment):
        raise TypeError(f"augment must be a function augment(x, y, rng) -> (x, y), got {augment!r}")
    if callbacks is not None and not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of callbacks, got {type(callbacks).__name__}")
    if not is_real_number(validation_split):
        raise TypeError(f"validation_split must be a number in [0, 1), got {validation_split!r}")
