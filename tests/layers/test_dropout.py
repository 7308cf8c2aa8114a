"""Dropout: identity at inference, inverted dropout in training, reproducible masks, gradients, errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyseg import backend
from tinyseg.gradcheck import check_layer
from tinyseg.layers.regularization import Dropout

SETTINGS = settings(deadline=None, max_examples=25)

shapes = st.one_of(st.tuples(st.integers(1, 5), st.integers(1, 8)),
                   st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3)))
rates = st.floats(0, 0.9)


# --- gradient checks ----------------------------------------------------------------------------------
@SETTINGS
@given(shape=shapes, rate=rates, seed=st.integers(0, 2**32 - 1))
def test_gradient_training_mode_with_a_replayed_mask(shape, rate, seed):
    """check_layer calls forward many times; reseed() before each makes every call draw the same mask."""
    layer = Dropout(rate, seed=seed, dtype="float64")
    x = np.random.default_rng((1, seed)).standard_normal(shape)

    def forward(inp):
        layer.reseed()
        return layer.forward(inp, training=True)

    # Linear in x for a fixed mask: no truncation error, so a large step only shrinks roundoff.
    report = check_layer(layer, x, forward=forward, h=1e-3, seed=seed)
    assert report.ok and report.max_rel_error < 1e-6, str(report)


@SETTINGS
@given(shape=shapes, rate=rates, seed=st.integers(0, 2**32 - 1))
def test_gradient_inference_mode(shape, rate, seed):
    layer = Dropout(rate, seed=seed, dtype="float64")
    x = np.random.default_rng((2, seed)).standard_normal(shape)
    report = check_layer(layer, x, training=False, h=1e-3, seed=seed)
    assert report.ok and report.max_rel_error < 1e-6, str(report)


# --- behaviour ----------------------------------------------------------------------------------------
@SETTINGS
@given(shape=shapes, rate=rates)
def test_inference_is_identity(shape, rate):
    layer = Dropout(rate, seed=0)
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    g = np.random.default_rng(1).standard_normal(shape).astype("float32")
    dx = layer.backward(g)
    np.testing.assert_array_equal(dx, g)
    assert dx is not g                                # a new array, so the caller's grad stays theirs


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_training_keeps_about_one_minus_rate_and_scales_the_survivors(rate):
    n = 200_000
    layer = Dropout(rate, seed=1)
    y = layer.forward(np.ones((n, 1), "float32"), training=True)
    kept = y != 0
    # a binomial count: 5 standard deviations is a bound a correct layer essentially never crosses
    assert abs(kept.mean() - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / n)
    np.testing.assert_allclose(y[kept], 1 / (1 - rate), rtol=1e-6)      # inverted dropout: x / (1 - rate)
    assert y.dtype == np.float32


def test_expected_value_is_preserved():
    rng = np.random.default_rng(2)
    x = rng.uniform(1, 2, size=(16, 8)).astype("float64")
    layer = Dropout(0.6, seed=3, dtype="float64")
    trials = 4000
    mean = sum(layer.forward(x, training=True) for _ in range(trials)) / trials
    # each entry's average: std of one draw is x * sqrt(rate / (1 - rate)) = 1.22 x; over 4000 draws 0.019 x
    np.testing.assert_allclose(mean, x, rtol=6 * np.sqrt(0.6 / 0.4 / trials))
    assert abs(mean.mean() / x.mean() - 1) < 0.005       # and over all 128 entries together


def test_rate_zero_trains_as_identity():
    x = np.random.default_rng(4).standard_normal((3, 4)).astype("float32")
    layer = Dropout(0.0, seed=0)
    np.testing.assert_array_equal(layer.forward(x, training=True), x)
    np.testing.assert_array_equal(layer.backward(x), x)


def test_same_seed_same_masks_different_seed_different_masks():
    x = np.ones((8, 32), "float32")
    a, b, c = Dropout(0.5, seed=11), Dropout(0.5, seed=11), Dropout(0.5, seed=12)
    first = [a.forward(x, training=True) for _ in range(3)]
    for y in first:
        np.testing.assert_array_equal(y, b.forward(x, training=True))
    assert not np.array_equal(first[0], first[1])               # a new mask at every training step
    assert not np.array_equal(first[0], c.forward(x, training=True))
    a.reseed()                                                   # replay from the start
    for y in first:
        np.testing.assert_array_equal(y, a.forward(x, training=True))
    a.reseed(12)                                                 # or switch to another seed
    c.reseed()
    np.testing.assert_array_equal(a.forward(x, training=True), c.forward(x, training=True))


def test_unseeded_layers_draw_from_the_shared_generator(monkeypatch):
    monkeypatch.setattr(backend, "_RNG", backend.rng())         # restore the shared generator afterwards
    x = np.ones((8, 32), "float32")
    backend.set_random_seed(5)
    y1 = Dropout(0.5).forward(x, training=True)
    backend.set_random_seed(5)                                   # replaces the generator: looked up per draw
    layer = Dropout(0.5)
    y2 = layer.forward(x, training=True)
    np.testing.assert_array_equal(y1, y2)
    expected = np.random.default_rng(5).random(x.shape) >= 0.5
    np.testing.assert_array_equal(y1 != 0, expected)
    with pytest.raises(ValueError, match="reseed\\(\\) needs a seed"):
        layer.reseed()


@SETTINGS
@given(shape=shapes, rate=st.floats(0.05, 0.9), seed=st.integers(0, 2**32 - 1))
def test_backward_uses_the_forward_mask(shape, rate, seed):
    layer = Dropout(rate, seed=seed, dtype="float64")
    y = layer.forward(np.ones(shape), training=True)            # y is the scaled mask itself
    g = np.random.default_rng(seed).standard_normal(shape)
    g_before = g.copy()
    np.testing.assert_array_equal(layer.backward(g), g * y)
    np.testing.assert_array_equal(layer.backward(g), g * y)      # backward draws nothing
    np.testing.assert_array_equal(g, g_before)


def test_get_config_and_no_weights():
    layer = Dropout(0.25, seed=3, name="drop")
    assert layer.get_config() == {"name": "drop", "dtype": "float32", "rate": 0.25, "seed": 3}
    layer.forward(np.ones((2, 3), "float32"), training=True)
    assert layer.params == {} and layer.get_weights() == [] and layer.count_params() == 0


# --- errors -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan"), "0.5", True, None])
def test_rate_must_be_in_zero_one(rate):
    with pytest.raises(ValueError, match="rate must be a number in \\[0, 1\\)"):
        Dropout(rate)


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match="seed must be None or a non-negative integer"):
        Dropout(0.5, seed=seed)


def test_wrong_dtype_shape_and_grad():
    layer = Dropout(0.5, seed=0)
    with pytest.raises(RuntimeError, match="backward\\(\\) called before forward\\(\\)"):
        layer.backward(np.ones((2, 3), "float32"))
    with pytest.raises(TypeError, match="dtype float64 but the layer computes in float32"):
        layer.forward(np.ones((2, 3)), training=True)
    layer.forward(np.ones((2, 3), "float32"), training=True)
    with pytest.raises(ValueError, match=r"has shape \(2, 4\), expected \(batch,\) \+ \(3,\)"):
        layer.forward(np.ones((2, 4), "float32"), training=True)
    with pytest.raises(ValueError, match="grad has shape"):
        layer.backward(np.ones((2, 4), "float32"))
    with pytest.raises(ValueError, match="the last forward saw \\(2, 3\\)"):
        layer.backward(np.ones((1, 3), "float32"))              # would broadcast silently without the check
