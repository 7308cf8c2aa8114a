"""A tinyseg layer or model as a torch.nn.Module with the same weights (weights.py moves them both ways).

    module = to_torch(model)                     # NCHW in, logits out (see below), the model's dtype
    layer_to_torch(layer), merge_layer_to_torch(layer)      # one layer as one module

The module returns logits: model.call(x, logits=True), the scores before the last layer's activation, because
PyTorch's losses (nn.CrossEntropyLoss, nn.BCEWithLogitsLoss) take logits, as tinyseg's fused losses do.
`to_torch(model, logits=False)` keeps the final activation and then equals model.predict. Its name is in
`module.output_activation` ('softmax', 'sigmoid', ...). Images go in as NCHW; outputs come back as NCHW.
Every layout difference is converted by one function of conventions.py.
"""
from ..graph import output_activation
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
    MaxUnpooling2D,
    Multiply,
    Reshape,
    Resizing,
    SeparableConv2D,
    Subtract,
    UpSampling2D,
    ZeroPadding2D,
)
from ..layers.activations import ActivationFunction
from ..models.sequential import Sequential
from ..models.unet import UNet
from .conventions import bn_momentum_to_torch, torch_pad_widths
from .layer_paths import named_layers
from .tensors import import_torch_modules, torch_dtype
from .weights import layer_weights_to_torch, to_state_dict, torch_state_dict


# --- one layer ---------------------------------------------------------------------------------------------
def _activation_name(layer):
    return output_activation(layer).name


# several inputs: merge_layer_to_torch
MERGE_LAYERS = (Add, Subtract, Multiply, Average, Concatenate, MaxUnpooling2D)


def _upsample(m, nn, layer, act):
    mode = "bilinear" if layer.interpolation == "bilinear" else "nearest"
    return nn.Upsample(scale_factor=layer.size, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))


def _activation(m, nn, layer, act):
    return nn.Identity() if act == "linear" else m.activation_module(act)


# layer class -> builder(m, nn, layer, act): the torch module with fresh weights, where m is
# interop/torch_modules.py, nn is torch.nn and act the activation's name. A layer takes the entry of the nearest
# class in its method resolution order, so a subclass of a layer finds its parent's.
_MODULE_BUILDERS = {
    Conv2DTranspose: lambda m, nn, layer, act: m.KerasConvTranspose2d(
        layer.input_shape[-1], layer.filters, layer.kernel_size, layer.strides, layer.padding, layer.use_bias, act),
    Conv2D: lambda m, nn, layer, act: m.KerasConv2d(
        layer.input_shape[-1], layer.filters, layer.kernel_size, layer.strides, layer.padding, layer.use_bias, act,
        layer.dilation_rate),
    DepthwiseConv2D: lambda m, nn, layer, act: m.KerasConv2d(
        layer.input_shape[-1], layer.input_shape[-1] * layer.depth_multiplier, layer.kernel_size, layer.strides,
        layer.padding, layer.use_bias, act, layer.dilation_rate, groups=layer.input_shape[-1]),
    SeparableConv2D: lambda m, nn, layer, act: m.KerasSeparableConv2d(
        layer.input_shape[-1], layer.filters, layer.kernel_size, layer.strides, layer.padding, layer.use_bias, act,
        layer.depth_multiplier, layer.dilation_rate),
    Dense: lambda m, nn, layer, act: m.KerasLinear(layer.input_shape[0], layer.units, layer.use_bias, act),
    ActivationFunction: _activation,
    Activation: _activation,
    MaxPooling2D: lambda m, nn, layer, act: m.KerasMaxPool2d(layer.pool_size, layer.strides, layer.padding),
    AveragePooling2D: lambda m, nn, layer, act: m.KerasAvgPool2d(layer.pool_size, layer.strides, layer.padding),
    UpSampling2D: _upsample,
    BatchNormalization: lambda m, nn, layer, act: m.KerasBatchNorm(
        layer.input_shape[-1], layer.epsilon, bn_momentum_to_torch(layer.momentum), scale=layer.scale,
        center=layer.center),
    Flatten: lambda m, nn, layer, act: nn.Flatten(),
    Dropout: lambda m, nn, layer, act: nn.Dropout(layer.rate),
    GlobalMaxPooling2D: lambda m, nn, layer, act: m.KerasGlobalMaxPool2d(layer.keepdims),
    GlobalAveragePooling2D: lambda m, nn, layer, act: m.KerasGlobalAvgPool2d(layer.keepdims),
    ZeroPadding2D: lambda m, nn, layer, act: nn.ZeroPad2d(torch_pad_widths(sum(map(tuple, layer.padding), ()))),
    Cropping2D: lambda m, nn, layer, act: m.KerasCropping2d(layer.cropping),
    Reshape: lambda m, nn, layer, act: m.KerasReshape(layer.target_shape),
    Resizing: lambda m, nn, layer, act: m.KerasResizing(layer.height, layer.width, layer.interpolation,
                                                        layer.crops),
}


