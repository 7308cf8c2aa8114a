"""Gradient clipping, Keras's optimizer arguments clipnorm, global_clipnorm and clipvalue
(tinyseg/optimizers/clipping.py):
the formulas, on every optimizer; after the NaN check; new arrays (layer.grads untouched); huge gradients
clipped, not zeroed; against torch.nn.utils.clip_grad_norm_ / clip_grad_value_ (float64, 1e-10, with torch's
+1e-6 in the denominator accounted for) and Keras 3; bad arguments, each named."""
import math

import numpy as np
import pytest

import tinyseg
from tests.helpers import PARITY_TOL
from tinyseg import optimizers
from tinyseg.backend import NonFiniteError
from tinyseg.layers import Conv2D, Dense, Flatten
from tinyseg.models import Sequential

ALL = {"sgd": optimizers.SGD, "momentum": lambda **k: optimizers.SGD(momentum=0.9, **k), "adam": optimizers.Adam,
       "adamw": optimizers.AdamW, "rmsprop": optimizers.RMSprop}


def grads_of_norms(rng, norms, shapes=((3, 4), (5,), (2, 2, 2))):
    """Random gradients of the given L2 norms."""
    out = []
    for n, s in zip(norms, shapes):
        g = rng.standard_normal(s)
        out.append(g * (n / np.linalg.norm(g)))
    return out


# --- the formulas ----------------------------------------------------------------------------------------------
def test_clipnorm_rescales_each_gradient_to_at_most_that_norm():
    rng = np.random.default_rng(0)
    g = grads_of_norms(rng, [10.0, 0.5, 3.0])
    clipped = optimizers.SGD(clipnorm=2.0).clip_gradients(g)
    np.testing.assert_allclose(clipped[0], g[0] * 2.0 / 10.0, rtol=1e-15)
    assert clipped[1] is g[1]                                       # under the limit: untouched
    np.testing.assert_allclose(clipped[2], g[2] * 2.0 / 3.0, rtol=1e-15)
    assert [np.linalg.norm(c) for c in clipped] == pytest.approx([2.0, 0.5, 2.0], rel=1e-14)


def test_global_clipnorm_rescales_all_gradients_by_their_joint_norm():
    rng = np.random.default_rng(1)
    g = grads_of_norms(rng, [3.0, 4.0, 12.0])                       # joint norm sqrt(9 + 16 + 144) = 13
    clipped = optimizers.Adam(global_clipnorm=6.5).clip_gradients(g)
    for c, raw in zip(clipped, g):
        np.testing.assert_allclose(c, raw * 0.5, rtol=1e-14)         # the directions are kept together
    assert optimizers.Adam(global_clipnorm=13.5).clip_gradients(g) == g


def test_clipvalue_clips_every_entry():
    g = [np.array([-3.0, -0.5, 0.0, 0.7, 9.0])]
    np.testing.assert_array_equal(optimizers.RMSprop(clipvalue=0.6).clip_gradients(g)[0],
                                  [-0.6, -0.5, 0.0, 0.6, 0.6])


@pytest.mark.parametrize("name", list(ALL))
@pytest.mark.parametrize("clip", [{"clipnorm": 0.3}, {"global_clipnorm": 0.5}, {"clipvalue": 0.05}])
def test_every_optimizer_steps_on_the_clipped_gradients(name, clip):
    """An optimizer with clipping takes the steps of the same optimizer without it given the clipped grads."""
    rng = np.random.default_rng(2)
    clipping, plain = ALL[name](learning_rate=0.01, **clip), ALL[name](learning_rate=0.01)
    a = [rng.standard_normal(s) for s in ((3, 4), (5,))]
    b = [p.copy() for p in a]
    for _ in range(5):
        g = [rng.standard_normal(p.shape) * 3 for p in a]
        kept = [x.copy() for x in g]
        clipped = clipping.clip_gradients(g)
        clipping.apply_gradients(list(zip(g, a)))
        plain.apply_gradients(list(zip(clipped, b)))
        for p, q in zip(a, b):
            np.testing.assert_array_equal(p, q)
        assert all(np.array_equal(x, y) for x, y in zip(g, kept))     # the given gradients are not changed


def test_the_model_keeps_the_raw_gradients_in_layer_grads():
    tinyseg.set_random_seed(0)
    model = Sequential([Conv2D(3, 3, input_shape=(6, 6, 2), activation="relu"), Flatten(),
                        Dense(2, activation="softmax")])
    model.compile(optimizer=optimizers.SGD(0.1, global_clipnorm=1e-3), loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((4, 6, 6, 2)).astype(np.float32)
    before = model.get_weights()
    model.train_on_batch(x, np.array([0, 1, 1, 0]))
    grads = [g for g, _ in model.trainable_pairs()]
    total = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))
    assert total > 1e-3                                              # raw, not clipped
    moved = math.sqrt(sum(float(np.sum((a.astype(np.float64) - b) ** 2))
                          for a, b in zip(before, model.get_weights())))
    assert moved == pytest.approx(0.1 * 1e-3, rel=1e-4)               # the step is lr * the clipped norm


