"""RMSprop: steps by hand, 20 steps against torch.optim.RMSprop (float64, 1e-10), Keras 3's own RMSprop
(float32, 1e-6), hyper-parameter checks, names, configs and dtypes."""
import math
import os

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.helpers import optimizer_steps
from tinyseg import optimizers
from tinyseg.optimizers import RMSprop

SETTINGS = settings(deadline=None, max_examples=20)
TOL = 1e-10
VARIANTS = [(centered, momentum) for centered in (False, True) for momentum in (0.0, 0.9)]


def rmsprop_by_hand(theta, grads, lr, rho, momentum, eps, centered, style):
    """The module docstring's formula one scalar at a time with the math module, nothing vectorised."""
    theta = list(theta)
    v, a, s = [0.0] * len(theta), [0.0] * len(theta), [0.0] * len(theta)
    history = []
    for g in grads:
        for i, gi in enumerate(g):
            v[i] = rho * v[i] + (1 - rho) * gi * gi
            a[i] = rho * a[i] + (1 - rho) * gi
            d = v[i] - a[i] * a[i] if centered else v[i]
            step = lr * gi / (math.sqrt(d + eps) if style == "keras" else math.sqrt(d) + eps)
            s[i] = momentum * s[i] + step
            theta[i] -= s[i] if momentum > 0 else step
        history.append(list(theta))
    return history


GRADS = [[1.0, -2.0], [0.5, 0.5], [-1.0, 4.0], [3.0, -0.25]]


@pytest.mark.parametrize("centered, momentum", VARIANTS)
@pytest.mark.parametrize("style", ["keras", "torch"])
def test_steps_by_hand(centered, momentum, style):
    lr, rho, eps = 0.1, 0.8, 1e-2                 # a large epsilon, so its placement shows
    opt = RMSprop(lr, rho, momentum, eps, centered, epsilon_style=style)
    history = optimizer_steps(opt, np.array([1.0, 1.0]), GRADS)
    want = rmsprop_by_hand([1.0, 1.0], GRADS, lr, rho, momentum, eps, centered, style)
    np.testing.assert_allclose(history, want, rtol=1e-14, atol=0)


def test_first_step_is_about_lr_over_sqrt_one_minus_rho():
    """Step 1: v = (1 - rho) g^2, so the step is lr g / sqrt((1 - rho) g^2 + eps) ~ lr sign(g) / sqrt(1 - rho):
    RMSprop's first step does not depend on the gradient's size."""
    lr, rho = 0.01, 0.9
    for scale in (1e-2, 1.0, 1e2):
        theta = optimizer_steps(RMSprop(lr, rho, epsilon=1e-12), np.zeros(2), [[scale, -scale]])[0]
        np.testing.assert_allclose(theta, [-lr / math.sqrt(1 - rho), lr / math.sqrt(1 - rho)], rtol=1e-6)


def test_epsilon_placements_differ_as_documented():
    """With small gradients Keras's eps under the root weighs far more than the same eps outside it."""
    g = [[1e-4, -1e-4]]
    keras_style = optimizer_steps(RMSprop(0.01, epsilon=1e-7), np.zeros(2), g)[0]
    torch_style = optimizer_steps(RMSprop(0.01, epsilon=1e-7, epsilon_style="torch"), np.zeros(2), g)[0]
    assert abs(keras_style[0]) < 0.5 * abs(torch_style[0])


# --- against PyTorch ------------------------------------------------------------------------------------
def torch_run(opt, torch_opt_of, shapes, seed, steps=20):
    """20 steps of a tinyseg optimizer and a torch one (torch_opt_of(params)) on the same float64 gradients;
    the worst relative error (interop.relative_error) of the parameters over all steps."""
    from tinyseg.interop import relative_error, to_tensor
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s) for s in shapes]
    tparams = [to_tensor(p, requires_grad=True) for p in params]
    topt = torch_opt_of(tparams)
    worst = 0.0
    for _ in range(steps):
        grads = [rng.standard_normal(s) * rng.choice([1e-4, 1.0, 10.0]) for s in shapes]
        opt.apply_gradients(list(zip([g.copy() for g in grads], params)))
        for t, g in zip(tparams, grads):
            t.grad = to_tensor(g)
        topt.step()
        worst = max([worst] + [relative_error(p, t) for p, t in zip(params, tparams)])
    return worst


