"""UpSampling2D: kernels against their NumPy twins, the layer against a naive loop reference, gradients against
central differences, and (where torch is installed) against PyTorch's F.interpolate."""
import math

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st

from tests.edge_cases import edge_cases_then_drawn, upsampling_cases
from tests.helpers import nchw_to_nhwc, nhwc_to_nchw, rel_error, use_backend
from tests.layers import contract
from tinyseg.gradcheck import check_layer
from tinyseg.kernels import upsampling as ku
from tinyseg.layers.upsampling import UpSampling2D

SETTINGS = settings(deadline=None, max_examples=25)
# The layer is linear, so a central difference has no truncation error at any step; what is left is the
# rounding of the loss L, about ulp(L) / h. With h = 1e-6 that is ~1e-9, a relative error above 1e-6 wherever
# an input's gradient happens to be ~1e-3; with h = 1e-3 it is ~1e-12.
GRADCHECK_STEP = 1e-3
KERNELS = {  # interpolation -> (forward, backward, forward twin, backward twin)
    "nearest": (ku.upsample_nearest, ku.upsample_nearest_backward, ku.upsample_nearest_numpy,
                ku.upsample_nearest_backward_numpy),
    "bilinear": (ku.upsample_bilinear, ku.upsample_bilinear_backward, ku.upsample_bilinear_numpy,
                 ku.upsample_bilinear_backward_numpy),
}


@st.composite
def cases(draw, dtypes=(np.float32, np.float64)):
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.integers(1, 3)))
    return dict(shape=shape, size=(draw(st.integers(1, 4)), draw(st.integers(1, 4))),
                dtype=draw(st.sampled_from(dtypes)), seed=draw(st.integers(0, 2**32 - 1)))


def tolerance(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)


# ----------------------------------------------------------------------------------------------------------
# The reference: plain Python loops from the definitions (Keras / TF half-pixel centres).
# ----------------------------------------------------------------------------------------------------------
def source_taps(i, factor, size):
    """[(input index, weight), (input index, weight)] that output index i reads along one axis."""
    src = max((i + 0.5) / factor - 0.5, 0.0)
    i0 = math.floor(src)
    t = src - i0
    return [(i0, 1.0 - t), (min(i0 + 1, size - 1), t)]


def naive_upsample(interpolation, x, grad, size):
    """Return (y, dx) for upsampling x with upstream gradient grad, one element at a time."""
    n, h, w, c = x.shape
    fh, fw = size
    y = np.zeros((n, h * fh, w * fw, c))
    dx = np.zeros(x.shape)
    for b_ in range(n):
        for i in range(h * fh):
            for j in range(w * fw):
                if interpolation == "nearest":
                    taps = [(i // fh, j // fw, 1.0)]
                else:
                    taps = [(r, q, p * s) for r, p in source_taps(i, fh, h) for q, s in source_taps(j, fw, w)]
                for ch in range(c):
                    for r, q, weight in taps:
                        y[b_, i, j, ch] += weight * float(x[b_, r, q, ch])
                        dx[b_, r, q, ch] += weight * float(grad[b_, i, j, ch])
    return y, dx


# ----------------------------------------------------------------------------------------------------------
# Kernels: Numba equals the NumPy twin.
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@edge_cases_then_drawn(SETTINGS, cases(), upsampling_cases())
def test_numba_equals_numpy_twin(interpolation, case):
    forward, backward, forward_np, backward_np = KERNELS[interpolation]
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["shape"]).astype(case["dtype"])
    with use_backend("numba"):
        y = forward(x, case["size"])
        grad = rng.standard_normal(y.shape).astype(x.dtype)
        dx = backward(grad, case["size"])
    assert y.dtype == dx.dtype == x.dtype
    np.testing.assert_array_equal(y, forward_np(x, case["size"]))
    np.testing.assert_allclose(dx, backward_np(grad, case["size"]), **tolerance(x.dtype))


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_interpolation_matrix_rows_are_the_taps(size):
    """Each row of A sums to 1 (interpolation reproduces constants) and A @ x equals the twin along one axis."""
    a = ku.interpolation_matrix(4, size)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    x = np.random.default_rng(size).standard_normal((1, 4, 1, 1))
    np.testing.assert_allclose(a @ x[0, :, 0, 0], ku.upsample_bilinear_numpy(x, (size, 1))[0, :, 0, 0],
                               rtol=1e-14)


def test_backward_refuses_a_grad_that_is_not_an_upsampling():
    with pytest.raises(ValueError, match=r"not an upsampling by size=\(2, 2\)"):
        ku.upsample_bilinear_backward(np.zeros((1, 5, 4, 1)), (2, 2))


# ----------------------------------------------------------------------------------------------------------
# The layer against the naive reference, on both backends.
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@edge_cases_then_drawn(SETTINGS, cases(), upsampling_cases())
def test_layer_matches_naive_loops(interpolation, backend, case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["shape"]).astype(case["dtype"])
    layer = UpSampling2D(size=case["size"], interpolation=interpolation, dtype=case["dtype"])
    with use_backend(backend):
        y = layer.forward(x)
        grad = rng.standard_normal(y.shape).astype(x.dtype)
        dx = layer.backward(grad)
    y_ref, dx_ref = naive_upsample(interpolation, x, grad, case["size"])
    n, h, w, c = x.shape
    assert y.shape == (n, h * case["size"][0], w * case["size"][1], c) == y_ref.shape
    assert layer.compute_output_shape((h, w, c)) == y.shape[1:]
    assert y.dtype == dx.dtype == x.dtype
    np.testing.assert_allclose(y, y_ref, **tolerance(x.dtype))
    np.testing.assert_allclose(dx, dx_ref, **tolerance(x.dtype))


def test_bilinear_by_hand():
    """[0, 1] doubled: centres at input positions -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to the last
    pixel) give 0, 0.25, 0.75, 1."""
    y = UpSampling2D(size=(1, 2), interpolation="bilinear", dtype="float64").forward(
        np.array([0.0, 1.0]).reshape(1, 1, 2, 1))
    np.testing.assert_array_equal(y.ravel(), [0.0, 0.25, 0.75, 1.0])


def test_nearest_by_hand():
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    layer = UpSampling2D(size=(2, 3), dtype="float64")
    y = layer.forward(x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[1, 1, 1, 2, 2, 2], [1, 1, 1, 2, 2, 2],
                                                  [3, 3, 3, 4, 4, 4], [3, 3, 3, 4, 4, 4]])
    np.testing.assert_array_equal(layer.backward(np.ones_like(y))[0, :, :, 0], np.full((2, 2), 6.0))


