"""DepthwiseConv2D and SeparableConv2D, and the depthwise kernels under them.

What decides "right", in order of independence:

1. the loop references of conv_kit.py, written from the formulas, decide what the NumPy twins and the
   layers must produce (forward, input gradient, kernel gradient);
2. the NumPy twins decide what the Numba kernels must produce;
3. the backward is the adjoint of the forward: <dw(x, K), G> = <x, dx(G)> = <K, dK(x, G)>;
4. finite differences (float64, relative error < 1e-6) check every gradient of the layers;
5. PyTorch (Conv2d with groups=C, float64, 1e-10) and Keras 3 (float32, 1e-5) check the numbers and layouts.
"""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.edge_cases import conv_cases, edge_cases_then_drawn, examples, padded_window_cases
from tests.helpers import KERAS_TOL, PARITY_TOL, REPO, import_keras, keras_agrees, torch_errors, use_backend
from tests.layers import conv_kit
from tests.layers.conv_kit import (
    depthwise_backward_reference,
    depthwise_reference,
    keras_size,
    random_input,
    random_weights,
)
from tests.strategies import dilated_conv_configs, float_dtypes, padded_windows, seeds
from tinyseg.gradcheck import check_layer, check_model
from tinyseg.kernels import depthwise as kd
from tinyseg.layers import Conv2D, DepthwiseConv2D, SeparableConv2D
from tinyseg.layers.activations import softmax
from tinyseg.layers.geometry import conv_geometry
from tinyseg.models import Sequential

FAST = settings(deadline=None, max_examples=30)
KERAS_WARNING = "ignore:__array__ implementation doesn't accept a copy keyword"      # Keras's, harmless


# ------------------------------------------------------------------------------------------------------------
# Kernels: a drawn geometry (any strides, dilations and asymmetric pads), the three kernels against their twins.
# ------------------------------------------------------------------------------------------------------------
@st.composite
def kernel_problems(draw):
    n, c, m = draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    win = draw(padded_windows(max_side=8, max_pad=3))
    return kernel_problem(win, n, c, m, draw(float_dtypes), draw(seeds))


def kernel_problem(win, n, c, m, dtype, seed):
    """x, K and G for the window geometry `win` (a padded_windows() dict)."""
    (h, w), (kh, kw), (oh, ow) = win["hw"], win["kernel"], win["out_hw"]
    rng = np.random.default_rng(seed)
    return dict(x=rng.standard_normal((n, h, w, c)).astype(dtype), k=rng.standard_normal((kh, kw, c, m)).astype(dtype),
                g=rng.standard_normal((n, oh, ow, c * m)).astype(dtype), strides=win["strides"], pads=win["pads"],
                out_hw=(oh, ow), dilation=win["dilation"])


# a float32 and a float64 problem for every padded-window edge case, tried before hypothesis's own draws
EDGE_PROBLEMS = [kernel_problem(win, 2, 3, 2, dtype, i) for i, win in enumerate(padded_window_cases())
                 for dtype in (np.float32, np.float64)]


def run_kernels(p):
    """(y, dx, dK) of the three public kernel functions, on whichever backend is set."""
    x, k, g = p["x"], p["k"], p["g"]
    return (kd.depthwise_conv2d(x, k, p["strides"], p["pads"], p["out_hw"], p["dilation"]),
            kd.depthwise_conv2d_input_grad(g, k, p["strides"], p["pads"], x.shape, p["dilation"]),
            kd.depthwise_conv2d_kernel_grad(x, g, k.shape[:2], p["strides"], p["pads"], p["dilation"]))


def explicit_pads_reference(p):
    """The loop references of conv_kit take Keras's padding names; here the pads are given, so pad first and
    run the 'valid' reference on the padded image (then crop its input gradient back)."""
    pt, pb, pl, pr = p["pads"]
    x = p["x"].astype(np.float64)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    k, g = p["k"].astype(np.float64), p["g"].astype(np.float64)
    y = depthwise_reference(xp, k, None, p["strides"], "valid", p["dilation"])
    dxp, dk = depthwise_backward_reference(xp, k, g, p["strides"], "valid", p["dilation"])
    h, w = x.shape[1:3]
    return y, dxp[:, pt:pt + h, pl:pl + w], dk


