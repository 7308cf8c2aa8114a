"""Where batches come from: arrays in memory, a PyDataset, or a Python generator, behind one interface.

    source = batches(x, y, batch_size, ...)      ArrayBatches, DatasetBatches or GeneratorBatches
    len(source)                                  steps per epoch
    for xb, yb, sw in source.epoch(rng): ...     one epoch of (x, y, sample_weight) batches (y is None for
                                                 predict; sample_weight None unless given: sample_weights.py)
    source.end_epoch()                           after an epoch: a PyDataset's on_epoch_end()

Arrays are cut into batches of `batch_size` in a new random order every epoch (unless shuffle=False). A
PyDataset (or Keras 2's Sequence) gives batch i as dataset[i]; with shuffle, as in Keras, the batches are
read in a new random order every epoch (drawn from the epoch's generator, like the arrays' order), and what
is inside a batch is the data set's own business. A generator yields batches and has no length, so `steps`
must say how many make an epoch; it is not restarted between epochs. A model with several inputs takes x as
a list of arrays, one per input.

Streamed batches are checked one by one before they reach the model: each must be an (x, y) pair, or an
(x, y, sample_weight) triple, whose shapes (after the batch axis) and dtypes are those of the first batch.

What is checked against the model (its input shapes, its loss's targets) is here too: check_inputs and
check_xy, for arrays whole before a call starts, and for each streamed or augmented batch before its step.
fit, evaluate and predict get their batches from one call, which checks arrays and returns their source:

    source(model, x, y, FIT, batch_size, steps, shuffle)      FIT, VALIDATION, EVALUATE, PREDICT: what the
                                                              error messages call x, y and the steps argument

`split_validation` holds out the end of the arrays for fit(validation_split=...).
"""
from typing import NamedTuple, Optional

import numpy as np

from ..validation import integer
from . import sample_weights


def as_list(x):
    """x as a list of arrays: a model's several inputs as given, one array as a list of one."""
    return list(x) if isinstance(x, (list, tuple)) else [x]