# --- NaN first, then clipping; huge gradients ------------------------------------------------------------------
@pytest.mark.parametrize("clip", [{"clipnorm": 1.0}, {"global_clipnorm": 1.0}, {"clipvalue": 1.0}])
def test_a_nan_gradient_is_reported_as_nan_not_clipped(clip):
    opt = optimizers.Adam(**clip)
    params = [np.ones(3), np.ones(2)]
    grads = [np.ones(3), np.array([1.0, np.nan])]
    with pytest.raises(NonFiniteError, match="parameter 1 holds 1 NaN"):
        opt.apply_gradients(list(zip(grads, params)))
    assert opt.iterations == 0 and not opt._slots and all(np.array_equal(p, np.ones(p.shape)) for p in params)


@pytest.mark.parametrize("clip", [{"clipnorm": 1.0}, {"global_clipnorm": 1.0}])
def test_a_huge_float32_gradient_is_clipped_to_the_norm_not_zeroed(clip):
    """g.g overflows float32 (|g| ~ 1e30): the norm is found from g / max|g|, the step is finite and of norm lr."""
    opt = optimizers.SGD(0.1, **clip)
    theta = np.zeros(4, np.float32)
    g = np.array([3e30, -4e30, 0.0, 0.0], np.float32)
    opt.apply_gradients([(g, theta)])
    assert theta.dtype == np.float32
    np.testing.assert_allclose(theta, [-0.06, 0.08, 0.0, 0.0], rtol=1e-6)


def test_float64_gradient_whose_square_overflows_is_clipped_before_adam_squares_it():
    """Without clipping Adam refuses a float64 gradient of 1e200 (its square overflows); clipped it is fine."""
    g = np.array([1e200, -1e200])
    with pytest.raises(NonFiniteError, match="square overflows float64"):
        optimizers.Adam().apply_gradients([(g, np.zeros(2))])
    theta = np.zeros(2)
    optimizers.Adam(0.01, clipnorm=1.0).apply_gradients([(g, theta)])
    np.testing.assert_allclose(theta, [-0.01, 0.01], rtol=1e-5)


# --- bad arguments ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, error, match", [
    (lambda: optimizers.SGD(clipnorm=0.0), ValueError, "clipnorm must be a finite number > 0"),
    (lambda: optimizers.Adam(clipnorm=-1.0), ValueError, "clipnorm must be a finite number > 0"),
    (lambda: optimizers.RMSprop(global_clipnorm=0), ValueError, "global_clipnorm must be a finite number > 0"),
    (lambda: optimizers.AdamW(clipvalue=-0.5), ValueError, "clipvalue must be a finite number > 0"),
    (lambda: optimizers.SGD(clipnorm=float("inf")), ValueError, "clipnorm must be a finite number > 0"),
    (lambda: optimizers.SGD(clipnorm=float("nan")), ValueError, "clipnorm must be a finite number > 0"),
    (lambda: optimizers.SGD(clipnorm="1"), TypeError, "clipnorm must be a real number"),
    (lambda: optimizers.Adam(clipnorm=1.0, global_clipnorm=1.0), ValueError,
     "only one of clipnorm, clipvalue and global_clipnorm can be set .*clipnorm=1.0, global_clipnorm=1.0"),
    (lambda: optimizers.Adam(clipnorm=1.0, clipvalue=0.5), ValueError, "only one of clipnorm, clipvalue"),
])
def test_bad_clipping_arguments_are_refused_naming_them(make, error, match):
    with pytest.raises(error, match=match):
        make()


