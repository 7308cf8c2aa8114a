"""The gradient checker itself: it must pass correct code, fail wrong code, and say how much it checked.

A checker that cannot fail proves nothing, so most tests here feed it a layer with a deliberately wrong
backward and demand that it notices.
"""
import numpy as np
import pytest

from tinyseg.gradcheck import check_layer, check_loss
from tinyseg.layers import Dense
from tinyseg.losses import MeanSquaredError


def dense(d_in=5, units=3, seed=0, cls=Dense, **kwargs):
    layer = cls(units, dtype="float64", **kwargs)
    layer.build((d_in,))
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.standard_normal(p.shape) for p in layer.params.values()])
    return layer


X = np.random.default_rng(1).standard_normal((4, 5))


class KernelGradOffByOnePercent(Dense):
    def backward_linear(self, grad):
        dx = super().backward_linear(grad)
        self.grads["kernel"] = self.grads["kernel"] * 1.01
        return dx


class InputGradWrongSign(Dense):
    def backward_linear(self, grad):
        return -super().backward_linear(grad)


class InputGradForgotTranspose(Dense):
    """dx = G @ W instead of G @ W^T: with a square kernel the shapes still fit, so only the values are wrong."""

    def backward_linear(self, grad):
        super().backward_linear(grad)
        return grad @ self.params["kernel"]


class BiasGradFromFirstSampleOnly(Dense):
    def backward_linear(self, grad):
        dx = super().backward_linear(grad)
        self.grads["bias"] = grad[0].copy()              # forgot to sum over the batch
        return dx


def test_a_correct_layer_passes():
    report = check_layer(dense(), X)
    assert report.ok and report.n_failed == 0
    assert report.max_rel_error < 1e-7


@pytest.mark.parametrize("cls, bad_array, expected_error", [
    (KernelGradOffByOnePercent, "kernel", 0.01 / 2.01),     # |1.01a - a| / (|1.01a| + |a|)
    (InputGradWrongSign, "input", 1.0),                     # |-a - a| / (|-a| + |a|)
])
def test_a_wrong_gradient_is_caught_and_measured(cls, bad_array, expected_error):
    report = check_layer(dense(cls=cls), X)
    assert not report.ok
    worst, n, failed = report.per_array[bad_array]
    assert failed == n == report.n_failed                  # every entry of that array, and nothing else
    assert worst == pytest.approx(expected_error, rel=1e-4)
    assert report.max_rel_error == pytest.approx(expected_error, rel=1e-4)
    for name, (worst_other, _, failed_other) in report.per_array.items():
        if name != bad_array:
            assert failed_other == 0 and worst_other < 1e-7
    assert f"{report.n_failed} above" in str(report)


@pytest.mark.parametrize("cls", [InputGradForgotTranspose, BiasGradFromFirstSampleOnly])
def test_other_classic_mistakes_are_caught(cls):
    report = check_layer(dense(units=5, cls=cls), X)
    assert not report.ok and report.n_failed > 0 and report.max_rel_error > 1e-2


def test_it_counts_the_entries_it_checked():
    # Dense(3) on (4, 5): input 20, kernel 15, bias 3 entries
    report = check_layer(dense(), X)
    assert report.n_checked == 20 + 15 + 3
    assert {k: v[1] for k, v in report.per_array.items()} == {"input": 20, "kernel": 15, "bias": 3}
    assert "over 38 partial derivatives" in str(report)
    # max_entries caps each array separately
    report = check_layer(dense(), X, max_entries=7)
    assert {k: v[1] for k, v in report.per_array.items()} == {"input": 7, "kernel": 7, "bias": 3}
    assert report.n_checked == 17


def test_nothing_checked_is_not_ok():
    report = check_layer(dense(), X)
    report.n_checked, report.n_failed = 0, 0
    assert not report.ok


def test_it_leaves_inputs_and_weights_as_it_found_them():
    layer = dense()
    x = X.copy()
    before = [w.copy() for w in layer.get_weights()]
    check_layer(layer, x)
    np.testing.assert_array_equal(x, X)
    for w, b in zip(layer.get_weights(), before):
        np.testing.assert_array_equal(w, b)


def test_it_refuses_float32():
    layer = Dense(3, dtype="float32")
    with pytest.raises(TypeError, match="x must be float64 for a meaningful check, got float32"):
        check_layer(layer, X.astype(np.float32))
    with pytest.raises(TypeError, match="y_pred must be float64 for a meaningful check, got float32"):
        check_loss(MeanSquaredError(), np.zeros((4, 5)), X.astype(np.float32))


class HalfMSE(MeanSquaredError):
    """Forgets the 2 in d(d^2) = 2 d."""

    def backward(self):
        return super().backward() / 2


def test_check_loss_passes_a_correct_loss_and_fails_a_wrong_one():
    y = np.random.default_rng(2).standard_normal(X.shape)
    good = check_loss(MeanSquaredError(), y, X)
    assert good.ok and good.n_checked == X.size and good.max_rel_error < 1e-7
    bad = check_loss(HalfMSE(), y, X)
    assert not bad.ok and bad.n_failed == X.size
    assert bad.max_rel_error == pytest.approx(1 / 3, rel=1e-4)           # |a/2 - a| / (|a/2| + |a|)
