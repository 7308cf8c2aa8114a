"""plot_model: draw a model's graph with matplotlib (Keras's `keras.utils.plot_model`, without graphviz).

Each layer is a box (its name and type, and with show_shapes its output shape); an arrow goes from a layer to
every layer that reads its output. The layout is a small layered drawing (Sugiyama's idea, simplified):

1. rows: a layer sits one row below the lowest of the layers it reads (the longest path from an input), then
   moves down to just above its first reader if it can (a residual's 1x1 shortcut sits beside the Add it
   feeds, not at the top of the block it skips);
2. boxes: each row's boxes side by side, the row's first layer (in Keras's order) on the centre line;
3. edges: an edge to the next row is one straight arrow through the gap between the rows, which holds no box.
   A longer edge (a skip or residual connection) leaves its box downwards into the gap below, runs sideways
   to a lane right of every box of the rows it passes, down the lane, and back in the gap above its reader.
   So no edge crosses a box it does not connect; `model_layout` returns the geometry, which the tests check.

All lengths are in inches: the axes fill the figure, one data unit is one inch, so a box measured once keeps
its size on the page.
"""
import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

ROW = 0.75          # inches from one row's centre line to the next
PAD = 0.07           # inches between a box's text and its edge
GAP = 0.35           # inches between two boxes of a row
LANE = 0.16          # inches between two lanes, and from the boxes to the first lane
FONT = 7


def _levels(graph):
    """{layer: row}: longest path from an input, then each layer read only by later rows moved down to just
    above its first reader (inputs stay on top; a shared layer, called at several nodes, stays put)."""
    level = {t.node.layer: 0 for t in graph.inputs}
    readers, calls = {}, {}
    for node in graph.nodes:                        # topological order: the sources are placed already
        row = 1 + max(level[t.node.layer] for t in node.inputs)
        level[node.layer] = max(level.get(node.layer, 0), row)
        calls[node.layer] = calls.get(node.layer, 0) + 1
        for t in node.inputs:
            readers.setdefault(t.node.layer, []).append(node.layer)
    for node in reversed(graph.nodes):              # readers first: they are placed for good already
        layer = node.layer
        if calls[layer] == 1 and layer in readers:
            level[layer] = max(level[layer], min(level[r] for r in readers[layer]) - 1)
    return level


def _label(layer, show_shapes, show_layer_names):
    kind = type(layer).__name__
    text = f"{layer.name} ({kind})" if show_layer_names else kind
    if show_shapes:
        shape = layer.output_shape if layer.output_shape is not None else ()
        text += "\n" + str((None,) + tuple(shape))
    return text


def _text_sizes(labels):
    """{label: (width, height)} in inches of each label drawn at FONT points."""
    fig = Figure()
    renderer = FigureCanvasAgg(fig).get_renderer()
    sizes = {}
    for label in labels:
        box = fig.text(0, 0, label, fontsize=FONT, ha="center", va="center").get_window_extent(renderer)
        sizes[label] = (box.width / fig.dpi, box.height / fig.dpi)
    return sizes


