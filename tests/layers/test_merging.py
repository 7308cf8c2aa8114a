"""Concatenate: forward against NumPy, backward splits the gradient (checked numerically), shapes, errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import random_inputs
from tinyseg.gradcheck import check_layer
from tinyseg.layers.merging import Concatenate

SETTINGS = settings(deadline=None, max_examples=25)


@st.composite
def concat_case(draw):
    """(axis as Keras counts it, list of input shapes with the batch axis) that can be concatenated."""
    rank = draw(st.sampled_from([2, 4]))
    common = [draw(st.integers(1, 3))] + [draw(st.integers(1, 4)) for _ in range(rank - 1)]
    k = draw(st.integers(1, rank - 1))                              # never the batch axis
    axis = draw(st.sampled_from([k, k - rank]))                     # positive or negative spelling
    sizes = draw(st.lists(st.integers(1, 4), min_size=2, max_size=4))
    shapes = [tuple(common[:k] + [s] + common[k + 1:]) for s in sizes]
    return axis, shapes


@SETTINGS
@given(case=concat_case(), seed=st.integers(0, 2**32 - 1))
def test_forward_and_backward(case, seed):
    axis, shapes = case
    xs = random_inputs(shapes, (1, seed))
    layer = Concatenate(axis=axis, dtype="float64")
    y = layer.forward(xs)
    np.testing.assert_array_equal(y, np.concatenate(xs, axis=axis))
    assert layer.input_shape == [s[1:] for s in shapes]
    assert layer.output_shape == y.shape[1:]
    assert layer.compute_output_shape([s[1:] for s in shapes]) == y.shape[1:]

    g = np.random.default_rng((2, seed)).standard_normal(y.shape)
    g_before = g.copy()
    pieces = layer.backward(g)
    assert [p.shape for p in pieces] == shapes
    start = 0
    for piece, shape in zip(pieces, shapes):                        # each input gets its own slice, in order
        width = shape[axis]
        np.testing.assert_array_equal(piece, np.take(g, range(start, start + width), axis=axis))
        start += width
    for piece in pieces:                          # views of the caller's grad that cannot be written
        assert np.shares_memory(piece, g) and not piece.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            piece[...] = 0
    np.testing.assert_array_equal(g, g_before)
    # concatenate and split are adjoint: <concat(x_1, ..., x_k), g> = sum_i <x_i, g_i>
    # (the two sums add the same products in another order: rounding is relative to the sum of their sizes,
    # which may be far larger than a sum that nearly cancels)
    np.testing.assert_allclose(np.vdot(y, g), sum(np.vdot(x, p) for x, p in zip(xs, layer.backward(g))),
                               rtol=1e-12, atol=1e-12 * np.sum(np.abs(y * g)))


@SETTINGS
@given(case=concat_case(), seed=st.integers(0, 2**32 - 1))
def test_gradient_check(case, seed):
    """check_layer takes one input, so the inputs travel packed into one flat vector:
    forward unpacks it into the list, backward packs the list of gradients the same way."""
    axis, shapes = case
    layer = Concatenate(axis=axis, dtype="float64")
    sizes = [int(np.prod(s)) for s in shapes]
    cuts = np.cumsum(sizes)[:-1]

    def forward(packed):
        return layer.forward([part.reshape(s) for part, s in zip(np.split(packed, cuts), shapes)])

    def backward(grad):
        return np.concatenate([piece.ravel() for piece in layer.backward(grad)])

    packed = np.concatenate([x.ravel() for x in random_inputs(shapes, (3, seed))])
    # The layer is linear, so central differences have no truncation error: a large step only shrinks roundoff.
    report = check_layer(layer, packed, forward=forward, backward=backward, h=1e-3, seed=seed)
    assert report.ok and report.max_rel_error < 1e-6, str(report)


def test_unet_skip_connection_channels_and_keras_axis():
    """The U-Net case: decoder features (N, H, W, 8) and encoder features (N, H, W, 4) -> 12 channels."""
    dec, enc = np.ones((2, 6, 6, 8), "float32"), np.zeros((2, 6, 6, 4), "float32")
    for axis in (-1, 3):                                            # Keras counts the batch axis: 3 is -1
        layer = Concatenate(axis=axis)
        y = layer.forward([dec, enc])
        assert y.shape == (2, 6, 6, 12) and y.dtype == np.float32
        assert y[..., :8].min() == 1 and y[..., 8:].max() == 0
        d_dec, d_enc = layer.backward(np.arange(2 * 6 * 6 * 12, dtype="float32").reshape(2, 6, 6, 12))
        assert d_dec.shape == dec.shape and d_enc.shape == enc.shape
        assert d_dec.dtype == d_enc.dtype == np.float32
        np.testing.assert_array_equal(d_enc[0, 0, 0], [8, 9, 10, 11])


def test_tuple_of_inputs_and_config():
    layer = Concatenate(axis=1, name="cat")
    y = layer((np.ones((2, 3), "float32"), np.zeros((2, 2), "float32")))
    assert y.shape == (2, 5)
    assert layer.get_config() == {"name": "cat", "dtype": "float32", "axis": 1}
    assert layer.count_params() == 0 and layer.get_weights() == []


# --- errors -------------------------------------------------------------------------------------------
def test_mismatched_shapes_name_the_shapes():
    a, b = np.ones((2, 8, 8, 4), "float32"), np.ones((2, 4, 4, 8), "float32")
    with pytest.raises(ValueError, match=r"agree on every axis but the concatenation axis -1, got shapes "
                                         r"\(batch, 8, 8, 4\), \(batch, 4, 4, 8\)"):
        Concatenate().forward([a, b])
    with pytest.raises(ValueError, match="same rank"):
        Concatenate().forward([a, np.ones((2, 4), "float32")])
    with pytest.raises(ValueError, match="same batch size"):
        Concatenate().forward([a, np.ones((3, 8, 8, 4), "float32")])


def test_inputs_must_be_a_list_of_two_or_more_arrays():
    x = np.ones((2, 3), "float32")
    with pytest.raises(TypeError, match="expects a list of arrays"):
        Concatenate().forward(x)
    with pytest.raises(ValueError, match="needs at least two inputs, got 1"):
        Concatenate().forward([x])
    with pytest.raises(TypeError, match="input 1 must be a NumPy array"):
        Concatenate().forward([x, [[1.0, 2.0, 3.0]]])
    with pytest.raises(ValueError, match="input 0 has shape \\(2,\\)"):
        Concatenate().forward([np.ones(2, "float32"), np.ones(2, "float32")])


def test_wrong_dtype():
    with pytest.raises(TypeError, match="input 1 has dtype float64 but the layer computes in float32"):
        Concatenate().forward([np.ones((2, 3), "float32"), np.ones((2, 3))])


@pytest.mark.parametrize("axis, message", [(0, "batch axis"), (-4, "batch axis"), (4, "out of range"),
                                           (-5, "out of range")])
def test_bad_axis(axis, message):
    with pytest.raises(ValueError, match=message):
        Concatenate(axis=axis).forward([np.ones((2, 3, 3, 1), "float32")] * 2)


def test_axis_must_be_an_integer():
    with pytest.raises(ValueError, match="axis must be an integer"):
        Concatenate(axis="channels")


def test_shapes_are_fixed_after_the_first_call():
    layer = Concatenate()
    layer.forward([np.ones((2, 4, 4, 3), "float32"), np.ones((2, 4, 4, 5), "float32")])
    layer.forward([np.ones((7, 4, 4, 3), "float32"), np.ones((7, 4, 4, 5), "float32")])   # batch may change
    with pytest.raises(ValueError, match=r"expected \(batch, 4, 4, 3\), \(batch, 4, 4, 5\)"):
        layer.forward([np.ones((2, 4, 4, 5), "float32"), np.ones((2, 4, 4, 3), "float32")])


def test_backward_errors():
    layer = Concatenate()
    with pytest.raises(RuntimeError, match="backward\\(\\) called before forward\\(\\)"):
        layer.backward(np.ones((2, 5), "float32"))
    layer.forward([np.ones((2, 3), "float32"), np.ones((2, 2), "float32")])
    with pytest.raises(ValueError, match="grad has shape \\(2, 4\\)"):
        layer.backward(np.ones((2, 4), "float32"))
