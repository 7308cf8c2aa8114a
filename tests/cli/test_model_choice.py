"""`tinyseg train --model NAME` (issue 26) and the U-Net depth that follows the image size when --depth is not
given: the receptive field the rule rests on is measured on a real U-Net, the rule's choices are pinned, and
a model other than the U-Net trains, resumes, evaluates and predicts from its file alone."""
import json

import numpy as np
import pytest

import tinyseg
from tests.helpers import write_image_folders
from tinyseg import runs
from tinyseg.cli import main
from tinyseg.model_choice import MAX_AUTO_DEPTH, default_depth, unet_receptive_field
from tinyseg.models.unet import UNet

SMALL = ["--n-train", "16", "--n-val", "8", "--epochs", "1", "--batch-size", "8", "--base-filters", "4"]


def measured_receptive_field(depth):
    """Perturb one input column at a time (float64, no batch norm) and see which output columns move: the
    widest run of input columns one output column depends on."""
    width = 16 * 2 ** depth + 32
    model = UNet((2 ** depth, width, 1), num_classes=2, depth=depth, base_filters=3, batch_norm=False,
                 dtype="float64")
    x = np.random.default_rng(depth).standard_normal((1, 2 ** depth, width, 1))
    batch = np.repeat(x, width + 1, axis=0)
    for c in range(width):
        batch[c + 1, :, c, :] += 5.0
    y = model.predict(batch, verbose=0)
    moved = np.abs(y[1:] - y[:1]).max(axis=(1, 3)) > 1e-12            # (input column, output column)
    return max(np.ptp(np.nonzero(moved[:, j])[0]) + 1 for j in range(width) if moved[:, j].any())


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_the_receptive_field_is_the_measured_one(depth):
    assert unet_receptive_field(depth) == measured_receptive_field(depth)


def test_the_receptive_field_table():
    assert [unet_receptive_field(d) for d in range(1, 6)] == [18, 44, 100, 204, 412]


@pytest.mark.parametrize("size, crop, depth", [
    ((32, 32), None, 2),            # the shapes: what the CLI always used
    ((16, 16), None, 1),
    ((18, 18), None, 1),            # a size 4 does not divide is no error without --depth: depth 1 takes it
    ((88, 120), None, 3),
    ((176, 240), None, 4),          # CamVid at half resolution, as the README trains it
    ((352, 480), None, 5),
    ((1024, 1024), None, MAX_AUTO_DEPTH),
    ((180, 240), None, 2),          # 180 = 4 * 45: deeper would not divide it
    ((176, 240), (64, 64), 3),      # the crop is what the network sees in training: 44 < 64 <= 100
])
def test_the_default_depth(size, crop, depth):
    assert default_depth(size, crop)[0] == depth


def test_the_reason_says_what_would_allow_a_deeper_net():
    depth, reason = default_depth((180, 240))
    assert depth == 2 and "depth 4" in reason and "not divisible by 16" in reason and "--depth" in reason


def test_train_without_depth_follows_the_size_and_records_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--size", "64", "--out", str(out)] + SMALL) == 0
    printed = capsys.readouterr().out
    assert "model: unet" in printed and "depth 3 follows the image size" in printed
    assert json.loads((out / runs.RUN_FILE).read_text())["arguments"]["depth"] == 3
    assert main(["train", "--size", "64", "--depth", "1", "--out", str(tmp_path / "d1")] + SMALL) == 0
    assert "depth 1 (--depth)" in capsys.readouterr().out


def tiny_builder(input_shape, num_classes, base_filters=4):
    """A stand-in for an architecture of the registry: conv, pool, conv, upsample, 1x1 head."""
    from tinyseg.layers import Conv2D, Input, MaxPooling2D, UpSampling2D
    x = inputs = Input(input_shape)
    x = Conv2D(base_filters, 3, padding="same", activation="relu")(x)
    x = MaxPooling2D(2)(x)
    x = Conv2D(base_filters, 3, padding="same", activation="relu")(x)
    x = UpSampling2D(2)(x)
    outputs = Conv2D(num_classes, 1, activation="softmax")(x)
    return tinyseg.Model(inputs, outputs, name="tiny")


@pytest.fixture
def registry(monkeypatch):
    names = {"unet": UNet, "tiny": tiny_builder}
    monkeypatch.setattr(tinyseg.models, "ARCHITECTURES", names, raising=False)
    return names


