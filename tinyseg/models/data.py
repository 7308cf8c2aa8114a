"""Where batches come from: arrays in memory, a PyDataset, or a Python generator, behind one interface.

    source = batches(x, y, batch_size, ...)      ArrayBatches, DatasetBatches or GeneratorBatches
    len(source)                                  steps per epoch
    for xb, yb in source.epoch(rng): ...         one epoch of (x, y) batches (y is None for predict)
    source.end_epoch()                           after an epoch: a PyDataset's on_epoch_end()

Arrays are cut into batches of `batch_size` in a new random order every epoch (unless shuffle=False). A
PyDataset (or Keras 2's Sequence) gives batch i as dataset[i], in order: shuffling is its own business, as in
Keras. A generator yields batches and has no length, so `steps` must say how many make an epoch; it is not
restarted between epochs. A model with several inputs takes x as a list of arrays, one per input.

Streamed batches are checked one by one before they reach the model: each must be an (x, y) pair whose
shapes (after the batch axis) and dtypes are those of the first batch.
"""
import numpy as np


def count_argument(value, argument, minimum=0):
    """value as an int if it is an integer (Python or NumPy, not a bool) >= minimum, else raise naming it:
    a TypeError for another type (3.0, '3', True), a ValueError for a smaller value."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{argument} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{argument} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def num_samples(x):
    return len(as_list(x)[0])


def take(x, idx):
    """x[idx] for an array, or for each array of a list (a model with several inputs)."""
    return [a[idx] for a in x] if isinstance(x, (list, tuple)) else x[idx]


def is_stream(x):
    """A PyDataset-like object (has __len__ and __getitem__, and is not an array) or a generator/iterator."""
    if isinstance(x, (np.ndarray, list, tuple)) or x is None:
        return False
    return (hasattr(x, "__getitem__") and hasattr(x, "__len__")) or hasattr(x, "__next__")


class ArrayBatches:
    def __init__(self, x, y, batch_size, shuffle, steps=None):
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.n = num_samples(x)
        self.steps = -(-self.n // batch_size) if steps is None else min(steps, -(-self.n // batch_size))

    def __len__(self):
        return self.steps

    def epoch(self, rng=None):
        order = rng.permutation(self.n) if self.shuffle and rng is not None else np.arange(self.n)
        for step in range(self.steps):
            idx = order[step * self.batch_size:(step + 1) * self.batch_size]
            yield take(self.x, idx), None if self.y is None else self.y[idx]

    def end_epoch(self):
        pass


def _split_batch(batch, where, want_y):
    """(x, y) from what a data set returned: a pair, or x alone (predict only)."""
    if isinstance(batch, tuple) and len(batch) in (2, 3):
        if len(batch) == 3:
            raise ValueError(f"{where}: sample weights (a third item) are not supported; return (x, y)")
        return batch
    if isinstance(batch, (list, tuple)) and len(batch) == 2 and want_y:
        return tuple(batch)
    if want_y:
        raise ValueError(f"{where}: expected a pair (x, y) of arrays, got {type(batch).__name__}")
    return batch, None


class _Stream:
    """What DatasetBatches and GeneratorBatches share: each batch checked against the first one."""

    def __init__(self, name, want_y):
        self.name, self.want_y = name, want_y
        self._first = None

    def check(self, batch, where):
        x, y = _split_batch(batch, where, self.want_y)
        signature = []
        for role, arrays in (("x", as_list(x)), ("y", [] if y is None else [y])):
            for a in arrays:
                if not isinstance(a, np.ndarray):
                    raise TypeError(f"{where}: {role} is a {type(a).__name__}; batches must be NumPy arrays")
                signature.append((role, a.shape[1:], a.dtype))
        if self._first is None:
            self._first = (where, signature)
        elif signature != self._first[1]:
            (w0, s0) = self._first
            raise ValueError(f"{where}: batch shapes/dtypes changed: "
                             + ", ".join(f"{r} (batch,) + {s} {d}" for r, s, d in signature)
                             + f"; {w0} had " + ", ".join(f"{r} (batch,) + {s} {d}" for r, s, d in s0))
        return x, y


class DatasetBatches(_Stream):
    def __init__(self, dataset, steps, want_y):
        super().__init__(type(dataset).__name__, want_y)
        self.dataset = dataset
        n = len(dataset)
        if n < 1:
            raise ValueError(f"{self.name}: the data set has no batches (len() is {n})")
        self.steps = n if steps is None else min(int(steps), n)

    def __len__(self):
        return self.steps

    def epoch(self, rng=None):
        begin = getattr(self.dataset, "on_epoch_begin", None)
        if callable(begin):
            begin()
        for i in range(self.steps):
            yield self.check(self.dataset[i], f"{self.name}[{i}]")

    def end_epoch(self):
        end = getattr(self.dataset, "on_epoch_end", None)
        if callable(end):
            end()


class GeneratorBatches(_Stream):
    def __init__(self, generator, steps, want_y, steps_argument):
        super().__init__(type(generator).__name__, want_y)
        if steps is None:
            raise ValueError(f"a generator has no length: pass {steps_argument} (batches per epoch)")
        self.generator, self.steps, self.count = generator, int(steps), 0

    def __len__(self):
        return self.steps

    def epoch(self, rng=None):
        for _ in range(self.steps):
            try:
                batch = next(self.generator)
            except StopIteration:
                raise ValueError(f"the generator ran out after {self.count} batches") from None
            self.count += 1
            yield self.check(batch, f"generator batch {self.count - 1}")

    def end_epoch(self):
        pass


def batches(x, y, batch_size, steps=None, shuffle=False, want_y=True, steps_argument="steps"):
    """The batch source for x (arrays, a PyDataset, or a generator); see the module docstring."""
    if steps is not None:
        steps = count_argument(steps, steps_argument, minimum=1)
    if is_stream(x):
        if y is not None:
            raise ValueError("y must be None when x is a PyDataset or a generator (its batches carry the targets)")
        if hasattr(x, "__getitem__") and hasattr(x, "__len__"):
            return DatasetBatches(x, steps, want_y)
        return GeneratorBatches(x, steps, want_y, steps_argument)
    return ArrayBatches(x, y, batch_size, shuffle, steps)
