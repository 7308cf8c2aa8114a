"""SegmentationDataset with augment=False cuts the centred window of every image, also of a non-square image
whose height and width margins differ (a wide 40 x 100 photograph, a tall 100 x 40 one).

Each pixel of the images written here holds its own row (channel 0) and column (channel 1), and each mask
pixel its column, so the batch says exactly which window was cut."""
import numpy as np
import pytest

from tinyseg.datasets.pipeline import SegmentationDataset


def _coordinate_images(h, w, n=2):
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    image = np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype(np.uint8)
    return np.repeat(image[None], n, axis=0), np.repeat(cols[None].astype(np.uint8), n, axis=0)


@pytest.mark.parametrize("image_hw, crop, top, left", [
    ((40, 100), (20, 40), 10, 30),        # wide: margins 20 (height) and 60 (width)
    ((100, 40), (40, 20), 30, 10),        # tall: margins 60 and 20
    ((40, 100), (21, 41), 9, 29),         # odd margins: the extra row and column fall after the window
])
def test_centre_crop_of_a_non_square_image(image_hw, crop, top, left):
    x, y = _coordinate_images(*image_hw)
    batch_x, batch_y = SegmentationDataset(x, y, batch_size=2, crop=crop, augment=False)[0]
    assert batch_x.shape == (2,) + crop + (3,) and batch_y.shape == (2,) + crop
    pixels = np.rint(batch_x * 255).astype(int)
    rows, cols = np.arange(top, top + crop[0]), np.arange(left, left + crop[1])
    for i in range(2):
        np.testing.assert_array_equal(pixels[i, :, 0, 0], rows)          # the window's rows ...
        np.testing.assert_array_equal(pixels[i, 0, :, 1], cols)          # ... and columns
        np.testing.assert_array_equal(batch_y[i], np.broadcast_to(cols, crop))


def test_a_window_taller_than_a_wide_image_is_centred_on_both_axes():
    """A 50 x 40 window of a 40 x 100 image reaches 5 rows past the top and bottom (void in the mask) and is
    centred across the width: columns 30..69."""
    x, y = _coordinate_images(40, 100, n=1)
    batch_x, batch_y = SegmentationDataset(x, y, batch_size=1, crop=(50, 40), augment=False, ignore_index=255)[0]
    cols = np.arange(30, 70)
    assert (batch_y[0, :5] == 255).all() and (batch_y[0, -5:] == 255).all()
    np.testing.assert_array_equal(batch_y[0, 5:45], np.broadcast_to(cols, (40, 40)))
    pixels = np.rint(batch_x[0] * 255).astype(int)
    np.testing.assert_array_equal(pixels[5:45, 0, 0], np.arange(40))
    np.testing.assert_array_equal(pixels[0, :, 1], cols)
