"""Every flag and input checked before work starts (issue 24, items 3 and 4), each case as a user meets it:
one line naming the flag or the file, no usage dump, no traceback; outputs written through symlinks and never
over anything but a regular file; JSON outputs always JSON; the final report's mean IoU is the history's."""
import json
import math
import os
import re
import stat

import numpy as np
import pytest
from PIL import Image

import tinyseg
from tests.helpers import write_image_folders
from tinyseg.cli import main

TINY = ["--n-train", "16", "--n-val", "8", "--size", "16", "--epochs", "1", "--batch-size", "8",
        "--base-filters", "4", "--depth", "2", "--quiet"]     # depth 2: a size of 18 is refused, as the tests want


def strict_json(text):
    """json.loads that refuses the bare NaN / Infinity Python's json writes and no JSON parser accepts."""
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"not JSON: bare {c}"))


def one_line(text):
    text = text.strip()
    assert "Traceback" not in text and "usage:" not in text and len(text.splitlines()) == 1, text
    return text




@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("inputs") / "run"
    assert main(["train", "--out", str(out)] + TINY) == 0
    return out


# --- flags: ranges checked while parsing, one line ------------------------------------------------------------
@pytest.mark.parametrize("flag, value, expected", [
    ("--size", "abc", "expected a positive whole number, got 'abc'"),
    ("--epochs", "0", "expected a positive whole number, got 0"),
    ("--batch-size", "-2", "expected a positive whole number"),
    ("--depth", "0", "expected a positive whole number"),
    ("--learning-rate", "nan", "expected a positive finite number, got 'nan'"),
    ("--learning-rate", "0", "expected a positive finite number"),
    ("--learning-rate", "inf", "expected a positive finite number"),
    ("--val-fraction", "nan", "expected a number between 0 and 1"),
    ("--val-fraction", "-0.5", "expected a number between 0 and 1"),
    ("--val-fraction", "1", "expected a number between 0 and 1"),
    ("--scale-jitter", "1", "expected a number in [0, 1)"),
    ("--scale-jitter", "nan", "expected a number in [0, 1)"),
    ("--seed", "-1", "expected a whole number >= 0"),
    ("--ignore-index", "256", "expected a label value in 0..255"),
    ("--num-classes", "300", "expected a number of classes in 1..256"),
    ("--threads", "0", "expected a positive whole number"),
])
def test_a_flag_out_of_range_is_one_line_naming_it(tmp_path, capsys, flag, value, expected):
    with pytest.raises(SystemExit) as exit_:
        main(["train", flag, value, "--out", str(tmp_path / "run")])
    assert exit_.value.code == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"tinyseg train: error: argument {flag}: {expected}"), line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, flag", [
    (["predict", "m.npz", "x.png", "--overlap", "1.5"], "--overlap"),
    (["evaluate", "m.npz", "--data", "a", "b", "--batch-size", "x"], "--batch-size"),
    (["evaluate", "m.npz", "--data", "a", "b", "--ignore-index", "-1"], "--ignore-index"),
])
def test_predict_and_evaluate_flags_too(capsys, argv, flag):
    with pytest.raises(SystemExit):
        main(argv)
    assert f"error: argument {flag}: expected" in one_line(capsys.readouterr().err)


def test_lazy_val_fraction_is_checked_like_the_others(tmp_path, capsys):
    images, masks = write_image_folders(tmp_path)
    for value in ("-0.5", "nan"):
        with pytest.raises(SystemExit):
            main(["train", "--data", str(images), str(masks), "--lazy", "--val-fraction", value,
                  "--out", str(tmp_path / "run")] + TINY)
        assert "argument --val-fraction: expected" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


def test_class_weights_as_a_list_of_numbers(tmp_path, capsys):
    for spec in (["1", "2", "1", "1"], ["1,2,1,1"]):
        out = tmp_path / spec[0].replace(",", "_")
        assert main(["train", "--class-weights", *spec, "--out", str(out)] + TINY) == 0
        assert strict_json((out / "history.json").read_text())["class_weights"] == [1.0, 2.0, 1.0, 1.0]
        assert "class weights (given)" not in capsys.readouterr().err


# --- data ---------------------------------------------------------------------------------------------------
def test_masks_that_are_all_void_are_refused(tmp_path, capsys):
    images, masks = write_image_folders(tmp_path, masks=np.full((4, 16, 16), 11, np.uint8))
    assert main(["train", "--data", str(images), str(masks), "--ignore-index", "11", "--num-classes", "3",
                 "--out", str(tmp_path / "run")] + TINY) == 2
    line = one_line(capsys.readouterr().err)
    assert "training labels: every pixel of every mask is the void label 11 (--ignore-index)" in line
    assert not (tmp_path / "run" / "unfinished").exists()


def nan_tiff(path):
    Image.fromarray(np.full((16, 16), np.nan, np.float32), mode="F").save(path)


def test_a_float_tiff_full_of_nan_is_refused_naming_the_file(tmp_path):
    nan_tiff(tmp_path / "nan.tif")
    for load in (tinyseg.datasets.load_image, tinyseg.datasets.load_image_uint8):
        with pytest.raises(ValueError, match=f"{re.escape(str(tmp_path / 'nan.tif'))} holds NaN or infinite"):
            load(tmp_path / "nan.tif")


