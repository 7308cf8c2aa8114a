"""Data sets: the procedural shapes, the image-folder loader and its helpers, the safe CIFAR-10 reader, and
to_categorical."""
import io
import os
import pickle
import pickletools
import struct
import tarfile
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tinyseg.datasets import (
    cifar10,
    generate_shapes,
    load_cifar10,
    load_image,
    load_image_folder,
    load_mask,
    load_shapes,
    random_flip_rotate,
    read_image,
    resize_image,
    resize_mask,
    save_image_png,
    save_mask_png,
    shapes,
    train_val_split,
)
from tinyseg.utils import to_categorical


# === shapes ==================================================================================================
def test_shapes_same_seed_same_data_and_other_seed_other_data():
    (xa, ya), (xva, yva) = load_shapes(20, 10, size=24, seed=3)
    (xb, yb), (xvb, yvb) = load_shapes(20, 10, size=24, seed=3)
    (xc, _), _ = load_shapes(20, 10, size=24, seed=4)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(xva, xvb)
    np.testing.assert_array_equal(yva, yvb)
    assert not np.array_equal(xa, xc)
    assert not np.array_equal(xa[:10], xva)                      # train and validation are different images


def test_shapes_training_set_does_not_depend_on_n_val():
    (xa, ya), _ = load_shapes(15, 5, size=16, seed=1)
    (xb, yb), _ = load_shapes(15, 40, size=16, seed=1)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)


@pytest.mark.parametrize("size, channels", [(32, 3), ((24, 40), 1), (16, 2)])
def test_shapes_segmentation_shapes_dtypes_and_ranges(size, channels):
    (x, y), (xv, yv) = load_shapes(30, 7, size=size, channels=channels)
    h, w = (size, size) if isinstance(size, int) else size
    assert x.shape == (30, h, w, channels) and x.dtype == np.float32
    assert y.shape == (30, h, w) and y.dtype == np.uint8
    assert xv.shape == (7, h, w, channels) and yv.shape == (7, h, w)
    assert x.min() >= 0 and x.max() <= 1
    assert set(np.unique(y)) <= {0, 1, 2, 3}
    assert np.all((y > 0).any(axis=(1, 2)))                       # every image shows at least one shape


def test_shapes_segmentation_every_class_present_and_counts_between_one_and_max():
    x, masks, classes = generate_shapes(300, size=32, seed=0, shapes_per_image=(1, 3))
    assert set(np.unique(masks)) == {0, 1, 2, 3}
    drawn = (classes >= 0).sum(axis=1)
    assert drawn.min() == 1 and drawn.max() == 3
    assert np.all(classes[:, 0] >= 0)                             # slots fill from the first
    # The shape drawn last is on top: its class is in the mask (it can be hidden by nothing).
    last = classes[np.arange(300), drawn - 1]
    assert all((masks[i] == last[i] + 1).any() for i in range(300))
    # Every mask value is the class of some shape in that image.
    for i in range(300):
        assert set(np.unique(masks[i])) - {0} <= set((classes[i][classes[i] >= 0] + 1).tolist())


def test_shapes_classification_labels_and_rough_balance():
    (x, y), (xv, yv) = load_shapes(600, 60, size=32, task="classification")
    assert x.shape == (600, 32, 32, 3) and y.shape == (600,) and y.dtype == np.uint8
    assert set(np.unique(y)) == {0, 1, 2}
    counts = np.bincount(y, minlength=3)
    assert np.all(np.abs(counts - 200) < 50), counts
    assert len(shapes.CLASS_NAMES) == 3 and shapes.SEGMENTATION_CLASS_NAMES[0] == "background"


def test_shapes_classification_label_is_the_shape_in_the_mask():
    # load_shapes' documented recipe: training images = generate_shapes with the first spawned seed.
    (x, y), _ = load_shapes(200, 0, size=32, seed=5, task="classification")
    stream = np.random.SeedSequence(5).spawn(2)[0]
    x2, masks, classes = generate_shapes(200, size=32, seed=stream, shapes_per_image=(1, 1))
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, classes[:, 0])
    for i in range(200):
        assert set(np.unique(masks[i])) == {0, y[i] + 1}          # one shape, fully visible, of class y[i]


