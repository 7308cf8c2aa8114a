"""PyTorch interop in one import: the same network with the same weights as a torch.nn.Module, and back.

    from tinyseg.interop import pytorch as tp
    module = tp.to_torch(model); tp.load_torch_state_dict(model, module.state_dict()); ...

The work is split by job, one module each (this one only gathers their names):

    conventions.py     every difference between Keras's and PyTorch's ways, one NumPy function each, and the
                       table of them (CONVENTIONS_TABLE, which the README repeats)
    tensors.py         NumPy <-> torch, and relative_error
    torch_modules.py   the torch.nn modules that follow Keras's rules (imports torch; the others import it
                       only inside the functions that need it, so tinyseg runs without torch)
    convert.py         layers and models to torch modules and state dicts, and weights back
    training.py        losses, targets and optimizers converted; comparing two runs
"""
from .conventions import (  # noqa: F401
    CONVENTIONS_TABLE,
    adam_epsilon_keras_to_torch,
    bn_momentum_from_torch,
    bn_momentum_to_torch,
    conv_kernel_from_torch,
    conv_kernel_to_torch,
    conv_transpose_kernel_from_torch,
    conv_transpose_kernel_to_torch,
    dense_kernel_from_torch,
    dense_kernel_to_torch,
    depthwise_kernel_from_torch,
    depthwise_kernel_to_torch,
    flatten_permutation,
    keras_pads,
    nchw_to_nhwc,
    nhwc_axis_to_nchw,
    nhwc_to_nchw,
    torch_pad_widths,
    transposed_conv_crop,
)
from .convert import (  # noqa: F401
    MERGE_LAYERS,
    layer_to_torch,
    layer_weights_from_torch,
    layer_weights_to_torch,
    load_torch_state_dict,
    merge_layer_to_torch,
    to_torch,
    torch_gradients,
    torch_modules,
    torch_state_dict,
)
from .tensors import (  # noqa: F401
    INSTALL_HINT,
    relative_error,
    require_torch,
    to_numpy,
    to_tensor,
    torch_dtype,
)
from .training import (  # noqa: F401
    gradient_differences,
    targets_to_torch,
    to_torch_loss,
    to_torch_optimizer,
    weight_differences,
)


def __getattr__(name):
    """`from tinyseg.interop.pytorch import KerasConv2d`: the torch modules, imported (with torch) on demand."""
    if name[:1].isupper():
        modules = torch_modules()
        if hasattr(modules, name):
            return getattr(modules, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["adam_epsilon_keras_to_torch", "bn_momentum_from_torch", "bn_momentum_to_torch",
           "conv_kernel_from_torch", "conv_kernel_to_torch", "conv_transpose_kernel_from_torch",
           "depthwise_kernel_from_torch", "depthwise_kernel_to_torch",
           "conv_transpose_kernel_to_torch", "dense_kernel_from_torch", "dense_kernel_to_torch",
           "flatten_permutation", "gradient_differences", "keras_pads", "layer_to_torch",
           "layer_weights_from_torch", "layer_weights_to_torch", "load_torch_state_dict", "merge_layer_to_torch",
           "nchw_to_nhwc", "nhwc_axis_to_nchw", "nhwc_to_nchw", "relative_error", "targets_to_torch", "to_numpy",
           "to_tensor", "to_torch",
           "to_torch_loss", "to_torch_optimizer", "torch_dtype", "torch_gradients", "torch_modules",
           "torch_pad_widths", "torch_state_dict", "transposed_conv_crop", "weight_differences"]
