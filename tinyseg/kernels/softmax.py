"""Softmax and log-softmax over the last axis (the classes), for (…, K) scores.

    m       = max_k z_k                        (subtracted first: exp never overflows)
    lse     = m + log(sum_k exp(z_k - m))      (log-sum-exp)
    log p_k = z_k - lse                        p_k = exp(z_k - m) / sum_j exp(z_j - m)

A segmentation model's scores have a short last axis (K classes, often 2 to 10) and a long rest (every pixel).
NumPy reduces such a short axis slowly, one tiny reduction per pixel for each of max, exp-sum and log, so
the Numba kernel gives each thread a block of pixels and does the whole row in registers.

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


def softmax_with_lse_numpy(z):
    m = z.max(axis=-1, keepdims=True)
    e = np.exp(z - m)
    total = e.sum(axis=-1, keepdims=True)
    return e / total, (m.astype(np.float64) + np.log(total, dtype=np.float64))[..., 0]


@pjit
def _softmax_rows(chunk, chunks, z, take_log, out, lse):
    m_rows, k = z.shape
    r0, r1 = piece(m_rows, chunk, chunks)      # this thread's rows
    for r in range(r0, r1):
        m = z[r, 0]
        for j in range(1, k):
            m = max(m, z[r, j])
        s = 0.0
        for j in range(k):
            e = np.exp(z[r, j] - m)            # one exp per score: it is most of the kernel's time
            out[r, j] = e
            s += e
        row_lse = m + np.log(s)
        lse[r] = row_lse
        for j in range(k):
            out[r, j] = z[r, j] - row_lse if take_log else out[r, j] / s


def _rows(z, take_log):
    z2 = np.ascontiguousarray(z).reshape(-1, z.shape[-1])
    out, lse = np.empty_like(z2), np.empty(z2.shape[0])          # lse in float64 (see softmax_with_lse)
    run_pieces(_softmax_rows, z2, take_log, out, lse)
    return out.reshape(z.shape), lse.reshape(z.shape[:-1])


def log_softmax(z):
    """log softmax(z) over the last axis, same shape and dtype as z."""
    return log_softmax_numpy(z) if get_backend() == "numpy" else _rows(z, True)[0]


def softmax(z):
    """softmax(z) over the last axis, same shape and dtype as z."""
    return softmax_numpy(z) if get_backend() == "numpy" else _rows(z, False)[0]


def softmax_with_lse(z):
    """(softmax(z), lse) for z (…, K): the softmax over the last axis, same shape and dtype as z, and each
    row's log-sum-exp (…,) in float64, from one exp per score. log softmax(z)_k = z_k - lse, with no log of p
    (which may round to 0) and no float32 rounding of lse (whose digits z_k - lse would lose for large z)."""
    return softmax_with_lse_numpy(z) if get_backend() == "numpy" else _rows(z, False)
