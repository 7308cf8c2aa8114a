"""MaxUnpooling2D and max_pool2d_with_argmax: plain loops, central differences, a small pool -> conv -> unpool
model, and PyTorch's max_pool2d(return_indices=True) + max_unpool2d."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import nchw_to_nhwc, nhwc_to_nchw, use_backend
from tinyseg import Input, Model
from tinyseg.gradcheck import check_layer, check_model
from tinyseg.layers import Conv2D, MaxPooling2D, MaxUnpooling2D, max_pool2d_with_argmax
from tinyseg.layers.geometry import conv_geometry
from tinyseg.saving import load_model

# (H, W, pool_size, strides): 2 and 3, strides equal to, above and below the window, odd sizes with 'valid'
CASES = [(4, 6, 2, None), (5, 7, 2, None), (7, 5, 3, None), (9, 8, 3, 3), (7, 9, 2, 3), (8, 7, (2, 3), None),
         (5, 6, 3, 2), (6, 5, 2, 1)]
NON_OVERLAPPING = [c for c in CASES if c[3] is None or min(np.atleast_1d(c[3])) >= max(np.atleast_1d(c[2]))]


def distinct_input(shape, seed):
    """float64 values 0.01 apart in random order: no ties, and a step of 1e-5 moves no maximum."""
    size = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(size).reshape(shape) - size / 2) * 0.01


def pooled_shape(x_shape, pool_size, strides, padding="valid"):
    kh, kw = np.broadcast_to(pool_size, 2)
    sh, sw = np.broadcast_to(strides if strides is not None else pool_size, 2)
    (oh, ow), _ = conv_geometry(x_shape[1:3], (kh, kw), (sh, sw), padding)
    return (x_shape[0], oh, ow, x_shape[3])


def naive_unpool(p, x, pool_size, strides, padding):
    """y and the argmax positions, one window at a time, from the module docstring's formula."""
    (kh, kw), (sh, sw) = np.broadcast_to(pool_size, 2), np.broadcast_to(strides or pool_size, 2)
    (oh, ow), (pt, _, pl, _) = conv_geometry(x.shape[1:3], (kh, kw), (sh, sw), padding)
    y, where = np.zeros_like(x), np.zeros(p.shape + (2,), dtype=int)
    for n in range(x.shape[0]):
        for c in range(x.shape[3]):
            for i in range(oh):
                for j in range(ow):
                    best = None
                    for a in range(kh):
                        for b in range(kw):
                            h, w = i * sh - pt + a, j * sw - pl + b
                            if 0 <= h < x.shape[1] and 0 <= w < x.shape[2] and (
                                    best is None or x[n, h, w, c] > x[n, best[0], best[1], c]):
                                best = (h, w)
                    y[n, best[0], best[1], c] += p[n, i, j, c]
                    where[n, i, j, c] = best
    return y, where


@settings(deadline=None, max_examples=30)
@given(st.integers(1, 3), st.integers(1, 3), st.sampled_from([None, 1, 2, 3]), st.sampled_from(["valid", "same"]),
       st.integers(0, 6), st.integers(0, 6), st.integers(0, 2**31), st.sampled_from(["numba", "numpy"]))
def test_matches_plain_loops_forward_and_backward(kh, kw, strides, padding, dh, dw, seed, backend):
    x = distinct_input((2, kh + dh, kw + dw, 2), seed)
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(pooled_shape(x.shape, (kh, kw), strides, padding))
    layer = MaxUnpooling2D((kh, kw), strides, padding, dtype="float64")
    with use_backend(backend):
        y = layer.forward([p, x])
        g = rng.standard_normal(y.shape)
        dp, dx = layer.backward(g)
    y_ref, where = naive_unpool(p, x, (kh, kw), strides, padding)
    np.testing.assert_allclose(y, y_ref, rtol=1e-14, atol=1e-14)      # overlaps may add in another order
    n, c = np.indices(p.shape)[0], np.indices(p.shape)[3]
    np.testing.assert_array_equal(dp, g[n, where[..., 0], where[..., 1], c])      # gathered at each maximum
    assert not dx.any()


@pytest.mark.parametrize("h, w, pool_size, strides", CASES)
def test_gradient_check_of_both_inputs(h, w, pool_size, strides, float64):
    x = distinct_input((2, h, w, 3), 1)
    p = np.random.default_rng(2).standard_normal(pooled_shape(x.shape, pool_size, strides))
    layer = MaxUnpooling2D(pool_size, strides, dtype="float64")
    wrt_pooled = check_layer(layer, p, forward=lambda v: layer.forward([v, x]), backward=lambda g: layer.backward(g)[0])
    wrt_input = check_layer(layer, x, forward=lambda v: layer.forward([p, v]), backward=lambda g: layer.backward(g)[1])
    for report in (wrt_pooled, wrt_input):
        assert report.ok and report.max_rel_error < 1e-6, str(report)


def test_gradient_check_of_pool_conv_unpool_model(float64):
    inp = Input((5, 7, 2))
    pooled = MaxPooling2D(2)(inp)
    conv = Conv2D(2, 3, padding="same", name="decoder_conv")(pooled)
    out = Conv2D(3, 1, name="head")(MaxUnpooling2D(2)([conv, inp]))
    model = Model(inp, out)
    rng = np.random.default_rng(3)
    for layer in model.layers:
        for param in layer.params.values():
            param += rng.normal(0, 0.1, param.shape)
    report = check_model(model, distinct_input((2, 5, 7, 2), 4), max_entries=None)
    assert report.ok and report.max_rel_error < 1e-6, str(report)
    assert {"decoder_conv/kernel", "decoder_conv/bias", "head/kernel"} <= set(report.per_array)


