"""Seeing inside a segmentation model: which pixels (saliency) and which features (Grad-CAM) a class's score
depends on, and every layer's activations and gradients (for the histograms of tinyseg.visualize).

The score. A segmentation model gives every output pixel K class scores z (N, H', W', K): the logits, before
the softmax. Pick a class c and a region R of the output (a boolean mask, a box, or every pixel) and sum:

    score='logit' (default):   S_n = sum_{(i, j) in R} z[n, i, j, c]                 one number per image n
    score='probability':       S_n = sum_{(i, j) in R} p[n, i, j, c],   p = softmax(z) over the K classes
                               (sigmoid(z) when the model ends in a sigmoid, or has one output channel)

The logit is the default because a probability saturates: a pixel the model is sure of has p_c close to 1
and dp_c/dz close to 0, so its gradient says little. The gradient of S with respect to the scores is the
seed of one backward pass (R[i, j] is 1 inside the region, 0 outside):

    logit:        dS_n/dz[n, i, j, k] = R[i, j] [k = c]
    softmax:      dS_n/dz[n, i, j, k] = R[i, j] p_c (δ_kc - p_k)          (p at pixel (n, i, j))
    sigmoid:      dS_n/dz[n, i, j, k] = R[i, j] [k = c] p_c (1 - p_c)

Images of a batch do not interact in inference mode (batch norm then uses its moving statistics), so one
backward of this seed gives every image the gradient of its own S_n.

Saliency (Simonyan, Vedaldi and Zisserman, 2014): the gradient with respect to the input image x (N, H, W, C):

    g = dS/dx                               (N, H, W, C)   input_gradient: signed, one value per channel
    saliency = max_c |g[..., c]|            (N, H, W)      saliency: how much each pixel can move S

Grad-CAM (Selvaraju et al., 2017; for a region of a segmentation, Vinogradova et al., 2020): the gradient with
respect to the activations A (N, h, w, F) of a chosen layer:

    alpha[n, f] = (1 / (h w)) sum_{i, j} dS_n/dA[n, i, j, f]     how much feature f raises S, on average
    cam[n]      = ReLU( sum_f alpha[n, f] A[n, :, :, f] )          (N, h, w): where those features are on
    cam         = resize_bilinear(cam, (H, W)) / its maximum        in [0, 1] (a map that is 0 everywhere,
                                                                    no feature raising S, stays 0)

How the gradient at a layer is reached. A model is a graph (tinyseg/graph.py) whose backward returns only
dL/dx; the gradient at an inner tensor A lives for a moment inside it. So the graph is split at A:

    body: x -> [A, t_1, ...]          the nodes A depends on, and those of every tensor t that bypasses A
    head: [A, t_1, ...] -> z          the nodes that depend on A; the t's are tensors they read that do not
                                      depend on A (a U-Net's skip connections from before A)

and z = head(body(x)). Forward: body, then head. Backward: head.backward(dS/dz) gives dS/dA (and dS/dt_i);
body.backward of those gives dS/dx. It is the chain rule once more, at the level of two sub-networks.
"""
from typing import NamedTuple, Optional

import numpy as np

from . import losses as losses_module
from .graph import Graph, KerasTensor, output_activation
from .kernels.softmax import softmax
from .layers.activations import sigmoid
from .layers.base import Layer
from .validation import integer

SCORES = ("logit", "probability")


