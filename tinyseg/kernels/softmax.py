"""Softmax and log-softmax over the last axis (the classes), for (…, K) scores.

    m       = max_k z_k                        (subtracted first: exp never overflows)
    lse     = m + log(sum_k exp(z_k - m))      (log-sum-exp)
    log p_k = z_k - lse                        p_k = exp(z_k - m) / sum_j exp(z_j - m)

A segmentation model's scores have a short last axis (K classes, often 2 to 10) and a long rest (every pixel).
NumPy reduces such a short axis slowly, one tiny reduction per pixel for each of max, exp-sum and log, so
the Numba kernel gives each thread a block of pixels and does the whole row in registers. It writes p and
log p together, from one exp per score (exp is most of its time): a cross-entropy needs both.

Each function has a plain NumPy twin (``*_numpy``) that defines what the Numba kernel must compute; tests
prove them equal.
"""
import numpy as np

from .bands import piece, run_pieces
from .config import get_backend, pjit


def log_softmax_numpy(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax_numpy(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_and_log_softmax_numpy(z):
    return softmax_numpy(z), log_softmax_numpy(z)


@pjit
def _softmax_rows(chunk, chunks, z, p, logp):
    m_rows, k = z.shape
    r0, r1 = piece(m_rows, chunk, chunks)      # this thread's rows
    for r in range(r0, r1):
        m = z[r, 0]
        for j in range(1, k):
            m = max(m, z[r, j])
        s = 0.0
        for j in range(k):
            e = np.exp(z[r, j] - m)            # one exp per score: it is most of the kernel's time
            p[r, j] = e
            s += e
        lse = m + np.log(s)
        for j in range(k):
            p[r, j] = p[r, j] / s
            logp[r, j] = z[r, j] - lse


def _rows(z):
    z2 = np.ascontiguousarray(z).reshape(-1, z.shape[-1])
    p, logp = np.empty_like(z2), np.empty_like(z2)
    run_pieces(_softmax_rows, z2, p, logp)
    return p.reshape(z.shape), logp.reshape(z.shape)


def log_softmax(z):
    """log softmax(z) over the last axis, same shape and dtype as z."""
    return log_softmax_numpy(z) if get_backend() == "numpy" else _rows(z)[1]


def softmax(z):
    """softmax(z) over the last axis, same shape and dtype as z."""
    return softmax_numpy(z) if get_backend() == "numpy" else _rows(z)[0]


def softmax_and_log_softmax(z):
    """(softmax(z), log softmax(z)) over the last axis, both of z's shape and dtype, from one pass with one
    exp per score: what a cross-entropy needs, p for its gradient and log p (z - lse, never log of p, which
    may round to 0) for its value."""
    return softmax_and_log_softmax_numpy(z) if get_backend() == "numpy" else _rows(z)
