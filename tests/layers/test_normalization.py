"""BatchNormalization: gradient checks, moving statistics by hand, parity with PyTorch, weights and errors."""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.helpers import nchw_to_nhwc, nhwc_to_nchw, rel_error
from tinyseg.gradcheck import check_layer
from tinyseg.layers.normalization import BatchNormalization

SETTINGS = settings(deadline=None, max_examples=25)


# --- helpers ------------------------------------------------------------------------------------------
@st.composite
def bn_shapes(draw):
    """(N, C) or (N, H, W, C) with at least two values per channel (one value has no variance)."""
    if draw(st.booleans()):
        shape = (draw(st.integers(2, 8)), draw(st.integers(1, 4)))
    else:
        shape = tuple(draw(st.integers(1, 4)) for _ in range(3)) + (draw(st.integers(1, 3)),)
    assume(np.prod(shape[:-1]) >= 2)
    return shape


def make_layer(shape, rng, momentum=0.99, epsilon=1e-3, dtype="float64"):
    """A built layer with non-trivial gamma (either sign), beta and moving statistics."""
    layer = BatchNormalization(momentum=momentum, epsilon=epsilon, dtype=dtype)
    layer.build(shape[1:])
    c = shape[-1]
    layer.set_weights([rng.uniform(0.5, 2, c) * rng.choice([-1, 1], c), rng.standard_normal(c),
                       rng.standard_normal(c), rng.uniform(0.5, 3, c)])
    return layer


def random_input(shape, rng):
    """Values with a per-tensor scale and offset, so the normalisation has something to remove."""
    return rng.standard_normal(shape) * rng.uniform(0.5, 3) + rng.uniform(-2, 2)


def reference_forward(x, gamma, beta, mean, var, eps):
    """Per channel, written with explicit loops over the channel (the thing that must not be per pixel)."""
    y = np.empty_like(x)
    for c in range(x.shape[-1]):
        y[..., c] = gamma[c] * (x[..., c] - mean[c]) / np.sqrt(var[c] + eps) + beta[c]
    return y


def channel_stats(x):
    """Mean and biased variance of every channel, one channel at a time, from plain Python sums."""
    means, variances = [], []
    for c in range(x.shape[-1]):
        values = x[..., c].ravel().tolist()
        m = sum(values) / len(values)
        means.append(m)
        variances.append(sum((v - m) ** 2 for v in values) / len(values))
    return np.array(means), np.array(variances)


# --- gradient checks ----------------------------------------------------------------------------------
# Step and floor of the central differences. The analytic gradient in training mode has entries near zero
# (per channel it sums to zero and is orthogonal to xhat), and roundoff in the loss gives the numeric one an
# absolute error of about 1e-15 / h. h = 1e-5 balances that against the O(h^2) truncation error, and
# floor = 1e-3 means an entry smaller than 1e-3 must agree to 1e-9 in absolute terms instead of relatively.
# A wrong formula (the inference gradient used in training, a missing term) gives errors around 1e-1.
H, FLOOR = 1e-5, 1e-3


@SETTINGS
@given(shape=bn_shapes(), seed=st.integers(0, 2**32 - 1))
def test_gradient_training_mode_goes_through_batch_statistics(shape, seed):
    rng = np.random.default_rng((1, seed))       # a stream check_layer's own seed cannot reproduce
    layer = make_layer(shape, rng)
    report = check_layer(layer, random_input(shape, rng), training=True, h=H, floor=FLOOR, seed=seed)
    assert report.ok and report.max_rel_error < 1e-6, str(report)
    assert set(report.per_array) == {"input", "gamma", "beta"}


@SETTINGS
@given(shape=bn_shapes(), seed=st.integers(0, 2**32 - 1))
def test_gradient_inference_mode_is_the_affine_gradient(shape, seed):
    rng = np.random.default_rng((2, seed))
    layer = make_layer(shape, rng)
    report = check_layer(layer, random_input(shape, rng), training=False, h=H, floor=FLOOR, seed=seed)
    assert report.ok and report.max_rel_error < 1e-6, str(report)


