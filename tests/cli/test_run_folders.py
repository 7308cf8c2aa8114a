"""Run folders keep what they held (issue 24): a second `tinyseg train` into the default folder, stopped by
SIGINT or SIGKILL at several moments, never costs the first run a file; the stopped run resumes to weights
bit-identical to an unbroken run's; two trains into one folder give one clear error and no mixed files; a
process killed between two renames of the final move leaves a folder the next train completes.

The trains run as real processes (`python -m tinyseg`) on tiny data: 16 shapes of 16 x 16, 4 filters."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tinyseg
from tests.helpers import write_image_folders
from tinyseg import runs
from tinyseg.cli import main

EPOCHS = 6
TINY = ["--n-train", "16", "--n-val", "8", "--size", "16", "--batch-size", "8", "--base-filters", "4", "--quiet"]
OUT = "tinyseg-output"                                   # the default --out: the commands run in a tmp folder


def train(cwd, *extra):
    return subprocess.Popen([sys.executable, "-m", "tinyseg", "train", "--epochs", str(EPOCHS)] + TINY + list(extra),
                            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def unfinished_epochs(out):
    record = runs.read_record(os.path.join(out, runs.UNFINISHED, runs.RUN_FILE)) or {}
    return record.get("epochs_done", -1)


def wait_for(condition, proc, timeout=120):
    end = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None or condition(), f"the train ended first: {proc.stderr.read()}"
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def weights(path):
    return tinyseg.load_model(path).get_weights()


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert len(wa) == len(wb) and all(p.dtype == q.dtype and np.array_equal(p, q) for p, q in zip(wa, wb))


def assert_finished_run_intact(folder):
    """A folder whose run.json says finished holds every output it lists, whole: the models load, the JSON
    parses (strictly: no bare NaN)."""
    record = json.loads((folder / runs.RUN_FILE).read_text())
    assert record["finished"] is True
    for name in record["outputs"]:
        assert (folder / name).stat().st_size > 0, name
        if name.endswith(".json"):
            json.loads((folder / name).read_text(), parse_constant=lambda c, n=name: pytest.fail(f"{n} holds {c}"))
    tinyseg.load_model(folder / "model.npz")
    tinyseg.load_model(folder / "best.npz")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One finished run in the default folder, copied for each case: the unbroken run of the same settings."""
    cwd = tmp_path_factory.mktemp("first")
    proc = train(cwd)
    assert proc.wait() == 0, proc.stderr.read()
    return cwd / OUT


MOMENTS = [("SIGINT", "after epoch", 1), ("SIGKILL", "after epoch", 3), ("SIGKILL", "before epoch", 1),
           ("SIGINT", "random", 11), ("SIGKILL", "random", 12), ("SIGKILL", "random", 13)]


@pytest.mark.parametrize("name, when, n", MOMENTS)
def test_a_second_run_stopped_at_any_moment_keeps_the_first_and_resumes_bit_identical(first_run, tmp_path,
                                                                                      name, when, n):
    out = tmp_path / OUT
    shutil.copytree(first_run, out)
    first_model = (out / "model.npz").read_bytes()
    proc = train(tmp_path)
    if when == "after epoch":
        wait_for(lambda: unfinished_epochs(out) >= n, proc)
    elif when == "before epoch":
        wait_for(lambda: unfinished_epochs(out) == 0, proc)
    else:                                                # anywhere from start-up to the final move
        time.sleep(random.Random(n).uniform(0.5, 6.0))
    proc.send_signal(getattr(signal, name))
    status = proc.wait()
    err = proc.stderr.read()
    assert "Traceback" not in err, err

    record = runs.read_record(out / runs.UNFINISHED / runs.RUN_FILE)
    if record is None:                   # it finished before the signal took effect, or had not yet begun
        assert status in (0, 130, -signal.SIGKILL), err
        if not (out / "previous").exists():
            assert (out / "model.npz").read_bytes() == first_model
            assert_finished_run_intact(out)
            return
        assert (out / "previous" / "1" / "model.npz").read_bytes() == first_model
    else:
        assert status == (130 if name == "SIGINT" else -signal.SIGKILL), err
        if record["finished"] is not True:                   # stopped while training: the first run untouched
            assert (out / "model.npz").read_bytes() == first_model
            assert_finished_run_intact(out)
        if name == "SIGINT":
            assert err.count("\n") == 1 and f"--resume {OUT}" in err, err
            assert record["error"] == "interrupted"
        resumed = subprocess.run([sys.executable, "-m", "tinyseg", "train", "--resume", OUT, "--quiet"],
                                 cwd=tmp_path, capture_output=True, text=True)
        assert resumed.returncode == 0, resumed.stderr
        assert (out / "previous" / "1" / "model.npz").read_bytes() == first_model
    assert_finished_run_intact(out)
    assert_finished_run_intact(out / "previous" / "1")
    assert_same_weights(out / "model.npz", first_run / "model.npz")          # as an unbroken run
    new, old = (json.loads((f / "history.json").read_text())["history"] for f in (out, first_run))
    assert new == old
    assert not (out / "unfinished").exists() and not (out / runs.LOCK_FILE).exists()


