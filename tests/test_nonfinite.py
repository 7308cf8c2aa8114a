"""Numbers stay finite or the run stops with a reason.

- a gradient that is NaN or inf stops training with NonFiniteError naming the layer, the parameter and the
  step, before the step: no weight and no optimizer slot changes;
- a huge but finite gradient (beyond 1.8e19 in float32, whose square overflows) gives Adam and RMSprop an
  ordinary step, not NaN weights;
- a loss that is inf or NaN stops fit (TerminateOnNaN, always on);
- MSE of errors of 1e30 is 1e60, not inf; centered RMSprop never takes the root of a negative variance.
"""
import numpy as np
import pytest

import tinyseg
from tinyseg.backend import NonFiniteError
from tinyseg.callbacks import TerminateOnNaN
from tinyseg.layers import Dense
from tinyseg.losses import MeanSquaredError
from tinyseg.models import Sequential
from tinyseg.optimizers import SGD, Adam, RMSprop


def regression_model(optimizer):
    tinyseg.set_random_seed(0)
    model = Sequential([Dense(3, input_shape=(2,), activation="relu"), Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    return model


def state(model):
    return [w.copy() for w in model.get_weights()], {k: v.copy() for k, v in model.optimizer._slots.items()}, \
        model.optimizer.iterations


def assert_same(model, before):
    weights, slots, iterations = before
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights))
    assert model.optimizer._slots.keys() == slots.keys()
    assert all(np.array_equal(model.optimizer._slots[k], v) for k, v in slots.items())
    assert model.optimizer.iterations == iterations


# --- a non-finite gradient names its layer and parameter -----------------------------------------------------
@pytest.mark.parametrize("optimizer", [lambda: SGD(0.01, momentum=0.9), lambda: Adam(0.01), lambda: RMSprop(0.01)],
                         ids=["momentum", "adam", "rmsprop"])
def test_a_non_finite_gradient_names_the_layer_and_parameter_and_changes_nothing(optimizer):
    """A target of 3e38 (finite in float32): MSE's gradient 2 (y_pred - y) / M is -6e38, beyond float32, for a
    single prediction. The error names the first parameter whose gradient went bad, and the step."""
    model = regression_model(optimizer())
    x = np.array([[0.5, -1.0]], np.float32)
    model.train_on_batch(x, np.array([[1.0]], np.float32))                  # a good step: slots exist
    before = state(model)
    with pytest.raises(NonFiniteError) as info:
        model.train_on_batch(x, np.array([[3e38]], np.float32))
    err = info.value
    first_dense, second_dense = model.layers[0].name, model.layers[1].name
    assert f"layer '{first_dense}', parameter 'kernel'" in str(err) or \
        f"layer '{second_dense}', parameter 'kernel'" in str(err)
    assert err.parameter.startswith("layer '") and "parameter '" in err.parameter
    assert "at step 2" in str(err) and err.step == 2
    assert "no weight or optimizer state changed" in str(err)
    assert_same(model, before)


def test_in_fit_the_error_also_names_the_epoch_and_batch_and_earlier_steps_stand():
    x = np.array([[0.5, -1.0], [1.0, 2.0], [0.0, 1.0]], np.float32)
    y = np.array([[1.0], [2.0], [3e38]], np.float32)                       # the third batch's gradient overflows
    model, reference = regression_model(SGD(0.01)), regression_model(SGD(0.01))
    reference.fit(x[:2], y[:2], batch_size=1, shuffle=False, verbose=0)
    with pytest.raises(NonFiniteError, match=r"fit, batch 2 of epoch 1: sgd: the gradient of layer '.*', "
                                             r"parameter '(kernel|bias)' holds .* at step 3"):
        model.fit(x, y, batch_size=1, shuffle=False, verbose=0)
    assert_same(model, state(reference))
    assert model.epochs_done == 0                                          # epoch 1 was not completed


def test_nan_weights_set_by_hand_are_refused_before_they_spread():
    model = regression_model(Adam())
    weights = model.get_weights()
    weights[0][0, 0] = np.nan
    with pytest.raises(ValueError, match="weight 'kernel' holds NaN"):
        model.set_weights(weights)


# --- huge but finite gradients -------------------------------------------------------------------------------
HUGE = np.array([3e38, -1e20, 2e19, 1.0, -1e-3], np.float32)


@pytest.mark.parametrize("make", [lambda: Adam(0.01), lambda: Adam(0.01, epsilon_style="torch"),
                                  lambda: RMSprop(0.01), lambda: RMSprop(0.01, momentum=0.5, centered=True)],
                         ids=["adam", "adam-torch", "rmsprop", "rmsprop-centered"])