def test_training_gradient_is_not_the_inference_gradient():
    """The two backward formulas really differ, so the checks above could tell them apart."""
    rng = np.random.default_rng(3)
    layer = make_layer((4, 3, 3, 2), rng)
    x, g = random_input((4, 3, 3, 2), rng), rng.standard_normal((4, 3, 3, 2))
    layer.forward(x, training=True)
    dx_train = layer.backward(g)
    # the compact formula of the docstring, with batch statistics
    mu, var = channel_stats(x)
    xhat = (x - mu) / np.sqrt(var + 1e-3)
    gamma = layer.params["gamma"]
    expected = gamma / np.sqrt(var + 1e-3) * (g - g.mean(axis=(0, 1, 2)) - xhat * (g * xhat).mean(axis=(0, 1, 2)))
    assert rel_error(dx_train, expected) < 1e-12
    assert rel_error(dx_train, g * gamma / np.sqrt(var + 1e-3)) > 1e-2
    # the two identities of the module docstring: shifting x does nothing, scaling it almost nothing
    np.testing.assert_allclose(dx_train.sum(axis=(0, 1, 2)), 0, atol=1e-12)
    along_xhat = gamma / np.sqrt(var + 1e-3) * (g * xhat).sum(axis=(0, 1, 2)) * 1e-3 / (var + 1e-3)
    np.testing.assert_allclose((dx_train * xhat).sum(axis=(0, 1, 2)), along_xhat, rtol=1e-10)


# --- moving statistics and the two modes --------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4, 2)])
def test_moving_statistics_follow_the_keras_update(shape):
    rng = np.random.default_rng(4)
    momentum, eps = 0.9, 1e-3
    layer = BatchNormalization(momentum=momentum, epsilon=eps, dtype="float64")
    expected_mean, expected_var = np.zeros(shape[-1]), np.ones(shape[-1])       # Keras's initial values
    for step in range(4):
        x = random_input(shape, rng) + step
        y = layer.forward(x, training=True)
        mu, var = channel_stats(x)
        expected_mean = momentum * expected_mean + (1 - momentum) * mu
        expected_var = momentum * expected_var + (1 - momentum) * var              # biased batch variance
        # training normalises with the batch's own statistics (gamma = 1, beta = 0 still)
        np.testing.assert_allclose(y, reference_forward(x, np.ones(shape[-1]), np.zeros(shape[-1]), mu, var, eps),
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(layer.state["moving_mean"], expected_mean, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(layer.state["moving_variance"], expected_var, rtol=1e-12)

    # inference uses the moving statistics, and leaves them alone
    layer.params["gamma"][...] = rng.uniform(0.5, 2, shape[-1])
    layer.params["beta"][...] = rng.standard_normal(shape[-1])
    x = random_input(shape, rng)
    y = layer.forward(x, training=False)
    expected = reference_forward(x, layer.params["gamma"], layer.params["beta"], expected_mean, expected_var, eps)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.state["moving_mean"], expected_mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(layer.state["moving_variance"], expected_var, rtol=1e-12)


def test_image_statistics_are_per_channel_not_per_pixel():
    rng = np.random.default_rng(5)
    x = random_input((3, 4, 5, 2), rng)
    y = BatchNormalization(dtype="float64").forward(x, training=True)
    var = x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 1, 2)), var / (var + 1e-3), rtol=1e-12)
    # per-pixel statistics would make every pixel's mean over the batch zero; per channel they are not
    assert np.abs(y.mean(axis=0)).max() > 0.1


def test_float32_stays_float32():
    rng = np.random.default_rng(6)
    layer = BatchNormalization()
    x = random_input((4, 3, 3, 2), rng).astype("float32")
    y = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32
    assert all(w.dtype == np.float32 for w in layer.get_weights())
    assert all(g.dtype == np.float32 for g in layer.grads.values())
    x64 = x.astype("float64")
    ref = BatchNormalization(dtype="float64").forward(x64, training=True)
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-5)


def test_backward_changes_neither_weights_nor_the_callers_arrays():
    rng = np.random.default_rng(7)
    layer = make_layer((4, 3), rng)
    x = random_input((4, 3), rng)
    g = rng.standard_normal((4, 3))
    x_before, g_before = x.copy(), g.copy()
    for training in (True, False):
        layer.forward(x, training=training)
        weights = layer.get_weights()                   # after forward: training updates moving statistics
        layer.backward(g)
        for before, after in zip(weights, layer.get_weights()):
            np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(g, g_before)
    np.testing.assert_array_equal(x, x_before)


