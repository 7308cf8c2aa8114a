"""Weights both ways: each layer's parameters in PyTorch's names and layouts, and a model's state_dict.

    layer_weights_to_torch(layer)       {torch name: array in torch's layout}, e.g. {'weight': (O, I, KH, KW), 'bias'}
    layer_weights_from_torch(layer, t)  the layer's get_weights() list back from {torch name: tensor}
    torch_state_dict(model)             {'<module path>.<torch name>': tensor} for to_torch(model).load_state_dict
    torch_gradients(model)              the model's last gradients, named and laid out as param.grad
    load_torch_state_dict(model, sd)    a (trained) state_dict back into the model, all or nothing

Every layout change is one function of conventions.py (cv.); the module paths come from layer_paths.py.
"""
from collections import OrderedDict

import numpy as np

from ..layers import BatchNormalization, Conv2D, Conv2DTranspose, Dense, DepthwiseConv2D, SeparableConv2D
from . import conventions as cv
from .layer_paths import named_layers
from .tensors import require_torch, to_numpy


# --- one layer ---------------------------------------------------------------------------------------------
def _same(a):
    return a


def _weight_converters(layer, feature_perm=None):
    """{Keras weight name: (torch name, to_torch, from_torch)} for the layer's weights in get_weights() order.

    feature_perm: for a Dense or a 1-D BatchNorm after a Flatten, the flatten_permutation of its input features.
    """
    if isinstance(layer, (DepthwiseConv2D, SeparableConv2D)):
        # DepthwiseConv2D is one grouped nn.Conv2d; SeparableConv2D a module with two ('depthwise', 'pointwise'
        # holding the bias): see KerasSeparableConv2d
        depthwise, pointwise = ("depthwise.", "pointwise.") if isinstance(layer, SeparableConv2D) else ("", "")
        m = layer.depth_multiplier
        table = {layer.depthwise_key: (depthwise + "weight", cv.depthwise_kernel_to_torch,
                                       lambda w: cv.depthwise_kernel_from_torch(w, m)),
                 "pointwise_kernel": ("pointwise.weight", cv.conv_kernel_to_torch, cv.conv_kernel_from_torch),
                 "bias": (pointwise + "bias", _same, _same)}
        return OrderedDict((name, table[name]) for name in layer.weight_names())
    if isinstance(layer, Conv2DTranspose):
        kernel = ("weight", cv.conv_transpose_kernel_to_torch, cv.conv_transpose_kernel_from_torch)
    elif isinstance(layer, Conv2D):
        kernel = ("weight", cv.conv_kernel_to_torch, cv.conv_kernel_from_torch)
    elif isinstance(layer, Dense):
        kernel = ("weight", lambda k: cv.dense_kernel_to_torch(k, feature_perm),
                  lambda w: cv.dense_kernel_from_torch(w, feature_perm))
    else:
        kernel = None
    if feature_perm is None:
        per_channel = (_same, _same)
    else:                                   # a BatchNorm on flattened features normalises each feature
        per_channel = (lambda v: v[feature_perm], lambda v: v[np.argsort(feature_perm)])
    table = {
        "kernel": kernel,
        "bias": ("bias", _same, _same),
        "gamma": ("weight",) + per_channel,
        "beta": ("bias",) + per_channel,
        "moving_mean": ("running_mean",) + per_channel,
        "moving_variance": ("running_var",) + per_channel,
    }
    converters = OrderedDict()
    for name in layer.weight_names():
        if table.get(name) is None:
            raise TypeError(f"{layer.name}: no PyTorch conversion for weight '{name}' of a "
                            f"{type(layer).__name__}")
        converters[name] = table[name]
    return converters


def _layer_arrays(layer):
    """The layer's weights by Keras name (trained params and, for batch norm, the moving statistics)."""
    return {**layer.params, **getattr(layer, "state", {})}


