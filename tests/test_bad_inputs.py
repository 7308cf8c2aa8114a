"""Bad inputs (issue 12): a call that fails says which argument is wrong and changes nothing.

Every case asserts the exception's type and that its message names the argument. For calls on a model, it
also asserts that the state is bit-identical before and after the failed call: every weight (BatchNorm's
moving statistics among them), every optimizer slot and the step count, and the shared random generator.
The model is trained for one epoch first, so that the slots exist and the moving statistics have moved.
Constructors (optimizers, losses, layers, U-Net) have no state to keep; their cases check type and message.
"""
import numpy as np
import pytest

import tinyseg
from tinyseg import backend, callbacks, utils
from tinyseg.backend import NonFiniteError
from tinyseg.layers import Activation, BatchNormalization, Conv2D, Dense, Dropout, Input
from tinyseg.losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CEDiceLoss,
    DiceLoss,
    SparseCategoricalCrossentropy,
)
from tinyseg.models import Sequential, UNet
from tinyseg.optimizers import SGD, Adam, RMSprop

K = 3                                   # classes of the test model


# --- the model, its data, its state ------------------------------------------------------------------------
def data(n=8, seed=1):
    rng = np.random.default_rng(seed)
    return rng.random((n, 6, 6, 2), dtype=np.float32), rng.integers(0, K, (n, 6, 6))


def trained_model(loss="sparse_categorical_crossentropy", metrics=("accuracy",), optimizer=None):
    """Conv -> BatchNorm -> ReLU -> Dropout -> Conv softmax, trained for one epoch of two steps."""
    tinyseg.set_random_seed(0)
    model = Sequential([Conv2D(4, 3, padding="same", input_shape=(6, 6, 2)), BatchNormalization(momentum=0.5),
                        Activation("relu"), Dropout(0.25), Conv2D(K, 1, activation="softmax")])
    model.compile(optimizer=optimizer or Adam(0.01), loss=loss, metrics=list(metrics))
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0, seed=0)
    return model


def snapshot(model):
    """Copies of everything a failed call must leave alone."""
    opt = model.optimizer
    return {"weights": [w.copy() for w in model.get_weights()],
            "slots": {} if opt is None else {k: v.copy() for k, v in opt._slots.items()},
            "iterations": None if opt is None else opt.iterations,
            "optimizer": opt, "loss": model.loss, "metrics": list(model.metric_names),
            "rng": backend.rng().bit_generator.state, "epochs_done": model.epochs_done}


def assert_unchanged(model, before, same_objects=True):
    after = snapshot(model)
    assert len(after["weights"]) == len(before["weights"])
    for i, (a, b) in enumerate(zip(after["weights"], before["weights"])):
        assert a.dtype == b.dtype and a.shape == b.shape, i
        assert np.array_equal(a, b), f"weight {i} changed"
    assert after["slots"].keys() == before["slots"].keys()
    for key in before["slots"]:
        assert after["slots"][key].dtype == before["slots"][key].dtype
        assert np.array_equal(after["slots"][key], before["slots"][key]), f"slot {key} changed"
    for key in ("iterations", "rng", "epochs_done", "metrics"):
        assert after[key] == before[key], key
    if same_objects:                              # compile was not redone by the failed call
        assert after["optimizer"] is before["optimizer"] and after["loss"] is before["loss"]


def expect_unchanged(model, call, error, match):
    before = snapshot(model)
    with pytest.raises(error, match=match):
        call()
    assert_unchanged(model, before)


# --- fit: arguments and arrays, all found before the first step --------------------------------------------
def _with(**changes):
    """fit's keyword arguments for the case: the good ones, with `changes` (values may be functions of x, y)."""
    def make(x, y):
        kwargs = dict(x=x, y=y, epochs=1, batch_size=4, verbose=0)
        kwargs.update({k: v(x, y) if callable(v) and k not in ("augment",) else v for k, v in changes.items()})
        return kwargs
    return make


def _relabel(index, value):
    def change(x, y):
        y = y.copy()
        y[index] = value
        return y
    return change


