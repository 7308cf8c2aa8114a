"""Interop with PyTorch: the same network with the same weights as a torch.nn.Module, and back.

    from tinyseg import interop
    module = interop.to_torch(model); interop.load_torch_state_dict(model, module.state_dict()); ...

Every public name is importable from here (`from tinyseg.interop import to_torch`). The work is split by job,
one module each; none imports torch at the top but torch_modules.py, which is imported on first use, so
tinyseg runs without torch:

    conventions.py     every difference between Keras's and PyTorch's ways, one NumPy function each, and the
                       table of them (CONVENTIONS_TABLE, which the README repeats)
    tensors.py         NumPy <-> torch, and relative_error
    torch_modules.py   the torch.nn modules that follow Keras's rules (import_torch_modules() gives it)
    convert.py         layers and models to torch modules
    layer_paths.py     where each layer sits in the torch module, and the order of flattened features
    weights.py         each layer's weights in torch's names and layouts, and a model's state_dict both ways
    training.py        losses, targets and optimizers converted; comparing two runs
"""
from .conventions import (
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
from .convert import MERGE_LAYERS, layer_to_torch, merge_layer_to_torch, to_torch
from .tensors import (
    INSTALL_HINT,
    import_torch_modules,
    relative_error,
    require_torch,
    to_numpy,
    to_tensor,
    torch_dtype,
)
from .training import (
    gradient_differences,
    targets_to_torch,
    to_torch_loss,
    to_torch_optimizer,
    weight_differences,
)
from .weights import (
    layer_weights_from_torch,
    layer_weights_to_torch,
    load_torch_state_dict,
    torch_gradients,
    torch_state_dict,
)

__all__ = [
    # models and layers as torch modules, and their weights both ways
    "to_torch", "layer_to_torch", "merge_layer_to_torch", "import_torch_modules", "MERGE_LAYERS",
    "torch_state_dict", "load_torch_state_dict", "torch_gradients", "layer_weights_to_torch",
    "layer_weights_from_torch",
    # training: losses, targets, optimizers, comparing runs
    "to_torch_loss", "targets_to_torch", "to_torch_optimizer", "weight_differences", "gradient_differences",
    # tensors
    "to_tensor", "to_numpy", "torch_dtype", "relative_error", "require_torch", "INSTALL_HINT",
    # the conventions, one function each
    "CONVENTIONS_TABLE", "nhwc_to_nchw", "nchw_to_nhwc", "nhwc_axis_to_nchw", "conv_kernel_to_torch",
    "conv_kernel_from_torch", "conv_transpose_kernel_to_torch", "conv_transpose_kernel_from_torch",
    "depthwise_kernel_to_torch", "depthwise_kernel_from_torch", "dense_kernel_to_torch", "dense_kernel_from_torch",
    "flatten_permutation", "bn_momentum_to_torch", "bn_momentum_from_torch", "adam_epsilon_keras_to_torch",
    "keras_pads", "torch_pad_widths", "transposed_conv_crop",
]
