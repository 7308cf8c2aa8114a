"""Tutorial 16 (four decoders) runs in its --quick mode on street pictures it draws itself (no CamVid needed):
the receptive fields it computes by the recurrence are the ones backpropagation measures (and the ones worked
out by hand below), the skips it finds in each graph are the papers', its three pictures read back at a
sensible size and draw what they say, and the table and its reading print the run's own numbers."""
import re

import numpy as np
import pytest
from matplotlib.image import imread
from matplotlib.patches import Rectangle

from tests.tutorial_kit import run_quick_in_process

SCRIPT = "16_four_decoders.py"
# r = 1 + sum over the layers of (k_eff - 1) * jump, by hand at the builders' defaults:
#   fcn8s:  VGG's 13 convs and 5 poolings reach 212 at stride 32; fc6 (7x7) adds 6 * 32       -> 404
#   segnet: the same VGG encoder, up to pool5                                                  -> 212
#   unet:   depth 3: 1 + 2*2 + 1 + 2*2*2 + 2 + 2*2*4 + 4 + 2*2*8 (two 3x3 convs a level)          -> 68
#   deeplabv3plus: stem 1+2; stage strides 2: +2*2 +2*4, +2*4 +2*8, +2*8 +2*16; dilation 2: +2*2*16 twice -> 215
BY_HAND = {"fcn8s": (404, 32), "segnet": (212, 32), "unet": (68, 8), "deeplabv3plus": (215, 16)}
SKIPS = {"fcn8s": ([8, 16], []), "segnet": ([], [1, 2, 4, 8, 16]), "unet": ([1, 2, 4], []),
         "deeplabv3plus": ([4], [])}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("t16")
    names, printed = run_quick_in_process(SCRIPT, out)
    return names, out, printed


def test_the_receptive_fields_computed_are_the_ones_measured(quick_run):
    names, _, printed = quick_run
    fields = names["fields"]
    assert list(fields) == list(BY_HAND)
    for name, (r, stride) in BY_HAND.items():
        f = fields[name]
        assert (f["r"], f["jump"]) == (r, stride), name
        assert f["unclipped_r"] == (r, r), name                  # backprop on an image that holds the window
        assert f["predicted"] == f["measured"], name             # and on 176 x 240, clipped to the image
        assert f["skips"] == SKIPS[name], name
        assert re.search(rf"^{name}\s+encoder output stride\s+{stride}, receptive field r = {r} pixels .*: equal$",
                         printed, re.MULTILINE), name
    assert "DIFFERENT" not in printed
    # the window is a real part of the image for the U-Net, the whole height for the others
    assert fields["unet"]["measured"][1] - fields["unet"]["measured"][0] + 1 == 68
    assert all(fields[n]["measured"][:2] == (0, 175) for n in ("fcn8s", "segnet", "deeplabv3plus"))


def test_the_decoders_picture_puts_unpooled_values_at_the_argmax(quick_run):
    names, _, printed = quick_run
    unpooled, pooled, picture = names["unpooled"], names["pooled"][0, :, :, 0], names["picture"]
    rows, cols = np.nonzero(unpooled)
    assert len(rows) == 16
    # each nonzero pixel holds its 2x2 window's maximum, which is the picture's value there
    np.testing.assert_array_equal(unpooled[rows, cols], pooled[rows // 2, cols // 2])
    np.testing.assert_array_equal(unpooled[rows, cols], picture[rows, cols])
    panel = names["decoders_fig"].axes[6]                        # second row, second panel: unpooling
    assert panel.get_title().startswith("unpooling")
    dots = panel.get_lines()[0]
    assert sorted(zip(dots.get_ydata(), dots.get_xdata())) == sorted(zip(rows, cols))
    assert "each holding its window's maximum: True" in printed
    # the smooth decoders blur the one-pixel pole: its contrast drops below the unpooled one's
    contrast = {k.split("(")[1][:-1]: names["pole_contrast"](m[0, :, :, 0]) for k, m in names["upsampled"].items()}
    assert contrast["SegNet"] > contrast["FCN-8s"] and contrast["SegNet"] > contrast["DeepLabV3+"]
    assert names["pole_contrast"](picture) > max(contrast.values())


def test_the_pictures_read_back_and_draw_what_they_say(quick_run):
    names, out, _ = quick_run
    for name, (min_width, min_height) in {"decoders.png": (1000, 450), "receptive_fields.png": (1000, 300),
                                          "predictions.png": (700, 300)}.items():
        picture = imread(out / name)
        height, width = picture.shape[:2]
        assert width >= min_width and height >= min_height, (name, picture.shape)
        assert picture[..., :3].std() > 0.02, f"{name} is blank"
    # receptive_fields.png: per network, the yellow box is the measured window, the dashed one the computed
    for ax, (name, f) in zip(names["rf_fig"].axes, names["fields"].items()):
        boxes = {p.get_label(): p for p in ax.patches if isinstance(p, Rectangle)}
        yellow = boxes["nonzero gradient (measured)"]
        top, bottom, left, right = f["measured"]
        assert (yellow.get_x() + 0.5, yellow.get_y() + 0.5, yellow.get_width(), yellow.get_height()) == \
            (left, top, right - left + 1, bottom - top + 1), name
        assert boxes[f"computed window, r = {f['r']}"].get_height() == f["r"], name
    # predictions.png: image, truth and the four networks' predictions, one row per shown image
    grid = names["predictions_fig"].axes
    assert len(grid) % 6 == 0 and [ax.get_title().split(" ")[0] for ax in grid[:6]] == \
        ["image", "truth", "fcn8s", "segnet", "unet", "deeplabv3plus"]


def test_the_table_and_its_reading_are_the_runs_own_numbers(quick_run):
    names, out, printed = quick_run
    assert (out / "synthetic-camvid" / "trainannot").is_dir() and "no CamVid" in printed
    results = names["results"]
    for name, r in results.items():
        row = re.search(rf"^{name}\s+([\d,]+)\s+(\d+)\s+(\d+)\s+(\S+)\s+.*?(\d\.\d+) ±(\d\.\d+)", printed, re.MULTILINE)
        assert row, name
        assert int(row.group(1).replace(",", "")) == r["params"]
        assert int(row.group(3)) == BY_HAND[name][1]
        assert float(row.group(5)) == pytest.approx(r["miou"], abs=5e-4)
        assert float(row.group(6)) == pytest.approx(r["sd_miou"], abs=5e-4)
        assert 0 <= r["miou"] <= 1 and r["ms_per_step"] > 0
    ranked = sorted(results, key=lambda n: -results[n]["miou"])
    assert ("By mIoU: " + ", ".join(f"{n} {results[n]['miou']:.3f}" for n in ranked)) in printed
    for c in names["SMALL"]:
        assert re.search(rf"^{c}( \(\d+ validation pixels\): \d of 4 reach IoU|: no pixel of it)", printed,
                         re.MULTILINE), c
