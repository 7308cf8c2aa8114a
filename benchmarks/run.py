"""Run the benchmarks: `python -m benchmarks [--quick] [--threads 1 2] [--out DIR] [--no-torch]`.

Also runnable as `python benchmarks/run.py`. Writes DIR/results.md, DIR/results.json and DIR/ratios.png.

How it measures
- One worker process per thread count. Its environment sets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS,
  MKL_NUM_THREADS, NUMBA_NUM_THREADS and TINYSEG_NUM_THREADS to that count before anything starts a thread
  pool; inside, tinyseg.kernels.set_num_threads, torch.set_num_threads and (if installed) threadpoolctl say
  it again. tinyseg and PyTorch of one thread count are timed in the same worker, taking turns in blocks
  (timing.py says why not call by call).
- Cases that need a fresh process (start-up, first compile, peak memory) run in their own children
  (process_cases.py), on the largest thread count asked for.

Modes
- default: every case at the sizes the goals name, 1 and 2 threads (a few minutes).
- --quick: 2 threads, few repeats; no NumPy-twin U-Net, no cold start, no first-ever compile, no tracemalloc
  (under a minute on an idle machine).
- --smoke (hidden, for the tests): every case once at tiny sizes, only to prove that every path runs.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ""):                      # run as a script: make `benchmarks` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import cases as case_defs  # noqa: E402
from benchmarks import process_cases, report  # noqa: E402
from benchmarks.cases import Case, Goal  # noqa: E402
from benchmarks.timing import time_interleaved  # noqa: E402

REPO = process_cases.REPO

PROCESS_CASES = [
    Case("startup_warm", "Fresh process: import + first seed-CNN step (warm Numba cache)",
         Goal("<=", 2000, unit="ms"), "absolute", None),
    Case("startup_cold", "Fresh process: import + first seed-CNN step (empty cache; no goal)",
         None, "absolute", None),
    Case("compile_all_cold", "First-ever compile of all kernels (float32, empty cache)",
         Goal("<=", 8000, unit="ms"), "absolute", None),
    Case("torch_plain_unet", "Plain PyTorch script of the U-Net step, fresh process (128x128; the check of the "
         "benchmark's PyTorch figure; no goal)", None, "absolute", None),
    Case("memory_seed_cnn", "Peak memory, seed-CNN training, batch 32 (ru_maxrss delta)",
         Goal("<=", 300, unit="MB"), "absolute", None),
    Case("memory_seed_cnn_tracemalloc", "Peak memory, seed-CNN training, batch 32 (tracemalloc; no goal)",
         None, "absolute", None),
]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="under a minute: 2 threads, few repeats, a subset")
    p.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, nargs="+", default=None,
                   help="thread counts to measure (default: 1 2; --quick: 2)")
    p.add_argument("--out", default="benchmark-results", help="output folder (default: benchmark-results/)")
    p.add_argument("--no-torch", action="store_true", help="do not import PyTorch: tinyseg columns only")
    p.add_argument("--cases", nargs="+", default=None, metavar="NAME",
                   help="run only the cases whose names start with one of these")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker-out", help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.mode is None:
        args.mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    if args.threads is None:
        args.threads = [1, 2] if args.mode == "full" else [2]
    if any(t < 1 for t in args.threads):
        p.error("--threads: thread counts must be positive")
    return args


def selected(name, prefixes):
    return prefixes is None or any(name.startswith(p) for p in prefixes)


# ----------------------------------------------------------------------------------------------------------
# Worker: all timed cases at one thread count
# ----------------------------------------------------------------------------------------------------------
def configure_threads(n, use_torch):
    """Tell every pool in this process to use n threads; return (what was done, torch module or None)."""
    import tinyseg.kernels
    tinyseg.kernels.set_num_threads(n)
    done = ["environment variables", "tinyseg.kernels.set_num_threads"]
    torch = None
    if use_torch:
        try:
            import torch
            torch.set_num_threads(n)
            done.append("torch.set_num_threads")
        except ImportError:
            torch = None
    try:
        from threadpoolctl import threadpool_limits
        configure_threads.limits = threadpool_limits(n)      # kept alive for the life of the worker
        done.append("threadpoolctl")
    except ImportError:
        pass
    return done, torch


def worker_meta(n, torch, done):
    import numba
    import numpy as np

    import tinyseg.kernels
    meta = {"threads": n, "thread_control": ", ".join(done), "numpy": np.__version__,
            "numba": numba.__version__, "tinyseg_threads": tinyseg.kernels.get_num_threads(),
            "torch": torch.__version__ if torch is not None else None,
            "torch_threads": torch.get_num_threads() if torch is not None else None}
    meta["threading_layer"] = "tinyseg's own pool (kernels/bands.py); no Numba threading layer"
    try:
        from threadpoolctl import threadpool_info
        meta["pools"] = [{k: p.get(k) for k in ("internal_api", "prefix", "num_threads", "architecture",
                                                 "version")} for p in threadpool_info()]
        blas = [p for p in meta["pools"] if p["internal_api"] in ("openblas", "mkl", "blis")]
        if blas:
            meta["blas"] = f"{blas[0]['internal_api']} {blas[0]['version']} ({blas[0]['architecture']})"
    except ImportError:
        pass
    return meta


def worker_main(args):
    n = args.threads[0]
    done, torch = configure_threads(n, not args.no_torch)
    results = []
    for case in case_defs.CASES:
        if not selected(case.name, args.cases) or args.mode not in case.modes:
            continue
        t0 = time.perf_counter()
        record = {"case": case.name, "threads": n, "variants": None, "info": None, "error": None}
        try:
            fns, info = case.build(case_defs.SIZES[args.mode], {"mode": args.mode, "torch": torch})
            record.update(variants=time_interleaved(fns, **case_defs.timing_for(case, args.mode)), info=info)
        except Exception as err:                      # one broken case must not lose the others
            import traceback
            record["error"] = f"{type(err).__name__}: {err}\n{traceback.format_exc()[-1500:]}"
        results.append(record)
        med = {k: round(v["median_ms"], 2) for k, v in (record["variants"] or {}).items()}
        print(f"  [{n} thread{'s' if n > 1 else ''}] {case.name}: {med or record['error'].splitlines()[0]}"
              f"  ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
    with open(args.worker_out, "w") as f:
        json.dump({"meta": worker_meta(n, torch, done), "results": results}, f)
    return 0


def run_worker(args, n):
    """Start a worker for thread count n; return its JSON."""
    with tempfile.TemporaryDirectory(prefix="tinyseg-bench-") as tmp:
        out = os.path.join(tmp, "worker.json")
        cmd = [sys.executable, "-m", "benchmarks.run", "--worker", "--mode", args.mode, "--threads", str(n),
               "--worker-out", out] + (["--no-torch"] if args.no_torch else [])
        if args.cases:
            cmd += ["--cases"] + args.cases
        proc = subprocess.run(cmd, cwd=REPO, env=process_cases.thread_env(n))
        if proc.returncode != 0 or not os.path.exists(out):
            raise RuntimeError(f"benchmark worker for {n} threads failed (exit {proc.returncode})")
        with open(out) as f:
            return json.load(f)


# ----------------------------------------------------------------------------------------------------------
# Process cases
# ----------------------------------------------------------------------------------------------------------
def process_rows(args, n):
    by_name = {c.name: c for c in PROCESS_CASES}
    rows, details = [], {}

    def want(*names):
        return any(selected(name, args.cases) for name in names)

    if want("startup_warm", "startup_cold"):
        print("  start-up (two fresh processes) ...", file=sys.stderr, flush=True)
        try:
            r = process_cases.run_startup(n, args.mode)
            details["startup"] = r
            rows.append(report.make_row(by_name["startup_warm"], n, unit="ms", info=r,
                                        value=r["warm"]["import_and_first_step_s"] * 1e3))
            if r["cold"]:
                rows.append(report.make_row(by_name["startup_cold"], n, unit="ms", info=r,
                                            value=r["cold"]["import_and_first_step_s"] * 1e3))
        except Exception as err:
            rows.append(report.make_row(by_name["startup_warm"], n, error=str(err)))
    if want("compile_all_cold") and args.mode != "quick":
        print("  first-ever compile of every kernel (fresh cache) ...", file=sys.stderr, flush=True)
        try:
            r = process_cases.run_compile_all(n, args.mode)
            details.setdefault("compile_all", {})[n] = r
            title = by_name["compile_all_cold"].title + (" [smoke: im2col only, warm cache]" if r["subset"] else "")
            rows.append(report.make_row(by_name["compile_all_cold"], n, value=r["wall_s"] * 1e3, unit="ms",
                                        info=r, title=title))
        except Exception as err:
            rows.append(report.make_row(by_name["compile_all_cold"], n, error=str(err)))
    if want("torch_plain_unet", "unet") and not args.no_torch:
        print("  plain PyTorch U-Net script (fresh process) ...", file=sys.stderr, flush=True)
        try:
            r = process_cases.run_torch_plain_unet(n, args.mode)
            details["torch_plain_unet"] = r
            rows.append(report.make_row(by_name["torch_plain_unet"], n, value=r["unet_step"]["median_ms"],
                                        unit="ms", info=r))
        except Exception as err:
            rows.append(report.make_row(by_name["torch_plain_unet"], n, error=str(err)))
    if want("memory_seed_cnn"):
        print("  peak memory (fresh processes) ...", file=sys.stderr, flush=True)
        try:
            r = process_cases.run_memory(n, args.mode)
            details["memory"] = r
            rows.append(report.make_row(by_name["memory_seed_cnn"], n, value=r["rss"]["rss_delta_mb"], unit="MB",
                                        info=r))
            if "tracemalloc" in r:
                rows.append(report.make_row(by_name["memory_seed_cnn_tracemalloc"], n,
                                            value=r["tracemalloc"]["tracemalloc_peak_mb"], unit="MB", info=r))
        except Exception as err:
            rows.append(report.make_row(by_name["memory_seed_cnn"], n, error=str(err)))
    return rows, details


# ----------------------------------------------------------------------------------------------------------
# Notes for the reader of results.md
# ----------------------------------------------------------------------------------------------------------
def make_notes(args, rows, meta, details):
    t, tu = case_defs.TIMING[args.mode], case_defs.TIMING_UNET[args.mode]
    notes = [
        "Ratio = tinyseg time / PyTorch time for the faster of PyTorch's two memory formats (default NCHW and "
        "channels_last); results.json also has ratio_vs_nchw and ratio_vs_channels_last. For the kernel rows "
        "the ratio is Numba time / NumPy-twin time, so '>= 3x faster' is a ratio <= 0.333. Lower is better.",
        f"Times are medians of single calls: after {t['warmup']} warm-up calls, the variants of a case take "
        f"turns, {t['rounds']} rounds of {t['block']} timed calls each (U-Net: {tu['rounds']} of {tu['block']}), "
        "in rotating order; each turn starts with a pause, so that no variant is timed while the previous "
        "one's thread pools still spin, then 0.1 s of untimed calls (at least one), so that each is timed "
        "awake (see benchmarks/timing.py). A case stops early "
        "after two rounds once it has spent its time budget.",
        "Threads: each thread count runs in its own process with OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, "
        "MKL_NUM_THREADS, NUMBA_NUM_THREADS and TINYSEG_NUM_THREADS set; inside, "
        f"{meta.get('thread_control', '?')}.",
        "Fwd+bwd cases compute every gradient a training step needs: tinyseg by layer.backward, PyTorch by "
        "autograd from leaf tensors with requires_grad (input, and kernel and bias where the layer has them).",
    ]
    if "startup" in details:
        s = details["startup"]
        how = ("run twice with one NUMBA_CACHE_DIR ({}): the first fills the cache (cold row), the second is "
               "the warm row".format(s["cache"]) if s["cold"] else
               "on the {}, after one run that makes sure it is warm".format(s["cache"]) if args.mode == "quick"
               else "once, on the {}".format(s["cache"]))
        notes.append(
            "Start-up: a fresh `python` process imports tinyseg, builds and compiles the seed CNN and runs one "
            f"training step, {how}. The row is the time from the process's first line (before numpy is "
            "imported) to the end of that step; the whole process, interpreter start and exit included, took "
            f"{s['warm']['wall_s']:.2f} s (warm). Import alone: {s['warm']['import_s']:.2f} s.")
    for n, c in details.get("compile_all", {}).items():
        slow = sorted(c["per_kernel_s"].items(), key=lambda kv: -kv[1])[:3]
        how = ("calls each public kernel once on a tiny float32 array, one after the other (slowest: "
               + ", ".join(f"{k} {v:.1f} s" for k, v in slow) + ")") if c.get("processes", 1) == 1 else (
               f"compiles every kernel shared between {c['processes']} processes, as a first `fit` does "
               f"(tinyseg.kernels.warmup.compile_all; {c['helpers_finished']} helper finished)")
        notes.append(
            f"First-ever compile, {n} thread(s): a fresh process with an empty NUMBA_CACHE_DIR imports "
            f"tinyseg.kernels and {how}: wall {c['wall_s']:.1f} s, of which compiling {c['compile_s']:.1f} s. "
            + (f"Numba functions not reached by those calls: {', '.join(c['not_compiled'])}."
               if c["not_compiled"] else "Every Numba function in tinyseg.kernels was compiled."))
    if "memory" in details:
        m = details["memory"]
        notes.append(
            "Peak memory is judged on ru_maxrss (resource.getrusage) at the end of "
            f"{m['rss']['steps']} training steps minus ru_maxrss at a baseline taken after the imports, after "
            "loading the compiled kernels and after making the batch (baseline "
            f"{m['rss']['baseline_rss_mb']:.0f} MB, peak {m['rss']['peak_rss_mb']:.0f} MB). The tracemalloc row "
            "is the peak of traced allocations (NumPy's array buffers included) from the same baseline, in a "
            "separate process.")
    load = meta.get("load_average")
    if load and max(load) > (os.cpu_count() or 1):
        notes.append(f"WARNING: the machine was busy (load average {load[0]:.1f} at the start, {load[1]:.1f} at "
                     f"the end, on {os.cpu_count()} CPUs): other processes shared the cores, so absolute times "
                     "are inflated and ratios noisier than usual.")
    info = {r["case"]: r["info"] for r in rows if r["info"]}
    if "unet_step" in info and info["unet_step"].get("torch_model"):
        u = info["unet_step"]
        notes.append(f"U-Net, PyTorch side: {u['torch_model']} ({u.get('torch_params')} trainable parameters; "
                     f"tinyseg counts {u.get('params')} weights including BatchNorm moving statistics). "
                     "The goal is a ratio <= 1.0; issue 11 counts the U-Net rows done at <= 1.3.")
    if "torch_plain_unet" in details:
        top = max(meta_threads(rows))
        bench = {r["case"]: r for r in rows if r["threads"] == top}
        parts = []
        for case, plain in details["torch_plain_unet"].items():
            row = bench.get(case)
            if row and row.get("torch_channels_last_ms"):
                parts.append(f"{case}: plain script {plain['median_ms']:.1f} ms (min {plain['min_ms']:.1f}), "
                             f"benchmark's channels_last {row['torch_channels_last_ms']:.1f} ms")
        if parts:
            notes.append(f"PyTorch check at {top} threads, the benchmark's figure against a plain PyTorch script "
                         "(benchmarks/torch_plain_unet.py, a fresh process timing its own steps): "
                         + "; ".join(parts) + ".")
    faults = {c: i["page_faults_per_call"] for c, i in info.items() if i.get("page_faults_per_call") is not None}
    if faults:
        notes.append("Minor page faults per tinyseg step (last worker; a fresh 4 KB page costs one): "
                     + ", ".join(f"{c} {v:g}" for c, v in faults.items()) + ".")
    keras = info.get("seed_cnn_step", {}).get("keras")
    if keras:
        notes.append(f"Keras 3 column: {keras}.")
    if meta.get("torch") is None:
        notes.append("PyTorch was not used (--no-torch, or not installed): only tinyseg columns; the goals "
                     "that compare with PyTorch are marked 'no PyTorch'.")
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    notes.append(f"OPENBLAS_CORETYPE is {coretype!r} here and was left as it is." if coretype else
                 "OPENBLAS_CORETYPE is not set here.")
    if args.mode == "smoke":
        notes.append("SMOKE RUN: tiny sizes, one call per variant. The numbers mean nothing; the titles name the "
                     "real sizes, not the ones used.")
    elif args.mode == "quick":
        notes.append("QUICK RUN: few repeats; no NumPy-twin U-Net, no cold start, no first-ever-compile case, "
                     "no tracemalloc row.")
    return notes


def meta_threads(rows):
    return [r["threads"] for r in rows] or [1]


def machine():
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}"


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker_main(args)
    started = time.perf_counter()
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"tinyseg benchmarks, mode {args.mode}, threads {args.threads}", file=sys.stderr, flush=True)
    rows, workers = [], []
    for n in args.threads:
        w = run_worker(args, n)
        workers.append(w["meta"])
        for rec in w["results"]:
            case = case_defs.CASES_BY_NAME[rec["case"]]
            rows.append(report.make_row(case, n, rec["variants"], rec["info"], rec["error"]))
    proc_rows, details = process_rows(args, max(args.threads))
    # order: every timed case at each thread count, side by side, then the process cases
    order = {c.name: i for i, c in enumerate(case_defs.CASES)}
    rows.sort(key=lambda r: (order[r["case"]], r["threads"]))
    rows += proc_rows

    import numpy
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "mode": args.mode,
            "machine": machine(), "python": platform.python_version(), "numpy": numpy.__version__,
            "threads": args.threads, "argv": sys.argv[1:] if argv is None else list(argv), "workers": workers}
    if load_start is not None:
        meta["load_average"] = [round(load_start, 2), round(os.getloadavg()[0], 2)]
    if workers:
        w = workers[-1]
        meta.update({k: w.get(k) for k in ("numba", "torch", "blas", "threading_layer", "thread_control")})
    notes = make_notes(args, rows, meta, details)
    meta["elapsed_s"] = round(time.perf_counter() - started, 1)

    os.makedirs(args.out, exist_ok=True)
    md = report.markdown(rows, meta, notes)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(md)
    report.write_json(os.path.join(args.out, "results.json"), rows, meta, notes, {"process_details": details})
    report.plot(os.path.join(args.out, "ratios.png"), rows)
    print(md)
    print(f"wrote {args.out}/results.md, results.json, ratios.png in {meta['elapsed_s']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
