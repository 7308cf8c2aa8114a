"""One pool of threads for the banded convolution: each thread copies its band and multiplies it.

A convolution works one band of im2col rows at a time (kernels/convolution.py says why). For each band
there are two steps, a copy and a product:

    forward:        cols = im2col(x)[band];   y[band] = cols @ Kmat (+ bias)
    kernel grad:    cols = im2col(x)[band];   part[band] = cols^T @ G[band],  bias_part[band] = sum of G[band]
                    dL/dKmat = sum of part over the bands, in band order

(kernels/convolution.py makes cols one kernel row at a time, and its product is a sum of KH products; the
copy-then-product shape of a band is the same.)

How the work is shared between cores. With one Numba pool for the copy and OpenBLAS's own pool for the
product, the two pools take turns on every band: the copy runs on all cores, then the product, and each
hands the cores to the other (and on a machine shared with other programs, a product split in two waits for
whichever half got the slower core). Here instead there is one pool of Python threads, one per core. Each
thread takes the next band that nobody has taken yet and does both steps of it, the copy with a serial Numba
kernel that releases the GIL (`nogil`) and the product with BLAS held to one thread (threadpoolctl), so:

- the copy of one band overlaps the product of another, on the other core;
- a band's im2col rows are read by the product on the core that wrote them, while they are in its cache;
- a thread slowed down by another program simply takes fewer bands.

The numbers do not depend on which thread did which band: every band writes its own rows of y, or its own
partial sum, and the partial sums are added in band order at the end.

What a band task may call: serial Numba kernels (`config.jit`, nogil) and NumPy calls that release the GIL.
(tinyseg compiles no `parallel=True` kernel: Numba's threading layer must not be entered from two threads
at once, and its threads would fight these for the cores.)

The same pool runs every other kernel of tinyseg (pooling, batch normalisation, ReLU, ...): `run_pieces`
cuts a call's rows into a few chunks per thread, and each chunk runs the kernel's serial loop over its rows.
So there is one pool of threads in tinyseg, and Numba's parallel machinery (which compiles much more slowly,
and whose threads would fight these for the cores) is not used at all.

Scratch buffers. Each band's im2col goes into a buffer of the thread that runs it, kept from call to call
(a fresh buffer costs a page fault per 4 KB on first touch, which is of the order of the im2col itself). A buffer
is only used inside one call, so a layer called twice in a graph (shared weights) cannot see one call's
scratch in the other's backward.
"""
import contextlib
import functools
import itertools
import math
import os
import threading

import numpy as np

from .config import blas_controller, get_backend, get_num_threads, jit


class _Helper:
    """One helper thread of the pool. It sleeps on its `start` lock; run(job) hands it a job and wakes it,
    and wait() returns once the job is done (re-raising what it raised).

    Two plain locks rather than an executor: a call of run_bands is a few hundred microseconds of work, and
    a Future, a queue and a condition per call cost a noticeable share of that.
    """

    def __init__(self, slot):
        self.start, self.done = threading.Lock(), threading.Lock()
        self.start.acquire()
        self.done.acquire()
        self.job, self.error, self.busy = None, None, False
        threading.Thread(target=self._loop, name=f"tinyseg-band-{slot}", daemon=True).start()

    def _loop(self):
        while True:
            self.start.acquire()            # sleep until run() hands over a job
            try:
                self.job()
            except BaseException as err:    # handed to the caller by wait()
                self.error = err
            self.job = None
            self.done.release()

    def run(self, job):
        if self.busy:                       # a wait() was interrupted (Ctrl-C): let that job finish first
            self.done.acquire()
        self.job, self.error, self.busy = job, None, True
        self.start.release()

    def wait(self):
        self.done.acquire()
        self.busy = False
        error, self.error = self.error, None
        if error is not None:
            raise error


_helpers = []                       # the pool: helper threads, started when first needed
_pool_lock = threading.Lock()       # held while the pool runs a call: one call at a time
_local = threading.local()          # per calling thread: its slots' scratch buffers


def _reset_after_fork():
    # A child process has none of its parent's threads: it starts a pool of its own when it needs one.
    global _helpers, _pool_lock
    _helpers, _pool_lock = [], threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


def scratch(slot, shape, dtype, kind="rows"):
    """A buffer of `shape` for the calling thread's band slot `slot`, grown when needed and reused; `kind`
    names one of the slot's buffers (a band task may need more than one at a time)."""
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    size = math.prod(shape)
    key = (slot, kind, np.dtype(dtype))
    buf = buffers.get(key)
    if buf is None or buf.size < size:
        buf = buffers[key] = np.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


@contextlib.contextmanager
def one_blas_thread():
    """A context in which BLAS runs every product on the calling thread alone.

    tinyseg shares its work between its own threads, and a product it makes runs on one of them. BLAS's
    threads must stay out of the way: after each product it runs on several threads, OpenBLAS keeps its
    helper threads spinning for a while in case another product comes, and on a machine with as many cores as
    tinyseg has threads they take the cores that tinyseg's threads need. So a model's step holds BLAS to one
    thread from start to end (models/model.py), and so does every call here that runs products.

    Within one thread the contexts nest: only the outermost asks threadpoolctl (about 10 microseconds, which
    every convolution of a step would otherwise pay again) and puts BLAS back when it closes.
    """
    if getattr(_local, "blas_held", False):
        yield
        return
    _local.blas_held = True
    try:
        with blas_controller().limit(limits=1):
            yield
    finally:
        _local.blas_held = False


