"""Kernels compile lazily, on first call: importing tinyseg (its layers, models, losses and CLI) compiles none
of them. Every Numba function in tinyseg.kernels is checked, so a new kernel is covered as soon as it exists."""
import os
import subprocess
import sys

from tests.helpers import REPO

CODE = """
import tinyseg, tinyseg.layers, tinyseg.models, tinyseg.losses, tinyseg.metrics, tinyseg.cli
from benchmarks.process_cases import _numba_dispatchers
kernels = _numba_dispatchers()
assert len(kernels) > 10, sorted(kernels)
compiled = sorted(name for name, f in kernels.items() if f.signatures)
assert not compiled, compiled
"""


def test_importing_tinyseg_compiles_no_kernel():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", CODE], env=env, check=True)
