"""Learning-rate schedules (tinyseg/schedules.py): Keras 3's formulas and step counting, as an optimizer's
learning_rate, against torch.optim.lr_scheduler in float64 (the rate sequences and SGD runs to 1e-10) and
against Keras's own schedules; configs; bad arguments, each named."""
import json
import math

import numpy as np
import pytest

import tinyseg
from tinyseg import callbacks, optimizers, schedules
from tinyseg.layers import Conv2D
from tinyseg.models import Sequential
from tinyseg.schedules import CosineDecay, ExponentialDecay, LearningRateSchedule, PiecewiseConstantDecay

TOL = 1e-10


def rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-300))


# --- the formulas, evaluated by hand ------------------------------------------------------------------------
def test_exponential_decay_formula():
    s = ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5)
    assert [s(t) for t in (0, 2, 4, 8)] == pytest.approx([0.1, 0.1 * 0.5 ** 0.5, 0.05, 0.025], rel=1e-15)
    stairs = ExponentialDecay(0.1, 4, 0.5, staircase=True)
    assert [stairs(t) for t in range(10)] == [0.1] * 4 + [0.05] * 4 + [0.025] * 2


def test_piecewise_constant_boundary_steps_keep_the_rate_before():
    s = PiecewiseConstantDecay([2, 4], [1.0, 0.5, 0.1])
    assert [s(t) for t in range(7)] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.1, 0.1]      # Keras: step <= boundary
    assert PiecewiseConstantDecay([], [0.3])(10 ** 6) == 0.3


def test_cosine_decay_formula_and_end_value():
    s = CosineDecay(0.2, decay_steps=10, alpha=0.1)
    for t in range(0, 15):
        d = min(t, 10)
        assert s(t) == pytest.approx(0.2 * (0.9 * 0.5 * (1 + math.cos(math.pi * d / 10)) + 0.1), rel=1e-15)
    assert s(10) == s(1000) == pytest.approx(0.02)


def test_cosine_decay_linear_warmup_then_cosine_from_the_target():
    s = CosineDecay(0.0, decay_steps=10, warmup_target=0.1, warmup_steps=5)
    assert [s(t) for t in range(6)] == pytest.approx([0.0, 0.02, 0.04, 0.06, 0.08, 0.1], rel=1e-15)
    assert s(10) == pytest.approx(0.05, rel=1e-15)                   # half-way through the decay
    assert s(15) == s(100) == pytest.approx(0.0, abs=1e-18)
    assert CosineDecay(0.3, 10, warmup_target=0.1, warmup_steps=0)(0) == 0.1    # Keras: no warm-up steps


# --- the optimizer's step counting ---------------------------------------------------------------------------
def test_step_t_takes_the_rate_of_schedule_at_iterations_before_the_step():
    """SGD's displacement is -lr_t * g: step 1 uses schedule(0), step 2 schedule(1), ..."""
    s = PiecewiseConstantDecay([0, 1], [0.5, 0.25, 0.125])
    opt = optimizers.SGD(s)
    theta = np.zeros(2)
    seen = []
    for _ in range(4):
        before = theta.copy()
        assert opt.learning_rate == s(opt.iterations)               # the rate the next step will take
        opt.apply_gradients([(np.ones(2), theta)])
        seen.append(float(before[0] - theta[0]))
    assert seen == [0.5, 0.25, 0.125, 0.125]


@pytest.mark.parametrize("make", [
    lambda s: optimizers.SGD(s, momentum=0.9), lambda s: optimizers.Adam(s), lambda s: optimizers.AdamW(s),
    lambda s: optimizers.RMSprop(s, centered=True, momentum=0.5)])
def test_every_optimizer_takes_a_schedule_and_uses_the_step_rate(make):
    """A scheduled optimizer takes the same steps as one whose float rate is set to schedule(t) before step t."""
    s = CosineDecay(0.01, 6, alpha=0.1, warmup_target=0.05, warmup_steps=3)
    scheduled, by_hand = make(s), make(1.0)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 2))
    b = a.copy()
    for t in range(12):
        g = rng.standard_normal((3, 2))
        scheduled.apply_gradients([(g, a)])
        by_hand.learning_rate = s(t)
        by_hand.apply_gradients([(g, b)])
        np.testing.assert_array_equal(a, b)


def test_a_schedule_optimizer_refuses_a_float_rate_as_keras_does():
    opt = optimizers.Adam(ExponentialDecay(0.1, 10, 0.9))
    with pytest.raises(TypeError, match="learning rate is the schedule ExponentialDecay"):
        opt.learning_rate = 0.01
    opt.learning_rate = CosineDecay(0.1, 5)                        # another schedule is fine
    assert isinstance(opt._learning_rate, CosineDecay)
    plain = optimizers.SGD(0.1)
    plain.learning_rate = ExponentialDecay(0.1, 10, 0.9)            # a float optimizer may take one
    assert plain.learning_rate == 0.1