def test_gradients_whose_squares_overflow_float32_give_ordinary_steps(make):
    """g*g overflows float32 beyond 1.8e19; the slot of g^2 widens to float64 and the steps are those of the
    same optimizer in float64 (where nothing overflows), to float32 rounding."""
    theta32, theta64 = np.zeros(5, np.float32), np.zeros(5)
    opt32, opt64 = make(), make()
    for step in range(6):
        g = HUGE * (1.0 if step % 2 else 0.5)       # steps of two sizes
        with np.errstate(over="raise", invalid="raise"):
            opt32.apply_gradients([(g.astype(np.float32), theta32)])
        opt64.apply_gradients([(g.astype(np.float64), theta64)])
    assert np.all(np.isfinite(theta32)) and theta32.dtype == np.float32
    np.testing.assert_allclose(theta32, theta64, rtol=1e-5, atol=1e-7)
    assert np.max(np.abs(theta32)) < 1                      # steps of about the learning rate, not of |g|


def test_adam_first_step_on_a_huge_gradient_is_the_learning_rate():
    theta = np.zeros(3, np.float32)
    Adam(0.1).apply_gradients([(np.array([3e38, -1e25, 1.0], np.float32), theta)])
    np.testing.assert_allclose(theta, [-0.1, 0.1, -0.1], rtol=1e-3)


def test_a_huge_input_trains_a_dense_layer_with_adam_without_nan():
    model = Sequential([Dense(2, input_shape=(3,), activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.array([[1e25, 0.0, 1.0], [1.0, 2.0, 3.0]], np.float32)
    for _ in range(3):
        model.train_on_batch(x, np.array([0, 1]))
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def test_centered_rmsprop_never_takes_the_root_of_a_negative_variance():
    """A constant gradient has variance 0, but v - a^2 rounds to -4.9e-4 at step 24 for this g and rho
    (float32); unclipped, sqrt of it is NaN and the parameter would be NaN from then on."""
    for style in ("keras", "torch"):
        theta = np.zeros(1, np.float32)
        opt = RMSprop(0.001, rho=0.5, centered=True, epsilon_style=style)
        g = np.array([65.04942], np.float32)
        with np.errstate(invalid="raise"):
            for _ in range(30):
                opt.apply_gradients([(g, theta)])
        assert np.isfinite(theta[0])


# --- losses -------------------------------------------------------------------------------------------------
def test_mse_of_errors_of_1e30_is_1e60_with_a_finite_gradient():
    loss = MeanSquaredError()
    y_pred = np.full((2, 3), 1e30, np.float32)
    with np.errstate(over="raise"):
        value = loss(np.zeros((2, 3), np.float32), y_pred)
    assert value == pytest.approx(float(np.float32(1e30)) ** 2, rel=1e-12)
    grad = loss.backward()
    assert grad.dtype == np.float32 and np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, 2 * float(np.float32(1e30)) / 6, rtol=1e-6)


def test_mse_of_float64_errors_of_1e150_is_1e300():
    value = MeanSquaredError()(np.zeros(4), np.array([1e150, -1e150, 0.0, 2e150]))
    assert value == pytest.approx((1 + 1 + 0 + 4) / 4 * 1e300, rel=1e-12)


# --- a loss that is not a number stops fit -------------------------------------------------------------------
def test_an_infinite_loss_stops_fit_with_a_message(capsys):
    """Logits of +-3e38 in float32: z - max(z) overflows, log p of the true class is -inf, the loss inf; the
    gradient p - y stays finite, so the step is taken, and TerminateOnNaN (always on) stops the run."""
    model = Sequential([Dense(2, input_shape=(1,), activation="softmax", use_bias=False)])
    model.compile(optimizer=SGD(1e-40), loss="sparse_categorical_crossentropy")
    model.set_weights([np.array([[3e38, -3e38]], np.float32)])
    x, y = np.ones((4, 1), np.float32), np.ones(4, np.int64)
    history = model.fit(x, y, epochs=3, batch_size=2, verbose=0)
    out = capsys.readouterr().out
    assert "Epoch 1, batch 0: invalid loss inf, terminating training (TerminateOnNaN)" in out
    assert history.history["loss"] == [np.inf] and model.optimizer.iterations == 1
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def test_a_terminate_on_nan_given_by_the_user_is_not_doubled(capsys):
    model = Sequential([Dense(2, input_shape=(1,), activation="softmax", use_bias=False)])
    model.compile(optimizer=SGD(1e-40), loss="sparse_categorical_crossentropy")
    model.set_weights([np.array([[3e38, -3e38]], np.float32)])
    stopper = TerminateOnNaN()
    model.fit(np.ones((2, 1), np.float32), np.ones(2, np.int64), epochs=2, verbose=0, callbacks=[stopper])
    assert stopper.stopped_at == (0, 0, float("inf"))
    assert capsys.readouterr().out.count("terminating training") == 1
