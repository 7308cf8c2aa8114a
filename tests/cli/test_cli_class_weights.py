"""`tinyseg train --class-weights median|inverse` weights the loss it trains with, not only the line it prints.

A run of one step (four training images, --batch-size 4, one epoch, no augmentation) records in history.json
the loss of its only batch at the initial weights. That batch is rebuilt here (the images / 255) and the
initial U-Net too (tinyseg.set_random_seed(--seed), then UNet with the run's arguments), and the loss is
computed by hand in NumPy from the model's logits: the class-weighted cross-entropy

    CE = sum_m w_{y_m} (-log softmax(z_m)_{y_m}) / sum_m w_{y_m}

plus, for the default --loss ce_dice, the soft Dice 1 - mean_k (2 I_k + 1) / (S_k + 1). The weighted run's
loss equals the weighted loss by hand, and differs from the unweighted run's, which equals the unweighted
loss by hand."""
import json

import numpy as np
import pytest
from PIL import Image

import tinyseg
from tinyseg.cli import main
from tinyseg.models.unet import UNet

K, SIZE = 4, (16, 24)
RUN = ["--epochs", "1", "--batch-size", "4", "--base-filters", "4", "--depth", "2", "--no-batch-norm",
       "--no-augment", "--seed", "3", "--quiet"]


def _write(folder, n, seed):
    """n images and masks: mostly class 0, a few small blocks of classes 1..3 (imbalanced: weights != 1)."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i in range(n):
        mask = np.zeros(SIZE, np.uint8)
        for c, side in ((1, 8), (2, 4), (3, 2)):
            top, left = rng.integers(0, SIZE[0] - side), rng.integers(0, SIZE[1] - side)
            mask[top:top + side, left:left + side] = c
        image = rng.integers(0, 256, SIZE + (3,), dtype=np.uint8)
        Image.fromarray(image).save(folder / "images" / f"s{i}.png")
        Image.fromarray(mask).save(folder / "masks" / f"s{i}.png")
    return folder / "images", folder / "masks"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("class_weights")
    return root, _write(root / "train", 4, seed=0), _write(root / "val", 2, seed=1)


def _first_batch_loss(folders, loss, weights):
    """(the loss history.json records for the run's only step, the class weights it records)."""
    root, train, val = folders
    out = root / f"{loss}-{weights}"
    assert main(["train", "--data", *map(str, train), "--val-data", *map(str, val), "--loss", loss,
                 "--class-weights", weights, "--out", str(out)] + RUN) == 0
    history = json.loads((out / "history.json").read_text())
    assert len(history["history"]["loss"]) == 1
    return history["history"]["loss"][0], history["class_weights"]


def _loss_by_hand(train, loss, weights):
    images, masks = train
    x = np.stack([np.asarray(Image.open(p)) for p in sorted(images.iterdir())]).astype(np.float32) / np.float32(255)
    y = np.stack([np.asarray(Image.open(p)) for p in sorted(masks.iterdir())]).astype(np.int64)
    tinyseg.set_random_seed(3)
    model = UNet(input_shape=SIZE + (3,), num_classes=K, depth=2, base_filters=4, batch_norm=False,
                 upsampling="transpose")
    z = model.call(x, training=True, logits=True).astype(np.float64)
    logp = z - z.max(axis=-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=-1, keepdims=True))
    w = np.ones(K) if weights is None else np.asarray(weights, dtype=np.float64)
    wm = w[y]
    ce = float(np.sum(wm * -np.take_along_axis(logp, y[..., None], axis=-1)[..., 0]) / np.sum(wm))
    if loss == "ce":
        return ce
    p, t = np.exp(logp), np.eye(K)[y]
    intersection, sums = (p * t).sum(axis=(0, 1, 2)), (p + t).sum(axis=(0, 1, 2))
    return ce + 1 - float(np.mean((2 * intersection + 1) / (sums + 1)))


@pytest.mark.parametrize("loss, how", [("ce_dice", "median"), ("ce", "inverse")])
def test_the_class_weights_reach_the_loss(folders, loss, how):
    _, train, _ = folders
    weighted, weights = _first_batch_loss(folders, loss, how)
    plain, no_weights = _first_batch_loss(folders, loss, "none")
    assert no_weights is None and len(weights) == K and np.ptp(weights) > 0.5      # far from all-equal
    assert weighted == pytest.approx(_loss_by_hand(train, loss, weights), rel=1e-5)
    assert plain == pytest.approx(_loss_by_hand(train, loss, None), rel=1e-5)
    assert abs(weighted - plain) > 1e-3 * plain
