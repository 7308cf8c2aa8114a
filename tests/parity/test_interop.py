"""tinyseg.interop at the model level: weight round trips, to_torch(model) against model.call for the seed
CNN and for U-Nets (transpose / nearest / bilinear upsampling, with and without batch norm), whole-model
gradients, state_dict names, errors, and tinyseg working without torch."""
import io
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import PARITY_TOL, REPO, scramble_weights, seed_cnn
from tinyseg import interop as tp
from tinyseg.layers import Concatenate, Conv2D, Dense, Flatten
from tinyseg.models import Sequential
from tinyseg.models.unet import UNet

UNET_VARIANTS = [(up, bn) for up in ("transpose", "nearest", "bilinear") for bn in (True, False)]


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch", reason="PyTorch parity tests need torch: pip install -e '.[compare]'")
    old = torch.get_num_threads()
    torch.set_num_threads(1)            # on a busy two-core machine torch's OpenMP threads wait on each other
    yield torch
    torch.set_num_threads(old)


def small_unet(upsampling="transpose", batch_norm=True, num_classes=3):
    return UNet((16, 16, 3), num_classes=num_classes, depth=2, base_filters=4, batch_norm=batch_norm,
                upsampling=upsampling)


def scramble(model, seed):
    """Random values for every weight, moving statistics included (positive variances)."""
    scramble_weights(model, np.random.default_rng(seed), 0.5)


def models():
    return [("seed_cnn", seed_cnn)] + [(f"unet_{up}_{'bn' if bn else 'nobn'}",
                                        lambda up=up, bn=bn: small_unet(up, bn)) for up, bn in UNET_VARIANTS]


MODELS = models()