def test_shapes_area_formulas_give_area_a_squared():
    # The docstring: every kind has area a^2 for size a, a ~ U(0.2, 0.45) * S; so the mean pixel count of
    # each class is E[a^2] = S^2 (0.45^3 - 0.2^3) / (3 * 0.25), and a model cannot count pixels to classify.
    size, lo, hi = 48, 0.2, 0.45
    _, masks, classes = generate_shapes(3000, size=size, seed=2, shapes_per_image=(1, 1), noise=0, texture=0,
                                        scale=(lo, hi))
    area = (masks > 0).sum(axis=(1, 2))
    expected = size ** 2 * (hi ** 3 - lo ** 3) / (3 * (hi - lo))
    for k in range(3):
        assert area[classes[:, 0] == k].mean() == pytest.approx(expected, rel=0.05), shapes.CLASS_NAMES[k]


def test_shapes_are_flat_colours_with_contrast_when_noise_and_texture_are_off():
    x, masks, classes = generate_shapes(100, size=32, seed=0, noise=0, texture=0, min_contrast=0.3)
    contrasts = []
    for i in range(100):
        background = x[i][masks[i] == 0]
        assert np.ptp(background, axis=0).max() < 1e-6                  # one flat colour
        shape_colours = np.unique(x[i][masks[i] > 0], axis=0)           # one flat colour per visible shape
        assert len(shape_colours) <= (classes[i] >= 0).sum()
        contrasts += np.sqrt(np.mean((shape_colours - background[0]) ** 2, axis=1)).tolist()
    assert np.mean(np.array(contrasts) >= 0.3) > 0.95                # nearly always enough contrast


def test_shapes_generation_is_fast():
    start = time.perf_counter()
    (x, _), _ = load_shapes(2000, 0, size=64)
    elapsed = time.perf_counter() - start
    assert x.shape == (2000, 64, 64, 3)
    assert elapsed < 5.0, f"2000 images of 64x64 took {elapsed:.2f} s"


@pytest.mark.parametrize("kwargs, match", [
    (dict(task="detection"), "task"),
    (dict(size=4), "at least 8"),
    (dict(n_train=-1), "n_train"),
    (dict(channels=0), "channels"),
])
def test_shapes_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_shapes(**{"n_train": 2, "n_val": 1, **kwargs})


# === image folders ===========================================================================================
def _write_pair(images, masks, stem, image, mask, image_ext=".png", mask_ext=".png"):
    images.mkdir(exist_ok=True)
    masks.mkdir(exist_ok=True)
    Image.fromarray(image).save(images / f"{stem}{image_ext}")
    Image.fromarray(mask).save(masks / f"{stem}{mask_ext}")


