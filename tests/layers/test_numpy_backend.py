"""TINYSEG_BACKEND=numpy: the plain NumPy lines of Conv2D, BatchNormalization, MaxPooling2D, Dense and the
softmax cross-entropy (and of Conv2DTranspose and AveragePooling2D) pass the float64 gradient checks and give
the numbers of the fast path.

Each case runs the layer twice on the same input and upstream gradient, once per backend, and compares the
output, the input gradient and every parameter gradient; then checks the NumPy lines against central
differences. float64 throughout, so the two may differ only by the order of the sums.
"""
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import use_backend
from tinyseg import backend
from tinyseg.gradcheck import check_layer, check_loss
from tinyseg.layers import AveragePooling2D, BatchNormalization, Conv2D, Conv2DTranspose, Dense, MaxPooling2D
from tinyseg.losses import CategoricalCrossentropy, SparseCategoricalCrossentropy

TOL = 1e-12

LAYERS = {
    "conv2d 3x3 same": (lambda: Conv2D(4, 3, padding="same", dtype="float64"), (2, 6, 5, 3)),
    "conv2d 3x3 same, wide": (lambda: Conv2D(3, 3, padding="same", dtype="float64"), (2, 5, 6, 9)),
    "conv2d 2x3 stride 2 valid": (lambda: Conv2D(5, (2, 3), strides=2, dtype="float64"), (3, 7, 8, 2)),
    "conv2d dilated, no bias": (lambda: Conv2D(2, 3, dilation_rate=2, padding="same", use_bias=False,
                                               dtype="float64"), (1, 7, 6, 3)),
    "conv2d transpose 2x2 / 2": (lambda: Conv2DTranspose(3, 2, strides=2, dtype="float64"), (2, 3, 4, 5)),
    "conv2d transpose 3x3 / 2 same, no bias": (lambda: Conv2DTranspose(2, 3, strides=2, padding="same", use_bias=False,
                                                                       dtype="float64"), (1, 4, 3, 3)),
    "conv2d transpose 3x3 valid": (lambda: Conv2DTranspose(4, 3, dtype="float64"), (2, 4, 4, 2)),
    "batch norm images": (lambda: BatchNormalization(dtype="float64"), (3, 4, 5, 3)),
    "batch norm vectors": (lambda: BatchNormalization(center=False, dtype="float64"), (6, 4)),
    "max pool 2x2": (lambda: MaxPooling2D(dtype="float64"), (2, 6, 6, 3)),
    "max pool 3x3 / 2 same": (lambda: MaxPooling2D(3, strides=2, padding="same", dtype="float64"), (2, 7, 5, 2)),
    "average pool 2x2": (lambda: AveragePooling2D(dtype="float64"), (2, 6, 5, 3)),
    "average pool 3x3 / 2 same": (lambda: AveragePooling2D(3, strides=2, padding="same", dtype="float64"),
                                  (2, 7, 5, 2)),
    "dense": (lambda: Dense(4, dtype="float64"), (5, 7)),
    "dense, no bias": (lambda: Dense(3, use_bias=False, dtype="float64"), (4, 6)),
}


def built(case, seed=0):
    """The case's layer, built, with random weights (positive variances for batch norm), and an input."""
    make, shape = LAYERS[case]
    rng = np.random.default_rng(seed)
    layer = make()
    layer.build(shape[1:])
    layer.set_weights([rng.uniform(0.5, 2, w.shape) for w in layer.get_weights()])
    return layer, rng.standard_normal(shape)


def run(layer, x, training, seed=1):
    """Output, input gradient and parameter gradients of one forward and backward."""
    y = layer.forward(x, training=training)
    g = np.random.default_rng(seed).standard_normal(y.shape)
    dx = layer.backward(g)
    return y, dx, {k: v.copy() for k, v in layer.grads.items()}


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("case", sorted(LAYERS))
def test_the_numpy_lines_equal_the_fast_path(case, training):
    results = {}
    for name in ("numba", "numpy"):
        layer, x = built(case)
        with use_backend(name):
            results[name] = run(layer, x, training)
        if training and hasattr(layer, "state"):
            results[name] += (layer.get_weights(),)          # the moving statistics after the update
    fast, plain = results["numba"], results["numpy"]
    np.testing.assert_allclose(plain[0], fast[0], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(plain[1], fast[1], rtol=TOL, atol=TOL)
    assert plain[2].keys() == fast[2].keys()
    for key in fast[2]:
        np.testing.assert_allclose(plain[2][key], fast[2][key], rtol=TOL, atol=TOL, err_msg=key)
    for a, b in zip(plain[3:], fast[3:]):
        for w_plain, w_fast in zip(a, b):
            np.testing.assert_allclose(w_plain, w_fast, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("case", sorted(LAYERS))
def test_the_numpy_lines_pass_the_gradient_check(case, training):
    layer, x = built(case)
    if "max pool" in case:                                   # distinct values: every window has one maximum
        x = np.random.default_rng(2).permutation(x.size).reshape(x.shape) / x.size
    with use_backend("numpy"):
        report = check_layer(layer, x, training=training, max_entries=None)
    assert report.max_rel_error < 1e-6, str(report)


def test_the_numpy_lines_of_the_softmax_cross_entropies():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((2, 3, 4, 5)) * 3
    labels = rng.integers(0, 5, (2, 3, 4))
    onehot = np.eye(5)[labels]
    for loss, y in ((CategoricalCrossentropy(), onehot),
                    (SparseCategoricalCrossentropy(class_weight=[1, 2, 0.5, 1, 3], ignore_index=4), labels)):
        values = {}
        for name in ("numba", "numpy"):
            with use_backend(name):
                values[name] = loss.forward(y, z), loss.backward()
        assert values["numpy"][0] == pytest.approx(values["numba"][0], rel=TOL)
        np.testing.assert_allclose(values["numpy"][1], values["numba"][1], rtol=TOL, atol=TOL)
        with use_backend("numpy"):
            report = check_loss(loss, y, z, max_entries=None)
        assert report.max_rel_error < 1e-6, str(report)


def test_set_backend_refuses_unknown_names():
    with pytest.raises(ValueError, match="set_backend: name must be one of"):
        backend.set_backend("cuda")


def test_the_environment_variable_chooses_the_numpy_lines():
    """TINYSEG_BACKEND=numpy, read once at import: the layers report and take the NumPy path."""
    code = ("import tinyseg.backend as b; from tinyseg.kernels import get_backend; "
            "print(b.get_backend(), b.fast(), get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "TINYSEG_BACKEND": "numpy"}).stdout.split()
    assert out == ["numpy", "False", "numpy"]