def model_layout(model, show_shapes=False, show_layer_names=True):
    """The drawing of plot_model as numbers: {"boxes": {name: (x0, y0, x1, y1)}, "labels": {name: text},
    "edges": [(from name, to name, [(x, y), ...])], "rows": {name: row}}, in inches, y up (row r at y = -r*ROW).
    Each edge's polyline starts on the bottom of its source box and ends on the top of its reader."""
    graph = getattr(model, "_graph", None)
    if graph is None:
        raise ValueError("plot_model: the model is not built yet: give its first layer input_shape=(...) or "
                         "start it with keras.Input(shape)")
    level = _levels(graph)
    labels = {layer: _label(layer, show_shapes, show_layer_names) for layer in graph.layers}
    sizes = _text_sizes(set(labels.values()))
    rows = {}
    for layer in graph.layers:                      # Keras's order within a row: reads well left to right
        rows.setdefault(level[layer], []).append(layer)
    box = {}
    for row, layers in rows.items():
        x = None
        for layer in layers:
            w, h = (s + 2 * PAD for s in sizes[labels[layer]])
            x = -w / 2 if x is None else x          # the row's first box is centred on x = 0
            y = -row * ROW
            box[layer] = (x, y - h / 2, x + w, y + h / 2)
            x += w + GAP

    edges, lanes = [], []                           # lanes: (x, lowest y, highest y) of the lanes taken
    for node in graph.nodes:
        dst = node.layer
        n = len(node.inputs)
        x0, _, x1, top = box[dst]
        spread = min(0.25, (x1 - x0) / (n + 1))     # several inputs arrive side by side on the box's top
        for i, t in enumerate(node.inputs):
            src = t.node.layer
            sx = (box[src][0] + box[src][2]) / 2
            start, end = (sx, box[src][1]), ((x0 + x1) / 2 + (i - (n - 1) / 2) * spread, top)
            if level[dst] == level[src] + 1:
                edges.append((src.name, dst.name, [start, end]))
                continue
            y_out = -(level[src] + 0.5) * ROW       # the middle of the gap below the source's row
            y_in = -(level[dst] - 0.5) * ROW        # ... and of the gap above the reader's row
            lo, hi = min(y_out, y_in), max(y_out, y_in)
            passed = [b for b in box.values() if b[3] > lo and b[1] < hi]
            x = max([b[2] for b in passed] + [start[0], end[0]]) + LANE
            while any(abs(x - lx) < LANE * 0.9 and ll < hi and lh > lo for lx, ll, lh in lanes):
                x += LANE
            lanes.append((x, lo, hi))
            edges.append((src.name, dst.name, [start, (start[0], y_out), (x, y_out), (x, y_in), (end[0], y_in),
                                               end]))
    return {"boxes": {layer.name: b for layer, b in box.items()}, "labels": {layer.name: labels[layer]
                                                                         for layer in labels},
            "edges": edges, "rows": {layer.name: level[layer] for layer in level}}


def model_figure(model, show_shapes=False, show_layer_names=True):
    """The Figure of plot_model (unsaved), drawn from model_layout."""
    layout = model_layout(model, show_shapes, show_layer_names)
    boxes = layout["boxes"]
    xs = [x for b in boxes.values() for x in (b[0], b[2])] + [p[0] for *_, line in layout["edges"] for p in line]
    ys = [y for b in boxes.values() for y in (b[1], b[3])]
    left, right, bottom, top = min(xs) - 0.15, max(xs) + 0.15, min(ys) - 0.15, max(ys) + 0.15
    fig = Figure(figsize=(right - left, top - bottom))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.axis("off")
    for _, _, line in layout["edges"]:
        if len(line) > 2:
            ax.plot([p[0] for p in line[:-1]], [p[1] for p in line[:-1]], color="0.35", lw=1)
        ax.annotate("", xy=line[-1], xytext=line[-2], arrowprops=dict(arrowstyle="->", color="0.35", lw=1,
                                                                       shrinkA=0, shrinkB=0))
    merges = {layer.name for layer in model._graph.layers if getattr(layer, "multiple_inputs", False)}
    for name, (x0, y0, x1, y1) in boxes.items():
        ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, boxstyle="round,pad=0,rounding_size=0.05",
                                    fc="#fde8c8" if name in merges else "#dcebf7", ec="0.3", lw=0.8))
        ax.text((x0 + x1) / 2, (y0 + y1) / 2, layout["labels"][name], ha="center", va="center", fontsize=FONT)
    return fig


def plot_model(model, to_file="model.png", show_shapes=False, show_layer_names=True, dpi=100, **kwargs):
    """Draw `model` (a Model, Sequential or UNet, built) to the PNG file `to_file`; returns the file name.

    show_shapes adds each layer's output shape (None is the batch axis). Other Keras arguments (show_dtype,
    rankdir, expand_nested, ...) are accepted and ignored: boxes always flow from top to bottom.
    """
    fig = model_figure(model, show_shapes, show_layer_names)
    folder = os.path.dirname(os.path.abspath(to_file))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(to_file, dpi=dpi)
    return to_file
