"""A tinyseg layer or model as a torch.nn.Module with the same weights, and the weights back.

    module = to_torch(model)                     # NCHW in, logits out (see below), the model's dtype
    sd = torch_state_dict(model)                 # {name: tensor} that module.load_state_dict(sd) accepts
    load_torch_state_dict(model, module.state_dict())      # and back, after training in torch
    grads = torch_gradients(model)               # the model's last gradients, named and laid out as param.grad
    layer_to_torch(layer), merge_layer_to_torch(layer)      # one layer as one module

The module returns logits: model.call(x, logits=True), the scores before the last layer's activation, because
PyTorch's losses (nn.CrossEntropyLoss, nn.BCEWithLogitsLoss) take logits, as tinyseg's fused losses do.
`to_torch(model, logits=False)` keeps the final activation and then equals model.predict. Its name is in
`module.output_activation` ('softmax', 'sigmoid', ...). Images go in as NCHW; outputs come back as NCHW.
Every layout difference is converted by one function of conventions.py.
"""
from collections import OrderedDict

import numpy as np

from ..graph import InputLayer, output_activation
from ..layers import (
    Activation,
    Add,
    Average,
    AveragePooling2D,
    BatchNormalization,
    Concatenate,
    Conv2D,
    Conv2DTranspose,
    Cropping2D,
    Dense,
    DepthwiseConv2D,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
    Multiply,
    Reshape,
    SeparableConv2D,
    Subtract,
    UpSampling2D,
    ZeroPadding2D,
)
from ..layers.activations import ActivationFunction
from ..models.model import Model
from ..models.sequential import Sequential
from ..models.unet import UNet
from .conventions import (
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
    torch_pad_widths,
)
from .tensors import require_torch, to_numpy, torch_dtype


def torch_modules():
    """The module of torch.nn classes (tinyseg/interop/torch_modules.py), imported on first use."""
    require_torch()
    from . import torch_modules as modules
    return modules


# =========================================================================================================
# Weights, layer by layer: the names and layouts of every parameter
# =========================================================================================================
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
        table = {layer.depthwise_key: (depthwise + "weight", depthwise_kernel_to_torch,
                                       lambda w: depthwise_kernel_from_torch(w, m)),
                 "pointwise_kernel": ("pointwise.weight", conv_kernel_to_torch, conv_kernel_from_torch),
                 "bias": (pointwise + "bias", _same, _same)}
        return OrderedDict((name, table[name]) for name in layer.weight_names())
    if isinstance(layer, Conv2DTranspose):
        kernel = ("weight", conv_transpose_kernel_to_torch, conv_transpose_kernel_from_torch)
    elif isinstance(layer, Conv2D):
        kernel = ("weight", conv_kernel_to_torch, conv_kernel_from_torch)
    elif isinstance(layer, Dense):
        kernel = ("weight", lambda k: dense_kernel_to_torch(k, feature_perm),
                  lambda w: dense_kernel_from_torch(w, feature_perm))
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


# =========================================================================================================
# Layers and models
# =========================================================================================================
def _activation_name(layer):
    return output_activation(layer).name


MERGE_LAYERS = (Add, Subtract, Multiply, Average, Concatenate)      # several inputs: merge_layer_to_torch


