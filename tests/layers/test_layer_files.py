"""One layer (or family) per file, each name in one place; and the helpers the layers share say what they do."""
import importlib

import numpy as np
import pytest

from tinyseg import layers
from tinyseg.kernels.bands import ceil_div, even_share


def test_each_layer_has_one_home_and_the_old_aliases_are_gone():
    from tinyseg.layers import activations, conv2d, conv2d_transpose, global_pooling, merging, pooling
    from tinyseg.layers.activations import ActivationFunction, LayerWithActivation
    assert conv2d.Conv2D is layers.Conv2D and conv2d_transpose.Conv2DTranspose is layers.Conv2DTranspose
    assert global_pooling.GlobalMaxPool2D is layers.GlobalMaxPooling2D and merging.Concatenate is layers.Concatenate
    assert isinstance(layers.ReLU(), ActivationFunction) and isinstance(layers.Conv2D(1, 1), LayerWithActivation)
    assert not hasattr(activations, "ActivationLayer") and not hasattr(activations, "ActivatedLayer")
    assert not hasattr(pooling, "GlobalMaxPool2D") and not hasattr(merging, "read_only")
    with pytest.raises(ImportError):
        importlib.import_module("tinyseg.layers.convolution")


@pytest.mark.parametrize("n", range(1, 40))
def test_even_share_makes_the_fewest_nearly_equal_pieces(n):
    for most in range(1, 12):
        size, count = even_share(n, most), ceil_div(n, most)             # count: the fewest pieces possible
        assert size <= most and ceil_div(n, size) == count
        assert size == 1 or ceil_div(n, size - 1) > count                 # any smaller size needs more pieces


@pytest.mark.parametrize("cls", [layers.Conv2D, layers.Conv2DTranspose, layers.Dense])
def test_backward_without_input_grad_gives_none_and_the_same_parameter_grads(cls):
    rng = np.random.default_rng(0)
    layer = cls(3) if cls is layers.Dense else cls(3, 2, strides=2, padding="same", activation="tanh")
    x = rng.standard_normal((2, 4) if cls is layers.Dense else (2, 5, 5, 2))
    layer = type(layer)(**{**layer.get_config(), "dtype": "float64"})
    g = rng.standard_normal((2,) + tuple(layer.compute_output_shape(x.shape[1:])))
    layer.forward(x)
    assert layer.backward(g) is not None
    full = {k: v.copy() for k, v in layer.grads.items()}
    layer.forward(x)
    assert layer.backward(g, input_grad=False) is None
    for k in full:
        np.testing.assert_array_equal(layer.grads[k], full[k])
