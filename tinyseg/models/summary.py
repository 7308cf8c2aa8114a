"""model.summary(): a Keras-like table of the layers, their output shapes, parameter counts and inputs.

The table fits a width: `line_length` if given, else the terminal's (80 columns where there is no terminal,
as in a log file). When the natural widths add up to more, the text columns (layer, shape, inputs) give up
a column at a time, the widest first, and a cell too long for its column folds onto more lines at a space
(a layer's name above its "(Type)", a list of inputs after a comma); only when no column can shrink further
without it is a word cut. The parameter count never folds. `positions` (Keras's argument) sets the right
edge of each column instead, as fractions of the line length (all <= 1) or as columns.

Below the table, the parameter counts split as Keras's are: "Trainable params" (what an optimizer updates)
and "Non-trainable params" (moving statistics, frozen layers). show_trainable=True adds Keras's column
"Trainable": Y, N (frozen), or - for a layer without weights.
"""
import shutil

from ..validation import integer

MIN_COLUMN = 10         # a text column never shrinks below this: narrower, every name folds into shreds
FIXED = (2, 4)          # the columns that never fold: the parameter count, Trainable


def _trainable_cell(layer):
    """Keras's show_trainable column: Y, N (frozen), or - for a layer without weights."""
    if not layer.weights:
        return "-"
    return "Y" if layer.trainable else "N"


def _rows(model, show_trainable=False):
    """One row per layer: 'name (Type)', its (first) output shape, its parameter count, what it reads (and,
    with show_trainable, whether it trains)."""
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
                     sources or "-"] + ([_trainable_cell(layer)] if show_trainable else []))
    return rows


def fold(text, width):
    """text as lines of at most `width` characters, broken at a space where one is near enough, else cut."""
    width = max(width, 1)
    lines = []
    while len(text) > width:
        cut = text.rfind(" ", 0, width + 1)           # the last space that leaves a line of <= width characters
        if cut > 0:
            lines.append(text[:cut].rstrip())
            text = text[cut + 1:]
        else:
            lines.append(text[:width])
            text = text[width:]
    return lines + [text]


def _widths_from_positions(positions, line_length, n):
    if len(positions) != n:
        raise ValueError(f"summary: positions must give the right edge of each of the {n} columns, got {positions!r}")
    if all(p <= 1 for p in positions):
        positions = [int(p * line_length) for p in positions]
    edges = [0] + [int(p) for p in positions]
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"summary: positions must increase, got {positions!r}")
    return [b - a for a, b in zip(edges, edges[1:])]


def column_widths(headers, rows, line_length):
    """Each column's width (its text + 2 spaces), shrinking text columns until the sum fits: first the widest
    of those still wider than their longest word (so cells fold between words), then, if need be, the widest
    down to MIN_COLUMN (words are then cut)."""
    columns = [[h] + [r[i] for r in rows] for i, h in enumerate(headers)]
    widths = [max(len(c) for c in cells) + 2 for cells in columns]
    words = [max(MIN_COLUMN, max(len(w) for c in cells for w in c.split(" ")) + 2) for cells in columns]
    for floor in (words, [MIN_COLUMN] * len(widths)):
        while sum(widths) > line_length:
            free = [i for i, w in enumerate(widths) if i not in FIXED and w > floor[i]]
            if not free:
                break
            widths[max(free, key=lambda i: widths[i])] -= 1
    return widths                                      # still too wide only below the narrowest table


def summary_text(model, line_length=None, positions=None, show_trainable=False):
    """The summary of a built model, as one string (see the module docstring)."""
    if line_length is None:
        line_length = shutil.get_terminal_size((80, 24)).columns
    line_length = integer(line_length, "summary: line_length", low=1)
    rows = _rows(model, show_trainable)
    headers = ["Layer (type)", "Output Shape", "Param #", "Connected to"] + (["Trainable"] if show_trainable else [])
    if positions is None:
        widths = column_widths(headers, rows, line_length)
    else:
        widths = _widths_from_positions(list(positions), line_length, len(headers))
    width = sum(widths)
    total, trainable, frozen = model.count_params(), model.count_trainable_params(), model.count_non_trainable_params()

    def lines_of(cells):
        folded = [fold(c, w - 2) for c, w in zip(cells, widths)]
        return ["".join(f"{(f[k] if k < len(f) else ''):<{w}}" for f, w in zip(folded, widths)).rstrip()
                for k in range(max(len(f) for f in folded))]

    lines = [f'Model: "{model.name}"', "_" * width, *lines_of(headers), "=" * width]
    for i, row in enumerate(rows):
        lines += lines_of(row)
        lines.append("_" * width if i < len(rows) - 1 else "=" * width)
    lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {frozen:,}", "_" * width]
    return "\n".join(lines)
