"""Where the taps of a window fall on one axis: the index arithmetic that the loop kernels share.

Window o (an output index) starts at input index  start = o*stride - pad,  and its tap u (0 <= u < k) reads
input index  start + u*step  (step = the dilation; 1 for pooling). Input indices outside 0 .. size-1 are
padding. The two directions:

    real_taps(o, ...)       window o -> its taps that read a real input index (a forward kernel's window)
    window_index(pos, ...)  input index pos and tap offset -> the window that puts that tap on pos, if any
                            (a gather kernel of the backward: each input pixel sums what its windows send
                            it, so that every pixel is written by one thread only)

Both are small jitted functions that the kernels call inside their loops; Numba compiles them into the
caller, so a kernel pays no call for them.
"""
from .config import jit


@jit
def real_taps(o, stride, pad, k, size):
    """(start, a0, a1): window o starts at input index start = o*stride - pad, and its taps a0 <= a < a1 are
    the real ones (0 <= start + a < size), the others padding. For pooling's undilated windows."""
    start = o * stride - pad
    return start, max(0, -start), min(k, size - start)


@jit
def window_index(pos, pad, offset, stride, out_len):
    """The output index whose window puts kernel offset `offset` on input position `pos`, or -1 if none.

    Window j starts at j * stride - pad, so it covers pos at offset pos + pad - j * stride; solving for j.
    With dilation d, tap a sits at offset a * d, which is what the gather kernels pass.
    """
    t = pos + pad - offset
    if t < 0 or t % stride != 0 or t // stride >= out_len:
        return -1
    return t // stride
