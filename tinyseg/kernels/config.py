"""How the Numba kernels are compiled and how many threads they use.

Settings (environment variables, read once when the first kernel module is imported):

- ``TINYSEG_NUM_THREADS``: threads for the parallel kernels (default: all cores Numba sees).
- ``TINYSEG_BACKEND``: ``numba`` (default) or ``numpy`` to run the plain NumPy twins instead.
- ``TINYSEG_KEEP_MEMORY``: ``0`` leaves glibc's allocator as it is; by default freed arrays are kept for
  the next training step (kernels/memory.py says why).
- ``NUMBA_THREADING_LAYER``: if unset, tinyseg picks ``workqueue``. Numba's OpenMP layer keeps its threads
  spinning after a kernel and fights OpenBLAS's threads in the matmul that follows (on the 2-core test machine
  an im2col + matmul took twice as long with it); ``workqueue`` has no such spin and needs no extra library.

Kernels are compiled lazily, on first call, and cached on disk (``cache=True``), so importing tinyseg
compiles nothing and a second process reuses the first one's machine code.
"""
import os

import numba

from . import memory  # noqa: F401  (keeps freed arrays in the process: no page faults step after step)

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

_BACKENDS = ("numba", "numpy")
_backend = os.environ.get("TINYSEG_BACKEND", "numba")
if _backend not in _BACKENDS:
    raise ValueError(f"TINYSEG_BACKEND must be one of {_BACKENDS}, got {_backend!r}")

if os.environ.get("TINYSEG_NUM_THREADS"):
    numba.set_num_threads(int(os.environ["TINYSEG_NUM_THREADS"]))


def jit(fn):
    """Compile a serial kernel: no Python objects, cached on disk."""
    return numba.njit(cache=True, nogil=True, fastmath=False)(fn)


def pjit(fn):
    """Compile a kernel whose outer `prange` loop runs on several threads."""
    return numba.njit(cache=True, nogil=True, parallel=True, fastmath=False)(fn)


def get_backend():
    """'numba' or 'numpy': which implementation the layers call."""
    return _backend


def set_backend(name):
    """Choose 'numba' (compiled kernels) or 'numpy' (the plain twins) for every kernel call."""
    global _backend
    if name not in _BACKENDS:
        raise ValueError(f"set_backend: name must be one of {_BACKENDS}, got {name!r}")
    _backend = name


def set_num_threads(n):
    """Use `n` threads in the parallel kernels (BLAS keeps its own setting)."""
    numba.set_num_threads(int(n))


def get_num_threads():
    return numba.get_num_threads()


def compiled_before():
    """True if kernels were compiled on this install before: Numba keeps an index file (.nbi) per cached
    kernel in the kernels' __pycache__ folder. False on a fresh install (or where that folder is not
    writable, and Numba caches elsewhere: then the first-run note may show once too often)."""
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")
    try:
        return any(name.endswith(".nbi") for name in os.listdir(folder))
    except OSError:
        return False