def test_train_on_a_nan_tiff_names_it(tmp_path, capsys):
    images, masks = write_image_folders(tmp_path)
    os.remove(images / "img2.png")
    nan_tiff(images / "img2.tif")
    assert main(["train", "--data", str(images), str(masks), "--out", str(tmp_path / "run")] + TINY) == 2
    assert "img2.tif holds NaN or infinite pixel values" in one_line(capsys.readouterr().err)


# --- predict and evaluate's files -----------------------------------------------------------------------------
def test_a_missing_image_is_a_plain_sentence(run, tmp_path, capsys):
    missing = tmp_path / "missing.png"
    assert main(["predict", str(run / "model.npz"), str(missing), "--out", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err.strip().splitlines()[0]
    assert err == f"tinyseg predict: error: {missing}: no such file; skipped, nothing written for it"


def test_a_folder_that_cannot_take_the_file_names_the_file_not_the_temporary(run, tmp_path, capsys, monkeypatch):
    """As root a read-only folder still takes files, so the refusal is the system's answer to mkstemp."""
    import tempfile

    def refused(prefix="", suffix="", dir=None):
        raise PermissionError(13, "Permission denied", os.path.join(dir, f"{prefix}x1y2z3{suffix}"))
    image = tmp_path / "street.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    monkeypatch.setattr(tempfile, "mkstemp", refused)
    assert main(["predict", str(run / "model.npz"), str(image), "--out", str(tmp_path / "p")]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"cannot write {tmp_path / 'p' / 'street_mask.png'}: permission denied" in line
    assert ".tinyseg-" not in line and "Errno" not in line


@pytest.fixture
def eval_data(tmp_path):
    return write_image_folders(tmp_path / "eval")


def evaluate(run, data, *extra):
    return main(["evaluate", str(run / "model.npz"), "--data", str(data[0]), str(data[1]), *extra])


def test_evaluate_json_refuses_a_pipe_and_a_folder(run, eval_data, tmp_path, capsys):
    """A named pipe stands for a device node: a test must never risk replacing the machine's /dev/null."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    for target, what in ((str(pipe), "not a regular file"), (str(tmp_path), "a folder")):
        assert evaluate(run, eval_data, "--json", target) == 2
        assert f"--json {target} is {what}" in one_line(capsys.readouterr().err)
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)


def test_evaluate_json_writes_through_a_symlink_and_is_strict_json(run, eval_data, tmp_path, capsys):
    target = tmp_path / "results" / "metrics.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    assert evaluate(run, eval_data, "--json", str(link)) == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    result = strict_json(target.read_text())
    assert "mean_iou" in result and any(v is None for v in result["precision"])   # NaN written as null
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]


def test_evaluate_json_to_dev_stdout_through_a_pipe_and_into_a_file(run, eval_data, tmp_path):
    """As a shell runs it: `... --json /dev/stdout | jq` and `... --json /dev/stdout > all.txt` (the table
    printed before the JSON is kept: the file behind stdout is appended to, not replaced or truncated).
    Through a link of our own to /dev/stdout: code that replaces symlinks must not replace the machine's."""
    import subprocess
    import sys
    (tmp_path / "stdout").symlink_to("/dev/stdout")
    argv = [sys.executable, "-m", "tinyseg", "evaluate", str(run / "model.npz"), "--data", str(eval_data[0]),
            str(eval_data[1]), "--json", str(tmp_path / "stdout")]
    piped = subprocess.run(argv, capture_output=True, text=True)
    with open(tmp_path / "all.txt", "w") as f:
        into_file = subprocess.run(argv, stdout=f, stderr=subprocess.PIPE, text=True)
    for status, out in ((piped.returncode, piped.stdout), (into_file.returncode, (tmp_path / "all.txt").read_text())):
        assert status == 0 and out.startswith("class ")
        assert "mean_iou" in strict_json(out[out.index("\n{") + 1:])


# --- one number for one thing ---------------------------------------------------------------------------------
def test_the_final_report_is_the_historys_validation_mean_iou(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out)] + TINY) == 0
    printed = re.search(r"validation mean IoU (\S+) after epoch 1 \(as in history.json", capsys.readouterr().out)
    history = strict_json((out / "history.json").read_text())
    assert math.isclose(float(printed.group(1)), history["history"]["val_mean_iou"][-1], abs_tol=5e-4)
    assert history["val_mean_iou"] == history["history"]["val_mean_iou"][-1]


@pytest.mark.parametrize("flags, expected", [
    (["--size", "16", "16", "16"], "--size takes one number (a square) or two (height width), got 3"),
    (["--size", "18"], "--size"),
    (["--crop", "1", "2", "3"], "--crop takes one number"),
])
def test_sizes_are_checked_before_the_run_folder_is_touched(tmp_path, capsys, flags, expected):
    assert main(["train", "--out", str(tmp_path / "run")] + TINY + flags) == 2
    assert expected in one_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()
