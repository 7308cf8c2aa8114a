"""Opt-in: keep freed memory in the process, so that a training step reuses last step's pages, not new ones.

Every training step allocates the same arrays again: each layer's output, its gradient, the im2col partial
sums. When such an array is freed, glibc's allocator gives large blocks straight back to the operating system
(blocks above its mmap threshold, 128 KB to start with, and the free top of the heap above its trim
threshold). The next step's array of the same size then gets fresh pages from the system, and the first
write to each 4 KB page is a page fault: the kernel stops the program, finds a page and fills it with zeros.
For a small model, whose arrays are a few MB, those faults cost about as much as the arithmetic (the
benchmark counts them: `page_faults_per_call` in results.json).

keep_freed_memory() asks glibc to serve arrays up to `mmap_threshold` bytes from its heap and to keep up to
`trim_threshold` bytes of freed heap in the process: what one step frees, the next step gets back, already
paged in. This is what a memory plan (one buffer per activation, allocated once per model and batch size)
would achieve, without changing any layer: the allocator's free lists are the plan. The cost is that the
process keeps the memory of its largest step until it exits, as PyTorch's and TensorFlow's allocators do.

It is not done by default: mallopt changes the allocator of the whole process, the user's code included,
and a library should not do that unasked. Nor does it pay enough to ask: glibc already raises its mmap
threshold by itself when large blocks are freed (up to 32 MB), so a U-Net step takes a few hundred page
faults without it, a few with it, and in an A/B of two processes taking turns the steps took the same time
within the noise of the machine. Set TINYSEG_KEEP_MEMORY=1 before the first import (or call
keep_freed_memory()) to turn it on. On a system without glibc (macOS, Windows, musl) nothing is changed.
"""
import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD = -1          # mallopt parameter numbers, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 256 * 2**20    # arrays up to 256 MB come from the heap and go back to it
TRIM_THRESHOLD = 1 * 2**30      # up to 1 GB of freed heap stays in the process for the next step


def keep_freed_memory(mmap_threshold=MMAP_THRESHOLD, trim_threshold=TRIM_THRESHOLD):
    """Ask glibc's malloc to keep freed blocks for reuse (see the module docstring). True if it agreed."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and \
        bool(mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))


KEPT = os.environ.get("TINYSEG_KEEP_MEMORY", "0") == "1" and keep_freed_memory()   # True if asked for and done
