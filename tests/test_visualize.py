"""tinyseg.visualize: the activation-and-gradient recorder (a Callback), the weight-initialisation lesson on
tinyseg's layers, and the pictures (read back from their PNG files)."""
import types

import numpy as np
import pytest
from PIL import Image

import tinyseg
from tinyseg import explain, gradcheck, layers, visualize
from tinyseg.losses import SparseCategoricalCrossentropy
from tinyseg.models import Sequential
from tinyseg.models.unet import UNet


def shapes_batch(n=4, size=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, size, size, 3)), rng.integers(0, 3, (n, size, size)).astype(np.uint8)


def small_unet(seed=0):
    tinyseg.set_random_seed(seed)
    model = UNet((8, 8, 3), num_classes=3, depth=1, base_filters=4)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def panel_is_drawn(path, n_panels, k, left=0.02, right=0.98):
    """The middle of panel k of a one-row figure (plot_explanation's layout) holds more than one colour."""
    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255
    h, w, _ = a.shape
    width = (right - left) / n_panels
    x0, x1 = int(w * (left + (k + 0.25) * width)), int(w * (left + (k + 0.75) * width))
    crop = a[int(0.3 * h):int(0.7 * h), x0:x1]
    return crop.std(axis=(0, 1)).max() > 0.02


# --- the numbers behind the histograms -------------------------------------------------------------------
def test_the_gradient_at_every_layer_equals_central_differences_of_the_loss(float64):
    model = small_unet()
    x, y = shapes_batch()
    stats = explain.activations_and_gradients(model, x, y)
    assert list(stats) == [layer.name for layer in explain.probe_layers(model)]
    assert len(stats) == 6                                  # the ReLUs of 3 blocks of a depth-1 U-Net
    loss = SparseCategoricalCrossentropy()
    for name in list(stats)[::2]:
        da = stats[name][1]
        body, head, _ = explain.split_at(model._graph, explain.layer_tensor(model, name))
        values = body.forward([x])

        def forward(inp, head=head, values=values):
            return np.array([loss.forward(y, head.forward([inp] + values[1:], logits=True)[0])])

        report = gradcheck.check_layer(types.SimpleNamespace(name=name, params={}), values[0].copy(),
                                       forward=forward, backward=lambda g, da=da: da * g[0], max_entries=200)
        assert report.ok and report.max_rel_error < 1e-6, str(report)


def test_probing_changes_nothing_the_model_keeps(float64):
    model = small_unet()
    x, y = shapes_batch()
    model.train_on_batch(x, y)
    before = {layer.name: {k: g.copy() for k, g in layer.grads.items()} for layer in model.layers}
    weights = model.get_weights()
    explain.activations_and_gradients(model, x, y)
    for layer in model.layers:
        for k, g in layer.grads.items():
            assert np.array_equal(g, before[layer.name][k])
    for w, w0 in zip(model.get_weights(), weights):
        assert np.array_equal(w, w0)


def test_the_recorder_does_not_change_training(float64):
    x, y = shapes_batch(12)
    runs = []
    for with_recorder in (False, True):
        model = small_unet(seed=3)
        recorder = visualize.ActivationHistograms(x[:4], y[:4], every=2)
        model.fit(x, y, epochs=2, batch_size=4, verbose=0, seed=1, callbacks=[recorder] if with_recorder else [])
        runs.append((model.get_weights(), recorder))
    for w, w0 in zip(runs[0][0], runs[1][0]):
        assert np.array_equal(w, w0)
    records = runs[1][1].records
    assert [r["step"] for r in records] == [0, 2, 4, 6]              # before the first step, then every 2
    assert [r["epoch"] for r in records] == [0, 0, 1, 1]
    first = records[0]["layers"]
    assert len(first) == 6
    for summary in first.values():
        a = summary["activations"]
        assert 0 <= a["zeros"] < 1 and a["std"] > 0 and a["counts"].sum() > 0


def test_recording_at_epoch_ends_with_chosen_layers(float64):
    x, y = shapes_batch(8)
    model = small_unet()
    recorder = visualize.ActivationHistograms(x[:2], y[:2], layers=[model.bottleneck[-1],
                                                                     model.encoders[0][-1].name])
    model.fit(x, y, epochs=3, batch_size=4, verbose=0, callbacks=[recorder])
    assert [r["step"] for r in recorder.records] == [0, 2, 4, 6]
    assert list(recorder.records[0]["layers"]) == [model.bottleneck[-1].name, model.encoders[0][-1].name]


