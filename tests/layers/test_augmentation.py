"""The Random* augmentation layers: identity at inference, seeded draws, masks moved with their images,
gradients against central differences (the transformation held fixed by reseeding), the affine sampler
against a naive loop, configs, and bad arguments refused by name (Keras parity of the sampler:
tests/parity/test_keras_preprocessing.py)."""
import numpy as np
import pytest

import tinyseg
from tinyseg.gradcheck import check_layer
from tinyseg.layers import (
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
    affine,
)
from tinyseg.layers.base import deserialize, serialize
from tinyseg.validation import ArgumentError

LAYERS = {
    "flip": lambda **k: RandomFlip(**k),
    "flip horizontal": lambda **k: RandomFlip("horizontal", **k),
    "crop": lambda **k: RandomCrop(4, 5, **k),
    "rotation reflect": lambda **k: RandomRotation(0.3, **k),
    "rotation constant": lambda **k: RandomRotation((-0.2, 0.4), fill_mode="constant", fill_value=0.5, **k),
    "rotation nearest interpolation": lambda **k: RandomRotation(0.3, interpolation="nearest", **k),
    "zoom wrap": lambda **k: RandomZoom(0.4, fill_mode="wrap", **k),
    "zoom two axes nearest fill": lambda **k: RandomZoom((-0.5, -0.1), (0.2, 0.6), fill_mode="nearest", **k),
    "translation": lambda **k: RandomTranslation(0.3, (-0.4, 0.1), **k),
    "contrast": lambda **k: RandomContrast(0.5, value_range=(-50, 50), **k),
    "contrast clipped": lambda **k: RandomContrast((0.2, 0.9), value_range=(-1, 1), **k),
    "brightness": lambda **k: RandomBrightness(0.3, value_range=(-1, 1), **k),
}


def images(shape=(3, 7, 9, 2), seed=0, dtype="float64"):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("make", LAYERS.values(), ids=LAYERS.keys())
def test_gradient_check_in_training(make):
    layer = make(seed=3, dtype="float64")

    def forward(x):
        layer.reseed()                          # the same transformation at every evaluation
        return layer.forward(x, training=True)

    report = check_layer(layer, images(), forward=forward, h=1e-4)
    assert report.ok, str(report)


@pytest.mark.parametrize("make", LAYERS.values(), ids=LAYERS.keys())
def test_identity_at_inference(make):
    layer = make(seed=0)
    x = images(dtype="float32")
    if isinstance(layer, RandomCrop):           # deterministic instead: the centre crop and resize
        np.testing.assert_array_equal(layer(x, training=False),
                                      tinyseg.layers.Resizing(4, 5, crop_to_aspect_ratio=True)(x))
    else:
        np.testing.assert_array_equal(layer(x, training=False), x)
        np.testing.assert_array_equal(layer.backward(np.ones_like(x)), np.ones_like(x))
        np.testing.assert_array_equal(layer.forward(x), x)                 # forward's default: inference
    assert not np.array_equal(layer(x, training=True), layer(x, training=False)) or isinstance(layer, RandomFlip)


@pytest.mark.parametrize("make", LAYERS.values(), ids=LAYERS.keys())
def test_called_directly_it_augments_as_keras_in_a_data_pipeline(make):
    x = images(dtype="float32")
    a, b = make(seed=5), make(seed=5)
    np.testing.assert_array_equal(a(x), b(x, training=True))


@pytest.mark.parametrize("make", LAYERS.values(), ids=LAYERS.keys())
def test_a_seed_gives_the_same_draws(make):
    x = images(dtype="float32")
    a, b, other = make(seed=7), make(seed=7), make(seed=8)
    first = [a(x, training=True) for _ in range(3)]
    for y in first:
        np.testing.assert_array_equal(y, b(x, training=True))
    assert any(not np.array_equal(y, other(x, training=True)) for y in first)
    a.reseed()
    np.testing.assert_array_equal(a(x, training=True), first[0])


