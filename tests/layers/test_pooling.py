"""MaxPooling2D and AveragePooling2D: kernels against their NumPy twins, layers against a naive loop reference,
gradients against central differences, and (where torch is installed) against PyTorch."""
import math

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st

from tests.edge_cases import edge_cases_then_drawn, pool_cases
from tests.helpers import nchw_to_nhwc, nhwc_to_nchw, rel_error, use_backend
from tests.layers import contract
from tests.layers.conv_kit import keras_size
from tinyseg import reference
from tinyseg.gradcheck import check_layer
from tinyseg.kernels import pooling as kp
from tinyseg.layers.pooling import AveragePooling2D, AvgPool2D, MaxPool2D, MaxPooling2D

SETTINGS = settings(deadline=None, max_examples=25)
LAYERS = {"max": MaxPooling2D, "avg": AveragePooling2D}


@st.composite
def cases(draw, dtypes=(np.float32, np.float64), paddings=("valid", "same")):
    """A pooling problem: shape, pool_size, strides (None = pool_size, as Keras), padding, dtype, seed."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    strides = draw(st.none() | st.tuples(st.integers(1, 4), st.integers(1, 4)))
    padding = draw(st.sampled_from(paddings))
    low_h, low_w = (kh, kw) if padding == "valid" else (1, 1)
    shape = (draw(st.integers(1, 3)), draw(st.integers(low_h, low_h + 6)), draw(st.integers(low_w, low_w + 6)),
             draw(st.integers(1, 3)))
    return dict(shape=shape, pool_size=(kh, kw), strides=strides, padding=padding,
                dtype=draw(st.sampled_from(dtypes)), seed=draw(st.integers(0, 2**32 - 1)),
                ties=draw(st.booleans()))


def make_input(case, rng):
    """Normal noise, or (ties=True) small integers so that most windows hold a tied maximum."""
    if case["ties"]:
        return rng.integers(0, 3, case["shape"]).astype(case["dtype"])
    return rng.standard_normal(case["shape"]).astype(case["dtype"])


def distinct_input(shape, rng):
    """float64 values 0.01 apart, centred on 0, in random order: no ties, so the max has a derivative
    everywhere, and a step of GRADCHECK_STEP moves no value past another."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) - size / 2) * 0.01


# Both layers are (piecewise) linear, so a central difference has no truncation error at any step that stays
# on one piece; what is left is the rounding of the loss L, about ulp(L) / h. With h = 1e-6 that is ~1e-9,
# a relative error above 1e-6 wherever an upstream gradient entry happens to be ~1e-3; with h = 1e-3 it is
# ~1e-12. (Max pooling stays on one piece because no value is within 1e-3 of another.)
GRADCHECK_STEP = 1e-3


def make_layer(kind, case, **extra):
    return LAYERS[kind](pool_size=case["pool_size"], strides=case["strides"], padding=case["padding"],
                        dtype=case["dtype"], **extra)


# ----------------------------------------------------------------------------------------------------------
# The reference: plain Python loops, written from the Keras definition, not from the library.
# ----------------------------------------------------------------------------------------------------------
def naive_pool(kind, x, grad, pool_size, strides, padding):
    """(y, dx) for pooling x with upstream gradient grad, one element at a time: tinyseg.reference's loops."""
    return reference.pool2d(kind, x, grad, pool_size, strides, padding)


def kernel_problem(kind, case):
    """(rng, x, geom, out_hw): the case's input, the (pool_size, strides, pads) its layer computes, and (OH, OW)."""
    rng = np.random.default_rng(case["seed"])
    x = make_input(case, rng)
    layer = make_layer(kind, case)
    layer.build(x.shape[1:])
    return rng, x, (layer.pool_size, layer.strides, layer.pads), layer.output_shape[:2]


def tolerance(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)


# ----------------------------------------------------------------------------------------------------------
# Kernels: Numba equals the NumPy twin.
# ----------------------------------------------------------------------------------------------------------
@edge_cases_then_drawn(SETTINGS, cases(), pool_cases())
def test_max_pool_numba_equals_numpy_twin(case):
    rng, x, geom, out_hw = kernel_problem("max", case)
    with use_backend("numba"):
        y, arg = kp.max_pool2d(x, *geom, out_hw)
        grad = rng.standard_normal(y.shape).astype(x.dtype)
        dx = kp.max_pool2d_backward(grad, arg, x.shape, *geom)
    y_np, arg_np = kp.max_pool2d_numpy(x, *geom, out_hw)
    dx_np = kp.max_pool2d_backward_numpy(grad, arg_np, x.shape, *geom)
    assert y.dtype == dx.dtype == x.dtype
    np.testing.assert_array_equal(y, y_np)
    np.testing.assert_array_equal(arg, arg_np)           # same tie rule
    np.testing.assert_allclose(dx, dx_np, **tolerance(x.dtype))