def _new_module(layer, logits=False):
    """The torch module of one built tinyseg layer, with fresh (unconverted) weights.

    logits=True leaves out the layer's activation (what model.call(..., logits=True) does to the last layer).
    """
    m = torch_modules()                  # first: explains how to install torch if it is missing
    from torch import nn
    if not layer.built:
        raise ValueError(f"{layer.name}: build the layer first (give input_shape, or run it once) so its "
                         "weights exist")
    act = "linear" if logits else None
    if isinstance(layer, Conv2DTranspose):
        return m.KerasConvTranspose2d(layer.input_shape[-1], layer.filters, layer.kernel_size, layer.strides,
                                      layer.padding, layer.use_bias, act or _activation_name(layer))
    if isinstance(layer, Conv2D):
        return m.KerasConv2d(layer.input_shape[-1], layer.filters, layer.kernel_size, layer.strides,
                             layer.padding, layer.use_bias, act or _activation_name(layer), layer.dilation_rate)
    if isinstance(layer, DepthwiseConv2D):
        c = layer.input_shape[-1]
        return m.KerasConv2d(c, c * layer.depth_multiplier, layer.kernel_size, layer.strides, layer.padding,
                             layer.use_bias, act or _activation_name(layer), layer.dilation_rate, groups=c)
    if isinstance(layer, SeparableConv2D):
        return m.KerasSeparableConv2d(layer.input_shape[-1], layer.filters, layer.kernel_size, layer.strides,
                                      layer.padding, layer.use_bias, act or _activation_name(layer),
                                      layer.depth_multiplier, layer.dilation_rate)
    if isinstance(layer, Dense):
        return m.KerasLinear(layer.input_shape[0], layer.units, layer.use_bias, act or _activation_name(layer))
    if isinstance(layer, (ActivationFunction, Activation)):
        if logits:
            return nn.Identity()
        name = output_activation(layer).name
        return m.activation_module(name)
    if isinstance(layer, MaxPooling2D):
        return m.KerasMaxPool2d(layer.pool_size, layer.strides, layer.padding)
    if isinstance(layer, AveragePooling2D):
        return m.KerasAvgPool2d(layer.pool_size, layer.strides, layer.padding)
    if isinstance(layer, UpSampling2D):
        if layer.interpolation == "bilinear":
            return nn.Upsample(scale_factor=layer.size, mode="bilinear", align_corners=False)
        return nn.Upsample(scale_factor=layer.size, mode="nearest")
    if isinstance(layer, BatchNormalization):
        return m.KerasBatchNorm(layer.input_shape[-1], layer.epsilon, bn_momentum_to_torch(layer.momentum),
                                scale=layer.scale, center=layer.center)
    if isinstance(layer, Flatten):
        return nn.Flatten()
    if isinstance(layer, Dropout):
        return nn.Dropout(layer.rate)
    if isinstance(layer, GlobalMaxPooling2D):
        return m.KerasGlobalMaxPool2d(layer.keepdims)
    if isinstance(layer, GlobalAveragePooling2D):
        return m.KerasGlobalAvgPool2d(layer.keepdims)
    if isinstance(layer, ZeroPadding2D):
        (top, bottom), (left, right) = layer.padding
        return nn.ZeroPad2d(torch_pad_widths((top, bottom, left, right)))
    if isinstance(layer, Cropping2D):
        return m.KerasCropping2d(layer.cropping)
    if isinstance(layer, Reshape):
        return m.KerasReshape(layer.target_shape)
    if isinstance(layer, MERGE_LAYERS):
        raise TypeError(f"{layer.name}: a {type(layer).__name__} takes a list of inputs, so it is no module of "
                        "a chain; merge_layer_to_torch(layer) gives its module, whose forward takes the list"
                        + (" (UNet's Concatenate is torch.cat inside TorchUNet)" if isinstance(layer, Concatenate)
                           else ""))
    raise TypeError(f"{layer.name}: no PyTorch module for a {type(layer).__name__} here")


def merge_layer_to_torch(layer):
    """The torch module of a merge layer: forward takes the list of the inputs' tensors (NCHW images), in the
    layer's order. Add -> KerasAdd, Subtract -> KerasSubtract, Multiply -> KerasMultiply, Average ->
    KerasAverage, Concatenate(axis) -> KerasConcatenate(axis). Merge layers have no weights to convert."""
    m = torch_modules()
    if isinstance(layer, Concatenate):
        return m.KerasConcatenate(layer.axis)
    modules = {Add: m.KerasAdd, Subtract: m.KerasSubtract, Multiply: m.KerasMultiply, Average: m.KerasAverage}
    for cls, module in modules.items():
        if isinstance(layer, cls):
            return module()
    raise TypeError(f"merge_layer_to_torch: {getattr(layer, 'name', layer)!r} is not a merge layer (one of "
                    f"{', '.join(c.__name__ for c in MERGE_LAYERS)}); use layer_to_torch")


def _to_state_dict(pairs):
    """{torch name: tensor} from (name, NumPy array) pairs."""
    torch = require_torch()
    return OrderedDict((name, torch.tensor(np.ascontiguousarray(a))) for name, a in pairs)


