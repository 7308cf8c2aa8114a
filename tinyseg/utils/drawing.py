"""plot_model: draw a model's graph with matplotlib (Keras's `keras.utils.plot_model`, without graphviz).

Each layer is a box (its name and type, and with show_shapes its output shape); an arrow goes from a layer to
every layer that reads its output. Boxes are placed in rows by level, the length of the longest path from an
input, so data flows from top to bottom and a skip connection shows as a long arrow past the rows it skips.
"""
import os

from matplotlib.figure import Figure


def _levels(graph):
    """{layer: row}: a node's row is one below the lowest row among the layers it reads from."""
    level = {t.node.layer: 0 for t in graph.inputs}
    for node in graph.nodes:                        # topological order: the sources are placed already
        row = 1 + max(level[t.node.layer] for t in node.inputs)
        level[node.layer] = max(level.get(node.layer, 0), row)
    return level


def _label(layer, show_shapes, show_layer_names):
    kind = type(layer).__name__
    text = f"{layer.name} ({kind})" if show_layer_names else kind
    if show_shapes:
        shape = layer.output_shape if layer.output_shape is not None else ()
        text += "\n" + str((None,) + tuple(shape))
    return text


def plot_model(model, to_file="model.png", show_shapes=False, show_layer_names=True, dpi=100, **kwargs):
    """Draw `model` (a Model, Sequential or UNet, built) to the PNG file `to_file`; returns the file name.

    show_shapes adds each layer's output shape (None is the batch axis). Other Keras arguments (show_dtype,
    rankdir, expand_nested, ...) are accepted and ignored: boxes always flow from top to bottom.
    """
    graph = getattr(model, "_graph", None)
    if graph is None:
        raise ValueError("plot_model: the model is not built yet: give its first layer input_shape=(...) or "
                         "start it with keras.Input(shape)")
    level = _levels(graph)
    rows = {}
    for layer in graph.layers:                      # Keras's order within a row: reads well left to right
        rows.setdefault(level[layer], []).append(layer)
    width = max(len(r) for r in rows.values())
    position = {}
    for row, layers in rows.items():
        for i, layer in enumerate(layers):
            position[layer] = (i - (len(layers) - 1) / 2, -row)

    box_w = 2.9 if show_shapes else 2.4
    fig = Figure(figsize=(max(4.0, box_w * width), 0.9 * (len(rows) + 1)))
    ax = fig.add_subplot()
    ax.set_xlim(-width / 2 - 0.2, width / 2 + 0.2)
    ax.set_ylim(-len(rows) + 0.4, 0.6)
    ax.axis("off")
    for node in graph.nodes:
        x1, y1 = position[node.layer]
        for t in node.inputs:
            x0, y0 = position[t.node.layer]
            ax.annotate("", xy=(x1, y1 + 0.22), xytext=(x0, y0 - 0.22),
                        arrowprops=dict(arrowstyle="->", color="0.35", lw=1,
                                        connectionstyle="arc3,rad=0.0" if y0 - y1 == 1 else "arc3,rad=0.25"))
    for layer, (x, y) in position.items():
        merge = getattr(layer, "multiple_inputs", False)
        ax.text(x, y, _label(layer, show_shapes, show_layer_names), ha="center", va="center", fontsize=7,
                bbox=dict(boxstyle="round,pad=0.35", fc="#fde8c8" if merge else "#dcebf7", ec="0.3", lw=0.8))
    folder = os.path.dirname(os.path.abspath(to_file))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(to_file, dpi=dpi, bbox_inches="tight")
    return to_file
