"""tinyseg.quantization: the error bounds of its docstring hold (int8 |W - q s| <= s/2, float16 2^-11 relative),
per-channel scales beat one scale on a layer with one large channel, the kernels and only the kernels are
quantized, the sizes are the formula's, files round-trip bit for bit, and bad input gets an error naming it."""
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinyseg import layers
from tinyseg.models import Sequential
from tinyseg.quantization import (
    FLOAT16_RELATIVE_ERROR,
    QMAX,
    StoredWeight,
    dequantize,
    dequantize_weights,
    from_float16,
    load_quantized,
    quantize,
    quantize_weights,
    save_quantized,
    to_float16,
    weight_bytes,
)
from tinyseg.saving import save_weights

# weights: float32, zero or at least 2^-100 in size (the int8 bound needs normal float32 scales)
weight_values = st.one_of(st.just(0.0), st.floats(2.0 ** -100, 1e4, width=32),
                          st.floats(-1e4, -(2.0 ** -100), width=32))
weight_arrays = hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=4, max_side=5), elements=weight_values)


def int8_bound_holds(w, q, scale):
    """|w - q s| <= s/2 (plus float32's rounding of the product q * s)."""
    err = np.abs(w.astype(np.float64) - dequantize(q, scale).astype(np.float64))
    return np.all(err <= scale.astype(np.float64) / 2 + 2.0 ** -23 * np.abs(w))


@settings(max_examples=60, deadline=None)
@given(w=weight_arrays, data=st.data())
def test_int8_error_is_at_most_half_a_step_on_every_axis_choice(w, data):
    axis = data.draw(st.one_of(st.none(), st.integers(-w.ndim, w.ndim - 1)))
    q, scale = quantize(w, axis=axis)
    assert q.dtype == np.int8 and q.shape == w.shape and scale.dtype == np.float32
    kept = () if axis is None else (axis % w.ndim,)
    assert scale.shape == tuple(n if i in kept else 1 for i, n in enumerate(w.shape))
    assert np.abs(q).max() <= QMAX
    assert int8_bound_holds(w, q, scale)
    # s_k = max |W[..., k]| / 127: the largest weight of each channel becomes +-127
    others = tuple(i for i in range(w.ndim) if i not in kept)
    amax = np.abs(w.astype(np.float64)).max(axis=others, keepdims=True)
    np.testing.assert_array_equal(scale, (amax / QMAX).astype(np.float32))
    assert np.all(np.where(amax > 0, np.abs(q).max(axis=others, keepdims=True) == QMAX, True))


def test_a_channel_of_zeros_gets_scale_zero_and_comes_back_exactly():
    w = np.array([[0.0, 1.5], [0.0, -3.0]], np.float32)
    q, scale = quantize(w, axis=-1)
    assert scale[0, 0] == 0 and np.all(q[:, 0] == 0)
    assert np.all(dequantize(q, scale)[:, 0] == 0)


def test_per_channel_beats_per_tensor_on_a_layer_with_one_large_channel():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.05, (3, 3, 8, 6)).astype(np.float32)
    w[..., 2] *= 100                                          # one output channel 100 times larger
    per_channel = np.abs(w - dequantize(*quantize(w, axis=-1)))
    per_tensor = np.abs(w - dequantize(*quantize(w, axis=None)))
    small = [k for k in range(6) if k != 2]
    # the small channels: one scale for all rounds them 100 times more coarsely
    assert per_channel[..., small].max() * 20 < per_tensor[..., small].max()
    assert per_channel.mean() * 5 < per_tensor.mean()
    # per tensor, most of the small channels' weights round to 0
    assert np.mean(quantize(w, axis=None)[0][..., small] == 0) > 0.5