def _new_module(layer, logits=False):
    """The torch module of one built tinyseg layer, with fresh (unconverted) weights.

    logits=True leaves out the layer's activation (what model.call(..., logits=True) does to the last layer).
    """
    m = import_torch_modules()                  # first: explains how to install torch if it is missing
    from torch import nn
    if not layer.built:
        raise ValueError(f"{layer.name}: build the layer first (give input_shape, or run it once) so its "
                         "weights exist")
    if isinstance(layer, MERGE_LAYERS):
        raise TypeError(f"{layer.name}: a {type(layer).__name__} takes a list of inputs, so it is no module of "
                        "a chain; merge_layer_to_torch(layer) gives its module, whose forward takes the list"
                        + (" (UNet's Concatenate is torch.cat inside TorchUNet)" if isinstance(layer, Concatenate)
                           else ""))
    build = next((_MODULE_BUILDERS[cls] for cls in type(layer).__mro__ if cls in _MODULE_BUILDERS), None)
    if build is None:
        raise TypeError(f"{layer.name}: no PyTorch module for a {type(layer).__name__} here")
    return build(m, nn, layer, "linear" if logits else _activation_name(layer))


def merge_layer_to_torch(layer):
    """The torch module of a merge layer: forward takes the list of the inputs' tensors (NCHW images), in the
    layer's order. Add -> KerasAdd, Subtract -> KerasSubtract, Multiply -> KerasMultiply, Average ->
    KerasAverage, Concatenate(axis) -> KerasConcatenate(axis), MaxUnpooling2D -> KerasMaxUnpool2d (its list is
    [pooled, pool_input]). Merge layers have no weights to convert."""
    m = import_torch_modules()
    if isinstance(layer, Concatenate):
        return m.KerasConcatenate(layer.axis)
    if isinstance(layer, MaxUnpooling2D):
        return m.KerasMaxUnpool2d(layer.pool_size, layer.strides, layer.padding)
    modules = {Add: m.KerasAdd, Subtract: m.KerasSubtract, Multiply: m.KerasMultiply, Average: m.KerasAverage}
    for cls, module in modules.items():
        if isinstance(layer, cls):
            return module()
    raise TypeError(f"merge_layer_to_torch: {getattr(layer, 'name', layer)!r} is not a merge layer (one of "
                    f"{', '.join(c.__name__ for c in MERGE_LAYERS)}); use layer_to_torch")


def layer_to_torch(layer, logits=False, feature_perm=None):
    """One built tinyseg layer as a torch module with its weights (converted) in the layer's dtype.

    logits=True leaves out the layer's activation. feature_perm: see layer_weights_to_torch (a Dense or 1-D
    BatchNorm converted on its own, after a Flatten, needs flatten_permutation of the Flatten's input shape).
    """
    module = _new_module(layer, logits).to(torch_dtype(layer.dtype))
    state = to_state_dict(layer_weights_to_torch(layer, feature_perm=feature_perm).items())
    if isinstance(layer, BatchNormalization):
        state["num_batches_tracked"] = module.num_batches_tracked.clone()
    module.load_state_dict(state)
    return module


# --- a whole model -----------------------------------------------------------------------------------------
def _graph_module(model, logits):
    """The TorchGraph of a functional model: a module per layer, and the plan of its calls."""
    m = import_torch_modules()
    graph = model._graph
    output_layers = {t.node.layer for t in graph.outputs}
    modules = {}
    for _, layer, _ in named_layers(model):
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
    m = import_torch_modules()
    from torch import nn
    named = named_layers(model)
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
