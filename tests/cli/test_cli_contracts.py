"""The command line's contracts (issues 12 and 14), each replayed as a user would meet it, on tiny data written
here: one error line and no traceback, --out refused up front, a run folder that says whether its run finished,
predict on a batch with a bad file, palette masks and class names, evaluate at the masks' own resolution with a
warning for masks of another data set, help and a default for every flag, --version."""
import argparse
import json
import os
import stat

import numpy as np
import pytest
from PIL import Image

import tinyseg
from tests.helpers import write_image_folders
from tinyseg.cli import RUN_FILE, build_parser, main
from tinyseg.datasets import save_mask_png

TINY = ["--n-train", "16", "--n-val", "8", "--size", "16", "--epochs", "1", "--batch-size", "8",
        "--base-filters", "4", "--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny run of `tinyseg train` on the shapes (4 classes), shared by the predict and evaluate tests,
    into a folder that holds an earlier run: its run.json, a model, a file only it wrote, and predict's
    default folder."""
    out = tmp_path_factory.mktemp("cli") / "run"
    out.mkdir()
    (out / RUN_FILE).write_text(json.dumps({"finished": True, "outputs": ["model.npz", "old_grid.png"]}))
    (out / "model.npz").write_bytes(b"the earlier run's model")
    (out / "old_grid.png").write_bytes(b"an output only the earlier run wrote")
    (out / "predictions").mkdir()
    assert main(["train", "--out", str(out)] + TINY) == 0
    return out




def one_line(text):
    text = text.strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    return text


# --- help, defaults, version ------------------------------------------------------------------------------
def parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from parsers(sub)


def expanded_help(action, parser):
    return action.help % dict(vars(action), prog=parser.prog)      # what argparse prints for %(default)s


def test_every_flag_has_help_that_states_its_default():
    checked, progs = 0, set()
    for parser in parsers(build_parser()):
        progs.add(parser.prog)
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            where = f"{parser.prog} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and action.help.strip(), f"{where} has no help"
            default = action.default
            if default in (None, False, argparse.SUPPRESS):       # no default, or a switch that is off
                continue
            shown = " ".join(map(str, default)) if isinstance(default, list) else str(default)
            assert shown in expanded_help(action, parser), f"{where}: help does not mention its default {shown}"
            checked += 1
    assert progs == {"tinyseg", "tinyseg train", "tinyseg predict", "tinyseg evaluate"} and checked >= 15


def test_version_prints_tinysegs_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"tinyseg {tinyseg.__version__}"


# --- one line, no traceback -------------------------------------------------------------------------------
@pytest.mark.parametrize("error", [
    OSError("[Errno 28] No space left on device: 'model.npz'"),
    ValueError("load_model: 'm.npz' is not a tinyseg model file\nsecond line"),
    TypeError("class_names must be a list of strings or None, got 3"),
    tinyseg.backend.NonFiniteError("fit, epoch 1: the gradient of layer 'conv2d', parameter 'kernel' is NaN"),
    Image.DecompressionBombError("Image size (200000000 pixels) exceeds limit"),
])
def test_library_errors_print_one_line_and_exit_2(tmp_path, capsys, monkeypatch, error):
    def fail(*args, **kwargs):
        raise error
    monkeypatch.setattr(tinyseg.saving, "load_model", fail)
    assert main(["predict", str(tmp_path / "m.npz"), "x.png", "--out", str(tmp_path / "p")]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("tinyseg predict: error: ") and str(error).split("\n")[0] in line


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    def bug(*args, **kwargs):
        raise AttributeError("'NoneType' object has no attribute 'shape'")
    monkeypatch.setattr(tinyseg.saving, "load_model", bug)
    with pytest.raises(AttributeError):
        main(["predict", str(tmp_path / "m.npz"), "x.png", "--out", str(tmp_path / "p")])


# --- --out ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["train"] + TINY,
    ["predict", "MISSING.npz", "x.png"],
    ["evaluate", "MISSING.npz", "--data", "a", "b"],
])
def test_an_out_that_is_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch, argv):
    def no_work(*args, **kwargs):
        raise AssertionError("work started before --out was checked")
    monkeypatch.setattr(tinyseg.datasets, "load_shapes", no_work)
    monkeypatch.setattr(tinyseg.saving, "load_model", no_work)
    target = tmp_path / "results"
    target.write_text("my notes")
    assert main(argv + ["--out", str(target)]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"--out {target} is a file" in line
    assert target.read_text() == "my notes"


def test_a_folder_of_other_files_is_refused_and_left_alone(tmp_path, capsys):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"not ours")
    assert main(["train", "--out", str(out)] + TINY) == 2
    line = one_line(capsys.readouterr().err)
    assert f"--out {out} is not empty" in line and "holiday.jpg" in line
    assert os.listdir(out) == ["holiday.jpg"]


# --- a run folder says whether its run finished, and holds one run -----------------------------------------
def test_a_folder_of_trains_own_files_without_run_json_counts_as_an_earlier_run(tmp_path):
    from tinyseg.cli import check_run_folder
    (tmp_path / "model.npz").write_bytes(b"from a tinyseg that wrote no run.json")
    (tmp_path / "curves.png").write_bytes(b"")
    check_run_folder(str(tmp_path))                          # accepted: its files would be replaced
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="notes.txt"):
        check_run_folder(str(tmp_path))


def test_a_finished_run_is_marked_last_and_moves_the_earlier_run_aside(run):
    """Issue 24: the earlier run is moved to previous/1, whole, never deleted; the new one takes its place."""
    out = run
    record = json.loads((out / RUN_FILE).read_text())
    assert record["finished"] is True and record["tinyseg_version"] == tinyseg.__version__
    assert record["arguments"]["epochs"] == 1 and record["arguments"]["out"] == str(out)
    assert record["started"] <= record["ended"] and record["seconds"] > 0 and record["epochs_done"] == 1
    earlier = out / "previous" / "1"                            # the earlier run's files, all of them ...
    assert sorted(p.name for p in earlier.iterdir()) == ["model.npz", "old_grid.png", RUN_FILE]
    assert (earlier / "model.npz").read_bytes() == b"the earlier run's model"
    assert not (out / "old_grid.png").exists()
    assert tinyseg.load_model(out / "model.npz").class_names == ["background", "circle", "square", "triangle"]
    assert (out / "predictions").is_dir()                       # ... what train does not write stays
    assert set(record["outputs"]) == {p.name for p in out.iterdir()} - {RUN_FILE, "predictions", "previous"}
    assert {"model.npz", "best.npz", "history.json"} <= set(record["outputs"])
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]   # no lock, staging folder or temporary
    last = (out / RUN_FILE).stat().st_mtime_ns                             # run.json came after every output
    assert all((out / name).stat().st_mtime_ns <= last for name in record["outputs"])


def test_every_output_has_a_new_files_usual_permissions(run):
    # what open() gives a new file here (0644 under umask 022), not mkstemp's private 0600
    probe = run.parent / "probe"
    probe.write_text("")
    usual = stat.S_IMODE(probe.stat().st_mode)
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in run.iterdir() if p.is_file()}
    assert modes == dict.fromkeys(modes, oct(usual))


@pytest.mark.parametrize("module, function, failure, status", [
    ("plotting", "plot_per_class_iou", OSError("[Errno 28] No space left on device"), 2),   # after the epochs
    ("saving", "save_model", KeyboardInterrupt(), 130),                              # the first checkpoint
])
def test_a_run_that_fails_or_is_interrupted_says_so_and_keeps_the_earlier_run(tmp_path, capsys, monkeypatch,
                                                                              module, function, failure, status):
    """Issue 24: the failed run's record is in unfinished/run.json; the earlier, finished run is untouched."""
    out = tmp_path / "run"
    out.mkdir()
    (out / RUN_FILE).write_text(json.dumps({"finished": True, "outputs": ["model.npz"]}))
    (out / "model.npz").write_bytes(b"the earlier run's model")

    def fail(*args, **kwargs):
        raise failure
    monkeypatch.setattr(getattr(tinyseg, module), function, fail)
    assert main(["train", "--out", str(out)] + TINY) == status
    line = one_line(capsys.readouterr().err)
    record = json.loads((out / "unfinished" / RUN_FILE).read_text())
    assert record["finished"] is False and record["error"] in line
    assert record["epochs_done"] == (1 if status == 2 else 0) and record["epochs"] == 1
    assert sorted(p.name for p in out.iterdir()) == sorted([RUN_FILE, "model.npz", "unfinished"])   # no lock
    assert (out / "model.npz").read_bytes() == b"the earlier run's model"
    assert json.loads((out / RUN_FILE).read_text())["finished"] is True
    if status == 130:
        assert f"--resume {out}" in line


# --- predict ----------------------------------------------------------------------------------------------
def test_predict_writes_palette_masks_and_overlays_at_the_images_size(run, tmp_path, capsys):
    image = np.random.default_rng(0).integers(0, 256, (21, 30, 3), dtype=np.uint8)   # no multiple of 4
    Image.fromarray(image).save(tmp_path / "street.png")
    out = tmp_path / "pred"
    assert main(["predict", str(run / "model.npz"), str(tmp_path / "street.png"), "--out", str(out)]) == 0
    assert "classes (from the model file): 0 background, 1 circle, 2 square, 3 triangle" in capsys.readouterr().out
    from tinyseg.inference import labels_from_scores, predict_image
    expected = labels_from_scores(predict_image(tinyseg.load_model(run / "model.npz"), image))
    mask = Image.open(out / "street_mask.png")
    assert mask.mode == "P" and mask.size == (30, 21)
    assert np.array_equal(np.asarray(mask), expected)                 # pixel values are the class indices
    colours = np.asarray(mask.convert("RGB"))
    assert np.array_equal(colours, np.asarray(Image.open(out / "street_color.png").convert("RGB")))
    assert len({tuple(c) for c in np.asarray(mask.getpalette(), np.uint8).reshape(-1, 3)[:4]}) == 4
    assert np.asarray(Image.open(out / "street_overlay.png")).shape[:2] == (21, 30)


def test_predict_names_classes_class_0_when_the_model_has_none(run, tmp_path, capsys):
    model = tinyseg.load_model(run / "model.npz")
    model.class_names = None
    model.save(tmp_path / "bare.npz")                                 # no names, no classes.json beside it
    image = tmp_path / "img.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(image)
    assert main(["predict", str(tmp_path / "bare.npz"), str(image), "--out", str(tmp_path / "p")]) == 0
    assert "0 class_0, 1 class_1, 2 class_2, 3 class_3" in capsys.readouterr().out


def bad_files(folder):
    good = folder / "good.png"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(good)
    (folder / "truncated.png").write_bytes(good.read_bytes()[:60])
    (folder / "notes.png").write_text("not an image")
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(folder / "bomb.png")    # a bomb once the limit is low
    return ["truncated.png", "notes.png", "bomb.png", "missing.png"]


def test_predict_skips_each_unreadable_image_with_one_line_and_writes_nothing_for_it(run, tmp_path, capsys,
                                                                                   monkeypatch):
    bad = bad_files(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)      # 40 x 40 = 1600 > 2 * 500: DecompressionBombError
    out = tmp_path / "pred"
    paths = [str(tmp_path / "good.png")] + [str(tmp_path / name) for name in bad]
    assert main(["predict", str(run / "model.npz")] + paths + ["--out", str(out)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == len(bad) and "Traceback" not in captured.err
    for name, line in zip(bad, lines):
        assert line.startswith("tinyseg predict: error: ") and str(tmp_path / name) in line and "skipped" in line
    assert "predicted 1 of 5 images" in captured.out
    assert sorted(os.listdir(out)) == ["good_color.png", "good_mask.png", "good_overlay.png"]


def test_predict_refuses_two_images_that_would_overwrite_each_other(run, tmp_path, capsys):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / sub / "x.png")
    out = tmp_path / "pred"
    assert main(["predict", str(run / "model.npz"), str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png"),
                 "--out", str(out)]) == 2
    assert "x_mask.png" in one_line(capsys.readouterr().err) and not out.exists()


# --- evaluate ---------------------------------------------------------------------------------------------
def test_evaluate_says_it_scores_at_the_masks_own_resolution(run, tmp_path, capsys):
    images, masks = write_image_folders(tmp_path, size=24)                  # the model was trained at 16 x 16
    assert main(["evaluate", str(run / "model.npz"), "--data", str(images), str(masks),
                 "--json", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "scored each image at its mask's own resolution (24x24); the model was trained at 16x16" in out
    cm = np.array(json.loads((tmp_path / "m.json").read_text())["confusion_matrix"])
    assert cm.sum() == 4 * 24 * 24                                  # every pixel of every mask, none resized


def test_evaluate_warns_when_binary_masks_meet_a_four_class_model(run, tmp_path, capsys):
    images, masks = write_image_folders(tmp_path, binary=True)
    assert main(["evaluate", str(run / "model.npz"), "--data", str(images), str(masks)]) == 0
    line = one_line(capsys.readouterr().err)
    assert line.startswith("tinyseg evaluate: warning: the masks hold only 0 and 255") and "4 classes" in line


def test_evaluate_names_the_file_of_a_value_beyond_the_models_classes(run, tmp_path, capsys):
    images, masks = write_image_folders(tmp_path)
    bad = np.zeros((16, 16), np.uint8)
    bad[3, 3] = 7
    save_mask_png(masks / "img2.png", bad)
    assert main(["evaluate", str(run / "model.npz"), "--data", str(images), str(masks)]) == 2
    line = one_line(capsys.readouterr().err)
    assert "masks/img2.png holds label value 7" in line and "classes 0..3" in line
    assert "--ignore-index" in line and "--num-classes" not in line     # evaluate has no --num-classes


# --- the readers behind them ------------------------------------------------------------------------------
@pytest.mark.parametrize("reader", ["load_image", "load_image_uint8", "load_mask"])
def test_every_reader_names_a_file_that_is_no_readable_image(tmp_path, monkeypatch, reader):
    from tinyseg.datasets import folder
    bad_files(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)
    for name in ("truncated.png", "notes.png", "bomb.png"):
        with pytest.raises(ValueError, match=f"{tmp_path / name} is not a readable image"):
            getattr(folder, reader)(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="missing.png"):             # the file system's own error
        getattr(folder, reader)(tmp_path / "missing.png")