def num_samples(x):
    """N, the samples of x (of its first array, for a model with several inputs)."""
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
    """Arrays cut into batches of batch_size: (x, y, sample_weight) each, in a new random order every epoch
    when shuffle (drawn from the epoch's generator), the last batch shorter if N is not a multiple."""

    def __init__(self, x, y, batch_size, shuffle, steps=None, sample_weight=None):
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.sample_weight = sample_weight
        self.n = num_samples(x)
        self.steps = -(-self.n // batch_size) if steps is None else min(steps, -(-self.n // batch_size))

    def __len__(self):
        return self.steps

    def epoch(self, rng=None):
        order = rng.permutation(self.n) if self.shuffle and rng is not None else np.arange(self.n)
        for step in range(self.steps):
            idx = order[step * self.batch_size:(step + 1) * self.batch_size]
            yield (take(self.x, idx), None if self.y is None else self.y[idx],
                   None if self.sample_weight is None else self.sample_weight[idx])

    def end_epoch(self):
        pass


def _split_batch(batch, where, want_y):
    """(x, y, sample_weight) from what a data set returned: a pair (x, y), a triple (x, y, sample_weight), or x
    alone (predict only); the missing items are None."""
    if isinstance(batch, tuple) and len(batch) in (2, 3):
        return batch if len(batch) == 3 else batch + (None,)
    if isinstance(batch, (list, tuple)) and len(batch) == 2 and want_y:
        return tuple(batch) + (None,)
    if want_y:
        raise ValueError(f"{where}: expected a pair (x, y) or a triple (x, y, sample_weight) of arrays, got "
                         f"{type(batch).__name__}")
    return batch, None, None


class _Stream:
    """What DatasetBatches and GeneratorBatches share: each batch checked against the first one."""

    def __init__(self, name, want_y):
        self.name, self.want_y = name, want_y
        self._first = None

    def check(self, batch, where):
        x, y, sw = _split_batch(batch, where, self.want_y)
        signature = []
        for role, arrays in (("x", as_list(x)), ("y", [] if y is None else [y]),
                             ("sample_weight", [] if sw is None else [sw])):
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
        return x, y, sw


class DatasetBatches(_Stream):
    """A PyDataset's batches, dataset[i] checked as it comes; with shuffle the order of i is a new
    permutation every epoch (as Keras reads them), and steps, if given, reads only the first steps of it."""

    def __init__(self, dataset, steps, want_y, shuffle=False):
        super().__init__(type(dataset).__name__, want_y)
        self.dataset, self.shuffle = dataset, shuffle
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
        n = len(self.dataset)
        order = rng.permutation(n) if self.shuffle and rng is not None else np.arange(n)
        for i in order[:self.steps]:
            yield self.check(self.dataset[int(i)], f"{self.name}[{i}]")

    def end_epoch(self):
        end = getattr(self.dataset, "on_epoch_end", None)
        if callable(end):
            end()


class GeneratorBatches(_Stream):
    """`steps` batches a epoch from a generator, in the order it yields them, each checked as it comes."""

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


def batches(x, y, batch_size, steps=None, shuffle=False, want_y=True, steps_argument="steps", sample_weight=None):
    """The batch source for x (arrays, a PyDataset, or a generator); see the module docstring."""
    if steps is not None:
        steps = integer(steps, steps_argument, low=1)
    if is_stream(x):
        if y is not None:
            raise ValueError("y must be None when x is a PyDataset or a generator (its batches carry the targets)")
        if sample_weight is not None:
            raise ValueError("sample_weight must be None when x is a PyDataset or a generator (its batches "
                             "carry them, as (x, y, sample_weight))")
        if hasattr(x, "__getitem__") and hasattr(x, "__len__"):
            return DatasetBatches(x, steps, want_y, shuffle)
        return GeneratorBatches(x, steps, want_y, steps_argument)
    return ArrayBatches(x, y, batch_size, shuffle, steps, sample_weight)


# --- checked against the model ---------------------------------------------------------------------------
class Names(NamedTuple):
    """What error messages call one call's data: x, its targets (None: predict takes none) and its steps."""

    x: str
    y: Optional[str]
    steps: str
    sample_weight: str = "sample_weight"


FIT = Names("x", "y", "steps_per_epoch")
VALIDATION = Names("validation_data[0]", "validation_data[1]", "validation_steps", "validation_data[2]")
EVALUATE = Names("x", "y", "steps")
PREDICT = Names("x", None, "steps")


def check_array(x, argument, expected_shape=None):
    """A float array without NaN whose shape after the batch axis is expected_shape."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{argument} must be a NumPy array, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{argument} has dtype {x.dtype}; expected float32 images "
                        "(convert with x.astype('float32') / 255 for 8-bit images)")
    if x.ndim < 2 or 0 in x.shape[1:]:
        raise ValueError(f"{argument} has shape {x.shape}: expected (batch, ...) with every axis after the batch "
                         "axis of size 1 or more (0 channels, rows or columns hold no data)")
    if expected_shape is not None and x.shape[1:] != tuple(expected_shape):
        hint = ""
        if x.ndim == len(expected_shape) + 1 and x.shape[1:-1] == tuple(expected_shape[:-1]):
            hint = f": the model was built for {expected_shape[-1]} channels, x has {x.shape[-1]}"
        raise ValueError(f"{argument} has shape {x.shape}, expected (batch,) + {tuple(expected_shape)}{hint}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{argument} contains NaN or inf values")


def check_inputs(model, x, argument, nonempty=False):
    """Arrays for every input of the model, of the right shapes (a Sequential not yet built accepts any
    shape; another image size is accepted where every layer can follow it: model.accepts_size)."""
    from .subclassing import is_subclassed
    # a subclass not yet built takes a list of arrays if it is given one
    listed = model._list_inputs or (model._graph is None and isinstance(x, (list, tuple)) and is_subclassed(model))
    xs = as_list(x) if listed else [x]
    shapes = [t.shape[1:] for t in model.inputs] if model._graph is not None else [None] * len(xs)
    if model._list_inputs and len(xs) != len(shapes):
        raise ValueError(f"{argument}: the model has {len(shapes)} inputs; pass a list of {len(shapes)} arrays")
    for i, (a, shape) in enumerate(zip(xs, shapes)):
        if shape is not None and isinstance(a, np.ndarray) and a.shape[1:] != shape and \
                model.accepts_size(a.shape[1:], shape):
            shape = None                           # another image size that every layer can follow
        check_array(a, argument if len(xs) == 1 else f"{argument}[{i}]", shape)
    if len({len(a) for a in xs}) > 1:
        raise ValueError(f"{argument}: the input arrays have different numbers of samples "
                         f"{[len(a) for a in xs]}")
    if nonempty and num_samples(x) == 0:
        raise ValueError(f"{argument} has no samples")


def _prediction_shape(model, x, n):
    """The shape the model's output will have for x (n samples): None for the axes of a resized image."""
    out = tuple(model.output_shape)
    first = as_list(x)[0]
    if tuple(first.shape[1:]) == tuple(model.inputs[0].shape[1:]):
        return (n,) + out
    return (n,) + (None,) * (len(out) - 1) + out[-1:]


def check_xy(model, x, y, argument="x", y_argument=None):
    """x as check_inputs; y an array with one target per sample, that the loss accepts for these outputs.
    argument / y_argument: what the messages call x and y ('x' and 'y' for fit's own arguments)."""
    y_argument = y_argument or ("y" if argument == "x" else f"the targets of {argument}")
    check_inputs(model, x, argument)
    if y is None:
        raise ValueError(f"{argument}: the targets y are missing (fit and evaluate need y; predict does not)")
    if not isinstance(y, np.ndarray):
        hint = " (convert a list with np.asarray(y))" if isinstance(y, (list, tuple)) else ""
        raise TypeError(f"{y_argument} must be a NumPy array, got {type(y).__name__}{hint}")
    if y.ndim == 0:
        raise ValueError(f"{y_argument} must have a batch axis, got a 0-d array")
    if len(y) != num_samples(x):
        raise ValueError(f"{argument} has {num_samples(x)} samples but its targets have {len(y)}")
    if num_samples(x) == 0:
        raise ValueError(f"{argument} has no samples")
    model._graph_for(x, "fit")
    if len(model.outputs) == 1:
        try:
            model.loss.check_targets(y, _prediction_shape(model, x, len(y)))
        except (TypeError, ValueError) as err:
            raise type(err)(f"{y_argument}: {err}") from None


def check_weights(model, x, y, sample_weight, argument):
    """sample_weight (or None) against x, y and the model's outputs (sample_weights.py); x, y checked first."""
    if sample_weight is None:
        return
    sample_weights.check_loss_takes_weights(model.loss)
    if len(model.outputs) != 1:
        raise ValueError(f"{argument}: sample weights are only supported for models with a single output")
    sample_weights.check_sample_weight(sample_weight, len(y), _prediction_shape(model, x, len(y)), argument)


def check_batch(model, xb, yb, where, sample_weight=None):
    """A streamed or augmented batch, checked before it reaches the model (yb None: predict's batches)."""
    if yb is None:
        check_inputs(model, xb, where, nonempty=True)
    else:
        check_xy(model, xb, yb, where)
        check_weights(model, xb, yb, sample_weight, f"{where}: sample_weight")


def source(model, x, y, names, batch_size=32, steps=None, shuffle=False, sample_weight=None):
    """Check arrays whole against the model (a stream is checked batch by batch as it is read), and return
    their batch source. names: FIT, VALIDATION, EVALUATE or PREDICT (what the messages call things).
    sample_weight: one weight per sample or per position of y (sample_weights.py), or None."""
    if not is_stream(x):
        if names.y is None:
            check_inputs(model, x, names.x, nonempty=True)
        else:
            check_xy(model, x, y, names.x, names.y)
            check_weights(model, x, y, sample_weight, names.sample_weight)
            sample_weights.refuse_all_zero(sample_weight, names.sample_weight)
    return batches(x, y, batch_size, steps, shuffle, names.y is not None, names.steps, sample_weight)


def split_validation(model, x, y, fraction, validation_data=None, sample_weight=None):
    """(x, y, sample_weight) and (x_val, y_val, sample_weight_val): the last `fraction` of the array samples
    held out, before any shuffling (as Keras does); fit(validation_split=fraction), which cannot also have
    validation_data. Without sample weights, both third items are None."""
    if validation_data is not None or is_stream(x) or not 0 < fraction < 1:
        raise ValueError("validation_split must be in (0, 1), for array data without validation_data, "
                         f"got {fraction!r}")
    if x is None or y is None or not isinstance(y, np.ndarray):
        check_xy(model, x, y, "x")
    n = num_samples(x)
    if sample_weight is not None and (not isinstance(sample_weight, np.ndarray) or sample_weight.ndim == 0
                                      or len(sample_weight) != n):
        sample_weights.check_sample_weight(sample_weight, n, (n, None))       # raises, naming sample_weight
    cut = n - int(round(n * fraction))
    if cut < 1 or cut == n:
        raise ValueError(f"validation_split={fraction!r} of {n} samples leaves {cut} for training and {n - cut} "
                         "for validation; both need one")
    sw = (None, None) if sample_weight is None else (sample_weight[:cut], sample_weight[cut:])
    return (take(x, slice(0, cut)), y[:cut], sw[0]), (take(x, slice(cut, None)), y[cut:], sw[1])


def validation_triple(validation_data):
    """(x_val, y_val, sample_weight_val) from fit's validation_data: a pair or a triple of arrays (the weights
    None for a pair), or a PyDataset / generator (y_val and the weights None: its batches carry them)."""
    if is_stream(validation_data):
        return validation_data, None, None
    if isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3):
        return tuple(validation_data) + (None,) * (3 - len(validation_data))
    raise ValueError("validation_data must be a pair (x_val, y_val), a triple (x_val, y_val, sample_weight_val), "
                     "a PyDataset or a generator")