@edge_cases_then_drawn(SETTINGS, cases(), pool_cases())
def test_avg_pool_numba_equals_numpy_twin(case):
    rng, x, geom, out_hw = kernel_problem("avg", case)
    with use_backend("numba"):
        y = kp.avg_pool2d(x, *geom, out_hw)
        grad = rng.standard_normal(y.shape).astype(x.dtype)
        dx = kp.avg_pool2d_backward(grad, x.shape, *geom)
    assert y.dtype == dx.dtype == x.dtype
    np.testing.assert_array_equal(y, kp.avg_pool2d_numpy(x, *geom, out_hw))
    np.testing.assert_allclose(dx, kp.avg_pool2d_backward_numpy(grad, x.shape, *geom), **tolerance(x.dtype))


# ----------------------------------------------------------------------------------------------------------
# Layers against the naive reference, on both backends.
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("kind", ["max", "avg"])
@edge_cases_then_drawn(SETTINGS, cases(), pool_cases())
def test_layer_matches_naive_loops(kind, backend, case):
    rng = np.random.default_rng(case["seed"])
    x = make_input(case, rng)
    layer = make_layer(kind, case)
    with use_backend(backend):
        y = layer.forward(x)
        grad = rng.standard_normal(y.shape).astype(x.dtype)
        dx = layer.backward(grad)
    y_ref, dx_ref = naive_pool(kind, x, grad, case["pool_size"], case["strides"], case["padding"])
    assert y.shape == y_ref.shape and dx.shape == x.shape
    assert y.dtype == dx.dtype == x.dtype
    np.testing.assert_allclose(y, y_ref, **tolerance(x.dtype))
    np.testing.assert_allclose(dx, dx_ref, **tolerance(x.dtype))


@edge_cases_then_drawn(SETTINGS, cases(dtypes=(np.float32,)), pool_cases(dtypes=("float32",)))
def test_output_shape_follows_the_documented_rule(case):
    n, h, w, c = case["shape"]
    (kh, kw), (sh, sw) = case["pool_size"], case["strides"] or case["pool_size"]
    if case["padding"] == "valid":
        expected = ((h - kh) // sh + 1, (w - kw) // sw + 1, c)
    else:
        expected = (math.ceil(h / sh), math.ceil(w / sw), c)
    for kind in LAYERS:
        layer = make_layer(kind, case)
        assert layer.compute_output_shape((h, w, c)) == expected
        assert layer.forward(np.zeros(case["shape"], np.float32)).shape == (n,) + expected


def test_same_padding_is_ignored_by_hand():
    """3x3 image, 2x2 windows, stride 2, 'same': pads (0, 1, 0, 1); border windows see only real pixels."""
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    avg = AveragePooling2D(padding="same", dtype="float64").forward(x)
    np.testing.assert_array_equal(avg[0, :, :, 0], [[3.0, 4.5], [7.5, 9.0]])      # not 2.25 etc. (zeros counted)
    mx = MaxPooling2D(padding="same", dtype="float64").forward(-x)
    np.testing.assert_array_equal(mx[0, :, :, 0], [[-1.0, -3.0], [-7.0, -9.0]])   # not 0 (a zero pad winning)


def test_extra_padding_goes_right():
    """W=4, window 2, stride 1, 'same': one padded column, on the right (TensorFlow/Keras)."""
    x = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 4, 1)
    y = AveragePooling2D(pool_size=(1, 2), strides=1, padding="same", dtype="float64").forward(x)
    np.testing.assert_array_equal(y.ravel(), [1.5, 2.5, 3.5, 4.0])


def test_max_tie_sends_gradient_to_first_in_scan_order():
    x = np.array([[5.0, 5.0], [5.0, 5.0]]).reshape(1, 2, 2, 1)
    layer = MaxPooling2D(dtype="float64")
    layer.forward(x)
    dx = layer.backward(np.full((1, 1, 1, 1), 7.0))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[7.0, 0.0], [0.0, 0.0]])
    x = np.array([[1.0, 2.0], [2.0, 0.0]]).reshape(1, 2, 2, 1)     # tie between (0, 1) and (1, 0)
    layer.forward(x)
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1, 1, 1)))[0, :, :, 0], [[0.0, 1.0], [0.0, 0.0]])


