"""kernels/memory.py: off by default (the allocator is the whole process's); asked for, a step's arrays reuse
the pages of the step before (no page fault per 4 KB).

Each case runs in its own process: mallopt cannot be undone, and the test process must keep glibc's default.
"""
import os
import subprocess
import sys

from tests.helpers import REPO

FAULTS = """
import resource, numpy as np
import tinyseg.kernels.memory as m
np.ones(40 * 2**18, np.float32)                   # once, so that its pages are in the process
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):                                # allocate, fill and free a 40 MB array five times
    a = np.empty(40 * 2**18, np.float32)
    a.fill(1)
    del a
print(m.KEPT, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
PAGES = 40 * 2**20 // 4096                  # of one 40 MB array: above glibc's own largest mmap threshold (32 MB)


def run(code, keep=None):
    """stdout's words of `code` run in a new process, with TINYSEG_KEEP_MEMORY=keep (unset for None)."""
    env = {k: v for k, v in os.environ.items() if k != "TINYSEG_KEEP_MEMORY"}
    if keep is not None:
        env["TINYSEG_KEEP_MEMORY"] = keep
    return subprocess.run([sys.executable, "-c", code], env=dict(env, PYTHONPATH=str(REPO)), capture_output=True,
                          text=True, check=True).stdout.split()


def test_by_default_the_allocator_is_left_as_it_is():
    kept, faults = run("import tinyseg\n" + FAULTS)           # the whole package imported, kernels too
    assert kept == "False"
    assert int(faults) >= PAGES // 20             # glibc gives each freed 40 MB array back: faults every time


def test_asked_for_a_freed_array_gives_its_pages_to_the_next_one():
    kept, faults = run(FAULTS, keep="1")
    if kept == "False":                           # not glibc: nothing to keep
        return
    assert int(faults) < PAGES // 20              # without keeping: thousands
