"""The known edge cases of windows with padding and strides, named once, so that every property test of a
layer with padding or strides runs them on every run, as explicit examples ahead of hypothesis's random draws.

A random draw meets such a case only by luck: an off-by-one in the 'same' crop of a transposed convolution
when K - s is odd (kernel (1, 2), stride 1) was caught by a parity test's 20 random draws in about 94% of runs.
As an example it fails every run. Each test file turns these cases into the arguments its own @given draws,
and applies them with

    @examples([dict(cfg=c, use_bias=True) for c in conv_cases()])      # under @given (or above it)

The cases, by what they pin (Keras's 'same': out = ceil(H / s), total pad = max((out - 1)*s + K' - H, 0) with
K' = (K - 1)*d + 1, the odd pad after the image: bottom/right; a transposed convolution's total is max(K - s, 0)):
- odd and even K - s, on each axis alone and on both;
- strides with odd and even K - s;
- a 1-pixel image under a larger 'same' window: padding on all four sides;
- a stride larger than the kernel: rows and columns that no window reads (or, transposed, that no kernel
  reaches: zeros plus the bias);
- a window as large as the image ('valid': one output pixel);
- dilation: a span that is even, odd, or larger than the image;
- explicit pads (the kernels' arguments): padding at each border alone, asymmetric pads, and windows that
  see only padding (Keras's 'same' never makes one: its total pad is at most K' - 1).
"""
import numpy as np
from hypothesis import example, given

# (H, W), kernel (KH, KW), strides (SH, SW), dilation (DH, DW), padding
WINDOWS = [
    ((3, 4), (1, 2), (1, 1), (1, 1), "same"),     # K - s = 0 on rows, 1 on columns: one pad column, right
    ((4, 3), (2, 1), (1, 1), (1, 1), "same"),     # K - s = 1 on rows only: one pad row, at the bottom
    ((4, 4), (3, 3), (1, 1), (1, 1), "same"),     # K - s = 2: one pad on every side
    ((3, 5), (4, 4), (1, 1), (1, 1), "same"),     # K - s = 3: 1 before, 2 after, on both axes
    ((5, 7), (3, 4), (2, 3), (1, 1), "same"),     # strided, K - s = 1 on both axes
    ((6, 5), (4, 3), (2, 1), (1, 1), "same"),     # strided, K - s = 2 on both axes
    ((1, 1), (4, 3), (1, 1), (1, 1), "same"),     # a 1-pixel image in a wider window: pads on four sides
    ((7, 7), (1, 2), (3, 3), (1, 1), "same"),     # stride larger than the kernel
    ((7, 8), (2, 1), (3, 2), (1, 1), "valid"),    # the same, 'valid': rows and columns no window reads
    ((3, 2), (3, 2), (1, 1), (1, 1), "valid"),    # one window: the whole image
]
DILATED = [
    ((5, 6), (2, 2), (1, 1), (2, 3), "same"),     # spans 3 and 4: pads (1, 1) and (1, 2)
    ((7, 5), (3, 2), (1, 1), (3, 1), "valid"),    # span 7 = H: one row of windows
    ((3, 4), (3, 3), (1, 1), (2, 2), "same"),     # span 5, larger than the image: pads (2, 2) and (2, 2)
]
# Explicit pads (top, bottom, left, right), as the kernels take them: (H, W), kernel, strides, dilation, pads
PADDED = [
    ((3, 3), (2, 2), (1, 1), (1, 1), (1, 0, 0, 0)),     # padding at each border alone ...
    ((3, 3), (2, 2), (1, 1), (1, 1), (0, 1, 0, 0)),
    ((3, 3), (2, 2), (1, 1), (1, 1), (0, 0, 1, 0)),
    ((3, 3), (2, 2), (1, 1), (1, 1), (0, 0, 0, 1)),
    ((2, 3), (1, 1), (1, 1), (1, 1), (2, 2, 2, 1)),     # 1x1 windows on the pads: outputs that see only padding
    ((1, 2), (2, 2), (1, 2), (1, 1), (2, 2, 3, 0)),     # 2x2 windows wholly in the top, bottom and left pads
    ((7, 7), (1, 2), (3, 3), (1, 1), (0, 1, 1, 0)),     # stride larger than the kernel, asymmetric pads
    ((4, 5), (2, 3), (2, 1), (3, 2), (1, 2, 0, 1)),     # dilated and strided, asymmetric pads
]


def examples(cases):
    """A decorator adding each case as a hypothesis @example: a dict gives the test's arguments by name, a
    tuple by position."""
    def decorate(test):
        for case in reversed(list(cases)):
            test = example(**case)(test) if isinstance(case, dict) else example(*case)(test)
        return test
    return decorate


def edge_cases_then_drawn(settings_, strategy, edge_cases, name="case"):
    """One decorator for @settings_, @given(name=strategy) and @examples(name=each edge case): the test runs on
    every edge case first, then on what hypothesis draws."""
    def decorate(test):
        return settings_(given(**{name: strategy})(examples([{name: case} for case in edge_cases])(test)))
    return decorate


