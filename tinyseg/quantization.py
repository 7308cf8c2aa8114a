"""Smaller weights after training: int8 with one scale per output channel, and float16.

int8, symmetric, per output channel. Post-training: the trained float32 weights are rounded once, with no
retraining. For a kernel W whose axis k numbers the output channels (the last axis of a Conv2D kernel
(KH, KW, C_in, C_out) and of a Dense kernel (D, U); axis -2 of a Conv2DTranspose kernel (KH, KW, F, C)),

    s_k = max |W[..., k]| / 127                 one float32 scale per output channel
    q   = clip(round(W / s_k), -127, 127)       int8, of W's shape
    W  ~= q * s_k                               dequantize

Rounding moves W / s_k by at most 1/2, so every element keeps  |W - q s_k| <= s_k / 2  (plus the float32
rounding of the product q * s_k, at most 2^-24 |W|). The clip never bites: |W / s_k| <= 127 by the choice
of s_k; it is there so that no value can wrap around in int8. -128 is not used, so the range is symmetric
(-q is an int8 whenever q is). A channel of zeros gets s_k = 0 and q = 0, and comes back exactly. The bound
assumes s_k is a normal float32 (max |W[..., k]| above 127 * 2^-126, about 1.5e-36).

Per channel rather than per tensor (one s for the whole kernel): a channel whose weights are all small gets a
small s_k, so its error s_k / 2 is small too. With one scale every channel's error is set by the largest
weight of the whole kernel, and a layer with one large channel rounds the others' weights to a few levels.

Which weights: the kernels of Conv2D, Conv2DTranspose and Dense, and the depthwise and pointwise kernels of
DepthwiseConv2D and SeparableConv2D: nearly all the numbers of a model. Biases and BatchNormalization's
gamma, beta and moving statistics stay float32, for three reasons: there is one of each per channel (0.6% of
the numbers of a U-Net with 16 base filters), so int8 would save almost nothing; each is added to (or multiplies) every
output of its channel, so its rounding error is not averaged over the many terms of a dot product as a
kernel's is; and BatchNormalization divides by sqrt(moving_variance + eps), which magnifies the error of a
small variance.

float16: w16 = float16(w). A float16 keeps 11 significant bits, so round-to-nearest gives
|w16 - w| <= 2^-11 |w| for |w| in float16's normal range [2^-14, 65504]; below 2^-14 (subnormal numbers)
the error is at most 2^-25, absolute. A value that would become inf (|w| beyond 65504) is refused.

Sizes (weight_bytes): 4 bytes a weight in float32, 2 in float16; in int8, 1 byte a quantized weight plus
4 bytes a scale, and 4 bytes each for the weights left in float32.

Weight-only quantization stores and moves fewer bytes; the model still computes in float32 (its weights are
dequantized once, after loading), so a prediction takes as long as before. A faster prediction would need
products computed in int8, which tinyseg does not have.

Files: save_quantized writes the format of saving.py (a .npz archive: a JSON header and arrays, nothing
pickled) with the int8 or float16 arrays and the float32 scales; load_quantized reads them back, exactly.
"""
import os
from typing import NamedTuple, Optional

import numpy as np

from .layers import Conv2D, Conv2DTranspose, Dense, SeparableConv2D
from .saving import FORMAT_VERSION, _read, _write
from .validation import ArgumentError, one_of

QMAX = 127                                   # int8 range used: [-127, 127], symmetric
FLOAT16_RELATIVE_ERROR = 2.0 ** -11          # half a unit in the last of float16's 11 significant bits
FLOAT16_SMALLEST_NORMAL = 2.0 ** -14
SCHEMES = ("float32", "float16", "int8")
QUANTIZED_FORMAT = "tinyseg-quantized-weights"
_STORED_DTYPE = {"float32": np.float32, "float16": np.float16, "int8": np.int8}


# --- arrays ----------------------------------------------------------------------------------------------
def _float_array(w, argument):
    """w if it is a NumPy float array of finite values, non-empty; else an error naming `argument`."""
    if not isinstance(w, np.ndarray):
        raise ArgumentError(f"{argument} must be a NumPy array, got {type(w).__name__}")
    if w.dtype.kind != "f":
        raise ArgumentError(f"{argument} must hold floats (float16, float32 or float64), got dtype {w.dtype}")
    if w.size == 0:
        raise ArgumentError(f"{argument} is empty (shape {w.shape}): there is nothing to quantize")
    if not np.all(np.isfinite(w)):
        raise ArgumentError(f"{argument} holds NaN or inf: only finite weights have a scale")
    return w