def test_unseeded_layers_follow_set_random_seed():
    x = images(dtype="float32")
    tinyseg.set_random_seed(5)
    first = RandomRotation(0.3)(x, training=True)
    tinyseg.set_random_seed(5)
    np.testing.assert_array_equal(RandomRotation(0.3)(x, training=True), first)


GEOMETRIC = {k: v for k, v in LAYERS.items() if "contrast" not in k and "brightness" not in k}


def positions(shape=(8, 7, 9)):
    """An image whose every pixel holds its own index: where it lands shows where the pixel went."""
    return np.arange(np.prod(shape)).reshape(shape)


def by_nearest(layer):
    """The same layer (same seed) in float64, reading by nearest neighbour where it interpolates."""
    config = {**layer.get_config(), "dtype": "float64"}
    if "interpolation" in config:
        config["interpolation"] = "nearest"
    return type(layer).from_config(config)


@pytest.mark.parametrize("make", GEOMETRIC.values(), ids=GEOMETRIC.keys())
def test_masks_move_with_their_images(make):
    """A mask of positions lands where a nearest-neighbour image of the same positions does: with one layer
    on {"images", "segmentation_masks"}, and with a second layer of the same seed on the mask alone."""
    where = positions()
    image = where[..., None].astype("float64")
    out = by_nearest(make(seed=4))({"images": image, "segmentation_masks": where}, training=True)
    assert out["segmentation_masks"].dtype == where.dtype
    np.testing.assert_array_equal(out["segmentation_masks"], out["images"][..., 0].astype(where.dtype))
    assert not np.array_equal(out["segmentation_masks"], where[:, :out["images"].shape[1], :out["images"].shape[2]])
    # the image's layer (bilinear where it has it) and a mask's layer (nearest) of one seed: one move
    image_layer, mask_layer = make(seed=9), by_nearest(make(seed=9))
    colour = images((8, 7, 9, 2), dtype="float32")
    together = image_layer({"images": colour, "segmentation_masks": where}, training=True)
    apart = mask_layer(image, training=True)[..., 0]
    np.testing.assert_array_equal(together["segmentation_masks"], apart.astype(where.dtype))


def test_value_layers_leave_masks_alone():
    where = positions()
    colour = images((8, 7, 9, 2), dtype="float32")
    out = RandomContrast(0.5, seed=0)({"images": colour, "segmentation_masks": where}, training=True)
    np.testing.assert_array_equal(out["segmentation_masks"], where)


def naive_affine(x, matrix, interpolation, fill_mode, fill_value):
    """affine.py's module docstring, one output pixel and one tap at a time."""
    n, h, w, c = x.shape
    a0, a1, a2, b0, b1, b2 = matrix

    def fix(k, size):
        if fill_mode == "wrap":
            return k % size
        if fill_mode == "reflect":
            k = k % (2 * size)
            return k if k < size else 2 * size - 1 - k
        return min(max(k, 0), size - 1)

    y = np.zeros_like(x)
    for i in range(h):
        for j in range(w):
            col, row = a0 * j + a1 * i + a2, b0 * j + b1 * i + b2
            if interpolation == "nearest":
                taps = [(int(np.rint(row)), int(np.rint(col)), 1.0)]
            else:
                r, s = int(np.floor(row)), int(np.floor(col))
                t, u = row - r, col - s
                taps = [(r, s, (1 - t) * (1 - u)), (r, s + 1, (1 - t) * u), (r + 1, s, t * (1 - u)),
                        (r + 1, s + 1, t * u)]
            for r, s, weight in taps:
                if fill_mode == "constant" and not (0 <= r < h and 0 <= s < w):
                    y[:, i, j] += weight * fill_value
                else:
                    y[:, i, j] += weight * x[:, fix(r, h), fix(s, w)]
    return y


