"""The four architecture builders and the two layers they added to tinyseg.interop, against PyTorch in float64.

- Resizing -> KerasResizing (F.interpolate to a size) and MaxUnpooling2D -> KerasMaxUnpool2d (F.max_pool2d with
  return_indices, then F.max_unpool2d): output and input gradients, shapes drawn by hypothesis.
- Each builder, small, weights random: to_torch(model) gives the same scores (training and inference mode),
  the same input gradient and the same gradient of every weight, to 1e-10. For SegNet this is the parity test
  (Keras has no MaxUnpooling2D); the others are also compared with Keras (test_keras_architectures.py).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch", reason="PyTorch parity tests need torch: pip install -e '.[compare]'")

from tests.helpers import PARITY_TOL, nhwc_to_nchw, scramble_weights, torch_errors  # noqa: E402
from tests.models.test_architectures import SMALL  # noqa: E402
from tinyseg.interop import (  # noqa: E402
    merge_layer_to_torch,
    to_tensor,
    to_torch,
    torch_gradients,
    weight_differences,
)
from tinyseg.layers import MaxPooling2D, MaxUnpooling2D, Resizing  # noqa: E402
from tinyseg.models import ARCHITECTURES  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def rel_error(a, b):
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-300))


@settings(deadline=None, max_examples=25)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 20), st.integers(1, 20),
       st.sampled_from(["bilinear", "nearest"]), st.booleans(), st.integers(0, 2**31))
def test_resizing_module_matches_the_layer(h, w, height, width, interpolation, crop, seed):
    layer = Resizing(height, width, interpolation=interpolation, crop_to_aspect_ratio=crop, dtype="float64")
    x = np.random.default_rng(seed).standard_normal((2, h, w, 3))
    errors = torch_errors(layer, x, seed=seed)
    assert max(errors.values()) <= PARITY_TOL, errors


def unpool_pair(h, w, pool, seed):
    """[pooled, pool_input] with no ties (values 0.01 apart), pooled drawn independently of pool_input."""
    rng = np.random.default_rng(seed)
    x = (rng.permutation(2 * h * w * 2).reshape(2, h, w, 2) - h * w) * 0.01
    pooled_shape = MaxPooling2D(pool, dtype="float64").compute_output_shape(x.shape[1:])
    return rng.standard_normal((2,) + tuple(pooled_shape)), x


@settings(deadline=None, max_examples=25)
@given(st.integers(2, 9), st.integers(2, 9), st.sampled_from([2, 3, (2, 3)]), st.integers(0, 2**31))
def test_max_unpooling_module_matches_the_layer(h, w, pool, seed):
    if min(h, w) < 3 and pool != 2:
        pool = 2
    layer = MaxUnpooling2D(pool, dtype="float64")
    p, x = unpool_pair(h, w, pool, seed)
    y = layer([p, x])
    g = np.random.default_rng(seed + 1).standard_normal(y.shape)
    dp, dx = layer.backward(g)
    module = merge_layer_to_torch(layer)
    pt, xt = (to_tensor(nhwc_to_nchw(a), requires_grad=True) for a in (p, x))
    yt = module([pt, xt])
    yt.backward(to_tensor(nhwc_to_nchw(g)))
    assert rel_error(nhwc_to_nchw(y), yt) <= PARITY_TOL
    assert rel_error(nhwc_to_nchw(dp), pt.grad) <= PARITY_TOL
    assert not dx.any() and (xt.grad is None or not xt.grad.any())          # the indices carry no gradient


def test_overlapping_unpooling_has_no_torch_module():
    with pytest.raises(ValueError, match="strides >= pool_size"):
        merge_layer_to_torch(MaxUnpooling2D(3, strides=2))


SIZES = {"fcn8s": (20, 28), "segnet": (12, 20), "unet": (8, 12), "deeplabv3plus": (16, 32)}


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_builder_matches_its_torch_twin_in_inference(float64, name):
    """module(x) == model.call(x, logits=True), and with logits=False == model.predict(x)."""
    h, w = SIZES[name]
    model = ARCHITECTURES[name]((h, w, 3), 4, **SMALL[name])
    scramble_weights(model, np.random.default_rng(0), 0.5)
    x = np.random.default_rng(1).standard_normal((2, h, w, 3))
    logits = to_torch(model).eval()(to_tensor(nhwc_to_nchw(x)))
    probs = to_torch(model, logits=False).eval()(to_tensor(nhwc_to_nchw(x)))
    assert rel_error(nhwc_to_nchw(model.call(x, logits=True)), logits) <= PARITY_TOL
    assert rel_error(nhwc_to_nchw(model.predict(x)), probs) <= PARITY_TOL


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_builder_matches_its_torch_twin_in_training(float64, name):
    """A training-mode forward and backward: scores, input gradient, every weight's gradient, and the batch-norm
    statistics after the step, to 1e-10."""
    h, w = SIZES[name]
    model = ARCHITECTURES[name]((h, w, 3), 4, **SMALL[name])
    scramble_weights(model, np.random.default_rng(2), 0.5)
    module = to_torch(model).train()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, h, w, 3))
    z = model.call(x, training=True, logits=True)
    g = rng.standard_normal(z.shape)
    dx = model.backward(g, logits=True)
    xt = to_tensor(nhwc_to_nchw(x), requires_grad=True)
    zt = module(xt)
    zt.backward(to_tensor(nhwc_to_nchw(g)))
    assert rel_error(nhwc_to_nchw(z), zt) <= PARITY_TOL
    assert rel_error(nhwc_to_nchw(dx), xt.grad) <= PARITY_TOL
    grads = gradient_errors(model, module)
    assert len(grads) == len(list(module.parameters())) and max(grads.values()) <= PARITY_TOL, grads
    weights = weight_differences(model, module)
    assert max(weights.values()) <= PARITY_TOL, weights


def gradient_errors(model, module):
    """{name: error} of every weight's gradient, relative to the larger of the array's scale and 1e-6 of the
    largest gradient in the model. The floor is for arrays whose gradient is zero up to rounding: a batch norm
    beta whose channel passes a ReLU that is on everywhere only shifts the next convolution's output, and the
    next (training-mode) batch norm subtracts that shift again; there both sides hold rounding noise (1e-15)."""
    mine = {name: np.asarray(g) for name, g in torch_gradients(model).items()}
    theirs = {name: p.grad.detach().numpy() for name, p in module.named_parameters()}
    floor = 1e-6 * max(np.max(np.abs(g)) for g in theirs.values())
    return {name: float(np.max(np.abs(mine[name] - g)) / max(np.max(np.abs(g)), np.max(np.abs(mine[name])), floor))
            for name, g in theirs.items()}