@edge_cases_then_drawn(FAST, kernel_problems(), EDGE_PROBLEMS, name="p")
def test_numba_kernels_equal_their_numpy_twins(p):
    with use_backend("numba"):
        fast = run_kernels(p)
    with use_backend("numpy"):
        twin = run_kernels(p)
    tol = 1e-12 if p["x"].dtype == np.float64 else 1e-5
    for name, a, b in zip(("forward", "input grad", "kernel grad"), fast, twin):
        assert a.dtype == b.dtype == p["x"].dtype and a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=name)


@edge_cases_then_drawn(FAST, kernel_problems(), EDGE_PROBLEMS, name="p")
def test_numpy_twins_equal_the_loop_definitions(p):
    with use_backend("numpy"):
        twin = run_kernels(p)
    for name, a, b in zip(("forward", "input grad", "kernel grad"), twin, explicit_pads_reference(p)):
        tol = 1e-12 if p["x"].dtype == np.float64 else 1e-4
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=name)


@edge_cases_then_drawn(FAST, kernel_problems(), EDGE_PROBLEMS, name="p")
def test_the_backward_kernels_are_adjoints_of_the_forward(p):
    """<dw(x, K), G> = <x, input_grad(G, K)> = <K, kernel_grad(x, G)>: all three are the same sum of
    x * K * G products, grouped differently."""
    p = {**p, **{k: p[k].astype(np.float64) for k in ("x", "k", "g")}}
    for backend in ("numba", "numpy"):
        with use_backend(backend):
            y, dx, dk = run_kernels(p)
        terms = [(y * p["g"]).ravel().tolist(), (p["x"] * dx).ravel().tolist(), (p["k"] * dk).ravel().tolist()]
        sums = [math.fsum(t) for t in terms]
        scale = max(math.fsum(abs(v) for v in terms[0]), 1.0)
        assert abs(sums[0] - sums[1]) <= 1e-10 * scale and abs(sums[0] - sums[2]) <= 1e-10 * scale, backend