def layer_weights_to_torch(layer, arrays=None, feature_perm=None):
    """{torch name: NumPy array in torch's layout} for one layer.

    arrays: {Keras name: array}; default the layer's weights. Pass `layer.grads` to convert gradients (a
    gradient is laid out as its parameter). Only the names present in `arrays` are converted.
    """
    arrays = _layer_arrays(layer) if arrays is None else arrays
    return OrderedDict((tname, np.ascontiguousarray(to_t(arrays[name])))
                       for name, (tname, to_t, _) in _weight_converters(layer, feature_perm).items()
                       if name in arrays)


def layer_weights_from_torch(layer, tensors, feature_perm=None):
    """The layer's weights in Keras's get_weights() order, from {torch name: tensor or array}."""
    out = []
    for name, (tname, _, from_t) in _weight_converters(layer, feature_perm).items():
        if tname not in tensors:
            raise KeyError(f"{layer.name}: missing '{tname}' (tinyseg's '{name}') in the torch weights")
        out.append(from_t(to_numpy(tensors[tname])))
    return out


def to_state_dict(pairs):
    """{torch name: tensor} from (name, NumPy array) pairs."""
    torch = require_torch()
    return OrderedDict((name, torch.tensor(np.ascontiguousarray(a))) for name, a in pairs)


# --- a whole model -----------------------------------------------------------------------------------------
def _model_arrays(model):
    """(torch name, NumPy array) for every weight of the model, in to_torch(model).state_dict() order."""
    for path, layer, perm in named_layers(model):
        for tname, array in layer_weights_to_torch(layer, feature_perm=perm).items():
            yield f"{path}.{tname}", array
        if isinstance(layer, BatchNormalization):
            yield f"{path}.num_batches_tracked", np.array(0)      # unused with a fixed momentum


def torch_state_dict(model):
    """The model's weights as an OrderedDict {torch name: tensor} for to_torch(model).load_state_dict().

    Names as in to_torch's docstring (convert.py), layouts as in conventions.py; batch norms also get
    num_batches_tracked = 0.
    """
    return to_state_dict(_model_arrays(model))


def torch_gradients(model):
    """The gradients of the model's last backward, as {torch parameter name: tensor} laid out as param.grad.

    Compare with {name: p.grad for name, p in module.named_parameters()} after a torch backward.
    """
    pairs = []
    for path, layer, perm in named_layers(model):
        if layer.params:
            pairs += [(f"{path}.{t}", a) for t, a in
                      layer_weights_to_torch(layer, arrays=layer.grads, feature_perm=perm).items()]
    return to_state_dict(pairs)


def load_torch_state_dict(model, state_dict):
    """Copy a PyTorch state_dict (from to_torch(model), possibly trained since) into the model's weights.

    Every key the model needs must be there and no other (num_batches_tracked is accepted and ignored: a Keras
    batch norm has a fixed momentum); the arrays are converted back to Keras's layouts and cast to the model's
    dtype. All or nothing: the model is changed only when every array has been found, converted and checked
    (shape, and finite values in the model's dtype).
    """
    named = named_layers(model)
    expected = {name for name, _ in _model_arrays(model)}
    given = set(state_dict)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        raise KeyError(f"load_torch_state_dict: the state_dict does not match the model: missing {missing}, "
                       f"unexpected {unexpected}")
    checked = [_weights_from_state_dict(layer, path, state_dict, perm) for path, layer, perm in named]
    for (_, layer, _), weights in zip(named, checked):      # written only once every array has passed
        layer.set_weights(weights)


def _weights_from_state_dict(layer, path, state_dict, perm):
    """The layer's arrays under `path.` in the state_dict, in Keras's layout and the layer's dtype, checked as
    set_weights checks them (shape, a real dtype, finite values once cast), without writing them."""
    prefix = path + "."
    tensors = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    try:
        return layer.check_weights(layer_weights_from_torch(layer, tensors, perm))
    except (TypeError, ValueError) as err:
        raise type(err)(f"load_torch_state_dict: '{prefix}*' (converted to tinyseg's layout): {err}") from None