param_shapes = st.lists(st.sampled_from([(3,), (2, 3), (3, 3, 2, 4), (1,)]), min_size=1, max_size=3)


@pytest.mark.usefixtures("one_torch_thread")
@SETTINGS
@given(shapes=param_shapes, lr=st.floats(1e-4, 0.1), rho=st.sampled_from([0.0, 0.5, 0.9, 0.99]),
       variant=st.sampled_from(VARIANTS), epsilon=st.sampled_from([1e-8, 1e-7, 1e-3]), seed=st.integers(0, 2**31))
def test_torch_epsilon_style_matches_torch(shapes, lr, rho, variant, epsilon, seed):
    """epsilon_style='torch' through to_torch_optimizer: the same formula, so 1e-10 for every epsilon.

    Not centered with rho = 0: then a = g and d = g^2 - g^2 = 0 up to rounding, which each side rounds its own
    way (torch's lerp gives a = g only to within an ulp), and lr g / (sqrt(d) + eps) amplifies that."""
    from tinyseg.interop import to_torch_optimizer
    centered, momentum = variant
    assume(not (centered and rho == 0))
    opt = RMSprop(lr, rho, momentum, epsilon, centered, epsilon_style="torch")
    worst = torch_run(opt, lambda ps: to_torch_optimizer(opt, ps), shapes, seed)
    assert worst <= TOL, worst


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("centered, momentum", VARIANTS)
def test_keras_style_matches_torch_where_the_formulas_agree(centered, momentum):
    """Keras's sqrt(d + eps) and torch's sqrt(d) + eps agree when eps is negligible against d: eps = 1e-40
    changes d + eps in float64 only where d < 1e-24, far below any d of these gradients (some of ~1e-4), so
    the steps must agree to 1e-10, centered or not, with momentum or not (a tiny eps, not a converted one:
    no single torch eps converts a Keras one, see the optimizers module)."""
    torch = pytest.importorskip("torch")
    opt = RMSprop(0.01, 0.9, momentum, 1e-40, centered)
    worst = torch_run(opt, lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-40, momentum=momentum,
                                                          centered=centered),
                      [(3, 4), (5,)], seed=7)
    assert worst <= TOL, worst


@pytest.mark.usefixtures("one_torch_thread")
def test_to_torch_optimizer_refuses_a_keras_style_rmsprop():
    torch = pytest.importorskip("torch")
    from tinyseg.interop import to_torch_optimizer
    with pytest.raises(ValueError, match="epsilon_style='torch'"):
        to_torch_optimizer(RMSprop(), [torch.zeros(2, requires_grad=True)])
    converted = to_torch_optimizer(RMSprop(0.02, 0.8, 0.5, 1e-6, True, "torch"), [torch.zeros(2, requires_grad=True)])
    group = converted.param_groups[0]
    assert isinstance(converted, torch.optim.RMSprop)
    assert (group["lr"], group["alpha"], group["momentum"], group["eps"], group["centered"]) == \
        (0.02, 0.8, 0.5, 1e-6, True)


# --- against Keras 3 --------------------------------------------------------------------------------------
def keras_module():
    os.environ["KERAS_BACKEND"] = "torch"          # before keras is first imported; the torch backend
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras was already imported with the {keras.backend.backend()} backend")
    return keras


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("centered, momentum", VARIANTS)
def test_matches_keras_rmsprop(centered, momentum):
    """keras.optimizers.RMSprop on a float32 variable and tinyseg's on a float32 array, the same gradients,
    five steps (Keras's default epsilon, which sits under the root): 1e-6 relative."""
    keras = keras_module()
    rng = np.random.default_rng(8)
    theta0 = rng.standard_normal((3, 4)).astype(np.float32)
    grads = [(rng.standard_normal((3, 4)) * rng.choice([1e-3, 1.0])).astype(np.float32) for _ in range(5)]
    ours = optimizer_steps(RMSprop(0.01, 0.9, momentum, centered=centered), theta0.copy(), grads)
    var = keras.Variable(theta0)
    theirs_opt = keras.optimizers.RMSprop(learning_rate=0.01, rho=0.9, momentum=momentum, centered=centered)
    for step, g in enumerate(grads):
        theirs_opt.apply_gradients([(keras.ops.convert_to_tensor(g), var)])
        theirs = keras.ops.convert_to_numpy(var)
        assert ours[step].dtype == theirs.dtype == np.float32
        rel = float(np.max(np.abs(ours[step] - theirs)) / np.max(np.abs(theirs)))
        assert rel <= 1e-6, (step, rel)