# --- what the user gave ------------------------------------------------------------------------------------
def _images(model, x, what):
    """x as the model's dtype, (N, H, W, C); and the model's graph (built now for a Sequential)."""
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError(f"{what}: x must be a float NumPy array of images (N, H, W, C), got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim != 4:
        raise ValueError(f"{what}: x must be a batch of images (N, H, W, C), got shape {x.shape} "
                         "(for one image pass x[None])")
    graph = model._graph_for(x, what)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ValueError(f"{what}: works on models with one input and one output; {model.name} has "
                         f"{len(graph.inputs)} and {len(graph.outputs)}")
    return x.astype(graph.inputs[0].dtype, copy=False), graph


def _check_class(class_index, num_classes, what):
    class_index = integer(class_index, f"{what}: class_index")
    if not 0 <= class_index < num_classes:
        raise ValueError(f"{what}: class_index {class_index} is not a class of this model, whose output has "
                         f"{num_classes} classes (0 .. {num_classes - 1})")
    return int(class_index)


def region_mask(region, shape, what="region"):
    """The region R as a (N, H', W') array of 0 and 1, for scores of shape (N, H', W', K).

    region: None (every pixel); a box (y0, y1, x0, x1), rows y0 .. y1-1 and columns x0 .. x1-1, as in
    z[:, y0:y1, x0:x1]; or a boolean mask (H', W') (the same for every image) or (N, H', W').
    """
    n, h, w = shape
    if region is None:
        return np.ones(shape)
    if isinstance(region, (tuple, list)):
        if len(region) != 4 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                       for v in region):
            raise ValueError(f"{what}: a box is four integers (y0, y1, x0, x1), got {region!r}")
        y0, y1, x0, x1 = (int(v) for v in region)
        if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
            raise ValueError(f"{what}: the box (y0, y1, x0, x1) = {tuple(region)} is empty or leaves the "
                             f"{h}x{w} output; it needs 0 <= y0 < y1 <= {h} and 0 <= x0 < x1 <= {w}")
        mask = np.zeros(shape)
        mask[:, y0:y1, x0:x1] = 1.0
        return mask
    region = np.asarray(region)
    if region.dtype != bool:
        raise TypeError(f"{what}: a mask must be boolean (e.g. y_true == class_index), got dtype {region.dtype}")
    if region.shape not in ((h, w), (n, h, w)):
        raise ValueError(f"{what}: a mask must have the output's shape ({h}, {w}) or ({n}, {h}, {w}), got "
                         f"{region.shape}")
    mask = np.broadcast_to(region, shape).astype(np.float64)
    empty = np.flatnonzero(mask.reshape(n, -1).sum(axis=1) == 0)
    if empty.size:
        raise ValueError(f"{what}: the region is empty (no True pixel)"
                         + (f" for image {int(empty[0])}" if region.ndim == 3 else "")
                         + "; the score would be 0 and its gradient 0")
    return mask


def _probability_function(graph, num_classes, what):
    """'softmax' or 'sigmoid': how the model turns its logits into probabilities."""
    final = output_activation(graph.outputs[0].node.layer).name
    if final == "linear":                       # a model that outputs logits: the usual rule
        return "sigmoid" if num_classes == 1 else "softmax"
    if final not in ("softmax", "sigmoid"):
        raise ValueError(f"{what}: score='probability' needs a model ending in softmax or sigmoid (or in no "
                         f"activation); this one ends in '{final}'")
    return final


def score_and_seed(z, class_index, mask, score="logit", probability="softmax"):
    """S_n and dS/dz (the module docstring's formulas) from the logits z (N, H', W', K) and the region mask.

    Returns (S, G): S (N,) float64, G (N, H', W', K) in z's dtype.
    """
    c, dtype = class_index, z.dtype
    g = np.zeros(z.shape)
    if score == "logit":
        s = (z[..., c] * mask).sum(axis=(1, 2))
        g[..., c] = mask
        return s, g.astype(dtype)
    z = z.astype(np.float64)
    if probability == "softmax":
        p = softmax(z)
        s = (p[..., c] * mask).sum(axis=(1, 2))
        g = -(mask * p[..., c])[..., None] * p                      # R p_c (-p_k) for every k ...
        g[..., c] += mask * p[..., c]                               # ... + R p_c for k = c
    else:
        p = sigmoid(z)
        s = (p[..., c] * mask).sum(axis=(1, 2))
        g[..., c] = mask * p[..., c] * (1 - p[..., c])
    return s, g.astype(dtype)


def _check_score(score, what):
    if score not in SCORES:
        raise ValueError(f"{what}: score must be one of {SCORES}, got {score!r}")


