"""Losses: finite-difference gradients, values computed another way, stability, errors, and PyTorch parity.

The independent computations below deliberately take another road than losses.py:

    cross-entropy   -log(exp(z_y) / sum_j exp(z_j)) one row at a time with `math` (moderate logits only)
    ignore_index    the plain mean over the rows that are kept, selected with a boolean index
    class weights   sum_m w_{y_m} nll_m / sum_m w_{y_m}, as a Python loop
    binary CE       -(y log s + (1 - y) log(1 - s)), s = 1 / (1 + exp(-z))
    Dice            per class with boolean masks, D_k = (2 sum p_k[t = k] + s) / (sum p_k + #{t = k} + s)
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyseg import losses
from tinyseg.gradcheck import check_loss
from tinyseg.losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CEDiceLoss,
    DiceLoss,
    MeanSquaredError,
    SparseCategoricalCrossentropy,
)

FAST = settings(deadline=None, max_examples=25)
TORCH = settings(deadline=None, max_examples=15)
STRICT = dict(over="raise", invalid="raise", divide="raise", under="ignore")   # underflow to 0 is correct
IGNORE = 255


# ------------------------------------------------------------------------------------------------------------
# Data.
# ------------------------------------------------------------------------------------------------------------
@st.composite
def problems(draw, per_pixel=None, min_classes=2):
    """Logits (N, K) or (N, H, W, K), integer labels, and the loss options a test may use."""
    per_pixel = draw(st.booleans()) if per_pixel is None else per_pixel
    n = draw(st.integers(1, 3))
    spatial = (draw(st.integers(1, 4)), draw(st.integers(1, 4))) if per_pixel else ()
    k = draw(st.integers(min_classes, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n,) + spatial + (k,))
    labels = rng.integers(0, k, size=(n,) + spatial)
    ignore_index = draw(st.sampled_from([None, IGNORE, -1]))
    if ignore_index is not None:
        labels = np.where(rng.random(labels.shape) < 0.25, ignore_index, labels)
    class_weight = rng.uniform(0.2, 3.0, size=k) if draw(st.booleans()) else None
    return dict(z=z, labels=labels, k=k, ignore_index=ignore_index, class_weight=class_weight, seed=seed)


def one_hot(labels, k):
    return (labels[..., None] == np.arange(k)).astype(np.float64)


def assert_gradcheck(loss, y_true, y_pred):
    """Every entry of dL/dy_pred against central differences, to a relative error below 1e-6.

    floor=1e-4: the checker divides |a - n| by max(floor, |a| + |n|). The loss L is rounded to a double, an
    error of ~1e-16 * |L| that the central difference divides by 2h = 2e-5, so n carries an absolute error of
    about 1e-11. Entries that are nearly 0 (soft targets close to the prediction, y_pred close to y_true in MSE)
    can't be measured to 1e-6 relative; below 1e-4 they are held to an absolute error of 1e-4 * 1e-6 = 1e-10.
    """
    report = check_loss(loss, y_true, y_pred, max_entries=None, floor=1e-4)
    assert report.max_rel_error < 1e-6, str(report)
    assert report.n_checked == y_pred.size


def nll_rows(z, labels):
    """-log softmax(z)_y for each row, with math.exp / math.log (fine for |z| << 700)."""
    return [-math.log(math.exp(zr[y]) / sum(math.exp(v) for v in zr)) for zr, y in zip(z, labels)]


def dice_reference(p, labels, valid, smooth):
    """1 - mean_k D_k; p (M, K) probabilities of the kept pixels' rows only, labels (M,)."""
    p, labels = p[valid], labels[valid]
    scores = []
    for k in range(p.shape[1]):
        is_k = labels == k
        scores.append((2 * p[is_k, k].sum() + smooth) / (p[:, k].sum() + is_k.sum() + smooth))
    return 1 - np.mean(scores)


