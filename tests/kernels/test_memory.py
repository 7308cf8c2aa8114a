"""kernels/memory.py: a step's arrays reuse the pages of the step before (no page fault per 4 KB)."""
import os
import resource
import subprocess
import sys

import numpy as np
import pytest

import tinyseg.kernels  # noqa: F401  (makes the allocator keep freed memory)
from tests.helpers import REPO
from tinyseg.kernels import memory


def faults_of_repeated_arrays(mb=40, times=5):
    """Minor page faults of allocating, filling and freeing an array of `mb` MB `times` times over."""
    np.ones(mb * 2**18, np.float32)                   # once, so that its pages are in the process
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        a = np.empty(mb * 2**18, np.float32)
        a.fill(1)
        del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not memory.KEPT, reason="not glibc, or TINYSEG_KEEP_MEMORY=0")
def test_a_freed_array_gives_its_pages_to_the_next_one():
    pages = 40 * 2**20 // 4096                  # above glibc's own largest mmap threshold (32 MB)
    assert faults_of_repeated_arrays() < pages // 20         # without keeping: thousands


def test_it_can_be_switched_off():
    code = ("import tinyseg.kernels.memory as m; print(m.KEPT)")
    env = dict(os.environ, TINYSEG_KEEP_MEMORY="0", PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