# --- layers, tensors and the split ------------------------------------------------------------------------
def layer_tensor(model, layer, what="layer"):
    """The tensor of the model's graph that a layer makes: layer may be a Layer, a layer name or a tensor."""
    graph = model._graph
    if graph is None:
        raise RuntimeError(f"{what}: {model.name} has not been built yet; run it on data once")
    tensors = list(graph.inputs) + [node.output for node in graph.nodes]
    if isinstance(layer, KerasTensor):
        if any(layer is t for t in tensors):
            return layer
        raise ValueError(f"{what}: the tensor {layer!r} is not part of the model {model.name}")
    if isinstance(layer, str):
        found = [t for t in tensors if t.node.layer.name == layer]
    elif isinstance(layer, Layer):
        found = [t for t in tensors if t.node.layer is layer]
    else:
        raise TypeError(f"{what}: give a layer, its name or its output tensor, got {type(layer).__name__}")
    if not found:
        name = layer if isinstance(layer, str) else layer.name
        names = [t.node.layer.name for t in tensors]
        raise ValueError(f"{what}: layer '{name}' is not in the model {model.name}; its layers are {names}")
    if len(found) > 1:
        raise ValueError(f"{what}: layer '{found[0].node.layer.name}' is called {len(found)} times in the "
                         "model (shared weights); pass the output tensor of the call you mean "
                         "(layer.inbound_nodes[i].output)")
    return found[0]


def split_at(graph, tensor):
    """(body, head, cut): the graph cut at `tensor` A (module docstring), as two Graphs.

    cut = [A, t_1, ...]: body's outputs and head's inputs, A first; the t's are what the head reads from
    before A (skip connections). z = head.forward(body.forward([x]))[0].
    """
    downstream, head_nodes = {id(tensor)}, []
    for node in graph.nodes:                            # in order: a node after A is reached after A's readers
        if any(id(t) in downstream for t in node.inputs):
            head_nodes.append(node)
            downstream.add(id(node.output))
    cut = [tensor]
    for node in head_nodes:
        for t in node.inputs:
            if id(t) not in downstream and not any(t is u for u in cut):
                cut.append(t)
    return Graph(graph.inputs, cut), Graph(cut, graph.outputs), cut


def _crossing_layers(body, head):
    """Layers called in both parts (shared weights across the cut): their body cache must be kept aside."""
    return {n.layer for n in body.nodes} & {n.layer for n in head.nodes}


class _Split:
    """One split model run forward and backward: the activations at A, then the gradients."""

    def __init__(self, graph, tensor, what):
        if any(tensor is t for t in graph.outputs):
            raise ValueError(f"{what}: '{tensor.name}' is the output layer; choose a layer before it (its "
                             "gradient with respect to the class score is what Grad-CAM weighs)")
        self.body, self.head, self.cut = split_at(graph, tensor)
        self.crossing = _crossing_layers(self.body, self.head)

    def forward(self, x, logits):
        values = self.body.forward([x], training=False)              # [A, t_1, ...]
        self._saved = {layer: layer.save_cache() for layer in self.crossing}
        z = self.head.forward(values, training=False, logits=logits)[0]
        return values[0], z

    def backward(self, seed, logits, input_grad):
        cut_grads = self.head.backward([seed], logits=logits, input_grad=True)
        if not input_grad:
            return cut_grads[0], None
        for layer, cache in self._saved.items():
            layer.restore_cache(cache)
        return cut_grads[0], self.body.backward(cut_grads, input_grad=True)[0]


# --- the public functions ----------------------------------------------------------------------------------
class Gradients(NamedTuple):
    """What one forward and one backward pass of `gradients` found (None where not asked for)."""

    score: np.ndarray                    # S_n, (N,)
    input: Optional[np.ndarray]          # dS/dx, (N, H, W, C)
    activations: Optional[np.ndarray]    # A, the layer's output, (N, h, w, F)
    layer: Optional[np.ndarray]          # dS/dA, like A


def gradients(model, x, class_index, region=None, score="logit", layer=None, input_grad=True):
    """S, dS/dx and, if a layer is given, its activations A and dS/dA, from one forward and one backward pass.

    x: (N, H, W, C) images; class_index: 0 .. K-1; region: None, a box (y0, y1, x0, x1) or a boolean mask of
    the output's (H', W') or (N, H', W') (region_mask); score: 'logit' or 'probability' (module docstring);
    layer: a Layer of the model, its name or its output tensor (not the output layer). Inference mode.
    input_grad=False skips dS/dx (Grad-CAM needs only dS/dA). The layers' `grads` are overwritten, as by
    any backward pass.
    """
    return _gradients(model, x, class_index, region, score, layer, input_grad, "gradients")


def _setup(model, x, class_index, score, what):
    """Checked x (in the model's dtype), the graph, the class and how probabilities are made."""
    _check_score(score, what)
    x, graph = _images(model, x, what)
    k = graph.outputs[0].shape[-1]
    c = _check_class(class_index, k, what)
    probability = _probability_function(graph, k, what) if score == "probability" else None
    return x, graph, c, probability