def test_a_depthwise_kernel_gets_one_scale_per_channel_and_multiplier():
    w = np.random.default_rng(1).normal(size=(3, 3, 4, 2)).astype(np.float32)
    q, scale = quantize(w, axis=(-2, -1))
    assert scale.shape == (1, 1, 4, 2) and int8_bound_holds(w, q, scale)


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")      # deprecated in PyTorch, still exact
def test_int8_agrees_with_pytorch_per_channel_quantization():
    torch = pytest.importorskip("torch")
    w = np.random.default_rng(2).normal(0, 0.1, (3, 3, 5, 7)).astype(np.float32)
    q, scale = quantize(w, axis=-1)
    theirs = torch.quantize_per_channel(torch.from_numpy(w), torch.from_numpy(scale.reshape(-1).astype(np.float64)),
                                        torch.zeros(7, dtype=torch.int64), axis=3, dtype=torch.qint8)
    t = theirs.int_repr().numpy()
    # PyTorch multiplies by 1/s in float32 where we divide in float64: a value within a rounding of x.5 may
    # land on the other integer; every other value is the same
    assert np.abs(t.astype(int) - q).max() <= 1 and np.mean(t == q) > 0.999
    np.testing.assert_allclose(theirs.dequantize().numpy(), dequantize(q, scale), atol=float(scale.max()))


@settings(max_examples=60, deadline=None)
@given(w=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
                    elements=st.floats(-65000, 65000, width=32)))
def test_float16_error_bound_and_exact_way_back(w):
    w16 = to_float16(w)
    assert w16.dtype == np.float16
    back = from_float16(w16)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back.astype(np.float16), w16)        # float16 -> float32 loses nothing
    err, size = np.abs(back.astype(np.float64) - w), np.abs(w.astype(np.float64))
    normal = size >= 2.0 ** -14
    assert np.all(err[normal] <= FLOAT16_RELATIVE_ERROR * size[normal])
    assert np.all(err[~normal] <= 2.0 ** -25)


def test_float16_refuses_values_beyond_its_range():
    with pytest.raises(ValueError, match="w holds values beyond float16's range.*70000"):
        to_float16(np.array([1.0, 70000.0], np.float32))


@pytest.mark.parametrize("call, message", [
    (lambda: quantize([1.0, 2.0]), "quantize: w must be a NumPy array"),
    (lambda: quantize(np.arange(4)), "quantize: w must hold floats"),
    (lambda: quantize(np.array([1.0, np.nan])), "quantize: w holds NaN"),
    (lambda: quantize(np.zeros((0, 3))), "quantize: w is empty"),
    (lambda: quantize(np.ones((2, 3)), axis=2), "axis must be None, an integer"),
    (lambda: quantize(np.ones((2, 3)), axis=(1, -1)), "axis names the same axis twice"),
    (lambda: quantize(np.ones((2, 3)), axis=True), "axis must be"),
    (lambda: dequantize(np.ones((2, 3)), np.ones((1, 3), np.float32)), "q must be an int8"),
    (lambda: dequantize(np.ones((2, 3), np.int8), np.ones((1, 3))), "scale must be a float32"),
    (lambda: dequantize(np.ones((2, 3), np.int8), np.ones(3, np.float32)), r"scale has shape \(3,\)"),
    (lambda: dequantize(np.ones((2, 3), np.int8), np.ones((2, 2), np.float32)), "scale has shape"),
    (lambda: dequantize(np.ones((2, 3), np.int8), -np.ones((1, 3), np.float32)), "scale must hold finite"),
    (lambda: from_float16(np.ones(3, np.float32)), "w16 must be a float16"),
    (lambda: to_float16(np.ones(3, np.int8)), "to_float16: w must hold floats"),
    (lambda: dequantize_weights([np.ones(3)]), "stored must be a list of StoredWeight"),
])
def test_bad_input_gets_an_error_naming_the_argument(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call()


# --- a model's weights -----------------------------------------------------------------------------------
def small_model():
    """One layer of each kind that int8 quantizes, with biases and a BatchNormalization between them."""
    model = Sequential([layers.Input((8, 8, 3)), layers.Conv2D(4, 3, padding="same"), layers.BatchNormalization(),
                       layers.Conv2DTranspose(5, 2, strides=2), layers.DepthwiseConv2D(3, depth_multiplier=2),
                       layers.SeparableConv2D(3, 3), layers.Flatten(), layers.Dense(6)])
    rng = np.random.default_rng(3)
    for layer in model.layers:           # random weights; a variance is positive
        layer.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) + (2 if name == "moving_variance" else 0)
                           for name, w in zip(layer.weight_names(), layer.get_weights())])
    return model