@pytest.mark.parametrize("fill_mode", affine.FILL_MODES)
@pytest.mark.parametrize("interpolation", affine.INTERPOLATIONS)
def test_affine_sampler_against_naive_loop(fill_mode, interpolation):
    x = images((1, 6, 7, 2))
    rng = np.random.default_rng(1)
    matrices = [affine.rotation_matrices(np.array([0.7]), 6, 7)[0],
                affine.zoom_matrices(np.array([1.6]), np.array([0.7]), 6, 7)[0],
                affine.translation_matrices(np.array([-2.3]), np.array([3.6]))[0],
                rng.uniform(-2, 2, 6)]
    for m in matrices:
        taps = affine.affine_taps(m[None], 6, 7, interpolation, fill_mode)
        np.testing.assert_allclose(affine.sample(x, taps, fill_mode, 0.25),
                                   naive_affine(x, m, interpolation, fill_mode, 0.25), rtol=1e-12, atol=1e-12)


def test_flip_modes():
    x = positions((64, 2, 3))[..., None].astype("float32")
    for mode, seen in (("horizontal", {(0, 0), (1, 0)}), ("vertical", {(0, 0), (0, 1)}),
                       ("horizontal_and_vertical", {(0, 0), (1, 0), (0, 1), (1, 1)})):
        y = RandomFlip(mode, seed=0)(x, training=True)
        flips = {next((h, v) for h in (0, 1) for v in (0, 1)
                      if np.array_equal(b, a[::-1 if v else 1, ::-1 if h else 1])) for a, b in zip(x, y)}
        assert flips == seen, mode


def test_in_a_model_random_in_fit_and_fixed_in_predict():
    keras = tinyseg
    model = keras.Sequential([keras.Input((8, 8, 1)), RandomFlip(seed=0), RandomRotation(0.1, seed=0),
                              keras.layers.Conv2D(2, 3, padding="same", activation="softmax")])
    x = images((4, 8, 8, 1), dtype="float32")
    y = np.random.default_rng(0).integers(0, 2, (4, 8, 8))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("make", LAYERS.values(), ids=LAYERS.keys())
def test_config_round_trip(make):
    layer = make(seed=2)
    again = deserialize(serialize(layer))
    x = images(dtype="float32")
    np.testing.assert_array_equal(layer(x, training=True), again(x, training=True))


@pytest.mark.parametrize("make, match", [
    (lambda: RandomFlip("diagonal"), "mode must be 'horizontal', 'vertical' or 'horizontal_and_vertical'"),
    (lambda: RandomFlip(seed=-1), "seed must be None or a non-negative integer"),
    (lambda: RandomFlip(seed=1.5), "seed must be None or a non-negative integer"),
    (lambda: RandomCrop(0, 3), "height must be a positive integer"),
    (lambda: RandomRotation(1.5), "factor must be in"),
    (lambda: RandomRotation((0.1, 0.2, 0.3)), "factor must be a number or a pair"),
    (lambda: RandomRotation(0.1, fill_mode="mirror"), "fill_mode must be"),
    (lambda: RandomRotation(0.1, interpolation="bicubic"), "interpolation must be 'bilinear' or 'nearest'"),
    (lambda: RandomRotation(0.1, fill_value="black"), "fill_value must be a real number"),
    (lambda: RandomZoom(-1.0), "height_factor must lie in"),
    (lambda: RandomZoom(0.2, width_factor="x"), "width_factor must be a number or a pair"),
    (lambda: RandomTranslation(0.1, 2.0), "width_factor must be in"),
    (lambda: RandomContrast(-0.2), "factor must be in"),
    (lambda: RandomContrast(0.2, value_range=(1, 0)), "value_range must be a pair"),
    (lambda: RandomBrightness(0.2, value_range=255), "value_range must be a pair"),
])
def test_bad_arguments_named(make, match):
    with pytest.raises((ArgumentError, ValueError), match=match):
        make()


def test_reseed_without_a_seed_is_refused():
    with pytest.raises(ValueError, match="reseed\\(\\) needs a seed"):
        RandomFlip().reseed()