# --- against PyTorch (float64) -----------------------------------------------------------------------------------
def torch_clip_norm(tensors, c):
    """torch.nn.utils.clip_grad_norm_, then its 1e-6 undone: torch scales by c / (N + 1e-6) where ours is c / N."""
    import torch
    total = float(torch.nn.utils.clip_grad_norm_(tensors, c))
    if total > c:
        for t in tensors:
            t.grad *= (total + 1e-6) / total
    return total


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("seed", range(5))
def test_global_and_per_parameter_norm_clipping_match_torch(seed):
    import torch

    from tinyseg.interop import relative_error, to_tensor
    rng = np.random.default_rng(seed)
    g = grads_of_norms(rng, rng.uniform(0.1, 10.0, 3))
    c = float(rng.uniform(0.5, 5.0))
    for ours, per_parameter in [(optimizers.SGD(global_clipnorm=c), False), (optimizers.SGD(clipnorm=c), True)]:
        tensors = [to_tensor(np.zeros_like(x), requires_grad=True) for x in g]
        raw = []
        for t, x in zip(tensors, g):
            t.grad = to_tensor(x.copy())
        if per_parameter:
            for t in tensors:
                raw.append(float(torch.nn.utils.clip_grad_norm_([t], c)))
        else:
            raw.append(float(torch.nn.utils.clip_grad_norm_(tensors, c)))
        clipped = ours.clip_gradients(g)
        for i, (mine, t) in enumerate(zip(clipped, tensors)):
            n = raw[i] if per_parameter else raw[0]
            # torch's clipped gradient is ours times N / (N + 1e-6) where it clips, exactly ours where it does not
            factor = n / (n + 1e-6) if n > c else 1.0
            assert relative_error(mine * factor, t.grad) <= 1e-14
            if n > c:
                assert relative_error(mine, t.grad) == pytest.approx(1e-6 / (n + 1e-6), rel=1e-3)


@pytest.mark.usefixtures("one_torch_thread")
def test_clipvalue_matches_torch_clip_grad_value():
    import torch

    from tinyseg.interop import to_tensor
    g = np.random.default_rng(3).standard_normal((4, 5)) * 2
    t = to_tensor(np.zeros((4, 5)), requires_grad=True)
    t.grad = to_tensor(g.copy())
    torch.nn.utils.clip_grad_value_([t], 0.7)
    np.testing.assert_array_equal(optimizers.SGD(clipvalue=0.7).clip_gradients([g])[0], t.grad.numpy())


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("clip", ["global_clipnorm", "clipnorm", "clipvalue"])
def test_ten_steps_of_clipped_momentum_and_adam_match_torch(clip):
    """SGD with momentum (constant lr: Keras's and torch's formulas agree) and Adam (torch's epsilon), on
    gradients that are clipped at most steps: every parameter after every step to 1e-10."""
    import torch

    from tinyseg.interop import relative_error, to_tensor
    c = 0.8
    for make_ours, make_torch in [
            (lambda: optimizers.SGD(0.05, momentum=0.9, **{clip: c}),
             lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
            (lambda: optimizers.Adam(0.01, epsilon=1e-8, epsilon_style="torch", **{clip: c}),
             lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-8))]:
        rng = np.random.default_rng(6)
        params = [rng.standard_normal(s) for s in ((3, 4), (4,))]
        tensors = [to_tensor(p.copy(), requires_grad=True) for p in params]
        ours, theirs = make_ours(), make_torch(tensors)
        worst = 0.0
        for _ in range(10):
            grads = [rng.standard_normal(p.shape) * rng.choice([0.1, 1.0, 3.0]) for p in params]
            ours.apply_gradients(list(zip([g.copy() for g in grads], params)))
            for t, g in zip(tensors, grads):
                t.grad = to_tensor(g)
            if clip == "global_clipnorm":
                torch_clip_norm(tensors, c)
            elif clip == "clipnorm":
                for t in tensors:
                    torch_clip_norm([t], c)
            else:
                torch.nn.utils.clip_grad_value_(tensors, c)
            theirs.step()
            worst = max(worst, *(relative_error(p, t) for p, t in zip(params, tensors)))
        assert worst <= PARITY_TOL, (clip, type(ours).__name__, worst)


# --- against Keras 3 -------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("clip", [{"clipnorm": 0.5}, {"global_clipnorm": 0.5}, {"clipvalue": 0.1}])
def test_clipping_matches_keras(clip):
    """keras.optimizers.SGD with the same clipping argument on float32 variables, three steps: 1e-6."""
    from tests.helpers import import_keras
    keras = import_keras()
    rng = np.random.default_rng(7)
    start = [rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (4,))]
    mine = [p.copy() for p in start]
    variables = [keras.Variable(p) for p in start]
    ours, theirs = optimizers.SGD(0.1, **clip), keras.optimizers.SGD(0.1, **clip)
    for _ in range(3):
        grads = [(rng.standard_normal(p.shape) * 2).astype(np.float32) for p in start]
        ours.apply_gradients(list(zip(grads, mine)))
        theirs.apply_gradients([(keras.ops.convert_to_tensor(g), v) for g, v in zip(grads, variables)])
    for p, v in zip(mine, variables):
        expected = keras.ops.convert_to_numpy(v)
        assert float(np.max(np.abs(p - expected)) / np.max(np.abs(expected))) <= 1e-6