def test_describe():
    values = np.array([0.0, 0.0, 1.0, 2.0, -1.0, 3.0, 0.0, 0.5])
    s = visualize.describe(values, bins=4, tails=0)
    assert s["zeros"] == pytest.approx(3 / 8) and s["n"] == 8
    assert s["counts"].sum() == 5 and len(s["edges"]) == 5
    outlier = visualize.describe(np.r_[np.linspace(1, 2, 999), 1e6], bins=10)     # one far value
    assert outlier["edges"][-1] < 3 and outlier["counts"].sum() >= 989
    assert s["std"] == pytest.approx(values.std()) and s["mean"] == pytest.approx(values.mean())
    assert visualize.describe(np.zeros(10))["counts"].sum() == 0


# --- the weight-initialisation lesson, on tinyseg's layers ----------------------------------------------------
def plain_stack(scale, initializer="glorot_uniform", depth=6):
    tinyseg.set_random_seed(0)
    stack = Sequential([tinyseg.Input((16, 16, 3))])
    for _ in range(depth):
        stack.add(layers.Conv2D(16, 3, padding="same", activation="relu", kernel_initializer=initializer))
    stack.add(layers.Conv2D(3, 1, activation="softmax"))
    for layer in stack.layers:
        layer.params["kernel"] *= scale
    stack.compile(loss="sparse_categorical_crossentropy")
    return stack


@pytest.mark.parametrize("scale, initializer, lo, hi", [
    (0.01, "glorot_uniform", 0, 1e-8),         # a factor of about 0.007 per layer: collapse
    (10.0, "glorot_uniform", 1e3, np.inf),      # about 7 per layer: explosion
    (1.0, "he_normal", 0.3, 3.0),               # about 1 per layer: the scale holds
])
def test_a_bad_initial_scale_collapses_or_explodes_the_activations(scale, initializer, lo, hi):
    x, y = shapes_batch(4, 16)
    stats = list(explain.activations_and_gradients(plain_stack(scale, initializer), x.astype(np.float32), y)
                 .values())
    assert len(stats) == 6
    growth = np.std(stats[-1][0]) / np.std(stats[0][0])                   # layer 6 over layer 1
    assert lo <= growth <= hi
    backward_growth = np.std(stats[0][1]) / np.std(stats[-1][1])         # the gradients, layer 1 over layer 6
    assert lo <= backward_growth <= hi


# --- pictures ----------------------------------------------------------------------------------------------
def test_plot_explanation_draws_every_panel(tmp_path, float64):
    model = small_unet()
    x, _ = shapes_batch(1)
    region = np.zeros((8, 8), bool)
    region[2:6, 2:6] = True
    g = explain.gradients(model, x, 1, region=region)
    cam = explain.grad_cam(model, x, model.bottleneck[-1], 1, region=region)
    path = visualize.plot_explanation(x[0], tmp_path / "explain.png", region=region,
                                      saliency=np.abs(g.input[0]).max(axis=-1), gradient=g.input[0],
                                      cams={"bottleneck": cam[0]}, title="test")
    width, height = Image.open(path).size
    assert width > 600 and height > 200
    for k in range(4):
        assert panel_is_drawn(path, 4, k), f"panel {k} is blank"


def test_saliency_colour_limits_are_a_percentile_so_one_outlier_washes_nothing_out():
    rng = np.random.default_rng(0)
    sal = rng.random((20, 20))                               # 400 values in [0, 1) ...
    sal[3, 4] = 100.0                                        # ... and one pixel a hundred times larger
    signed = rng.standard_normal((20, 20, 3))
    signed[5, 5, 0] = -500.0
    fig = visualize.explanation_figure(rng.random((20, 20, 3)), saliency=sal, gradient=signed)
    (s_clim,), (g_clim,) = ([ax.get_images()[0].get_clim() for ax in fig.axes if ax.get_title().startswith(t)]
                            for t in ("saliency", "dS/dx"))
    assert s_clim == (0, pytest.approx(np.percentile(sal, 99)))
    assert s_clim[1] < 1.0                                   # the outlier is not the top of the scale
    top = np.percentile(np.abs(signed.sum(axis=-1)), 99)
    assert g_clim == (pytest.approx(-top), pytest.approx(top)) and top < 10
    # the colour bars say that brighter pixels were clipped
    assert [cb._colorbar.extend for cb in fig.axes if getattr(cb, "_colorbar", None)] == ["max", "both"]
    # percentile=100 is the plain maximum; a map of zeros still gets a scale
    fig = visualize.explanation_figure(rng.random((20, 20, 3)), saliency=sal, percentile=100)
    assert fig.axes[2].get_images()[0].get_clim() == (0, 100.0)
    assert visualize.robust_limit(np.zeros((4, 4))) > 0
    assert visualize.robust_limit(np.r_[np.zeros(999), 5.0]) == 5.0     # 0 almost everywhere: the maximum
    with pytest.raises(ValueError, match="percentile: expected a number in"):
        visualize.robust_limit(sal, 0)