FIT_CASES = [
    # epochs, initial_epoch: integers (NumPy's too), not bools, floats or strings
    ("epochs=0", _with(epochs=0), ValueError, "epochs"),
    ("epochs=-1", _with(epochs=-1), ValueError, "epochs"),
    ("epochs=2.0", _with(epochs=2.0), TypeError, "epochs"),
    ("epochs=True", _with(epochs=True), TypeError, "epochs"),
    ("epochs='3'", _with(epochs="3"), TypeError, "epochs"),
    ("epochs=np.float64(2)", _with(epochs=np.float64(2)), TypeError, "epochs"),
    ("initial_epoch=-1", _with(initial_epoch=-1), ValueError, "initial_epoch"),
    ("initial_epoch=epochs", _with(epochs=2, initial_epoch=2), ValueError, "initial_epoch"),
    ("initial_epoch=0.0", _with(initial_epoch=0.0), TypeError, "initial_epoch"),
    # batch sizes and steps
    ("batch_size=0", _with(batch_size=0), ValueError, "batch_size"),
    ("batch_size=-4", _with(batch_size=-4), ValueError, "batch_size"),
    ("batch_size=2.5", _with(batch_size=2.5), TypeError, "batch_size"),
    ("batch_size=True", _with(batch_size=True), TypeError, "batch_size"),
    ("batch_size='4'", _with(batch_size="4"), TypeError, "batch_size"),
    ("steps_per_epoch=0", _with(steps_per_epoch=0), ValueError, "steps_per_epoch"),
    ("steps_per_epoch=1.5", _with(steps_per_epoch=1.5), TypeError, "steps_per_epoch"),
    ("validation_batch_size=0", _with(validation_data=lambda x, y: (x, y), validation_batch_size=0), ValueError,
     "validation_batch_size"),
    ("validation_steps=0", _with(validation_data=lambda x, y: (x, y), validation_steps=0), ValueError,
     "validation_steps"),
    # switches and seeds
    ("shuffle='yes'", _with(shuffle="yes"), TypeError, "shuffle"),
    ("seed=-1", _with(seed=-1), ValueError, "seed"),
    ("seed=1.5", _with(seed=1.5), TypeError, "seed"),
    ("verbose='loud'", _with(verbose="loud"), TypeError, "verbose"),
    ("validation_split=1.5", _with(validation_split=1.5), ValueError, "validation_split"),
    ("validation_split='0.2'", _with(validation_split="0.2"), TypeError, "validation_split"),
    ("validation_split and validation_data", _with(validation_split=0.25, validation_data=lambda x, y: (x, y)),
     ValueError, "validation_split"),
    ("validation_split leaves no training sample", _with(x=lambda x, y: x[:1], y=lambda x, y: y[:1],
                                                         validation_split=0.5), ValueError, "validation_split"),
    ("augment='flip'", _with(augment="flip"), TypeError, "augment"),
    ("callbacks=a callback, not a list", _with(callbacks=callbacks.History()), TypeError, "callbacks"),
    # x
    ("x=None", _with(x=None), TypeError, "x must be a NumPy array"),
    ("x a list for a one-input model", _with(x=lambda x, y: [x]), TypeError, "x"),
    ("x of uint8", _with(x=lambda x, y: (x * 255).astype(np.uint8)), TypeError, "x has dtype uint8"),
    ("x of complex numbers", _with(x=lambda x, y: x.astype(np.complex64)), TypeError, "x has dtype complex64"),
    ("x with NaN", _with(x=lambda x, y: np.where(x > 0.9, np.nan, x).astype(np.float32)), ValueError,
     "x contains NaN"),
    ("x with inf", _with(x=lambda x, y: np.where(x > 0.9, np.inf, x).astype(np.float32)), ValueError,
     "x contains NaN or inf"),
    ("x with 1 channel", _with(x=lambda x, y: x[..., :1]), ValueError, "x has shape .*2 channels"),
    ("x with 0 channels", _with(x=lambda x, y: x[..., :0]), ValueError, "x has shape"),
    ("x with no samples", _with(x=lambda x, y: x[:0], y=lambda x, y: y[:0]), ValueError, "x has no samples"),
    ("x a scalar batch", _with(x=lambda x, y: np.float32(1.0)), TypeError, "x must be a NumPy array"),
    # y
    ("y=None", _with(y=None), ValueError, "targets y are missing"),
    ("y a Python list", _with(y=lambda x, y: y.tolist()), TypeError, r"y must be a NumPy array.*np.asarray"),
    ("y a 0-d array", _with(y=lambda x, y: np.array(1)), ValueError, "y must have a batch axis"),
    ("y one sample more", _with(y=lambda x, y: np.concatenate([y, y[:1]])), ValueError,
     "x has 8 samples but its targets have 9"),
    ("y masks of another size", _with(y=lambda x, y: y[:, :5, :5]), ValueError, r"y: .*y_true has shape \(8, 5, 5\)"),
    ("y a label out of range in the last batch", _with(y=_relabel((7, 5, 5), K)), ValueError,
     r"y: .*label 3 outside \[0, 3\)"),
    ("y a negative label", _with(y=_relabel((0, 0, 0), -1)), ValueError, r"y: .*label -1"),
    ("y label 255 without ignore_index", _with(y=_relabel((3, 2, 1), 255)), ValueError, r"y: .*label 255"),
    ("y float labels", _with(y=lambda x, y: y.astype(np.float32)), TypeError, r"y: .*integer class indices"),
    ("y one-hot for a sparse loss", _with(y=lambda x, y: np.eye(K, dtype=np.float32)[y]), TypeError,
     r"y: .*looks one-hot"),
    ("y of strings", _with(y=lambda x, y: y.astype(str)), TypeError, r"y: .*must hold numbers"),
    ("y of objects", _with(y=lambda x, y: y.astype(object)), TypeError, r"y: .*must hold numbers"),
    # validation data, checked whole before epoch 1 starts
    ("validation labels out of range", _with(validation_data=lambda x, y: (x, _relabel((6, 1, 1), 7)(x, y))),
     ValueError, r"validation_data\[1\]: .*label 7"),
    ("validation images of another channel count", _with(validation_data=lambda x, y: (x[..., :1], y)), ValueError,
     r"validation_data\[0\] has shape"),
    ("validation targets missing", _with(validation_data=lambda x, y: (x, None)), ValueError,
     r"validation_data.*the targets y are missing"),
    ("validation_data four arrays", _with(validation_data=lambda x, y: (x, y, y, y)), ValueError, "validation_data"),
    ("validation_data a triple of a bad weight", _with(validation_data=lambda x, y: (x, y, np.ones(len(y) + 1))),
     ValueError, r"validation_data\[2\] has shape"),
    ("validation_data a list of targets", _with(validation_data=lambda x, y: (x, y.tolist())), TypeError,
     r"validation_data\[1\] must be a NumPy array"),
]