# --- hyper-parameters, names, configs, dtypes -------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(learning_rate=0.0), "learning_rate must be > 0, got 0.0"),
    (dict(learning_rate=-1e-3), "learning_rate must be > 0"),
    (dict(learning_rate=float("nan")), "learning_rate must be > 0"),
    (dict(learning_rate=float("inf")), "learning_rate must be finite, got inf"),
    (dict(rho=1.0), r"rho must be in \[0, 1\), got 1.0"),
    (dict(rho=-0.1), r"rho must be in \[0, 1\)"),
    (dict(rho=float("nan")), r"rho must be in \[0, 1\)"),
    (dict(momentum=1.0), r"momentum must be in \[0, 1\), got 1.0"),
    (dict(momentum=-0.5), r"momentum must be in \[0, 1\)"),
    (dict(epsilon=0.0), "epsilon must be a finite number > 0, got 0.0"),
    (dict(epsilon=-1e-7), "epsilon must be a finite number > 0"),
    (dict(epsilon=float("inf")), "epsilon must be a finite number > 0, got inf"),
    (dict(epsilon=float("nan")), "epsilon must be a finite number > 0"),
    (dict(centered="yes"), "centered must be True or False, got 'yes'"),
    (dict(epsilon_style="tf"), "epsilon_style must be 'keras' or 'torch'"),
])
def test_bad_hyper_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RMSprop(**kwargs)


def test_name_gives_keras_defaults_and_compile_takes_it():
    opt = optimizers.get("rmsprop")
    assert type(opt) is RMSprop and optimizers.get("RMSprop").name == "rmsprop"
    assert (opt.learning_rate, opt.rho, opt.momentum, opt.epsilon, opt.centered, opt.epsilon_style) == \
        (0.001, 0.9, 0.0, 1e-7, False, "keras")
    from tinyseg.layers import Dense
    from tinyseg.models import Sequential
    model = Sequential([Dense(2, activation="softmax", input_shape=(3,))])
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    assert type(model.optimizer) is RMSprop


@pytest.mark.parametrize("centered, momentum", VARIANTS)
def test_config_rebuilds_the_same_optimizer(centered, momentum):
    opt = RMSprop(0.02, 0.8, momentum, 1e-5, centered, epsilon_style="torch")
    twin = RMSprop(**opt.get_config())
    assert twin.get_config() == opt.get_config()
    np.testing.assert_array_equal(optimizer_steps(twin, np.ones(2), GRADS), optimizer_steps(opt, np.ones(2), GRADS))


@pytest.mark.parametrize("centered, momentum", VARIANTS)
def test_slots_float32_and_in_place(centered, momentum):
    """Keras's slot names, only those the variant needs; float32 parameters and slots stay float32."""
    theta64 = np.random.default_rng(0).standard_normal((4, 5))
    theta32 = theta64.astype(np.float32)
    buffer = theta32
    opt32, opt64 = RMSprop(0.01, momentum=momentum, centered=centered), RMSprop(0.01, momentum=momentum,
                                                                               centered=centered)
    for g in np.random.default_rng(1).standard_normal((5, 4, 5)):
        opt32.apply_gradients([(g.astype(np.float32), theta32)])
        opt64.apply_gradients([(g, theta64)])
    assert theta32 is buffer and theta32.dtype == np.float32
    assert all(s.dtype == np.float32 for s in opt32._slots.values())
    want = {"velocity"} | ({"average_gradient"} if centered else set()) | ({"momentum"} if momentum else set())
    assert {name for _, name in opt32._slots} == want
    np.testing.assert_allclose(theta32, theta64, rtol=1e-5, atol=1e-5)


def test_gradients_are_not_changed():
    g = np.array([1.0, -2.0])
    optimizer_steps(RMSprop(0.1, momentum=0.9, centered=True), np.zeros(2), [g])
    np.testing.assert_array_equal(g, [1.0, -2.0])