def test_float32_kernel_gradient_keeps_its_digits():
    """The kernel gradient sums over every pixel of the batch; it is accumulated in float64, so a float32
    result is the float64 one rounded once."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 64, 64, 3)) + 3           # a mean far from 0: a float32 running sum would drift
    g = rng.standard_normal((4, 64, 64, 3)) + 1
    args = ((3, 3), (1, 1), (1, 1, 1, 1))
    exact = kd.depthwise_conv2d_kernel_grad(x, g, *args)
    for backend in ("numba", "numpy"):
        with use_backend(backend):
            got = kd.depthwise_conv2d_kernel_grad(x.astype(np.float32), g.astype(np.float32), *args)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, exact, rtol=1e-6, err_msg=backend)


def test_set_backend_routes_to_the_twins(monkeypatch):
    calls = []
    for name in ("depthwise_conv2d_numpy", "depthwise_conv2d_input_grad_numpy",
                 "depthwise_conv2d_kernel_grad_numpy", "_depthwise_numba", "_depthwise_input_grad_numba",
                 "_depthwise_kernel_grad_numba"):
        fn = getattr(kd, name)
        monkeypatch.setattr(kd, name, lambda *a, _fn=fn, _name=name, **k: calls.append(_name) or _fn(*a, **k))
    p = dict(x=np.ones((1, 4, 4, 2)), k=np.ones((3, 3, 2, 2)), g=np.ones((1, 4, 4, 4)), strides=(1, 1),
             pads=(1, 1, 1, 1), out_hw=(4, 4), dilation=(1, 1))
    with use_backend("numpy"):
        twin = run_kernels(p)
    assert calls == ["depthwise_conv2d_numpy", "depthwise_conv2d_input_grad_numpy",
                     "depthwise_conv2d_kernel_grad_numpy"]
    calls.clear()
    with use_backend("numba"):
        fast = run_kernels(p)
    assert calls == ["_depthwise_numba", "_depthwise_input_grad_numba", "_depthwise_kernel_grad_numba"]
    for a, b in zip(fast, twin):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_environment_variable_numpy_backend_compiles_nothing():
    """TINYSEG_BACKEND=numpy: a DepthwiseConv2D and a SeparableConv2D train without one Numba compile."""
    code = (
        "import numpy as np\n"
        "from tinyseg.kernels import depthwise as kd\n"
        "from tinyseg.layers import DepthwiseConv2D, SeparableConv2D\n"
        "x = np.ones((1, 5, 5, 2), np.float32)\n"
        "for layer in (DepthwiseConv2D(3, padding='same'), SeparableConv2D(3, 3, depth_multiplier=2)):\n"
        "    layer.backward(np.ones_like(layer.forward(x)))\n"
        "print([n for n in ('_depthwise_numba', '_depthwise_input_grad_numba', '_depthwise_kernel_grad_numba')\n"
        "       if getattr(kd, n).signatures])\n")
    env = dict(os.environ, TINYSEG_BACKEND="numpy")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                         cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------------------------
# Layers: a drawn problem
# ------------------------------------------------------------------------------------------------------------
@st.composite
def layer_configs(draw, max_size=7):
    """A dilated convolution problem (strides and dilation together) with a depth multiplier."""
    return dict(draw(dilated_conv_configs(max_size=max_size)), depth_multiplier=draw(st.integers(1, 3)))


LAYER_EDGES = conv_cases(dilated=True, strided_dilation=True, depth_multiplier=2)     # tests/edge_cases.py


def make_layer(cfg, separable, activation=None, use_bias=True, dtype="float64"):
    kwargs = dict(strides=cfg["strides"], padding=cfg["padding"], depth_multiplier=cfg["depth_multiplier"],
                  dilation_rate=cfg["dilation_rate"], activation=activation, use_bias=use_bias, dtype=dtype)
    layer = (SeparableConv2D(cfg["filters"], cfg["kernel_size"], **kwargs) if separable
             else DepthwiseConv2D(cfg["kernel_size"], **kwargs))
    layer.build((cfg["h"], cfg["w"], cfg["c"]))
    random_weights(layer, np.random.default_rng(cfg["seed"] + 1))
    return layer


def layer_reference(layer, x):
    """The layer's linear output from the loop reference (and, for a separable one, a pointwise product)."""
    p = layer.params
    bias = p.get("bias")
    args = layer.strides, layer.padding, layer.dilation_rate
    if isinstance(layer, DepthwiseConv2D):
        return depthwise_reference(x, p[layer.depthwise_key], bias, *args)
    d = depthwise_reference(x, p[layer.depthwise_key], None, *args)
    z = np.einsum("nijk,kf->nijf", d, p["pointwise_kernel"][0, 0])
    return z if bias is None else z + bias


@FAST
@given(cfg=layer_configs(), separable=st.booleans(), use_bias=st.booleans(),
       backend=st.sampled_from(["numba", "numpy"]))
@examples([dict(cfg=c, separable=sep, use_bias=True, backend=b) for c in LAYER_EDGES
           for sep in (False, True) for b in ("numba", "numpy")])
def test_forward_matches_the_loop_reference(cfg, separable, use_bias, backend):
    layer = make_layer(cfg, separable, use_bias=use_bias)
    x = random_input(cfg)
    with use_backend(backend):
        y = layer.forward(x)
    want = layer_reference(layer, x)
    oh = keras_size(cfg["h"], cfg["kernel_size"][0], cfg["strides"][0], cfg["padding"], cfg["dilation_rate"][0])[0]
    ow = keras_size(cfg["w"], cfg["kernel_size"][1], cfg["strides"][1], cfg["padding"], cfg["dilation_rate"][1])[0]
    channels = cfg["filters"] if separable else cfg["c"] * cfg["depth_multiplier"]
    assert y.shape == want.shape == (cfg["n"], oh, ow, channels) and layer.output_shape == (oh, ow, channels)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


