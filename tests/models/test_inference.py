"""Any-size prediction: padding to the network's multiple and cropping back, tiling with blended windows."""
import numpy as np
import pytest

from tinyseg import set_random_seed
from tinyseg.inference import (
    blend_weights,
    check_multiple,
    evaluate_segmentation,
    next_multiple,
    pad_to_multiple,
    predict_batch,
    predict_image,
    size_multiple,
    tile_starts,
)
from tinyseg.models.unet import UNet


@pytest.fixture(scope="module")
def model():
    set_random_seed(0)
    return UNet((32, 32, 3), num_classes=3, depth=2, base_filters=4)


def photo(h, w, seed=0):
    """A smooth random image (a few blobs), uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.zeros((h, w, 3))
    for _ in range(6):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(4, 12)
        image += rng.uniform(0, 1, 3) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None]
    return np.clip(image / image.max() * 255, 0, 255).astype(np.uint8)


def test_multiples_and_padding():
    assert next_multiple(180, 16) == 192 and next_multiple(176, 16) == 176
    x = np.arange(2 * 5 * 6 * 1).reshape(2, 5, 6, 1)
    padded, (h, w) = pad_to_multiple(x, 4)
    assert padded.shape == (2, 8, 8, 1) and (h, w) == (5, 6)
    np.testing.assert_array_equal(padded[:, :5, :6], x)                  # the image is at the top left
    np.testing.assert_array_equal(padded[:, 5, :6], x[:, 3])             # reflection: row 5 mirrors row 3
    np.testing.assert_array_equal(padded[:, :5, 6], x[:, :, 4])
    with pytest.raises(ValueError, match="--size 180 240 is not divisible by 2\\*\\*depth = 16; the nearest "
                                         "valid size is 176 240"):
        check_multiple((180, 240), 16, "size", "--size")


def test_size_multiple(model):
    assert size_multiple(model) == 4
    assert size_multiple(UNet((48, 64, 3), num_classes=2, depth=4, base_filters=2)) == 16


def test_valid_size_prediction_is_the_model_s(model):
    image = photo(32, 32)
    np.testing.assert_allclose(predict_image(model, image), model.predict(image[None] / np.float32(255))[0],
                               rtol=1e-5, atol=1e-6)


def test_padded_prediction_equals_the_unpadded_one_away_from_the_padding(model):
    full = photo(64, 96)
    reference = predict_image(model, full)                               # 64 x 96: no padding at all
    cut = full[:61, :90]                                                 # padded to 64 x 96 by reflection
    scores = predict_image(model, cut)
    assert scores.shape == (61, 90, 3)
    # The depth-2 U-Net's receptive field reaches about 22 pixels each way: farther than that from the padded
    # rows and columns, a pixel sees only pixels the two images share, on the same pooling grid.
    margin = 28
    np.testing.assert_allclose(scores[:61 - margin, :90 - margin], reference[:61 - margin, :90 - margin],
                               rtol=1e-5, atol=1e-6)
    # near the padding they differ (the padded image is a different picture there), which is why the crop
    # is needed and why the comparison keeps its distance
    assert np.abs(scores[-3:, -3:] - reference[58:61, 87:90]).max() > 1e-4


def test_any_size_batches_and_sums_to_one(model):
    x = np.stack([photo(37, 50, seed=s) for s in range(3)])
    scores = predict_batch(model, x)
    assert scores.shape == (3, 37, 50, 3)
    np.testing.assert_allclose(scores.sum(axis=-1), 1, rtol=1e-5)


def test_tile_starts_cover_the_axis_and_end_flush():
    assert tile_starts(100, 32, 0.25) == [0, 24, 48, 68]
    assert tile_starts(32, 32, 0.25) == [0] and tile_starts(20, 32, 0.5) == [0]
    for length, tile, overlap in [(100, 32, 0.0), (97, 16, 0.5), (64, 32, 0.25)]:
        starts = tile_starts(length, tile, overlap)
        covered = np.zeros(length, bool)
        for s in starts:
            covered[s:s + tile] = True
        assert covered.all() and starts[-1] + tile == length


def test_blend_weights_ramp_from_the_edges():
    w = blend_weights(16, 8, 0.25)                                       # ramps of 4 and 2 pixels
    assert w.shape == (16, 8) and (w > 0).all() and w.max() == 1
    np.testing.assert_allclose(w[:, 4], [1 / 8, 3 / 8, 5 / 8, 7 / 8] + [1] * 8 + [7 / 8, 5 / 8, 3 / 8, 1 / 8])
    np.testing.assert_allclose(w, w[::-1, ::-1])


def test_tiling_blends_the_windows_scores(model):
    image = photo(40, 56)
    tile, overlap = (32, 32), 0.25
    tiled = predict_image(model, image, tile=tile, overlap=overlap)
    # by hand: windows at rows [0, 8] and columns [0, 24] (flush), each predicted alone, weighted and averaged
    x = image.astype(np.float32) / 255
    w = blend_weights(32, 32, overlap)[..., None]
    total = np.zeros((40, 56, 1), np.float32)
    blended = np.zeros((40, 56, 3), np.float32)
    windows = {}
    for top in tile_starts(40, 32, overlap):
        for left in tile_starts(56, 32, overlap):
            windows[top, left] = model.predict(x[None, top:top + 32, left:left + 32])[0]
            blended[top:top + 32, left:left + 32] += w * windows[top, left]
            total[top:top + 32, left:left + 32] += w
    np.testing.assert_allclose(tiled, blended / total, rtol=1e-5, atol=1e-6)
    assert set(windows) == {(0, 0), (0, 24), (8, 0), (8, 24)}
    # where two windows overlap the result lies between them (a blend, not the last window written)
    a, b, here = windows[0, 0][20, 28], windows[0, 24][20, 4], tiled[20, 28]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    assert np.all(here >= lo - 1e-6) and np.all(here <= hi + 1e-6) and np.abs(a - b).max() > 1e-4
    # a tile as large as the image is the plain prediction
    np.testing.assert_allclose(predict_image(model, image, tile=(48, 64)), predict_image(model, image), atol=1e-6)
    with pytest.raises(ValueError, match="tile 30 32 is not divisible"):
        predict_image(model, image, tile=(30, 32))


def test_evaluate_segmentation_counts_every_kept_pixel(model):
    x = np.stack([photo(36, 44, seed=s) for s in range(5)])
    y = np.random.default_rng(0).integers(0, 4, (5, 36, 44)).astype(np.uint8)      # 3 = void
    cm, (images, masks, preds) = evaluate_segmentation(model, x, y, 3, ignore_index=3, batch_size=2, keep=2)
    assert cm.matrix.sum() == (y != 3).sum() and len(preds) == 2 and preds[0].shape == (36, 44)
    one_by_one, _ = evaluate_segmentation(model, list(x), list(y), 3, ignore_index=3)
    np.testing.assert_array_equal(one_by_one.matrix, cm.matrix)
    from tinyseg.datasets import SegmentationDataset
    streamed, _ = evaluate_segmentation(model, SegmentationDataset(x, y), num_classes=3, ignore_index=3)
    np.testing.assert_array_equal(streamed.matrix, cm.matrix)
    np.testing.assert_array_equal(one_by_one.matrix, cm.matrix)
