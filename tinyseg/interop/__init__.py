"""Interop with other frameworks. pytorch.py converts models, weights, losses and optimizers to PyTorch and
back; it imports torch only when one of its functions needs it, so tinyseg runs without torch."""
from .pytorch import (
                      load_torch_state_dict,
                      nchw_to_nhwc,
                      nhwc_to_nchw,
                      relative_error,
                      to_torch,
                      torch_gradients,
                      torch_state_dict,
)

__all__ = ["load_torch_state_dict", "nchw_to_nhwc", "nhwc_to_nchw", "relative_error", "to_torch",
           "torch_gradients", "torch_state_dict"]
