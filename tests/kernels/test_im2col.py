"""im2col / col2im: the Numba kernels against their NumPy twins, and col2im against the definition of an adjoint.

What decides "right" here, in order of independence:

1. `im2col_loops` below, a plain loop over (n, y, x, a, b) written from the module docstring's geometry
   (h = y * stride - pad_top + a * dilation), decides what the NumPy twin must produce;
2. the NumPy twins decide what the Numba kernels must produce (exactly, for a copy);
3. col2im is defined as the adjoint (transpose) of im2col, so <im2col(x), c> = <x, col2im(c)> for every x, c.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.edge_cases import examples, padded_window_cases
from tests.helpers import use_backend
from tests.strategies import float_dtypes, padded_windows, seeds
from tinyseg.kernels import config
from tinyseg.kernels import im2col as im2col_module
from tinyseg.kernels.im2col import col2im, col2im_numpy, im2col, im2col_numpy, im2row, im2row_numpy

FAST = settings(deadline=None, max_examples=30)


# ------------------------------------------------------------------------------------------------------------
# A geometry: image shape, window, strides and pads (top, bottom, left, right; asymmetric allowed).
# ------------------------------------------------------------------------------------------------------------
@st.composite
def geometries(draw):
    # channels on both sides of the kernels' FEW_CHANNELS: the two ways of copying a window
    few = im2col_module.FEW_CHANNELS
    n, c = draw(st.integers(1, 2)), draw(st.sampled_from((1, 2, 3, few - 1, few, few + 1)))
    win = draw(padded_windows(max_side=7, max_pad=2))
    (kh, kw), (sh, sw) = win["kernel"], win["strides"]
    return dict(x_shape=(n, *win["hw"], c), kh=kh, kw=kw, sh=sh, sw=sw, pads=win["pads"], out_hw=win["out_hw"],
                dtype=draw(float_dtypes), seed=draw(seeds), dilation=win["dilation"])


def edge_geometries():
    """tests/edge_cases.py's explicit-pad windows as geometries() draws them, on both sides of FEW_CHANNELS."""
    few = im2col_module.FEW_CHANNELS
    return [dict(x_shape=(2, *win["hw"], c), kh=win["kernel"][0], kw=win["kernel"][1], sh=win["strides"][0],
                 sw=win["strides"][1], pads=win["pads"], out_hw=win["out_hw"], dtype=dtype, seed=i,
                 dilation=win["dilation"])
            for i, win in enumerate(padded_window_cases()) for c, dtype in ((2, np.float64), (few + 1, np.float32))]


EDGES = [dict(g=g) for g in edge_geometries()]


def _args(g):
    return g["kh"], g["kw"], g["sh"], g["sw"], g["pads"], g["out_hw"]