def run_bands(task, count, threads=None, single_blas=True):
    """Call task(k, slot) for k = 0 .. count-1, on `threads` threads (default: tinyseg's thread count).

    slot (0 .. threads-1) names the thread running the call, for its scratch buffer; each band is run exactly
    once. With one thread, or one band, everything runs here in order.
    single_blas: hold BLAS to one thread while the bands run (their products run side by side).
    """
    threads = min(threads or get_num_threads(), count)
    if threads <= 1:
        with one_blas_thread() if single_blas else contextlib.nullcontext():
            for k in range(count):
                task(k, 0)
        return
    # Every helper of this call uses the caller's buffers: a band's slot is unique within the call.
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    taken = itertools.count()            # next(taken) is atomic under the GIL: each band goes to one thread

    def work(slot):
        _local.buffers = buffers
        for k in iter(lambda: next(taken), None):
            if k >= count:
                return
            task(k, slot)

    if not _pool_lock.acquire(blocking=False):
        threads = 1                     # the pool is running another thread's call: do this one here, alone
    try:
        while len(_helpers) < threads - 1:
            _helpers.append(_Helper(len(_helpers) + 1))
        with one_blas_thread() if single_blas else contextlib.nullcontext():
            for slot in range(1, threads):
                _helpers[slot - 1].run(functools.partial(work, slot))
            try:
                work(0)
            finally:
                for slot in range(1, threads):
                    _helpers[slot - 1].wait()
    finally:
        if threads > 1:
            _pool_lock.release()


def ceil_div(a, b):
    """ceil(a / b) for positive integers, without floats."""
    return -(-a // b)


def even_share(n, most):
    """The piece size that cuts n things into the fewest pieces of at most `most` each, as equal as a fixed
    size allows: ceil(n / ceil(n / most)). E.g. n = 10, most = 6: two pieces of 5, not 6 and 4."""
    return ceil_div(n, ceil_div(n, most))


def matmul_rows(a, b, rows_per_band=4096):
    """a @ b for a (M, K), b (K, F), with a's rows cut into bands that the pool's threads multiply side by
    side, BLAS held to one thread each: the same numbers as one np.matmul, row for row."""
    out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    count = max(1, ceil_div(a.shape[0], rows_per_band))
    starts = [a.shape[0] * k // count for k in range(count + 1)]

    def band(k, slot):
        np.matmul(a[starts[k]:starts[k + 1]], b, out=out[starts[k]:starts[k + 1]])
    run_bands(band, count)
    return out


# ----------------------------------------------------------------------------------------------------------
# The other kernels: one call's rows shared between the same threads.
# ----------------------------------------------------------------------------------------------------------
# Two chunks per thread: more chunks than threads, so that a thread slowed by another program takes fewer;
# but every chunk is one more kernel call to dispatch and one more partial sum to add, and for the
# memory-bound row kernels that costs about what the second thread wins.
CHUNKS_PER_THREAD = 2
MIN_PARALLEL_VALUES = 2**19     # below this many values (the largest array of a call) one thread is faster:
                                # waking the pool's sleeping thread costs about what the second core saves on
                                # a memory-bound pass over a few MB


@jit
def piece(m, chunk, chunks):
    """(r0, r1): rows chunk*m//chunks .. (chunk+1)*m//chunks - 1 of m rows, one chunk's share of a kernel call.

    Every row belongs to exactly one chunk, and the chunks cover 0 .. m-1 in order.
    """
    return chunk * m // chunks, (chunk + 1) * m // chunks


def run_pieces(kernel, *args):
    """kernel(chunk, chunks, *args) for every chunk, on tinyseg's threads: a row kernel's whole call.

    The kernels are written so that each row of their output is computed by one chunk only (a gather, or a
    partial sum of its own), so the numbers do not depend on the number of threads or chunks.
    """
    values = max((a.size for a in args if isinstance(a, np.ndarray)), default=0)
    threads = get_num_threads()
    if threads <= 1 or values < MIN_PARALLEL_VALUES:
        kernel(0, 1, *args)
        return
    chunks = threads * CHUNKS_PER_THREAD
    run_bands(lambda k, slot: kernel(k, chunks, *args), chunks, threads, single_blas=False)


def add_bias_rows(y, b):
    """y[r, f] += b[f] for every row r of y (rows, F), in place, on the calling thread: the bias add that a band
    task runs on its own rows of the output while they are still in its core's cache (elementwise.add_bias's
    kernel, run as one chunk)."""
    from .elementwise import _add_bias, add_bias_numpy
    if get_backend() == "numpy":
        return add_bias_numpy(y, b)
    _add_bias(0, 1, y, b.astype(y.dtype, copy=False))
    return y