@pytest.mark.parametrize("h, w, pool_size, strides", CASES)
def test_indices_match_torch_max_pool2d(h, w, pool_size, strides):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(5).standard_normal((2, h, w, 3))
    pooled, indices = max_pool2d_with_argmax(x, pool_size, strides)
    pt, it = torch.nn.functional.max_pool2d(torch.tensor(nhwc_to_nchw(x)), pool_size,
                                            strides or pool_size, return_indices=True)
    np.testing.assert_array_equal(pooled, nchw_to_nhwc(pt.numpy()))
    np.testing.assert_array_equal(indices, nchw_to_nhwc(it.numpy()))
    assert indices.dtype == np.int64


@pytest.mark.parametrize("h, w, pool_size, strides", NON_OVERLAPPING)
def test_forward_and_backward_match_torch_max_unpool2d(h, w, pool_size, strides):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, h, w, 3))
    p = rng.standard_normal(pooled_shape(x.shape, pool_size, strides))     # what a decoder made of the pooled
    layer = MaxUnpooling2D(pool_size, strides, dtype="float64")
    y = layer.forward([p, x])
    g = rng.standard_normal(y.shape)
    dp, _ = layer.backward(g)
    _, it = F.max_pool2d(torch.tensor(nhwc_to_nchw(x)), pool_size, strides or pool_size, return_indices=True)
    pt = torch.tensor(nhwc_to_nchw(p), requires_grad=True)
    yt = F.max_unpool2d(pt, it, pool_size, strides or pool_size, output_size=(h, w))
    yt.backward(torch.tensor(nhwc_to_nchw(g)))
    np.testing.assert_allclose(y, nchw_to_nhwc(yt.detach().numpy()), rtol=0, atol=1e-10)
    np.testing.assert_allclose(dp, nchw_to_nhwc(pt.grad.numpy()), rtol=0, atol=1e-10)


def test_overlapping_windows_that_share_a_maximum_add_their_values():
    x = np.array([0.0, 9.0, 1.0, 2.0]).reshape(1, 1, 4, 1)              # 9 is the max of windows 0 and 1
    y = MaxUnpooling2D((1, 2), (1, 1), dtype="float64").forward([np.array([1.0, 2.0, 4.0]).reshape(1, 1, 3, 1), x])
    np.testing.assert_array_equal(y.ravel(), [0.0, 3.0, 0.0, 4.0])


def test_a_model_with_unpooling_saves_and_loads(tmp_path, float64):
    inp = Input((4, 6, 1))
    model = Model(inp, MaxUnpooling2D(2)([Conv2D(1, 1)(MaxPooling2D(2)(inp)), inp]))
    model.save(tmp_path / "segnet_step.npz")
    loaded = load_model(tmp_path / "segnet_step.npz")
    x = distinct_input((2, 4, 6, 1), 7)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_get_config_rebuilds_the_layer():
    layer = MaxUnpooling2D(3, 2, "same", name="up")
    again = MaxUnpooling2D.from_config(layer.get_config())
    assert (again.pool_size, again.strides, again.padding, again.name) == ((3, 3), (2, 2), "same", "up")


@pytest.mark.parametrize("kwargs, match", [(dict(pool_size=0), "pool_size"), (dict(pool_size=(2, 0)), "pool_size"),
                                           (dict(strides=0), "strides"), (dict(padding="full"), "padding")])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MaxUnpooling2D(**kwargs)
    with pytest.raises(ValueError, match=match):
        max_pool2d_with_argmax(np.zeros((1, 4, 4, 1)), **kwargs)


def test_bad_inputs_are_named_and_change_nothing():
    layer = MaxUnpooling2D(2, dtype="float64")
    x = distinct_input((1, 4, 4, 2), 0)
    with pytest.raises(ValueError, match="pooled has shape"):              # 3x3 is not what 2x2 pooling of 4x4 gives
        layer.forward([np.zeros((1, 3, 3, 2)), x])
    with pytest.raises(ValueError, match="pooled has shape"):              # other channels
        MaxUnpooling2D(2, dtype="float64").forward([np.zeros((1, 2, 2, 3)), x])
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        MaxUnpooling2D(2, dtype="float64").forward([np.zeros((1, 2, 2, 2)), x, x])
    with pytest.raises(ValueError, match="smaller than the window"):
        MaxUnpooling2D(3, dtype="float64").forward([np.zeros((1, 1, 1, 2)), np.zeros((1, 2, 2, 2))])
    with pytest.raises(ValueError, match="same batch size"):
        layer.forward([np.zeros((2, 2, 2, 2)), x])
    with pytest.raises(RuntimeError, match="before forward"):
        MaxUnpooling2D(2, dtype="float64").backward(np.zeros((1, 4, 4, 2)))
    p = np.ones((1, 2, 2, 2))
    y = layer.forward([p, x])
    saved = layer.saved
    with pytest.raises(ValueError, match="pooled has shape"):              # a failed call keeps the last forward's
        layer.forward([np.zeros((1, 2, 2, 2)), distinct_input((1, 6, 6, 2), 1)])
    assert layer.saved is saved
    with pytest.raises(ValueError, match="grad has shape"):
        layer.backward(np.zeros((1, 2, 2, 2)))
    assert layer.backward(np.ones_like(y))[0].shape == p.shape
    with pytest.raises(ValueError, match="pooled has shape"):              # the graph checks when it is built
        inp = Input((4, 4, 2))
        MaxUnpooling2D(2)([inp, inp])
