"""Losses and optimizers against PyTorch, through tinyseg.interop's converters, in float64.

Losses: the value and dL/dlogits of every tinyseg loss against to_torch_loss(loss) and torch autograd on the
same logits (NCHW) and targets_to_torch(loss, y): relative error <= 1e-10.
Optimizers: 20 steps on the same gradients; every parameter after every step (and its displacement from the
start) must match to_torch_optimizer's torch.optim to 1e-10.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch", reason="PyTorch parity tests need torch: pip install -e '.[compare]'")

from tests.helpers import PARITY_TOL, optimizer_against_torch
from tinyseg import losses, optimizers  # noqa: E402
from tinyseg.interop import (  # noqa: E402
    adam_epsilon_keras_to_torch,
    nhwc_to_nchw,
    relative_error,
    targets_to_torch,
    to_tensor,
    to_torch_loss,
    to_torch_optimizer,
)

SETTINGS = settings(deadline=None, max_examples=20)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def loss_errors(loss, y_true, z):
    """(relative error of the loss value, of dL/dz) between tinyseg and torch."""
    value = loss.forward(y_true, z)
    grad = loss.backward()
    zt = to_tensor(nhwc_to_nchw(z), requires_grad=True)
    lt = to_torch_loss(loss, "float64")(zt, targets_to_torch(loss, y_true, "float64"))
    lt.backward()
    return relative_error(np.array(value), lt), relative_error(nhwc_to_nchw(grad), zt.grad)


def assert_parity(loss, y_true, z):
    value_err, grad_err = loss_errors(loss, y_true, z)
    assert value_err <= PARITY_TOL and grad_err <= PARITY_TOL, (value_err, grad_err)


# shapes: per-image scores (N, K) or per-pixel scores (N, H, W, K)
score_shapes = st.one_of(
    st.tuples(st.integers(1, 5), st.integers(1, 5)),
    st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 5)))


def logits(rng, shape):
    return rng.standard_normal(shape) * 3


@SETTINGS
@given(score_shapes, st.booleans(), st.integers(0, 2**31))
def test_categorical_crossentropy(shape, soft, seed):
    rng = np.random.default_rng(seed)
    if soft:                                               # probability rows: torch's soft-target cross-entropy
        y = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])
    else:
        y = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    assert_parity(losses.CategoricalCrossentropy(), y, logits(rng, shape))


@SETTINGS
@given(score_shapes, st.booleans(), st.sampled_from([None, 255, -1]), st.booleans(), st.integers(0, 2**31))
def test_sparse_categorical_crossentropy(shape, weighted, ignore_index, trailing_axis, seed):
    """Class weights and ignore_index: the weighted mean over the pixels that are not ignored, as torch's."""
    rng = np.random.default_rng(seed)
    k = shape[-1]
    labels = rng.integers(0, k, shape[:-1])
    if ignore_index is not None:
        ignored = rng.random(labels.shape) < 0.3
        ignored.flat[0] = False                            # at least one pixel counts (else torch gives nan)
        labels = np.where(ignored, ignore_index, labels)
    weights = rng.uniform(0.1, 3.0, k) if weighted else None
    if trailing_axis and len(shape) == 4 and k > 1:     # with K = 1 tinyseg refuses the ambiguous shape
        labels = labels[..., None]                         # (N, H, W, 1), as Keras accepts
    loss = losses.SparseCategoricalCrossentropy(class_weight=weights, ignore_index=ignore_index)
    assert_parity(loss, labels, logits(rng, shape))


def test_all_pixels_ignored_is_zero_in_tinyseg_and_nan_in_torch():
    """The one documented reduction difference: 0 / 0 is 0 for tinyseg, nan for torch."""
    loss = losses.SparseCategoricalCrossentropy(ignore_index=255)
    y = np.full((1, 2, 2), 255)
    z = np.random.default_rng(0).standard_normal((1, 2, 2, 3))
    assert loss.forward(y, z) == 0.0 and not loss.backward().any()
    lt = to_torch_loss(loss, "float64")(to_tensor(nhwc_to_nchw(z)), targets_to_torch(loss, y))
    assert torch.isnan(lt)