def test_depthwise_worked_example():
    # one 3x3 image of 1..9 and two channels (the second is 10x the first); a 2x2 kernel, depth multiplier 2:
    # channel 0 gets filters "sum" and "top-left", channel 1 gets "sum" and "bottom-right"
    x = np.stack([np.arange(1.0, 10.0), 10 * np.arange(1.0, 10.0)], axis=-1).reshape(1, 3, 3, 2)
    k = np.zeros((2, 2, 2, 2))
    k[:, :, 0, 0] = 1
    k[0, 0, 0, 1] = 1
    k[:, :, 1, 0] = 1
    k[1, 1, 1, 1] = 1
    layer = DepthwiseConv2D(2, depth_multiplier=2, use_bias=False, dtype="float64")
    layer.build(x.shape[1:])
    layer.set_weights([k])
    y = layer.forward(x)[0]                        # (2, 2, 4): output channel c*M + m
    np.testing.assert_array_equal(y[..., 0], [[12, 16], [24, 28]])        # c=0, m=0: window sums
    np.testing.assert_array_equal(y[..., 1], [[1, 2], [4, 5]])            # c=0, m=1: top-left pixel
    np.testing.assert_array_equal(y[..., 2], [[120, 160], [240, 280]])    # c=1, m=0
    np.testing.assert_array_equal(y[..., 3], [[50, 60], [80, 90]])        # c=1, m=1: bottom-right pixel


# ------------------------------------------------------------------------------------------------------------
# Gradients
# ------------------------------------------------------------------------------------------------------------
@FAST
@given(cfg=layer_configs(max_size=6), separable=st.booleans(),
       activation=st.sampled_from([None, "tanh", "sigmoid", "softmax"]), use_bias=st.booleans())
@examples([dict(cfg=c, separable=sep, activation="tanh", use_bias=True) for c in LAYER_EDGES
           for sep in (False, True)])
def test_gradients_match_finite_differences(cfg, separable, activation, use_bias):
    layer = make_layer(cfg, separable, activation=activation, use_bias=use_bias)
    report = check_layer(layer, random_input(cfg), seed=cfg["seed"] % 1000)
    print(report)
    assert report.max_rel_error < 1e-6, str(report)
    expected = {"input", layer.depthwise_key} | ({"pointwise_kernel"} if separable else set())
    assert set(report.per_array) == expected | ({"bias"} if use_bias else set())


@pytest.mark.parametrize("separable", [False, True])
def test_gradients_with_relu_fixed_seed(separable):
    # ReLU has a kink at 0; this seed keeps every pre-activation far from it (checked below)
    cfg = dict(n=2, h=6, w=5, c=3, depth_multiplier=2, filters=4, kernel_size=(3, 2), strides=(2, 1),
               dilation_rate=(1, 2), padding="same", seed=11)
    conv_kit.assert_relu_gradients_check(make_layer(cfg, separable, activation="relu"), random_input(cfg))


@pytest.mark.parametrize("separable", [False, True])
def test_backward_without_input_grad_gives_the_gradients_of_a_full_backward(separable):
    """A model's first layer skips dL/dx (backward(g, input_grad=False), backward_linear(g, input_grad=False))."""
    cfg = dict(n=2, h=6, w=6, c=3, depth_multiplier=2, filters=4, kernel_size=3, strides=1, dilation_rate=2,
               padding="same", seed=3)
    layer = make_layer(cfg, separable, activation="tanh")
    conv_kit.assert_skipping_input_grad_keeps_parameter_grads(layer, random_input(cfg),
                                                              methods=("backward_linear", "backward"))
    assert list(layer.grads) == layer.weight_names()


@pytest.mark.parametrize("separable", [False, True])
def test_softmax_is_the_activation_of_the_linear_part(separable):
    """A fused loss asks for z = forward_linear(x); forward(x) is softmax(z)."""
    cfg = dict(n=2, h=5, w=5, c=2, depth_multiplier=2, filters=3, kernel_size=3, strides=1, dilation_rate=1,
               padding="same", seed=4)
    layer = make_layer(cfg, separable, activation="softmax")
    x = random_input(cfg)
    np.testing.assert_allclose(layer.forward(x), softmax(layer.forward_linear(x)), rtol=1e-14)