EXPECTED = [("conv2d", "kernel", (1, 1, 1, 4)), ("conv2d", "bias", None), ("batch_normalization", "gamma", None),
            ("batch_normalization", "beta", None), ("batch_normalization", "moving_mean", None),
            ("batch_normalization", "moving_variance", None), ("conv2d_transpose", "kernel", (1, 1, 5, 1)),
            ("conv2d_transpose", "bias", None), ("depthwise_conv2d", "kernel", (1, 1, 5, 2)),
            ("depthwise_conv2d", "bias", None), ("separable", "depthwise_kernel", (1, 1, 10, 1)),
            ("separable", "pointwise_kernel", (1, 1, 1, 3)), ("separable", "bias", None),
            ("dense", "kernel", (1, 6)), ("dense", "bias", None)]


def test_int8_quantizes_the_kernels_per_output_channel_and_leaves_the_rest_float32():
    model = small_model()
    names = [(type(layer).__name__, name) for layer in model.layers for name in layer.weight_names()]
    stored = quantize_weights(model, "int8")
    assert len(stored) == len(names) == len(EXPECTED)
    for s, (cls, name), (_, expected_name, scale_shape) in zip(stored, names, EXPECTED):
        assert name == expected_name
        if scale_shape is None:
            assert s.scheme == "float32" and s.scale is None and s.values.dtype == np.float32, (cls, name)
        else:
            assert s.scheme == "int8" and s.values.dtype == np.int8 and s.scale.shape == scale_shape, (cls, name)
    for s, w in zip(stored, model.get_weights()):
        if s.scheme == "float32":
            np.testing.assert_array_equal(s.values, w)                # left exactly as it was
    assert all(s.scheme == "float16" for s in quantize_weights(model, "float16"))


def test_weight_bytes_are_the_formula():
    model = small_model()
    count = model.count_params()
    assert weight_bytes(model, "float32") == 4 * count
    assert weight_bytes(model, "float16") == 2 * count
    kernels = [w for s, w in zip(quantize_weights(model), model.get_weights()) if s.scheme == "int8"]
    channels = sum(shape[2] * shape[3] if len(shape) == 4 and shape[:2] == (1, 1) else int(np.prod(shape))
                   for shape in [e[2] for e in EXPECTED if e[2] is not None])
    quantized = sum(k.size for k in kernels)
    assert weight_bytes(model, "int8") == quantized + 4 * channels + 4 * (count - quantized)


def test_a_dequantized_model_predicts_nearly_as_before():
    model = small_model()
    x = np.random.default_rng(4).normal(size=(2, 8, 8, 3)).astype(np.float32)
    before = model.predict(x)
    for scheme, tolerance in (("float16", 2e-3), ("int8", 5e-2)):
        model2 = small_model()
        model2.set_weights(dequantize_weights(quantize_weights(model, scheme)))
        after = model2.predict(x)
        assert 0 < np.abs(after - before).max() < tolerance * np.abs(before).max(), scheme


