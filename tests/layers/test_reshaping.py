"""ZeroPadding2D, Cropping2D and Reshape: Keras's argument forms, forward against NumPy, backward as the
transpose (checked numerically), PyTorch (1e-10 in float64), fresh arrays, errors and configs."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.edge_cases import cropping_cases, examples, padding_cases
from tests.helpers import torch_errors
from tinyseg.gradcheck import check_layer
from tinyseg.layers import Cropping2D, Reshape, ZeroPadding2D
from tinyseg.layers.reshaping import two_pairs

SETTINGS = settings(deadline=None, max_examples=25)
TOL = 1e-10
side = st.integers(0, 3)
pads = st.tuples(st.tuples(side, side), st.tuples(side, side))


@st.composite
def crop_case(draw):
    """An image shape (N, H, W, C) and ((top, bottom), (left, right)) that leave at least one row and column."""
    n, h, w, c = draw(st.integers(1, 3)), draw(st.integers(1, 7)), draw(st.integers(1, 7)), draw(st.integers(1, 3))
    top = draw(st.integers(0, h - 1))
    left = draw(st.integers(0, w - 1))
    crops = ((top, draw(st.integers(0, h - 1 - top))), (left, draw(st.integers(0, w - 1 - left))))
    return (n, h, w, c), crops


@st.composite
def reshape_case(draw):
    """An input shape (with the batch) and a target_shape of the same size, perhaps with one -1."""
    in_shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    rest, target = int(np.prod(in_shape)), []
    for _ in range(draw(st.integers(0, 2))):
        d = draw(st.sampled_from([d for d in range(1, rest + 1) if rest % d == 0]))
        target.append(d)
        rest //= d
    target = draw(st.permutations(target + [rest]))
    if draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return (draw(st.integers(1, 3)),) + in_shape, tuple(target)


def images(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def assert_fresh(layer, x):
    """The output and the input gradient are new arrays: no view of x, of y or of the caller's g."""
    y = layer.forward(x)
    g = np.ones_like(y)
    dx = layer.backward(g)
    assert not np.shares_memory(y, x) and not np.shares_memory(dx, g)


# --- argument forms -------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, pairs", [(2, ((2, 2), (2, 2))), (0, ((0, 0), (0, 0))), ((1, 3), ((1, 1), (3, 3))),
                                          (((1, 2), (3, 4)), ((1, 2), (3, 4))), ([[0, 1], [2, 0]], ((0, 1), (2, 0))),
                                          ((np.int64(1), 2), ((1, 1), (2, 2)))])
def test_keras_forms(value, pairs):
    assert two_pairs(value, "padding") == pairs
    assert ZeroPadding2D(value).padding == pairs and Cropping2D(value).cropping == pairs


@pytest.mark.parametrize("value", [-1, (1, -2), ((1, 2), (3,)), ((1, 2), 3), (1, 2, 3), True, (1.0, 2), "same",
                                   None, ((1, -1), (0, 0))])
def test_bad_forms_are_named(value):
    with pytest.raises(ValueError, match=r"zero_padding2d\w*: padding must be a non-negative integer, a pair"):
        ZeroPadding2D(value)
    with pytest.raises(ValueError, match=r"cropping2d\w*: cropping must be a non-negative integer, a pair"):
        Cropping2D(value)


def test_keras_defaults():
    assert ZeroPadding2D().padding == ((1, 1), (1, 1))
    assert Cropping2D().cropping == ((0, 0), (0, 0))


# --- ZeroPadding2D --------------------------------------------------------------------------------------
@SETTINGS
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(1, 3)), padding=pads,
       seed=st.integers(0, 2**32 - 1))
