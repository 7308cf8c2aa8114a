"""Decoupled weight decay (tinyseg/optimizers/base.py): AdamW and every optimizer's weight_decay, Keras's formula
theta -= lr * wd * theta before the update; against torch.optim.AdamW (float64, 1e-10: the same algorithm with
epsilon_style='torch'; a Keras-style AdamW matches it with the per-step eps conversion) and against Keras 3's
AdamW and SGD(weight_decay); bad arguments, each named; what to_torch_optimizer converts and refuses."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import optimizer_against_torch
from tinyseg import optimizers
from tinyseg.schedules import ExponentialDecay

TOL = 1e-10


def test_adamw_first_steps_by_hand():
    """theta_1 = theta_0 (1 - lr wd) - lr sqrt(1 - b2) / (1 - b1) * m_1 / (sqrt(v_1) + eps), m_1 = (1 - b1) g,
    v_1 = (1 - b2) g^2; then step 2 from there."""
    lr, wd, b1, b2, eps = 0.01, 0.1, 0.9, 0.999, 1e-7
    theta = np.array([1.0, -2.0, 0.5])
    g1, g2 = np.array([0.3, -0.1, 2.0]), np.array([-0.2, 0.4, 1.0])
    opt = optimizers.AdamW(lr, weight_decay=wd)
    start = theta.copy()
    opt.apply_gradients([(g1, theta)])
    m, v = (1 - b1) * g1, (1 - b2) * g1 ** 2
    expected = start * (1 - lr * wd) - lr * np.sqrt(1 - b2) / (1 - b1) * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(theta, expected, rtol=1e-14)
    opt.apply_gradients([(g2, theta)])
    m, v = b1 * m + (1 - b1) * g2, b2 * v + (1 - b2) * g2 ** 2
    expected = expected * (1 - lr * wd) - lr * np.sqrt(1 - b2 ** 2) / (1 - b1 ** 2) * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(theta, expected, rtol=1e-14)


@pytest.mark.parametrize("make", [optimizers.SGD, lambda **k: optimizers.SGD(momentum=0.9, nesterov=True, **k),
                                  optimizers.Adam, optimizers.RMSprop])
def test_weight_decay_on_any_optimizer_decays_then_updates(make):
    """theta <- theta (1 - lr wd), then the same optimizer's own update (which does not read theta)."""
    rng = np.random.default_rng(0)
    decayed, plain = make(learning_rate=0.02, weight_decay=0.5), make(learning_rate=0.02)
    a = rng.standard_normal((4, 3))
    b = a.copy()
    for _ in range(6):
        g = rng.standard_normal(a.shape)
        decayed.apply_gradients([(g, a)])
        b *= 1 - 0.02 * 0.5
        plain.apply_gradients([(g, b)])
        np.testing.assert_array_equal(a, b)


def test_adamw_is_adam_with_a_default_decay_and_the_decay_follows_the_schedule():
    adamw = optimizers.AdamW()
    assert (adamw.learning_rate, adamw.weight_decay, adamw.beta_1, adamw.beta_2, adamw.epsilon) == \
        (0.001, 0.004, 0.9, 0.999, 1e-7)
    assert isinstance(adamw, optimizers.Adam) and optimizers.get("adamw").weight_decay == 0.004
    schedule = ExponentialDecay(0.1, 1, 0.5)
    opt = optimizers.SGD(schedule, weight_decay=1.0)
    theta = np.ones(2)
    for _ in range(3):
        opt.apply_gradients([(np.zeros(2), theta)])               # no gradient: only the decay moves theta
    np.testing.assert_allclose(theta, (1 - 0.1) * (1 - 0.05) * (1 - 0.025), rtol=1e-15)


def test_a_float32_parameter_stays_float32():
    theta = np.ones(3, np.float32)
    optimizers.AdamW(0.01, weight_decay=0.1).apply_gradients([(np.ones(3, np.float32), theta)])
    assert theta.dtype == np.float32


@pytest.mark.parametrize("make, error, match", [
    (lambda: optimizers.AdamW(weight_decay=-0.01), ValueError, "weight_decay must be a finite number >= 0"),
    (lambda: optimizers.SGD(weight_decay=-1), ValueError, "weight_decay must be a finite number >= 0"),
    (lambda: optimizers.Adam(weight_decay=float("inf")), ValueError, "weight_decay must be a finite number >= 0"),
    (lambda: optimizers.RMSprop(weight_decay=float("nan")), ValueError, "weight_decay must be a finite number"),
    (lambda: optimizers.AdamW(weight_decay="0.01"), TypeError, "weight_decay must be a real number"),
    (lambda: optimizers.AdamW(weight_decay=None), ValueError, "AdamW: weight_decay must be a number >= 0"),
    (lambda: optimizers.AdamW(learning_rate=-0.1), ValueError, "learning_rate must be > 0"),
])
def test_bad_weight_decay_is_refused_naming_it(make, error, match):
    with pytest.raises(error, match=match):
        make()


