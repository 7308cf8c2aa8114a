"""Moving numbers between NumPy and torch, and comparing them: the small helpers every interop module uses.

torch is imported inside the functions that need it, so importing tinyseg.interop needs no torch.
"""
import numpy as np

INSTALL_HINT = "pip install -e '.[compare]'"


def require_torch():
    """Import torch, or explain how to install it."""
    try:
        import torch
    except ImportError as err:
        raise ImportError(f"tinyseg.interop needs PyTorch; install it with: {INSTALL_HINT}") from err
    return torch


def import_torch_modules():
    """tinyseg/interop/torch_modules.py (the torch.nn modules that follow Keras's rules), imported on first
    use; without torch, an ImportError that says how to install it."""
    require_torch()
    import importlib
    return importlib.import_module(".torch_modules", __package__)


def relative_error(a, b):
    """max|a - b| / max(max|a|, max|b|), 0 when both are zero: the error relative to the arrays' scale.

    Scale-wise rather than element-wise: an entry that is tiny because of cancellation (a batch-norm input
    gradient sums to zero per channel) would make an element-wise ratio meaningless.
    """
    a, b = to_numpy(a).astype(np.float64), to_numpy(b).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"relative_error: shapes differ, {a.shape} and {b.shape}")
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0))
    return 0.0 if scale == 0 else float(np.abs(a - b).max() / scale)


def to_numpy(x):
    """A tensor (detached, on the CPU) or anything array-like as a NumPy array."""
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def to_tensor(x, dtype=None, requires_grad=False):
    """A NumPy array as a new torch tensor (a copy; `dtype` a NumPy or torch dtype, default x's)."""
    torch = require_torch()
    t = torch.tensor(np.ascontiguousarray(to_numpy(x)))
    if dtype is not None:
        t = t.to(torch_dtype(dtype))
    return t.requires_grad_(requires_grad)


def torch_dtype(dtype):
    """np.float32 / 'float64' / torch.float64 -> the torch dtype."""
    torch = require_torch()
    if isinstance(dtype, torch.dtype):
        return dtype
    return {np.dtype("float32"): torch.float32, np.dtype("float64"): torch.float64}[np.dtype(dtype)]