# ------------------------------------------------------------------------------------------------------------
# Gradient checks, every loss.
# ------------------------------------------------------------------------------------------------------------
@FAST
@given(prob=problems(), soft=st.booleans())
def test_categorical_crossentropy_gradient(prob, soft):
    z, k = prob["z"], prob["k"]
    if soft:     # soft targets: any probability vectors
        t = np.random.default_rng(prob["seed"]).random(z.shape)
        y = t / t.sum(axis=-1, keepdims=True)
    else:
        y = one_hot(np.random.default_rng(prob["seed"]).integers(0, k, z.shape[:-1]), k)
    assert_gradcheck(CategoricalCrossentropy(), y, z)


@FAST
@given(prob=problems())
def test_sparse_categorical_crossentropy_gradient(prob):
    loss = SparseCategoricalCrossentropy(class_weight=prob["class_weight"], ignore_index=prob["ignore_index"])
    if prob["ignore_index"] is not None and np.all(prob["labels"] == prob["ignore_index"]):
        prob["labels"].flat[0] = 0                        # the all-ignored case has its own test
    assert_gradcheck(loss, prob["labels"], prob["z"])


@FAST
@given(prob=problems(per_pixel=True), soft=st.booleans())
def test_binary_crossentropy_gradient_with_hw_masks(prob, soft):
    z = prob["z"][..., :1]                               # (N, H, W, 1) logits
    rng = np.random.default_rng(prob["seed"])
    mask = rng.random(z.shape[:-1]) if soft else rng.integers(0, 2, z.shape[:-1])   # (N, H, W)
    assert_gradcheck(BinaryCrossentropy(), mask, z)


@FAST
@given(prob=problems())
def test_mean_squared_error_gradient(prob):
    y = np.random.default_rng(prob["seed"]).standard_normal(prob["z"].shape)
    assert_gradcheck(MeanSquaredError(), y, prob["z"])


@FAST
@given(prob=problems(per_pixel=True), smooth=st.sampled_from([1.0, 1e-3]))
def test_dice_gradient_multiclass(prob, smooth):
    if prob["ignore_index"] is not None and np.all(prob["labels"] == prob["ignore_index"]):
        prob["labels"].flat[0] = 0
    assert_gradcheck(DiceLoss(smooth=smooth, ignore_index=prob["ignore_index"]), prob["labels"], prob["z"])


@FAST
@given(prob=problems(per_pixel=True))
def test_dice_gradient_binary(prob):
    mask = np.random.default_rng(prob["seed"]).integers(0, 2, prob["z"].shape[:-1])
    assert_gradcheck(DiceLoss(mode="binary"), mask, prob["z"][..., :1])


@FAST
@given(prob=problems(per_pixel=True), weights=st.tuples(st.floats(0.1, 2), st.floats(0.1, 2)))
def test_ce_dice_gradient(prob, weights):
    if prob["ignore_index"] is not None and np.all(prob["labels"] == prob["ignore_index"]):
        prob["labels"].flat[0] = 0
    loss = CEDiceLoss(ce_weight=weights[0], dice_weight=weights[1], class_weight=prob["class_weight"],
                      ignore_index=prob["ignore_index"])
    assert_gradcheck(loss, prob["labels"], prob["z"])


