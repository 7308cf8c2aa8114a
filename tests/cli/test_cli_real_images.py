"""The command line on real-image layouts (a tiny CamVid written here): names, void, class weights, any-size
predict, and one clear line for every kind of bad input."""
import json

import numpy as np
import pytest
from PIL import Image

from tinyseg.cli import main
from tinyseg.datasets import camvid

SMALL = ["--epochs", "1", "--batch-size", "2", "--base-filters", "4", "--depth", "2", "--quiet"]


def write_split(root, split, n=4, size=(16, 24), seed=0, labels=12):
    """root/<split>/fK.png and root/<split>annot/fK.png: images whose colour follows the label (learnable)."""
    rng = np.random.default_rng(seed)
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / f"{split}annot").mkdir(exist_ok=True)
    for i in range(n):
        blocks = rng.integers(0, labels, (-(-size[0] // 4), -(-size[1] // 4)))
        label = np.repeat(np.repeat(blocks, 4, 0), 4, 1)[:size[0], :size[1]].astype(np.uint8)
        Image.fromarray(camvid.PALETTE[label]).save(root / split / f"f{i}.png")
        Image.fromarray(label).save(root / f"{split}annot" / f"f{i}.png")
    return root / split, root / f"{split}annot"


@pytest.fixture
def tiny_camvid(tmp_path):
    root = tmp_path / "CamVid"
    train = write_split(root, "train")
    val = write_split(root, "val", n=2, seed=1)
    return train, val


def error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_train_evaluate_predict_on_a_camvid_layout(tiny_camvid, tmp_path, capsys):
    (images, labels), (vimages, vlabels) = tiny_camvid
    out = tmp_path / "run"
    assert main(["train", "--data", str(images), str(labels), "--val-data", str(vimages), str(vlabels),
                 "--size", "16", "24", "--ignore-index", "11", "--class-weights", "median", "--out", str(out)]
                + SMALL) == 0
    printed = capsys.readouterr().out
    assert "Bicyclist" in printed and "void ignored" in printed
    for name in ("model.npz", "classes.json", "metrics.json", "per_class_iou.png", "predictions.png",
                 "confusion_matrix.png", "curves.png", "history.json"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["per_class"])[:2] == ["Sky", "Building"] and len(metrics["per_class"]) == 11
    assert metrics["confusion_matrix"]["classes"][-1] == "Bicyclist" and metrics["ignore_index"] == 11
    history = json.loads((out / "history.json").read_text())
    assert len(history["class_weights"]) == 11

    assert main(["evaluate", str(out / "model.npz"), "--data", str(vimages), str(vlabels), "--ignore-index",
                 "11", "--out", str(tmp_path / "eval")]) == 0
    table = capsys.readouterr().out
    assert "Pedestrian" in table and "accuracy" in table.splitlines()[0]
    assert (tmp_path / "eval" / "per_class_iou.png").exists()

    # any size: 21 x 30 is no multiple of 4; the mask comes back at 21 x 30, also when tiled
    odd = tmp_path / "street.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (21, 30, 3), dtype=np.uint8)).save(odd)
    for extra in ([], ["--tile", "16", "16"], ["--tile"]):
        assert main(["predict", str(out / "model.npz"), str(odd), "--out", str(tmp_path / "pred")] + extra) == 0
        mask = np.asarray(Image.open(tmp_path / "pred" / "street_mask.png"))
        assert mask.shape == (21, 30) and mask.max() < 11
    assert (tmp_path / "pred" / "street_color.png").exists()


def test_median_weights_are_printed(tiny_camvid, tmp_path, capsys):
    (images, labels), _ = tiny_camvid
    assert main(["train", "--data", str(images), str(labels), "--ignore-index", "11", "--class-weights",
                 "median", "--val-fraction", "0.25", "--out", str(tmp_path / "r"), "--epochs", "1",
                 "--batch-size", "2", "--base-filters", "4"]) == 0
    line = next(text for text in capsys.readouterr().out.splitlines() if text.startswith("class weights"))
    assert line.startswith("class weights (median frequency): Sky ")


def test_label_above_the_class_count(tmp_path, capsys):
    images, labels = write_split(tmp_path / "data", "train", labels=3)
    bad = np.zeros((16, 24), np.uint8)
    bad[0, 0] = 7
    Image.fromarray(bad).save(labels / "f2.png")
    assert main(["train", "--data", str(images), str(labels), "--num-classes", "3", "--ignore-index", "5",
                 "--out", str(tmp_path / "o")] + SMALL) == 2
    err = error_line(capsys)
    assert "trainannot/f2.png holds label value 7" in err and "--num-classes" in err and "--ignore-index" in err


def test_image_and_label_of_different_sizes(tmp_path, capsys):
    images, labels = write_split(tmp_path / "data", "train")
    Image.fromarray(np.zeros((12, 24), np.uint8)).save(labels / "f1.png")
    assert main(["train", "--data", str(images), str(labels), "--out", str(tmp_path / "o")] + SMALL) == 2
    assert "image f1.png is 16x24 but its mask f1.png is 12x24" in error_line(capsys)


def test_colour_labels_are_named_and_a_palette_converts_them(tmp_path, capsys):
    images, labels = write_split(tmp_path / "data", "train", labels=3)
    for path in sorted(labels.iterdir()):                      # replace each label by its colours
        Image.fromarray(camvid.PALETTE[np.asarray(Image.open(path))]).save(path)
    assert main(["train", "--data", str(images), str(labels), "--out", str(tmp_path / "o")] + SMALL) == 2
    err = error_line(capsys)
    assert "colour-coded labels" in err and "--palette" in err
    colours = tmp_path / "colours.json"
    colours.write_text(json.dumps({"colors": camvid.PALETTE[:3].tolist(), "names": ["sky", "house", "pole"]}))
    assert main(["train", "--data", str(images), str(labels), "--palette", str(colours), "--val-fraction", "0.25",
                 "--out", str(tmp_path / "o")] + SMALL) == 0
    assert "house" in json.loads((tmp_path / "o" / "metrics.json").read_text())["per_class"]
    assert main(["train", "--data", str(images), str(labels), "--palette", "camvid", "--val-fraction", "0.25",
                 "--out", str(tmp_path / "o2")] + SMALL) == 0


@pytest.mark.parametrize("flag, values, expected", [
    ("--size", ["17", "24"], "--size 17 24 is not divisible by 2**depth = 4; the nearest valid size is 16 24"),
    ("--crop", ["16", "10"], "--crop 16 10 is not divisible by 2**depth = 4; the nearest valid crop is 16 12"),
])
def test_sizes_the_unet_cannot_take(tmp_path, capsys, flag, values, expected):
    images, labels = write_split(tmp_path / "data", "train")
    assert main(["train", "--data", str(images), str(labels), flag] + values + ["--out", str(tmp_path / "o")]
                + SMALL) == 2
    assert expected in error_line(capsys)


def test_files_of_a_size_the_unet_cannot_take_suggest_a_size(tmp_path, capsys):
    images, labels = write_split(tmp_path / "data", "train", size=(17, 24))
    assert main(["train", "--data", str(images), str(labels), "--out", str(tmp_path / "o")] + SMALL) == 2
    assert "pass --size 16 24" in error_line(capsys)


def test_val_data_with_more_classes_than_training(tmp_path, capsys):
    images, labels = write_split(tmp_path / "data", "train", labels=3)
    vimages, vlabels = write_split(tmp_path / "data", "val", labels=3)
    bad = np.zeros((16, 24), np.uint8)
    bad[5, 5] = 4
    Image.fromarray(bad).save(vlabels / "f0.png")
    assert main(["train", "--data", str(images), str(labels), "--val-data", str(vimages), str(vlabels),
                 "--out", str(tmp_path / "o")] + SMALL) == 2
    err = error_line(capsys)
    assert "--val-data labels: valannot/f0.png holds label value 4" in err
    assert "the training labels have classes 0..2" in err


@pytest.mark.parametrize("weights, expected", [
    (["1", "2"], "2 value(s) given for 3 classes"),
    (["1", "-1", "1"], "must not be negative"),
    (["1", "nan", "1"], "must be finite"),
    (["heavy"], "--class-weights takes none, median, inverse or a list of numbers"),
])
def test_bad_class_weights(tmp_path, capsys, weights, expected):
    images, labels = write_split(tmp_path / "data", "train", labels=3)
    assert main(["train", "--data", str(images), str(labels), "--class-weights"] + weights
                + ["--out", str(tmp_path / "o")] + SMALL) == 2
    assert expected in error_line(capsys)


def test_lazy_mode_trains_from_files(tiny_camvid, tmp_path, capsys):
    (images, labels), (vimages, vlabels) = tiny_camvid
    assert main(["train", "--data", str(images), str(labels), "--val-data", str(vimages), str(vlabels),
                 "--lazy", "--ignore-index", "11", "--out", str(tmp_path / "lazy")] + SMALL) == 0
    assert "validation mean IoU" in capsys.readouterr().out


def test_train_on_crops_validate_on_whole_images(tiny_camvid, tmp_path, capsys):
    (images, labels), (vimages, vlabels) = tiny_camvid
    out = tmp_path / "crops"
    assert main(["train", "--data", str(images), str(labels), "--val-data", str(vimages), str(vlabels),
                 "--size", "16", "24", "--crop", "8", "12", "--ignore-index", "11", "--out", str(out)] + SMALL) == 0
    classes = json.loads((out / "classes.json").read_text())
    assert classes["crop"] == [8, 12] and classes["input_size"] == [16, 24]
    metrics = json.loads((out / "metrics.json").read_text())
    support = sum(c["support"] for c in metrics["per_class"].values())
    void = sum(int((np.asarray(Image.open(p)) == 11).sum()) for p in sorted(vlabels.iterdir()))
    assert support == 2 * 16 * 24 - void                       # whole validation images, void left out