# --- parity with PyTorch ------------------------------------------------------------------------------
# Conventions converted here, in one visible place:
#   torch_momentum = 1 - keras_momentum        (PyTorch weighs the new batch, Keras the old average)
#   running_var (PyTorch) averages the UNBIASED batch variance var * M / (M - 1); moving_variance (Keras, us)
#   the biased var. Both start at 1 and follow linear recursions, so after k steps of batches of M values:
#       moving_variance - m^k = (M - 1) / M * (running_var - m^k)        (m = keras momentum)
#   layout: our NHWC is PyTorch's NCHW with the channel axis moved.
@SETTINGS
@given(shape=bn_shapes(), momentum=st.sampled_from([0.99, 0.9, 0.5]), seed=st.integers(0, 2**32 - 1))
def test_matches_torch_batchnorm(shape, momentum, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng((3, seed))
    eps, c = 1e-3, shape[-1]
    m_values = int(np.prod(shape[:-1]))                  # M: values per channel
    ours = make_layer(shape, rng, momentum=momentum, epsilon=eps)
    ours.set_weights(ours.get_weights()[:2] + [np.zeros(c), np.ones(c)])   # Keras's initial moving statistics
    cls = torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d
    theirs = cls(c, eps=eps, momentum=1 - momentum, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.params["gamma"]))
        theirs.bias.copy_(torch.from_numpy(ours.params["beta"]))

    def step(x, g, training):
        theirs.train(training)
        xt = torch.from_numpy(nhwc_to_nchw(x).copy()).requires_grad_(True)
        theirs.weight.grad = theirs.bias.grad = None
        yt = theirs(xt)
        yt.backward(torch.from_numpy(nhwc_to_nchw(g).copy()))
        y, dx = ours.forward(x, training=training), ours.backward(g)
        assert rel_error(y, nchw_to_nhwc(yt.detach().numpy())) <= 1e-10
        assert rel_error(dx, nchw_to_nhwc(xt.grad.numpy())) <= 1e-10
        assert rel_error(ours.grads["gamma"], theirs.weight.grad.numpy()) <= 1e-10
        assert rel_error(ours.grads["beta"], theirs.bias.grad.numpy()) <= 1e-10

    steps = 3
    for _ in range(steps):
        step(random_input(shape, rng), rng.standard_normal(shape), training=True)
    assert rel_error(ours.state["moving_mean"], theirs.running_mean.numpy()) <= 1e-10
    decay = momentum ** steps
    converted = decay + (m_values - 1) / m_values * (theirs.running_var.numpy() - decay)
    assert rel_error(ours.state["moving_variance"], converted) <= 1e-10
    # the conversion is not a no-op: the average of unbiased variances really is different
    assert rel_error(ours.state["moving_variance"], theirs.running_var.numpy()) > 1e-6

    # inference: give PyTorch our moving statistics, then both must agree on outputs and gradients
    with torch.no_grad():
        theirs.running_var.copy_(torch.from_numpy(ours.state["moving_variance"]))
    step(random_input(shape, rng), rng.standard_normal(shape), training=False)


# --- weights: params vs state -------------------------------------------------------------------------
def test_weights_are_organised_as_keras():
    layer = BatchNormalization(dtype="float64")
    layer.build((5, 5, 3))
    assert list(layer.params) == ["gamma", "beta"]                      # what an optimizer trains
    assert list(layer.state) == ["moving_mean", "moving_variance"]      # what it must never touch
    assert layer.weight_names() == ["gamma", "beta", "moving_mean", "moving_variance"]
    gamma, beta, mean, var = layer.get_weights()
    np.testing.assert_array_equal(gamma, np.ones(3))
    np.testing.assert_array_equal(beta, np.zeros(3))
    np.testing.assert_array_equal(mean, np.zeros(3))
    np.testing.assert_array_equal(var, np.ones(3))
    assert layer.count_params() == 12                   # Keras's "Total params"
    assert layer.count_trainable_params() == 6
    assert layer.count_non_trainable_params() == 6

    new = [np.arange(3.0) + k for k in range(4)]
    arrays = [layer.params["gamma"], layer.params["beta"], layer.state["moving_mean"], layer.state["moving_variance"]]
    layer.set_weights(new)
    for array, expected, got in zip(arrays, new, layer.get_weights()):
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(array, expected)  # written in place: the same arrays hold the values
    layer.get_weights()[0][...] = 99                    # get_weights returns copies
    assert layer.params["gamma"][0] == 0