def layer_to_torch(layer, logits=False, feature_perm=None):
    """One built tinyseg layer as a torch module with its weights (converted) in the layer's dtype.

    logits=True leaves out the layer's activation. feature_perm: see layer_weights_to_torch (a Dense or 1-D
    BatchNorm converted on its own, after a Flatten, needs flatten_permutation of the Flatten's input shape).
    """
    module = _new_module(layer, logits).to(torch_dtype(layer.dtype))
    state = _to_state_dict(layer_weights_to_torch(layer, feature_perm=feature_perm).items())
    if isinstance(layer, BatchNormalization):
        state["num_batches_tracked"] = module.num_batches_tracked.clone()
    module.load_state_dict(state)
    return module


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


def _named_layers(model):
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

    def record(layer, perm):
        if layer in layer_perm and not _same_perm(layer_perm[layer], perm):
            raise ValueError(f"{layer.name}: a layer shared by calls whose features are ordered differently has "
                             "no PyTorch conversion")
        layer_perm[layer] = perm

    for node in graph.nodes:
        layer, ins = node.layer, [perm_of[id(t)] for t in node.inputs]
        perm_in = ins[0]
        if any(not _same_perm(p, perm_in) for p in ins[1:]) or (perm_in is not None and
                                                                 isinstance(layer, Concatenate)):
            raise ValueError(f"{layer.name}: joins flattened image features, which PyTorch orders (C, H, W) and "
                             "tinyseg (H, W, C); join them after a Dense")
        if isinstance(layer, Flatten):
            if perm_in is not None:
                raise ValueError(f"{layer.name}: a Flatten of flattened features has no PyTorch conversion")
            perm_out = flatten_permutation(layer.input_shape) if len(layer.input_shape) == 3 else None
        elif isinstance(layer, Dense):
            record(layer, perm_in)
            perm_out = None
        elif isinstance(layer, _PASS_FEATURES) or layer.multiple_inputs:
            record(layer, perm_in)
            perm_out = perm_in
        elif perm_in is not None:
            raise ValueError(f"{layer.name}: a {type(layer).__name__} between a Flatten and the next Dense has "
                             "no PyTorch conversion (the features are in a different order there)")
        else:
            perm_out = None
        perm_of[id(node.output)] = perm_out
    if any(perm_of[id(t)] is not None for t in graph.outputs):
        raise ValueError("the model ends with flattened image features, which PyTorch orders (C, H, W) and "
                         "tinyseg (H, W, C): end it with a Dense layer to compare outputs")
    return {layer: p for layer, p in layer_perm.items() if p is not None}


def _same_perm(a, b):
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


def _graph_module(model, logits):
    """The TorchGraph of a functional model: a module per layer, and the plan of its calls."""
    m = torch_modules()
    graph = model._graph
    output_layers = {t.node.layer for t in graph.outputs}
    modules = {}
    for _, layer, _ in _named_layers(model):
        if logits and layer in output_layers and len(layer.inbound_nodes) > 1 and \
                sum(n.layer is layer for n in graph.nodes) > 1:
            raise ValueError(f"{layer.name}: the output layer is also called elsewhere in the graph; export "
                             "with logits=False")
        modules[layer.name] = merge_layer_to_torch(layer) if layer.multiple_inputs else \
            _new_module(layer, logits and layer in output_layers)
    key = {id(t): f"input_{i}" for i, t in enumerate(graph.inputs)}
    plan = []
    for i, node in enumerate(graph.nodes):
        key[id(node.output)] = f"t{i}"
        plan.append((f"t{i}", node.layer.name, [key[id(t)] for t in node.inputs], node.list_input))
    return m.TorchGraph(modules, plan, [key[id(t)] for t in graph.inputs], [key[id(t)] for t in graph.outputs],
                        model._list_outputs)


def _model_dtype(model):
    dtypes = {layer.dtype for layer in model.layers}
    if len(dtypes) != 1:
        raise ValueError(f"the model's layers mix dtypes {sorted(d.name for d in dtypes)}; PyTorch needs one")
    return dtypes.pop()