def _channel_axes(axis, ndim):
    """The output-channel axes as a tuple of non-negative ints: () for axis=None (one scale for all)."""
    if axis is None:
        return ()
    axes = axis if isinstance(axis, tuple) else (axis,)
    out = []
    for a in axes:
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim:
            raise ArgumentError(f"axis must be None, an integer or a tuple of integers in [-{ndim}, {ndim}) for "
                                f"an array of {ndim} axes, got {axis!r}")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ArgumentError(f"axis names the same axis twice: {axis!r}")
    return tuple(out)


def quantize(w, axis=-1):
    """(q, scale): symmetric int8 quantization of the float array w with one scale per index of `axis`.

    axis: the output-channel axis (-1 for Conv2D and Dense kernels, -2 for Conv2DTranspose), a tuple of
    axes (a depthwise kernel's (-2, -1)), or None for one scale for the whole array (per tensor).
    Returns q (int8, w's shape) and scale (float32, w's number of axes, 1 on every axis but the channel
    axes), so that dequantize(q, scale) = q * scale ~ w with |w - q * scale| <= scale / 2 (module docstring).
    """
    w = _float_array(w, "quantize: w")
    axes = _channel_axes(axis, w.ndim)
    others = tuple(i for i in range(w.ndim) if i not in axes)
    w64 = w.astype(np.float64)
    scale = (np.max(np.abs(w64), axis=others, keepdims=True) / QMAX).astype(np.float32)   # s_k
    divisor = np.where(scale > 0, scale, 1).astype(np.float64)              # a zero channel: q = 0
    q = np.clip(np.rint(w64 / divisor), -QMAX, QMAX).astype(np.int8)        # round(W / s_k), clipped
    return q, scale


def dequantize(q, scale):
    """q * scale as float32: the weights int8 quantization stands for. q: int8; scale: float32 with q's number
    of axes, each of size 1 or q's (as quantize returns it); nothing else is broadcast."""
    if not isinstance(q, np.ndarray) or q.dtype != np.int8:
        raise ArgumentError(f"dequantize: q must be an int8 NumPy array, got "
                            f"{getattr(q, 'dtype', type(q).__name__)}")
    if not isinstance(scale, np.ndarray) or scale.dtype != np.float32:
        raise ArgumentError(f"dequantize: scale must be a float32 NumPy array, got "
                            f"{getattr(scale, 'dtype', type(scale).__name__)}")
    if scale.ndim != q.ndim or any(s not in (1, n) for s, n in zip(scale.shape, q.shape)):
        raise ArgumentError(f"dequantize: scale has shape {scale.shape}; for q of shape {q.shape} expected "
                            f"{q.ndim} axes, each of size 1 or q's")
    if not np.all(np.isfinite(scale)) or np.any(scale < 0):
        raise ArgumentError("dequantize: scale must hold finite numbers >= 0")
    return q.astype(np.float32) * scale


def to_float16(w):
    """w stored as float16: |w16 - w| <= 2^-11 |w| for |w| >= 2^-14 (module docstring). A value beyond
    float16's range (|w| > 65504) is refused rather than turned into inf."""
    w = _float_array(w, "to_float16: w")
    with np.errstate(over="ignore"):
        w16 = w.astype(np.float16)
    if not np.all(np.isfinite(w16)):
        raise ArgumentError(f"to_float16: w holds values beyond float16's range (largest |w| "
                            f"{float(np.max(np.abs(w))):.6g}, float16 stops at {float(np.finfo(np.float16).max):g})")
    return w16


def from_float16(w16):
    """A float16 array back as float32 (exact: every float16 is a float32)."""
    if not isinstance(w16, np.ndarray) or w16.dtype != np.float16:
        raise ArgumentError(f"from_float16: w16 must be a float16 NumPy array, got "
                            f"{getattr(w16, 'dtype', type(w16).__name__)}")
    return w16.astype(np.float32)


# --- a model's weights -----------------------------------------------------------------------------------
class StoredWeight(NamedTuple):
    """One weight of a model as a scheme stores it: 'int8' (values q, scale), 'float16' or 'float32' (values,
    scale None)."""

    scheme: str
    values: np.ndarray
    scale: Optional[np.ndarray] = None

    @property
    def nbytes(self):
        return self.values.nbytes + (0 if self.scale is None else self.scale.nbytes)


def output_channel_axis(layer, name):
    """The output-channel axis of the weight `name` of `layer` if int8 quantizes it (a kernel), else None."""
    if name == getattr(layer, "depthwise_key", None):       # DepthwiseConv2D's 'kernel', SeparableConv2D's
        return (-2, -1)                                      # 'depthwise_kernel': (KH, KW, C, M), output c*M + m
    if name == "kernel" and isinstance(layer, Conv2DTranspose):
        return -2                                            # (KH, KW, F, C): F are the outputs
    if name == "kernel" and isinstance(layer, (Conv2D, Dense)):
        return -1                                            # (KH, KW, C, F) and (D, U)
    if name == "pointwise_kernel" and isinstance(layer, SeparableConv2D):
        return -1                                            # (1, 1, C * M, F)
    return None


