"""Optimizers: three steps worked by hand, twenty steps against PyTorch and Keras's formula, dtype, errors.

The hand-worked steps use learning rates, momenta and gradients that are powers of two, so every number below
is exact in binary floating point and the tests can demand equality.
"""
import math

import numpy as np
import pytest

from tests.helpers import optimizer_steps
from tinyseg import optimizers
from tinyseg.optimizers import SGD, Adam

GRADS = [[1.0, -2.0], [0.5, 0.5], [-1.0, 4.0]]


# ------------------------------------------------------------------------------------------------------------
# Three steps by hand.
# ------------------------------------------------------------------------------------------------------------
def test_sgd_three_steps_by_hand():
    # theta <- theta - 0.5 g
    #   [1, 1] - 0.5 [1, -2]    = [0.5, 2]
    #   [0.5, 2] - 0.5 [.5, .5] = [0.25, 1.75]
    #   [.25, 1.75] - .5 [-1, 4] = [0.75, -0.25]
    history = optimizer_steps(SGD(learning_rate=0.5), np.array([1.0, 1.0]), GRADS)
    np.testing.assert_array_equal(history, [[0.5, 2.0], [0.25, 1.75], [0.75, -0.25]])


def test_momentum_three_steps_by_hand():
    # v <- 0.5 v - 0.5 g;  theta <- theta + v
    #   v1 = -0.5 [1, -2]                      = [-0.5, 1]         theta1 = [0.5, 2]
    #   v2 = 0.5 [-0.5, 1] - 0.5 [0.5, 0.5]    = [-0.5, 0.25]      theta2 = [0, 2.25]
    #   v3 = 0.5 [-0.5, 0.25] - 0.5 [-1, 4]    = [0.25, -1.875]    theta3 = [0.25, 0.375]
    history = optimizer_steps(SGD(learning_rate=0.5, momentum=0.5), np.array([1.0, 1.0]), GRADS)
    np.testing.assert_array_equal(history, [[0.5, 2.0], [0.0, 2.25], [0.25, 0.375]])


def test_nesterov_three_steps_by_hand():
    # v <- 0.5 v - 0.5 g;  theta <- theta + 0.5 v - 0.5 g       (same velocities as above)
    #   theta1 = [1, 1] + 0.5 [-0.5, 1] - 0.5 [1, -2]            = [0.25, 2.5]
    #   theta2 = [.25, 2.5] + 0.5 [-0.5, .25] - 0.5 [.5, .5]     = [-0.25, 2.375]
    #   theta3 = [-.25, 2.375] + 0.5 [.25, -1.875] - 0.5 [-1, 4] = [0.375, -0.5625]
    history = optimizer_steps(SGD(learning_rate=0.5, momentum=0.5, nesterov=True), np.array([1.0, 1.0]), GRADS)
    np.testing.assert_array_equal(history, [[0.25, 2.5], [-0.25, 2.375], [0.375, -0.5625]])


def _adam_by_hand(theta, grads, lr, b1, b2, eps, style):
    """Adam one scalar at a time with the math module: the docstring's formulas, nothing vectorised."""
    theta = list(theta)
    m = [0.0] * len(theta)
    v = [0.0] * len(theta)
    history = []
    for t, g in enumerate(grads, start=1):
        for i, gi in enumerate(g):
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            if style == "keras":
                lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                theta[i] -= lr_t * m[i] / (math.sqrt(v[i]) + eps)
            else:
                theta[i] -= lr * (m[i] / (1 - b1 ** t)) / (math.sqrt(v[i] / (1 - b2 ** t)) + eps)
        history.append(list(theta))
    return history


@pytest.mark.parametrize("style", ["keras", "torch"])
def test_adam_three_steps_by_hand(style):
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-3       # a large epsilon, so its placement shows
    history = optimizer_steps(Adam(lr, b1, b2, eps, epsilon_style=style), np.array([1.0, 1.0]), GRADS)
    want = _adam_by_hand([1.0, 1.0], GRADS, lr, b1, b2, eps, style)
    np.testing.assert_allclose(history, want, rtol=1e-14, atol=0)
    # the first step is lr * g / (|g| + eps'), close to lr * sign(g): Adam's step size does not depend on |g|
    eps1 = eps if style == "torch" else eps / math.sqrt(1 - b2)
    np.testing.assert_allclose(history[0], [1 - lr * 1 / (1 + eps1), 1 + lr * 2 / (2 + eps1)], rtol=1e-14)


def test_adam_epsilon_styles_differ_and_agree_as_documented():
    # Keras's eps equals PyTorch's eps * sqrt(1 - b2^t): with that eps, the first Keras step equals the first
    # PyTorch step (and differs from a Keras step with PyTorch's eps)
    g = [[1e-3, -2e-3]]
    torch_style = optimizer_steps(Adam(0.1, epsilon=1e-3, epsilon_style="torch"), np.zeros(2), g)[0]
    keras_same = optimizer_steps(Adam(0.1, epsilon=1e-3 * math.sqrt(1 - 0.999), epsilon_style="keras"),
                                 np.zeros(2), g)[0]
    keras_plain = optimizer_steps(Adam(0.1, epsilon=1e-3, epsilon_style="keras"), np.zeros(2), g)[0]
    np.testing.assert_allclose(keras_same, torch_style, rtol=1e-12)
    assert np.max(np.abs(keras_plain - torch_style)) > 1e-2