# ------------------------------------------------------------------------------------------------------------
# Values, computed another way.
# ------------------------------------------------------------------------------------------------------------
def test_hand_values():
    # equal logits: every class has probability 1/K, so cross-entropy is log K whatever the label
    assert CategoricalCrossentropy()(np.array([[0.0, 1.0, 0.0]]), np.zeros((1, 3))) == pytest.approx(math.log(3))
    assert SparseCategoricalCrossentropy()(np.array([1, 0]), np.zeros((2, 2))) == pytest.approx(math.log(2))
    assert BinaryCrossentropy()(np.array([[1.0], [0.0]]), np.zeros((2, 1))) == pytest.approx(math.log(2))
    # MSE: ((1-0)^2 + (2-4)^2) / 2 = 2.5, gradient 2 (y_pred - y_true) / M = [1, -2]... divided by M = 2
    mse = MeanSquaredError()
    assert mse(np.array([[0.0, 4.0]]), np.array([[1.0, 2.0]])) == 2.5
    np.testing.assert_array_equal(mse.backward(), [[1.0, -2.0]])
    # Dice, binary, two pixels, logits 0 (p = 1/2), truth [1, 0], smooth 1: I = 1/2, S = 1 + 1, D = 2/3
    assert DiceLoss(mode="binary")(np.array([[[1, 0]]]), np.zeros((1, 1, 2, 1))) == pytest.approx(1 / 3)
    # Dice, two classes, p = 1/2 everywhere, labels [0, 255] with 255 ignored: only pixel 0 counts.
    #   class 0: I = 1/2, S = 1/2 + 1 -> D = 2 / 2.5 = 0.8;   class 1 (absent): I = 0, S = 1/2 -> D = 1 / 1.5
    got = DiceLoss(ignore_index=255)(np.array([[[0, 255]]]), np.zeros((1, 1, 2, 2)))
    assert got == pytest.approx(1 - (0.8 + 2 / 3) / 2)


@FAST
@given(prob=problems(), soft=st.booleans())
def test_categorical_crossentropy_is_mean_negative_log_softmax(prob, soft):
    z, k = prob["z"], prob["k"]
    labels = np.random.default_rng(prob["seed"]).integers(0, k, z.shape[:-1])
    loss = CategoricalCrossentropy()(one_hot(labels, k), z)
    want = math.fsum(nll_rows(z.reshape(-1, k), labels.ravel())) / labels.size    # M = N or N*H*W
    assert loss == pytest.approx(want, rel=1e-12)


@FAST
@given(prob=problems())
def test_sparse_ce_ignore_and_class_weight_formulas(prob):
    z, labels, k = prob["z"].reshape(-1, prob["k"]), prob["labels"].ravel(), prob["k"]
    kept = labels != prob["ignore_index"] if prob["ignore_index"] is not None else np.ones(labels.shape, bool)
    if not kept.any():
        return
    nll = nll_rows(z[kept], labels[kept])
    # ignore_index: the plain mean over the pixels that are kept, computed on those rows alone
    unweighted = SparseCategoricalCrossentropy(ignore_index=prob["ignore_index"])(prob["labels"], prob["z"])
    assert unweighted == pytest.approx(math.fsum(nll) / kept.sum(), rel=1e-12)
    assert unweighted == pytest.approx(SparseCategoricalCrossentropy()(labels[kept], z[kept]), rel=1e-12)
    # class weights: sum w_y nll / sum w_y over the kept pixels
    w = prob["class_weight"] if prob["class_weight"] is not None else np.arange(1.0, k + 1)
    weighted = SparseCategoricalCrossentropy(class_weight=w, ignore_index=prob["ignore_index"])(
        prob["labels"], prob["z"])
    ws = [w[y] for y in labels[kept]]
    assert weighted == pytest.approx(math.fsum(wi * li for wi, li in zip(ws, nll)) / math.fsum(ws), rel=1e-12)


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4)])
def test_sparse_ce_all_ignored_is_zero_with_zero_gradient(shape):
    loss = SparseCategoricalCrossentropy(class_weight=[1.0, 2.0, 3.0, 4.0], ignore_index=IGNORE)
    z = np.random.default_rng(0).standard_normal(shape + (4,))
    assert loss(np.full(shape, IGNORE), z) == 0.0
    g = loss.backward()
    assert g.shape == z.shape and not g.any()


def test_sparse_ce_accepts_a_trailing_label_axis_and_equals_categorical():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((2, 3, 3, 4))
    labels = rng.integers(0, 4, (2, 3, 3))
    sparse = SparseCategoricalCrossentropy()
    dense = CategoricalCrossentropy()
    assert sparse(labels[..., None], z) == pytest.approx(dense(one_hot(labels, 4), z), rel=1e-14)
    np.testing.assert_allclose(sparse.backward(), dense.backward(), rtol=1e-14)