# --- without torch ----------------------------------------------------------------------------------------
def test_tinyseg_imports_without_torch():
    """Importing tinyseg (interop included) never imports torch; calling a converter without it explains how
    to install it."""
    code = """
import sys
sys.modules['torch'] = None                       # any 'import torch' now fails
import numpy as np
import tinyseg.interop
from tinyseg import interop as tp
assert np.array_equal(tp.flatten_permutation((1, 2, 2)), [0, 2, 1, 3])
from tinyseg.layers import Dense
layer = Dense(2, input_shape=(3,))
layer.build((3,))
try:
    tp.layer_to_torch(layer)
except ImportError as err:
    print(err)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install -e '.[compare]'" in out.stdout
    out = subprocess.run([sys.executable, "-c", "import sys, tinyseg.interop, tinyseg.models; "
                          "print('torch' in sys.modules)"], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_one_public_entry():
    """tinyseg.interop holds every public name (no torch needed to import them); the old re-export module is
    gone, and the torch modules come through import_torch_modules."""
    import importlib

    import tinyseg.interop
    assert all(hasattr(tinyseg.interop, name) for name in tinyseg.interop.__all__)
    assert len(set(tinyseg.interop.__all__)) == len(tinyseg.interop.__all__)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("tinyseg.interop.pytorch")


def test_conventions_are_inverse_pairs():
    rng = np.random.default_rng(0)
    k = rng.standard_normal((3, 2, 4, 5))
    assert tp.conv_kernel_to_torch(k).shape == (5, 4, 3, 2)
    assert np.array_equal(tp.conv_kernel_from_torch(tp.conv_kernel_to_torch(k)), k)
    assert np.array_equal(tp.conv_transpose_kernel_from_torch(tp.conv_transpose_kernel_to_torch(k)), k)
    perm = tp.flatten_permutation((2, 3, 4))
    dense = rng.standard_normal((24, 5))
    assert np.array_equal(tp.dense_kernel_from_torch(tp.dense_kernel_to_torch(dense, perm), perm), dense)
    x = rng.standard_normal((2, 2, 3, 4))                         # the permutation is NCHW flattening
    assert np.array_equal(x.reshape(2, -1)[:, perm], x.transpose(0, 3, 1, 2).reshape(2, -1))
    assert tp.bn_momentum_from_torch(tp.bn_momentum_to_torch(0.99)) == pytest.approx(0.99)
    assert tp.torch_pad_widths((0, 1, 2, 3)) == (2, 3, 0, 1)
    assert tp.keras_pads((5, 5), (2, 2), (1, 1), "same") == (0, 1, 0, 1)
    assert tp.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert tp.relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.5])) == pytest.approx(0.2)


# --- weights: round trips ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name,build", MODELS, ids=[m[0] for m in MODELS])
def test_weights_round_trip(torch, float64, name, build):
    """tinyseg -> torch state_dict -> another tinyseg model: every weight identical, bit for bit; and
    torch -> tinyseg -> torch likewise."""
    source, target = build(), build()
    scramble(source, 1)
    scramble(target, 2)
    module = tp.to_torch(source)
    tp.load_torch_state_dict(target, module.state_dict())
    for a, b in zip(source.get_weights(), target.get_weights()):
        assert np.array_equal(a, b)

    with torch.no_grad():                                         # a state_dict torch made up itself
        for p in module.parameters():
            p.copy_(torch.randn_like(p))
    tp.load_torch_state_dict(target, module.state_dict())
    back = tp.torch_state_dict(target)
    assert list(back) == list(module.state_dict())
    for key, value in module.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(back[key], value), key


def test_state_dict_names_and_dtype(torch):
    cnn = seed_cnn()
    sd = tp.torch_state_dict(cnn)
    assert list(sd)[:4] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert sd["0.weight"].shape == (32, 3, 3, 3) and sd["6.weight"].shape == (64, 1024)
    module = tp.to_torch(cnn)
    assert all(p.dtype == torch.float32 for p in module.parameters())        # the model's float32
    unet = small_unet("bilinear", True)
    names = list(tp.torch_state_dict(unet))
    assert names[:6] == ["encoders.0.0.weight", "encoders.0.1.weight", "encoders.0.1.bias",
                         "encoders.0.1.running_mean", "encoders.0.1.running_var", "encoders.0.1.num_batches_tracked"]
    assert "ups.0.1.weight" in names and names[-2:] == ["head.weight", "head.bias"]
    assert names == list(tp.to_torch(unet).state_dict())


# --- outputs and gradients of whole models ----------------------------------------------------------------
def torch_input(x):
    return tp.to_tensor(tp.nhwc_to_nchw(x))


@pytest.mark.parametrize("name,build", MODELS, ids=[m[0] for m in MODELS])
def test_to_torch_matches_model_in_inference(torch, float64, name, build):
    """module(x) == model.call(x, logits=True); to_torch(model, logits=False)(x) == model.predict(x)."""
    model = build()
    scramble(model, 3)
    x = np.random.default_rng(4).standard_normal((3,) + model.input_shape)
    logits = tp.to_torch(model).eval()(torch_input(x))
    probs = tp.to_torch(model, logits=False).eval()(torch_input(x))
    assert tp.relative_error(tp.nhwc_to_nchw(model.call(x, logits=True)), logits) <= PARITY_TOL
    assert tp.relative_error(tp.nhwc_to_nchw(model.predict(x)), probs) <= PARITY_TOL
    assert tp.relative_error(logits, probs) > 1e-3          # the two really differ: softmax was left out


@pytest.mark.parametrize("name,build", MODELS, ids=[m[0] for m in MODELS])
def test_to_torch_matches_model_in_training(torch, float64, name, build):
    """A training-mode forward and backward through the whole model: output, input gradient, every
    parameter gradient, and afterwards the updated batch-norm running statistics."""
    model = build()
    scramble(model, 5)
    module = tp.to_torch(model).train()
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4,) + model.input_shape)
    z = model.call(x, training=True, logits=True)
    g = rng.standard_normal(z.shape)
    dx = model.backward(g, logits=True)
    xt = tp.to_tensor(tp.nhwc_to_nchw(x), requires_grad=True)
    zt = module(xt)
    zt.backward(tp.to_tensor(tp.nhwc_to_nchw(g)))
    assert tp.relative_error(tp.nhwc_to_nchw(z), zt) <= PARITY_TOL
    assert tp.relative_error(tp.nhwc_to_nchw(dx), xt.grad) <= PARITY_TOL
    grads = tp.gradient_differences(model, module)
    assert len(grads) == len(list(module.parameters())) and max(grads.values()) <= PARITY_TOL, grads
    weights = tp.weight_differences(model, module)             # running statistics moved the same way
    assert max(weights.values()) <= PARITY_TOL, weights


def test_float32_model_gives_a_float32_module(torch):
    model = small_unet("transpose", True)
    module = tp.to_torch(model).eval()
    x = np.random.default_rng(0).standard_normal((2, 16, 16, 3)).astype("float32")
    out = module(torch_input(x))
    assert out.dtype == torch.float32
    assert tp.relative_error(tp.nhwc_to_nchw(model.call(x, logits=True)), out) <= 1e-5


def test_trained_in_torch_then_loaded_back(torch, float64):
    """Train the torch module a few steps, copy its state_dict back: the tinyseg model then predicts what the
    module predicts."""
    model = small_unet("bilinear", True)
    module = tp.to_torch(model)
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    rng = np.random.default_rng(7)
    for _ in range(3):
        x = rng.standard_normal((2, 16, 16, 3))
        y = rng.integers(0, 3, (2, 16, 16))
        opt.zero_grad()
        torch.nn.functional.cross_entropy(module(torch_input(x)), torch.tensor(y)).backward()
        opt.step()
    before = model.predict(x)
    tp.load_torch_state_dict(model, module.state_dict())
    after = model.call(x, logits=True)
    assert tp.relative_error(tp.nhwc_to_nchw(after), module.eval()(torch_input(x))) <= PARITY_TOL
    assert tp.relative_error(before, model.predict(x)) > 1e-3


def test_whole_module_pickles(torch):
    """torch.save(module) works: the lazily defined classes are findable by name."""
    module = tp.to_torch(small_unet("transpose", True))
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    again = torch.load(buffer, weights_only=False)
    assert type(again.head).__name__ == "KerasConv2d"
    x = torch.randn(1, 3, 16, 16)
    assert torch.equal(again.eval()(x), module.eval()(x))


# --- errors -----------------------------------------------------------------------------------------------
def test_load_refuses_a_mismatched_state_dict(torch):
    model, other = seed_cnn(), seed_cnn()
    sd = tp.torch_state_dict(other)                  # other weights: a partial load would show
    before = model.get_weights()
    broken = dict(sd)
    del broken["6.weight"]
    broken["6.kernel"] = sd["6.weight"]
    with pytest.raises(KeyError, match=r"missing \['6.weight'\].*unexpected \['6.kernel'\]"):
        tp.load_torch_state_dict(model, broken)
    wrong_shape = dict(sd)
    wrong_shape["7.weight"] = sd["7.weight"].T
    with pytest.raises(ValueError, match=r"'kernel' must have shape \(64, 10\)"):
        tp.load_torch_state_dict(model, wrong_shape)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e39])
def test_load_changes_nothing_when_the_last_tensor_is_not_finite(torch, bad):
    """All or nothing: a NaN (or a value beyond float32) in the state_dict's LAST tensor is found before the
    first layer is written."""
    model, other = seed_cnn(), seed_cnn()
    sd = tp.torch_state_dict(other)
    last = list(sd)[-1]
    sd[last] = sd[last].double()
    sd[last][0] = bad
    before = model.get_weights()
    with pytest.raises(ValueError, match=rf"load_torch_state_dict: '{last.split('.')[0]}\.\*'.*NaN or inf"):
        tp.load_torch_state_dict(model, sd)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_unconvertible_models_are_refused(torch):
    flat_end = Sequential([Conv2D(2, 3, input_shape=(5, 5, 1)), Flatten()])
    with pytest.raises(ValueError, match="end it with a Dense"):
        tp.to_torch(flat_end)
    unbuilt = Dense(3)
    with pytest.raises(ValueError, match="build the layer first"):
        tp.layer_to_torch(unbuilt)
    cat = Concatenate()
    cat.build([(2, 2, 1), (2, 2, 1)])
    with pytest.raises(TypeError, match="torch.cat"):
        tp.layer_to_torch(cat)
    with pytest.raises(TypeError, match="Sequential, UNet or Model"):
        tp.torch_state_dict(Dense(2))


def test_readme_repeats_the_conventions_table_exactly():
    """The table lives in tinyseg/interop/conventions.py; the README's copy must not drift from it."""
    from tinyseg.interop.conventions import CONVENTIONS_TABLE
    readme = (REPO / "README.md").read_text()
    assert CONVENTIONS_TABLE in readme
    assert CONVENTIONS_TABLE.count("\n") > 30