@examples([dict(shape=shape, padding=p, seed=i) for i, (shape, p) in enumerate(padding_cases())])
def test_zero_padding(shape, padding, seed):
    (top, bottom), (left, right) = padding
    n, h, w, c = shape
    x = images(shape, seed)
    layer = ZeroPadding2D(padding, dtype="float64")
    y = layer.forward(x)
    assert y.shape == (n, top + h + bottom, left + w + right, c) == (n,) + layer.output_shape
    np.testing.assert_array_equal(y[:, top:top + h, left:left + w], x)
    border = np.ones(y.shape, bool)
    border[:, top:top + h, left:left + w] = False
    assert not y[border].any()                                     # everything else is zero
    g = images(y.shape, seed + 1)
    np.testing.assert_array_equal(layer.backward(g), g[:, top:top + h, left:left + w])
    assert_fresh(layer, x)
    report = check_layer(layer, x, h=1e-3, seed=seed)              # linear: a large step only shrinks roundoff
    assert report.ok and report.max_rel_error < 1e-6, str(report)


# --- Cropping2D -----------------------------------------------------------------------------------------
@SETTINGS
@given(case=crop_case(), seed=st.integers(0, 2**32 - 1))
@examples([dict(case=c, seed=i) for i, c in enumerate(cropping_cases())])
def test_cropping(case, seed):
    shape, cropping = case
    (top, bottom), (left, right) = cropping
    n, h, w, c = shape
    x = images(shape, seed)
    layer = Cropping2D(cropping, dtype="float64")
    y = layer.forward(x)
    assert y.shape == (n, h - top - bottom, w - left - right, c) == (n,) + layer.output_shape
    np.testing.assert_array_equal(y, x[:, top:h - bottom, left:w - right])
    g = images(y.shape, seed + 1)
    dx = layer.backward(g)
    np.testing.assert_array_equal(dx[:, top:h - bottom, left:w - right], g)
    cut = np.ones(dx.shape, bool)
    cut[:, top:h - bottom, left:w - right] = False
    assert not dx[cut].any()                                       # zero where the crop cut
    # cropping and zero padding by the same widths are adjoint: <crop(x), g> = <x, pad(g)>
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, ZeroPadding2D(cropping, dtype="float64").forward(g)),
                               rtol=1e-12)
    assert_fresh(layer, x)
    report = check_layer(layer, x, h=1e-3, seed=seed)
    assert report.ok and report.max_rel_error < 1e-6, str(report)


@pytest.mark.parametrize("cropping, message", [
    (((3, 2), (0, 0)), r"crop: cropping \(\(3, 2\), \(0, 0\)\) removes 5 rows of an input with 4 \(input shape "
                       r"\(batch, 4, 6, 1\)\); at least one must remain"),
    (((2, 2), (0, 0)), "removes 4 rows of an input with 4"),
    (((0, 0), (6, 0)), "removes 6 columns of an input with 6"),
])
def test_cropping_more_than_the_input_has_fails_at_build(cropping, message):
    layer = Cropping2D(cropping, name="crop")
    with pytest.raises(ValueError, match=message):
        layer.build((4, 6, 1))
    with pytest.raises(ValueError, match=message):
        layer.forward(np.ones((2, 4, 6, 1), "float32"))


@pytest.mark.parametrize("cls", [ZeroPadding2D, Cropping2D])
def test_need_images(cls):
    with pytest.raises(ValueError, match="expects images"):
        cls(1).forward(np.ones((2, 3), "float32"))


# --- Reshape --------------------------------------------------------------------------------------------
@SETTINGS
@given(case=reshape_case(), seed=st.integers(0, 2**32 - 1))
def test_reshape(case, seed):
    shape, target = case
    x = images(shape, seed)
    layer = Reshape(target, dtype="float64")
    y = layer.forward(x)
    np.testing.assert_array_equal(y, x.reshape((shape[0],) + target))
    assert -1 not in layer.output_shape and y.shape == (shape[0],) + layer.output_shape
    g = images(y.shape, seed + 1)
    np.testing.assert_array_equal(layer.backward(g), g.reshape(shape))
    assert_fresh(layer, x)
    report = check_layer(layer, x, h=1e-3, seed=seed)
    assert report.ok and report.max_rel_error < 1e-6, str(report)


@pytest.mark.parametrize("target, message", [
    ((5, -1), r"cannot reshape inputs of shape \(batch, 4, 4, 3\), 48 values per sample, into target_shape "
              r"\(5, -1\), whose other entries multiply to 5, which does not divide 48"),
    ((7, 7), r"into target_shape \(7, 7\), which holds 49"),
])
def test_reshape_size_must_match(target, message):
    with pytest.raises(ValueError, match=message):
        Reshape(target).forward(np.ones((2, 4, 4, 3), "float32"))


