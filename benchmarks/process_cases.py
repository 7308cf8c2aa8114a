"""Cases that need a fresh Python process: start-up time, first-ever compilation, peak memory.

The parent (run.py) calls `run_startup`, `run_compile_all` and `run_memory`; each starts
`python -m benchmarks.process_cases WHAT ...` and reads the one line starting with RESULT that the child
prints (JSON). The child's own clock starts on its first line, before numpy or tinyseg is imported.

- startup: import tinyseg, build and compile the seed CNN, run one training step. Run twice with the same
  NUMBA_CACHE_DIR: the first run fills the cache (and is the cold start), the second is the warm start the
  goal is about. The goal is judged on the second run's time from the child's first line to the end of the
  step (the whole process's wall-clock time, interpreter start and exit included, is reported too).
- compile_all: every Numba kernel in tinyseg.kernels compiled for float32 for the first time, in a fresh,
  empty NUMBA_CACHE_DIR: import plus one call of each public kernel function on a tiny array. At one thread
  the calls run one after the other (each timed); at N threads the compile is shared between N processes,
  as a first `fit` does (tinyseg.kernels.warmup.compile_all).
- memory: peak memory of seed-CNN training at batch 32 (a few steps), two ways in two processes:
  'rss' = resource.getrusage ru_maxrss at the end minus ru_maxrss at the baseline, where the baseline is
  taken after the imports, after loading the compiled kernels (a tiny call of each) and after making the
  batch; 'tracemalloc' = the peak of memory traced by tracemalloc (NumPy reports its array buffers to it)
  from the same baseline. The goal is judged on 'rss', the stricter one: it also counts Python objects,
  allocator slack and anything not traced.
"""
import time

T0 = time.perf_counter()        # before anything else is imported: the start-up clock

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------------------------------------
# Children
# ----------------------------------------------------------------------------------------------------------
def child_startup(batch, hw):
    import tinyseg.layers  # noqa: F401  (the import is part of what is timed)
    from benchmarks import tinyseg_models
    t_import = time.perf_counter() - T0
    x, y = tinyseg_models.seed_cnn_data(batch, hw)
    model = tinyseg_models.seed_cnn(hw)
    model.train_on_batch(x, y)
    t_step = time.perf_counter() - T0
    return {"import_s": t_import, "import_and_first_step_s": t_step}


