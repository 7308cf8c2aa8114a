"""Pictures show what they claim: mask colours survive into the PNG; without a data set's palette the label
maps carry no hue (so no class code looks like a shape's own colour); epoch ticks are whole numbers."""
import numpy as np
from matplotlib.image import imread

from tinyseg import plotting
from tinyseg.datasets import load_shapes
from tinyseg.datasets.shapes import SEGMENTATION_CLASS_NAMES


def test_segmentation_grid_draws_mask_colours(tmp_path):
    image = np.zeros((1, 16, 16, 3), np.float32)
    mask = np.zeros((1, 16, 16), np.uint8)
    mask[0, 4:12, 4:12] = 1                                   # class 1 is orange in the palette
    path = plotting.plot_segmentation_grid(image, mask, mask, tmp_path / "grid.png", ["bg", "one"],
                                           colours=plotting.PALETTE)              # a data set's own palette
    png = imread(path)[..., :3]
    orange = plotting.PALETTE[1] / 255.0
    orange_pixels = np.all(np.abs(png - orange) < 0.05, axis=-1).sum()
    # two 8x8 squares drawn at ~6 screen pixels per mask pixel; the legend's swatch alone is a few hundred
    assert orange_pixels > 2000, f"only {orange_pixels} pixels of the class colour in the picture"


def test_mask_to_rgb_and_overlay():
    mask = np.array([[0, 1], [2, 3]])
    rgb = plotting.mask_to_rgb(mask, 4)
    assert rgb.dtype == np.uint8 and np.array_equal(rgb[0, 1], plotting.PALETTE[1])
    blend = plotting.overlay(np.ones((2, 2, 3)) * 0.5, mask, 4)
    assert np.allclose(blend[0, 0], 0.5)                      # background untouched
    assert not np.allclose(blend[1, 1], 0.5)


def test_shapes_grid_draws_classes_without_hue_and_each_with_its_own_hatch(tmp_path):
    # The shapes' colours are uniform over the RGB cube: every hue occurs, so no hue may code a class.
    _, (x, y) = load_shapes(0, 6, size=32, seed=3)
    shape_pixels = x[y > 0]
    assert np.ptp(shape_pixels, axis=-1).max() > 0.5          # strongly coloured shapes are in the picture
    pred = np.roll(y, 2, axis=2)                              # a prediction with errors
    fig = plotting.segmentation_grid_figure(x, y, pred, SEGMENTATION_CLASS_NAMES)
    path = plotting.save_figure(fig, tmp_path / "grid.png")
    png = imread(path)[..., :3]
    axes = np.array(fig.axes).reshape(6, 3)
    height = png.shape[0]
    for row in axes:
        np.testing.assert_allclose(row[0].get_images()[0].get_array(), np.clip(x[list(axes[:, 0]).index(row[0])],
                                                                                 0, 1))
        for ax in row[1:]:                                    # the true and the predicted mask panels, as drawn
            box = ax.get_window_extent()
            scale = png.shape[1] / fig.bbox.width
            top, bottom = int(height - box.y1 * scale) + 3, int(height - box.y0 * scale) - 3
            left, right = int(box.x0 * scale) + 3, int(box.x1 * scale) - 3
            panel = png[top:bottom, left:right]
            assert np.ptp(panel, axis=-1).max() <= 2 / 255, "a mask panel holds a colour with a hue"
            assert panel.std() > 0.05                         # and it is not blank
    legend = fig.legends[0]
    patches = legend.get_patches()
    hatches = [p.get_hatch() or "" for p in patches]
    greys = [p.get_facecolor()[0] for p in patches]
    assert len(set(hatches)) == len(SEGMENTATION_CLASS_NAMES) == len(patches), hatches
    assert all(np.ptp(p.get_facecolor()[:3]) == 0 for p in patches)               # the legend too: no hue
    assert min(abs(a - b) for i, a in enumerate(greys) for b in greys[i + 1:]) >= 0.15, greys
    drawn = {h for ax in axes[:, 1:].ravel() for c in ax.collections for h in getattr(c, "hatches", []) if h}
    assert drawn == set(hatches) - {""}                       # the hatches drawn are the legend's


def test_a_palette_still_colours_the_masks():
    mask = np.zeros((1, 8, 8), np.uint8)
    mask[0, 2:6, 2:6] = 2
    fig = plotting.segmentation_grid_figure(np.zeros((1, 8, 8, 3)), mask, mask, ["a", "b", "c"],
                                            colours=plotting.PALETTE)
    shown = fig.axes[1].get_images()[0].get_array()
    assert np.array_equal(shown[3, 3], plotting.PALETTE[2])
    assert not fig.axes[1].collections                        # no hatches when the data set has colours


def test_history_has_whole_epoch_ticks():
    for n in (1, 2, 3, 7):
        history = {"loss": list(np.linspace(1, 0.2, n)), "val_loss": list(np.linspace(1.1, 0.4, n)),
                   "accuracy": list(np.linspace(0.3, 0.9, n))}
        fig = plotting.history_figure(history)
        fig.draw_without_rendering()
        for ax in fig.axes:
            lo, hi = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
            assert ticks and all(float(t).is_integer() for t in ticks), (n, ticks)
            assert min(ticks) >= 1 and max(ticks) <= n, (n, ticks)