def _random_pairs(tmp_path, n=3, shape=(12, 10), mask_values=(0, 255), seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    images, masks = tmp_path / "images", tmp_path / "masks"
    data = []
    for i in range(n):
        image = rng.integers(0, 256, size=shape + (3,), dtype=np.uint8)
        mask = rng.choice(np.array(mask_values, dtype=np.uint8), size=shape)
        _write_pair(images, masks, f"img{i}", image, mask, **kwargs)
        data.append((image, mask))
    return images, masks, data


def test_folder_binary_0_255_masks_become_0_1_in_auto_mode(tmp_path):
    images, masks, data = _random_pairs(tmp_path)
    x, y, names = load_image_folder(images, masks)
    assert names == ["img0", "img1", "img2"]
    assert x.shape == (3, 12, 10, 3) and x.dtype == np.float32
    assert y.shape == (3, 12, 10) and y.dtype == np.uint8
    np.testing.assert_allclose(x[1], data[1][0] / 255, atol=1e-7)
    np.testing.assert_array_equal(y[2], data[2][1] // 255)


def test_folder_binary_mode_thresholds_at_127(tmp_path):
    images, masks, data = _random_pairs(tmp_path, mask_values=(0, 100, 127, 128, 200))
    _, y, _ = load_image_folder(images, masks, mask_mode="binary")
    np.testing.assert_array_equal(y[0], (data[0][1] > 127).astype(np.uint8))
    # In 'auto' the same masks are class indices: values 100..200 would need num_classes > 200.
    _, y_index, _ = load_image_folder(images, masks, mask_mode="auto")
    np.testing.assert_array_equal(y_index[0], data[0][1])


def test_folder_binary_mode_refuses_0_1_masks(tmp_path):
    images, masks, _ = _random_pairs(tmp_path, mask_values=(0, 1))
    with pytest.raises(ValueError, match="mask_mode='index'"):
        load_image_folder(images, masks, mask_mode="binary")


def test_folder_index_masks_and_num_classes(tmp_path):
    images, masks, data = _random_pairs(tmp_path, mask_values=(0, 1, 2, 4))
    _, y, _ = load_image_folder(images, masks, mask_mode="index", num_classes=5)
    np.testing.assert_array_equal(y[1], data[1][1])
    with pytest.raises(ValueError, match=r"must be < num_classes=4.*img0.png"):
        load_image_folder(images, masks, mask_mode="index", num_classes=4)


def test_folder_palette_masks_keep_their_indices(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    mask = np.array([[0, 1, 2], [3, 20, 1]], dtype=np.uint8)
    Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(images / "a.png")
    save_mask_png(masks / "a.png", mask, palette=True)
    with Image.open(masks / "a.png") as im:
        assert im.mode == "P"
    _, y, _ = load_image_folder(images, masks, num_classes=21)
    np.testing.assert_array_equal(y[0], mask)
    save_mask_png(tmp_path / "gray.png", mask)
    np.testing.assert_array_equal(load_mask(tmp_path / "gray.png"), mask)


def test_folder_tiff_and_jpeg_files_pair_by_stem(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    rng = np.random.default_rng(1)
    tiff_image = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    mask = rng.choice(np.array([0, 255], np.uint8), size=(8, 8))
    _write_pair(images, masks, "a", tiff_image, mask, image_ext=".tiff", mask_ext=".tif")
    _write_pair(images, masks, "b", tiff_image, mask, image_ext=".jpg", mask_ext=".png")
    x, y, names = load_image_folder(images, masks)
    assert names == ["a", "b"]
    np.testing.assert_allclose(x[0], tiff_image / 255, atol=1e-7)    # TIFF is lossless
    assert np.abs(x[1] - tiff_image / 255).mean() < 0.2               # JPEG is close, not equal
    np.testing.assert_array_equal(y, np.stack([mask // 255] * 2))


def test_folder_sixteen_bit_grayscale_tiff_image(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    gray16 = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    _write_pair(images, masks, "a", gray16, np.zeros((2, 2), np.uint8), image_ext=".tif")
    x, _, _ = load_image_folder(images, masks, color_mode="grayscale")
    np.testing.assert_allclose(x[0, ..., 0], gray16 / 65535, rtol=1e-6)


def test_folder_sixteen_and_thirty_two_bit_masks(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    _write_pair(images, masks, "a", np.zeros((2, 2, 3), np.uint8), np.array([[0, 2], [2, 1]], np.uint16))
    _, y, _ = load_image_folder(images, masks)
    np.testing.assert_array_equal(y[0], [[0, 2], [2, 1]])
    Image.fromarray(np.array([[0, 300], [2, 1]], np.uint16)).save(masks / "a.png")
    with pytest.raises(ValueError, match="at most 255"):
        load_image_folder(images, masks)
    (masks / "a.png").unlink()
    Image.fromarray(np.array([[0, -1], [2, 1]], np.int32)).save(masks / "a.tif")
    with pytest.raises(ValueError, match=">= 0; negative values in a.tif"):
        load_image_folder(images, masks)


def test_folder_color_modes(tmp_path):
    images, masks, data = _random_pairs(tmp_path, n=2)
    x, _, _ = load_image_folder(images, masks, color_mode="grayscale")
    assert x.shape == (2, 12, 10, 1)
    r, g, b = (data[0][0][..., c].astype(float) for c in range(3))
    np.testing.assert_allclose(x[0, ..., 0], (0.299 * r + 0.587 * g + 0.114 * b) / 255, atol=1.5 / 255)
    # A grayscale file in 'rgb' mode is repeated over three channels.
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    _write_pair(tmp_path / "g", tmp_path / "gm", "a", gray, np.zeros((3, 4), np.uint8))
    x, _, _ = load_image_folder(tmp_path / "g", tmp_path / "gm")
    assert x.shape == (1, 3, 4, 3)
    for c in range(3):
        np.testing.assert_allclose(x[0, ..., c], gray / 255, atol=1e-7)


def test_folder_resize_uses_nearest_for_masks(tmp_path):
    images, masks, data = _random_pairs(tmp_path, n=2, shape=(13, 17), mask_values=(0, 3, 7))
    x, y, _ = load_image_folder(images, masks, size=(20, 9), mask_mode="index")
    assert x.shape == (2, 20, 9, 3) and y.shape == (2, 20, 9)
    assert set(np.unique(y)) <= {0, 3, 7}                 # nothing in between: no label was interpolated
    assert x.min() >= 0 and x.max() <= 1
    _, y_square, _ = load_image_folder(images, masks, size=8, mask_mode="index")
    assert y_square.shape == (2, 8, 8)


def test_resize_mask_nearest_formula():
    mask = np.array([[1, 2], [3, 4]])
    np.testing.assert_array_equal(resize_mask(mask, 4), np.repeat(np.repeat(mask, 2, 0), 2, 1))
    big = np.arange(36).reshape(6, 6)
    np.testing.assert_array_equal(resize_mask(big, 3), big[1::2, 1::2])   # pixel i <- floor((i + 0.5) * 2)


def test_resize_image_bilinear_and_nearest():
    image = np.random.default_rng(0).random((6, 8, 3)).astype(np.float32)
    out = resize_image(image, (12, 16))
    assert out.shape == (12, 16, 3) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    np.testing.assert_allclose(resize_image(image[..., 0], (12, 16)), out[..., 0])   # 2-D works too
    np.testing.assert_allclose(resize_image(image, (6, 8)), image, atol=1e-6)          # same size: unchanged
    mask = np.array([[0, 5], [7, 0]], np.uint8)
    big = resize_image(mask, 4, nearest=True)
    assert big.dtype == np.uint8 and set(np.unique(big)) == {0, 5, 7}


def test_folder_rgb_masks_only_if_channels_agree(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    gray_as_rgb = np.repeat(np.array([[0, 2], [1, 1]], np.uint8)[..., None], 3, axis=-1)
    _write_pair(images, masks, "a", np.zeros((2, 2, 3), np.uint8), gray_as_rgb)
    _, y, _ = load_image_folder(images, masks)
    np.testing.assert_array_equal(y[0], gray_as_rgb[..., 0])
    colourful = gray_as_rgb.copy()
    colourful[0, 0] = (255, 0, 0)
    Image.fromarray(colourful).save(masks / "a.png")
    with pytest.raises(ValueError, match="channels differ"):
        load_image_folder(images, masks)


def test_folder_error_missing_folder(tmp_path):
    (tmp_path / "masks").mkdir()
    with pytest.raises(FileNotFoundError, match="images folder .* does not exist"):
        load_image_folder(tmp_path / "nope", tmp_path / "masks")
    (tmp_path / "images").mkdir()
    with pytest.raises(FileNotFoundError, match="masks folder .* does not exist"):
        load_image_folder(tmp_path / "images", tmp_path / "nope")


def test_folder_error_no_images(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    with pytest.raises(FileNotFoundError, match=r"no images found .*\.png"):
        load_image_folder(tmp_path / "images", tmp_path / "masks")


def test_folder_error_image_without_mask_lists_a_few(tmp_path):
    images, masks, _ = _random_pairs(tmp_path, n=8, shape=(4, 4))
    for i in range(8):
        (masks / f"img{i}.png").unlink()
    _write_pair(images, masks, "paired", np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"8 image\(s\) .* no mask .*img0.png, img1.png, .* and 3 more"):
        load_image_folder(images, masks)


def test_folder_error_mask_without_image(tmp_path):
    images, masks, _ = _random_pairs(tmp_path, n=2, shape=(4, 4))
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(masks / "orphan.png")
    with pytest.raises(ValueError, match=r"1 mask\(s\) .* no image .*orphan.png"):
        load_image_folder(images, masks)


def test_folder_error_mask_size_differs_from_image(tmp_path):
    images, masks, _ = _random_pairs(tmp_path, n=2, shape=(6, 5))
    Image.fromarray(np.zeros((5, 6), np.uint8)).save(masks / "img1.png")
    with pytest.raises(ValueError, match=r"img1.png is 6x5 but its mask img1.png is 5x6"):
        load_image_folder(images, masks)
    with pytest.raises(ValueError, match="is 6x5 but its mask"):         # resizing does not hide it
        load_image_folder(images, masks, size=8)


def test_folder_error_images_of_different_sizes_suggests_size(tmp_path):
    images, masks, _ = _random_pairs(tmp_path, n=2, shape=(6, 5))
    _write_pair(images, masks, "z", np.zeros((7, 7, 3), np.uint8), np.zeros((7, 7), np.uint8))
    with pytest.raises(ValueError, match=r"2 different sizes .*size=\(height, width\)"):
        load_image_folder(images, masks)
    x, _, _ = load_image_folder(images, masks, size=(6, 5))
    assert x.shape == (3, 6, 5, 3)


def test_folder_error_void_255_gets_a_hint(tmp_path):
    images, masks, _ = _random_pairs(tmp_path, n=2, mask_values=(0, 1, 2, 255))
    with pytest.raises(ValueError, match="void"):
        load_image_folder(images, masks, num_classes=3)


def test_folder_error_jpeg_masks_and_duplicate_stems(tmp_path):
    images, masks, _ = _random_pairs(tmp_path, n=1, shape=(4, 4))
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(masks / "img0.jpg")
    with pytest.raises(ValueError, match="JPEG"):
        load_image_folder(images, masks)
    (masks / "img0.jpg").unlink()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(images / "img0.tif")
    with pytest.raises(ValueError, match="share the stem 'img0'"):
        load_image_folder(images, masks)


def test_folder_error_bad_arguments(tmp_path):
    images, masks, _ = _random_pairs(tmp_path, n=1, shape=(4, 4))
    with pytest.raises(ValueError, match="mask_mode"):
        load_image_folder(images, masks, mask_mode="colour")
    with pytest.raises(ValueError, match="color_mode"):
        load_image_folder(images, masks, color_mode="rgba")


def test_save_and_load_image_png_round_trip(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, size=(5, 6, 3)) / 255
    save_image_png(tmp_path / "a.png", image)
    np.testing.assert_allclose(load_image(tmp_path / "a.png"), image, atol=1e-6)
    np.testing.assert_allclose(read_image(tmp_path / "a.png"), image, atol=1e-6)     # the CLI's name for it
    save_image_png(tmp_path / "g.png", image[..., :1])
    assert load_image(tmp_path / "g.png", color_mode="grayscale").shape == (5, 6, 1)
    with pytest.raises(ValueError, match="0..255"):
        save_mask_png(tmp_path / "m.png", np.array([[0, 256]]))


# === augmentation and splitting ==============================================================================
def _dihedral(a, axes=(0, 1)):
    """All 8 flips/rotations of a (H, W, ...) array (4 if it is not square)."""
    out = []
    for flipped in (a, np.flip(a, axes[1])):
        for k in range(4):
            if a.shape[0] == a.shape[1] or k % 2 == 0:
                out.append(np.rot90(flipped, k, axes=axes))
    return out


@pytest.mark.parametrize("hw", [(6, 6), (4, 7)])
def test_random_flip_rotate_keeps_image_and_mask_aligned(hw):
    rng = np.random.default_rng(0)
    n, (h, w) = 64, hw
    y = rng.integers(0, 5, size=(n, h, w)).astype(np.uint8)
    # Channel 0 of the image is the mask itself; channel 1 is a unique pixel id, so any misalignment shows.
    x = np.stack([y.astype(np.float32), np.broadcast_to(np.arange(h * w).reshape(h, w), (n, h, w))], axis=-1)
    x_in, y_in = x.copy(), y.copy()
    xa, ya = random_flip_rotate(x, y, rng=1)
    np.testing.assert_array_equal(x, x_in)                        # inputs untouched
    np.testing.assert_array_equal(y, y_in)
    assert xa.shape == x.shape and ya.shape == y.shape and ya.dtype == y.dtype
    np.testing.assert_array_equal(xa[..., 0], ya)                  # mask still under the same pixels
    seen = set()
    for i in range(n):
        matches = [j for j, t in enumerate(_dihedral(x[i][..., 1])) if np.array_equal(t, xa[i][..., 1])]
        assert matches, "output is not a flip/rotation of the input"
        seen.add(matches[0])
    assert len(seen) == (8 if h == w else 4)                      # every transform occurs


def test_random_flip_rotate_one_hot_masks_seed_and_errors():
    x = np.random.default_rng(0).random((10, 5, 5, 3)).astype(np.float32)
    y = to_categorical(np.random.default_rng(1).integers(0, 3, (10, 5, 5)), 3)
    xa, ya = random_flip_rotate(x, y, rng=7)
    xb, yb = random_flip_rotate(x, y, rng=7)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
    assert ya.shape == (10, 5, 5, 3)
    x_only, none = random_flip_rotate(x, None, rng=7)
    np.testing.assert_array_equal(x_only, xa)
    assert none is None
    with pytest.raises(ValueError, match="matching x"):
        random_flip_rotate(x, y[:, :4], rng=0)


def test_train_val_split():
    x = np.arange(50)[:, None] * np.ones((1, 3))
    y = np.arange(50)
    (xt, yt), (xv, yv) = train_val_split(x, y, val_fraction=0.2, seed=0)
    assert len(xv) == 10 and len(xt) == 40
    np.testing.assert_array_equal(xt[:, 0], yt)                   # pairs stay together
    np.testing.assert_array_equal(xv[:, 0], yv)
    assert sorted(np.concatenate([yt, yv]).tolist()) == list(range(50))
    (_, yt2), _ = train_val_split(x, y, val_fraction=0.2, seed=0)
    np.testing.assert_array_equal(yt, yt2)
    with pytest.raises(ValueError, match="different lengths"):
        train_val_split(x, y[:3])
    with pytest.raises(ValueError, match="between 0 and 1"):
        train_val_split(x, y, val_fraction=1.5)
    with pytest.raises(ValueError, match="at least one"):
        train_val_split(x[:2], y[:2], val_fraction=0.1)


# === to_categorical ==========================================================================================
def test_to_categorical_labels_masks_and_trailing_one():
    np.testing.assert_array_equal(to_categorical([0, 2, 1]), [[1, 0, 0], [0, 0, 1], [0, 1, 0]])
    assert to_categorical([0, 2, 1]).dtype == np.float32
    assert to_categorical(np.zeros((4, 1), np.uint8), 10).shape == (4, 10)     # CIFAR's (N, 1) labels
    masks = np.random.default_rng(0).integers(0, 4, size=(2, 5, 6)).astype(np.uint8)
    onehot = to_categorical(masks, num_classes=4, dtype="float64")
    assert onehot.shape == (2, 5, 6, 4) and onehot.dtype == np.float64
    np.testing.assert_array_equal(onehot.sum(-1), 1)
    np.testing.assert_array_equal(to_categorical([1.0, 0.0]), [[0, 1], [1, 0]])


@pytest.mark.parametrize("y, num_classes, error, match", [
    ([0, -1], None, ValueError, ">= 0"),
    ([0, 3], 3, ValueError, "out of range for num_classes=3"),
    ([0.5, 1], None, ValueError, "whole numbers"),
    ([np.nan], 2, ValueError, "whole numbers"),
    (["a"], 2, TypeError, "integer class labels"),
    ([], None, ValueError, "empty"),
    ([0], 0, ValueError, "positive integer"),
])
def test_to_categorical_errors(y, num_classes, error, match):
    with pytest.raises(error, match=match):
        to_categorical(y, num_classes)


@settings(max_examples=50, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), k=st.integers(1, 6), seed=st.integers(0, 999))
def test_to_categorical_round_trips_with_argmax(shape, k, seed):
    if len(shape) > 1 and shape[-1] == 1:
        shape[-1] = 2                                   # a trailing 1 is dropped by design; tested above
    y = np.random.default_rng(seed).integers(0, k, size=shape)
    onehot = to_categorical(y, k)
    assert onehot.shape == tuple(shape) + (k,)
    np.testing.assert_array_equal(np.argmax(onehot, axis=-1), y)
    np.testing.assert_array_equal(onehot.sum(axis=-1), 1)


# === CIFAR-10 ================================================================================================
class _Python2StylePickler(pickle._Pickler):
    """Writes bytes and str as Python 2 `str` opcodes (SHORT_BINSTRING/BINSTRING), as cPickle did for the real
    files: Python 2 had no separate bytes type, so keys, array data and numpy's dtype codes ('u1', '|') were all
    byte strings, which Python 3 reads back as bytes with encoding='bytes'."""
    dispatch = pickle._Pickler.dispatch.copy()

    def _save_as_python2_str(self, obj):
        raw = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = _save_as_python2_str
    dispatch[str] = _save_as_python2_str


def _fake_batch(n, first_label, python2_style):
    rng = np.random.default_rng(first_label)
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)             # what we expect back (HWC)
    rows = images.transpose(0, 3, 1, 2).reshape(n, 3072)                            # CIFAR's CHW rows
    labels = [(first_label + i) % 10 for i in range(n)]
    batch = {b"batch_label": b"fake batch", b"labels": labels, b"data": rows,
             b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
    if python2_style:
        buffer = io.BytesIO()
        _Python2StylePickler(buffer, protocol=2).dump(batch)
        # numpy 1.x (which wrote the real files) kept _reconstruct in numpy.core.multiarray.
        data = buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
        assert b"cnumpy.core.multiarray\n_reconstruct\n" in data
        opcodes = {op.name for op, _, _ in pickletools.genops(data)}
        assert "SHORT_BINSTRING" in opcodes and not opcodes & {"BINUNICODE", "SHORT_BINUNICODE", "BINBYTES"}
    else:
        data = pickle.dumps(batch, protocol=2)
    return data, images, np.array(labels, np.uint8).reshape(n, 1)


def _fake_cifar(root, python2_style=False, n=2):
    folder = root / cifar10.FOLDER_NAME
    folder.mkdir(parents=True)
    expected = {}
    for i, name in enumerate(cifar10.TRAIN_FILES + [cifar10.TEST_FILE]):
        data, images, labels = _fake_batch(n + i % 2, first_label=i, python2_style=python2_style)
        (folder / name).write_bytes(data)
        expected[name] = (images, labels)
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": []}, protocol=2))
    x_train = np.concatenate([expected[name][0] for name in cifar10.TRAIN_FILES])
    y_train = np.concatenate([expected[name][1] for name in cifar10.TRAIN_FILES])
    return folder, (x_train, y_train), expected[cifar10.TEST_FILE]


@pytest.mark.parametrize("python2_style", [False, True])
def test_cifar10_from_extracted_folder(tmp_path, python2_style):
    folder, (x_train, y_train), (x_test, y_test) = _fake_cifar(tmp_path, python2_style)
    for path in (folder, tmp_path):                              # the folder itself, or the folder holding it
        (xt, yt), (xs, ys) = load_cifar10(path)
        assert xt.shape == (12, 32, 32, 3) and xt.dtype == np.uint8
        assert yt.shape == (12, 1) and yt.dtype == np.uint8
        np.testing.assert_array_equal(xt, x_train)                # CHW rows became HWC images
        np.testing.assert_array_equal(yt, y_train)
        np.testing.assert_array_equal(xs, x_test)
        np.testing.assert_array_equal(ys, y_test)


def test_cifar10_layout_conversion_by_hand(tmp_path):
    folder, (x_train, _), _ = _fake_cifar(tmp_path)
    rows = pickle.loads((folder / "data_batch_1").read_bytes(), encoding="bytes")[b"data"]
    (xt, _), _ = load_cifar10(folder)
    # Row layout: value index c * 1024 + r * 32 + col holds channel c at row r, column col.
    for c, r, col in [(0, 0, 0), (1, 5, 7), (2, 31, 30)]:
        assert xt[0, r, col, c] == rows[0, c * 1024 + r * 32 + col]


def test_cifar10_from_tar_gz(tmp_path):
    folder, (x_train, y_train), (x_test, y_test) = _fake_cifar(tmp_path / "src", python2_style=True)
    archive = tmp_path / cifar10.ARCHIVE_NAME
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=cifar10.FOLDER_NAME)
    for path in (archive, tmp_path):
        (xt, yt), (xs, ys) = load_cifar10(path)
        np.testing.assert_array_equal(xt, x_train)
        np.testing.assert_array_equal(yt, y_train)
        np.testing.assert_array_equal(xs, x_test)
        np.testing.assert_array_equal(ys, y_test)


class _RunsShell:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _OpensFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


@pytest.mark.parametrize("payload", ["os.system", "builtins.open", "object array"])
def test_cifar10_refuses_malicious_pickles_without_running_them(tmp_path, payload):
    folder, _, _ = _fake_cifar(tmp_path / "data")
    marker = tmp_path / "pwned"
    if payload == "os.system":
        evil = {b"data": _RunsShell(f"touch {marker}"), b"labels": [0]}
    elif payload == "builtins.open":
        evil = {b"data": _OpensFile(str(marker)), b"labels": [0]}
    else:   # an object array would make numpy unpickle its elements as arbitrary objects
        evil = {b"data": np.array([_OpensFile(str(marker))], dtype=object), b"labels": [0]}
    (folder / "data_batch_3").write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(ValueError, match="data_batch_3 is not a CIFAR-10 batch file"):
        load_cifar10(folder)
    assert not marker.exists()


def test_cifar10_rejects_wrong_contents(tmp_path):
    folder, _, _ = _fake_cifar(tmp_path)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]},
                                                     protocol=2))
    with pytest.raises(ValueError, match=r"test_batch is not a CIFAR-10 batch file: .*\(N, 3072\)"):
        load_cifar10(folder)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]},
                                                     protocol=2))
    with pytest.raises(ValueError, match="labels"):
        load_cifar10(folder)
    (folder / "test_batch").write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="not a CIFAR-10 batch file"):
        load_cifar10(folder)


def test_cifar10_missing_files_say_what_and_where(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere does not exist.*cifar-10-python.tar.gz.*CIFAR-10 page"):
        load_cifar10(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no CIFAR-10 data in the folder"):
        load_cifar10(tmp_path)
    folder, _, _ = _fake_cifar(tmp_path / "x")
    (folder / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="lacks test_batch"):
        load_cifar10(folder)
    archive = tmp_path / "partial.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=cifar10.FOLDER_NAME)
    with pytest.raises(FileNotFoundError, match="archive .* lacks test_batch"):
        load_cifar10(archive)