def _numba_dispatchers():
    """Every Numba-compiled function in the modules of tinyseg.kernels: 'module.name' -> dispatcher."""
    import importlib
    import pkgutil

    from numba.core.dispatcher import Dispatcher

    import tinyseg.kernels
    found = {}
    for info in pkgutil.iter_modules(tinyseg.kernels.__path__):
        module = importlib.import_module(f"tinyseg.kernels.{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, Dispatcher):
                found[f"{info.name}.{name}"] = obj
    return found


def child_compile_all(only=None, processes=1):
    """With one process, each kernel's first call timed one after the other; with more, the shared compile
    that a first `fit` runs (tinyseg.kernels.warmup.compile_all), timed as a whole."""
    from tinyseg.kernels import set_backend, warmup
    calls = warmup.kernel_calls()
    t_import = time.perf_counter() - T0
    set_backend("numba")
    per_kernel = {}
    if processes > 1 and not only:
        t = time.perf_counter()
        helpers = warmup.compile_all(processes)
        compile_s = time.perf_counter() - t
    else:
        helpers = 0
        for name, call in calls.items():
            if only and name not in only:
                continue
            t = time.perf_counter()
            call()
            per_kernel[name] = time.perf_counter() - t
        compile_s = sum(per_kernel.values())
    dispatchers = _numba_dispatchers()
    compiled = sorted(k for k, d in dispatchers.items() if d.signatures)
    not_compiled = sorted(k for k, d in dispatchers.items() if not d.signatures)
    return {"import_s": t_import, "compile_s": compile_s, "per_kernel_s": per_kernel, "processes": processes,
            "helpers_finished": helpers, "total_s": time.perf_counter() - T0, "compiled": compiled,
            "not_compiled": not_compiled}


def child_memory(method, batch, hw, steps):
    import resource

    from benchmarks import tinyseg_models
    from tinyseg.kernels import warmup
    for call in warmup.kernel_calls().values():     # load the compiled kernels before the baseline
        call()
    x, y = tinyseg_models.seed_cnn_data(batch, hw)
    if method == "tracemalloc":
        import tracemalloc
        tracemalloc.start()
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss      # kilobytes on Linux
    model = tinyseg_models.seed_cnn(hw)
    for _ in range(steps):
        model.train_on_batch(x, y)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"method": method, "baseline_rss_mb": base_kb / 1024, "peak_rss_mb": peak_kb / 1024,
           "rss_delta_mb": (peak_kb - base_kb) / 1024, "steps": steps}
    if method == "tracemalloc":
        out["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
    return out


def _child_main(argv):
    what, args = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    result = {"startup": child_startup, "compile_all": child_compile_all, "memory": child_memory}[what](**args)
    print("RESULT " + json.dumps(result), flush=True)


# ----------------------------------------------------------------------------------------------------------
# Parent side
# ----------------------------------------------------------------------------------------------------------
def thread_env(threads, extra=None):
    """The environment for a child running on `threads` threads: every pool told the same number.

    OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, if set on this machine, are passed through untouched.
    """
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                "TINYSEG_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env


def run_child(what, args, env, timeout=600):
    """Run one child; return (result dict, wall-clock seconds of the whole process)."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.process_cases", what, json.dumps(args)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child '{what}' failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):]), wall


def run_startup(threads, mode):
    """Cold start (empty cache) then warm start (the cache the cold start filled).

    --quick runs both on the default cache next to the sources (the first run only makes sure it is warm)
    and smoke runs the warm start alone, so that neither compiles what it need not.
    """
    if mode in ("smoke", "quick"):
        env, batch = thread_env(threads), 32 if mode == "quick" else 2
        if mode == "quick":
            run_child("startup", {"batch": batch, "hw": (32, 32)}, env)
        warm, wall = run_child("startup", {"batch": batch, "hw": (32, 32)}, env)
        return {"cold": None, "warm": {**warm, "wall_s": wall}, "cache": "default cache"}
    with tempfile.TemporaryDirectory(prefix="tinyseg-numba-cache-") as cache:
        env = thread_env(threads, {"NUMBA_CACHE_DIR": cache})
        cold, cold_wall = run_child("startup", {"batch": 32, "hw": (32, 32)}, env)
        warm, warm_wall = run_child("startup", {"batch": 32, "hw": (32, 32)}, env)
    return {"cold": {**cold, "wall_s": cold_wall}, "warm": {**warm, "wall_s": warm_wall},
            "cache": "fresh temporary NUMBA_CACHE_DIR"}


def run_compile_all(threads, mode):
    """Every kernel compiled into an empty cache. Smoke only proves the path: im2col, default (warm) cache."""
    if mode == "smoke":
        result, wall = run_child("compile_all", {"only": ["im2col"]}, thread_env(threads))
        return {**result, "wall_s": wall, "subset": ["im2col"], "cache": "default cache"}
    with tempfile.TemporaryDirectory(prefix="tinyseg-numba-cache-") as cache:
        result, wall = run_child("compile_all", {"processes": threads},
                                 thread_env(threads, {"NUMBA_CACHE_DIR": cache}))
    return {**result, "wall_s": wall, "subset": None, "cache": "fresh temporary NUMBA_CACHE_DIR"}


def run_torch_plain_unet(threads, mode):
    """The plain PyTorch script (torch_plain_unet.py) in a fresh process, at both U-Net sizes."""
    steps = {"smoke": 1, "quick": 5}.get(mode, 20)
    sizes = {"unet_step": (128, 128, 4), "unet_camvid_step": (176, 240, 11)}
    if mode == "smoke":
        sizes = {"unet_step": (16, 16, 4)}
    out = {}
    for case, (h, w, k) in sizes.items():
        proc = subprocess.run([sys.executable, "-m", "benchmarks.torch_plain_unet", "--threads", str(threads),
                               "--steps", str(steps), "--size", str(h), str(w), "--classes", str(k)],
                              cwd=REPO, env=thread_env(threads), capture_output=True, text=True, timeout=600)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"torch_plain_unet failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        out[case] = json.loads(lines[-1][len("RESULT "):])
    return out


def run_memory(threads, mode):
    """ru_maxrss and tracemalloc, each in its own process (quick: ru_maxrss only; smoke: that, tiny batch)."""
    batch, steps = (32, 5) if mode != "smoke" else (2, 1)
    out = {}
    for method in ("rss", "tracemalloc") if mode == "full" else ("rss",):
        result, _ = run_child("memory", {"method": method, "batch": batch, "hw": (32, 32), "steps": steps},
                              thread_env(threads))
        out[method] = result
    return out


if __name__ == "__main__":
    _child_main(sys.argv[1:])
