"""The drawn street scenes: CamVid's classes and layout, the same pictures for the same seed."""
import numpy as np
from PIL import Image

from tinyseg.datasets import camvid, streets


def test_a_street_has_camvids_classes_and_colours():
    image, label = streets.draw_street(48, 64, np.random.default_rng(0))
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    assert label.shape == (48, 64) and label.dtype == np.uint8
    present = set(np.unique(label))
    assert present <= set(range(12)) and {streets.SKY, streets.ROAD, streets.VOID} <= present
    road = label == streets.ROAD                     # shaded and noisy, but near the road's CamVid colour
    assert np.abs(image[road].mean(axis=0) - camvid.PALETTE[streets.ROAD]).max() < 40


def test_write_streets_makes_the_segnet_layout_that_camvid_reads(tmp_path):
    root = streets.write_streets(str(tmp_path / "s"), n_train=3, n_val=2, size=(32, 48), seed=5)
    data = camvid.load_data(root, size=(32, 48), splits=("train", "val"))
    assert data.train[0].shape == (3, 32, 48, 3) and data.val[1].shape == (2, 32, 48)
    again = streets.write_streets(str(tmp_path / "t"), n_train=3, n_val=2, size=(32, 48), seed=5)
    for name in ("train/street_000.png", "valannot/street_001.png"):
        np.testing.assert_array_equal(np.asarray(Image.open(f"{root}/{name}")),
                                      np.asarray(Image.open(f"{again}/{name}")))