def to_torch(model, logits=True):
    """The torch.nn.Module that computes what `model` computes, with its weights converted.

    Input NCHW images (or (N, D) vectors); output NCHW (or (N, K)): model.call(x, logits=True) by default,
    which is what PyTorch's losses take; logits=False includes the final activation (= model.predict).
    Module structure and state_dict names: Sequential -> nn.Sequential, keys '<layer index>.weight', ...;
    UNet -> TorchUNet, keys 'encoders.<level>.<layer>.weight', 'ups.<i>.<j>...', 'head.weight'; any other
    Model(inputs, outputs) -> TorchGraph, keys 'layers.<layer name>.weight', ..., whose forward takes one NCHW
    tensor per input (module(x1, x2)) and returns one per output.
    The module is returned in training mode (PyTorch's default); call .eval() for tinyseg's training=False.
    """
    m = torch_modules()
    from torch import nn
    named = _named_layers(model)
    last = model.layers[-1] if isinstance(model, Sequential) else \
        model.outputs[0].node.layer if len(model.outputs) == 1 else None
    if not isinstance(model, (UNet, Sequential)):
        module = _graph_module(model, logits)
    elif isinstance(model, UNet):
        def block(layers):
            return nn.Sequential(*[_new_module(layer) for layer in layers])
        module = m.TorchUNet([block(b) for b in model.encoders], [_new_module(p) for p in model.pools],
                             block(model.bottleneck), [block(b) for b in model.ups],
                             [block(b) for b in model.decoders], _new_module(model.head, logits))
    else:
        module = nn.Sequential(*[_new_module(layer, logits and layer is last) for _, layer, _ in named])
    module.output_activation = output_activation(last).name if last is not None else \
        [output_activation(t.node.layer).name for t in model.outputs]
    module.to(torch_dtype(_model_dtype(model)))
    module.load_state_dict(torch_state_dict(model))
    return module


def _model_arrays(model):
    """(torch name, NumPy array) for every weight of the model, in to_torch(model).state_dict() order."""
    for path, layer, perm in _named_layers(model):
        for tname, array in layer_weights_to_torch(layer, feature_perm=perm).items():
            yield f"{path}.{tname}", array
        if isinstance(layer, BatchNormalization):
            yield f"{path}.num_batches_tracked", np.array(0)      # unused with a fixed momentum


def torch_state_dict(model):
    """The model's weights as an OrderedDict {torch name: tensor} for to_torch(model).load_state_dict().

    Layouts and names as in the module docstring's table; batch norms also get num_batches_tracked = 0.
    """
    return _to_state_dict(_model_arrays(model))


def torch_gradients(model):
    """The gradients of the model's last backward, as {torch parameter name: tensor} laid out as param.grad.

    Compare with {name: p.grad for name, p in module.named_parameters()} after a torch backward.
    """
    pairs = []
    for path, layer, perm in _named_layers(model):
        if layer.params:
            pairs += [(f"{path}.{t}", a) for t, a in
                      layer_weights_to_torch(layer, arrays=layer.grads, feature_perm=perm).items()]
    return _to_state_dict(pairs)


def load_torch_state_dict(model, state_dict):
    """Copy a PyTorch state_dict (from to_torch(model), possibly trained since) into the model's weights.

    Every key the model needs must be there and no other (num_batches_tracked is accepted and ignored: a Keras
    batch norm has a fixed momentum); the arrays are converted back to Keras's layouts and cast to the model's
    dtype. The model is changed only when every array has been found and converted.
    """
    named = _named_layers(model)
    expected = {name for name, _ in _model_arrays(model)}
    given = set(state_dict)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        raise KeyError(f"load_torch_state_dict: the state_dict does not match the model: missing {missing}, "
                       f"unexpected {unexpected}")
    all_weights = []
    for path, layer, perm in named:
        prefix = path + "."
        tensors = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        weights = layer_weights_from_torch(layer, tensors, perm)
        for w, own, name in zip(weights, layer.get_weights(), layer.weight_names()):
            if w.shape != own.shape:
                raise ValueError(f"load_torch_state_dict: {layer.name} '{name}' must have shape {own.shape} "
                                 f"(tinyseg's layout), got {w.shape} after conversion from the state_dict")
        all_weights.append(weights)
    for (_, layer, _), weights in zip(named, all_weights):
        if weights:
            layer.set_weights(weights)
