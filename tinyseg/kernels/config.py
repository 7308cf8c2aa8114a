"""How the Numba kernels are compiled and how many threads they use.

Settings (environment variables, read once when the first kernel module is imported):

- ``TINYSEG_NUM_THREADS``: threads for the kernels, the convolution bands and BLAS (default: all cores
  Numba sees; BLAS then keeps its own setting).
- ``TINYSEG_BACKEND``: ``numba`` (default) or ``numpy`` to run the plain NumPy twins instead (read in
  tinyseg/backend.py, which the layers ask too).
- ``TINYSEG_KEEP_MEMORY``: ``1`` asks glibc's allocator to keep freed arrays for the next training step
  (kernels/memory.py says why, and why it is off by default: it changes the whole process's allocator).
- Threads: every kernel is compiled serial (``nogil``); the work of one call is split between tinyseg's own
  pool of threads (kernels/bands.py), the same pool that shares a convolution's bands. Numba's own parallel
  threading layer is not used: a serial kernel compiles much faster than a ``parallel=True`` one, and one
  pool cannot fight another for the cores.

Kernels are compiled lazily, on first call, and cached on disk (``cache=True``), so importing tinyseg
compiles nothing and a second process reuses the first one's machine code. The first ``fit`` of a fresh
install compiles them all at once instead, shared between processes on all cores (kernels/warmup.py).
"""
import os

import numba

from ..backend import get_backend, set_backend  # noqa: F401  (one setting, for the layers and the kernels)
from . import memory  # noqa: F401  (only with TINYSEG_KEEP_MEMORY=1: keeps freed arrays in the process)

_num_threads = int(os.environ.get("TINYSEG_NUM_THREADS") or numba.config.NUMBA_NUM_THREADS)


_blas = None                        # threadpoolctl controller of the BLAS libraries, made on first use


def blas_controller(rescan=False):
    """threadpoolctl's handle on the BLAS libraries (NumPy's among them), found by a scan of the process on
    first use, or again with rescan=True (a library loaded since, such as the one Numba loads, is then seen)."""
    global _blas
    if _blas is None or rescan:
        from threadpoolctl import ThreadpoolController
        _blas = ThreadpoolController().select(user_api="blas")
    return _blas


def _limit_blas(n):
    """Hold BLAS (NumPy's matrix products) to n threads too. Asked for fewer threads than cores, tinyseg would
    otherwise still run each product on BLAS's own threads, one per core; on a machine whose other cores are
    busy, every product then waits for a thread the system has put aside."""
    blas_controller(rescan=True).limit(limits=n)


if os.environ.get("TINYSEG_NUM_THREADS"):
    _limit_blas(_num_threads)


def jit(fn):
    """Compile a serial kernel: no Python objects, cached on disk."""
    return numba.njit(cache=True, nogil=True, fastmath=False)(fn)


def pjit(fn):
    """Compile a kernel that does one share of a call's rows: its first two arguments (chunk, chunks) say
    which (rows chunk*M//chunks up to (chunk+1)*M//chunks of its M rows; bands.piece works them out). Call it
    through bands.run_pieces, which runs the chunks on tinyseg's threads. Serial and nogil, like jit."""
    return numba.njit(cache=True, nogil=True, fastmath=False)(fn)


def set_num_threads(n):
    """Use `n` threads in tinyseg's kernels and convolution bands, and in BLAS's matrix products."""
    global _num_threads
    n = int(n)
    if n < 1:
        raise ValueError(f"set_num_threads: n must be a positive integer, got {n}")
    _limit_blas(n)
    _num_threads = n


def get_num_threads():
    """How many threads tinyseg's kernels use (TINYSEG_NUM_THREADS, else NUMBA_NUM_THREADS, else the cores)."""
    return _num_threads


def compiled_before():
    """True if kernels were compiled on this install before: Numba keeps an index file (.nbi) per cached
    kernel in the kernels' cache folder (their __pycache__, or one under NUMBA_CACHE_DIR). False on a fresh
    install, or where Numba cannot cache at all (then the first-run note may show once too often)."""
    from .elementwise import _relu
    try:
        folder = _relu._cache._cache_path       # where Numba puts this module's cache: the kernels' folder
    except AttributeError:                      # a Numba that keeps it elsewhere: the default place
        folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")
    try:
        return any(name.endswith(".nbi") for name in os.listdir(folder))
    except OSError:
        return False
