"""The command line, end to end on tiny data: train (shapes and folders), predict, evaluate, --help, errors."""
import json
import subprocess
import sys

import numpy as np
import pytest

from tinyseg.cli import build_parser, main
from tinyseg.datasets import load_shapes, save_image_png, save_mask_png

TINY = ["--n-train", "24", "--n-val", "8", "--size", "16", "--epochs", "1", "--batch-size", "8",
        "--base-filters", "4", "--quiet"]


def write_folder(root, n=10, size=20, binary=False):
    (x, y), _ = load_shapes(n, 0, size=size, seed=4)
    images, masks = root / "images", root / "masks"
    images.mkdir()
    masks.mkdir()
    for i in range(n):
        save_image_png(images / f"img{i}.png", x[i])
        save_mask_png(masks / f"img{i}.png", ((y[i] > 0) * 255).astype(np.uint8) if binary else y[i])
    return images, masks


def test_help_documents_every_flag():
    parser = build_parser()
    train_help = parser._subparsers._group_actions[0].choices["train"].format_help()
    for flag in ("--data", "--out", "--epochs", "--batch-size", "--size", "--depth", "--base-filters",
                 "--no-batch-norm", "--upsampling", "--loss", "--learning-rate", "--num-classes",
                 "--val-fraction", "--n-train", "--n-val", "--no-augment", "--seed", "--threads", "--quiet"):
        assert flag in train_help
    out = subprocess.run([sys.executable, "-m", "tinyseg", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "train" in out.stdout and "predict" in out.stdout


def test_train_on_shapes_writes_every_output(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out)] + TINY) == 0
    for name in ("model.npz", "history.json", "curves.png", "predictions.png", "confusion_matrix.png"):
        assert (out / name).stat().st_size > 0, name
    history = json.loads((out / "history.json").read_text())
    assert set(history["history"]) >= {"loss", "accuracy", "mean_iou", "val_loss", "val_mean_iou"}
    assert 0 <= history["val_mean_iou"] <= 1
    assert "validation mean IoU" in capsys.readouterr().out


def test_train_predict_evaluate_on_folders(tmp_path, capsys):
    images, masks = write_folder(tmp_path, binary=True)
    out = tmp_path / "run"
    assert main(["train", "--data", str(images), str(masks), "--out", str(out), "--size", "16", "--epochs", "1",
                 "--batch-size", "4", "--base-filters", "4", "--quiet"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert history["class_names"] == ["background", "class 1"]        # 0/255 masks read as two classes
    pred_dir = tmp_path / "pred"
    assert main(["predict", str(out / "model.npz"), str(images / "img0.png"), str(images / "img1.png"),
                 "--out", str(pred_dir)]) == 0
    from PIL import Image
    mask = np.asarray(Image.open(pred_dir / "img0_mask.png"))
    assert mask.shape == (20, 20) and set(np.unique(mask)) <= {0, 1}    # back at the image's own size
    assert (pred_dir / "img1_overlay.png").exists()
    capsys.readouterr()
    assert main(["evaluate", str(out / "model.npz"), "--data", str(images), str(masks),
                 "--json", str(tmp_path / "m.json")]) == 0
    table = capsys.readouterr().out
    assert "IoU" in table
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert 0 <= metrics["mean_iou"] <= 1


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nope"), str(tmp_path / "nope2"), "--out",
                 str(tmp_path / "o"), "--quiet"]) == 2
    assert "error" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    bad.write_text("not a model")
    assert main(["predict", str(bad), "x.png", "--out", str(tmp_path)]) == 2
    assert "not a tinyseg model file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--epochs", "0"])