@FAST
@given(prob=problems(per_pixel=True), soft=st.booleans())
def test_binary_crossentropy_formula(prob, soft):
    z = prob["z"][..., :1]
    rng = np.random.default_rng(prob["seed"])
    y = rng.random(z.shape) if soft else rng.integers(0, 2, z.shape).astype(float)
    s = 1 / (1 + np.exp(-z))
    want = -np.mean(y * np.log(s) + (1 - y) * np.log(1 - s))
    assert BinaryCrossentropy()(y, z) == pytest.approx(want, rel=1e-12)
    assert BinaryCrossentropy()(y[..., 0], z) == pytest.approx(want, rel=1e-12)      # (N, H, W) masks


@FAST
@given(prob=problems(per_pixel=True), smooth=st.sampled_from([1.0, 0.1]))
def test_dice_multiclass_formula(prob, smooth):
    z, labels = prob["z"].reshape(-1, prob["k"]), prob["labels"].ravel()
    kept = labels != prob["ignore_index"] if prob["ignore_index"] is not None else np.ones(labels.shape, bool)
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    got = DiceLoss(smooth=smooth, ignore_index=prob["ignore_index"])(prob["labels"], prob["z"])
    assert got == pytest.approx(dice_reference(p, labels, kept, smooth), rel=1e-12, abs=1e-15)


def test_ce_dice_is_the_weighted_sum():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((2, 4, 4, 3))
    labels = rng.integers(0, 3, (2, 4, 4))
    combo = CEDiceLoss(ce_weight=0.3, dice_weight=2.0)
    ce, dice = SparseCategoricalCrossentropy(), DiceLoss()
    assert combo(labels, z) == pytest.approx(0.3 * ce(labels, z) + 2.0 * dice(labels, z), rel=1e-14)
    np.testing.assert_allclose(combo.backward(), 0.3 * ce.backward() + 2.0 * dice.backward(), rtol=1e-14)


def test_perfect_binary_dice_is_zero():
    mask = np.array([[[1, 0], [0, 1]]])
    z = np.where(mask, 1e4, -1e4)[..., None].astype(float)        # sigmoid = exactly 1 and 0
    assert DiceLoss(mode="binary")(mask, z) == 0.0


# ------------------------------------------------------------------------------------------------------------
# Stability: logits of 1e4.
# ------------------------------------------------------------------------------------------------------------
def test_huge_logits_give_exact_finite_losses_and_gradients():
    z = np.array([[1e4, 0.0, -1e4]])
    with np.errstate(**STRICT):
        # the true class has logit 0, another 1e4: -log p = 1e4 exactly (a log(p + 1e-7) would give ~16.1)
        cce = CategoricalCrossentropy()
        assert cce(np.array([[0.0, 1.0, 0.0]]), z) == pytest.approx(1e4, rel=1e-15)
        np.testing.assert_allclose(cce.backward(), [[1.0, -1.0, 0.0]], atol=1e-300)
        sce = SparseCategoricalCrossentropy()
        assert sce(np.array([1]), z) == pytest.approx(1e4, rel=1e-15)
        assert sce(np.array([0]), z) == 0.0
        bce = BinaryCrossentropy()
        assert bce(np.array([[0.0], [1.0], [1.0]]), np.array([[1e4], [-1e4], [1e4]])) == pytest.approx(2e4 / 3)
        g = bce.backward()
        np.testing.assert_allclose(g, [[1 / 3], [-1 / 3], [0.0]])