def test_two_trains_into_one_folder_one_clear_error_and_no_mixed_files(tmp_path):
    first = train(tmp_path, "--seed", "1")
    out = tmp_path / OUT
    wait_for(lambda: unfinished_epochs(out) >= 0, first)
    second = subprocess.run([sys.executable, "-m", "tinyseg", "train", "--seed", "2"] + TINY, cwd=tmp_path,
                            capture_output=True, text=True)
    assert second.returncode == 2
    line = second.stderr.strip()
    assert line.count("\n") == 0 and "Traceback" not in line
    assert f"--out {OUT} is being written by another tinyseg train (process {first.pid})" in line
    assert first.wait() == 0, first.stderr.read()
    assert_finished_run_intact(out)
    assert json.loads((out / runs.RUN_FILE).read_text())["arguments"]["seed"] == 1
    assert json.loads((out / "history.json").read_text())["arguments"]["seed"] == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(json.loads((out / runs.RUN_FILE).read_text())
                                                           ["outputs"] + [runs.RUN_FILE])


def test_the_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / runs.LOCK_FILE).write_text(f"{dead.pid}\n")
    assert main(["train", "--out", str(out), "--epochs", "1"] + TINY) == 0
    assert not (out / runs.LOCK_FILE).exists()


def test_a_live_lock_is_refused_in_process(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with runs.RunLock(str(out)):
        assert main(["train", "--out", str(out), "--epochs", "1"] + TINY) == 2
        assert f"(process {os.getpid()})" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == []


# --- the final move, cut at every rename -------------------------------------------------------------------
def finished_pair(folder):
    """A finished run at folder's top (old) and a finished one waiting in folder/unfinished (new)."""
    folder.mkdir()
    for name in ("model.npz", "history.json"):
        (folder / name).write_text(f"old {name}")
    (folder / "predictions").mkdir()
    (folder / runs.RUN_FILE).write_text(json.dumps({"finished": True, "outputs": ["model.npz", "history.json"]}))
    stage = folder / runs.UNFINISHED
    stage.mkdir()
    for name in ("model.npz", "best.npz", "history.json"):
        (stage / name).write_text(f"new {name}")
    (stage / runs.RUN_FILE).write_text(json.dumps({"finished": True, "outputs": ["best.npz", "history.json",
                                                                                 "model.npz"]}))


class Killed(BaseException):
    pass


RENAMES = 8         # old run: 3 files into previous/.partial-1, renamed to 1; new run: 3 files, then run.json


@pytest.mark.parametrize("cut", range(RENAMES + 1))
def test_a_move_cut_after_any_rename_is_completed_by_the_next_train(tmp_path, monkeypatch, cut):
    folder = tmp_path / "out"
    finished_pair(folder)
    calls = []
    real_replace, real_rename = os.replace, os.rename

    def counted(real):
        def move(src, dst):
            if len(calls) == cut:
                raise Killed()
            calls.append((src, dst))
            return real(src, dst)
        return move
    monkeypatch.setattr(runs.os, "replace", counted(real_replace))
    monkeypatch.setattr(runs.os, "rename", counted(real_rename))
    try:
        runs.swap_in(str(folder))
        completed = True
    except Killed:
        completed = False
    monkeypatch.undo()
    assert completed == (cut >= RENAMES) and len(calls) == min(cut, RENAMES)
    runs.recover(str(folder))
    assert sorted(p.name for p in folder.iterdir()) == ["best.npz", "history.json", "model.npz", "predictions",
                                                        "previous", runs.RUN_FILE]
    assert all((folder / n).read_text() == f"new {n}" for n in ("model.npz", "best.npz", "history.json"))
    old = folder / "previous" / "1"
    assert sorted(p.name for p in old.iterdir()) == ["history.json", "model.npz", runs.RUN_FILE]
    assert all((old / n).read_text() == f"old {n}" for n in ("model.npz", "history.json"))
    assert os.listdir(folder / "previous") == ["1"]


def test_an_interrupted_run_is_moved_aside_by_a_new_run_not_deleted(tmp_path, capsys):
    out = tmp_path / "run"
    stage = out / runs.UNFINISHED
    stage.mkdir(parents=True)
    (stage / runs.RUN_FILE).write_text(json.dumps({"finished": False, "epochs_done": 3}))
    (stage / "model.npz").write_bytes(b"epoch 3")
    assert main(["train", "--out", str(out), "--epochs", "1"] + TINY) == 0
    assert "moved an interrupted run (3 epochs done)" in capsys.readouterr().out
    assert main(["train", "--out", str(out), "--epochs", "1"] + TINY) == 0
    assert f"the run that was in {out} is kept in {out / 'previous' / '2'}" in capsys.readouterr().out
    assert_finished_run_intact(out / "previous" / "2")
    assert (out / "previous" / "1" / "model.npz").read_bytes() == b"epoch 3"
    assert_finished_run_intact(out)


def test_resume_refuses_a_finished_folder_and_other_settings(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--epochs", "1"] + TINY) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 2
    assert "holds no interrupted run" in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "--epochs", "3"]) == 2
    assert "leave out --epochs" in capsys.readouterr().err