@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize("activation", [None, "relu", "softmax"])
def test_backward_does_not_mutate_the_gradient_it_is_given(separable, activation):
    cfg = dict(n=2, h=5, w=5, c=2, depth_multiplier=2, filters=3, kernel_size=3, strides=1, dilation_rate=1,
               padding="same", seed=2)
    conv_kit.assert_backward_leaves_grad_alone(make_layer(cfg, separable, activation=activation), random_input(cfg))


@pytest.mark.parametrize("separable", [False, True])
def test_float32_stays_float32(separable):
    cfg = dict(n=2, h=6, w=6, c=3, depth_multiplier=2, filters=4, kernel_size=3, strides=2, dilation_rate=1,
               padding="same", seed=5)
    layer = make_layer(cfg, separable, dtype="float32")
    assert all(p.dtype == np.float32 for p in layer.params.values())
    y = layer.forward(random_input(cfg, np.float32))
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())


def test_a_small_model_of_all_three_checks_and_converts():
    """SeparableConv2D -> DepthwiseConv2D (stride 2 with dilation 2) -> dilated Conv2D with softmax, as a
    Sequential: finite differences through the whole stack, and to_torch's output."""
    from tinyseg.interop import nhwc_to_nchw, relative_error, to_tensor, to_torch
    model = Sequential([SeparableConv2D(4, 3, padding="same", depth_multiplier=2, activation="tanh",
                                        input_shape=(7, 7, 2), dtype="float64"),
                        DepthwiseConv2D(3, strides=2, dilation_rate=2, padding="same", activation="tanh",
                                        dtype="float64"),
                        Conv2D(3, 2, dilation_rate=2, padding="same", activation="softmax", dtype="float64")])
    rng = np.random.default_rng(0)
    for layer in model.layers:
        random_weights(layer, rng)
    x = rng.standard_normal((2, 7, 7, 2))
    report = check_model(model, x)
    assert report.max_rel_error < 1e-6, str(report)
    pytest.importorskip("torch")
    module = to_torch(model, logits=False).eval()
    assert relative_error(nhwc_to_nchw(model.call(x)), module(to_tensor(nhwc_to_nchw(x)))) <= PARITY_TOL


# ------------------------------------------------------------------------------------------------------------
# Other frameworks
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("one_torch_thread")
@settings(deadline=None, max_examples=25)
@given(cfg=layer_configs(), separable=st.booleans(), use_bias=st.booleans(),
       activation=st.sampled_from([None, "relu", "tanh", "softmax"]))
@examples([dict(cfg=c, separable=sep, use_bias=True, activation=None) for c in LAYER_EDGES
           for sep in (False, True)])
def test_matches_pytorch(cfg, separable, use_bias, activation):
    layer = make_layer(cfg, separable, activation=activation, use_bias=use_bias)
    errors = torch_errors(layer, random_input(cfg), seed=cfg["seed"] % 1000)
    print(errors)
    assert max(errors.values()) <= PARITY_TOL, errors


@pytest.mark.usefixtures("one_torch_thread")
def test_torch_names_layouts_and_the_way_back():
    from tinyseg.interop import (
        depthwise_kernel_from_torch,
        depthwise_kernel_to_torch,
        layer_to_torch,
        layer_weights_from_torch,
    )
    sep = SeparableConv2D(5, (3, 2), depth_multiplier=2, dtype="float64")
    sep.build((6, 6, 3))
    random_weights(sep, np.random.default_rng(0))
    module = layer_to_torch(sep)
    shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    assert shapes == {"depthwise.weight": (6, 1, 3, 2), "pointwise.weight": (5, 6, 1, 1), "pointwise.bias": (5,)}
    back = layer_weights_from_torch(sep, module.state_dict())
    for a, b in zip(back, sep.get_weights()):
        np.testing.assert_array_equal(a, b)
    # output channel c*M + m of Keras's (C, M) is PyTorch's group c, filter m
    k = np.arange(2 * 2 * 3 * 2, dtype=np.float64).reshape(2, 2, 3, 2)
    w = depthwise_kernel_to_torch(k)
    assert w.shape == (6, 1, 2, 2)
    for c in range(3):
        for m in range(2):
            np.testing.assert_array_equal(w[c * 2 + m, 0], k[:, :, c, m])
    np.testing.assert_array_equal(depthwise_kernel_from_torch(w, 2), k)


