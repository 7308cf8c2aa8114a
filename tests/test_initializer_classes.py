"""Keras's initializer classes: the formulas (variance and limits), seeds that give the same weights twice,
get_config / from_config, the names strings use, checks at build naming the layer, and bad arguments."""
import numpy as np
import pytest

import tinyseg as keras
from tinyseg import initializers
from tinyseg.validation import ArgumentError

SHAPE = (3, 3, 64, 96)                    # fan_in = 576, fan_out = 864
FAN_IN, FAN_OUT = 576, 864
# class -> (the standard deviation its draws must have, or None for a constant; the bound |w| <= bound)
EXPECTED = {
    "GlorotUniform": (np.sqrt(2 / (FAN_IN + FAN_OUT)), np.sqrt(6 / (FAN_IN + FAN_OUT))),
    "GlorotNormal": (np.sqrt(2 / (FAN_IN + FAN_OUT)), 2 * np.sqrt(2 / (FAN_IN + FAN_OUT)) / 0.8796),
    "HeNormal": (np.sqrt(2 / FAN_IN), 2 * np.sqrt(2 / FAN_IN) / 0.8796),
    "HeUniform": (np.sqrt(2 / FAN_IN), np.sqrt(6 / FAN_IN)),
    "LecunNormal": (np.sqrt(1 / FAN_IN), 2 * np.sqrt(1 / FAN_IN) / 0.8796),
    "LecunUniform": (np.sqrt(1 / FAN_IN), np.sqrt(3 / FAN_IN)),
    "RandomNormal": (0.05, None),
    "TruncatedNormal": (0.05 * 0.8796, 0.1),
    "RandomUniform": (0.1 / np.sqrt(12), 0.05),
}


@pytest.mark.parametrize("name", EXPECTED)
def test_the_draws_have_the_formulas_spread(name):
    std, bound = EXPECTED[name]
    w = getattr(initializers, name)(seed=0)(SHAPE, "float64")
    assert w.shape == SHAPE and w.dtype == np.float64
    assert abs(w.std() / std - 1) < 0.02 and abs(w.mean()) < 0.02 * std
    if bound is not None:
        assert np.abs(w).max() <= bound * (1 + 1e-12)


@pytest.mark.parametrize("name", EXPECTED)
def test_a_seeded_initializer_gives_the_same_weights_twice(name):
    cls = getattr(initializers, name)
    a = cls(seed=7)
    np.testing.assert_array_equal(a((4, 5)), a((4, 5)))
    np.testing.assert_array_equal(a((4, 5)), cls(seed=7)((4, 5)))
    assert not np.array_equal(a((4, 5)), cls(seed=8)((4, 5)))
    layers = [keras.layers.Conv2D(2, 3, kernel_initializer=cls(seed=3)) for _ in range(2)]
    for layer in layers:
        layer.build((5, 5, 1))
    np.testing.assert_array_equal(layers[0].params["kernel"], layers[1].params["kernel"])


def test_unseeded_initializers_follow_set_random_seed():
    keras.set_random_seed(1)
    first = initializers.HeNormal()((3, 4))
    keras.set_random_seed(1)
    np.testing.assert_array_equal(initializers.HeNormal()((3, 4)), first)
    np.testing.assert_array_equal(initializers.get("he_normal")((3, 4)).shape, (3, 4))


def test_constants():
    np.testing.assert_array_equal(initializers.Constant(2.5)((2, 3)), np.full((2, 3), 2.5, "float32"))
    np.testing.assert_array_equal(initializers.Zeros()((2,)), [0, 0])
    np.testing.assert_array_equal(initializers.Ones()((2,), "float64"), [1, 1])
    assert initializers.Ones()((2,)).dtype == np.float32           # dtype=None: floatx


@pytest.mark.parametrize("init", [initializers.GlorotUniform(seed=3), initializers.RandomNormal(1.0, 0.5, seed=2),
                                  initializers.RandomUniform(-1, 2), initializers.Constant(3.0),
                                  initializers.Zeros(), initializers.TruncatedNormal(stddev=0.2, seed=1)], ids=repr)
def test_config_round_trip(init):
    again = initializers.get(initializers.serialize(init))
    assert type(again) is type(init) and again.get_config() == init.get_config()
    if init.get_config().get("seed") is not None or isinstance(init, initializers.Constant):
        np.testing.assert_array_equal(again((3, 2)), init((3, 2)))


def test_names_and_class_names_and_instances():
    assert initializers.get("he_normal") is initializers.get("HeNormal") is initializers.he_normal
    assert isinstance(initializers.get("glorot_normal"), initializers.GlorotNormal)
    init = initializers.HeUniform(seed=1)
    assert initializers.get(init) is init
    layer = keras.layers.Dense(3, kernel_initializer=init, bias_initializer=initializers.Constant(0.5))
    layer.build((4,))
    np.testing.assert_array_equal(layer.params["bias"], [0.5] * 3)
    assert keras.layers.DepthwiseConv2D(3, depthwise_initializer="he_uniform").get_config()[
        "depthwise_initializer"] == "he_uniform"