# --- resuming the --data pipeline, in process -------------------------------------------------------------------


@pytest.mark.parametrize("lazy", [[], ["--lazy"]], ids=["arrays", "lazy"])
def test_a_data_run_stopped_after_epoch_2_resumes_bit_identical(tmp_path, monkeypatch, capsys, lazy):
    """The --data pipeline's order, crops, scale jitter and flips continue where they stopped
    (SegmentationDataset.set_epoch); with the poly schedule too."""
    images, masks = write_image_folders(tmp_path, n=6)
    argv = ["train", "--data", str(images), str(masks), "--epochs", "4", "--batch-size", "2", "--crop", "8",
            "--base-filters", "4", "--lr-schedule", "poly", "--quiet"] + lazy
    assert main(argv + ["--out", str(tmp_path / "unbroken")]) == 0

    real = runs.EpochCheckpoint.on_epoch_end

    def stop_after_two(self, epoch, logs=None):
        real(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt
    monkeypatch.setattr(runs.EpochCheckpoint, "on_epoch_end", stop_after_two)
    out = tmp_path / "stopped"
    assert main(argv + ["--out", str(out)]) == 130
    assert json.loads((out / "unfinished" / runs.RUN_FILE).read_text())["epochs_done"] == 2
    monkeypatch.undo()
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert_same_weights(out / "model.npz", tmp_path / "unbroken" / "model.npz")
    assert_same_weights(out / "best.npz", tmp_path / "unbroken" / "best.npz")
    new, old = (json.loads((f / "history.json").read_text()) for f in (out, tmp_path / "unbroken"))
    assert new["history"] == old["history"] and len(new["history"]["loss"]) == 4


def test_without_flock_the_pid_in_the_lock_file_decides(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "fcntl", None)             # `import fcntl` fails, as on Windows
    (tmp_path / runs.LOCK_FILE).write_text(f"{os.getpid()}\n")  # a live process: refused
    with pytest.raises(ValueError, match=f"being written by another tinyseg train \\(process {os.getpid()}\\)"):
        with runs.RunLock(str(tmp_path)):
            pass
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / runs.LOCK_FILE).write_text(f"{dead.pid}\n")     # a dead one: taken over
    with runs.RunLock(str(tmp_path)):
        assert (tmp_path / runs.LOCK_FILE).read_text() == f"{os.getpid()}\n"
    assert not (tmp_path / runs.LOCK_FILE).exists()