def _random(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _dil(g):
    return dict(dilation=g["dilation"])


def im2col_loops(x, kh, kw, sh, sw, pads, out_hw, dilation=(1, 1)):
    """The definition, one entry at a time:
    cols[(n, y, x), (a, b, c)] = x[n, y*sh - pt + a*dh, x*sw - pl + b*dw, c]."""
    n, h, w, c = x.shape
    oh, ow = out_hw
    pt, _, pl, _ = pads
    dh, dw = dilation
    cols = np.zeros((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for i in range(n):
        for y in range(oh):
            for xo in range(ow):
                for a in range(kh):
                    for b in range(kw):
                        hi, wi = y * sh - pt + a * dh, xo * sw - pl + b * dw
                        if 0 <= hi < h and 0 <= wi < w:
                            cols[i, y, xo, a, b, :] = x[i, hi, wi, :]
    return cols.reshape(n * oh * ow, kh * kw * c)


# ------------------------------------------------------------------------------------------------------------
# A worked example a reader can check on paper.
# ------------------------------------------------------------------------------------------------------------
def test_im2col_worked_example():
    # x is the 3x3 image 1..9 (one channel); 2x2 windows, stride 1, no padding -> 4 windows, each a row
    x = np.arange(1, 10, dtype=np.float64).reshape(1, 3, 3, 1)
    cols = im2col(x, 2, 2, 1, 1, (0, 0, 0, 0), (2, 2))
    np.testing.assert_array_equal(cols, [[1, 2, 4, 5],
                                         [2, 3, 5, 6],
                                         [4, 5, 7, 8],
                                         [5, 6, 8, 9]])
    # col2im of all ones counts how many windows read each pixel: the centre is read by all 4
    counts = col2im(np.ones_like(cols), x.shape, 2, 2, 1, 1, (0, 0, 0, 0), (2, 2))
    np.testing.assert_array_equal(counts[0, :, :, 0], [[1, 2, 1],
                                                       [2, 4, 2],
                                                       [1, 2, 1]])


def test_im2col_padding_reads_zeros_and_column_order_is_a_b_c():
    # 1x1 image, two channels (10, 20), 3x3 window, pad 1 all round: one window, the pixel sits at its centre
    x = np.array([10.0, 20.0]).reshape(1, 1, 1, 2)
    cols = im2col(x, 3, 3, 1, 1, (1, 1, 1, 1), (1, 1))
    expected = np.zeros((3, 3, 2))
    expected[1, 1] = [10, 20]                        # column index = (a * KW + b) * C + c
    np.testing.assert_array_equal(cols, expected.reshape(1, 18))


def test_dilation_spaces_the_taps_of_a_window():
    # a row 1..5, a 1x2 window whose taps are 2 apart (dilation 2): each window reads x[j] and x[j + 2]
    x = np.arange(1, 6, dtype=np.float64).reshape(1, 1, 5, 1)
    for name in ("numba", "numpy"):
        with use_backend(name):
            cols = im2col(x, 1, 2, 1, 1, (0, 0, 0, 0), (1, 3), dilation=(1, 2))
            np.testing.assert_array_equal(cols, [[1, 3], [2, 4], [3, 5]])
            # col2im counts the windows that read each pixel: the middle one is read by two, as tap 0 and 1
            counts = col2im(np.ones_like(cols), x.shape, 1, 2, 1, 1, (0, 0, 0, 0), (1, 3), dilation=(1, 2))
            np.testing.assert_array_equal(counts.ravel(), [1, 1, 2, 1, 1])


def test_asymmetric_padding_goes_where_it_is_told():
    # pad only at the bottom: the last window's second row is padding, the first window has none
    x = np.arange(1, 4, dtype=np.float64).reshape(1, 3, 1, 1)          # a column 1, 2, 3
    cols = im2col(x, 2, 1, 2, 1, (0, 1, 0, 0), (2, 1))
    np.testing.assert_array_equal(cols, [[1, 2], [3, 0]])
    cols = im2col(x, 2, 1, 2, 1, (1, 0, 0, 0), (2, 1))                 # pad at the top instead
    np.testing.assert_array_equal(cols, [[0, 1], [2, 3]])


# ------------------------------------------------------------------------------------------------------------
# Twins and kernels agree.
# ------------------------------------------------------------------------------------------------------------
@FAST
@given(g=geometries())
@examples(EDGES)
def test_numpy_twin_matches_the_loop_definition(g):
    x = _random(g["x_shape"], g["dtype"], g["seed"])
    np.testing.assert_array_equal(im2col_numpy(x, *_args(g), **_dil(g)), im2col_loops(x, *_args(g), **_dil(g)))


@FAST
@given(g=geometries())
@examples(EDGES)
def test_numba_im2col_equals_numpy_twin_exactly(g):
    x = _random(g["x_shape"], g["dtype"], g["seed"])
    with use_backend("numba"):
        got = im2col(x, *_args(g), **_dil(g))
    want = im2col_numpy(x, *_args(g), **_dil(g))
    assert got.dtype == x.dtype
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)            # a copy: bit for bit


@FAST
@given(geometries(), st.data())
def test_a_band_of_rows_is_the_same_slice_of_the_full_matrix(g, data):
    """im2col(rows=(y0, y1)) on both backends: output rows y0..y1-1 of every image, in the full matrix's order."""
    y0 = data.draw(st.integers(0, g["out_hw"][0] - 1))
    _check_band(g, y0, data.draw(st.integers(y0 + 1, g["out_hw"][0])))


def _check_band(g, y0, y1):
    x = _random(g["x_shape"], g["dtype"], g["seed"])
    n, oh, ow = g["x_shape"][0], *g["out_hw"]
    full = im2col_loops(x, *_args(g), **_dil(g)).reshape(n, oh, ow, -1)
    want = full[:, y0:y1].reshape(n * (y1 - y0) * ow, -1)
    for backend in ("numba", "numpy"):
        with use_backend(backend):
            np.testing.assert_array_equal(im2col(x, *_args(g), rows=(y0, y1), **_dil(g)), want)


@FAST
@given(geometries(), st.data())
def test_each_kernel_row_of_im2col_is_made_of_im2row_rows(g, data):
    """Kernel row a of output row y reads input row y*SH - pad_top + a*DH: im2row of those rows (with their
    stride SH) is im2col's block of columns for a, on both backends; the Numba kernel equals its twin."""
    _check_kernel_row(g, data.draw(st.integers(0, g["kh"] - 1)))


def _check_kernel_row(g, a):
    x = _random(g["x_shape"], g["dtype"], g["seed"])
    n, oh, ow = g["x_shape"][0], *g["out_hw"]
    (dh, dw), kw, c = g["dilation"], g["kw"], g["x_shape"][3]
    full = im2col_loops(x, *_args(g), **_dil(g)).reshape(n, oh, ow, g["kh"], kw * c)
    first = -g["pads"][0] + a * dh
    args = (x, kw, g["sw"], g["pads"][2], ow, first, oh, g["sh"], dw)
    want = im2row_numpy(*args)
    np.testing.assert_array_equal(want, full[:, :, :, a])
    with use_backend("numba"):
        got = im2row(*args)
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("g", edge_geometries(), ids=lambda g: "hw{}-k{}x{}-s{}x{}-pads{}-c{}".format(
    "x".join(map(str, g["x_shape"][1:3])), g["kh"], g["kw"], g["sh"], g["sw"], "".join(map(str, g["pads"])),
    g["x_shape"][3]))
def test_every_band_and_kernel_row_of_the_edge_geometries(g):
    """The two drawn checks above on every band (y0, y1) and every kernel row of the named edge cases (hypothesis
    cannot take an explicit example for a test that draws inside its body)."""
    oh = g["out_hw"][0]
    for y0 in range(oh):
        for y1 in range(y0 + 1, oh + 1):
            _check_band(g, y0, y1)
    for a in range(g["kh"]):
        _check_kernel_row(g, a)


def test_im2row_rows_above_and_below_the_image_are_zero():
    x = np.arange(1, 7, dtype=np.float32).reshape(1, 2, 3, 1)       # rows [1 2 3], [4 5 6]
    for backend in ("numba", "numpy"):
        with use_backend(backend):
            rows = im2row(x, 2, 1, 0, 2, first=-1, count=4)           # input rows -1, 0, 1, 2
        np.testing.assert_array_equal(rows[0, :, :, 0], [[0, 0], [1, 2], [4, 5], [0, 0]])   # window column 0
        np.testing.assert_array_equal(rows[0, :, :, 1], [[0, 0], [2, 3], [5, 6], [0, 0]])   # window column 1


@pytest.mark.parametrize("argument", ["kw", "sw", "ow", "count", "step", "dw"])
def test_im2row_refuses_a_size_below_one(argument):
    args = dict(kw=3, sw=1, pl=1, ow=4, first=-1, count=4, step=1, dw=1)
    args[argument] = 0
    with pytest.raises(ValueError, match=f"im2row: {argument} must be a positive integer, got 0"):
        im2row(np.zeros((1, 4, 4, 2)), **args)


def test_a_band_outside_the_output_is_refused():
    x = np.zeros((1, 4, 4, 1))
    for rows in [(0, 0), (2, 1), (0, 5), (-1, 2)]:
        with pytest.raises(ValueError, match="rows must satisfy"):
            im2col(x, 3, 3, 1, 1, (1, 1, 1, 1), (4, 4), rows=rows)


@FAST
@given(g=geometries())
@examples(EDGES)
def test_numba_col2im_equals_numpy_twin(g):
    n, h, w, c = g["x_shape"]
    oh, ow = g["out_hw"]
    cols = _random((n * oh * ow, g["kh"] * g["kw"] * c), g["dtype"], g["seed"])
    with use_backend("numba"):
        got = col2im(cols, g["x_shape"], *_args(g), **_dil(g))
    want = col2im_numpy(cols, g["x_shape"], *_args(g), **_dil(g))
    assert got.dtype == cols.dtype
    assert got.shape == g["x_shape"]
    if g["dtype"] == np.float64:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@FAST
@given(g=geometries())
@examples(EDGES)
def test_col2im_is_the_adjoint_of_im2col(g):
    """<im2col(x), c> = <x, col2im(c)>: every copy im2col makes, col2im adds back to the same place."""
    for name in ("numba", "numpy"):
        with use_backend(name):
            lhs_terms, rhs_terms = _adjoint_terms(g)
        lhs, rhs = math.fsum(lhs_terms), math.fsum(rhs_terms)
        scale = max(math.fsum(abs(t) for t in lhs_terms), 1.0)
        assert abs(lhs - rhs) <= 1e-10 * scale, (name, lhs, rhs)


def _adjoint_terms(g):
    """The terms of <im2col(x), c> and of <x, col2im(c)> for random x, c (summed exactly by the caller)."""
    rng = np.random.default_rng(g["seed"])
    n, h, w, c = g["x_shape"]
    oh, ow = g["out_hw"]
    x = rng.standard_normal(g["x_shape"])
    cols = rng.standard_normal((n * oh * ow, g["kh"] * g["kw"] * c))
    lhs_terms = (im2col(x, *_args(g), **_dil(g)) * cols).ravel().tolist()
    rhs_terms = (x * col2im(cols, g["x_shape"], *_args(g), **_dil(g))).ravel().tolist()
    return lhs_terms, rhs_terms


# ------------------------------------------------------------------------------------------------------------
# The out= buffer that layers keep between steps.
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["numba", "numpy"])
def test_out_buffer_is_reused_when_it_fits_and_replaced_when_it_does_not(name, backend):
    backend(name)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 5, 5, 3))
    args_a = (3, 3, 1, 1, (1, 1, 1, 1), (5, 5))
    buf = np.full((2 * 5 * 5, 27), np.nan)                   # stale garbage must be overwritten
    out = im2col(a, *args_a, out=buf)
    assert out is buf
    np.testing.assert_array_equal(out, im2col_numpy(a, *args_a))

    # the shape changes (a smaller image, another stride): the old buffer must not be written into
    b = rng.standard_normal((1, 4, 6, 3))
    args_b = (2, 2, 2, 2, (0, 0, 0, 0), (2, 3))
    before = buf.copy()
    out = im2col(b, *args_b, out=buf)
    assert out is not buf and out.shape == (6, 12)
    np.testing.assert_array_equal(out, im2col_numpy(b, *args_b))
    np.testing.assert_array_equal(buf, before)

    # the dtype changes: a float64 buffer is not used for float32 data
    out32 = im2col(a.astype(np.float32), *args_a, out=buf)
    assert out32.dtype == np.float32 and out32 is not buf
    np.testing.assert_array_equal(out32, im2col_numpy(a.astype(np.float32), *args_a))

    # col2im: same story, and a reused buffer full of garbage is overwritten, not added to
    cols = rng.standard_normal((50, 27))
    xbuf = np.full((2, 5, 5, 3), 1e6)
    out = col2im(cols, (2, 5, 5, 3), *args_a, out=xbuf)
    assert out is xbuf
    np.testing.assert_allclose(out, col2im_numpy(cols, (2, 5, 5, 3), *args_a), rtol=1e-12, atol=1e-12)
    cols_b = rng.standard_normal((6, 12))
    out = col2im(cols_b, (1, 4, 6, 3), *args_b, out=xbuf)
    assert out is not xbuf and out.shape == (1, 4, 6, 3)
    np.testing.assert_allclose(out, col2im_numpy(cols_b, (1, 4, 6, 3), *args_b), rtol=1e-12, atol=1e-12)


