"""The architecture builders of tinyseg.models.ARCHITECTURES: the registry, output shapes for the sizes each
accepts (hypothesis draws them), clear errors for the sizes it does not, float64 gradient checks of small
instances through every layer (skips, unpooling, atrous convolutions, resizing), and one training step.
PyTorch and Keras parity: tests/parity/test_architectures_torch.py and test_keras_architectures.py."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyseg
from tinyseg.gradcheck import check_model
from tinyseg.models import ARCHITECTURES, UNet
from tinyseg.validation import ArgumentError

# small instances: few filters, so a gradient check of every parameter array takes a second or two
SMALL = {
    "fcn8s": dict(base_filters=2, fc_filters=4, fc_kernel=3, dropout=0.0),
    "segnet": dict(base_filters=2, depth=3, convs=(1, 2, 1)),
    "unet": dict(base_filters=2, depth=2),
    "deeplabv3plus": dict(base_filters=2, aspp_filters=4, low_level_filters=2, atrous_rates=(1, 2)),
}
# an (H, W) each accepts, and one it refuses (with the words its error must contain)
GOOD = {"fcn8s": (20, 28), "segnet": (12, 20), "unet": (8, 12), "deeplabv3plus": (32, 48)}
BAD = {"fcn8s": ((0, 28), "input_shape"), "segnet": ((6, 20), "at least 8"),
       "unet": ((10, 12), "divisible by 2\\*\\*depth"), "deeplabv3plus": ((40, 48), "multiple of 16")}


def test_the_registry_holds_the_four_builders():
    assert sorted(ARCHITECTURES) == ["deeplabv3plus", "fcn8s", "segnet", "unet"]
    assert all(callable(build) for build in ARCHITECTURES.values())


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_each_builds_for_camvid_uncompiled(name):
    model = ARCHITECTURES[name]((176, 240, 3), 11)
    assert tuple(model.output_shape)[-3:] == (176, 240, 11)
    assert model.optimizer is None                                          # uncompiled


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_forward_and_one_training_step(name):
    tinyseg.set_random_seed(0)
    h, w = GOOD[name]
    model = ARCHITECTURES[name]((h, w, 3), 4, **SMALL[name])
    rng = np.random.default_rng(0)
    x, y = rng.random((2, h, w, 3), dtype=np.float32), rng.integers(0, 4, (2, h, w))
    p = model.predict(x)
    assert p.shape == (2, h, w, 4)
    np.testing.assert_allclose(p.sum(axis=-1), 1, rtol=1e-5)                # softmax heads
    model.compile(optimizer=tinyseg.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_a_size_it_cannot_take_is_refused_naming_input_shape(name):
    (h, w), words = BAD[name]
    with pytest.raises((ValueError, ArgumentError), match=words):
        ARCHITECTURES[name]((h, w, 3), 4, **SMALL[name])


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_bad_num_classes_is_named(name):
    with pytest.raises((ValueError, ArgumentError), match="num_classes"):
        ARCHITECTURES[name](GOOD[name] + (3,), 0, **SMALL[name])


def test_errors_name_input_shape_and_the_rule():
    with pytest.raises(ArgumentError, match=r"deeplabv3plus: input_shape \(40, 48, 3\).*multiple of 16.*"
                                            r"nearest valid heights are 32 and 48"):
        ARCHITECTURES["deeplabv3plus"]((40, 48, 3), 4)
    with pytest.raises(ArgumentError, match="input_shape must be"):
        ARCHITECTURES["fcn8s"]((32, 32), 4)
    with pytest.raises(ValueError, match="backbone"):
        ARCHITECTURES["deeplabv3plus"]((32, 32, 3), 4, backbone="vgg")


def test_unet_in_the_registry_is_todays_unet_with_its_signature():
    model = ARCHITECTURES["unet"]((16, 16, 1), 1, depth=2, base_filters=4)
    assert isinstance(model, UNet) and model.head.activation.activation_name == "sigmoid"
    assert UNet(input_shape=(16, 16, 1), num_classes=3, depth=2).get_config()["depth"] == 2
    linear = ARCHITECTURES["unet"]((16, 16, 1), 3, depth=2, activation="linear")
    assert UNet.from_config(linear.get_config()).head.activation.activation_name == "linear"


@settings(deadline=None, max_examples=8)
@given(st.sampled_from(sorted(ARCHITECTURES)), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3),
       st.integers(1, 4))
def test_output_is_the_input_size_for_every_size_it_accepts(name, a, b, channels, classes):
    """FCN-8s takes any size (padded to multiples of 32 and cropped back), SegNet any size >= 2**depth (odd
    levels included), U-Net multiples of 2**depth, DeepLabV3+ multiples of 16."""
    step, low = {"fcn8s": (1, 1), "segnet": (1, 8), "unet": (4, 4), "deeplabv3plus": (16, 16)}[name]
    h, w = low + step * (3 * a), low + step * (5 * b - 2)
    model = ARCHITECTURES[name]((h, w, channels), classes, **SMALL[name])
    x = np.random.default_rng(a).random((1, h, w, channels), dtype=np.float32)
    assert model.predict(x).shape == (1, h, w, classes)


def generic_point(model, rng):
    """Small random biases, so no unit sits exactly on a ReLU's kink where it has no derivative."""
    for layer in model.layers:
        for key, param in layer.params.items():
            if key in ("bias", "beta"):
                param += rng.normal(0, 0.1, param.shape)
            if key == "kernel" and not param.any():      # FCN's zero-initialised skip scores
                param += rng.normal(0, 0.3, param.shape)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_float64_gradient_check(float64, name):
    tinyseg.set_random_seed(1)
    h, w = {"fcn8s": (32, 32), "segnet": (8, 12), "unet": (8, 8), "deeplabv3plus": (16, 16)}[name]
    model = ARCHITECTURES[name]((h, w, 2), 3, **SMALL[name])
    rng = np.random.default_rng(0)
    generic_point(model, rng)
    report = check_model(model, rng.standard_normal((2, h, w, 2)), max_entries=4)
    n_arrays = sum(len(layer.params) for layer in model.layers)
    assert len(report.per_array) == 1 + n_arrays
    assert report.ok and report.max_rel_error < 1e-6, str(report)
