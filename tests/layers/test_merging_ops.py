"""Add, Subtract, Multiply, Average: forward against NumPy, the docstring's gradients, central differences,
PyTorch (outputs and every input's gradient to 1e-10 in float64), errors, configs and the function forms."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import PARITY_TOL, random_inputs
from tinyseg.gradcheck import check_layer
from tinyseg.layers import Add, Average, Concatenate, Multiply, Subtract, add, average, concatenate, multiply, subtract

SETTINGS = settings(deadline=None, max_examples=25)
LAYERS = [Add, Subtract, Multiply, Average]

# what each layer computes and what each input's gradient is: the module docstring's table, in NumPy
FORMULAS = {
    Add: lambda xs: np.sum(xs, axis=0),
    Subtract: lambda xs: xs[0] - xs[1],
    Multiply: lambda xs: np.prod(xs, axis=0),
    Average: lambda xs: np.mean(xs, axis=0),
}


def expected_grads(cls, xs, g):
    n = len(xs)
    if cls is Add:
        return [g] * n
    if cls is Subtract:
        return [g, -g]
    if cls is Average:
        return [g / n] * n
    return [g * np.prod([x for j, x in enumerate(xs) if j != i], axis=0) for i in range(n)]


@st.composite
def merge_case(draw, classes=LAYERS):
    """(layer class, list of equal input shapes with the batch axis)."""
    cls = draw(st.sampled_from(classes))
    rank = draw(st.sampled_from([2, 3, 4]))
    shape = tuple([draw(st.integers(1, 3))] + [draw(st.integers(1, 4)) for _ in range(rank - 1)])
    n = 2 if cls is Subtract else draw(st.integers(2, 4))
    return cls, [shape] * n


@SETTINGS
@given(case=merge_case(), seed=st.integers(0, 2**32 - 1))
def test_forward_and_backward_are_the_docstring_formulas(case, seed):
    cls, shapes = case
    xs = random_inputs(shapes, (1, seed))
    layer = cls(dtype="float64")
    y = layer.forward(xs)
    np.testing.assert_allclose(y, FORMULAS[cls](np.stack(xs)), rtol=1e-13, atol=1e-13)
    assert layer.input_shape == [s[1:] for s in shapes]
    assert layer.output_shape == y.shape[1:] == layer.compute_output_shape(layer.input_shape)

    g = np.random.default_rng((2, seed)).standard_normal(y.shape)
    g_before = g.copy()
    grads = layer.backward(g)
    assert len(grads) == len(xs)
    for got, want, x in zip(grads, expected_grads(cls, xs, g), xs):
        assert got.shape == x.shape and got.dtype == x.dtype
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(g, g_before)                     # g itself is never written to


@SETTINGS
@given(case=merge_case(), seed=st.integers(0, 2**32 - 1))
def test_no_gradient_can_change_another_or_g(case, seed):
    """Each gradient is either a new array of its own (Multiply, Average, Subtract's -g) or a read-only view
    of g (Add, Subtract's first, no copy): writing into one can never change g or another input's gradient."""
    cls, shapes = case
    xs = random_inputs(shapes, (3, seed))
    layer = cls(dtype="float64")
    g = np.random.default_rng((4, seed)).standard_normal(layer.forward(xs).shape)
    g_before = g.copy()
    grads = layer.backward(g)
    for i, a in enumerate(grads):
        if a.flags.writeable:
            assert not np.shares_memory(a, g)
            assert not any(np.shares_memory(a, b) for j, b in enumerate(grads) if j != i)
        else:
            with pytest.raises(ValueError, match="read-only"):
                a[...] = 0
    kept = [a.copy() for a in grads]
    for a in grads:
        if a.flags.writeable:
            a[...] = 0
    for a, b in zip(grads, kept):
        if not a.flags.writeable:
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(g, g_before)


def packed_check(layer, shapes, seed, h):
    """check_layer takes one input, so the inputs travel packed into one flat vector: forward unpacks it into
    the list, backward packs the list of gradients the same way (as tests/test_merging.py does)."""
    cuts = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]

    def forward(packed):
        return layer.forward([part.reshape(s) for part, s in zip(np.split(packed, cuts), shapes)])

    def backward(grad):
        return np.concatenate([piece.ravel() for piece in layer.backward(grad)])

    packed = np.concatenate([x.ravel() for x in random_inputs(shapes, (5, seed))])
    return check_layer(layer, packed, forward=forward, backward=backward, h=h, seed=seed)


@SETTINGS
@given(case=merge_case(), seed=st.integers(0, 2**32 - 1))
def test_gradient_check(case, seed):
    cls, shapes = case
    # Add, Subtract, Average are linear: central differences have no truncation error, and a large step only
    # shrinks roundoff. Multiply is linear in each input separately, so the same holds for it.
    report = packed_check(cls(dtype="float64"), shapes, seed, h=1e-3)
    assert report.ok and report.max_rel_error < 1e-6, str(report)


def test_multiply_gradient_where_an_input_is_zero():
    """d(abc)/da = bc even where a = 0: dividing y by a would give nan there."""
    a = np.array([[0.0, 2.0, 0.0]])
    b = np.array([[3.0, 0.0, 0.0]])
    c = np.array([[5.0, 7.0, 11.0]])
    layer = Multiply(dtype="float64")
    np.testing.assert_array_equal(layer.forward([a, b, c]), [[0.0, 0.0, 0.0]])
    da, db, dc = layer.backward(np.ones((1, 3)))
    np.testing.assert_array_equal(da, [[15.0, 0.0, 0.0]])
    np.testing.assert_array_equal(db, [[0.0, 14.0, 0.0]])
    np.testing.assert_array_equal(dc, [[0.0, 0.0, 0.0]])


def test_same_array_as_two_inputs():
    """add([x, x]) is 2x and its gradients, summed by the caller, give 2g; multiply([x, x]) = x^2 gives 2xg."""
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 2))
    g = np.ones_like(x)
    layer = Add(dtype="float64")
    np.testing.assert_array_equal(layer.forward([x, x]), 2 * x)
    da, db = layer.backward(g)
    np.testing.assert_array_equal(da + db, 2 * g)
    layer = Multiply(dtype="float64")
    layer.forward([x, x])
    da, db = layer.backward(g)
    np.testing.assert_allclose(da + db, 2 * x, rtol=1e-15)


@pytest.mark.parametrize("cls", LAYERS)
def test_float32_stays_float32(cls):
    xs = random_inputs([(2, 4, 4, 3)] * 2, 0, "float32")
    layer = cls()
    y = layer.forward(xs)
    assert y.dtype == np.float32
    assert all(d.dtype == np.float32 for d in layer.backward(np.ones_like(y)))


# --- PyTorch ----------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("one_torch_thread")
@SETTINGS
@given(case=merge_case(classes=LAYERS + [Concatenate]), axis=st.integers(-4, 3), seed=st.integers(0, 2**32 - 1))
def test_matches_pytorch(case, axis, seed):
    """The layer and merge_layer_to_torch(layer) on the same NCHW tensors: output and every input's gradient."""
    from tinyseg.interop import merge_layer_to_torch, nhwc_to_nchw, relative_error, to_tensor
    cls, shapes = case
    if cls is Concatenate:
        rank = len(shapes[0])
        axis = 1 + axis % (rank - 1)                                # any axis but the batch
        sizes = np.random.default_rng(seed).integers(1, 4, len(shapes))
        shapes = [s[:axis] + (int(k),) + s[axis + 1:] for s, k in zip(shapes, sizes)]
        layer = Concatenate(axis=axis if seed % 2 else axis - rank, dtype="float64")   # both spellings
    else:
        layer = cls(dtype="float64")
    xs = random_inputs(shapes, (6, seed))
    y = layer.forward(xs)
    g = np.random.default_rng((7, seed)).standard_normal(y.shape)
    grads = layer.backward(g)

    module = merge_layer_to_torch(layer)
    ts = [to_tensor(nhwc_to_nchw(x), requires_grad=True) for x in xs]
    yt = module(ts)
    yt.backward(to_tensor(nhwc_to_nchw(g)))
    errors = [relative_error(nhwc_to_nchw(y), yt)]
    errors += [relative_error(nhwc_to_nchw(d), t.grad) for d, t in zip(grads, ts)]
    assert max(errors) <= PARITY_TOL, errors


@pytest.mark.usefixtures("one_torch_thread")
def test_torch_merge_modules_refuse_what_the_layers_refuse():
    torch = pytest.importorskip("torch")
    from tinyseg.interop import import_torch_modules, layer_to_torch, merge_layer_to_torch
    m = import_torch_modules()
    with pytest.raises(ValueError, match="one shape"):
        m.KerasAdd()([torch.ones(2, 3), torch.ones(2, 1)])          # torch alone would broadcast
    with pytest.raises(ValueError, match="exactly 2"):
        m.KerasSubtract()([torch.ones(2, 3)] * 3)
    layer = Add()
    layer.build([(3,), (3,)])
    with pytest.raises(TypeError, match="merge_layer_to_torch"):
        layer_to_torch(layer)
    with pytest.raises(TypeError, match="is not a merge layer"):
        merge_layer_to_torch(object())


# --- errors -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", LAYERS)
def test_no_broadcasting_the_error_names_both_shapes_and_the_layer(cls):
    a, b = np.ones((2, 8, 8, 4), "float32"), np.ones((2, 8, 8, 1), "float32")
    with pytest.raises(ValueError, match=rf"merge_me: inputs must all have the same shape \({cls.__name__} "
                                         r"broadcasts nothing\), got shapes \(batch, 8, 8, 4\), \(batch, 8, 8, 1\)"):
        cls(name="merge_me").forward([a, b])
    with pytest.raises(ValueError, match=r"same rank, got shapes \(batch, 8, 8, 4\), \(batch, 4\)"):
        cls().forward([a, np.ones((2, 4), "float32")])
    with pytest.raises(ValueError, match="same batch size"):
        cls().forward([a, np.ones((1, 8, 8, 4), "float32")])      # not even a batch of 1 is broadcast


@pytest.mark.parametrize("cls", LAYERS)
def test_inputs_must_be_a_list_of_arrays(cls):
    x = np.ones((2, 3), "float32")
    with pytest.raises(TypeError, match="expects a list of arrays"):
        cls().forward(x)
    with pytest.raises(ValueError, match="needs at least two inputs, got 1" if cls is not Subtract
                       else "needs exactly 2 inputs, got 1"):
        cls().forward([x])
    with pytest.raises(TypeError, match="input 1 must be a NumPy array"):
        cls().forward([x, [[1.0, 2.0, 3.0]]])
    with pytest.raises(TypeError, match="input 1 has dtype float64 but the layer computes in float32"):
        cls().forward([x, np.ones((2, 3))])


@pytest.mark.parametrize("cls", LAYERS + [Concatenate])
def test_build_takes_a_list_of_shapes(cls):
    with pytest.raises(TypeError, match=r"expects a list of input shapes, one per input .*got \(4, 4, 3\)"):
        cls().build((4, 4, 3))
    assert cls().build([(4, 4, 3), (4, 4, 3)]) == ((4, 4, 6) if cls is Concatenate else (4, 4, 3))


def test_subtract_takes_exactly_two():
    x = np.ones((2, 3), "float32")
    with pytest.raises(ValueError, match="subtract_1: needs exactly 2 inputs, got 3"):
        Subtract(name="subtract_1").forward([x, x, x])
    assert Subtract().compute_output_shape([(3,), (3,)]) == (3,)


@pytest.mark.parametrize("cls", LAYERS)
def test_backward_errors(cls):
    layer = cls()
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        layer.backward(np.ones((2, 3), "float32"))
    layer.forward([np.ones((2, 3), "float32")] * 2)
    with pytest.raises(ValueError, match=r"grad has shape \(2, 4\)"):
        layer.backward(np.ones((2, 4), "float32"))


def test_multiply_refuses_a_gradient_of_another_batch():
    """g * x_j would broadcast a batch of 1 over the forward's batch of 3 without a word."""
    layer = Multiply()
    layer.forward([np.ones((3, 2), "float32")] * 2)
    with pytest.raises(ValueError, match="grad has batch size 1 but the last forward had 3"):
        layer.backward(np.ones((1, 2), "float32"))
    built = Multiply()
    built.build([(2,), (2,)])
    with pytest.raises(RuntimeError, match="before forward"):
        built.backward(np.ones((1, 2), "float32"))


def test_shapes_are_fixed_after_the_first_call():
    layer = Add()
    layer.forward([np.ones((2, 4, 4, 3), "float32")] * 2)
    layer.forward([np.ones((7, 4, 4, 3), "float32")] * 2)              # the batch may change
    with pytest.raises(ValueError, match=r"expected \(batch, 4, 4, 3\), \(batch, 4, 4, 3\)"):
        layer.forward([np.ones((2, 4, 4, 5), "float32")] * 2)


# --- configs and function forms -----------------------------------------------------------------------
@pytest.mark.parametrize("layer", [Add(name="a"), Subtract(dtype="float64"), Multiply(), Average(),
                                   Concatenate(axis=1, name="c")])
def test_config_rebuilds_an_equivalent_layer(layer):
    config = layer.get_config()
    twin = type(layer)(**config)
    assert twin.get_config() == config
    xs = random_inputs([(2, 3, 3, 2)] * 2, 1, layer.dtype.name)
    np.testing.assert_array_equal(twin.forward(xs), layer.forward(xs))


def test_function_forms_on_arrays():
    xs = random_inputs([(2, 3, 3, 2)] * 3, 2)
    np.testing.assert_array_equal(add(xs, dtype="float64"), Add(dtype="float64")(xs))
    np.testing.assert_array_equal(subtract(xs[:2], dtype="float64"), xs[0] - xs[1])
    np.testing.assert_array_equal(multiply(xs, dtype="float64"), xs[0] * xs[1] * xs[2])
    np.testing.assert_allclose(average(xs, dtype="float64"), np.mean(xs, axis=0), rtol=1e-15)
    np.testing.assert_array_equal(concatenate(xs, axis=1, dtype="float64"), np.concatenate(xs, axis=1))
    np.testing.assert_array_equal(concatenate(xs, dtype="float64"), np.concatenate(xs, axis=-1))
    with pytest.raises(ValueError, match="broadcasts nothing"):
        add([np.ones((2, 3), "float32"), np.ones((2, 1), "float32")])