# ----------------------------------------------------------------------------------------------------------
# Gradients against central differences (float64).
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@edge_cases_then_drawn(SETTINGS, cases(dtypes=(np.float64,)), upsampling_cases(dtypes=("float64",)))
def test_gradcheck(interpolation, case):
    x = np.random.default_rng(case["seed"]).standard_normal(case["shape"])
    layer = UpSampling2D(size=case["size"], interpolation=interpolation, dtype="float64")
    report = check_layer(layer, x, h=GRADCHECK_STEP, max_entries=None, seed=case["seed"] % 1000)
    assert report.n_checked == x.size
    assert report.max_rel_error < 1e-6, str(report)


def test_gradcheck_catches_a_backward_that_forgets_the_border_clamp():
    """Not vacuous: a bilinear backward that drops the weight of clamped taps (i1 == i0) is caught."""

    class DropsClampedTaps(UpSampling2D):
        def backward(self, grad):
            a_h = ku.interpolation_matrix(self.input_shape[0], self.size[0])
            a_w = ku.interpolation_matrix(self.input_shape[1], self.size[1])
            # the last output row reads input row H-1 twice (i1 clamped onto i0); a scatter that overwrites
            # instead of adding keeps only one of its two weights
            a_h[-1, -1] -= ku.bilinear_taps(self.input_shape[0], self.size[0])[3][-1]
            return np.einsum("ih,nijc,jw->nhwc", a_h, grad, a_w)

    x = np.random.default_rng(0).standard_normal((1, 3, 3, 1))
    report = check_layer(DropsClampedTaps(interpolation="bilinear", dtype="float64"), x, h=GRADCHECK_STEP,
                         max_entries=None)
    assert report.n_failed > 0


# ----------------------------------------------------------------------------------------------------------
# The contract: no mutation, config round trip, clear errors.
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@edge_cases_then_drawn(SETTINGS, cases(), upsampling_cases())
def test_never_mutates_or_aliases_its_arguments(interpolation, case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["shape"]).astype(case["dtype"])
    layer = UpSampling2D(size=case["size"], interpolation=interpolation, dtype=case["dtype"])
    contract.assert_leaves_its_arguments_alone(layer, x, rng)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_get_config_rebuilds_the_layer(interpolation):
    layer = UpSampling2D(size=(3, 2), interpolation=interpolation.upper(), dtype="float64")
    expected = {"dtype": "float64", "size": (3, 2), "interpolation": interpolation}
    contract.assert_config_rebuilds(layer, expected, np.random.default_rng(1).standard_normal((2, 4, 5, 3)))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(size=0), ValueError, "size"),
    (dict(size=(2,)), ValueError, "size"),
    (dict(size=(2, 2, 2)), ValueError, "size"),
    (dict(size=1.5), ValueError, "size"),
    (dict(size="2"), ValueError, "size"),
    (dict(interpolation="bicubic"), ValueError, "interpolation must be one of"),
    (dict(interpolation=None), ValueError, "interpolation"),
    (dict(dtype="float16"), TypeError, "dtype"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        UpSampling2D(**kwargs)


def test_bad_inputs_are_named():
    contract.assert_bad_images_are_named(lambda dtype: UpSampling2D(dtype=dtype), np.uint8)
    layer = UpSampling2D()
    layer.forward(np.zeros((2, 4, 4, 1), np.float32))
    with pytest.raises(ValueError, match="grad has shape"):
        layer.backward(np.zeros((2, 4, 4, 1), np.float32))


# ----------------------------------------------------------------------------------------------------------
# PyTorch parity (NHWC here, NCHW there: converted by tests.helpers.nhwc_to_nchw and nchw_to_nhwc).
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@edge_cases_then_drawn(SETTINGS, cases(dtypes=(np.float64,)), upsampling_cases(dtypes=("float64",)))
def test_matches_torch_interpolate(interpolation, case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["shape"])
    layer = UpSampling2D(size=case["size"], interpolation=interpolation, dtype="float64")
    y = layer.forward(x)
    grad = rng.standard_normal(y.shape)
    dx = layer.backward(grad)
    xt = torch.tensor(nhwc_to_nchw(x), requires_grad=True)
    corners = {} if interpolation == "nearest" else {"align_corners": False}
    yt = F.interpolate(xt, scale_factor=tuple(float(f) for f in case["size"]), mode=interpolation, **corners)
    yt.backward(torch.tensor(nhwc_to_nchw(grad)))
    assert rel_error(y, nchw_to_nhwc(yt.detach().numpy())) <= 1e-10
    assert rel_error(dx, nchw_to_nhwc(xt.grad.numpy())) <= 1e-10