@pytest.mark.parametrize("make, error, match", [c[1:] for c in FIT_CASES], ids=[c[0] for c in FIT_CASES])
def test_fit_refuses_before_the_first_step(make, error, match):
    model = trained_model()
    x, y = data()
    expect_unchanged(model, lambda: model.fit(**make(x, y)), error, match)


def test_integer_like_epochs_are_accepted():
    model = trained_model()
    x, y = data()
    history = model.fit(x, y, epochs=np.int64(3), initial_epoch=np.int32(1), batch_size=np.int64(4), verbose=0,
                        seed=np.uint8(2))
    assert history.epoch == [1, 2] and model.epochs_done == 3


# --- fit on batches made on the way: checked before their forward pass ------------------------------------
class Batches(utils.PyDataset):
    """Batches of (x, y); batch `bad` is spoiled by `spoil`."""

    def __init__(self, x, y, bad=None, spoil=None, batch_size=4):
        super().__init__()
        self.x, self.y, self.bad, self.spoil, self.batch_size = x, y, bad, spoil, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        x, y = self.x[s], self.y[s].copy()
        return self.spoil(x, y) if i == self.bad else (x, y)


def _labels_out_of_range(x, y):
    y[0, 0, 0] = K
    return x, y


def _masks_too_small(x, y):
    return x, y[:, :5, :5]


def _nan_image(x, y):
    x = x.copy()
    x[0, 0, 0, 0] = np.nan
    return x, y


def _one_sample_short(x, y):
    return x, y[:-1]


STREAM_CASES = [
    ("a PyDataset batch with a label out of range", lambda x, y: Batches(x, y, 0, _labels_out_of_range), ValueError,
     r"Batches\[0\]|batch 0 of epoch 1.*label 3"),
    ("a PyDataset batch of masks of another size", lambda x, y: Batches(x, y, 0, _masks_too_small), ValueError,
     r"batch 0 of epoch 1.*y_true has shape \(4, 5, 5\)"),
    ("a PyDataset batch with a NaN pixel", lambda x, y: Batches(x, y, 0, _nan_image), ValueError,
     "batch 0 of epoch 1 contains NaN"),
    ("a PyDataset batch with fewer targets than images", lambda x, y: Batches(x, y, 0, _one_sample_short),
     ValueError, "batch 0 of epoch 1 has 4 samples but its targets have 3"),
    ("a generator batch with a label out of range",
     lambda x, y: (b for b in [_labels_out_of_range(x[:4], y[:4].copy())]), ValueError, "label 3"),
]


@pytest.mark.parametrize("make, error, match", [c[1:] for c in STREAM_CASES], ids=[c[0] for c in STREAM_CASES])
def test_a_streamed_batch_is_checked_before_its_forward_pass(make, error, match):
    model = trained_model()
    x, y = data()
    stream = make(x, y)
    steps = None if hasattr(stream, "__len__") else 1
    expect_unchanged(model, lambda: model.fit(stream, epochs=1, verbose=0, steps_per_epoch=steps), error, match)


STREAM_ARGUMENT_CASES = [
    ("a generator without steps_per_epoch", dict(x=lambda x, y: iter([(x, y)])), ValueError, "steps_per_epoch"),
    ("y given with a PyDataset", dict(x=lambda x, y: Batches(x, y), y=lambda x, y: y), ValueError,
     "y must be None"),
    ("a PyDataset of no batches", dict(x=lambda x, y: Batches(x[:0], y[:0])), ValueError, "no batches"),
    ("a PyDataset returning x only", dict(x=lambda x, y: Batches(x, y, 0, lambda a, b: a)), ValueError,
     r"expected a pair \(x, y\)"),
    ("a PyDataset returning lists", dict(x=lambda x, y: Batches(x, y, 0, lambda a, b: (a.tolist(), b))),
     TypeError, "batches must be NumPy arrays"),
]


@pytest.mark.parametrize("kwargs, error, match", [c[1:] for c in STREAM_ARGUMENT_CASES],
                         ids=[c[0] for c in STREAM_ARGUMENT_CASES])
def test_streams_given_wrongly(kwargs, error, match):
    model = trained_model()
    x, y = data()
    args = {k: v(x, y) for k, v in kwargs.items()}
    expect_unchanged(model, lambda: model.fit(epochs=1, verbose=0, **args), error, match)


@pytest.mark.parametrize("spoil", [_labels_out_of_range, _masks_too_small, _nan_image],
                         ids=["label out of range", "masks too small", "NaN pixel"])
