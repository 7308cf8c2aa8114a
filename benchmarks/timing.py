"""Timing: median of single-call times after warm-up, the variants of a case taking turns in blocks.

Two effects decide how a fair side-by-side timing must be done on a small shared machine:

- Drift. The speed of the machine changes over seconds (other processes, clock boost). If tinyseg were timed
  for ten seconds and PyTorch for the next ten, the drift would land in the ratio. So the variants take
  turns: every round runs a block of calls of each variant, in an order that rotates from round to round,
  and the median of all of a variant's timed calls ignores the odd slow round.
- Spinning threads. After a parallel call, a thread pool keeps its threads spinning for a while, waiting for
  more work: OpenBLAS for up to about 0.1 s (its THREAD_TIMEOUT), PyTorch's OpenMP threads likewise. Those
  spinning threads steal the cores from whatever runs next. Within one framework that is part of its real
  cost, but alternating calls of two frameworks call by call makes each pay for the other's idle threads
  (measured here: PyTorch's seed-CNN step 7.7 ms alone, 20 ms when alternated call by call with tinyseg).
  So before each block the previous variant's pools are given `settle` seconds to go to sleep, and the
  block's first call is not timed.
- Waking up. After such a pause, tinyseg's two threads run a short call (a 64x64x32 convolution's forward
  and backward, ~3 ms warm) at 1 thread's speed or slower for about ten calls, ~50 ms, then at full speed;
  PyTorch's run at full speed from the second call (2026-12-08, 15 pauses of 0.15 s each). The main thread
  and the pool's helper each pinned to a core of its own removed the ramp, pinning the helper alone did
  not: after the pause the operating system keeps both threads on one core until its load balancer moves
  one. So each block starts with `warm` seconds of untimed calls (at least one): a block times the
  steady state of both frameworks, which a training loop (calls back to back) runs in. A loop with pauses,
  such as `predict` on images arriving one by one, pays the ramp; the module's settle/warm arguments can
  time that too (warm=0).
"""
import gc
import statistics
import time


def time_interleaved(fns, warmup=2, rounds=5, block=5, max_seconds=None, min_rounds=2, settle=0.15, warm=0.1):
    """Time several callables side by side.

    fns: dict name -> callable taking no arguments.
    warmup: calls of each callable before timing (first-call costs: compilation, buffers, caches).
    rounds: how many times every callable gets a turn; block: timed calls per turn. Each turn starts with a
        pause of `settle` seconds and untimed calls for `warm` seconds, at least one (pause and calls
        skipped when settle is 0, as in the smoke run).
    max_seconds: stop after this much timed work once `min_rounds` rounds are done (None: no limit).

    Returns dict name -> {"median_ms", "min_ms", "max_ms", "repeats", "times_ms"}.
    """
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times = {name: [] for name in names}
    gc.collect()
    spent = 0.0
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            fn = fns[name]
            if settle:
                time.sleep(settle)             # let the previous variant's thread pools go idle
                until = time.perf_counter() + warm
                fn()                           # and pay the switch in untimed calls (module docstring)
                while time.perf_counter() < until:
                    fn()
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                dt = time.perf_counter() - t0
                times[name].append(dt * 1e3)
                spent += dt
        if max_seconds is not None and r + 1 >= min_rounds and spent > max_seconds:
            break
    return {name: {"median_ms": statistics.median(ts), "min_ms": min(ts), "max_ms": max(ts),
                   "repeats": len(ts), "times_ms": [round(t, 4) for t in ts]}
            for name, ts in times.items()}
