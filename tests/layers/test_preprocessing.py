"""Rescaling, Resizing, CenterCrop: gradients against central differences, a naive loop for the resize, masks
moved with the images, configs, and bad arguments refused by name (Keras and PyTorch parity: tests/parity/)."""
import math

import numpy as np
import pytest

from tinyseg.gradcheck import check_layer
from tinyseg.layers import CenterCrop, Rescaling, Resizing
from tinyseg.layers.base import deserialize, serialize
from tinyseg.validation import ArgumentError

STEP = 1e-3     # the layers are linear: a central difference has no truncation error, only rounding (~ulp/h)


def images(shape=(2, 7, 9, 3), seed=0, dtype="float64"):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


LAYERS = {
    "rescaling": lambda: Rescaling(1 / 255, offset=-0.5, dtype="float64"),
    "rescaling per channel": lambda: Rescaling([0.5, 2.0, -1.0], offset=[0.0, 1.0, 2.0], dtype="float64"),
    "center crop": lambda: CenterCrop(4, 5, dtype="float64"),
    "resize bilinear down": lambda: Resizing(4, 5, dtype="float64"),
    "resize bilinear up": lambda: Resizing(11, 13, dtype="float64"),
    "resize nearest": lambda: Resizing(5, 13, interpolation="nearest", dtype="float64"),
    "resize crop to aspect": lambda: Resizing(6, 3, crop_to_aspect_ratio=True, dtype="float64"),
}


@pytest.mark.parametrize("make", LAYERS.values(), ids=LAYERS.keys())
def test_gradient_check(make):
    report = check_layer(make(), images(), h=STEP)
    assert report.ok, str(report)


def naive_resize_bilinear(x, height, width):
    """The half-pixel bilinear rule, one output pixel at a time (the module docstring's formula)."""
    n, h, w, c = x.shape
    y = np.zeros((n, height, width, c))

    def taps(i, size, out):
        src = max((i + 0.5) * size / out - 0.5, 0.0)
        i0 = math.floor(src)
        return i0, min(i0 + 1, size - 1), src - i0

    for i in range(height):
        r0, r1, t = taps(i, h, height)
        for j in range(width):
            c0, c1, s = taps(j, w, width)
            y[:, i, j] = ((1 - t) * (1 - s) * x[:, r0, c0] + (1 - t) * s * x[:, r0, c1]
                          + t * (1 - s) * x[:, r1, c0] + t * s * x[:, r1, c1])
    return y


@pytest.mark.parametrize("size", [(4, 5), (11, 13), (7, 9), (1, 1), (3, 17)])
def test_resize_against_naive_loop(size):
    x = images()
    np.testing.assert_allclose(Resizing(*size, dtype="float64")(x), naive_resize_bilinear(x, *size), rtol=1e-12,
                               atol=1e-12)


def test_resize_nearest_reads_the_pixel_under_each_centre():
    x = np.arange(6, dtype="float64").reshape(1, 1, 6, 1)
    # output centres (j + 0.5) * 6 / 4 = 0.75, 2.25, 3.75, 5.25 lie in input pixels 0, 2, 3, 5
    np.testing.assert_array_equal(Resizing(1, 4, interpolation="nearest", dtype="float64")(x).ravel(), [0, 2, 3, 5])


def test_center_crop_window_and_gradient_place():
    x = images((1, 7, 8, 1))
    layer = CenterCrop(3, 4, dtype="float64")
    np.testing.assert_array_equal(layer(x), x[:, 2:5, 2:6])
    dx = layer.backward(np.ones((1, 3, 4, 1)))
    assert dx.sum() == 12 and dx[:, 2:5, 2:6].sum() == 12


def test_rescaling_maps_bytes_to_unit_interval():
    x = np.array([0.0, 127.5, 255.0], dtype="float32").reshape(1, 1, 3, 1)
    np.testing.assert_allclose(Rescaling(1 / 255)(x).ravel(), [0, 0.5, 1], rtol=1e-6)
    np.testing.assert_allclose(Rescaling(1 / 127.5, offset=-1)(x).ravel(), [-1, 0, 1], rtol=1e-6)


@pytest.mark.parametrize("layer", [Resizing(5, 13, interpolation="nearest"), Resizing(3, 4, crop_to_aspect_ratio=True),
                                   CenterCrop(4, 5), Rescaling(2.0)], ids=repr)
def test_masks_follow_the_images_by_nearest_neighbour(layer):
    """A mask made of the pixels' own positions goes where the images' pixels go (nearest), keeps its dtype
    and holds only values it had (no class id is mixed with a neighbour's)."""
    x = np.arange(7 * 9, dtype="float32").reshape(1, 7, 9, 1)
    mask = np.arange(7 * 9).reshape(1, 7, 9)
    out = layer({"images": x, "segmentation_masks": mask})
    assert out["segmentation_masks"].dtype == mask.dtype and out["segmentation_masks"].ndim == 3
    if isinstance(layer, Rescaling):
        np.testing.assert_array_equal(out["segmentation_masks"], mask)
    else:
        nearest = Resizing(*layer.output_shape[:2], interpolation="nearest",
                               crop_to_aspect_ratio=layer.crop_to_aspect_ratio) \
            if isinstance(layer, Resizing) else layer
        np.testing.assert_array_equal(out["segmentation_masks"], nearest(x)[..., 0].astype(int))


def test_other_image_sizes_give_the_same_output_size():
    layer = Resizing(4, 5)
    assert layer(images((1, 7, 9, 3), dtype="float32")).shape == (1, 4, 5, 3)
    assert layer(images((2, 16, 3, 3), dtype="float32")).shape == (2, 4, 5, 3)
    with pytest.raises(ValueError, match="expected"):
        layer(images((1, 7, 9, 2), dtype="float32"))


@pytest.mark.parametrize("make", LAYERS.values(), ids=LAYERS.keys())
def test_config_round_trip(make):
    layer = make()
    again = deserialize(serialize(layer))
    x = images()
    np.testing.assert_array_equal(layer(x), again(x))


@pytest.mark.parametrize("make, match", [
    (lambda: Resizing(0, 4), "height must be a positive integer"),
    (lambda: Resizing(4, 2.5), "width must be a positive integer"),
    (lambda: Resizing(4, 4, interpolation="bicubic"), "interpolation must be 'bilinear' or 'nearest'"),
    (lambda: Resizing(4, 4, crop_to_aspect_ratio=1), "crop_to_aspect_ratio must be True or False"),
    (lambda: CenterCrop(-1, 4), "height must be a positive integer"),
    (lambda: Rescaling("1/255"), "scale must be a real number"),
    (lambda: Rescaling(1.0, offset=[np.nan]), "offset must be a real number"),
])
def test_bad_arguments_named(make, match):
    with pytest.raises((ArgumentError, ValueError), match=match):
        make()


def test_bad_inputs_named():
    with pytest.raises(ValueError, match="cannot crop a 8 x 4 window out of images of 7 x 9"):
        CenterCrop(8, 4)(images(dtype="float32"))
    with pytest.raises(ValueError, match="scale has 2 values but the input has 3 channels"):
        Rescaling([1.0, 2.0])(images(dtype="float32"))
    with pytest.raises(ValueError, match="segmentation_masks must have shape"):
        Resizing(3, 3)({"images": images(dtype="float32"), "segmentation_masks": np.zeros((2, 7, 8))})
    with pytest.raises(ValueError, match="needs the key 'images'"):
        Resizing(3, 3)({"image": images(dtype="float32")})
