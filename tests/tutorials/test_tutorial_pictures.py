"""The tutorials' pictures show what they claim (issue 14, "Pictures"), read back from the matplotlib Figures the
tutorials drew (run in this process with --quick, so their globals hold the Figures) and from the PNG files:

- tutorial 01: epoch ticks are whole numbers; the filter picture has a colour bar and a title saying what the
  3x3 patches are; the change picture draws trained - initial, every filter and channel on one scale;
- tutorial 02: the feature-map figure shows the input image it comes from, and a colour bar;
- tutorial 03: the legend covers no bar and no bar's value, and every bar is labelled with its value; the
  TP/FP/FN/TN map has its four colours, counted in its legend, and the five scores are ratios of those counts.
The prediction grid's class codes are tested in test_plotting.py."""
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from tests.tutorial_kit import run_in_process


def colorbars(fig):
    """The axes that hold a colour bar (matplotlib's Colorbar marks its axes with `_colorbar`)."""
    return [ax for ax in fig.axes if getattr(ax, "_colorbar", None) is not None]


def visible_ticks(axis, lim):
    lo, hi = sorted(lim)
    return [t for t in axis.get_ticklocs() if lo - 1e-9 <= t <= hi + 1e-9]


def assert_png(path, min_width, min_height):
    image = Image.open(path)
    assert image.size[0] >= min_width and image.size[1] >= min_height, (path.name, image.size)
    a = np.asarray(image.convert("RGB"), dtype=np.float64)
    assert a.std() > 5, f"{path.name} is blank"


def test_tutorial_01_curves_have_integer_epochs_and_filters_a_scale(tmp_path, monkeypatch):
    g = run_in_process("01_seed_cnn.py", monkeypatch, "--quick", "--epochs", "2", "--out", str(tmp_path))
    curves = g["curves_fig"]
    curves.draw_without_rendering()
    for ax in curves.axes:
        ticks = visible_ticks(ax.xaxis, ax.get_xlim())
        assert ticks, "no epoch ticks"
        assert all(float(t).is_integer() for t in ticks), f"fractional epoch ticks {ticks}"
        assert set(ticks) <= {1.0, 2.0}, ticks                  # no epoch 0 or 3 on a 2-epoch run
    filters = g["filters_fig"]
    bars = colorbars(filters)
    assert len(bars) == 1, "the filter picture needs one colour scale"
    s = float(np.abs(g["kernel"]).max())
    lo, hi = bars[0].get_xlim()
    assert lo == pytest.approx(-s) and hi == pytest.approx(s), "the colour bar must span -max|K| .. +max|K|"
    title = filters._suptitle.get_text()
    for word in ("first-layer kernels", "3x3", "RGB", "32 filters"):
        assert word in title, f"{word!r} not in the filter picture's title {title!r}"
    patches = [ax for ax in filters.axes if ax.get_images()]
    assert len(patches) == 32
    for name in ("curves.png", "filters.png", "predictions.png", "filter_change.png"):
        assert_png(tmp_path / name, 400, 300)
    # what training changed: trained - initial, one signed 3x3 map per filter and channel, on one scale
    change = g["change"]
    np.testing.assert_array_equal(change, g["kernel"] - g["initial_kernel"])
    assert np.abs(change).max() > 0, "training changed nothing"
    fig = g["change_fig"]
    maps = [ax for ax in fig.axes if ax.get_images() and getattr(ax, "_colorbar", None) is None]
    assert len(maps) == 32 * 3
    s = float(np.abs(change).max())
    assert {ax.get_images()[0].get_clim() for ax in maps} == {(-s, s)}, "every map on the one scale -s..s"
    shown = np.stack([np.asarray(ax.get_images()[0].get_array()) for ax in maps])
    np.testing.assert_allclose(shown, change.transpose(3, 2, 0, 1).reshape(96, 3, 3))   # filter by filter, R G B
    assert len(colorbars(fig)) == 1 and "trained - initial" in fig._suptitle.get_text()
    centred = change - change.mean(axis=(0, 1), keepdims=True)
    assert g["edge_share"] == pytest.approx((centred ** 2).sum() / (change ** 2).sum())


def test_tutorial_02_feature_maps_show_their_input_and_a_colour_bar(tmp_path, monkeypatch):
    g = run_in_process("02_unet_on_shapes.py", monkeypatch, "--quick", "--out", str(tmp_path))
    fig = g["feature_maps_fig"]
    inputs = [ax for ax in fig.axes if ax.get_title() == "input"]
    assert len(inputs) == 1, "the feature-map figure must show the input image"
    shown = np.asarray(inputs[0].get_images()[0].get_array())
    np.testing.assert_allclose(shown, np.clip(g["xv"][0], 0, 1), atol=1e-6)   # the very image the maps are of
    bars = colorbars(fig)
    assert len(bars) == 1, "one colour bar for all the maps"
    maps = [ax for ax in fig.axes if ax.get_title().startswith("map ")]
    assert len(maps) == g["h"].shape[-1] == 16
    limits = {ax.get_images()[0].get_clim() for ax in maps}
    assert len(limits) == 1, "every map on the same colour scale"
    for name in ("feature_maps.png", "predictions.png", "curves.png", "confusion_matrix.png"):
        assert_png(tmp_path / name, 300, 300)