def test_an_unknown_model_is_one_line(registry, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--model", "fcn9", "--out", str(tmp_path / "o")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--model" in err and "expected one of tiny, unet, got 'fcn9'" in err


@pytest.mark.parametrize("flag", [["--depth", "3"], ["--upsampling", "nearest"], ["--no-batch-norm"]])
def test_a_knob_the_model_has_not_is_refused_before_any_work(registry, tmp_path, capsys, flag):
    assert main(["train", "--model", "tiny", "--out", str(tmp_path / "o")] + SMALL + flag) == 2
    assert f"{flag[0]} does not apply to --model tiny (its builder takes base_filters)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_another_model_trains_resumes_evaluates_and_predicts(registry, tmp_path, monkeypatch, capsys):
    images, masks = write_image_folders(tmp_path, n=6)
    argv = ["train", "--model", "tiny", "--data", str(images), str(masks), "--epochs", "2", "--batch-size", "2",
            "--quiet"]
    assert main(argv + ["--out", str(tmp_path / "unbroken")]) == 0
    real = runs.EpochCheckpoint.on_epoch_end

    def stop_after_one(self, epoch, logs=None):
        real(self, epoch, logs)
        raise KeyboardInterrupt
    monkeypatch.setattr(runs.EpochCheckpoint, "on_epoch_end", stop_after_one)
    out = tmp_path / "stopped"
    assert main(argv + ["--out", str(out)]) == 130
    monkeypatch.setattr(runs.EpochCheckpoint, "on_epoch_end", real)
    record = json.loads((out / "unfinished" / runs.RUN_FILE).read_text())
    assert record["arguments"]["model"] == "tiny" and record["arguments"]["depth"] is None
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    a, b = (np.load(f / "model.npz") for f in (out, tmp_path / "unbroken"))
    weights = [k for k in a.files if "weight" in k or "kernel" in k]
    assert weights and all(np.array_equal(a[k], b[k]) for k in weights)
    capsys.readouterr()
    assert main(["evaluate", str(out / "model.npz"), "--data", str(images), str(masks)]) == 0
    assert main(["predict", str(out / "model.npz"), str(images / "img0.png"), "--out", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "img0_mask.png").exists()


def test_evaluate_ends_with_the_data_sets_mean_iou(tmp_path, capsys):
    images, masks = write_image_folders(tmp_path, n=4)
    out = tmp_path / "run"
    assert main(["train", "--data", str(images), str(masks), "--out", str(out), "--quiet"] + SMALL[4:]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out / "model.npz"), "--data", str(images), str(masks),
                 "--json", str(tmp_path / "m.json")]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert last.startswith(f"mean IoU {metrics['mean_iou']:.4f} over 4 images")
    assert "the data set's" in last and f"per-image mean IoU {metrics['per_image_mean_iou']:.4f}" in last


@pytest.mark.parametrize("name, size", [("fcn8s", 32), ("segnet", 32), ("unet", 32), ("deeplabv3plus", 32)])
def test_each_architecture_trains_predicts_and_evaluates_from_the_cli(name, size, tmp_path, capsys):
    """Images of other sizes than the training size too: padded to the network's multiple, or (DeepLabV3+,
    whose decoder resizes to the size it was built for, and FCN-8s trained on a size 32 does not divide,
    padded inside by a fixed amount) predicted in windows of the training size."""
    from PIL import Image
    images, masks = write_image_folders(tmp_path, n=4, size=size)
    out = tmp_path / "run"
    assert main(["train", "--model", name, "--data", str(images), str(masks), "--epochs", "1", "--batch-size",
                 "2", "--base-filters", "2", "--val-fraction", "0.5", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / runs.RUN_FILE).read_text())["arguments"]["model"] == name
    for h, w in ((21, 30), (40, 50)):
        odd = tmp_path / f"odd{h}.png"
        Image.fromarray(np.random.default_rng(h).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(odd)
        assert main(["predict", str(out / "model.npz"), str(odd), "--out", str(tmp_path / "p")]) == 0
        assert np.asarray(Image.open(tmp_path / "p" / f"odd{h}_mask.png")).shape == (h, w)
    assert main(["evaluate", str(out / "model.npz"), "--data", str(images), str(masks)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("mean IoU ")


def test_networks_whose_graph_fixes_the_size_are_predicted_in_windows():
    from tinyseg.layers import Conv2D, Input, ZeroPadding2D
    from tinyseg.model_choice import takes_its_size_only
    from tinyseg.models import deeplabv3plus
    x = inputs = Input((24, 24, 3))
    padded = tinyseg.Model(inputs, Conv2D(2, 1)(ZeroPadding2D(4)(x)))        # FCN-8s pads by a fixed amount
    assert takes_its_size_only(padded) and takes_its_size_only(deeplabv3plus((32, 32, 3), 3, base_filters=2))
    assert not takes_its_size_only(UNet((32, 32, 3), 3, depth=2, base_filters=2))
