"""GlobalMaxPooling2D and GlobalAveragePooling2D: against a loop reference (ties included), central
differences, PyTorch (1e-10 in float64, on tie-free inputs), errors and configs."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import PARITY_TOL, torch_errors
from tinyseg.gradcheck import check_layer
from tinyseg.layers import Dense, GlobalAveragePooling2D, GlobalMaxPooling2D
from tinyseg.layers.global_pooling import GlobalAvgPool2D, GlobalMaxPool2D

SETTINGS = settings(deadline=None, max_examples=25)
LAYERS = [GlobalMaxPooling2D, GlobalAveragePooling2D]
images = st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), st.integers(1, 4))


def reference(cls, x, g):
    """The module docstring's formulas as loops: y (N, C) and dx (N, H, W, C) for an upstream g (N, C)."""
    n, h, w, c = x.shape
    y, dx = np.zeros((n, c)), np.zeros(x.shape)
    for b in range(n):
        for k in range(c):
            if cls is GlobalAveragePooling2D:
                y[b, k] = x[b, :, :, k].sum() / (h * w)
                dx[b, :, :, k] = g[b, k] / (h * w)
                continue
            best = (0, 0)
            for i in range(h):                     # row-major: the first maximum wins, a later tie does not
                for j in range(w):
                    if x[b, i, j, k] > x[b, best[0], best[1], k]:
                        best = (i, j)
            y[b, k] = x[b, best[0], best[1], k]
            dx[b, best[0], best[1], k] = g[b, k]
    return y, dx


def distinct_input(shape, rng):
    """float64 values 0.01 apart in random order: no ties, and a step of 1e-3 moves no value past another."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) - size / 2) * 0.01


@SETTINGS
@given(shape=images, cls=st.sampled_from(LAYERS), keepdims=st.booleans(), ties=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_against_the_loop_reference(shape, cls, keepdims, ties, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    layer = cls(keepdims=keepdims, dtype="float64")
    y = layer.forward(x)
    n, _, _, c = shape
    assert y.shape == ((n, 1, 1, c) if keepdims else (n, c)) and layer.output_shape == y.shape[1:]
    g = rng.standard_normal(y.shape)
    g_before = g.copy()
    dx = layer.backward(g)
    y_ref, dx_ref = reference(cls, x, g.reshape(n, c))
    np.testing.assert_allclose(y.reshape(n, c), y_ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(g, g_before)
    assert not np.shares_memory(dx, g)


@SETTINGS
@given(shape=images, cls=st.sampled_from(LAYERS), keepdims=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_gradient_check(shape, cls, keepdims, seed):
    # Both are (piecewise) linear: no truncation error, so a large step only shrinks roundoff; the inputs
    # are 0.01 apart, so the step moves no maximum.
    x = distinct_input(shape, np.random.default_rng(seed))
    report = check_layer(cls(keepdims=keepdims, dtype="float64"), x, h=1e-3, seed=seed)
    assert report.ok and report.max_rel_error < 1e-6, str(report)


def test_max_gradient_goes_to_the_first_maximum_on_a_tie():
    x = np.zeros((1, 2, 2, 1))
    x[0, 0, 1, 0] = x[0, 1, 0, 0] = 5.0                        # two maxima: (0, 1) comes first row-major
    layer = GlobalMaxPooling2D(dtype="float64")
    assert layer.forward(x)[0, 0] == 5.0
    np.testing.assert_array_equal(layer.backward(np.array([[3.0]]))[0, :, :, 0], [[0.0, 3.0], [0.0, 0.0]])


def test_float32_and_aliases():
    x = np.random.default_rng(0).standard_normal((2, 5, 4, 3)).astype(np.float32)
    for cls in LAYERS:
        layer = cls()
        y = layer.forward(x)
        assert y.dtype == np.float32 and layer.backward(np.ones_like(y)).dtype == np.float32
    assert GlobalMaxPool2D is GlobalMaxPooling2D and GlobalAvgPool2D is GlobalAveragePooling2D


# --- PyTorch --------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("one_torch_thread")
@SETTINGS
@given(shape=images, cls=st.sampled_from(LAYERS), keepdims=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_matches_pytorch(shape, cls, keepdims, seed):
    """Tie-free inputs: on a tie torch's amax shares the gradient among the maxima, tinyseg gives it to the
    first (both are valid subgradients; the interop table says so)."""
    x = distinct_input(shape, np.random.default_rng(seed))
    errors = torch_errors(cls(keepdims=keepdims, dtype="float64"), x, seed)
    assert max(errors.values()) <= PARITY_TOL, errors


@pytest.mark.usefixtures("one_torch_thread")
def test_torch_shares_a_tied_gradient_as_documented():
    """Why the parity test avoids ties."""
    pytest.importorskip("torch")
    from tinyseg.interop import layer_to_torch, nhwc_to_nchw, to_tensor
    x = np.ones((1, 2, 2, 1))
    layer = GlobalMaxPooling2D(dtype="float64")
    layer.forward(x)
    xt = to_tensor(nhwc_to_nchw(x), requires_grad=True)
    layer_to_torch(layer)(xt).sum().backward()
    np.testing.assert_array_equal(xt.grad.numpy()[0, 0], [[0.25, 0.25], [0.25, 0.25]])
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1)))[0, :, :, 0], [[1.0, 0.0], [0.0, 0.0]])


@pytest.mark.usefixtures("one_torch_thread")
def test_dense_after_global_pooling_needs_no_feature_permutation():
    """(N, C) vectors are the same in both layouts, so a Sequential converts as it is."""
    pytest.importorskip("torch")
    from tinyseg.interop import nhwc_to_nchw, relative_error, to_tensor, to_torch
    from tinyseg.layers import Conv2D
    from tinyseg.models import Sequential
    model = Sequential([Conv2D(3, 3, padding="same", activation="relu", input_shape=(6, 5, 2), dtype="float64"),
                        GlobalAveragePooling2D(dtype="float64"), Dense(4, dtype="float64")])
    x = np.random.default_rng(1).standard_normal((2, 6, 5, 2))
    y = model.call(x, logits=True)
    assert relative_error(y, to_torch(model)(to_tensor(nhwc_to_nchw(x)))) <= PARITY_TOL


# --- errors and config ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", LAYERS)
def test_errors(cls):
    with pytest.raises(ValueError, match="expects images"):
        cls().forward(np.ones((2, 3), "float32"))
    with pytest.raises(ValueError, match="keepdims must be True or False, got 'yes'"):
        cls(keepdims="yes")
    layer = cls()
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        layer.backward(np.ones((2, 3), "float32"))
    layer.forward(np.ones((2, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match=r"grad has shape \(2, 1, 1, 3\), expected \(batch,\) \+ \(3,\)"):
        layer.backward(np.ones((2, 1, 1, 3), "float32"))
    with pytest.raises(ValueError, match="grad has batch size 1 but the last forward had 2"):
        layer.backward(np.ones((1, 3), "float32"))            # would broadcast over the batch


@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("keepdims", [False, True])
def test_config_rebuilds_an_equivalent_layer(cls, keepdims):
    layer = cls(keepdims=keepdims, name="pool", dtype="float64")
    config = layer.get_config()
    assert config == {"name": "pool", "dtype": "float64", "keepdims": keepdims}
    twin = type(layer)(**config)
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 2))
    np.testing.assert_array_equal(twin.forward(x), layer.forward(x))
