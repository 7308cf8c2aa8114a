"""Losses with sample weights (fit's sample_weight / class_weight): gradients, values, and bad weights.

The reduction is Keras 3's default, "sum_over_batch_size": L = sum_m s_m l_m / M, M the number of positions
(losses/base.py). The values are computed here another way: per-position losses from a row-by-row loop
(nll_rows), weighted and divided by M by hand, and PyTorch's reduction='none' losses weighted the same way.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_losses import IGNORE, assert_gradcheck, nll_rows, one_hot, problems
from tinyseg.losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CEDiceLoss,
    DiceLoss,
    MeanSquaredError,
    SparseCategoricalCrossentropy,
)

FAST = settings(deadline=None, max_examples=20)


class Weighted:
    """loss.forward(y_true, y_pred, sample_weight=s) as a two-argument loss, for the gradient checker."""

    def __init__(self, loss, s):
        self.loss, self.s = loss, s

    def forward(self, y_true, y_pred):
        return self.loss.forward(y_true, y_pred, sample_weight=self.s)

    def backward(self):
        return self.loss.backward()


def weights_for(prob, per_pixel_weights):
    """Weights in [0, 3), some exactly 0: one per sample (N,) or one per position (N, ...)."""
    rng = np.random.default_rng(prob["seed"] + 1)
    shape = prob["z"].shape[:1] if not per_pixel_weights else prob["z"].shape[:-1]
    s = rng.uniform(0, 3, shape)
    s[rng.random(shape) < 0.2] = 0.0
    return s


def some_labels_kept(prob):
    if prob["ignore_index"] is not None and np.all(prob["labels"] == prob["ignore_index"]):
        prob["labels"].flat[0] = 0


# --- gradient checks (float64 central differences, relative error < 1e-6) ----------------------------------
@FAST
@given(prob=problems(), per_pixel=st.booleans())
def test_weighted_categorical_crossentropy_gradient(prob, per_pixel):
    y = one_hot(np.random.default_rng(prob["seed"]).integers(0, prob["k"], prob["z"].shape[:-1]), prob["k"])
    assert_gradcheck(Weighted(CategoricalCrossentropy(), weights_for(prob, per_pixel)), y, prob["z"])


@FAST
@given(prob=problems(), per_pixel=st.booleans())
def test_weighted_sparse_categorical_crossentropy_gradient(prob, per_pixel):
    some_labels_kept(prob)
    loss = SparseCategoricalCrossentropy(class_weight=prob["class_weight"], ignore_index=prob["ignore_index"])
    assert_gradcheck(Weighted(loss, weights_for(prob, per_pixel)), prob["labels"], prob["z"])


@FAST
@given(prob=problems(per_pixel=True), per_pixel=st.booleans())
def test_weighted_binary_crossentropy_gradient(prob, per_pixel):
    mask = np.random.default_rng(prob["seed"]).integers(0, 2, prob["z"].shape[:-1])
    assert_gradcheck(Weighted(BinaryCrossentropy(), weights_for(prob, per_pixel)), mask, prob["z"][..., :1])


@FAST
@given(prob=problems(), per_pixel=st.booleans())
def test_weighted_mean_squared_error_gradient(prob, per_pixel):
    y = np.random.default_rng(prob["seed"]).standard_normal(prob["z"].shape)
    assert_gradcheck(Weighted(MeanSquaredError(), weights_for(prob, per_pixel)), y, prob["z"])


@FAST
@given(prob=problems(per_pixel=True), per_pixel=st.booleans())
def test_weighted_dice_and_ce_dice_gradients(prob, per_pixel):
    some_labels_kept(prob)
    s = weights_for(prob, per_pixel)
    assert_gradcheck(Weighted(DiceLoss(ignore_index=prob["ignore_index"]), s), prob["labels"], prob["z"])
    loss = CEDiceLoss(class_weight=prob["class_weight"], ignore_index=prob["ignore_index"])
    assert_gradcheck(Weighted(loss, s), prob["labels"], prob["z"])


# --- values: Keras's sum_over_batch_size, computed another way --------------------------------------------
@FAST
@given(prob=problems(), per_pixel=st.booleans())
def test_weighted_crossentropy_is_the_weighted_sum_over_the_number_of_positions(prob, per_pixel):
    z, labels, k = prob["z"], prob["labels"] % prob["k"], prob["k"]     # no ignored labels here
    s = weights_for(prob, per_pixel)
    nll = np.array(nll_rows(z.reshape(-1, k), labels.reshape(-1)))
    s_per_position = np.broadcast_to(s.reshape(s.shape + (1,) * (labels.ndim - s.ndim)), labels.shape).reshape(-1)
    expected = sum(w * v for w, v in zip(s_per_position, nll)) / len(nll)       # divided by M, not by sum(s)
    assert SparseCategoricalCrossentropy()(labels, z, sample_weight=s) == pytest.approx(expected, rel=1e-12)
    assert CategoricalCrossentropy()(one_hot(labels, k), z, sample_weight=s) == pytest.approx(expected, rel=1e-12)


def test_per_sample_weights_equal_the_same_weight_on_every_pixel_and_ones_change_nothing():
    rng = np.random.default_rng(0)
    z, labels, mask = rng.standard_normal((3, 4, 5, 3)), rng.integers(0, 3, (3, 4, 5)), rng.integers(0, 2, (3, 4, 5))
    s = np.array([0.5, 2.0, 0.0])
    per_pixel = np.broadcast_to(s[:, None, None], labels.shape)
    cases = [(SparseCategoricalCrossentropy(ignore_index=IGNORE), labels, z), (CategoricalCrossentropy(),
             one_hot(labels, 3), z), (BinaryCrossentropy(), mask, z[..., :1]), (MeanSquaredError(), z * 0.5, z),
             (DiceLoss(), labels, z), (CEDiceLoss(), labels, z)]
    for loss, y, pred in cases:
        a, ga = loss(y, pred, sample_weight=s), loss.backward()
        b, gb = loss(y, pred, sample_weight=per_pixel), loss.backward()
        c, gc = loss(y, pred, sample_weight=per_pixel[..., None]), loss.backward()     # (N, H, W, 1) too
        assert a == pytest.approx(b, rel=1e-12) and c == pytest.approx(b, rel=1e-12), loss.name
        np.testing.assert_allclose(ga, gb, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(gc, gb, rtol=1e-12, atol=1e-15)
        d, gd = loss(y, pred, sample_weight=np.ones(3)), loss.backward()
        e, ge = loss(y, pred), loss.backward()
        assert d == pytest.approx(e, rel=1e-12), loss.name
        np.testing.assert_allclose(gd, ge, rtol=1e-12, atol=1e-15)


def test_sample_weights_scale_terms_but_keep_the_losss_own_denominator():
    """SparseCategoricalCrossentropy with ignore_index: sum over kept pixels of s * nll / (number kept)."""
    rng = np.random.default_rng(1)
    z, labels = rng.standard_normal((2, 3, 3, 4)), rng.integers(0, 4, (2, 3, 3))
    labels[0, 0, :] = IGNORE
    s = rng.uniform(0, 2, labels.shape)
    keep = labels != IGNORE
    nll = np.array(nll_rows(z[keep], labels[keep]))
    expected = (s[keep] * nll).sum() / keep.sum()
    assert SparseCategoricalCrossentropy(ignore_index=IGNORE)(labels, z, s) == pytest.approx(expected, rel=1e-12)


def test_weighted_dice_puts_the_weights_inside_its_sums():
    """Binary Dice with weights u: (2 sum u p t + s) / (sum u p + sum u t + s), computed by hand."""
    rng = np.random.default_rng(2)
    z, t = rng.standard_normal((2, 3, 3, 1)), rng.integers(0, 2, (2, 3, 3))
    u = rng.uniform(0, 2, t.shape)
    p = 1 / (1 + np.exp(-z[..., 0]))
    expected = 1 - (2 * (u * p * t).sum() + 1) / ((u * p).sum() + (u * t).sum() + 1)
    assert DiceLoss(mode="binary")(t, z, sample_weight=u) == pytest.approx(expected, rel=1e-12)


@settings(deadline=None, max_examples=15)
@given(prob=problems(), per_pixel=st.booleans())
def test_weighted_crossentropy_matches_torch(prob, per_pixel):
    torch = pytest.importorskip("torch")
    z, labels, k = prob["z"], prob["labels"] % prob["k"], prob["k"]
    s = weights_for(prob, per_pixel)
    tz = torch.tensor(z.reshape(-1, k), requires_grad=True)
    nll = torch.nn.functional.cross_entropy(tz, torch.tensor(labels.reshape(-1)), reduction="none")
    ts = torch.tensor(np.broadcast_to(s.reshape(s.shape + (1,) * (labels.ndim - s.ndim)), labels.shape).reshape(-1))
    expected = (nll * ts).sum() / nll.numel()
    expected.backward()
    loss = SparseCategoricalCrossentropy()
    assert loss(labels, z, sample_weight=s) == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(loss.backward().reshape(-1, k), tz.grad.numpy(), rtol=1e-10, atol=1e-15)


# --- bad weights ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("s, error, match", [
    (np.ones((2, 3)), ValueError, r"sample_weight has shape \(2, 3\); expected one weight per sample \(2,\) or one "
                                  r"per position \(2, 3, 4\)"),
    (np.ones(3), ValueError, "sample_weight has shape"),
    (np.ones((2, 3, 4, 2)), ValueError, "sample_weight has shape"),
    (np.array([1.0, -0.5]), ValueError, "sample_weight must be >= 0"),
    (np.array([1.0, np.nan]), ValueError, "sample_weight contains NaN or inf"),
    (np.array([1.0, np.inf]), ValueError, "sample_weight contains NaN or inf"),
    (np.array(["a", "b"]), TypeError, "sample_weight must hold real numbers"),
])
def test_bad_sample_weights_are_refused_by_name(s, error, match):
    z, labels = np.zeros((2, 3, 4, 3)), np.zeros((2, 3, 4), int)
    for loss in (SparseCategoricalCrossentropy(), DiceLoss(), CategoricalCrossentropy()):
        y = one_hot(labels, 3) if isinstance(loss, CategoricalCrossentropy) else labels
        with pytest.raises(error, match=match):
            loss(y, z, sample_weight=s)