def test_optimizer_step_over_params_leaves_moving_statistics_alone():
    rng = np.random.default_rng(8)
    layer = BatchNormalization(momentum=0.5, dtype="float64")
    x = random_input((6, 2), rng)
    layer.forward(x, training=True)
    layer.backward(rng.standard_normal((6, 2)))
    assert set(layer.grads) == set(layer.params)
    state_before = {k: v.copy() for k, v in layer.state.items()}
    for key in layer.params:                              # what every optimizer does
        layer.params[key] -= 0.1 * layer.grads[key]
    for key in layer.state:
        np.testing.assert_array_equal(layer.state[key], state_before[key])


@pytest.mark.parametrize("center, scale, names", [
    (False, True, ["gamma", "moving_mean", "moving_variance"]),
    (True, False, ["beta", "moving_mean", "moving_variance"]),
    (False, False, ["moving_mean", "moving_variance"]),
])
def test_center_and_scale_drop_beta_and_gamma(center, scale, names):
    rng = np.random.default_rng(9)
    layer = BatchNormalization(center=center, scale=scale, dtype="float64")
    layer.build((3,))
    assert layer.weight_names() == names
    assert layer.count_params() == 3 * len(names)
    x = random_input((5, 3), rng)
    y = layer.forward(x, training=True)
    mu, var = channel_stats(x)
    np.testing.assert_allclose(y, reference_forward(x, np.ones(3), np.zeros(3), mu, var, 1e-3), rtol=1e-12, atol=1e-12)
    layer.params.update({k: rng.standard_normal(3) for k in layer.params})
    report = check_layer(layer, x, training=True, h=H, floor=FLOOR)
    assert report.ok, str(report)


def test_axis_keras_style_index_of_last_axis_is_accepted():
    layer = BatchNormalization(axis=3, dtype="float64")
    assert layer.forward(np.ones((2, 2, 2, 4)), training=True).shape == (2, 2, 2, 4)


# --- errors -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("momentum", [-0.1, 1.5, float("nan"), "0.9", True])
def test_bad_momentum(momentum):
    with pytest.raises(ValueError, match="momentum must be a number in \\[0, 1\\]"):
        BatchNormalization(momentum=momentum)


@pytest.mark.parametrize("epsilon", [0, -1e-3, float("inf")])
def test_bad_epsilon(epsilon):
    with pytest.raises(ValueError, match="epsilon must be a positive number"):
        BatchNormalization(epsilon=epsilon)


def test_only_the_channel_axis():
    with pytest.raises(ValueError, match="only the last \\(channel\\) axis"):
        BatchNormalization(axis=1).forward(np.ones((2, 3, 3, 4), "float32"))
    with pytest.raises(ValueError, match="axis must be an integer"):
        BatchNormalization(axis=1.0)


def test_wrong_dtype_and_shape():
    layer = BatchNormalization()
    with pytest.raises(TypeError, match="dtype float64 but the layer computes in float32"):
        layer.forward(np.ones((2, 3)))
    with pytest.raises(TypeError, match="must be a NumPy array"):
        layer.forward([[1.0, 2.0]])
    layer.forward(np.ones((2, 3), "float32"), training=True)
    with pytest.raises(ValueError, match=r"has shape \(2, 4\), expected \(batch,\) \+ \(3,\)"):
        layer.forward(np.ones((2, 4), "float32"))
    with pytest.raises(ValueError, match="expects \\(batch, C\\) or \\(batch, H, W, C\\)"):
        BatchNormalization().forward(np.ones((3,), "float32"))


def test_backward_errors():
    layer = BatchNormalization(dtype="float64")
    with pytest.raises(RuntimeError, match="backward\\(\\) called before forward\\(\\)"):
        layer.backward(np.ones((2, 3)))
    layer.forward(np.ones((4, 3)), training=True)
    with pytest.raises(ValueError, match="grad has shape"):
        layer.backward(np.ones((4, 2)))
    with pytest.raises(ValueError, match="the last forward saw \\(4, 3\\)"):
        layer.backward(np.ones((1, 3)))         # would broadcast silently without the check


def test_set_weights_errors():
    layer = BatchNormalization()
    layer.build((3,))
    with pytest.raises(ValueError, match="expects 4 arrays"):
        layer.set_weights([np.ones(3)] * 2)
    before = layer.get_weights()
    with pytest.raises(ValueError, match="weight 'moving_variance' must have shape \\(3,\\)"):
        layer.set_weights([np.full(3, 7.0)] * 3 + [np.ones(4)])
    for a, b in zip(before, layer.get_weights()):            # nothing was half-written
        np.testing.assert_array_equal(a, b)