@pytest.mark.filterwarnings(KERAS_WARNING)
@pytest.mark.parametrize("kwargs, size", [
    (dict(kernel_size=3, depth_multiplier=2, padding="same"), (8, 7)),
    (dict(kernel_size=(3, 2), strides=2, padding="same", dilation_rate=2), (9, 10)),     # Keras allows both
    (dict(kernel_size=(2, 3), depth_multiplier=3, padding="valid", dilation_rate=(2, 1), use_bias=False), (7, 8))])
def test_depthwise_matches_keras(kwargs, size):
    keras = import_keras()
    x = np.random.default_rng(1).standard_normal((2,) + size + (3,)).astype(np.float32)
    assert keras_agrees(keras.layers.DepthwiseConv2D(**kwargs), DepthwiseConv2D(**kwargs), x) <= KERAS_TOL


@pytest.mark.filterwarnings(KERAS_WARNING)
@pytest.mark.parametrize("kwargs, size", [
    (dict(filters=4, kernel_size=3, depth_multiplier=2, padding="same"), (8, 7)),
    (dict(filters=5, kernel_size=(3, 2), strides=2, padding="same", dilation_rate=2), (9, 10)),
    (dict(filters=2, kernel_size=2, padding="valid", dilation_rate=(1, 3), use_bias=False), (6, 8))])
def test_separable_matches_keras(kwargs, size):
    keras = import_keras()
    x = np.random.default_rng(2).standard_normal((2,) + size + (3,)).astype(np.float32)
    assert keras_agrees(keras.layers.SeparableConv2D(**kwargs), SeparableConv2D(**kwargs), x) <= KERAS_TOL


# ------------------------------------------------------------------------------------------------------------
# Weights, initialisation, config
# ------------------------------------------------------------------------------------------------------------
def test_weight_names_shapes_and_order():
    dw = DepthwiseConv2D((3, 2), depth_multiplier=4)
    dw.build((8, 8, 3))
    assert dw.weight_names() == ["kernel", "bias"]                  # Keras 3's names
    assert [w.shape for w in dw.get_weights()] == [(3, 2, 3, 4), (12,)]
    sep = SeparableConv2D(5, (3, 2), depth_multiplier=4)
    sep.build((8, 8, 3))
    assert sep.weight_names() == ["depthwise_kernel", "pointwise_kernel", "bias"]
    assert [w.shape for w in sep.get_weights()] == [(3, 2, 3, 4), (1, 1, 12, 5), (5,)]
    assert sep.count_params() == 3 * 2 * 3 * 4 + 12 * 5 + 5
    no_bias = SeparableConv2D(5, 3, use_bias=False)
    no_bias.build((8, 8, 3))
    assert no_bias.weight_names() == ["depthwise_kernel", "pointwise_kernel"]


def test_glorot_uniform_uses_keras_fans():
    """Keras counts a 4-D kernel's fans as receptive field * shape[-2] and * shape[-1]: for the depthwise
    kernel (KH, KW, C, M) that is KH*KW*C and KH*KW*M, for the pointwise one C*M and F."""
    sep = SeparableConv2D(40, 5, depth_multiplier=3)
    sep.build((6, 6, 8))
    for name, limit in [("depthwise_kernel", math.sqrt(6 / (25 * 8 + 25 * 3))),
                        ("pointwise_kernel", math.sqrt(6 / (24 + 40)))]:
        w = sep.params[name]
        assert np.abs(w).max() <= limit and np.abs(w).max() > 0.95 * limit, name
    assert not sep.params["bias"].any()


@pytest.mark.parametrize("separable", [False, True])
def test_get_config_rebuilds_the_layer(separable):
    kwargs = dict(kernel_size=(3, 2), strides=(1, 2), padding="same", depth_multiplier=2, dilation_rate=(2, 1),
                  activation="relu", use_bias=False, depthwise_initializer="he_normal", name="dw",
                  bias_initializer="ones")
    layer = SeparableConv2D(3, pointwise_initializer="he_normal", **kwargs) if separable else DepthwiseConv2D(**kwargs)
    config_ = layer.get_config()
    expected = {"name": "dw", "dtype": "float32", "activation": "relu", "kernel_size": (3, 2), "strides": (1, 2),
                "padding": "same", "depth_multiplier": 2, "dilation_rate": (2, 1), "use_bias": False,
                "depthwise_initializer": "he_normal", "bias_initializer": "ones"}
    if separable:
        expected.update(filters=3, pointwise_initializer="he_normal")
    assert config_ == expected
    conv_kit.assert_rebuilds_through_json(layer, (7, 7, 2))


