"""The contract every image layer keeps, checked the same way for each: it changes neither its input nor the
gradient it is handed, get_config() rebuilds it, and a wrong input is refused with a message that names it."""
import numpy as np
import pytest


def assert_leaves_its_arguments_alone(layer, x, rng):
    """layer.forward(x) and layer.backward(grad) change neither x nor grad, and return arrays of their own."""
    x_copy = x.copy()
    y = layer.forward(x)
    grad = rng.standard_normal(y.shape).astype(x.dtype)
    grad_copy = grad.copy()
    dx = layer.backward(grad)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(grad, grad_copy)
    assert not np.shares_memory(y, x) and not np.shares_memory(dx, grad)


def assert_config_rebuilds(layer, expected, x):
    """layer.get_config() is {"name": layer.name, **expected}, and the layer it builds computes the same y on x."""
    config_ = layer.get_config()
    assert config_ == {"name": layer.name, **expected}
    twin = type(layer)(**config_)
    np.testing.assert_array_equal(twin.forward(x), layer.forward(x))


def assert_bad_images_are_named(make, int_dtype):
    """make(dtype) -> an image layer; an input without its channel axis, a float32 input to a float64 layer and
    an input of int_dtype are each refused with a message that says what is wrong."""
    with pytest.raises(ValueError, match=r"expects images \(batch, H, W, C\)"):
        make("float64").forward(np.zeros((2, 4, 4)))
    with pytest.raises(TypeError, match="x has dtype float32 but the layer computes in float64"):
        make("float64").forward(np.zeros((2, 4, 4, 1), np.float32))
    with pytest.raises(TypeError, match=f"x has dtype {np.dtype(int_dtype).name}"):
        make(None).forward(np.zeros((2, 4, 4, 1), int_dtype))