@pytest.mark.parametrize("scheme", ["int8", "float16", "float32"])
def test_a_file_gives_back_the_stored_weights_bit_for_bit(tmp_path, scheme):
    model = small_model()
    path = tmp_path / f"weights-{scheme}.npz"
    save_quantized(model, path, scheme)
    loaded, stored = load_quantized(path), quantize_weights(model, scheme)
    assert [s.scheme for s in loaded] == [s.scheme for s in stored]
    for a, b in zip(loaded, stored):
        assert a.values.dtype == b.values.dtype
        np.testing.assert_array_equal(a.values, b.values)
        if b.scale is not None:
            assert a.scale.dtype == np.float32
            np.testing.assert_array_equal(a.scale, b.scale)
    # the file is the stored bytes and a few hundred bytes of zip and .npy headers per array
    assert sum(s.nbytes for s in stored) < os.path.getsize(path) < sum(s.nbytes for s in stored) + 400 * 30


def test_an_int8_file_is_about_a_quarter_of_the_float32_file(tmp_path):
    model = Sequential([layers.Input((8, 8, 3)), layers.Conv2D(64, 3), layers.Conv2D(64, 3)])
    save_weights(model, tmp_path / "float32.npz")
    save_quantized(model, tmp_path / "int8.npz", "int8")
    ratio = os.path.getsize(tmp_path / "int8.npz") / os.path.getsize(tmp_path / "float32.npz")
    assert 0.25 < ratio < 0.3


def test_a_file_that_is_not_a_quantized_one_is_refused(tmp_path):
    model = small_model()
    save_weights(model, tmp_path / "float32.npz")
    with pytest.raises(ValueError, match="load_quantized: .* not a tinyseg model file"):
        load_quantized(tmp_path / "float32.npz")
    with pytest.raises(FileNotFoundError, match="load_quantized: no file"):
        load_quantized(tmp_path / "missing.npz")


@pytest.mark.parametrize("schemes, message", [
    (["int8"] * len(EXPECTED), f"its {len(EXPECTED)} schemes need {2 * len(EXPECTED)} arrays, it holds"),
    (["float64"] + ["float32"] * (len(EXPECTED) - 1), "its schemes must be a list"),
    ("int8", "its schemes must be a list"),
])
def test_a_damaged_header_is_refused(tmp_path, monkeypatch, schemes, message):
    from tinyseg import quantization
    real_write = quantization._write

    def write_with_other_schemes(path, header, arrays, slots):
        real_write(path, {**header, "schemes": schemes}, arrays, slots)

    monkeypatch.setattr(quantization, "_write", write_with_other_schemes)
    save_quantized(small_model(), tmp_path / "damaged.npz", "float32")
    with pytest.raises(ValueError, match=f"load_quantized: .* is damaged \\({message}"):
        load_quantized(tmp_path / "damaged.npz")


def test_an_array_of_the_wrong_dtype_for_its_scheme_is_refused(tmp_path, monkeypatch):
    from tinyseg import quantization
    real_write = quantization._write

    def write_float32_as_int8(path, header, arrays, slots):
        real_write(path, {**header, "schemes": ["int8"] + header["schemes"][1:]},
                   [arrays[0].astype(np.float32)] + arrays[1:], slots)

    monkeypatch.setattr(quantization, "_write", write_float32_as_int8)
    save_quantized(small_model(), tmp_path / "damaged.npz", "int8")
    with pytest.raises(ValueError, match="weight 0 is int8 but its array has dtype float32"):
        load_quantized(tmp_path / "damaged.npz")


def test_a_failed_save_writes_no_file_and_names_the_weight(tmp_path):
    model = small_model()
    weights = model.get_weights()
    weights[0][0, 0, 0, 0] = 1e5                          # beyond float16's range
    model.set_weights(weights)
    with pytest.raises(ValueError, match="layer 'conv2d.*', weight 'kernel'.*beyond float16's range"):
        save_quantized(model, tmp_path / "w.npz", "float16")
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="scheme must be 'float32', 'float16' or 'int8', got 'int4'"):
        save_quantized(model, tmp_path / "w.npz", "int4")


def test_stored_weight_counts_its_bytes():
    q, scale = quantize(np.ones((3, 3, 2, 5), np.float32))
    assert StoredWeight("int8", q, scale).nbytes == 90 + 5 * 4
