"""mask_mode='auto' in load_image_folder: all-0 and all-255 masks read as binary, and a folder that mixes 0/255
masks with class-index masks is refused, naming the files (either reading is allowed when asked for by name).
"""
import numpy as np
import pytest
from PIL import Image

from tinyseg.datasets.folder import load_image_folder


def _write_folder(tmp_path, masks):
    """images/img{i}.png (random RGB) and masks/img{i}.png ('L', the given uint8 values) for each mask."""
    images_dir, masks_dir = tmp_path / "images", tmp_path / "masks"
    images_dir.mkdir(parents=True)
    masks_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, mask in enumerate(masks):
        image = rng.integers(0, 256, size=mask.shape + (3,), dtype=np.uint8)
        Image.fromarray(image).save(images_dir / f"img{i}.png")
        Image.fromarray(np.asarray(mask, dtype=np.uint8)).save(masks_dir / f"img{i}.png")
    return images_dir, masks_dir


def test_auto_mask_mode_reads_all_255_as_object_and_all_0_as_background(tmp_path):
    """Broken on purpose with auto choosing 'binary' only when a folder holds both 0 and 255: the all-255
    masks came back as class 255."""
    full, empty = np.full((5, 4), 255), np.zeros((5, 4))
    images, masks = _write_folder(tmp_path / "full", [full, full])
    _, y, _ = load_image_folder(images, masks)
    assert y.dtype == np.uint8
    assert np.all(y == 1), f"all-255 masks gave values {np.unique(y).tolist()}, expected class 1"
    images, masks = _write_folder(tmp_path / "empty", [empty, empty])
    _, y, _ = load_image_folder(images, masks)
    assert np.all(y == 0), f"all-0 masks gave values {np.unique(y).tolist()}, expected class 0"
    images, masks = _write_folder(tmp_path / "both", [empty, full])
    _, y, _ = load_image_folder(images, masks)
    np.testing.assert_array_equal(y, [empty, full / 255])


def test_auto_mask_mode_refuses_index_masks_mixed_with_0_255_masks(tmp_path):
    """Without the check, such a folder loaded silently, 255 kept as class 255."""
    rng = np.random.default_rng(1)
    index = rng.integers(0, 3, (5, 4))                                   # classes 0, 1, 2
    binary = rng.choice([0, 255], (5, 4))
    images, masks = _write_folder(tmp_path / "mixed", [index, binary, np.full((5, 4), 255)])
    with pytest.raises(ValueError, match=r"img1\.png.*img2\.png.*img0\.png.*mask_mode") as error:
        load_image_folder(images, masks)
    assert "0 and 255" in str(error.value)
    # Said explicitly, either reading is allowed.
    _, y, _ = load_image_folder(images, masks, mask_mode="index")
    assert y[1].max() == 255
    _, y, _ = load_image_folder(images, masks, mask_mode="binary")
    assert set(np.unique(y).tolist()) == {0, 1}
    # An all-0 mask fits both readings, so it does not make a folder of index masks ambiguous.
    images, masks = _write_folder(tmp_path / "index", [index, np.zeros((5, 4))])
    _, y, _ = load_image_folder(images, masks)
    np.testing.assert_array_equal(y, [index, np.zeros((5, 4))])
