"""U-Net: shapes, gradient check through the skip connections, size errors, training on shapes."""
import numpy as np
import pytest

import tinyseg
from tinyseg.gradcheck import check_model
from tinyseg.models.unet import UNet


@pytest.mark.parametrize("upsampling, batch_norm", [("transpose", True), ("bilinear", False),
                                                    ("nearest", True)])
def test_tiny_unet_passes_gradient_check(float64, upsampling, batch_norm):
    tinyseg.set_random_seed(3)
    model = UNet(input_shape=(8, 8, 2), num_classes=3, depth=2, base_filters=2, batch_norm=batch_norm,
                 upsampling=upsampling)
    rng = np.random.default_rng(0)
    # Biases start at 0, so a unit whose input patch is all zeros (after a dead ReLU) sits exactly on the
    # next ReLU's kink, where no derivative exists. Checking at a generic point avoids that.
    for layer in model.layers:
        for key, param in layer.params.items():
            if key in ("bias", "beta"):
                param += rng.normal(0, 0.1, param.shape)
    x = rng.standard_normal((3, 8, 8, 2))
    # The default floor (gradcheck.noise_floor) holds partial derivatives smaller than the rounding noise of
    # the differenced outputs to an absolute error instead: a fixed floor of 1e-6 failed one entry of 1.1e-5
    # on another CPU, off by 2.6e-11 where rounding alone allows about 9e-11.
    report = check_model(model, x, max_entries=12)
    n_weights = sum(len(layer.params) for layer in model.layers)
    assert len(report.per_array) == 1 + n_weights
    assert report.ok and report.max_rel_error < 1e-6, str(report)


def test_skip_gradient_is_summed_with_the_pooling_path(float64):
    """Removing the skip connection's contribution changes the input gradient: the sum really happens."""
    model = UNet(input_shape=(4, 4, 1), num_classes=2, depth=1, base_filters=2, batch_norm=False)
    x = np.random.default_rng(1).standard_normal((2, 4, 4, 1))
    g = np.random.default_rng(2).standard_normal((2, 4, 4, 2))
    model.call(x, training=True)
    full = model.backward(g)
    cat = model.concats[0]
    original = cat.backward
    cat.backward = lambda grad: [original(grad)[0], np.zeros_like(original(grad)[1])]
    model.call(x, training=True)
    without_skip = model.backward(g)
    assert not np.allclose(full, without_skip)


def test_output_shape_and_probabilities():
    model = UNet(input_shape=(16, 16, 3), num_classes=4, depth=2, base_filters=4)
    x = np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)
    p = model.predict(x)
    assert p.shape == (2, 16, 16, 4) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(-1), 1, rtol=1e-5)
    assert model.output_shape == (16, 16, 4)
    binary = UNet(input_shape=(8, 8, 1), num_classes=1, depth=1, base_filters=2)
    assert binary.output_layer.activation.activation_name == "sigmoid"


def test_size_not_divisible_names_nearest_valid_size():
    with pytest.raises(ValueError, match=r"height 30 is not divisible by 2\*\*depth = 8.*nearest valid height is 32"):
        UNet(input_shape=(30, 32, 3), depth=3)
    with pytest.raises(ValueError, match="width 20 .* nearest valid width is 16"):
        UNet(input_shape=(16, 20, 3), depth=3)
    with pytest.raises(ValueError, match="upsampling"):
        UNet(input_shape=(16, 16, 3), upsampling="cubic")


def test_unet_learns_the_shapes():
    """A few epochs on 32x32 shapes already separate shapes from background (a smoke test of learning)."""
    from tinyseg.datasets import load_shapes
    from tinyseg.metrics import ConfusionMatrix
    tinyseg.set_random_seed(0)
    (x, y), (xv, yv) = load_shapes(192, 32, size=32, seed=0)
    model = UNet(input_shape=(32, 32, 3), num_classes=4, depth=2, base_filters=8)
    model.compile(optimizer=tinyseg.optimizers.Adam(3e-3), loss="ce_dice", metrics=["mean_iou"])
    history = model.fit(x, y, epochs=4, batch_size=16, verbose=0, validation_data=(xv, yv))
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]
    pred = model.predict(xv).argmax(-1)
    result = ConfusionMatrix(4).update(yv, pred).result()
    assert result["iou"][0] > 0.8                     # background found