def test_a_bad_class_draw_is_refused_naming_the_layer_and_the_initializer():
    class Broken(initializers.Initializer):
        def sample(self, shape, dtype):
            return np.full(shape, np.inf)
    layer = keras.layers.Dense(2, kernel_initializer=Broken(), name="d_broken")
    with pytest.raises(ValueError, match=r"^d_broken: kernel_initializer Broken\(seed=None\) returned NaN or inf"):
        layer.build((3,))


@pytest.mark.parametrize("make, match", [
    (lambda: initializers.HeNormal(seed=-1), "HeNormal: seed must be None or a non-negative integer"),
    (lambda: initializers.GlorotUniform(seed=1.5), "GlorotUniform: seed must be None or a non-negative integer"),
    (lambda: initializers.RandomNormal(stddev=0), "RandomNormal: stddev must be > 0"),
    (lambda: initializers.RandomNormal(mean="0"), "RandomNormal: mean must be a real number"),
    (lambda: initializers.RandomUniform(1, -1), "RandomUniform: maxval must be > minval"),
    (lambda: initializers.Constant(np.nan), "Constant: value must be finite"),
    (lambda: initializers.get("he_normall"), "initializer must be one of"),
    (lambda: initializers.get({"class_name": "Orthogonal", "config": {}}), "unknown initializer"),
])
def test_bad_arguments_named(make, match):
    with pytest.raises((ArgumentError, ValueError), match=match):
        make()


def test_a_keras_style_subclass_overriding_call_is_checked_too():
    class Twos(initializers.Initializer):
        def __call__(self, shape, dtype=None):
            return np.full(shape, 2.0)
    layer = keras.layers.Dense(2, kernel_initializer=Twos(), name="d_twos")
    layer.build((3,))
    assert layer.params["kernel"].dtype == np.float32 and np.all(layer.params["kernel"] == 2)

    class Bad(initializers.Initializer):
        def __call__(self, shape, dtype=None):
            return np.zeros((1,))
    with pytest.raises(ValueError, match=r"^d_bad: kernel_initializer .* must return real numbers of shape"):
        keras.layers.Dense(2, kernel_initializer=Bad(), name="d_bad").build((3,))


def test_add_weight_names_the_layer_and_argument_and_keeps_state_apart():
    layer = keras.layers.BatchNormalization(name="bn_w")
    layer.build((4, 4, 3))
    assert set(layer.params) == {"gamma", "beta"} and set(layer.state) == {"moving_mean", "moving_variance"}
    bad = keras.layers.BatchNormalization(moving_mean_initializer=lambda shape, dtype: np.full(shape, np.nan),
                                          name="bn_bad")
    with pytest.raises(ValueError, match=r"^bn_bad: moving_mean_initializer <lambda> returned NaN"):
        bad.build((4, 4, 3))


def test_bilinear_transposed_convolution_starts_as_bilinear_upsampling():
    # kernel 4, stride 2: away from the border (where the zero padding enters) the transposed convolution
    # with the bilinear kernel is the half-pixel bilinear interpolation UpSampling2D does
    x = np.random.default_rng(0).standard_normal((2, 6, 7, 3))
    up = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same", kernel_initializer="bilinear",
                                      use_bias=False, dtype="float64")(x)
    reference = keras.layers.UpSampling2D(2, interpolation="bilinear", dtype="float64")(x)
    np.testing.assert_allclose(np.asarray(up)[:, 1:-1, 1:-1], np.asarray(reference)[:, 1:-1, 1:-1], atol=1e-12)


def test_bilinear_kernel_tents_and_its_channel_diagonal():
    np.testing.assert_allclose(initializers.bilinear_filter(4), [0.25, 0.75, 0.75, 0.25])
    np.testing.assert_allclose(initializers.bilinear_filter(3), [0.5, 1.0, 0.5])
    k = initializers.get("Bilinear")((3, 3, 2, 2), "float64")
    np.testing.assert_allclose(k[:, :, 0, 0], np.outer([0.5, 1, 0.5], [0.5, 1, 0.5]))
    assert not k[:, :, 0, 1].any() and not k[:, :, 1, 0].any()
    assert initializers.serialize(initializers.Bilinear()) == {"class_name": "Bilinear", "config": {}}


def test_bilinear_asks_for_a_square_channel_block():
    with pytest.raises(ArgumentError, match=r"Bilinear: expected a kernel shape \(KH, KW, C, C\).*\(4, 4, 2, 3\)"):
        initializers.Bilinear()((4, 4, 2, 3), "float64")