def _out(size, kernel, stride, dilation, before, after):
    return (size + before + after - (kernel - 1) * dilation - 1) // stride + 1


def padded_window_cases():
    """PADDED as tests/strategies.padded_windows draws them: dicts of hw, kernel, strides, dilation, pads,
    out_hw."""
    cases = []
    for hw, kernel, strides, dilation, pads in PADDED:
        out_hw = tuple(_out(hw[i], kernel[i], strides[i], dilation[i], pads[2 * i], pads[2 * i + 1]) for i in (0, 1))
        cases.append(dict(hw=hw, kernel=kernel, strides=strides, dilation=dilation, pads=pads, out_hw=out_hw))
    return cases


def window_cases(dilated=False, strided_dilation=False, padding=None, strides=None):
    """WINDOWS (and with dilated=True, DILATED too) as (hw, kernel, strides, dilation, padding); padding and
    strides keep only the cases with that padding and those strides. strided_dilation=True adds a dilated
    strided case (DepthwiseConv2D takes both; Conv2D does not, as in Keras)."""
    cases = list(WINDOWS) + (list(DILATED) if dilated else [])
    if strided_dilation:
        cases.append(((6, 7), (2, 3), (2, 3), (2, 1), "same"))
    return [c for c in cases if (padding is None or c[4] == padding) and (strides is None or c[2] == strides)]


def conv_cases(dilated=False, strided_dilation=False, padding=None, strides=None, **extra):
    """The cases as the convolution layer tests' configs: n, h, w, c, filters, kernel_size, strides, padding,
    seed (and dilation_rate with dilated=True), plus `extra` (e.g. depth_multiplier)."""
    cases = []
    for i, (hw, kernel, stride, dilation, pad) in enumerate(window_cases(dilated, strided_dilation, padding, strides)):
        cfg = dict(n=2, h=hw[0], w=hw[1], c=2, filters=3, kernel_size=kernel, strides=stride, padding=pad,
                   seed=1000 + i, **extra)
        if dilated:
            cfg["dilation_rate"] = dilation
        cases.append(cfg)
    return cases


def pool_cases(dtypes=("float32", "float64"), paddings=("valid", "same")):
    """The undilated cases as the pooling tests' dicts: shape, pool_size, strides, padding, dtype, seed, ties;
    and two with strides=None (Keras's default: the pool size), one that pads and one that does not. Every
    other case has ties (small integers: tied maxima)."""
    geometry = [(hw, k, s, p) for hw, k, s, _, p in WINDOWS]
    geometry += [((5, 7), (2, 3), None, "same"), ((4, 6), (2, 3), None, "valid")]
    return [dict(shape=(2,) + hw + (2,), pool_size=k, strides=s, padding=p, dtype=np.dtype(dtype).type,
                 seed=2000 + i, ties=bool(i % 2))
            for i, (hw, k, s, p) in enumerate(geometry) if p in paddings for dtype in dtypes]


# UpSampling2D: (H, W), size (FH, FW). Bilinear clamps its taps at the borders: a 1-pixel side has only border.
UPSAMPLING = [
    ((1, 1), (3, 2)),       # a 1-pixel image: every output pixel is the one input pixel
    ((1, 5), (2, 2)),       # a single row
    ((4, 1), (1, 3)),       # a single column, widened only
    ((3, 2), (4, 1)),       # heightened only
    ((2, 3), (1, 1)),       # size 1: the identity
    ((3, 4), (2, 3)),       # different even and odd factors
]
# ZeroPadding2D ((top, bottom), (left, right)) and Cropping2D: each border alone, uneven, none
BORDERS = [((1, 0), (0, 0)), ((0, 1), (0, 0)), ((0, 0), (1, 0)), ((0, 0), (0, 1)), ((3, 0), (0, 2)),
           ((0, 0), (0, 0))]


def upsampling_cases(dtypes=("float32", "float64")):
    """UPSAMPLING as the upsampling tests' dicts: shape, size, dtype, seed."""
    return [dict(shape=(2,) + hw + (2,), size=size, dtype=np.dtype(dtype).type, seed=3000 + i)
            for i, (hw, size) in enumerate(UPSAMPLING) for dtype in dtypes]


def padding_cases():
    """(shape, padding) for ZeroPadding2D: BORDERS on a 3 x 4 image, and wide pads around a 1-pixel image."""
    return [((2, 3, 4, 2), p) for p in BORDERS] + [((1, 1, 1, 2), ((2, 3), (3, 1)))]


def cropping_cases():
    """(shape, cropping) for Cropping2D: BORDERS on a 4 x 5 image, a crop down to one pixel, and a 1-pixel
    image left whole."""
    return [((2, 4, 5, 2), c) for c in BORDERS] + [((2, 4, 5, 2), ((2, 1), (0, 4))), ((1, 1, 1, 2), ((0, 0), (0, 0)))]