def test_out_buffer_reuse_over_changing_shapes_in_sequence(backend):
    """Alternate two geometries through one variable holding the last output, as a layer's buffer would."""
    backend("numba")
    rng = np.random.default_rng(1)
    geoms = [((2, 6, 6, 2), (3, 3, 1, 1, (1, 1, 1, 1), (6, 6))),
             ((2, 6, 6, 2), (2, 2, 2, 2, (0, 0, 0, 0), (3, 3))),
             ((1, 7, 5, 2), (3, 2, 2, 1, (1, 1, 0, 1), (4, 5)))]
    buf = None
    for step in range(6):
        shape, args = geoms[step % 3]
        x = rng.standard_normal(shape)
        buf = im2col(x, *args, out=buf)
        np.testing.assert_array_equal(buf, im2col_numpy(x, *args))


# ------------------------------------------------------------------------------------------------------------
# The backend switch.
# ------------------------------------------------------------------------------------------------------------
def test_set_backend_numpy_routes_the_public_functions_to_the_twins(backend, monkeypatch):
    calls = []

    def spy(fn, label):
        def wrapped(*args, **kwargs):
            calls.append(label)
            return fn(*args, **kwargs)
        return wrapped

    for name in ("im2col_numpy", "col2im_numpy", "_im2col_numba", "_col2im_numba"):
        monkeypatch.setattr(im2col_module, name, spy(getattr(im2col_module, name), name))

    x = np.random.default_rng(0).standard_normal((1, 4, 4, 2))
    args = (3, 3, 1, 1, (1, 1, 1, 1), (4, 4))

    backend("numpy")
    assert config.get_backend() == "numpy"
    cols = im2col_module.im2col(x, *args)
    back = im2col_module.col2im(cols, x.shape, *args)
    assert calls == ["im2col_numpy", "col2im_numpy"]

    calls.clear()
    backend("numba")
    cols_nb = im2col_module.im2col(x, *args)
    back_nb = im2col_module.col2im(cols_nb, x.shape, *args)
    assert calls == ["_im2col_numba", "_col2im_numba"]
    np.testing.assert_array_equal(cols_nb, cols)
    np.testing.assert_allclose(back_nb, back, rtol=1e-12)


def test_set_backend_refuses_unknown_names_and_the_fixture_restores_it(backend):
    previous = config.get_backend()
    with pytest.raises(ValueError, match="numba.*numpy"):
        config.set_backend("cuda")
    assert config.get_backend() == previous