@pytest.mark.parametrize("make, target", [
    (CategoricalCrossentropy, "one-hot"),
    (SparseCategoricalCrossentropy, "labels"),
    (lambda: SparseCategoricalCrossentropy(ignore_index=IGNORE), "labels with ignored"),
    (BinaryCrossentropy, "mask"),
    (lambda: DiceLoss(ignore_index=IGNORE), "labels with ignored"),
    (lambda: DiceLoss(mode="binary"), "mask"),
    (lambda: CEDiceLoss(ignore_index=IGNORE), "labels with ignored"),
    (MeanSquaredError, "values"),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_loss_is_finite_for_logits_of_1e4(make, target, dtype):
    rng = np.random.default_rng(0)
    k = 1 if target == "mask" else 3
    z = (1e4 * rng.choice([-1.0, 0.0, 1.0], size=(2, 3, 3, k))).astype(dtype)
    labels = rng.integers(0, 3, (2, 3, 3))
    y_true = {"one-hot": lambda: one_hot(labels, 3),
              "labels": lambda: labels,
              "labels with ignored": lambda: np.where(rng.random(labels.shape) < 0.2, IGNORE, labels),
              "mask": lambda: labels % 2,
              "values": lambda: rng.standard_normal(z.shape)}[target]()
    loss = make()
    with np.errstate(**STRICT):
        value = loss(y_true, z)
        g = loss.backward()
    assert np.isfinite(value) and np.all(np.isfinite(g))
    assert g.shape == z.shape and g.dtype == dtype


# ------------------------------------------------------------------------------------------------------------
# Errors.
# ------------------------------------------------------------------------------------------------------------
def test_integer_labels_to_categorical_crossentropy_point_to_the_fix():
    z = np.zeros((2, 4, 4, 3))
    for labels in (np.zeros((2, 4, 4), int), np.zeros((2, 4, 4, 1), int), np.zeros((2, 4, 4, 3), int),
                   np.zeros((2, 4, 4), float)):
        with pytest.raises(TypeError) as info:
            CategoricalCrossentropy()(labels, z)
        assert "sparse_categorical_crossentropy" in str(info.value)
        assert "to_categorical" in str(info.value)


@pytest.mark.parametrize("make", [SparseCategoricalCrossentropy, DiceLoss])
def test_labels_out_of_range(make):
    z = np.zeros((1, 2, 2, 3))
    with pytest.raises(ValueError, match=r"label 3 outside \[0, 3\)"):
        make()(np.array([[[0, 1], [2, 3]]]), z)
    with pytest.raises(ValueError, match=r"label -1 outside \[0, 3\)"):
        make()(np.array([[[0, -1], [2, 1]]]), z)
    with pytest.raises(ValueError, match=r"label 255 outside \[0, 3\)"):      # 255 without ignore_index=255
        make()(np.array([[[0, 255], [2, 1]]]), z)
    make(ignore_index=255)(np.array([[[0, 255], [2, 1]]]), z)               # with it: fine


@pytest.mark.parametrize("make, y_true", [
    (CategoricalCrossentropy, np.eye(3)[[0, 1]]),
    (SparseCategoricalCrossentropy, np.array([0, 1])),
    (BinaryCrossentropy, np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])),
    (MeanSquaredError, np.zeros((2, 3))),
    (CEDiceLoss, np.array([0, 1])),
])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_y_pred(make, y_true, bad):
    z = np.zeros((2, 3))
    z[1, 2] = bad
    with pytest.raises(ValueError, match="y_pred contains NaN or inf"):
        make()(y_true, z)


def test_shape_mismatches():
    with pytest.raises(ValueError, match=r"y_true has shape \(2, 4\), expected \(2, 3\)"):
        CategoricalCrossentropy()(np.eye(4)[[0, 1]], np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"y_true has shape \(2, 4, 4\); expected \(2, 4, 5\)"):
        SparseCategoricalCrossentropy()(np.zeros((2, 4, 4), int), np.zeros((2, 4, 5, 3)))
    with pytest.raises(ValueError, match=r"y_true has shape \(2, 4, 5\), expected \(2, 4, 4, 1\)"):
        BinaryCrossentropy()(np.zeros((2, 4, 5)), np.zeros((2, 4, 4, 1)))
    with pytest.raises(ValueError, match=r"y_true has shape \(3,\), expected \(3, 1\)"):
        MeanSquaredError()(np.zeros(3), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="expects one logit channel"):
        DiceLoss(mode="binary")(np.zeros((1, 2, 2), int), np.zeros((1, 2, 2, 2)))
    with pytest.raises(ValueError, match="class_weight has 2 entries, y_pred 3 classes"):
        SparseCategoricalCrossentropy(class_weight=[1, 2])(np.array([0]), np.zeros((1, 3)))