def test_overlapping_windows_add_their_gradients():
    """3x3 windows, stride 1 on a 4x4 image whose maximum is at (1, 1): all four windows pick it."""
    x = np.zeros((1, 4, 4, 1))
    x[0, 1, 1, 0] = 9.0
    layer = MaxPooling2D(pool_size=3, strides=1, dtype="float64")
    layer.forward(x)
    dx = layer.backward(np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2, 1))
    assert dx[0, 1, 1, 0] == 10.0 and dx.sum() == 10.0


# ----------------------------------------------------------------------------------------------------------
# Gradients against central differences (float64).
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["max", "avg"])
@edge_cases_then_drawn(SETTINGS, cases(dtypes=(np.float64,)), pool_cases(dtypes=("float64",)))
def test_gradcheck(kind, case):
    rng = np.random.default_rng(case["seed"])
    x = distinct_input(case["shape"], rng) if kind == "max" else rng.standard_normal(case["shape"])
    report = check_layer(make_layer(kind, case), x, h=GRADCHECK_STEP, max_entries=None, seed=case["seed"] % 1000)
    assert report.n_checked == x.size
    assert report.max_rel_error < 1e-6, str(report)


def test_gradcheck_catches_a_wrong_average_count():
    """The check is not vacuous: an average that counts padded pixels in its backward is caught."""

    class CountsPadding(AveragePooling2D):
        def backward(self, grad):
            # the classic bug: divide by KH*KW, counting padded pixels, by treating the padded image as real
            (pt, pb, pl, pr), (n, h, w, c) = self.pads, self.saved.x_shape
            dxp = kp.avg_pool2d_backward(grad, (n, h + pt + pb, w + pl + pr, c), self.pool_size, self.strides,
                                         (0, 0, 0, 0))
            return dxp[:, pt:pt + h, pl:pl + w]

    x = np.random.default_rng(0).standard_normal((1, 3, 3, 2))
    report = check_layer(CountsPadding(padding="same", dtype="float64"), x, h=GRADCHECK_STEP, max_entries=None)
    assert report.n_failed > 0


# ----------------------------------------------------------------------------------------------------------
# The contract: no mutation, config round trip, clear errors.
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["max", "avg"])
@edge_cases_then_drawn(SETTINGS, cases(), pool_cases())
def test_never_mutates_or_aliases_its_arguments(kind, case):
    rng = np.random.default_rng(case["seed"])
    contract.assert_leaves_its_arguments_alone(make_layer(kind, case), make_input(case, rng), rng)


@pytest.mark.parametrize("cls", [MaxPooling2D, AveragePooling2D])
def test_get_config_rebuilds_the_layer(cls):
    layer = cls(pool_size=(3, 2), strides=(1, 2), padding="same", dtype="float64")
    expected = {"dtype": "float64", "pool_size": (3, 2), "strides": (1, 2), "padding": "same"}
    contract.assert_config_rebuilds(layer, expected, np.random.default_rng(1).standard_normal((2, 5, 6, 3)))


def test_strides_default_to_pool_size_and_aliases():
    assert MaxPooling2D(pool_size=3).strides == (3, 3)
    assert AveragePooling2D(pool_size=(2, 3), strides=1).strides == (1, 1)
    assert MaxPool2D is MaxPooling2D and AvgPool2D is AveragePooling2D