@SETTINGS
@given(st.one_of(st.tuples(st.integers(1, 4), st.integers(1, 4)),
                 st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.just(1))),
       st.booleans(), st.booleans(), st.integers(0, 2**31))
def test_binary_crossentropy(shape, soft, mask_without_channel, seed):
    rng = np.random.default_rng(seed)
    y = rng.random(shape) if soft else rng.integers(0, 2, shape).astype(float)
    if mask_without_channel and len(shape) == 4:
        y = y[..., 0]                                       # (N, H, W) masks for (N, H, W, 1) logits
    assert_parity(losses.BinaryCrossentropy(), y, logits(rng, shape))


@SETTINGS
@given(st.one_of(st.tuples(st.integers(1, 4), st.integers(1, 4)),
                 st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3))),
       st.integers(0, 2**31))
def test_mean_squared_error(shape, seed):
    rng = np.random.default_rng(seed)
    assert_parity(losses.MeanSquaredError(), rng.standard_normal(shape), logits(rng, shape))


@SETTINGS
@given(st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(2, 4)),
       st.sampled_from([None, 255]), st.sampled_from([1.0, 1e-3, 5.0]), st.integers(0, 2**31))
def test_dice_multiclass(shape, ignore_index, smooth, seed):
    """tinyseg's hand-derived Dice gradient against torch autograd of the same formula (TorchDiceLoss)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, shape[-1], shape[:-1])
    if ignore_index is not None:
        labels = np.where(rng.random(labels.shape) < 0.3, ignore_index, labels)
    assert_parity(losses.DiceLoss(smooth=smooth, ignore_index=ignore_index), labels, logits(rng, shape))


@SETTINGS
@given(st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)), st.sampled_from([None, 255]),
       st.integers(0, 2**31))
def test_dice_binary(shape, ignore_index, seed):
    rng = np.random.default_rng(seed)
    mask = rng.integers(0, 2, shape)
    if ignore_index is not None:
        mask = np.where(rng.random(shape) < 0.3, ignore_index, mask)
    assert_parity(losses.DiceLoss(ignore_index=ignore_index, mode="binary"), mask, logits(rng, shape + (1,)))


@SETTINGS
@given(st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(2, 4)),
       st.floats(0.1, 2.0), st.floats(0.1, 2.0), st.booleans(), st.integers(0, 2**31))
def test_ce_dice(shape, ce_weight, dice_weight, weighted, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, shape[-1], shape[:-1])
    labels.flat[0] = 0
    labels = np.where(rng.random(labels.shape) < 0.2, 255, labels)
    labels.flat[0] = 0                                     # at least one pixel counts
    loss = losses.CEDiceLoss(ce_weight, dice_weight, ignore_index=255,
                             class_weight=rng.uniform(0.5, 2, shape[-1]) if weighted else None)
    assert_parity(loss, labels, logits(rng, shape))


def test_a_wrong_gradient_is_caught():
    """The comparison is sharp: a gradient off by a factor 1 + 1e-8 fails it."""
    rng = np.random.default_rng(0)
    loss = losses.SparseCategoricalCrossentropy()
    z = logits(rng, (2, 3, 3, 4))
    y = rng.integers(0, 4, (2, 3, 3))
    loss.forward(y, z)
    zt = to_tensor(nhwc_to_nchw(z), requires_grad=True)
    to_torch_loss(loss, "float64")(zt, targets_to_torch(loss, y)).backward()
    assert relative_error(nhwc_to_nchw(loss.backward()) * (1 + 1e-8), zt.grad) > PARITY_TOL


# --- optimizers -----------------------------------------------------------------------------------------
param_shapes = st.lists(st.sampled_from([(3,), (2, 3), (3, 3, 2, 4), (1,)]), min_size=1, max_size=3)


def run_both(optimizer, shapes, seed):
    """20 steps of the tinyseg optimizer and its torch twin (interop.to_torch_optimizer) on the same gradients;
    worst relative errors of the parameters and of their displacements from the start."""
    return optimizer_against_torch(optimizer, lambda tensors: to_torch_optimizer(optimizer, tensors), seed,
                                   shapes=shapes)


@SETTINGS
@given(param_shapes, st.floats(1e-4, 0.5), st.sampled_from([0.0, 0.5, 0.9, 0.99]), st.booleans(),
       st.integers(0, 2**31))
def test_sgd(shapes, lr, momentum, nesterov, seed):
    """Plain SGD, momentum (Keras: v = mu v - lr g) and Nesterov against torch.optim.SGD (b = mu b + g)."""
    nesterov = nesterov and momentum > 0                 # torch refuses Nesterov without momentum
    errors = run_both(optimizers.SGD(lr, momentum=momentum, nesterov=nesterov), shapes, seed)
    assert max(errors) <= PARITY_TOL, errors


@SETTINGS
@given(param_shapes, st.floats(1e-4, 0.1), st.sampled_from([0.0, 0.5, 0.9]), st.sampled_from([0.9, 0.999, 0.5]),
       st.sampled_from([1e-8, 1e-7, 1e-3]), st.integers(0, 2**31))
def test_adam_torch_epsilon(shapes, lr, beta_1, beta_2, epsilon, seed):
    opt = optimizers.Adam(lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, epsilon_style="torch")
    errors = run_both(opt, shapes, seed)
    assert max(errors) <= PARITY_TOL, errors


@SETTINGS
@given(param_shapes, st.floats(1e-4, 0.1), st.sampled_from([0.9, 0.999]), st.sampled_from([1e-7, 1e-3]),
       st.integers(0, 2**31))
def test_adam_keras_epsilon_is_torch_epsilon_over_sqrt_bias_correction(shapes, lr, beta_2, epsilon, seed):
    """A Keras-style Adam equals torch's when torch's eps at step t is eps / sqrt(1 - beta_2^t)."""
    opt = optimizers.Adam(lr, beta_2=beta_2, epsilon=epsilon)
    keras_twin = optimizers.Adam(lr, beta_2=beta_2, epsilon=epsilon, epsilon_style="torch")  # only to convert
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s) for s in shapes]
    tparams = [to_tensor(p, requires_grad=True) for p in params]
    topt = to_torch_optimizer(keras_twin, tparams)
    for step in range(1, 21):
        grads = [rng.standard_normal(s) * 1e-4 for s in shapes]      # small: epsilon matters
        opt.apply_gradients(list(zip(grads, params)))
        for t, g in zip(tparams, grads):
            t.grad = to_tensor(g)
        topt.param_groups[0]["eps"] = adam_epsilon_keras_to_torch(epsilon, beta_2, step)
        topt.step()
        for p, t in zip(params, tparams):
            assert relative_error(p, t) <= PARITY_TOL


def test_keras_adam_differs_from_torch_adam_with_the_same_epsilon():
    """Why the conversion is needed: with small gradients the two epsilon placements give different steps."""
    shapes = [(4, 3)]
    rng = np.random.default_rng(0)
    keras_style = optimizers.Adam(0.01, epsilon=1e-3)
    p = rng.standard_normal(shapes[0])
    t = to_tensor(p, requires_grad=True)
    topt = torch.optim.Adam([t], lr=0.01, eps=1e-3)
    for _ in range(5):
        g = rng.standard_normal(shapes[0]) * 1e-4
        keras_style.apply_gradients([(g, p)])
        t.grad = to_tensor(g)
        topt.step()
    assert relative_error(p, t) > 1e-6


def test_to_torch_optimizer_refuses_what_it_cannot_convert():
    with pytest.raises(ValueError, match="epsilon_style='torch'"):
        to_torch_optimizer(optimizers.Adam(), [torch.zeros(2, requires_grad=True)])
    used = optimizers.SGD(0.1)
    used.apply_gradients([(np.ones(2), np.zeros(2))])
    with pytest.raises(ValueError, match="already taken 1 steps"):
        to_torch_optimizer(used, [torch.zeros(2, requires_grad=True)])
