"""The benchmark runs end to end and writes its three reports. No timing is asserted: speeds belong in
benchmark-results/, not in a test that must pass on any machine under any load."""
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import INNER_KERNELS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# every row of results.json carries these (report.ROW_KEYS, spelled out so a rename shows up here)
ROW_KEYS = {"case", "title", "threads", "compare", "tinyseg_ms", "numpy_ms", "torch_nchw_ms",
            "torch_channels_last_ms", "keras_ms", "ratio", "ratio_vs_nchw", "ratio_vs_channels_last", "ratio_of_minima",
            "value", "unit", "goal", "goal_op", "goal_value", "goal_unit", "goal_threads", "status", "margin_pct",
            "verdict", "info", "timings", "error"}
TIMED = {"seed_cnn_step", "conv3x3_fwd_bwd", "conv3x3_rgb_fwd", "maxpool_fwd_bwd", "upsample_nearest_fwd_bwd",
         "upsample_bilinear_fwd_bwd", "concatenate_fwd_bwd", "batchnorm_train_fwd_bwd", "relu_fwd_bwd",
         "unet_step", "unet_camvid_step", "train_epoch", "matmul_peak", "col2im_numba_vs_numpy",
         "maxpool_bwd_numba_vs_numpy"}
PROCESS = {"startup_warm", "compile_all_cold", "memory_seed_cnn"}


def run_benchmarks(*args, timeout=900):
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    proc = run_benchmarks("--smoke", "--threads", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out, proc


def test_smoke_writes_the_three_reports(smoke):
    out, _ = smoke
    for name in ("results.md", "results.json", "ratios.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    with open(out / "ratios.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_smoke_json_has_every_case_and_key(smoke):
    out, _ = smoke
    doc = json.loads((out / "results.json").read_text())
    assert {"meta", "notes", "cases"} <= set(doc)
    assert doc["meta"]["mode"] == "smoke" and doc["meta"]["threads"] == [1]
    names = {row["case"] for row in doc["cases"]}
    assert TIMED | PROCESS <= names
    for row in doc["cases"]:
        assert ROW_KEYS <= set(row), row["case"]
        assert row["error"] is None, f"{row['case']}: {row['error']}"
        assert row["status"] in ("met", "missed", "info", "n/a"), row
        if row["case"] in TIMED:
            assert row["tinyseg_ms"] is not None and row["tinyseg_ms"] > 0
        if row["case"] in ("col2im_numba_vs_numpy", "maxpool_bwd_numba_vs_numpy"):
            assert row["numpy_ms"] > 0 and row["ratio"] is not None


def test_smoke_markdown_is_a_table_with_a_row_per_case(smoke):
    out, proc = smoke
    md = (out / "results.md").read_text()
    assert "| Case | Threads | tinyseg (ms) |" in md
    lines = md.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("| Case | Threads | tinyseg (ms) |")))
    table = []
    for line in lines[start:]:                                  # the main table: until its first blank line
        if not line.startswith("|"):
            break
        table.append(line)
    doc = json.loads((out / "results.json").read_text())
    assert len(table) == 2 + len(doc["cases"])               # header, rule, one line per row
    assert "| Case |" in proc.stdout                           # the table is printed too


def test_runs_as_a_script_and_hides_the_smoke_flag():
    proc = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "run.py"), "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--quick" in proc.stdout and "--no-torch" in proc.stdout and "--smoke" not in proc.stdout


def test_rows_without_torch_have_no_ratio_and_say_why():
    sys.path.insert(0, REPO)
    try:
        from benchmarks import report
        from benchmarks.cases import CASES_BY_NAME
    finally:
        sys.path.remove(REPO)
    timing = {"median_ms": 10.0}
    row = report.make_row(CASES_BY_NAME["conv3x3_fwd_bwd"], 2, {"tinyseg": timing, "numpy": timing})
    assert row["ratio"] is None and row["status"] == "n/a" and row["verdict"] == "no PyTorch"
    row = report.make_row(CASES_BY_NAME["conv3x3_fwd_bwd"], 2, {"tinyseg": {"median_ms": 15.0},
                                                               "torch_nchw": {"median_ms": 20.0},
                                                               "torch_channels_last": {"median_ms": 10.0}})
    assert row["ratio"] == pytest.approx(1.5) and row["ratio_vs_nchw"] == pytest.approx(0.75)
    assert row["status"] == "missed" and row["verdict"] == "missed by 25%"
    md = report.markdown([row], {"mode": "test"}, ["a note"])
    assert "missed by 25%" in md and "- a note" in md


def test_compile_all_reaches_every_numba_kernel():
    """The first-ever-compile case calls every kernel: in a fresh process (default cache, so mostly loads),
    no Numba function of tinyseg.kernels is left without a compiled signature."""
    from benchmarks import process_cases
    result, _ = process_cases.run_child("compile_all", {}, process_cases.thread_env(1))
    # the inner kernels (tests.helpers.INNER_KERNELS) may stay without a signature of their own; every other
    # name must be reached.
    not_compiled = {name.split(".")[1] for name in result["not_compiled"]}
    assert not_compiled <= INNER_KERNELS, result["not_compiled"]
    assert set(result["per_kernel_s"]) >= {"relu", "add_bias", "channel_mean_var", "softmax", "im2col"}


def test_each_turn_wakes_its_variant_for_warm_seconds_before_timing():
    """After the pause, untimed calls run for `warm` seconds (at least one): the timed calls find the
    variant's threads awake (benchmarks/timing.py says why)."""
    import time

    from benchmarks.timing import time_interleaved
    calls = {"a": 0, "b": 0}

    def make(name):
        def fn():
            calls[name] += 1
            time.sleep(0.005)
        return fn
    result = time_interleaved({"a": make("a"), "b": make("b")}, warmup=0, rounds=2, block=3, settle=0.01,
                              warm=0.05)
    assert [result[n]["repeats"] for n in "ab"] == [6, 6]
    for name in "ab":                   # per turn: >= 0.05 s of 5 ms calls untimed, then the 3 timed ones
        assert calls[name] >= 2 * (0.05 / 0.005 * 0.5 + 3), calls
    calls.update(a=0, b=0)
    time_interleaved({"a": make("a"), "b": make("b")}, warmup=0, rounds=2, block=3, settle=0.01, warm=0)
    assert calls == {"a": 8, "b": 8}    # warm=0: the one untimed call of old
