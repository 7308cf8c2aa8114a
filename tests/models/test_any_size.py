"""A model built for one image size runs on images of other heights and widths (same channels), as long as
no layer needs the exact size: a U-Net trained on crops predicts whole images."""
import numpy as np
import pytest

import tinyseg
from tinyseg import Input, Model, Sequential
from tinyseg.gradcheck import check_model
from tinyseg.layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Concatenate,
    Conv2D,
    Conv2DTranspose,
    Dense,
    Flatten,
    MaxPooling2D,
    SeparableConv2D,
    UpSampling2D,
)
from tinyseg.models.unet import UNet


def test_unet_predicts_larger_images_and_agrees_with_a_crop_away_from_the_borders(float64):
    model = UNet(input_shape=(16, 16, 3), num_classes=3, depth=1, base_filters=4)
    x = np.random.default_rng(0).random((1, 64, 48, 3))
    whole = model.predict(x)
    assert whole.shape == (1, 64, 48, 3)
    crop = model.predict(x[:, 16:48, 8:40])               # offsets are multiples of 2**depth
    # a depth-1 U-Net sees about 10 pixels each way: the crop's centre is computed from the same pixels
    np.testing.assert_array_equal(crop[:, 12:20, 12:20], whole[:, 28:36, 20:28])
    assert model.summary is not None and model.input_shape == (16, 16, 3)


def test_gradients_are_right_at_another_size(float64):
    """Paddings and output sizes follow the new size in forward and backward (strides, 'same', a transposed
    convolution, pooling, a skip concatenation)."""
    tinyseg.set_random_seed(0)
    x = Input((8, 8, 2))
    h = Activation("tanh")(BatchNormalization()(Conv2D(3, 3, strides=2, padding="same")(x)))
    down = MaxPooling2D(2, padding="same")(h)
    avg = AveragePooling2D(3, strides=1, padding="same")(down)
    up = UpSampling2D(2, interpolation="bilinear")(SeparableConv2D(3, 3, padding="same")(avg))
    out = Conv2DTranspose(2, 3, strides=2, padding="same")(Concatenate()([up, h]))
    model = Model(x, out)
    report = check_model(model, np.random.default_rng(1).standard_normal((2, 12, 20, 2)), max_entries=30)
    assert report.ok and report.max_rel_error < 1e-6, str(report)
    assert model.call(np.zeros((1, 8, 8, 2)), training=True).shape == (1, 8, 8, 2)      # and back


def test_a_model_that_needs_its_size_refuses_others_with_the_expected_shape():
    model = Sequential([Conv2D(2, 3, input_shape=(8, 8, 1)), Flatten(), Dense(2)])
    with pytest.raises(ValueError, match=r"x has shape \(1, 10, 10, 1\), expected \(batch,\) \+ \(8, 8, 1\)"):
        model.predict(np.zeros((1, 10, 10, 1), np.float32))
    with pytest.raises(ValueError, match="built for 1 channels, x has 4"):
        model.predict(np.zeros((1, 8, 8, 4), np.float32))


def test_unet_names_the_nearest_valid_size():
    model = UNet(input_shape=(16, 16, 1), num_classes=2, depth=2, base_filters=2)
    with pytest.raises(ValueError, match="height 30 is not a multiple of 2\\*\\*depth = 4; the nearest valid "
                                         "height is 32"):
        model.predict(np.zeros((1, 30, 32, 1), np.float32))


def test_a_size_a_layer_cannot_take_changes_nothing():
    pool = MaxPooling2D(4)                                   # 'valid': needs at least 4 x 4
    pool.forward(np.zeros((1, 8, 8, 1), np.float32))
    before = (pool.input_shape, pool.output_shape, pool.pads)
    with pytest.raises(ValueError, match="smaller than the window"):
        pool.forward(np.zeros((1, 2, 8, 1), np.float32))
    assert (pool.input_shape, pool.output_shape, pool.pads) == before