def test_tutorial_03_legend_covers_no_bar_and_every_bar_shows_its_value(tmp_path, monkeypatch, capsys):
    g = run_in_process("03_why_pixel_accuracy_misleads.py", monkeypatch, "--quick", "--out", str(tmp_path))
    # the lesson's numbers: the all-background predictor is mostly "right" and finds nothing
    line = next(text for text in capsys.readouterr().out.splitlines() if text.startswith("all background"))
    accuracy, mean_iou = (float(v) for v in line.split()[2:4])
    assert accuracy > 0.7 and mean_iou < 0.3
    fig = g["scores_fig"]
    canvas = FigureCanvasAgg(fig)                           # lay the figure out as savefig does
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    bars = [bar for container in ax.containers for bar in container]
    assert len(bars) == 9                                     # 3 predictors x 3 scores
    legend = ax.get_legend().get_window_extent(renderer)
    labels = [t for t in ax.texts]
    for bar in bars:
        box = bar.get_window_extent(renderer)
        assert not legend.overlaps(box), f"the legend covers the bar of height {bar.get_height():.3f}"
        # its value, written just above its top
        def over_this_bar(t, box=box):
            text = t.get_window_extent(renderer)
            return abs((text.x0 + text.x1) - (box.x0 + box.x1)) / 2 < 2 and text.y0 >= box.y1 - 1
        above = [t for t in labels if over_this_bar(t)]
        assert len(above) == 1, f"bar of height {bar.get_height():.3f} has {len(above)} value labels"
        assert float(above[0].get_text()) == pytest.approx(bar.get_height(), abs=0.005)
        assert above[0].get_window_extent(renderer).y1 <= ax.get_window_extent(renderer).y1, "label cut off"
    for t in labels:
        assert not legend.overlaps(t.get_window_extent(renderer)), f"the legend covers the value {t.get_text()}"
    for name in ("scores.png", "confusion_all_background.png", "blobby.png", "outcomes.png"):
        assert_png(tmp_path / name, 300, 300)


def test_tutorial_03_four_colour_map_counts_the_scores(tmp_path, monkeypatch):
    """The TP/FP/FN/TN map shows four colours, one per outcome, its legend counts each colour's pixels, and the
    five scores it prints are the ratios of those counts and agree with tinyseg.metrics."""
    from tinyseg import metrics
    g = run_in_process("03_why_pixel_accuracy_misleads.py", monkeypatch, "--quick", "--out", str(tmp_path))
    y, pred, c, codes = g["y"][g["n"]], g["shifted"][g["n"]], g["c"], g["codes"]
    np.testing.assert_array_equal(codes == 3, (y == c) & (pred == c))            # TP
    np.testing.assert_array_equal(codes == 1, (y != c) & (pred == c))            # FP
    np.testing.assert_array_equal(codes == 2, (y == c) & (pred != c))            # FN
    fig = g["outcome_fig"]
    panel = next(ax for ax in fig.axes if ax.get_title() == "TP / FP / FN / TN")
    shown = np.asarray(panel.get_images()[0].get_array())
    colours = {name: g["OUTCOME_COLOURS"][i] for i, name in enumerate(g["OUTCOMES"])}
    legend = {t.get_text().split()[0]: int(t.get_text().split()[1]) for t in panel.get_legend().get_texts()}
    assert set(legend) == {"TP", "FP", "FN", "TN"}
    for name, colour in colours.items():
        count = int(np.all(shown == colour, axis=-1).sum())
        assert count == legend[name] > 0, (name, count, legend)
    tp, fp, fn, tn = (legend[k] for k in ("TP", "FP", "FN", "TN"))
    s = g["outcome_scores"]
    assert s["accuracy"] == pytest.approx((tp + tn) / (tp + fp + fn + tn))
    assert s["recall"] == pytest.approx(tp / (tp + fn)) and s["precision"] == pytest.approx(tp / (tp + fp))
    assert s["IoU"] == pytest.approx(tp / (tp + fp + fn)) and s["Dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    cm = metrics.confusion_matrix(y[None], pred[None], len(g["SEGMENTATION_CLASS_NAMES"]))
    assert s["recall"] == pytest.approx(metrics.recall(cm)[c]) and s["IoU"] == pytest.approx(metrics.iou(cm)[c])
    assert s["accuracy"] > s["IoU"]                         # the lesson: TN lifts accuracy and nothing else
    image = np.asarray(Image.open(tmp_path / "outcomes.png").convert("RGB"))
    for colour in colours.values():                          # all four colours reach the PNG
        assert np.all(image == colour, axis=-1).sum() > 20, colour
