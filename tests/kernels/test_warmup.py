"""Compiling ahead on all cores (kernels/warmup.py): the processes share the kernels without doing one twice,
every kernel ends up compiled and cached, and a first `fit` on a fresh install starts it (with more than one
thread) once."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import INNER_KERNELS, REPO
from tinyseg.kernels import warmup

FRESH_CACHE_RUN = """
import json, os
from tinyseg.kernels import warmup
from benchmarks.process_cases import _numba_dispatchers
finished = warmup.compile_all(2)
loaded = sorted(name for name, f in _numba_dispatchers().items() if f.signatures)
cached = sorted(name for root, _, files in os.walk(os.environ["NUMBA_CACHE_DIR"]) for name in files
                if name.endswith(".nbi"))
print(json.dumps({"finished": finished, "loaded": loaded, "cached": cached}))
"""


def test_two_processes_compile_every_kernel_into_an_empty_cache(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "NUMBA_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", FRESH_CACHE_RUN], env=env, check=True, capture_output=True,
                         text=True).stdout
    result = json.loads(out.splitlines()[-1])
    assert result["finished"] == 1                            # the helper ran its share and exited cleanly
    from benchmarks.process_cases import _numba_dispatchers
    entry_points = {name.split(".")[1] for name in _numba_dispatchers()} - INNER_KERNELS
    cached = {name.split(".")[1].rsplit("-", 1)[0] for name in result["cached"]}   # 'elementwise._relu-50.py311.nbi'
    assert entry_points <= cached, sorted(entry_points - cached)
    # this process holds every kernel, its own and the helper's (loaded from the cache)
    assert {name.split(".")[1] for name in result["loaded"]} >= entry_points


def test_a_claimed_kernel_is_left_to_the_process_that_claimed_it(tmp_path, monkeypatch):
    called = []
    monkeypatch.setattr(warmup, "kernel_calls", lambda: {name: (lambda name=name: called.append(name))
                                                         for name in ("a", "b", "c")})
    (tmp_path / "b").touch()                                   # another process took b
    warmup.compile_unclaimed(str(tmp_path))
    assert called == ["a", "c"]
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "c"]   # and this one claimed a and c
    warmup.compile_unclaimed(str(tmp_path))                  # a second pass finds nothing left
    assert called == ["a", "c"]


def test_compile_all_refuses_zero_processes():
    with pytest.raises(ValueError, match="compile_all: processes must be a positive integer, got 0"):
        warmup.compile_all(0)


def _fit_twice(threads_count, monkeypatch, capsys, first_verbose):
    """Two fits on a 'fresh install' (compiled_before False); compile_all recorded, not run."""
    from tinyseg import Input, Model, kernels
    from tinyseg.layers import Conv2D
    from tinyseg.models import trainer as model_module
    shared = []
    monkeypatch.setattr(kernels, "compiled_before", lambda: False)
    monkeypatch.setattr(kernels, "get_num_threads", lambda: threads_count)
    monkeypatch.setattr(warmup, "compile_all", lambda processes=None: shared.append(processes))
    monkeypatch.setattr(model_module, "_NOTE_SHOWN", False)
    x = Input((4, 4, 1))
    model = Model(x, Conv2D(2, 1, activation="softmax")(x))
    model.compile(loss="sparse_categorical_crossentropy")
    data = np.zeros((2, 4, 4, 1), np.float32), np.zeros((2, 4, 4), int)
    model.fit(*data, verbose=first_verbose)
    model.fit(*data, verbose=2)
    return shared, capsys.readouterr().out


def test_a_first_fit_compiles_ahead_once_on_all_threads(monkeypatch, capsys):
    shared, out = _fit_twice(2, monkeypatch, capsys, first_verbose=0)
    assert shared == [2]                   # the first fit, silent as asked, still compiled ahead; once
    assert "first run only" not in out     # and the note went with that first (silent) fit


def test_the_first_run_note_shows_once_before_the_first_epoch(monkeypatch, capsys):
    shared, out = _fit_twice(2, monkeypatch, capsys, first_verbose=2)
    assert shared == [2]
    assert out.count("first run only") == 1 and out.index("first run only") < out.index("Epoch 1/1")
    assert "on 2 cores" in out


def test_with_one_thread_kernels_compile_on_first_use(monkeypatch, capsys):
    shared, _ = _fit_twice(1, monkeypatch, capsys, first_verbose=0)
    assert shared == []