# ------------------------------------------------------------------------------------------------------------
# Twenty steps against PyTorch and Keras.
# ------------------------------------------------------------------------------------------------------------
def _gradients(shape=(3, 4), steps=20, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) * rng.uniform(0.1, 3) for _ in range(steps)]


def _rel(ours, theirs):
    return float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))


def _torch_history(torch, make_opt, theta0, grads):
    p = torch.nn.Parameter(torch.tensor(theta0))
    opt = make_opt([p])
    history = []
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
        history.append(p.detach().numpy().copy())
    return history


@pytest.mark.parametrize("lr, momentum, nesterov", [(0.1, 0.0, False), (0.05, 0.9, False), (0.05, 0.9, True),
                                                    (0.3, 0.5, True)])
def test_sgd_matches_torch_for_20_steps(lr, momentum, nesterov):
    torch = pytest.importorskip("torch")
    theta0 = np.random.default_rng(1).standard_normal((3, 4))
    grads = _gradients()
    ours = optimizer_steps(SGD(lr, momentum, nesterov), theta0.copy(), grads)
    theirs = _torch_history(torch, lambda ps: torch.optim.SGD(ps, lr=lr, momentum=momentum, nesterov=nesterov),
                            theta0, grads)
    errors = [_rel(a, b) for a, b in zip(ours, theirs)]
    print(f"SGD(lr={lr}, momentum={momentum}, nesterov={nesterov}): max rel error {max(errors):.1e}")
    assert max(errors) <= 1e-12, errors


@pytest.mark.parametrize("lr, b1, b2, eps", [(1e-3, 0.9, 0.999, 1e-8), (0.05, 0.8, 0.99, 1e-3),
                                             (0.1, 0.0, 0.5, 1e-6)])
def test_adam_torch_style_matches_torch_for_20_steps(lr, b1, b2, eps):
    torch = pytest.importorskip("torch")
    theta0 = np.random.default_rng(2).standard_normal((3, 4))
    grads = _gradients(seed=3)
    ours = optimizer_steps(Adam(lr, b1, b2, eps, epsilon_style="torch"), theta0.copy(), grads)
    theirs = _torch_history(torch, lambda ps: torch.optim.Adam(ps, lr=lr, betas=(b1, b2), eps=eps, foreach=False),
                            theta0, grads)
    errors = [_rel(a, b) for a, b in zip(ours, theirs)]
    print(f"Adam(lr={lr}, betas=({b1}, {b2}), eps={eps}): max rel error {max(errors):.1e}")
    assert max(errors) <= 1e-12, errors


def _keras_adam(theta, grads, lr, b1, b2, eps):
    """Keras 3's Adam.update_step, transcribed (variables as NumPy arrays):

        alpha = lr * sqrt(1 - b2^t) / (1 - b1^t)
        m.assign_add((g - m) * (1 - b1));  v.assign_add((g^2 - v) * (1 - b2))
        variable.assign_sub((m * alpha) / (sqrt(v) + eps))
    """
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    history = []
    for t, g in enumerate(grads, start=1):
        alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m = m + (g - m) * (1 - b1)
        v = v + (np.square(g) - v) * (1 - b2)
        theta = theta - (m * alpha) / (np.sqrt(v) + eps)
        history.append(theta)
    return history


@pytest.mark.parametrize("lr, b1, b2, eps", [(1e-3, 0.9, 0.999, 1e-7), (0.05, 0.8, 0.99, 1e-2)])
def test_adam_keras_style_matches_keras_formula_for_20_steps(lr, b1, b2, eps):
    theta0 = np.random.default_rng(4).standard_normal((3, 4))
    grads = _gradients(seed=5)
    ours = optimizer_steps(Adam(lr, b1, b2, eps), theta0.copy(), grads)          # epsilon_style='keras' is the default
    want = _keras_adam(theta0, grads, lr, b1, b2, eps)
    errors = [_rel(a, b) for a, b in zip(ours, want)]
    assert max(errors) <= 1e-12, errors


def test_two_parameters_keep_separate_state():
    opt = Adam(0.1)
    a, b = np.zeros(2), np.zeros(3)
    for g in _gradients((5,), 4, seed=6):
        opt.apply_gradients([(g[:2], a), (g[2:], b)])
    alone_a, alone_b = np.zeros(2), np.zeros(3)
    optimizer_steps(Adam(0.1), alone_a, [g[:2] for g in _gradients((5,), 4, seed=6)])
    optimizer_steps(Adam(0.1), alone_b, [g[2:] for g in _gradients((5,), 4, seed=6)])
    np.testing.assert_array_equal(a, alone_a)
    np.testing.assert_array_equal(b, alone_b)
    assert opt.iterations == 4