def test_other_bad_inputs():
    with pytest.raises(ValueError, match=r"binary masks as 0/1, not 0/255"):
        BinaryCrossentropy()(np.array([[[0, 255]]]), np.zeros((1, 1, 2, 1)))
    with pytest.raises(ValueError, match=r"binary masks as 0/1, not 0/255"):
        DiceLoss(mode="binary")(np.array([[[0, 255]]]), np.zeros((1, 1, 2, 1)))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        CategoricalCrossentropy()(np.array([[0.0, 2.0]]), np.zeros((1, 2)))
    with pytest.raises(TypeError, match="looks one-hot"):
        SparseCategoricalCrossentropy()(np.eye(3)[[0, 1]], np.zeros((2, 3)))
    with pytest.raises(TypeError, match="must hold integer class indices"):
        SparseCategoricalCrossentropy()(np.array([0.0, 1.0]), np.zeros((2, 3)))
    with pytest.raises(TypeError, match="y_pred must be a float array"):
        MeanSquaredError()(np.zeros(3), np.zeros(3, int))
    with pytest.raises(ValueError, match="class_weight must be a 1-D sequence of non-negative"):
        SparseCategoricalCrossentropy(class_weight=[1.0, -1.0])
    with pytest.raises(ValueError, match="smooth must be > 0"):
        DiceLoss(smooth=0)
    with pytest.raises(ValueError, match="mode must be 'multiclass' or 'binary'"):
        DiceLoss(mode="multilabel")


@pytest.mark.parametrize("make", [SparseCategoricalCrossentropy, CEDiceLoss])
@pytest.mark.parametrize("weights, match", [
    ([1e39, 1, 1], r"class_weight holds 1e\+39; each weight must be at most 1.58e\+29.*divide them all"),
    ([1, 1e30, 1], r"class_weight holds 1e\+30; each weight must be at most"),
    ([1e-50, 1, 1], r"class_weight holds 1e-50, which float32 rounds to 0"),
])
def test_class_weights_beyond_float32_are_refused_by_name(make, weights, match):
    """[1e39, 1, 1] is finite in float64 but inf in a float32 model's loss, which was then inf/inf = NaN."""
    with pytest.raises(ValueError, match=match):
        make(class_weight=weights)


def test_the_largest_class_weight_allowed_keeps_a_float32_loss_finite():
    from tinyseg.losses.base import MAX_POSITIONS
    top = float(np.finfo(np.float32).max) / MAX_POSITIONS
    loss = SparseCategoricalCrossentropy(class_weight=[top, 1.0, 1.0])
    z = np.random.default_rng(0).standard_normal((4, 8, 8, 3)).astype(np.float32)
    value = loss(np.zeros((4, 8, 8), int), z)
    assert np.isfinite(value) and np.all(np.isfinite(loss.backward()))


def test_loss_names():
    for name, cls in [("categorical_crossentropy", CategoricalCrossentropy), ("mse", MeanSquaredError),
                      ("sparse_categorical_crossentropy", SparseCategoricalCrossentropy), ("dice", DiceLoss),
                      ("binary_crossentropy", BinaryCrossentropy), ("mean_squared_error", MeanSquaredError),
                      ("ce_dice", CEDiceLoss), ("Binary_Crossentropy", BinaryCrossentropy)]:
        assert type(losses.get(name)) is cls
    loss = DiceLoss()
    assert losses.get(loss) is loss
    for bad in ("focal", "crossentropy", None, 3):
        with pytest.raises(ValueError, match=r"loss must be one of \['binary_crossentropy', .*got"):
            losses.get(bad)


