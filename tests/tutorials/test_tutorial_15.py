"""Tutorial 15 (learnable upsampling) runs in its --quick mode; the numbers its prose relies on are printed and
right (<C x, y> = <x, C^T y> for every geometry, Conv2DTranspose's matrix is the transpose of Conv2D's, the
stamps add up to the layer's output, kernel 3 stride 2 overlaps unevenly and kernel 4 evenly, a random
kernel paints a checkerboard from a flat input and the bilinear one does not, the bilinear kernel equals
UpSampling2D away from the border, the parameter counts of the three decoders), and its five pictures are read
back: their size, and what they draw."""
import re

import numpy as np
from matplotlib.colors import to_rgb

from tests.tutorial_kit import holds_colour, read_png, run_in_process

SCRIPT = "15_learnable_upsampling.py"



def test_tutorial_15_numbers_and_pictures(tmp_path, monkeypatch, capsys):
    g = run_in_process(SCRIPT, monkeypatch, "--quick", "--out", str(tmp_path))
    out = capsys.readouterr().out

    # 1. the adjoint identity, both sides printed, for every geometry; Conv2D's backward is Conv2DTranspose
    identities = re.findall(r"^k=(\d) s=(\d) (\w+)\s+x .*: <Cx, y> = (\S+), <x, C\^T y> = (\S+), difference (\S+); "
                            r"Conv2D.backward\(y\) vs Conv2DTranspose\(y\): (\S+)$", out, re.MULTILINE)
    assert [(int(k), int(s), p) for k, s, p, *_ in identities] == [(k, s, p) for k, s, p, _ in g["GEOMETRIES"]]
    for *_, left, right, difference, backward_gap in identities:
        assert abs(float(left) - float(right)) < 1e-9 and float(difference) < 1e-12
        assert float(backward_gap) < 1e-12
    # the 1-D matrices: K in row i at columns 2i.., and Conv2DTranspose's matrix is exactly the transpose
    C, CT = g["C_matrix"], g["CT_matrix"]
    assert C.shape == (4, 9) and CT.shape == (9, 4)
    for i in range(4):
        np.testing.assert_array_equal(C[i, 2 * i:2 * i + 3], [1, 2, 3])
        assert C[i].sum() == 6
    np.testing.assert_array_equal(CT, C.T)
    assert "Conv2DTranspose's matrix vs the transpose of Conv2D's: largest difference 0.0e+00" in out
    # painting: the stamps sum to the layer's output, and the output is 5 x 5
    assert g["painted"].shape == (5, 5) and len(g["stamps"]) == 4
    np.testing.assert_allclose(sum(g["stamps"]), g["painted"], atol=1e-12)

    # 2. the checkerboard: overlap counts, and a flat input through the four upsamplers
    assert "kernel 3, stride 2: stamps covering an interior pixel [1, 2, 4]" in out
    assert "kernel 4, stride 2: stamps covering an interior pixel [4]" in out
    spreads = dict(re.findall(r"constant input through (.+?)\s*: phase spread of the output (\S+)", out))
    assert float(spreads["Conv2DTranspose k=3, random"]) > 0.5
    assert float(spreads["Conv2DTranspose k=4, random"]) > 0.5
    assert float(spreads["Conv2DTranspose k=4, bilinear"]) < 1e-12
    assert float(spreads["UpSampling2D + Conv2D k=3, random"]) < 1e-12
    medians = dict(re.findall(r"50 random k=(\d) kernels .*: median phase spread of a flat input's output (\S+)", out))
    assert set(medians) == {"3", "4"} and all(float(v) > 0.5 for v in medians.values())
    phase = g["phase_spread"]                     # the measure itself: 0 for flat, large for a checkerboard
    assert phase(np.ones((12, 12))) == 0
    assert phase(np.indices((12, 12)).sum(axis=0) % 2 + 1.0) > 0.5

    # 3. bilinear initialisation equals UpSampling2D(bilinear) inside, not on the border
    bilinear = re.findall(r"stride (\d), kernel (\d): Conv2DTranspose\(bilinear\) vs UpSampling2D\(bilinear\): "
                          r"largest difference (\S+) away from the border \(\d pixel\(s\)\), (\S+) on it", out)
    assert [(int(s), int(k)) for s, k, *_ in bilinear] == [(2, 4), (4, 8)]
    assert all(float(inside) < 1e-12 and float(border) > 0.1 for *_, inside, border in bilinear)
    np.testing.assert_allclose(g["tent"][:, 3], np.array([1, 3, 5, 7, 7, 5, 3, 1]) / 8 * 7 / 8)

    # 4. the three decoders: the table's rows, the parameter counts, and a conclusion from the numbers
    rows = {m.group(1): (int(m.group(2)), float(m.group(3)), float(m.group(4))) for m in re.finditer(
        r"^(\(\w\) .+?)\s+(\d+)\s+[\d., ]+?\s(\d\.\d{3})\s+\S+ -> \S+\s+(\S+)$", out, re.MULTILINE)}
    assert list(rows) == list(g["VARIANTS"]), rows
    params = [p for p, *_ in rows.values()]
    assert params[0] == params[1] == g["models"]["(a) Conv2DTranspose, random init"].count_params()
    # a 4 x 4 transposed kernel against a 3 x 3 convolution, at 32 and 16 channels: 7 C^2 weights apart
    assert params[0] - params[2] == 7 * (32 ** 2 + 16 ** 2)
    for name, (_, miou, features) in rows.items():
        assert abs(miou - np.mean(g["results"][name]["miou"])) < 1e-3
        assert abs(features - np.mean(g["results"][name]["spread_features"])) < 1e-3
    assert "one seed only (--quick)" in out and "no difference is judged" in out
    for where, key in (("predicted probabilities", "spread_after"), ("upsampled features", "spread_features")):
        strongest = re.search(rf"after training the strongest checkerboard in the {where} is (\(\w\) .+?)'s", out)
        assert strongest.group(1) == max(g["results"], key=lambda n: np.mean(g["results"][n][key])), where
    # (a) starts with a checkerboard and (b), (c) do not; after the short --quick training (a)'s features
    # still show it, far more than the bilinear start's
    spread = {name: r for name, r in g["results"].items()}
    a, b, c = (spread[name] for name in g["VARIANTS"])
    assert a["spread_before"][0] > 5 * max(b["spread_before"][0], c["spread_before"][0])
    assert a["spread_features"][0] > 5 * b["spread_features"][0]
    # the features' phase spread is the mean over channels of the last learned upsampling's output
    name = "(a) Conv2DTranspose, random init"
    features = g["upsampled_features"](g["models"][name], g["x_val"])
    assert features.shape == (len(g["x_val"]), 32, 32, 16)
    assert abs(g["channel_spreads"](features).mean() - g["results"][name]["spread_features"][0]) < 1e-9

    # the pictures: sizes, and what they draw
    read_png(tmp_path / "matrices.png", 800, 350)
    painting = read_png(tmp_path / "painting.png", 1200, 250)
    checkerboard = read_png(tmp_path / "checkerboard.png", 1200, 600)
    bilinear_png = read_png(tmp_path / "bilinear.png", 1200, 300)
    predictions = read_png(tmp_path / "predictions.png", 1400, 550)
    for colour in ("C0", "C1", "C2", "C3"):       # the four stamps, each in its colour (light: alpha 0.3)
        light = 0.7 * np.ones(3) + 0.3 * np.array(to_rgb(colour))
        assert holds_colour(painting, light, tol=0.03), colour
    count_images = [ax.get_images()[0].get_array() for ax in g["count_axes"]]
    np.testing.assert_array_equal(count_images[0], g["overlaps"][3])
    np.testing.assert_array_equal(count_images[1], g["overlaps"][4])
    profiles = g["profile_ax"].get_lines()
    assert len(profiles) == 4 and np.ptp(profiles[0].get_ydata()[2:-2]) > 0.5    # k=3 random: a sawtooth
    assert np.ptp(profiles[2].get_ydata()[2:-2]) < 1e-12                          # bilinear: flat
    assert checkerboard.std() > 0.1
    assert holds_colour(bilinear_png, "black", tol=0.05, at_least=2000)          # the difference: 0 inside
    for colour in ("C0", "C1", "C2"):              # the true masks' circle, square and triangle
        assert holds_colour(predictions, colour, tol=0.05), colour
    assert len(g["predictions_fig"].axes) == g["SHOWN"] * (2 + 2 * len(g["VARIANTS"]))