def test_a_bad_later_batch_leaves_the_model_as_the_good_batches_made_it(spoil):
    """Batch 1 is bad: the model ends as after batch 0's step alone (batch 1's forward never ran, so BatchNorm's
    statistics and the dropout generator are those after batch 0)."""
    x, y = data()
    model, reference = trained_model(), trained_model()
    reference.fit(Batches(x[:4], y[:4]), epochs=1, verbose=0, seed=5, shuffle=False)    # batch 0 only, the
    with pytest.raises(ValueError, match=r"batch 1 of epoch 1|Batches\[1\]"):          # same dropout masks
        model.fit(Batches(x, y, bad=1, spoil=spoil), epochs=1, verbose=0, seed=5, shuffle=False)
    assert_unchanged(model, snapshot(reference), same_objects=False)


def _augment_masks_too_small(x, y, rng):
    return x, y[:, :5, :5]


def _augment_uint8(x, y, rng):
    return (x * 255).astype(np.uint8), y


AUGMENT_CASES = [
    ("augment returns masks of another size", _augment_masks_too_small, ValueError,
     r"batch 0 of epoch 1.*y_true has shape"),
    ("augment returns uint8 images", _augment_uint8, TypeError, "batch 0 of epoch 1 has dtype uint8"),
]


@pytest.mark.parametrize("augment, error, match", [c[1:] for c in AUGMENT_CASES], ids=[c[0] for c in AUGMENT_CASES])
def test_an_augmented_batch_is_checked_before_its_forward_pass(augment, error, match):
    model = trained_model()
    x, y = data()
    expect_unchanged(model, lambda: model.fit(x, y, epochs=1, verbose=0, augment=augment), error, match)


# --- one step: all or nothing -------------------------------------------------------------------------------
def _bad_metric(y_true, y_out):
    raise RuntimeError("this metric breaks")


TRAIN_ON_BATCH_CASES = [
    ("masks of another size", lambda x, y: (x[:4], y[:4, :5, :5]), ValueError, r"y_true has shape \(4, 5, 5\)"),
    ("a label out of range", lambda x, y: (x[:4], _relabel((3, 5, 5), K)(x, y)[:4]), ValueError, "label 3"),
    ("float labels", lambda x, y: (x[:4], y[:4].astype(np.float32)), TypeError, "integer class indices"),
    ("NaN images reach BatchNorm", lambda x, y: (np.full_like(x[:4], np.nan), y[:4]), NonFiniteError,
     "batch_normalization.*moving statistics were left"),
    ("images too large for float32 statistics",
     lambda x, y: (np.full_like(x[:4], 1e30) * np.arange(1, 5)[:, None, None, None].astype(np.float32), y[:4]),
     NonFiniteError, "beyond float32's range"),
]


@pytest.mark.parametrize("make, error, match", [c[1:] for c in TRAIN_ON_BATCH_CASES],
                         ids=[c[0] for c in TRAIN_ON_BATCH_CASES])
def test_train_on_batch_is_all_or_nothing(make, error, match):
    model = trained_model()
    x, y = data()
    xb, yb = make(x, y)
    expect_unchanged(model, lambda: model.train_on_batch(xb, yb), error, match)


def test_a_metric_that_raises_changes_nothing():
    model = trained_model()
    model.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy", _bad_metric])
    x, y = data()
    expect_unchanged(model, lambda: model.train_on_batch(x[:4], y[:4]), RuntimeError, "this metric breaks")


# --- evaluate and predict ---------------------------------------------------------------------------------
EVALUATE_CASES = [
    ("no samples", lambda x, y: dict(x=x[:0], y=y[:0]), ValueError, "x has no samples"),
    ("batch_size=0", lambda x, y: dict(x=x, y=y, batch_size=0), ValueError, "batch_size"),
    ("batch_size=-1", lambda x, y: dict(x=x, y=y, batch_size=-1), ValueError, "batch_size"),
    ("y missing", lambda x, y: dict(x=x, y=None), ValueError, "targets y are missing"),
    ("y a list", lambda x, y: dict(x=x, y=y.tolist()), TypeError, "y must be a NumPy array"),
    ("a label out of range", lambda x, y: dict(x=x, y=_relabel((5, 0, 0), 9)(x, y)), ValueError, "y: .*label 9"),
    ("steps=0", lambda x, y: dict(x=x, y=y, steps=0), ValueError, "steps"),
    ("verbose=None", lambda x, y: dict(x=x, y=y, verbose=None), TypeError, "verbose"),
]


@pytest.mark.parametrize("make, error, match", [c[1:] for c in EVALUATE_CASES], ids=[c[0] for c in EVALUATE_CASES])
def test_evaluate_refuses(make, error, match):
    model = trained_model()
    x, y = data()
    expect_unchanged(model, lambda: model.evaluate(**{"verbose": 0, **make(x, y)}), error, match)