def quantize_weights(model, scheme="int8"):
    """[StoredWeight] in get_weights() order: every weight as `scheme` stores it.

    'int8': kernels quantized per output channel, the other weights float32 (module docstring says why);
    'float16': every weight float16; 'float32': every weight as float32 (copies, for comparison)."""
    one_of(scheme, "quantize_weights: scheme", SCHEMES)
    stored = []
    for layer in model.layers:
        for name, w in zip(layer.weight_names(), layer.get_weights()):
            try:
                axis = output_channel_axis(layer, name)
                if scheme == "int8" and axis is not None:
                    stored.append(StoredWeight("int8", *quantize(w, axis)))
                elif scheme == "float16":
                    stored.append(StoredWeight("float16", to_float16(w)))
                else:
                    stored.append(StoredWeight("float32", w.astype(np.float32)))
            except ArgumentError as err:
                raise ArgumentError(f"quantize_weights: layer '{layer.name}', weight '{name}': {err}") from None
    return stored


def dequantize_weights(stored):
    """The float32 arrays a list of StoredWeight stands for, in its order: what model.set_weights takes."""
    if not isinstance(stored, (list, tuple)) or not all(isinstance(s, StoredWeight) for s in stored):
        raise ArgumentError("dequantize_weights: stored must be a list of StoredWeight (as quantize_weights "
                            "or load_quantized return)")
    return [dequantize(s.values, s.scale) if s.scheme == "int8" else s.values.astype(np.float32) for s in stored]


def weight_bytes(model, scheme="float32"):
    """The bytes a model's weights take when stored as `scheme` ('float32', 'float16' or 'int8': values and
    scales), without the file's own headers."""
    return sum(s.nbytes for s in quantize_weights(model, scheme))


# --- files -----------------------------------------------------------------------------------------------
def save_quantized(model, path, scheme="int8"):
    """Write the model's weights as `scheme` stores them to `path` (saving.py's format, atomically): the
    header lists each weight's scheme; the arrays are each weight's values, and after an int8 one its scale."""
    stored = quantize_weights(model, scheme)
    arrays = [a for s in stored for a in ((s.values, s.scale) if s.scheme == "int8" else (s.values,))]
    header = {"format": QUANTIZED_FORMAT, "format_version": FORMAT_VERSION, "num_weights": len(arrays),
              "schemes": [s.scheme for s in stored]}
    _write(path, header, arrays, [])


def load_quantized(path):
    """[StoredWeight] from a file of save_quantized, every array checked against its scheme; the arrays are
    the ones saved, bit for bit. model.set_weights(dequantize_weights(load_quantized(path))) puts them back."""
    path = os.fspath(path)
    header, arrays = _read(path, "load_quantized", QUANTIZED_FORMAT)
    schemes, arrays = header.get("schemes"), list(arrays["weights"])

    def refuse(reason):
        return ValueError(f"load_quantized: {path!r} is damaged ({reason})")

    if not (isinstance(schemes, list) and all(isinstance(s, str) and s in SCHEMES for s in schemes)):
        raise refuse(f"its schemes must be a list of {SCHEMES}, got {schemes!r}")
    if sum(2 if s == "int8" else 1 for s in schemes) != len(arrays):
        raise refuse(f"its {len(schemes)} schemes need {sum(2 if s == 'int8' else 1 for s in schemes)} arrays, "
                     f"it holds {len(arrays)}")
    stored = []
    for i, scheme in enumerate(schemes):
        values = arrays.pop(0)
        scale = arrays.pop(0) if scheme == "int8" else None
        if values.dtype != _STORED_DTYPE[scheme]:
            raise refuse(f"weight {i} is {scheme} but its array has dtype {values.dtype}")
        try:
            dequantize(values, scale) if scale is not None else _float_array(values, f"weight {i}")
        except ArgumentError as err:
            raise refuse(f"weight {i}: {err}") from None
        stored.append(StoredWeight(scheme, values, scale))
    return stored


__all__ = ["FLOAT16_RELATIVE_ERROR", "QMAX", "SCHEMES", "StoredWeight", "dequantize", "dequantize_weights",
           "from_float16", "load_quantized", "output_channel_axis", "quantize", "quantize_weights",
           "save_quantized", "to_float16", "weight_bytes"]
