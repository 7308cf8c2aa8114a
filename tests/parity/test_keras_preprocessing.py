"""Rescaling, Resizing and CenterCrop against Keras 3 (torch backend, float32, 1e-5), written once with the
framework as a parameter; and Resizing's output and input gradient against PyTorch's F.interpolate (float64,
1e-10), which is what Keras's torch backend calls."""
import numpy as np
import pytest

import tinyseg
from tests.helpers import KERAS_TOL, PARITY_TOL, import_keras, nchw_to_nhwc, nhwc_to_nchw, rel_error

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SIZES = [(4, 5), (11, 13), (7, 9), (3, 17), (1, 1)]


def preprocessing_layers(keras):
    """The same layers, made by `keras` (Keras 3 or tinyseg): (id, layer)."""
    layers = keras.layers
    made = [("rescaling", layers.Rescaling(1 / 127.5, offset=-1)),
            ("center crop", layers.CenterCrop(4, 6))]
    for h, w in SIZES:
        for interpolation in ("bilinear", "nearest"):
            made.append((f"resize {interpolation} {h}x{w}", layers.Resizing(h, w, interpolation=interpolation)))
    made.append(("resize crop to aspect", layers.Resizing(6, 3, crop_to_aspect_ratio=True)))
    made.append(("resize crop to aspect wide", layers.Resizing(2, 8, crop_to_aspect_ratio=True)))
    return made


@pytest.mark.parametrize("index", range(len(preprocessing_layers(tinyseg))))
def test_keras_parity(index):
    keras = import_keras()
    x = np.random.default_rng(index).uniform(0, 255, (2, 7, 9, 3)).astype("float32")
    name, ours = preprocessing_layers(tinyseg)[index]
    _, theirs = preprocessing_layers(keras)[index]
    expected = keras.ops.convert_to_numpy(theirs(x))
    got = ours(x)
    assert got.shape == expected.shape, name
    assert rel_error(got, expected) < KERAS_TOL, name


@pytest.mark.parametrize("size", SIZES + [(14, 18), (21, 27)])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_torch_interpolate_parity(size, interpolation, one_torch_thread):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 7, 9, 3))
    layer = tinyseg.layers.Resizing(*size, interpolation=interpolation, dtype="float64")
    y = layer(x)
    g = np.random.default_rng(1).standard_normal(y.shape)
    dx = layer.backward(g)
    xt = torch.tensor(nhwc_to_nchw(x), requires_grad=True)
    mode = "bilinear" if interpolation == "bilinear" else "nearest-exact"
    yt = torch.nn.functional.interpolate(xt, size=size, mode=mode,
                                         align_corners=False if interpolation == "bilinear" else None)
    yt.backward(torch.tensor(nhwc_to_nchw(g)))
    assert rel_error(y, nchw_to_nhwc(yt.detach().numpy())) < PARITY_TOL
    assert rel_error(dx, nchw_to_nhwc(xt.grad.numpy())) < PARITY_TOL


@pytest.mark.parametrize("fill_mode", ["reflect", "wrap", "constant", "nearest"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_affine_sampler_against_keras(fill_mode, interpolation):
    """RandomRotation / RandomZoom / RandomTranslation sample as keras.ops.image.affine_transform does, for the
    same matrices (Keras's rotation, zoom and translation maps, and an arbitrary one), in float64."""
    from tinyseg.layers import affine
    keras = import_keras()
    x = np.random.default_rng(0).standard_normal((4, 6, 7, 2))
    matrices = np.stack([affine.rotation_matrices(np.array([0.7]), 6, 7)[0],
                         affine.zoom_matrices(np.array([1.6]), np.array([0.7]), 6, 7)[0],
                         affine.translation_matrices(np.array([-2.3]), np.array([3.6]))[0],
                         np.random.default_rng(1).uniform(-2, 2, 6)])
    keras_transform = np.concatenate([matrices, np.zeros((4, 2))], axis=1)      # Keras's c0 = c1 = 0
    expected = keras.ops.convert_to_numpy(keras.ops.image.affine_transform(
        x, keras_transform, interpolation=interpolation, fill_mode=fill_mode, fill_value=0.25))
    got = affine.sample(x, affine.affine_taps(matrices, 6, 7, interpolation, fill_mode), fill_mode, 0.25)
    assert rel_error(got, expected) < PARITY_TOL


def augmented_model(keras):
    """keras.io's pattern: preprocessing and augmentation as the model's first layers."""
    layers = keras.layers
    return keras.Sequential([keras.Input((12, 10, 3)), layers.Rescaling(1 / 255),
                             layers.RandomFlip("horizontal", seed=1), layers.RandomRotation(0.1, seed=2),
                             layers.RandomZoom(0.2, seed=3), layers.RandomTranslation(0.1, 0.1, seed=4),
                             layers.RandomContrast(0.2, value_range=(0, 1), seed=5),
                             layers.RandomBrightness(0.1, value_range=(0, 1), seed=6),
                             layers.Resizing(8, 8), layers.CenterCrop(6, 6),
                             layers.Conv2D(4, 3, padding="same", activation="softmax")])


def test_a_model_with_augmentation_predicts_as_keras():
    """At inference the augmentation is the identity on both sides, so the predictions agree."""
    keras = import_keras()
    theirs, ours = augmented_model(keras), augmented_model(tinyseg)
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal(w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    x = rng.uniform(0, 255, (3, 12, 10, 3)).astype("float32")
    assert rel_error(ours.predict(x, verbose=0), theirs.predict(x, verbose=0)) < KERAS_TOL
