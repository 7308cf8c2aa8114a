"""Tutorial 13 (pretraining without masks, then frozen / fine-tuned / from scratch on few masks) runs in its
--quick mode on street pictures it draws itself (no CamVid needed): its pictures read back at a sensible size,
the learning curve has one line per way and augmentation, the frozen encoder is the pretext network's, and
every verdict it prints is the one its own numbers give."""
import json
import re

import numpy as np
import pytest
from matplotlib.image import imread

from tests.tutorial_kit import definitions, run_quick_in_process

SCRIPT = "13_too_little_data.py"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("t13")
    names, printed = run_quick_in_process(SCRIPT, out)
    return names, out, printed


def test_quick_run_draws_its_streets_and_its_pictures(quick_run):
    names, out, _ = quick_run
    assert (out / "drawn-streets" / "trainannot").is_dir()           # no CamVid was read
    for name, (min_width, min_height) in {"pretext.png": (400, 300), "learning_curve.png": (500, 350),
                                          "predictions.png": (800, 300)}.items():
        picture = imread(out / name)
        height, width = picture.shape[:2]
        assert width >= min_width and height >= min_height, (name, picture.shape)
        assert picture[..., :3].std() > 0.01, f"{name} is blank"
    results = json.loads((out / "results.json").read_text())
    ways = results["ways"]
    assert ways == ["fine-tuned", "frozen", "from scratch"]
    assert results["lines"] == 2 * len(ways)                         # solid and dashed per way
    assert len(results["miou"]) == len(results["masks"]) * len(ways) * 2
    assert all(len(v) == results["seeds"] and all(0 <= m <= 1 for m in v) for v in results["miou"].values())
    assert results["train_miou"].keys() == results["miou"].keys()
    # the learning curve drawn: one line per way and augmentation (solid with, dashed without), one point per
    # number of masks, and the floor of predicting one class
    ax = names["curve"].axes[0]
    handles, labels = ax.get_legend_handles_labels()
    assert len(labels) == 2 * len(ways) + 1, labels
    for way in ways:
        for augment, style in (("with", "-"), ("without", "--")):
            line = handles[labels.index(f"{way}, {augment} augmentation")].lines[0]
            assert line.get_linestyle() == style and len(line.get_xdata()) == len(results["masks"])


def test_the_frozen_encoder_is_the_pretext_encoder_and_the_rest_learnt(quick_run):
    names, _, _ = quick_run
    pretext, models = names["pretext"], names["models"]
    encoder = [layer.name for layer in names["encoder_layers"](pretext)]
    assert encoder and all(name.startswith("enc") for name in encoder)
    for name in encoder:
        before = pretext.get_layer(name).get_weights()
        frozen = models["frozen"].get_layer(name)
        assert not frozen.trainable
        assert all(np.array_equal(a, b) for a, b in zip(before, frozen.get_weights())), name
    # fine-tuned: unfrozen in its second half, so its encoder moved away from the pretext's
    moved = [not all(np.array_equal(a, b) for a, b in zip(pretext.get_layer(n).get_weights(),
                                                          models["fine-tuned"].get_layer(n).get_weights()))
             for n in encoder if pretext.get_layer(n).get_weights()]
    assert any(moved) and models["fine-tuned"].get_layer(encoder[0]).trainable
    # from scratch did not start from the pretext weights
    first = encoder[0]
    assert not np.array_equal(models["from scratch"].get_layer(first).get_weights()[0],
                              pretext.get_layer(first).get_weights()[0])


def test_printed_verdicts_are_computed_from_the_measured_numbers(quick_run):
    names, out, printed = quick_run
    results = json.loads((out / "results.json").read_text())["miou"]
    noise = names["noise"]
    verdicts = re.findall(r"^\s*(\d+) masks, (with|without) augmentation: fine-tuned (beats|loses to|is level with) "
                          r"from scratch, ([+-][0-9.]+) mIoU", printed, re.MULTILINE)
    assert len(verdicts) == 2 * len(names["args"].masks), printed
    for n, augment, verdict, gain in verdicts:
        key = "aug" if augment == "with" else "plain"
        gains = np.subtract(results[f"{n}|fine-tuned|{key}"], results[f"{n}|from scratch|{key}"])
        assert float(gain) == pytest.approx(gains.mean(), abs=6e-4)
        clear = abs(gains.mean()) > noise and (np.all(gains > 0) or np.all(gains < 0))
        assert verdict == (("beats" if gains.mean() > 0 else "loses to") if clear else "is level with")
    assert re.search(r"^so: at .* masks fine-tuning (beats|does not always beat) training from scratch",
                     printed, re.MULTILINE)
    # and a reason for each of the fewest-mask comparisons, with its number: frozen against scratch
    whys = re.findall(r"^why, (\d+) masks (with|without) augmentation: .*?([+-][0-9.]+)", printed, re.MULTILINE)
    assert len(whys) == 2 * len(names["few"]), printed
    for n, augment, number in whys:
        key = "aug" if augment == "with" else "plain"
        frozen_gain = np.mean(results[f"{n}|frozen|{key}"]) - np.mean(results[f"{n}|from scratch|{key}"])
        fine_gain = np.mean(results[f"{n}|fine-tuned|{key}"]) - np.mean(results[f"{n}|from scratch|{key}"])
        assert min(abs(float(number) - frozen_gain), abs(float(number) - fine_gain)) < 6e-4, (n, augment, number)


def test_corrupt_hides_about_the_stated_share_and_keeps_the_rest_close():
    names = definitions(SCRIPT)
    images = np.random.default_rng(0).random((20, 32, 48, 3)).astype(np.float32)
    hidden = names["corrupt"](images, np.random.default_rng(1))
    assert hidden.shape == images.shape and hidden.dtype == np.float32
    grey = np.all(hidden == np.float32(0.5), axis=-1)
    assert abs(grey.mean() - names["HIDDEN"]) < 0.05
    assert (hidden[~grey] - images[~grey]).std() == pytest.approx(names["NOISE"], rel=0.1)
    cell = names["CELL"]                                              # whole cells are hidden, never parts
    blocks = grey.reshape(20, 32 // cell, cell, 48 // cell, cell)
    assert np.all(blocks.all(axis=(2, 4)) == blocks.any(axis=(2, 4)))


def test_a_difference_is_clear_only_when_every_seed_agrees_and_it_exceeds_the_noise():
    compare = definitions(SCRIPT)["compare"]
    assert compare([0.05, 0.03, 0.04], noise=0.01) == "beats"
    assert compare([-0.05, -0.03, -0.04], noise=0.01) == "loses to"
    assert compare([0.09, -0.01, 0.04], noise=0.01) == "is level with"          # one seed disagrees
    assert compare([0.005, 0.004, 0.006], noise=0.01) == "is level with"        # all agree, below the noise