# --- against PyTorch (float64) -----------------------------------------------------------------------------
def run_against_torch(ours, make_theirs, seed, eps_of_step=None):
    """The worst relative error of the parameters over 20 steps of ours and of torch's make_theirs(tensors)."""
    return optimizer_against_torch(ours, make_theirs, seed, eps_of_step=eps_of_step)[0]


@pytest.mark.usefixtures("one_torch_thread")
@settings(deadline=None, max_examples=15)
@given(st.floats(1e-4, 0.1), st.sampled_from([0.0, 0.004, 0.01, 0.3]), st.sampled_from([0.5, 0.9]),
       st.sampled_from([0.9, 0.999]), st.sampled_from([1e-8, 1e-3]), st.integers(0, 2**31))
def test_adamw_with_torch_epsilon_matches_torch_adamw(lr, wd, beta_1, beta_2, eps, seed):
    import torch
    ours = optimizers.AdamW(lr, weight_decay=wd, beta_1=beta_1, beta_2=beta_2, epsilon=eps, epsilon_style="torch")
    worst = run_against_torch(ours, lambda p: torch.optim.AdamW(p, lr=lr, betas=(beta_1, beta_2), eps=eps,
                                                                weight_decay=wd), seed)
    assert worst <= TOL, worst


@pytest.mark.usefixtures("one_torch_thread")
def test_keras_style_adamw_matches_torch_with_the_eps_conversion_and_differs_without():
    """Where Keras's AdamW and torch's differ: only epsilon's placement (as for Adam). torch's eps at step t set
    to eps / sqrt(1 - beta_2^t) makes them equal; the same eps does not (small gradients show it)."""
    import torch

    from tinyseg.interop import adam_epsilon_keras_to_torch
    worst = run_against_torch(optimizers.AdamW(0.01, weight_decay=0.1, epsilon=1e-3),
                              lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1, eps=1e-3), 1,
                              eps_of_step=lambda t: adam_epsilon_keras_to_torch(1e-3, 0.999, t))
    assert worst <= TOL, worst
    unconverted = run_against_torch(optimizers.AdamW(0.01, weight_decay=0.1, epsilon=1e-3),
                                    lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1, eps=1e-3), 1)
    assert unconverted > 1e-6


@pytest.mark.usefixtures("one_torch_thread")
def test_to_torch_optimizer_converts_adamw_and_refuses_what_torch_optimizers_do_not_hold():
    import torch

    from tinyseg.interop import to_torch_optimizer
    p = [torch.zeros(2, dtype=torch.float64, requires_grad=True)]
    converted = to_torch_optimizer(optimizers.AdamW(0.02, weight_decay=0.05, epsilon=1e-8, epsilon_style="torch"), p)
    assert isinstance(converted, torch.optim.AdamW)
    group = converted.param_groups[0]
    assert (group["lr"], group["weight_decay"], group["eps"]) == (0.02, 0.05, 1e-8)
    for opt, match in [(optimizers.AdamW(), "epsilon_style='torch'"),
                       (optimizers.SGD(0.1, weight_decay=0.01), "weight_decay is decoupled"),
                       (optimizers.Adam(epsilon_style="torch", clipnorm=1.0), "clip_grad_norm_"),
                       (optimizers.SGD(ExponentialDecay(0.1, 10, 0.5)), "lr_scheduler")]:
        with pytest.raises(ValueError, match=match):
            to_torch_optimizer(opt, p)


# --- against Keras 3 -----------------------------------------------------------------------------------------
@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("name", ["AdamW", "SGD", "RMSprop"])
def test_weight_decay_matches_keras(name):
    """keras.optimizers.AdamW (its defaults) and SGD / RMSprop with weight_decay on float32 variables, five
    steps: 1e-6 relative."""
    from tests.helpers import import_keras
    keras = import_keras()
    kwargs = {"AdamW": dict(learning_rate=0.01), "SGD": dict(learning_rate=0.05, momentum=0.5, weight_decay=0.2),
              "RMSprop": dict(learning_rate=0.01, weight_decay=0.1)}[name]
    rng = np.random.default_rng(9)
    start = rng.standard_normal((3, 4)).astype(np.float32)
    mine, var = start.copy(), keras.Variable(start)
    ours, theirs = getattr(optimizers, name)(**kwargs), getattr(keras.optimizers, name)(**kwargs)
    for _ in range(5):
        g = rng.standard_normal((3, 4)).astype(np.float32)
        ours.apply_gradients([(g, mine)])
        theirs.apply_gradients([(keras.ops.convert_to_tensor(g), var)])
    expected = keras.ops.convert_to_numpy(var)
    assert float(np.max(np.abs(mine - expected)) / np.max(np.abs(expected))) <= 1e-6