def test_filter_channels_figure_draws_each_channel_on_one_signed_scale():
    kernel = np.random.default_rng(0).standard_normal((3, 3, 2, 5))
    kernel[0, 0, 1, 4] = -7.0
    fig = visualize.filter_channels_figure(kernel, ncols=4, channel_names=("a", "b"))
    maps = [ax for ax in fig.axes if ax.get_images() and getattr(ax, "_colorbar", None) is None]
    assert len(maps) == 5 * 2
    assert {ax.get_images()[0].get_clim() for ax in maps} == {(-7.0, 7.0)}
    np.testing.assert_array_equal(maps[9].get_images()[0].get_array(), kernel[:, :, 1, 4])   # filter 4, channel b
    assert [ax.get_title() for ax in maps[:2]] == ["0:a", "b"]
    with pytest.raises(ValueError, match=r"\(KH, KW, C, F\)"):
        visualize.filter_channels_figure(kernel[..., 0])


def test_plot_feature_maps_and_filters(tmp_path, float64):
    model = small_unet()
    x, _ = shapes_batch(1)
    maps = explain.layer_output(model, x, model.encoders[0][-1])[0]
    path = visualize.plot_feature_maps(x[0], maps, tmp_path / "maps.png")
    assert Image.open(path).size[0] > 500
    kernel = model.encoders[0][0].params["kernel"]
    path = visualize.plot_filters(kernel, tmp_path / "filters.png")
    assert Image.open(path).size[0] > 300
    with pytest.raises(ValueError, match=r"\(h, w, F\) for one image"):
        visualize.plot_feature_maps(x[0], maps[None], tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"\(KH, KW, C, F\)"):
        visualize.plot_filters(kernel[..., 0], tmp_path / "bad.png")


def test_filters_share_one_scale():
    kernel = np.zeros((3, 3, 3, 2))
    kernel[0, 0, 0, 0], kernel[1, 1, 2, 1] = 0.4, -0.1
    patches, s = visualize.filters_to_rgb(kernel)
    assert s == pytest.approx(0.4) and patches.shape == (2, 3, 3, 3)
    assert patches[0, 0, 0, 0] == pytest.approx(1.0) and patches[1, 1, 1, 2] == pytest.approx(0.375)
    assert patches[0, 2, 2, 1] == pytest.approx(0.5)                      # a weight of 0 is grey
    grey, _ = visualize.filters_to_rgb(np.ones((2, 2, 1, 4)))
    assert grey.shape == (4, 2, 2, 3) and np.allclose(grey, 1.0)


def test_histogram_pictures(tmp_path, float64):
    x, y = shapes_batch(8)
    model = small_unet()
    recorder = visualize.ActivationHistograms(x[:2], y[:2], every=1)
    model.fit(x, y, epochs=1, batch_size=4, verbose=0, callbacks=[recorder])
    path = visualize.plot_activation_histograms(recorder, tmp_path / "hist.png")
    assert Image.open(path).size[1] > 800
    x16, y16 = shapes_batch(2, 16)
    runs = {f"x{s:g}": explain.activations_and_gradients(plain_stack(s, depth=3), x16.astype(np.float32), y16)
            for s in (0.1, 1.0)}
    path = visualize.plot_layer_statistics(runs, tmp_path / "init.png")
    assert Image.open(path).size[0] > 800
    with pytest.raises(ValueError, match="nothing was recorded"):
        visualize.plot_activation_histograms(visualize.ActivationHistograms(x, y), tmp_path / "none.png")
    with pytest.raises(ValueError, match="every"):
        visualize.ActivationHistograms(x, y, every=0)