@pytest.mark.parametrize("target", [(-1, -1), (0, 4), (3, -2), 12, (), [2.0, 6], (True, 12), None])
def test_reshape_target_shape_is_checked(target):
    with pytest.raises(ValueError, match=r"reshape\w*: target_shape must be a tuple of positive integers \(without "
                                         r"the batch axis\), at most one of them -1"):
        Reshape(target)


# --- PyTorch --------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("one_torch_thread")
@SETTINGS
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(1, 3)), padding=pads,
       seed=st.integers(0, 2**32 - 1))
@examples([dict(shape=shape, padding=p, seed=i) for i, (shape, p) in enumerate(padding_cases())])
def test_zero_padding_matches_pytorch(shape, padding, seed):
    errors = torch_errors(ZeroPadding2D(padding, dtype="float64"), images(shape, seed), seed)
    assert max(errors.values()) <= TOL, errors


@pytest.mark.usefixtures("one_torch_thread")
@SETTINGS
@given(case=crop_case(), seed=st.integers(0, 2**32 - 1))
@examples([dict(case=c, seed=i) for i, c in enumerate(cropping_cases())])
def test_cropping_matches_pytorch(case, seed):
    shape, cropping = case
    errors = torch_errors(Cropping2D(cropping, dtype="float64"), images(shape, seed), seed)
    assert max(errors.values()) <= TOL, errors


@pytest.mark.usefixtures("one_torch_thread")
@SETTINGS
@given(case=reshape_case(), seed=st.integers(0, 2**32 - 1))
def test_reshape_matches_pytorch(case, seed):
    """Images (4-D) reach torch as NCHW and are reshaped in tinyseg's (H, W, C) value order; a 4-D result goes
    back to NCHW. Other ranks are the same arrays in both (nhwc_to_nchw leaves them alone)."""
    shape, target = case
    errors = torch_errors(Reshape(target, dtype="float64"), images(shape, seed), seed)
    assert max(errors.values()) <= TOL, errors


@pytest.mark.usefixtures("one_torch_thread")
def test_reshape_of_images_is_not_a_plain_torch_reshape():
    """Why KerasReshape permutes: an NCHW tensor's own reshape reads channel by channel."""
    from tinyseg.interop import layer_to_torch, nhwc_to_nchw, to_tensor
    x = np.arange(2 * 2 * 3, dtype=np.float64).reshape(1, 2, 2, 3)
    layer = Reshape((3, 2, 2), dtype="float64")                    # (H, W, C) = (3, 2, 2): still an image
    y = layer.forward(x)
    xt = to_tensor(nhwc_to_nchw(x))
    np.testing.assert_array_equal(layer_to_torch(layer)(xt).numpy(), nhwc_to_nchw(y))
    assert not np.array_equal(xt.reshape(1, 2, 3, 2).numpy(), nhwc_to_nchw(y))


# --- configs --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer, x_shape", [(ZeroPadding2D(((1, 0), (2, 3)), name="pad"), (2, 3, 3, 2)),
                                            (ZeroPadding2D(2, dtype="float64"), (1, 2, 2, 1)),
                                            (Cropping2D(((1, 0), (0, 2)), name="crop"), (2, 4, 5, 2)),
                                            (Cropping2D(1, dtype="float64"), (1, 3, 3, 1)),
                                            (Reshape((-1, 2), name="r"), (2, 3, 4)),
                                            (Reshape((4, 3, 1), dtype="float64"), (2, 12))])
def test_config_rebuilds_an_equivalent_layer(layer, x_shape):
    config = layer.get_config()
    twin = type(layer)(**config)
    assert twin.get_config() == config
    x = np.random.default_rng(3).standard_normal(x_shape).astype(layer.dtype)
    np.testing.assert_array_equal(twin.forward(x), layer.forward(x))
    argument = {"ZeroPadding2D": "padding", "Cropping2D": "cropping", "Reshape": "target_shape"}[type(layer).__name__]
    assert set(config) == {"name", "dtype", argument}
