"""model.summary(): a Keras-like table of the layers, their output shapes, parameter counts and inputs."""


def _rows(model):
    """One row per layer: 'name (Type)', its (first) output shape, its parameter count, what it reads."""
    graph = model._graph
    local = {}
    for node in [t.node for t in graph.inputs] + graph.nodes:
        local.setdefault(node, sum(1 for n in local if n.layer is node.layer))
    first_output = {t.node.layer: t for t in graph.inputs}
    for node in graph.nodes:
        first_output.setdefault(node.layer, node.output)
    rows = []
    for layer in graph.layers:
        calls = [n for n in graph.nodes if n.layer is layer]
        sources = ", ".join(f"{t.node.layer.name}[{local[t.node]}][0]" for n in calls for t in n.inputs)
        shape = first_output[layer].shape
        rows.append([f"{layer.name} ({type(layer).__name__})", str(shape), f"{layer.count_params():,}",
                     sources or "-"])
    return rows


def summary_text(model):
    """The summary of a built model, as one string."""
    rows = _rows(model)
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if len(rows[0]) == 4 else [])
    widths = [max(len(h), *(len(r[i]) for r in rows)) + 2 for i, h in enumerate(headers)]
    width = sum(widths)
    total, trainable = model.count_params(), model.count_trainable_params()

    def line(cells):
        return "".join(f"{c:<{w}}" for c, w in zip(cells, widths)).rstrip()

    lines = [f'Model: "{model.name}"', "_" * width, line(headers), "=" * width]
    for i, row in enumerate(rows):
        lines.append(line(row))
        lines.append("_" * width if i < len(rows) - 1 else "=" * width)
    lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}", "_" * width]
    return "\n".join(lines)
