"""Hypothesis strategies that several test files draw from. Import them as `from tests.strategies import ...`.

- seeds: a seed for np.random.default_rng, so that a failing example prints the seed that reproduces it.
- float_dtypes: float32 or float64, the two dtypes every layer and kernel computes in.
- padded_windows(): a window over an explicitly padded image (the im2col and depthwise kernels' geometry).
- dilated_conv_configs(): a dilated Conv2D, DepthwiseConv2D or SeparableConv2D layer problem.
"""
import numpy as np
from hypothesis import strategies as st

seeds = st.integers(0, 2**32 - 1)
float_dtypes = st.sampled_from([np.float32, np.float64])


@st.composite
def padded_windows(draw, max_side=7, max_kernel=4, max_stride=3, max_dilation=3, max_pad=2):
    """An image side (h, w), kernel (kh, kw), strides, dilation and pads (top, bottom, left, right; asymmetric
    allowed), with the output size out_hw:

        OH = (H + top + bottom - (KH - 1) * dh - 1) // sh + 1        (likewise OW)

    A dilated window spans (K - 1) * d + 1 pixels: the kernel shrinks until it fits the padded image."""
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    kh, kw = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    sh, sw = draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride))
    dh, dw = draw(st.integers(1, max_dilation)), draw(st.integers(1, max_dilation))
    pt, pb, pl, pr = (draw(st.integers(0, max_pad)) for _ in range(4))
    while (kh - 1) * dh + 1 > h + pt + pb:
        kh -= 1
    while (kw - 1) * dw + 1 > w + pl + pr:
        kw -= 1
    oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow = (w + pl + pr - (kw - 1) * dw - 1) // sw + 1
    return dict(hw=(h, w), kernel=(kh, kw), strides=(sh, sw), dilation=(dh, dw), pads=(pt, pb, pl, pr),
                out_hw=(oh, ow))


@st.composite
def dilated_conv_configs(draw, max_size=7, strides="any"):
    """A dilated convolution layer's problem: n, h, w, c, filters, kernel_size (1..3 each axis), strides,
    dilation_rate (1..3 each axis), padding, seed; for 'valid' the image holds at least one dilated window
    (K - 1) * d + 1. strides: 'any' draws 1..3 on each axis; 'undilated' draws them only when the dilation is 1
    on both axes (Conv2D's rule, as Keras's) and keeps (1, 1) otherwise; 'none' keeps (1, 1)."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dilation = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    if strides == "any" or (strides == "undilated" and max(dilation) == 1):
        strides = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    else:
        strides = (1, 1)
    padding = draw(st.sampled_from(["valid", "same"]))
    spans = [(k - 1) * d + 1 for k, d in zip((kh, kw), dilation)]
    lo_h, lo_w = spans if padding == "valid" else (1, 1)
    return dict(n=draw(st.integers(1, 2)), h=draw(st.integers(lo_h, max(lo_h, max_size))),
                w=draw(st.integers(lo_w, max(lo_w, max_size))), c=draw(st.integers(1, 3)),
                filters=draw(st.integers(1, 3)), kernel_size=(kh, kw), strides=strides, dilation_rate=dilation,
                padding=padding, seed=draw(seeds))