def _gradients(model, x, class_index, region, score, layer, input_grad, what):
    x, graph, c, probability = _setup(model, x, class_index, score, what)
    if layer is None:                                  # the model's own two passes
        z = model.call(x, training=False, logits=True)
        s, seed = score_and_seed(z, c, region_mask(region, z.shape[:3]), score, probability)
        dx = model.backward(seed, logits=True, input_grad=True) if input_grad else None
        return Gradients(s, dx, None, None)
    split = _Split(graph, layer_tensor(model, layer, what), what)
    a, z = split.forward(x, logits=True)
    s, seed = score_and_seed(z, c, region_mask(region, z.shape[:3]), score, probability)
    da, dx = split.backward(seed, logits=True, input_grad=input_grad)
    return Gradients(s, dx, a, da)


def class_score(model, x, class_index, region=None, score="logit"):
    """S_n, the summed score of class `class_index` over the region, for every image: (N,) float64.

    Arguments as for `gradients`; one forward pass, in inference mode.
    """
    x, _, c, probability = _setup(model, x, class_index, score, "class_score")
    z = model.call(x, training=False, logits=True)
    return score_and_seed(z, c, region_mask(region, z.shape[:3]), score, probability)[0]


def input_gradient(model, x, class_index, region=None, score="logit"):
    """dS_n/dx_n for every image: the signed gradient of the class score, (N, H, W, C) like x.

    Arguments as for `gradients`: one model.call(..., logits=True) and one model.backward(dS/dz, logits=True,
    input_grad=True). The layers' `grads` are overwritten, as by any backward pass.
    """
    return _gradients(model, x, class_index, region, score, None, True, "input_gradient").input


def saliency(model, x, class_index, region=None, score="logit", reduce="max"):
    """The saliency map max_c |dS/dx[..., c]| (reduce='max', Simonyan et al.) or mean_c |dS/dx[..., c]|
    (reduce='mean'): (N, H, W), one value per input pixel."""
    if reduce not in ("max", "mean"):
        raise ValueError(f"saliency: reduce must be 'max' or 'mean', got {reduce!r}")
    g = np.abs(input_gradient(model, x, class_index, region, score))
    return g.max(axis=-1) if reduce == "max" else g.mean(axis=-1)


def layer_gradient(model, x, layer, class_index, region=None, score="logit"):
    """(A, dS/dA): a layer's activations for x and the gradient of the class score with respect to them,
    both (N, h, w, F). layer: a Layer of the model, its name, or its output tensor (not the output layer)."""
    g = _gradients(model, x, class_index, region, score, layer, False, "layer_gradient")
    return g.activations, g.layer