# ------------------------------------------------------------------------------------------------------------
# Errors a learner will meet
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(depth_multiplier=0), "depth_multiplier must be a positive integer, got 0"),
    (dict(depth_multiplier=-1), "depth_multiplier must be a positive integer"),
    (dict(depth_multiplier=1.5), "depth_multiplier must be a positive integer"),
    (dict(depth_multiplier=True), "depth_multiplier must be a positive integer"),
    (dict(depth_multiplier="2"), "depth_multiplier must be a positive integer"),
    (dict(dilation_rate=0), "dilation_rate must be a positive integer or a pair"),
    (dict(dilation_rate=(2,)), "dilation_rate must be a positive integer or a pair"),
    (dict(dilation_rate=(1, -2)), "dilation_rate must be a positive integer or a pair"),
    (dict(dilation_rate=1.5), "dilation_rate must be a positive integer or a pair"),
    (dict(kernel_size=0), "kernel_size must be a positive integer or a pair"),
    (dict(strides=(1, 0)), "strides must be a positive integer or a pair"),
    (dict(padding="full"), "padding must be 'valid' or 'same', got 'full'"),
    (dict(activation="swish"), "activation must be one of"),
    (dict(depthwise_initializer="normal"), "initializer must be one of"),
])
@pytest.mark.parametrize("separable", [False, True])
def test_bad_arguments(separable, kwargs, match):
    kwargs = {"kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        SeparableConv2D(4, **kwargs) if separable else DepthwiseConv2D(**kwargs)


@pytest.mark.parametrize("filters", [0, -3, 2.5, None, True])
def test_separable_bad_filters(filters):
    with pytest.raises(ValueError, match="filters must be a positive integer"):
        SeparableConv2D(filters, 3)


@pytest.mark.parametrize("separable", [False, True])
def test_input_errors(separable):
    make = ((lambda: SeparableConv2D(4, 3, padding="same")) if separable
            else (lambda: DepthwiseConv2D(3, padding="same")))
    for shape in [(2, 8, 8), (2, 8), (2, 1, 8, 8, 3)]:
        with pytest.raises(ValueError, match=r"expects images \(batch, H, W, C\)"):
            make().forward(np.zeros(shape, np.float32))
    layer = make()
    layer.forward(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"shape \(2, 8, 8, 2\), expected \(batch,\) \+ \(8, 8, 3\)"):
        layer.forward(np.zeros((2, 8, 8, 2), np.float32))
    with pytest.raises(TypeError, match="dtype float64"):
        layer.forward(np.zeros((2, 8, 8, 3), np.float64))
    with pytest.raises(ValueError, match="grad has shape"):
        layer.backward(np.zeros((2, 3, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"input size 4 is smaller than the window 5 \(kernel 3, dilation 2\)"):
        (SeparableConv2D(2, 3, dilation_rate=2) if separable else DepthwiseConv2D(3, dilation_rate=2)).forward(
            np.zeros((1, 4, 9, 1), np.float32))


@pytest.mark.parametrize("separable", [False, True])
def test_strides_with_dilation_are_accepted_as_in_keras(separable):
    """Keras 3 refuses strides > 1 with dilation_rate > 1 for Conv2D only; its depthwise and separable layers
    accept them, and so do these."""
    cfg = dict(n=1, h=9, w=9, c=2, depth_multiplier=1, filters=2, kernel_size=3, strides=2, dilation_rate=2,
               padding="same", seed=0)
    layer = make_layer(cfg, separable)
    assert layer.output_shape[:2] == (5, 5)
    assert conv_geometry((9, 9), (3, 3), (2, 2), "same", (2, 2)) == ((5, 5), (2, 2, 2, 2))