def test_learning_rate_scheduler_callback_on_a_scheduled_optimizer_is_refused_before_any_step():
    tinyseg.set_random_seed(0)
    model = Sequential([Conv2D(2, 1, input_shape=(4, 4, 1), activation="softmax")])
    model.compile(optimizer=optimizers.SGD(ExponentialDecay(0.1, 10, 0.9)), loss="sparse_categorical_crossentropy")
    x, y = np.ones((4, 4, 4, 1), np.float32), np.zeros((4, 4, 4), np.int64)
    before = model.get_weights()
    with pytest.raises(callbacks.CallbackError, match="TypeError: .* cannot be set"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.LearningRateScheduler(lambda e, lr: lr / 2)])
    assert model.optimizer.iterations == 0
    assert all(np.array_equal(p, q) for p, q in zip(before, model.get_weights()))


class Broken(LearningRateSchedule):
    def __init__(self, value):
        self.value = value

    def __call__(self, step):
        return self.value


@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf"), "0.1"])
def test_a_schedule_giving_a_bad_rate_is_refused_at_the_step_and_changes_nothing(value):
    opt = optimizers.Adam(Broken(value))
    theta = np.ones(3)
    with pytest.raises(ValueError, match="the schedule Broken gave the learning rate"):
        opt.apply_gradients([(np.ones(3), theta)])
    assert opt.iterations == 0 and not opt._slots and np.array_equal(theta, np.ones(3))


def test_a_function_is_not_a_schedule():
    with pytest.raises(TypeError, match="learning_rate must be a number or a tinyseg.schedules"):
        optimizers.SGD(lambda step: 0.1)


# --- names, configs ------------------------------------------------------------------------------------------
def test_keras_names_resolve():
    from tinyseg.optimizers.schedules import CosineDecay as FromImport
    assert tinyseg.optimizers.schedules.CosineDecay is FromImport is schedules.CosineDecay
    assert tinyseg.optimizers.schedules.ExponentialDecay is ExponentialDecay
    assert tinyseg.optimizers.schedules.PiecewiseConstantDecay is PiecewiseConstantDecay


@pytest.mark.parametrize("schedule", [
    ExponentialDecay(0.1, 1000, 0.96, staircase=True), PiecewiseConstantDecay([100, 200], [0.1, 0.01, 0.001]),
    CosineDecay(0.0, 500, alpha=0.05, warmup_target=0.1, warmup_steps=50), CosineDecay(0.1, 7)])
def test_schedule_and_optimizer_configs_round_trip_through_json(schedule):
    spec = json.loads(json.dumps(schedules.serialize(schedule)))
    again = schedules.deserialize(spec)
    assert type(again) is type(schedule) and again.get_config() == schedule.get_config()
    assert [again(t) for t in range(0, 600, 37)] == [schedule(t) for t in range(0, 600, 37)]
    opt = optimizers.AdamW(schedule, weight_decay=0.01, global_clipnorm=1.0)
    rebuilt = optimizers.deserialize(json.loads(json.dumps(optimizers.serialize(opt))))
    assert type(rebuilt) is optimizers.AdamW and rebuilt.get_config() == opt.get_config()


def test_deserialize_reads_keras_own_form_and_refuses_unknown_classes():
    keras_form = {"module": "keras.optimizers.schedules", "class_name": "ExponentialDecay", "registered_name": None,
                  "config": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5,
                             "staircase": False, "name": "ExponentialDecay"}}
    assert schedules.deserialize(keras_form)(10) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        schedules.deserialize({"class_name": "PolynomialDecay", "config": {}})
    with pytest.raises(ValueError, match="not one of tinyseg's"):
        schedules.serialize(Broken(0.1))


