"""`tinyseg evaluate` without --ignore-index leaves out the void label the model was trained with (saved in
classes.json beside the model, and in the model file's loss), on tiny runs written here: a CamVid layout (11
classes, label 11 for the unlabelled pixels) and folders whose void is label 0, inside the range of the
model's classes (so that counting it would raise no error, only change the scores). The void pixels are in no
metric: the confusion matrix counts exactly the other pixels, and the scores are those of an evaluate given
--ignore-index."""
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from tinyseg.cli import main
from tinyseg.datasets import camvid

SMALL = ["--epochs", "1", "--batch-size", "2", "--base-filters", "4", "--depth", "2", "--quiet"]


def _write_split(root, split, n, seed, void, top):
    """root/<split>/fK.png and root/<split>annot/fK.png, 16 x 24, labels 0..top in 4 x 4 blocks, and a
    corner of void in every mask."""
    rng = np.random.default_rng(seed)
    (root / split).mkdir(parents=True)
    (root / f"{split}annot").mkdir()
    for i in range(n):
        label = np.repeat(np.repeat(rng.integers(0, top + 1, (4, 6)), 4, 0), 4, 1).astype(np.uint8)
        label[:4, :4] = void
        Image.fromarray(camvid.PALETTE[label]).save(root / split / f"f{i}.png")
        Image.fromarray(label).save(root / f"{split}annot" / f"f{i}.png")
    return root / split, root / f"{split}annot"


@pytest.fixture(scope="module", params=[11, 0], ids=["camvid void 11", "void 0 among the classes"])
def void_run(request, tmp_path_factory):
    """(the void label, a model trained by `tinyseg train --ignore-index VOID`, the validation folders)."""
    void = request.param
    root = tmp_path_factory.mktemp("evaluate_void")
    folder = root / ("CamVid" if void == 11 else "street")
    train = _write_split(folder, "train", 4, seed=0, void=void, top=11)
    val = _write_split(folder, "val", 2, seed=1, void=void, top=11)
    out = root / "run"
    assert main(["train", "--data", *map(str, train), "--val-data", *map(str, val), "--ignore-index", str(void),
                 "--out", str(out)] + SMALL) == 0
    assert json.loads((out / "classes.json").read_text())["ignore_index"] == void
    return void, out / "model.npz", val


def _evaluate(model, val, tmp_path, capsys, extra=()):
    scores = tmp_path / f"scores{len(extra)}.json"
    capsys.readouterr()
    assert main(["evaluate", str(model), "--data", *map(str, val), "--json", str(scores), *extra]) == 0
    return json.loads(scores.read_text()), capsys.readouterr().out


def _pixels(masks_dir, void):
    labels = np.stack([np.asarray(Image.open(p)) for p in sorted(masks_dir.iterdir())])
    return labels.size, int((labels == void).sum())


@pytest.mark.parametrize("beside", ["with classes.json", "model file alone"])
def test_evaluate_without_the_flag_leaves_the_saved_void_label_out(void_run, tmp_path, capsys, beside):
    void, model, val = void_run
    if beside == "model file alone":                  # no classes.json: the ignore index of the saved loss
        model = shutil.copy(model, tmp_path / "model.npz")
    scores, printed = _evaluate(model, val, tmp_path, capsys)
    total, voids = _pixels(val[1], void)
    assert 0 < voids < total
    matrix = np.asarray(scores["confusion_matrix"])
    assert matrix.sum() == total - voids                      # every pixel but the void ones
    assert f"label {void} ignored" in printed.splitlines()[-1]
    flagged, _ = _evaluate(model, val, tmp_path, capsys, extra=("--ignore-index", str(void)))
    assert scores == flagged
