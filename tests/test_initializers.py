"""tinyseg/initializers.py: every initial weight is checked when a layer is built (finite in the layer's dtype,
of the asked shape, a copy), with an error naming the layer, the argument and the function; and size_ceiling
refuses a weight before it is allocated."""
import numpy as np
import pytest

import tinyseg as keras
from tinyseg import initializers


def nan_init(shape, dtype):
    return np.full(shape, np.nan)


def huge_init(shape, dtype):
    return np.full(shape, 1e39)          # finite in float64, inf in float32


@pytest.mark.parametrize("make, argument, shape", [
    (lambda: keras.layers.Conv2D(4, 3, kernel_initializer=nan_init, name="c1"), "kernel_initializer", (8, 8, 3)),
    (lambda: keras.layers.Dense(2, bias_initializer=nan_init, name="c1"), "bias_initializer", (5,)),
    (lambda: keras.layers.DepthwiseConv2D(3, depthwise_initializer=nan_init, name="c1"), "depthwise_initializer",
     (8, 8, 3)),
    (lambda: keras.layers.SeparableConv2D(2, 3, pointwise_initializer=nan_init, name="c1"), "pointwise_initializer",
     (8, 8, 3)),
    (lambda: keras.layers.BatchNormalization(gamma_initializer=nan_init, name="c1"), "gamma_initializer", (4,)),
])
def test_a_nan_initial_weight_is_refused_at_build_naming_layer_argument_and_function(make, argument, shape):
    layer = make()
    with pytest.raises(ValueError, match=rf"^c1: {argument} nan_init returned NaN or inf"):
        layer.build(shape)


def test_a_weight_beyond_the_layers_dtype_is_refused_in_float32_and_kept_in_float64():
    inputs = keras.Input((3,))
    with pytest.raises(ValueError, match=r"dense_huge: kernel_initializer huge_init returned NaN or inf \(in "
                                         r"float32\)"):
        keras.layers.Dense(2, kernel_initializer=huge_init, name="dense_huge")(inputs)
    layer = keras.layers.Dense(2, kernel_initializer=huge_init, dtype="float64")
    layer.build((3,))
    assert layer.params["kernel"].dtype == np.float64 and np.all(layer.params["kernel"] == 1e39)


def test_an_initializer_of_the_wrong_shape_or_type_is_refused():
    layer = keras.layers.Dense(2, kernel_initializer=lambda shape, dtype: np.zeros((2, 2)), name="d")
    with pytest.raises(ValueError, match=r"d: kernel_initializer <lambda> must return real numbers of shape "
                                         r"\(3, 2\), got \(2, 2\)"):
        layer.build((3,))
    layer = keras.layers.Dense(2, kernel_initializer=lambda shape, dtype: np.full(shape, "a"), name="d")
    with pytest.raises(ValueError, match="must return real numbers"):
        layer.build((3,))


def test_each_layer_gets_its_own_copy_in_its_dtype():
    kept = np.ones((3, 2))                                # a function that hands out the same array twice

    def same(shape, dtype):
        return kept
    a, b = (keras.layers.Dense(2, kernel_initializer=same) for _ in range(2))
    a.build((3,))
    b.build((3,))
    a.params["kernel"][...] = 5
    assert np.all(b.params["kernel"] == 1) and np.all(kept == 1)
    assert a.params["kernel"].dtype == np.float32


def test_the_named_initializers_keep_their_identity_and_are_wrapped_once():
    glorot = initializers.get("glorot_uniform")
    assert glorot is initializers.INITIALIZERS["glorot_uniform"] is initializers.get(glorot)
    assert initializers.get(nan_init) is not nan_init
    wrapped = initializers.get(nan_init)
    assert initializers.get(wrapped) is wrapped and wrapped.__name__ == "nan_init"
    assert keras.layers.DepthwiseConv2D(3).get_config()["depthwise_initializer"] == "glorot_uniform"


def test_size_ceiling_refuses_a_weight_before_it_is_allocated():
    small, big = keras.layers.Dense(3), keras.layers.Dense(2 ** 40, name="too_big")
    with initializers.size_ceiling(4 * 3 + 3 + 10):
        small.build((4,))                                 # 15 numbers: 10 left
        with pytest.raises(initializers.CeilingExceeded, match=r"too_big: kernel_initializer asks for a weight "
                                                               rf"of shape \(4, {2 ** 40}\) .* more than the 10 left"):
            big.build((4,))
    keras.layers.Dense(3).build((40,))                    # no ceiling outside the block