# ------------------------------------------------------------------------------------------------------------
# PyTorch parity (float64). PyTorch wants class scores on axis 1: (N, H, W, K) -> (N, K, H, W), here only.
# ------------------------------------------------------------------------------------------------------------
def nhwk_to_nkhw(a):
    return np.ascontiguousarray(np.moveaxis(a, -1, 1))


def nkhw_to_nhwk(a):
    return np.ascontiguousarray(np.moveaxis(a, 1, -1))


def rel(ours, theirs):
    theirs = np.asarray(theirs)
    return float(np.max(np.abs(np.asarray(ours) - theirs)) / max(np.max(np.abs(theirs)), 1e-300))


def torch_and_functional():
    """(torch, torch.nn.functional); the test is skipped where PyTorch is not installed."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    return torch, F


def assert_matches_torch(torch, name, loss, y_true, z, torch_loss_of_nkhw):
    """The loss's value and its gradient dL/dz agree with torch_loss_of_nkhw(logits with classes on axis 1),
    a scalar tensor, and its autograd gradient: relative errors at most 1e-10 (float64 on both sides)."""
    value = loss(y_true, z)
    grad = loss.backward()
    tz = torch.tensor(nhwk_to_nkhw(z), requires_grad=True)
    tl = torch_loss_of_nkhw(tz)
    tl.backward()
    errors = rel(value, tl.item()), rel(grad, nkhw_to_nhwk(tz.grad.numpy()))
    print(f"{name}: value {errors[0]:.1e}, grad {errors[1]:.1e}")
    assert max(errors) <= 1e-10, errors


@TORCH
@given(prob=problems())
def test_sparse_ce_matches_torch_cross_entropy_with_weight_and_ignore_index(prob):
    torch, F = torch_and_functional()
    if prob["ignore_index"] is not None and np.all(prob["labels"] == prob["ignore_index"]):
        prob["labels"].flat[0] = 0              # PyTorch returns NaN (0/0) for an all-ignored batch; we return 0
    weight = None if prob["class_weight"] is None else torch.tensor(prob["class_weight"])
    ignore = -100 if prob["ignore_index"] is None else prob["ignore_index"]
    loss = SparseCategoricalCrossentropy(class_weight=prob["class_weight"], ignore_index=prob["ignore_index"])
    assert_matches_torch(torch, "sparse_ce", loss, prob["labels"], prob["z"],
                         lambda tz: F.cross_entropy(tz, torch.tensor(prob["labels"]), weight=weight,
                                                    ignore_index=ignore))


@TORCH
@given(prob=problems())
def test_categorical_ce_matches_torch_cross_entropy_with_probabilities(prob):
    torch, F = torch_and_functional()
    t = np.random.default_rng(prob["seed"]).random(prob["z"].shape)
    y = t / t.sum(axis=-1, keepdims=True)
    assert_matches_torch(torch, "categorical_ce", CategoricalCrossentropy(), y, prob["z"],
                         lambda tz: F.cross_entropy(tz, torch.tensor(nhwk_to_nkhw(y))))


@TORCH
@given(prob=problems(per_pixel=True), soft=st.booleans())
def test_binary_ce_matches_torch(prob, soft):
    torch, F = torch_and_functional()
    z = prob["z"][..., :1]
    rng = np.random.default_rng(prob["seed"])
    y = rng.random(z.shape) if soft else rng.integers(0, 2, z.shape).astype(np.float64)
    assert_matches_torch(torch, "binary_ce", BinaryCrossentropy(), y, z,
                         lambda tz: F.binary_cross_entropy_with_logits(tz, torch.tensor(nhwk_to_nkhw(y))))


@TORCH
@given(prob=problems())
def test_mse_matches_torch(prob):
    torch, F = torch_and_functional()
    y = np.random.default_rng(prob["seed"]).standard_normal(prob["z"].shape)
    assert_matches_torch(torch, "mse", MeanSquaredError(), y, prob["z"],
                         lambda tz: F.mse_loss(tz, torch.tensor(nhwk_to_nkhw(y))))


def torch_dice(torch, logits_nkhw, labels, ignore_index, smooth, binary):
    """Soft Dice written directly in torch; autograd supplies the gradient the library derives by hand."""
    labels = torch.tensor(labels)
    valid = torch.ones_like(labels, dtype=torch.bool) if ignore_index is None else labels != ignore_index
    if binary:
        p = torch.sigmoid(logits_nkhw)
        t = torch.where(valid, labels, 0).to(p.dtype).unsqueeze(1)
    else:
        p = torch.softmax(logits_nkhw, dim=1)
        t = torch.nn.functional.one_hot(torch.where(valid, labels, 0), p.shape[1]).movedim(-1, 1).to(p.dtype)
    v = valid.unsqueeze(1).to(p.dtype)
    dims = (0, 2, 3)
    inter = (p * t * v).sum(dims)
    total = (p * v).sum(dims) + (t * v).sum(dims)
    return 1 - ((2 * inter + smooth) / (total + smooth)).mean()


@TORCH
@given(prob=problems(per_pixel=True), binary=st.booleans(), smooth=st.sampled_from([1.0, 0.01]))
def test_dice_matches_torch_autograd(prob, binary, smooth):
    torch = pytest.importorskip("torch")
    labels, z, ignore = prob["labels"], prob["z"], prob["ignore_index"]
    if binary:
        labels = np.where(labels == ignore, ignore, labels % 2) if ignore is not None else labels % 2
        z = z[..., :1]
    loss = DiceLoss(smooth=smooth, ignore_index=ignore, mode="binary" if binary else "multiclass")
    assert_matches_torch(torch, "dice_binary" if binary else "dice", loss, labels, z,
                         lambda tz: torch_dice(torch, tz, labels, ignore, smooth, binary))


@TORCH
@given(prob=problems(per_pixel=True))
def test_ce_dice_matches_torch(prob):
    torch, F = torch_and_functional()
    labels, ignore = prob["labels"], prob["ignore_index"]
    if ignore is not None and np.all(labels == ignore):
        labels.flat[0] = 0
    weight = None if prob["class_weight"] is None else torch.tensor(prob["class_weight"])
    loss = CEDiceLoss(ce_weight=0.7, dice_weight=1.3, class_weight=prob["class_weight"], ignore_index=ignore)

    def reference(tz):
        ce = F.cross_entropy(tz, torch.tensor(labels), weight=weight, ignore_index=-100 if ignore is None else ignore)
        return 0.7 * ce + 1.3 * torch_dice(torch, tz, labels, ignore, 1.0, False)

    assert_matches_torch(torch, "ce_dice", loss, labels, prob["z"], reference)


def test_cross_entropy_of_large_logits_keeps_its_digits():
    """Logits near 1000 with a loss near 0.06: log p = z - logsumexp(z) must not lose the loss's digits to
    the rounding of a float32 log-sum-exp of 1000 (an error of about 6e-5 there, 1e-3 of the loss)."""
    from tinyseg.losses.crossentropy import CategoricalCrossentropy, SparseCategoricalCrossentropy
    rng = np.random.default_rng(0)
    z = (1000 + rng.standard_normal((32, 10))).astype(np.float32)
    z[:, 0] += 5
    labels = np.zeros(32, int)
    z64 = z.astype(np.float64)
    lse = z64.max(axis=1) + np.log(np.exp(z64 - z64.max(axis=1, keepdims=True)).sum(axis=1))
    want = float(np.mean(lse - z64[:, 0]))
    assert CategoricalCrossentropy().forward(np.eye(10, dtype=np.float32)[labels], z) == pytest.approx(want, rel=1e-6)
    assert SparseCategoricalCrossentropy().forward(labels, z) == pytest.approx(want, rel=1e-6)
