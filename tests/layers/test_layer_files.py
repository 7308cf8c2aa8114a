"""Issue 13's reorganisation: old import paths and names still work, and the new helpers say what they do."""
import numpy as np
import pytest

from tinyseg import layers
from tinyseg.kernels.bands import ceil_div, even_share


def test_old_module_paths_and_names_still_work():
    from tinyseg.layers import convolution, merging, pooling
    from tinyseg.layers.activations import ActivatedLayer, ActivationFunction, ActivationLayer, LayerWithActivation
    assert convolution.Conv2D is layers.Conv2D and convolution.Conv2DTranspose is layers.Conv2DTranspose
    assert pooling.GlobalMaxPool2D is layers.GlobalMaxPooling2D and merging.Concatenate is layers.Concatenate
    assert ActivationLayer is ActivationFunction and ActivatedLayer is LayerWithActivation
    assert isinstance(layers.ReLU(), ActivationFunction) and isinstance(layers.Conv2D(1, 1), LayerWithActivation)


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
