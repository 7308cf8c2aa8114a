"""Pictures show what they claim: mask colours survive into the PNG."""
import numpy as np
from matplotlib.image import imread

from tinyseg import plotting


def test_segmentation_grid_draws_mask_colours(tmp_path):
    image = np.zeros((1, 16, 16, 3), np.float32)
    mask = np.zeros((1, 16, 16), np.uint8)
    mask[0, 4:12, 4:12] = 1                                   # class 1 is orange in the palette
    path = plotting.plot_segmentation_grid(image, mask, mask, tmp_path / "grid.png", ["bg", "one"])
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