# ------------------------------------------------------------------------------------------------------------
# float32 stays float32.
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: SGD(0.1, 0.9), lambda: SGD(0.1, 0.9, True),
                                  lambda: Adam(0.01), lambda: Adam(0.01, epsilon_style="torch")])
def test_float32_parameters_stay_float32_and_are_updated_in_place(make):
    theta64 = np.random.default_rng(0).standard_normal((4, 5))
    theta32 = theta64.astype(np.float32)
    buffer = theta32                     # a model holds this very array: the step must land in it
    opt32, opt64 = make(), make()
    for g in _gradients((4, 5), 5, seed=7):
        opt32.apply_gradients([(g.astype(np.float32), theta32)])
        opt64.apply_gradients([(g, theta64)])
    assert theta32 is buffer and theta32.dtype == np.float32
    assert all(s.dtype == np.float32 for s in opt32._slots.values())    # velocities and moments too
    np.testing.assert_allclose(theta32, theta64, rtol=1e-5, atol=1e-5)  # and it computed the same thing


# ------------------------------------------------------------------------------------------------------------
# Errors and names.
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, match", [
    (lambda: SGD(0.0), "learning_rate must be > 0, got 0.0"),
    (lambda: SGD(-0.1), "learning_rate must be > 0"),
    (lambda: Adam(float("nan")), "learning_rate must be > 0"),
    (lambda: SGD(0.1, momentum=1.0), r"momentum must be in \[0, 1\), got 1.0"),
    (lambda: SGD(0.1, momentum=-0.1), r"momentum must be in \[0, 1\)"),
    (lambda: Adam(beta_1=1.0), r"beta_1 must be in \[0, 1\), got 1.0"),
    (lambda: Adam(beta_2=-0.5), r"beta_2 must be in \[0, 1\)"),
    (lambda: Adam(epsilon_style="tf"), "epsilon_style must be 'keras' or 'torch'"),
    (lambda: optimizers.get("adagrad"), r"optimizer must be one of \['adam', 'adamw', 'rmsprop', 'sgd'\]"),
    (lambda: optimizers.get(None), "optimizer must be one of"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("opt", [SGD(0.1), SGD(0.1, 0.9), Adam()])
def test_gradient_shape_mismatch(opt):
    theta = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"gradient 0 has shape \(2, 3\), parameter \(3, 2\)"):
        opt.apply_gradients([(np.zeros((2, 3)), theta)])
    assert not theta.any()


def test_names_give_keras_defaults():
    sgd, adam = optimizers.get("sgd"), optimizers.get("Adam")
    assert type(sgd) is SGD and sgd.learning_rate == 0.01 and sgd.momentum == 0.0 and not sgd.nesterov
    assert type(adam) is Adam and (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == \
        (0.001, 0.9, 0.999, 1e-7) and adam.epsilon_style == "keras"
    assert optimizers.get(adam) is adam


@pytest.mark.parametrize("state, match", [
    ({"iterations": -1, "slots": []}, "adam: the state's iterations must be a non-negative integer, got -1"),
    ({"iterations": True, "slots": []}, "the state's iterations must be a non-negative integer, got True"),
    ({"iterations": 2.0, "slots": []}, "the state's iterations must be a non-negative integer, got 2.0"),
    ({"slots": []}, "the state's iterations must be a non-negative integer, got None"),
    ("state", "the state's iterations must be a non-negative integer"),
    ({"iterations": 1, "slots": [(1, "m", np.zeros(2))]}, "slot position 1 is not one of the 1 parameters"),
    ({"iterations": 1, "slots": [(0, "velocity", np.zeros(2))]}, r"unknown slot 'velocity' \(this optimizer keeps"),
    ({"iterations": 1, "slots": [(0, "m", np.zeros(3))]}, r"slot 'm' of parameter 0 has shape \(3,\)"),
    ({"iterations": 1, "slots": [(0, "m", np.array([0.0, np.nan]))]}, "slot 'm' of parameter 0 holds NaN"),
])
def test_set_state_refuses_a_bad_state_and_keeps_its_own(state, match):
    theta = np.ones(2)
    opt = Adam(0.1)
    opt.apply_gradients([(np.ones(2), theta)])
    before = opt.get_state()
    with pytest.raises(ValueError, match=match):
        opt.set_state(state, [theta])
    after = opt.get_state()
    assert after["iterations"] == before["iterations"] == 1
    for (i, name, value), (j, name_before, value_before) in zip(after["slots"], before["slots"]):
        assert (i, name) == (j, name_before)
        np.testing.assert_array_equal(value, value_before)


def test_set_state_takes_a_state_get_state_gave():
    theta = np.ones(2)
    opt = Adam(0.1)
    opt.apply_gradients([(np.array([1.0, -2.0]), theta)])
    fresh = Adam(0.1)
    fresh.set_state(opt.get_state(), [theta])
    assert fresh.iterations == 1 and type(fresh.iterations) is int
    for (_, _, ours), (_, _, theirs) in zip(fresh.get_state()["slots"], opt.get_state()["slots"]):
        np.testing.assert_array_equal(ours, theirs)
