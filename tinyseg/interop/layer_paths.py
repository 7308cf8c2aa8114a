"""Where each layer of a model sits in its torch module, and the order of flattened features there.

    named_layers(model) -> [(module path, layer, feature_perm), ...]       in model order

The module path is the layer's prefix in the state_dict: '<index>' in an nn.Sequential, 'encoders.<level>.<j>',
'ups.<i>.<j>', 'head', ... in a TorchUNet, 'layers.<layer name>' in a TorchGraph. feature_perm is None except
for a layer that reads flattened image features (a Dense, or a 1-D BatchNorm, after a Flatten): PyTorch
flattens (C, H, W) where tinyseg flattens (H, W, C), and flatten_permutation maps one order to the other.
"""
import numpy as np

from ..graph import InputLayer
from ..layers import Activation, BatchNormalization, Concatenate, Dense, Dropout, Flatten
from ..layers.activations import ActivationFunction
from ..models.model import Model
from ..models.sequential import Sequential
from ..models.unet import UNet
from .conventions import flatten_permutation


def _feature_perms(layers):
    """For each layer of a Sequential: the flatten_permutation of its input features, or None.

    After a Flatten of (H, W, C) images the features are in PyTorch's (C, H, W) order until the next Dense,
    which maps them back to one order both frameworks share.
    """
    perm, perms = None, []
    for layer in layers:
        perms.append(perm)
        if isinstance(layer, Flatten):
            if len(layer.input_shape) == 3:
                perm = flatten_permutation(layer.input_shape)
            elif len(layer.input_shape) != 1:
                raise ValueError(f"{layer.name}: only (H, W, C) images or vectors can be flattened for PyTorch, "
                                 f"got input shape {layer.input_shape}")
        elif isinstance(layer, Dense):
            perm = None
        elif perm is not None and not isinstance(layer, (BatchNormalization, Dropout, ActivationFunction,
                                                          Activation)):
            raise ValueError(f"{layer.name}: a {type(layer).__name__} between a Flatten and the next Dense has "
                             "no PyTorch conversion (the features are in a different order there)")
    if perm is not None:
        raise ValueError("the model ends with flattened image features, which PyTorch orders (C, H, W) and "
                         "tinyseg (H, W, C): end it with a Dense layer to compare outputs")
    return perms


def named_layers(model):
    """(torch module path, layer, feature_perm) for every layer that has a torch module, in model order."""
    if isinstance(model, UNet):
        out = [(f"encoders.{i}.{j}", layer) for i, block in enumerate(model.encoders)
               for j, layer in enumerate(block)]
        out += [(f"pools.{i}", pool) for i, pool in enumerate(model.pools)]
        out += [(f"bottleneck.{j}", layer) for j, layer in enumerate(model.bottleneck)]
        out += [(f"ups.{i}.{j}", layer) for i, block in enumerate(model.ups) for j, layer in enumerate(block)]
        out += [(f"decoders.{i}.{j}", layer) for i, block in enumerate(model.decoders)
                for j, layer in enumerate(block)]
        out.append(("head", model.head))
        return [(path, layer, None) for path, layer in out]
    if isinstance(model, Sequential):
        return [(str(i), layer, perm) for i, (layer, perm) in enumerate(zip(model.layers,
                                                                             _feature_perms(model.layers)))]
    if isinstance(model, Model) and model._graph is not None:
        perms = _graph_feature_perms(model)
        out = []
        for layer in model.layers:
            if isinstance(layer, InputLayer):
                continue
            if "." in layer.name or not layer.name:
                raise ValueError(f"{layer.name!r}: a layer name used as a torch module name must be non-empty "
                                 "and hold no '.'")
            out.append((f"layers.{layer.name}", layer, perms.get(layer)))
        return out
    raise TypeError(f"expected a built tinyseg Model (Sequential, UNet or Model(inputs, outputs)), got "
                    f"{type(model).__name__} (use layer_to_torch for a single layer)")


_PASS_FEATURES = (BatchNormalization, Dropout, ActivationFunction, Activation)   # keep a flattened feature order


def _graph_feature_perms(model):
    """{layer: flatten_permutation of its input features} for the layers that read flattened image features
    (a Dense or a 1-D BatchNorm after a Flatten, possibly through dropout, activations and elementwise merges
    of equally ordered features), as _feature_perms does for a chain."""
    graph = model._graph
    perm_of = {id(t): None for t in graph.inputs}       # tensor -> the torch order of its features, or None
    layer_perm = {}
    for node in graph.nodes:
        layer = node.layer
        perm_in = _joined_perm(layer, [perm_of[id(t)] for t in node.inputs])
        perm_out, reads_features = _perm_through(layer, perm_in)
        if reads_features:
            if layer in layer_perm and not _same_perm(layer_perm[layer], perm_in):
                raise ValueError(f"{layer.name}: a layer shared by calls whose features are ordered differently "
                                 "has no PyTorch conversion")
            layer_perm[layer] = perm_in
        perm_of[id(node.output)] = perm_out
    if any(perm_of[id(t)] is not None for t in graph.outputs):
        raise ValueError("the model ends with flattened image features, which PyTorch orders (C, H, W) and "
                         "tinyseg (H, W, C): end it with a Dense layer to compare outputs")
    return {layer: p for layer, p in layer_perm.items() if p is not None}


def _joined_perm(layer, perms):
    """The feature order of a node's inputs: they must agree, and a Concatenate cannot join flattened ones."""
    if any(not _same_perm(p, perms[0]) for p in perms[1:]) or (perms[0] is not None and
                                                                isinstance(layer, Concatenate)):
        raise ValueError(f"{layer.name}: joins flattened image features, which PyTorch orders (C, H, W) and "
                         "tinyseg (H, W, C); join them after a Dense")
    return perms[0]


def _perm_through(layer, perm_in):
    """(the feature order of the layer's output, whether the layer's weights read its input's order)."""
    if isinstance(layer, Flatten):
        if perm_in is not None:
            raise ValueError(f"{layer.name}: a Flatten of flattened features has no PyTorch conversion")
        return (flatten_permutation(layer.input_shape) if len(layer.input_shape) == 3 else None), False
    if isinstance(layer, Dense):
        return None, True
    if isinstance(layer, _PASS_FEATURES) or layer.multiple_inputs:
        return perm_in, True
    if perm_in is not None:
        raise ValueError(f"{layer.name}: a {type(layer).__name__} between a Flatten and the next Dense has "
                         "no PyTorch conversion (the features are in a different order there)")
    return None, False


def _same_perm(a, b):
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