@pytest.mark.parametrize("cls", [MaxPooling2D, AveragePooling2D])
@pytest.mark.parametrize("kwargs, error, match", [
    (dict(pool_size=0), ValueError, "pool_size"),
    (dict(pool_size=(2, 2, 2)), ValueError, "pool_size"),
    (dict(pool_size="2"), ValueError, "pool_size"),
    (dict(pool_size=1.5), ValueError, "pool_size"),
    (dict(strides=(0, 1)), ValueError, "strides"),
    (dict(strides=-2), ValueError, "strides"),
    (dict(padding="full"), ValueError, "padding"),
    (dict(padding=None), ValueError, "padding"),
    (dict(dtype="int32"), TypeError, "dtype"),
])
def test_bad_arguments_are_named(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(**kwargs)


@pytest.mark.parametrize("cls", [MaxPooling2D, AveragePooling2D])
def test_bad_inputs_are_named(cls):
    contract.assert_bad_images_are_named(lambda dtype: cls(dtype=dtype), np.int64)
    with pytest.raises(TypeError, match="x must be a NumPy array"):
        cls().forward([[[[1.0]]]])
    with pytest.raises(ValueError, match="smaller than the window"):
        cls(pool_size=3).forward(np.zeros((1, 2, 5, 1), np.float32))
    layer = cls()
    layer.forward(np.zeros((2, 4, 4, 1), np.float32))
    with pytest.raises(ValueError, match="x has shape"):           # other H and W are fine; other channels not
        layer.forward(np.zeros((2, 4, 4, 2), np.float32))
    with pytest.raises(ValueError, match="grad has shape"):
        layer.backward(np.zeros((2, 4, 4, 1), np.float32))
    with pytest.raises(ValueError, match="grad has batch size 3"):
        layer.backward(np.zeros((3, 2, 2, 1), np.float32))


# ----------------------------------------------------------------------------------------------------------
# PyTorch parity (NHWC here, NCHW there: converted by tests.helpers.nhwc_to_nchw and nchw_to_nhwc).
# ----------------------------------------------------------------------------------------------------------
def torch_pool(kind, x, grad, case):
    """PyTorch's output and input gradient, NHWC in and out. 'same' is built from an explicit asymmetric pad
    (Keras's rule, restated in conv_kit.keras_size, not read from the layer): -inf for max; for average,
    pooled sums divided by pooled counts of real pixels."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    layer = make_layer(kind, case)
    layer.build(x.shape[1:])
    _, pt, pb = keras_size(x.shape[1], layer.pool_size[0], layer.strides[0], case["padding"])
    _, pl, pr = keras_size(x.shape[2], layer.pool_size[1], layer.strides[1], case["padding"])
    xt = torch.tensor(nhwc_to_nchw(x), requires_grad=True)
    pool_args = dict(kernel_size=layer.pool_size, stride=layer.strides)
    if kind == "max":
        yt = F.max_pool2d(F.pad(xt, (pl, pr, pt, pb), value=-math.inf), **pool_args)
    else:
        sums = F.avg_pool2d(F.pad(xt, (pl, pr, pt, pb)), divisor_override=1, **pool_args)
        counts = F.avg_pool2d(F.pad(torch.ones_like(xt), (pl, pr, pt, pb)), divisor_override=1, **pool_args)
        yt = sums / counts
    yt.backward(torch.tensor(nhwc_to_nchw(grad)))
    return nchw_to_nhwc(yt.detach().numpy()), nchw_to_nhwc(xt.grad.numpy())


@pytest.mark.parametrize("kind", ["max", "avg"])
@edge_cases_then_drawn(SETTINGS, cases(dtypes=(np.float64,), paddings=("valid",)),
                       pool_cases(dtypes=("float64",), paddings=("valid",)))
def test_valid_matches_torch_pool2d(kind, case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(case["seed"])
    # with ties=True (small integers) this also checks that PyTorch's CPU max_pool2d picks the same maximum
    x = make_input(case, rng) if case["ties"] else distinct_input(case["shape"], rng)
    layer = make_layer(kind, case)
    y = layer.forward(x)
    grad = rng.standard_normal(y.shape)
    dx = layer.backward(grad)
    xt = torch.tensor(nhwc_to_nchw(x), requires_grad=True)
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    yt = pool(xt, kernel_size=layer.pool_size, stride=layer.strides)
    yt.backward(torch.tensor(nhwc_to_nchw(grad)))
    assert rel_error(y, nchw_to_nhwc(yt.detach().numpy())) <= 1e-10
    assert rel_error(dx, nchw_to_nhwc(xt.grad.numpy())) <= 1e-10


@pytest.mark.parametrize("kind", ["max", "avg"])
@edge_cases_then_drawn(SETTINGS, cases(dtypes=(np.float64,), paddings=("same",)),
                       pool_cases(dtypes=("float64",), paddings=("same",)))
def test_same_matches_torch_with_explicit_padding(kind, case):
    rng = np.random.default_rng(case["seed"])
    x = distinct_input(case["shape"], rng)
    layer = make_layer(kind, case)
    y = layer.forward(x)
    grad = rng.standard_normal(y.shape)
    dx = layer.backward(grad)
    y_t, dx_t = torch_pool(kind, x, grad, case)
    assert rel_error(y, y_t) <= 1e-10
    assert rel_error(dx, dx_t) <= 1e-10


@pytest.mark.parametrize("cls", [MaxPooling2D, AveragePooling2D])
def test_backward_before_forward_says_so(cls):
    layer = cls()
    layer.build((4, 4, 1))
    with pytest.raises(RuntimeError, match="backward\\(\\) called before forward\\(\\)"):
        layer.backward(np.zeros((1, 2, 2, 1), np.float32))