# --- bad arguments -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, error, match", [
    (lambda: ExponentialDecay(0.1, -10, 0.9), ValueError, "ExponentialDecay: decay_steps must be > 0"),
    (lambda: ExponentialDecay(0.1, 0, 0.9), ValueError, "decay_steps must be > 0"),
    (lambda: ExponentialDecay(0.1, 10, 0.0), ValueError, "decay_rate must be > 0"),
    (lambda: ExponentialDecay(0.0, 10, 0.9), ValueError, "initial_learning_rate must be > 0"),
    (lambda: ExponentialDecay(0.1, float("inf"), 0.9), ValueError, "decay_steps must be finite"),
    (lambda: ExponentialDecay(0.1, 10, 0.9, staircase="yes"), TypeError, "staircase must be True or False"),
    (lambda: ExponentialDecay("0.1", 10, 0.9), TypeError, "initial_learning_rate must be a real number"),
    (lambda: PiecewiseConstantDecay([10, 5], [1.0, 0.5, 0.1]), ValueError, "boundaries must be strictly increasing"),
    (lambda: PiecewiseConstantDecay([10, 10], [1.0, 0.5, 0.1]), ValueError, "strictly increasing"),
    (lambda: PiecewiseConstantDecay([10], [1.0, 0.5, 0.1]), ValueError, "values must have one more entry"),
    (lambda: PiecewiseConstantDecay([10, 20], [1.0]), ValueError, "got 2 boundaries and 1 values"),
    (lambda: PiecewiseConstantDecay([10], [1.0, -0.5]), ValueError, "values must be >= 0"),
    (lambda: PiecewiseConstantDecay(10, [1.0, 0.5]), TypeError, "boundaries must be a list of numbers"),
    (lambda: CosineDecay(0.1, -5), ValueError, "CosineDecay: decay_steps must be > 0"),
    (lambda: CosineDecay(0.1, 5, alpha=1.5), ValueError, "alpha .* must be in \\[0, 1\\]"),
    (lambda: CosineDecay(0.1, 5, warmup_steps=3), ValueError, "warmup_steps=3 needs warmup_target"),
    (lambda: CosineDecay(0.0, 5, warmup_target=0.1, warmup_steps=-1), ValueError, "warmup_steps must be >= 0"),
    (lambda: CosineDecay(0.0, 5, warmup_target=-0.1, warmup_steps=2), ValueError, "warmup_target must be > 0"),
    (lambda: CosineDecay(0.0, 5), ValueError, "initial_learning_rate=0 without a warm-up"),
    (lambda: CosineDecay(-0.1, 5), ValueError, "initial_learning_rate must be >= 0"),
    (lambda: CosineDecay(0.1, 5)(-1), ValueError, "the step must be a number >= 0"),
])
def test_bad_arguments_are_refused_naming_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        make()


# --- against PyTorch's lr_scheduler (float64) ---------------------------------------------------------------
def torch_twins():
    """(our schedule, torch scheduler factory taking an optimizer, base lr, steps) for the formulas they share."""
    sched = pytest.importorskip("torch").optim.lr_scheduler
    return {
        "ExponentialLR": (ExponentialDecay(0.1, 1, 0.93), lambda o: sched.ExponentialLR(o, gamma=0.93), 0.1, 40),
        "ExponentialLR, decay_steps 7": (ExponentialDecay(0.1, 7, 0.5),
                                         lambda o: sched.ExponentialLR(o, gamma=0.5 ** (1 / 7)), 0.1, 40),
        "StepLR": (ExponentialDecay(0.1, 5, 0.5, staircase=True),
                   lambda o: sched.StepLR(o, step_size=5, gamma=0.5), 0.1, 40),
        "MultiStepLR": (PiecewiseConstantDecay([9, 19], [0.1, 0.1 * 0.3, 0.1 * 0.3 ** 2]),
                        lambda o: sched.MultiStepLR(o, milestones=[10, 20], gamma=0.3), 0.1, 40),
        "CosineAnnealingLR": (CosineDecay(0.1, 30, alpha=0.1),
                              lambda o: sched.CosineAnnealingLR(o, T_max=30, eta_min=0.01), 0.1, 31),
        "LinearLR + CosineAnnealingLR": (
            CosineDecay(0.01, 20, alpha=0.0, warmup_target=0.1, warmup_steps=5),
            lambda o: sched.SequentialLR(o, [sched.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=5),
                                             sched.CosineAnnealingLR(o, T_max=20, eta_min=0.0)], milestones=[5]),
            0.1, 26),
    }


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("name", ["ExponentialLR", "ExponentialLR, decay_steps 7", "StepLR", "MultiStepLR",
                                  "CosineAnnealingLR", "LinearLR + CosineAnnealingLR"])
def test_rates_match_torch_lr_schedulers(name):
    """The rate of every step: ours at step t (0-based) against the rate in torch's param group when its
    (t+1)-th optimizer.step() runs, the scheduler stepped after each, as torch's documentation has it."""
    import torch
    schedule, make_scheduler, base_lr, steps = torch_twins()[name]
    t = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    torch_opt = torch.optim.SGD([t], lr=base_lr)
    scheduler = make_scheduler(torch_opt)
    worst = 0.0
    for step in range(steps):
        worst = max(worst, rel(schedule(step), torch_opt.param_groups[0]["lr"]))
        t.grad = torch.ones(3, dtype=torch.float64)
        torch_opt.step()
        scheduler.step()
    assert worst <= TOL, worst


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("name", ["ExponentialLR", "ExponentialLR, decay_steps 7", "StepLR", "MultiStepLR",
                                  "CosineAnnealingLR", "LinearLR + CosineAnnealingLR"])
