"""What forward keeps for backward is explicit: `layer.saved`, filled by save_for_backward, and nothing else.

A layer used at two places of a graph keeps one Saved (and one geometry) per call: save_cache after each
call's forward, restore_cache before that call's backward, gives each call the gradients it would have alone.
"""
import numpy as np
import pytest

from tinyseg.layers import BatchNormalization, Conv2D, MaxPooling2D


def test_forward_fills_saved_and_backward_reads_it():
    layer = Conv2D(2, 3, padding="same", activation="relu", dtype="float64")
    x = np.random.default_rng(0).standard_normal((1, 4, 4, 3))
    with pytest.raises(RuntimeError, match="backward\\(\\) called before forward\\(\\)"):
        layer.backward(np.zeros((1, 4, 4, 2)))
    layer.forward(x)
    assert layer.saved.x is x
    assert layer.activation.saved.x.shape == (1, 4, 4, 2)


@pytest.mark.parametrize("make", [lambda: Conv2D(2, 3, padding="same", activation="relu", dtype="float64"),
                                  lambda: BatchNormalization(dtype="float64"),
                                  lambda: MaxPooling2D(padding="same", dtype="float64")])
def test_a_layer_shared_by_two_calls_of_other_sizes_gets_each_calls_saved_values_back(make):
    rng = np.random.default_rng(1)
    x1, x2 = rng.standard_normal((2, 5, 6, 3)), rng.standard_normal((1, 7, 4, 3))
    def built():
        layer = make()
        layer.build((5, 6, 3))
        layer.set_weights([np.linspace(0.5, 1.5, w.size).reshape(w.shape) for w in layer.get_weights()])
        return layer

    alone = []
    for x in (x1, x2):
        layer = built()
        y = layer.forward(x, training=True)
        g = np.random.default_rng(x.shape[1]).standard_normal(y.shape)
        alone.append((layer.backward(g), {k: v.copy() for k, v in layer.grads.items()}, g))
    shared = built()
    caches = []
    for x in (x1, x2):                         # both forwards first, as a graph runs them
        shared.forward(x, training=True)
        caches.append(shared.save_cache())
    for (dx, grads, g), cache in reversed(list(zip(alone, caches))):
        shared.restore_cache(cache)
        np.testing.assert_allclose(shared.backward(g), dx, rtol=1e-13, atol=1e-13)
        for key in grads:
            np.testing.assert_allclose(shared.grads[key], grads[key], rtol=1e-13, atol=1e-13)
