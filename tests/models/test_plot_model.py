"""plot_model's drawing (tinyseg/utils/drawing.py): every edge runs from the bottom of its source box to the top
of its reader and crosses no other box, so a skip or residual connection is drawn around the boxes it skips
(issue 25: the Xception U-Net's residual edges went straight through them)."""
import numpy as np
import pytest
from matplotlib.image import imread

import tinyseg
from tinyseg.models.unet import UNet
from tinyseg.models.xception import xception_unet
from tinyseg.utils.drawing import model_layout

from .test_functional import fork_join_model


def crosses(p, q, box, margin=1e-6):
    """Does the segment p-q pass through the inside of box (x0, y0, x1, y1)? (Liang-Barsky clipping.)"""
    x0, y0, x1, y1 = box[0] + margin, box[1] + margin, box[2] - margin, box[3] - margin
    t0, t1 = 0.0, 1.0
    dx, dy = q[0] - p[0], q[1] - p[1]
    for d, lo, hi, v in ((dx, x0, x1, p[0]), (dy, y0, y1, p[1])):
        if d == 0:
            if not lo < v < hi:
                return False
            continue
        a, b = sorted(((lo - v) / d, (hi - v) / d))
        t0, t1 = max(t0, a), min(t1, b)
        if t0 >= t1:
            return False
    return True


def test_crosses_sees_a_segment_through_a_box_and_not_beside_it():
    box = (0, 0, 2, 1)
    assert crosses((-1, 0.5), (3, 0.5), box) and crosses((1, 2), (1, -1), box) and crosses((1, 0.5), (1, 0.6), box)
    assert not crosses((-1, 2), (3, 2), box) and not crosses((2.5, -1), (2.5, 3), box)
    assert not crosses((1, 1), (1, 3), box)                 # leaving from the box's top edge is not crossing


MODELS = {
    "xception U-Net": lambda: xception_unet((32, 32), 4, filters=(16, 32, 48, 64)),
    "U-Net": lambda: UNet((16, 16, 3), num_classes=3, depth=2, base_filters=4),
    "fork and join, shared layer": fork_join_model,
}


@pytest.mark.parametrize("name", MODELS)
def test_no_edge_crosses_a_box_it_does_not_connect(name):
    layout = model_layout(MODELS[name](), show_shapes=True)
    boxes = layout["boxes"]
    names = list(boxes)
    for i, a in enumerate(names):                            # boxes do not overlap one another
        for b in names[i + 1:]:
            (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = boxes[a], boxes[b]
            assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, (a, b)
    long_edges = 0
    for src, dst, line in layout["edges"]:
        (sx0, sy0, sx1, _), (dx0, _, dx1, dy1) = boxes[src], boxes[dst]
        assert line[0][1] == pytest.approx(sy0) and sx0 < line[0][0] < sx1, (src, dst, "leaves its source's bottom")
        assert line[-1][1] == pytest.approx(dy1) and dx0 < line[-1][0] < dx1, (src, dst, "ends on its reader's top")
        long_edges += len(line) > 2
        for p, q in zip(line, line[1:]):
            for other, box in boxes.items():
                assert not crosses(p, q, box), f"{name}: the edge {src} -> {dst} crosses the box of {other}"
    assert long_edges > 0                                    # the models have skip connections to route


def test_plot_model_draws_the_layout_to_a_png(tmp_path):
    model = MODELS["xception U-Net"]()
    path = tinyseg.utils.plot_model(model, str(tmp_path / "model.png"), show_shapes=True)
    image = imread(path)
    layout = model_layout(model, show_shapes=True)
    rows = max(layout["rows"].values()) + 1
    assert image.shape[0] == pytest.approx(100 * 0.75 * rows, rel=0.1)          # 0.75 inch a row at dpi 100
    assert np.asarray(image[..., :3]).std() > 0.05