def test_sgd_and_adamw_runs_with_a_schedule_match_torch(name):
    """Plain SGD and AdamW (torch's epsilon) stepped by each schedule and by its torch twin: every parameter
    after every step to 1e-10."""
    import torch

    from tinyseg.interop import relative_error, to_tensor
    schedule, make_scheduler, base_lr, steps = torch_twins()[name]
    for ours, make_torch in [
            (optimizers.SGD(schedule), lambda p: torch.optim.SGD(p, lr=base_lr)),
            (optimizers.AdamW(schedule, weight_decay=0.05, epsilon=1e-8, epsilon_style="torch"),
             lambda p: torch.optim.AdamW(p, lr=base_lr, weight_decay=0.05, eps=1e-8))]:
        rng = np.random.default_rng(5)
        theta = rng.standard_normal((2, 3, 4))
        t = to_tensor(theta.copy(), requires_grad=True)
        torch_opt = make_torch([t])
        scheduler = make_scheduler(torch_opt)
        worst = 0.0
        for _ in range(steps):
            g = rng.standard_normal(theta.shape)
            ours.apply_gradients([(g.copy(), theta)])
            t.grad = to_tensor(g)
            torch_opt.step()
            scheduler.step()
            worst = max(worst, relative_error(theta, t))
        assert worst <= TOL, (type(ours).__name__, worst)


def test_momentum_with_a_changing_rate_is_kerass_not_torchs():
    """Why no momentum run is compared with torch above: Keras folds lr into the velocity (v = mu v - lr g), torch
    multiplies the buffer by today's lr (theta -= lr b). Equal for a constant rate, not when it changes."""
    torch = pytest.importorskip("torch")
    from tinyseg.interop import relative_error, to_tensor
    schedule = ExponentialDecay(0.1, 1, 0.5)
    theta = np.ones(3)
    t = to_tensor(theta.copy(), requires_grad=True)
    torch_opt = torch.optim.SGD([t], lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(torch_opt, 0.5)
    ours = optimizers.SGD(schedule, momentum=0.9)
    for _ in range(3):
        ours.apply_gradients([(np.ones(3), theta)])
        t.grad = to_tensor(np.ones(3))
        torch_opt.step()
        scheduler.step()
    # by hand, Keras: v1 = -0.1, v2 = 0.9 v1 - 0.05, v3 = 0.9 v2 - 0.025
    v1 = -0.1
    v2 = 0.9 * v1 - 0.05
    v3 = 0.9 * v2 - 0.025
    np.testing.assert_allclose(theta, 1 + v1 + v2 + v3, rtol=1e-15)
    assert relative_error(theta, t) > 1e-3


# --- against Keras 3's own schedules ---------------------------------------------------------------------------
def test_rates_match_keras_schedules():
    """Keras computes in float32: 1e-6 relative, or 1e-6 of the largest rate (0.1) near the cosine's end,
    where 1 + cos(pi * s / D) cancels in float32."""
    from tests.helpers import import_keras
    keras = import_keras()
    pairs = [
        (ExponentialDecay(0.1, 7, 0.5), keras.optimizers.schedules.ExponentialDecay(0.1, 7, 0.5)),
        (ExponentialDecay(0.1, 7, 0.5, True), keras.optimizers.schedules.ExponentialDecay(0.1, 7, 0.5, True)),
        (PiecewiseConstantDecay([3, 9], [0.1, 0.05, 0.01]),
         keras.optimizers.schedules.PiecewiseConstantDecay([3, 9], [0.1, 0.05, 0.01])),
        (CosineDecay(0.1, 20, alpha=0.2), keras.optimizers.schedules.CosineDecay(0.1, 20, alpha=0.2)),
        (CosineDecay(0.0, 20, warmup_target=0.1, warmup_steps=6),
         keras.optimizers.schedules.CosineDecay(0.0, 20, warmup_target=0.1, warmup_steps=6)),
    ]
    for ours, theirs in pairs:
        for step in range(30):
            expected = float(keras.ops.convert_to_numpy(theirs(step)))
            assert ours(step) == pytest.approx(expected, rel=1e-6, abs=1e-7), (type(ours).__name__, step)