def resize_bilinear(maps, size):
    """Resize maps (N, h, w) to (N, H, W) = (N,) + size by bilinear interpolation with half-pixel centres.

    Along one axis, output index i reads the input at src = max((i + 0.5) h / H - 0.5, 0) with weights
    1 - t and t on rows floor(src) and floor(src) + 1 (the last row repeats at the border): for H = f h,
    the taps of UpSampling2D(f, interpolation='bilinear'), tf.image.resize and PyTorch's align_corners=False.
    As matrices: out[n] = A_h @ maps[n] @ A_w^T.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"resize_bilinear: maps must be (N, h, w), got shape {maps.shape}")
    a_h = _interpolation_matrix(size[0], maps.shape[1])
    a_w = _interpolation_matrix(size[1], maps.shape[2])
    return np.einsum("ih,nhw,jw->nij", a_h, maps, a_w)


def _interpolation_matrix(out_size, in_size):
    """A (out_size, in_size): row i holds output i's two bilinear taps (resize_bilinear's formula)."""
    src = np.maximum((np.arange(out_size) + 0.5) * in_size / out_size - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    t = src - i0
    a = np.zeros((out_size, in_size))
    rows = np.arange(out_size)
    a[rows, i0] += 1.0 - t
    a[rows, i1] += t                 # a separate statement: at the border i1 == i0 and the two weights add
    return a


def grad_cam_map(activations, gradients, size=None):
    """(cam, alpha) from A and dS/dA (N, h, w, F) (the module docstring's formulas).

    alpha: (N, F), the spatial mean of dS/dA per channel. cam: (N, H, W) in [0, 1], ReLU(sum_f alpha_f A_f)
    resized bilinearly to size = (H, W) (None keeps (h, w)) and divided by its maximum per image.
    """
    activations, gradients = np.asarray(activations, np.float64), np.asarray(gradients, np.float64)
    if activations.ndim != 4 or activations.shape != gradients.shape:
        raise ValueError(f"grad_cam_map: activations and gradients must both be (N, h, w, F), got "
                         f"{activations.shape} and {gradients.shape}")
    alpha = gradients.mean(axis=(1, 2))                                  # (N, F)
    cam = np.maximum(np.einsum("nhwf,nf->nhw", activations, alpha), 0.0)
    if size is not None and tuple(size) != cam.shape[1:]:
        cam = resize_bilinear(cam, tuple(size))
    top = cam.reshape(len(cam), -1).max(axis=1)
    cam = np.divide(cam, top[:, None, None], out=np.zeros_like(cam), where=top[:, None, None] > 0)
    return cam, alpha


def grad_cam(model, x, layer, class_index, region=None, score="logit"):
    """Grad-CAM maps of class `class_index` over the region at `layer`: (N, H, W) in [0, 1], the input's size.

    layer: a Layer of the model, its name or its output tensor; its output must be images (N, h, w, F).
    The other arguments as for `gradients`.
    """
    a, da = layer_gradient(model, x, layer, class_index, region, score)
    if a.ndim != 4:
        raise ValueError(f"grad_cam: the layer's output has shape {a.shape}; Grad-CAM needs feature maps "
                         "(N, h, w, F)")
    return grad_cam_map(a, da, size=x.shape[1:3])[0]


def layer_output(model, x, layer):
    """A layer's activations for x (inference mode): the body of the split, run forward alone."""
    x, graph = _images(model, x, "layer_output")
    tensor = layer_tensor(model, layer, "layer_output")
    return Graph(graph.inputs, [tensor]).forward([x], training=False)[0]


# --- every layer's activations and gradients of the loss (for the histograms) ------------------------------
def probe_layers(model):
    """The layers worth watching by default: those ending in a nonlinearity (an Activation layer, a ReLU, or
    a Conv2D/Dense with activation=...), except the output layer. These are the activations of the
    weight-initialisation lesson."""
    graph = model._graph
    if graph is None:
        raise RuntimeError(f"probe_layers: {model.name} has not been built yet; run it on data once")
    chosen = []
    for node in graph.nodes:
        layer = node.layer
        if any(node.output is t for t in graph.outputs) or layer in chosen:
            continue
        if output_activation(layer).name != "linear":
            chosen.append(layer)
    return chosen


def activations_and_gradients(model, x, y, layers=None, loss=None):
    """{layer name: (A, dL/dA)} for the loss of (x, y), at each of `layers` (default: probe_layers(model)).

    L is the model's compiled loss (or `loss`), in inference mode, so nothing the model keeps (batch-norm
    statistics, weights) changes; the layers' `grads` are put back as they were. One split (module
    docstring) per layer: a forward and a backward pass for each, simple rather than fast.
    """
    what = "activations_and_gradients"
    x, graph = _images(model, x, what)
    loss = model.loss if loss is None else losses_module.get(loss)
    if loss is None:
        raise RuntimeError(f"{what}: the model has no loss; compile it or pass loss=...")
    fused = loss.activation is not None and output_activation(graph.outputs[0].node.layer).name == loss.activation
    saved = {layer: {k: g.copy() for k, g in layer.grads.items()} for layer in graph.layers}
    out = {}
    try:
        for layer in (probe_layers(model) if layers is None else layers):
            split = _Split(graph, layer_tensor(model, layer, what), what)
            a, z = split.forward(x, logits=fused)
            loss.forward(y, z)
            da, _ = split.backward(loss.backward(), logits=fused, input_grad=False)
            out[split.cut[0].name] = (a.copy(), da.copy())
    finally:
        for layer, grads in saved.items():
            layer.grads.update(grads)
    return out


__all__ = ["Gradients", "activations_and_gradients", "class_score", "grad_cam", "grad_cam_map", "gradients",
           "input_gradient", "layer_gradient", "layer_output", "probe_layers", "region_mask", "resize_bilinear",
           "saliency", "score_and_seed", "split_at"]
