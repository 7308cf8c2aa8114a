"""benchmarks/architectures.py runs end to end in its --quick mode (the shapes, and a tiny CamVid layout the
test writes) and reports every network of the registry. No quality is asserted for three steps: what is
checked is the bookkeeping, that the same-time steps are the budget divided by each network's measured step
time, that the U-Net's same-time run is its same-steps run when the budget is its own, and that the figure
shows input, truth and one column per network."""
import json

import pytest
from matplotlib.image import imread

from benchmarks.architectures import main
from tests.helpers import write_camvid
from tinyseg.model_choice import architectures


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("arch")
    assert main(["--quick", "--threads", "1", "--out", str(out)]) == 0
    return out, json.loads((out / "architectures.json").read_text())


def test_every_network_is_in_the_table(quick):
    out, doc = quick
    nets = set(architectures())
    assert set(doc["same_steps"]) == set(doc["same_time"]) == set(doc["ms_per_step"]) == nets
    table = (out / "architectures.md").read_text()
    assert table.count("\n| ") == len(nets) + 1                # the header and a row per network
    assert "interleaved in one process" in table and "Command: `python -m benchmarks.architectures" in table
    for run in doc["same_steps"].values():
        assert run["steps"] == 3 and 0 <= run["mean_iou"] <= 1


def test_the_same_time_budget_becomes_steps(quick):
    _, doc = quick
    budget = doc["budget_seconds"]
    assert budget == pytest.approx(3 * doc["ms_per_step"]["unet"] / 1e3)
    for name, ms in doc["ms_per_step"].items():
        assert doc["same_time"][name]["steps"] == max(1, round(budget * 1e3 / ms)), name
    assert doc["same_time"]["unet"] == doc["same_steps"]["unet"]


def test_the_figure_has_a_column_per_network(quick):
    out, doc = quick
    picture = imread(out / "architectures.png")
    columns = 2 + len(doc["same_time"])
    assert picture.shape[1] > picture.shape[0] * columns / 3       # wide: one column per network
    assert picture[..., :3].std() > 0.05                            # not blank


def test_quick_on_a_tiny_camvid_reports_the_small_classes(tmp_path):
    root = write_camvid(tmp_path / "CamVid", n=4, size=(24, 32))
    out = tmp_path / "out"
    assert main(["--quick", "--data", str(root), "--threads", "1", "--out", str(out)]) == 0
    table = (out / "architectures.md").read_text()
    assert all(f"{c} IoU" in table for c in ("Pole", "SignSymbol", "Pedestrian", "Bicyclist"))
    assert "void label 11 left out" in table


def test_unet_depths_quick(tmp_path):
    from benchmarks.unet_depth import main as depths_main
    assert depths_main(["--quick", "--depths", "1", "2", "--threads", "1", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "unet_depth.json").read_text())
    assert doc["rule"] == 2 and set(doc["runs"]) == {"1", "2"}                  # 32 x 32 shapes: depth 2
    assert [doc["runs"][d]["receptive_field"] for d in ("1", "2")] == [18, 44]
    assert "--depths 1 2" in (tmp_path / "unet_depth.md").read_text()