PREDICT_CASES = [
    ("no samples", lambda x: dict(x=x[:0]), ValueError, "x has no samples"),
    ("batch_size=-1", lambda x: dict(x=x, batch_size=-1), ValueError, "batch_size"),
    ("batch_size=1.0", lambda x: dict(x=x, batch_size=1.0), TypeError, "batch_size"),
    ("x a list", lambda x: dict(x=[x]), TypeError, "x"),
    ("x with NaN", lambda x: dict(x=np.full_like(x, np.nan)), ValueError, "x contains NaN"),
    ("x with 0 channels", lambda x: dict(x=x[..., :0]), ValueError, "x has shape"),
    ("x of uint8", lambda x: dict(x=x.astype(np.uint8)), TypeError, "x has dtype uint8"),
]


@pytest.mark.parametrize("make, error, match", [c[1:] for c in PREDICT_CASES], ids=[c[0] for c in PREDICT_CASES])
def test_predict_refuses(make, error, match):
    model = trained_model()
    x, _ = data()
    expect_unchanged(model, lambda: model.predict(**make(x)), error, match)


def test_a_failed_first_call_leaves_a_sequential_unbuilt():
    """A Sequential without an input shape is built by its first data; if that call fails, it is unbuilt again
    and the generator its weights were drawn from is put back."""
    tinyseg.set_random_seed(0)
    model = Sequential([Conv2D(4, 3, padding="same"), BatchNormalization(), Conv2D(K, 1, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = data()
    before = backend.rng().bit_generator.state
    with pytest.raises(ValueError, match="label 3"):
        model.fit(x, _relabel((7, 0, 0), K)(x, y), verbose=0)
    assert model._graph is None and not any(layer.built for layer in model.layers)
    assert backend.rng().bit_generator.state == before
    model.fit(x, y, epochs=1, verbose=0)                           # and builds as if the failed call never was
    assert model.input_shape == (6, 6, 2)


# --- set_weights: every array checked before any is written ------------------------------------------------
def _replace(index, make):
    def change(weights):
        weights = list(weights)
        weights[index] = make(weights[index])
        return weights
    return change


SET_WEIGHTS_CASES = [
    ("one array too few", lambda w: w[:-1], ValueError, "weight arrays, got"),
    ("one array too many", lambda w: w + [w[-1]], ValueError, "weight arrays, got"),
    ("the last array of another shape", _replace(-1, lambda a: a[:-1]), ValueError,
     r"conv2d_\d+: weight 'bias' must have shape \(3,\), got \(2,\) \(array 7 of the list\)"),
    ("a kernel in PyTorch's layout", _replace(0, lambda a: a.transpose(3, 2, 0, 1)), ValueError,
     "weight 'kernel' must have shape"),
    ("complex numbers", _replace(-1, lambda a: a.astype(np.complex64)), TypeError, "'bias' must hold real numbers"),
    ("strings", _replace(-1, lambda a: a.astype(str)), TypeError, "'bias' must hold real numbers"),
    ("objects", _replace(-1, lambda a: a.astype(object)), TypeError, "'bias' must hold real numbers"),
    ("booleans", _replace(-1, lambda a: a > 0), TypeError, "'bias' must hold real numbers"),
    ("NaN in the moving variance", _replace(5, lambda a: np.full_like(a, np.nan)), ValueError,
     "weight 'moving_variance' holds NaN"),
    ("inf in the last kernel", _replace(-2, lambda a: np.full_like(a, np.inf)), ValueError,
     "weight 'kernel' holds NaN or inf"),
    ("float64 beyond float32's range", _replace(-1, lambda a: np.full(a.shape, 1e39)), ValueError,
     "once converted to float32"),
    ("a ragged list", _replace(-1, lambda a: [[1.0], [1.0, 2.0], []]), TypeError, "'bias' is not an array"),
    ("an array instead of a list", lambda w: np.zeros(len(w)), TypeError, "expected a list of arrays"),
    ("None", lambda w: None, TypeError, "expected a list of arrays"),
]


@pytest.mark.parametrize("change, error, match", [c[1:] for c in SET_WEIGHTS_CASES],
                         ids=[c[0] for c in SET_WEIGHTS_CASES])
def test_model_set_weights_is_all_or_nothing(change, error, match):
    model = trained_model()
    weights = change(model.get_weights())
    expect_unchanged(model, lambda: model.set_weights(weights), error, match)


def test_set_weights_accepts_integers_and_other_float_widths():
    model = trained_model()
    weights = model.get_weights()
    weights[-1] = np.array([1, 2, 3])                                 # integers, converted
    weights[0] = weights[0].astype(np.float64)
    model.set_weights(weights)
    assert model.get_weights()[-1].dtype == np.float32 and model.get_weights()[-1].tolist() == [1, 2, 3]


LAYER_SET_WEIGHTS_CASES = [
    ("BatchNorm: the last of four arrays of another shape", lambda w: w[:3] + [w[3][:2]], ValueError,
     "'moving_variance' must have shape"),
    ("BatchNorm: three arrays", lambda w: w[:3], ValueError, "expects 4 arrays"),
    ("BatchNorm: complex gamma", lambda w: [w[0].astype(complex)] + w[1:], TypeError, "'gamma' must hold real"),
    ("BatchNorm: a dict", lambda w: dict(enumerate(w)), TypeError, "expects a list of 4 arrays.*got dict"),
]


@pytest.mark.parametrize("change, error, match", [c[1:] for c in LAYER_SET_WEIGHTS_CASES],
                         ids=[c[0] for c in LAYER_SET_WEIGHTS_CASES])
def test_layer_set_weights_is_all_or_nothing(change, error, match):
    model = trained_model()
    bn = model.layers[1]
    weights = change(bn.get_weights())
    expect_unchanged(model, lambda: bn.set_weights(weights), error, match)


# --- compile: checked against the model and the loss, nothing set until all is checked ---------------------
def _metric_without_ignore_index(y_true, y_out):
    from tinyseg.metrics import confusion_matrix
    return float(confusion_matrix(y_true, y_out.argmax(-1), y_out.shape[-1]).trace())


def _metric_with_ignore_index(y_true, y_out, ignore_index=None):
    keep = y_true != ignore_index
    return float(np.mean(y_out.argmax(-1)[keep] == y_true[keep]))


def _metric_bound_to_0(y_true, y_out):
    return 0.0


_metric_bound_to_0.ignore_index = 0

COMPILE_CASES = [
    ("metrics a string", dict(metrics="accuracy"), TypeError, "metrics must be a list"),
    ("an unknown metric", dict(metrics=["f1"]), ValueError, "f1"),
    ("an unknown optimizer", dict(optimizer="adagrad"), ValueError, "optimizer must be one of"),
    ("an unknown loss", dict(loss="hinge"), ValueError, "loss must be one of"),
    ("class_weight of 2 entries for 3 classes", dict(loss=SparseCategoricalCrossentropy(class_weight=[1, 2])),
     ValueError, "class_weight has 2 entries"),
    ("from_logits=True on a softmax output", dict(loss=SparseCategoricalCrossentropy(from_logits=True)),
     ValueError, "from_logits=True"),
    ("a sigmoid loss on a softmax output", dict(loss="binary_crossentropy"), ValueError, "sigmoid"),
    ("a metric that fails on the loss's ignore_index",
     dict(loss=SparseCategoricalCrossentropy(ignore_index=255), metrics=[_metric_without_ignore_index]),
     ValueError, "metric '_metric_without_ignore_index' fails on targets that hold the loss's ignore_index=255"),
    ("a metric bound to another ignore_index",
     dict(loss=SparseCategoricalCrossentropy(ignore_index=255), metrics=[_metric_bound_to_0]), ValueError,
     "leaves out label 0, but the loss ignores label 255"),
]


@pytest.mark.parametrize("kwargs, error, match", [c[1:] for c in COMPILE_CASES], ids=[c[0] for c in COMPILE_CASES])
def test_compile_refuses_and_keeps_the_previous_settings(kwargs, error, match):
    model = trained_model()
    args = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", **kwargs}
    expect_unchanged(model, lambda: model.compile(**args), error, match)


def test_binary_dice_on_three_sigmoid_channels_is_refused_at_compile():
    model = Sequential([Conv2D(3, 1, activation="sigmoid", input_shape=(6, 6, 2))])
    with pytest.raises(ValueError, match="compile: dice: mode='binary' expects one logit channel"):
        model.compile(optimizer="adam", loss=DiceLoss(mode="binary"))
    assert model.loss is None and model.optimizer is None


def test_compile_hands_the_loss_ignore_index_to_a_metric_that_takes_it():
    model = trained_model()
    model.compile(optimizer="adam", loss=SparseCategoricalCrossentropy(ignore_index=255),
                  metrics=["accuracy", _metric_with_ignore_index])
    assert model._metric_fns[1]._fn.ignore_index == 255           # the function inside its MeanMetricWrapper
    x, y = data()
    y = _relabel((0, slice(None), slice(None)), 255)(x, y)
    history = model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["_metric_with_ignore_index"][0])


# --- constructors: hyper-parameters are checked when an optimizer or a loss is made -------------------------
OPTIMIZER_CASES = [
    ("SGD lr=0", lambda: SGD(0.0), ValueError, "learning_rate must be > 0"),
    ("SGD lr=-0.1", lambda: SGD(-0.1), ValueError, "learning_rate must be > 0"),
    ("SGD lr=nan", lambda: SGD(float("nan")), ValueError, "learning_rate must be > 0"),
    ("SGD lr=inf", lambda: SGD(float("inf")), ValueError, "learning_rate must be finite"),
    ("SGD lr='0.1'", lambda: SGD("0.1"), TypeError, "learning_rate must be a real number"),
    ("SGD lr=True", lambda: SGD(True), TypeError, "learning_rate must be a real number"),
    ("SGD lr=complex", lambda: SGD(0.1j), TypeError, "learning_rate must be a real number"),
    ("SGD momentum=1", lambda: SGD(0.1, momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
    ("SGD momentum=nan", lambda: SGD(0.1, momentum=float("nan")), ValueError, r"momentum must be in \[0, 1\)"),
    ("SGD momentum='0.9'", lambda: SGD(0.1, momentum="0.9"), TypeError, "momentum must be a real number"),
    ("SGD nesterov='yes'", lambda: SGD(0.1, 0.9, nesterov="yes"), TypeError, "nesterov must be True or False"),
    ("Adam lr=inf", lambda: Adam(float("inf")), ValueError, "learning_rate must be finite"),
    ("Adam beta_1=1", lambda: Adam(beta_1=1.0), ValueError, r"beta_1 must be in \[0, 1\)"),
    ("Adam beta_2=nan", lambda: Adam(beta_2=float("nan")), ValueError, r"beta_2 must be in \[0, 1\)"),
    ("Adam beta_2=None", lambda: Adam(beta_2=None), TypeError, "beta_2 must be a real number"),
    ("Adam epsilon=0", lambda: Adam(epsilon=0), ValueError, "epsilon must be a finite number > 0, got 0.0"),
    ("Adam epsilon=-1e-7", lambda: Adam(epsilon=-1e-7), ValueError, "epsilon must be a finite number > 0"),
    ("Adam epsilon=inf", lambda: Adam(epsilon=float("inf")), ValueError, "epsilon must be a finite number > 0"),
    ("Adam epsilon=nan", lambda: Adam(epsilon=float("nan")), ValueError, "epsilon must be a finite number > 0"),
    ("Adam epsilon_style='tf'", lambda: Adam(epsilon_style="tf"), ValueError, "epsilon_style"),
    ("RMSprop rho=1", lambda: RMSprop(rho=1.0), ValueError, r"rho must be in \[0, 1\)"),
    ("RMSprop epsilon=0", lambda: RMSprop(epsilon=0.0), ValueError, "epsilon must be a finite number > 0"),
    ("RMSprop centered='yes'", lambda: RMSprop(centered="yes"), ValueError, "centered must be True or False"),
    ("RMSprop momentum=-0.5", lambda: RMSprop(momentum=-0.5), ValueError, r"momentum must be in \[0, 1\)"),
]

LOSS_CASES = [
    ("class_weight with NaN", lambda: SparseCategoricalCrossentropy(class_weight=[1.0, np.nan]), ValueError,
     "class_weight"),
    ("class_weight with inf", lambda: SparseCategoricalCrossentropy(class_weight=[1.0, np.inf]), ValueError,
     "class_weight"),
    ("class_weight negative", lambda: SparseCategoricalCrossentropy(class_weight=[1.0, -1.0]), ValueError,
     "class_weight must be a 1-D sequence of non-negative"),
    ("class_weight all zeros", lambda: SparseCategoricalCrossentropy(class_weight=[0, 0, 0]), ValueError,
     "class_weight is all zeros"),
    ("class_weight 2-D", lambda: SparseCategoricalCrossentropy(class_weight=[[1, 2]]), ValueError, "class_weight"),
    ("class_weight strings", lambda: SparseCategoricalCrossentropy(class_weight=["a", "b"]), ValueError,
     "class_weight"),
    ("class_weight empty", lambda: SparseCategoricalCrossentropy(class_weight=[]), ValueError, "class_weight"),
    ("CE-Dice class_weight all zeros", lambda: CEDiceLoss(class_weight=[0.0, 0.0]), ValueError, "class_weight"),
    ("ignore_index=1.5", lambda: SparseCategoricalCrossentropy(ignore_index=1.5), TypeError, "ignore_index"),
    ("ignore_index=True", lambda: SparseCategoricalCrossentropy(ignore_index=True), TypeError, "ignore_index"),
    ("ignore_index='255'", lambda: DiceLoss(ignore_index="255"), TypeError, "ignore_index"),
    ("smooth=0", lambda: DiceLoss(smooth=0), ValueError, "smooth must be > 0"),
    ("smooth=-1", lambda: DiceLoss(smooth=-1.0), ValueError, "smooth must be > 0"),
    ("smooth=inf", lambda: DiceLoss(smooth=float("inf")), ValueError, "smooth must be > 0 and finite"),
    ("smooth=nan", lambda: DiceLoss(smooth=float("nan")), ValueError, "smooth"),
    ("smooth='1'", lambda: DiceLoss(smooth="1"), TypeError, "smooth must be a real number"),
    ("mode='multilabel'", lambda: DiceLoss(mode="multilabel"), ValueError, "mode must be"),
    ("from_logits='yes'", lambda: CategoricalCrossentropy(from_logits="yes"), TypeError, "from_logits"),
    ("from_logits=1", lambda: BinaryCrossentropy(from_logits=1), TypeError, "from_logits"),
    ("ce_weight=nan", lambda: CEDiceLoss(ce_weight=float("nan")), ValueError, "ce_weight"),
    ("dice_weight=-1", lambda: CEDiceLoss(dice_weight=-1.0), ValueError, "dice_weight"),
    ("both weights 0", lambda: CEDiceLoss(ce_weight=0, dice_weight=0), ValueError, "ce_weight and dice_weight"),
]

LAYER_CASES = [
    ("Conv2D with 0 filters", lambda: Conv2D(0, 3), ValueError, "filters"),
    ("Dense with 0 units", lambda: Dense(0), ValueError, "units"),
    ("Input with 0 channels", lambda: Input((8, 8, 0)), ValueError, "shape"),
    ("Input with a negative size", lambda: Input((8, -1, 3)), ValueError, "shape"),
    ("a layer built for 0 channels", lambda: Conv2D(2, 3).build((8, 8, 0)), ValueError, "input shape"),
    ("BatchNorm momentum=2", lambda: BatchNormalization(momentum=2.0), ValueError, "momentum"),
    ("Dropout rate=1", lambda: Dropout(1.0), ValueError, "rate"),
    ("UNet depth=0", lambda: UNet((8, 8, 1), depth=0), ValueError, "depth"),
    ("UNet num_classes=0", lambda: UNet((8, 8, 1), num_classes=0), ValueError, "num_classes"),
    ("UNet base_filters=0", lambda: UNet((8, 8, 1), base_filters=0), ValueError, "base_filters"),
    ("UNet dtype int32", lambda: UNet((8, 8, 1), dtype="int32"), TypeError, "dtype"),
    ("UNet size not divisible", lambda: UNet((10, 8, 1), depth=2), ValueError, "nearest valid height is 8"),
    ("a layer twice in a Sequential", lambda: (lambda d: Sequential([d, d]))(Dense(2, input_shape=(3,))),
     ValueError, "already in this Sequential"),
    ("a Sequential of a non-layer", lambda: Sequential(["dense"]), TypeError, "expected a tinyseg layer"),
]


@pytest.mark.parametrize("make, error, match", [c[1:] for c in OPTIMIZER_CASES + LOSS_CASES + LAYER_CASES],
                         ids=[c[0] for c in OPTIMIZER_CASES + LOSS_CASES + LAYER_CASES])
def test_constructors_refuse_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


# --- class names -------------------------------------------------------------------------------------------
CLASS_NAME_CASES = [
    ("a string", "abc", TypeError, "class_names must be a list of strings"),
    ("numbers", [0, 1, 2], TypeError, "class_names must be a list of strings"),
    ("two names for three classes", ["a", "b"], ValueError, "class_names has 2 names, but the model outputs 3"),
]


@pytest.mark.parametrize("names, error, match", [c[1:] for c in CLASS_NAME_CASES], ids=[c[0] for c in CLASS_NAME_CASES])
def test_class_names_are_checked(names, error, match):
    model = trained_model()
    model.class_names = ["x", "y", "z"]
    with pytest.raises(error, match=match):
        model.class_names = names
    assert model.class_names == ["x", "y", "z"]


# --- the optimizer on its own: a refused step changes no parameter and no slot ------------------------------
def _step_with(g, make=lambda: Adam(0.1), dtype=np.float32):
    opt = make()
    theta = np.ones(3, dtype)
    opt.apply_gradients([(np.array([0.5, -1.0, 2.0], dtype), theta)])          # slots exist, iterations 1
    before = theta.copy(), {k: v.copy() for k, v in opt._slots.items()}, opt.iterations
    return opt, theta, before, np.asarray(g, dtype)


APPLY_CASES = [
    ("a NaN gradient", [np.nan, 1, 1], np.float32, NonFiniteError, "parameter 0 holds 1 NaN and 0 infinite"),
    ("an infinite gradient", [1, -np.inf, np.inf], np.float32, NonFiniteError, "2 infinite values"),
    ("a float64 gradient whose square overflows", [1e200, 1, 1], np.float64, NonFiniteError, "overflows float64"),
    ("a gradient of another shape", [1, 1], np.float32, ValueError, r"gradient 0 has shape \(2,\)"),
    ("an integer gradient", [1, 1, 1], np.int64, TypeError, "must be float arrays"),
]


@pytest.mark.parametrize("g, dtype, error, match", [c[1:] for c in APPLY_CASES], ids=[c[0] for c in APPLY_CASES])
@pytest.mark.parametrize("make", [lambda: SGD(0.1, 0.9), lambda: Adam(0.1), lambda: RMSprop(0.1, centered=True)],
                         ids=["momentum", "adam", "rmsprop"])
def test_a_refused_step_changes_no_parameter_and_no_slot(make, g, dtype, error, match):
    if "float64" in match and make().name == "sgd":
        pytest.skip("SGD never squares a gradient")
    opt, theta, (theta0, slots0, t0), g = _step_with(g, make, np.float64 if dtype is np.float64 else np.float32)
    g = g.astype(dtype) if dtype is np.int64 else g
    with pytest.raises(error, match=match):
        opt.apply_gradients([(g, theta)])
    assert np.array_equal(theta, theta0) and opt.iterations == t0
    assert slots0.keys() == opt._slots.keys()
    assert all(np.array_equal(opt._slots[k], v) for k, v in slots0.items())


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 0.0, -1.0])
def test_a_learning_rate_set_after_construction_is_checked_at_the_step(value):
    opt, theta, (theta0, _, t0), g = _step_with([1.0, 1.0, 1.0])
    opt.learning_rate = value
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
        opt.apply_gradients([(g, theta)])
    assert np.array_equal(theta, theta0) and opt.iterations == t0


def test_names_given_to_apply_gradients_must_match_the_pairs():
    with pytest.raises(ValueError, match="2 names for 1"):
        SGD(0.1).apply_gradients([(np.ones(2), np.ones(2))], names=["a", "b"])
