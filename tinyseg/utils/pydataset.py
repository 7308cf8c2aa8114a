"""PyDataset: a data set that hands out whole batches, Keras's `keras.utils.PyDataset` (formerly `Sequence`).

Subclass it and write two methods:

    __len__()           the number of batches in one epoch
    __getitem__(i)      batch i: a pair (x, y) of arrays, x (B, H, W, C) and y its targets (B, ...)

and, if you like, `on_epoch_end()`, which `fit` calls after every epoch (the place to reshuffle). `fit`,
`evaluate` and `predict` read the batches in order 0, 1, ..., len - 1: shuffling, augmentation and loading
from disk are the data set's own business, so a data set larger than memory only ever holds one batch.
"""


class PyDataset:
    """Base class of batch-by-batch data sets: subclasses define __len__ and __getitem__ (see the module).

    The arguments Keras's PyDataset takes for its worker processes (workers, use_multiprocessing,
    max_queue_size) are accepted and ignored: tinyseg reads batches in the training process, in order.
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self.workers = workers
        self.use_multiprocessing = use_multiprocessing
        self.max_queue_size = max_queue_size

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__}: a PyDataset must define __len__ (batches per epoch)")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__}: a PyDataset must define __getitem__(index) -> (x, y)")

    @property
    def num_batches(self):
        return len(self)

    def on_epoch_begin(self):
        """Called by fit before every epoch."""

    def on_epoch_end(self):
        """Called by fit after every epoch: reshuffle here."""


Sequence = PyDataset            # Keras 2's name for the same idea
