"""Tutorial 6 runs in its quick mode, writes its pictures and measures why it scores below tutorial 2.
(Tutorials 1 to 3 run, their pictures read back, in test_tutorial_pictures.py; the others have their own test
files.)"""
import re

import numpy as np
import pytest

from tests.tutorial_kit import definitions, run


@pytest.mark.parametrize("script, pictures", [
    ("06_functional_api.py", ["model.png", "curves.png", "predictions.png"]),
])
def test_tutorial_runs_in_quick_mode(tmp_path, script, pictures):
    result = run(script, "--quick", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    for name in pictures:
        assert (tmp_path / name).stat().st_size > 1000, name
    if script == "06_functional_api.py":
        out = result.stdout
        # the stopping rule watches the mean IoU, and the script says which epoch's weights it kept
        assert re.search(r"epochs, the weights of epoch \d+ kept \(best val_mean_iou \S+\)", out), out[-2000:]
        assert "this network: smallest grid 2x2, joins Add" in out and "smallest grid 8x8, joins Concatenate" in out
        grid = dict(re.findall(r"(\d+)x\d+ (\d\.\d\d)", out.split("redrawn from a grid of cells: ")[1].splitlines()[0]))
        scores = [float(grid[c]) for c in ("16", "8", "4", "2")]
        assert scores == sorted(scores, reverse=True) and scores[0] > 0.8 > 0.4 > scores[-1], scores
        assert re.search(r"^the model's \S+ is (below|above) the \S+ of masks redrawn from its 2x2", out, re.MULTILINE)


def test_blocky_gives_each_block_its_most_common_class():
    blocky = definitions("06_functional_api.py")["blocky"]
    mask = np.zeros((1, 4, 4), int)
    mask[0, :2, :2] = [[1, 1], [1, 0]]                      # 3 of 4 pixels class 1: the block is 1
    mask[0, 2:, 2:] = [[2, 2], [0, 0]]                      # a tie: the lower class, 0
    out = blocky(mask, 2, 3)
    assert out.tolist() == [[[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]]
    np.testing.assert_array_equal(blocky(mask, 4, 3), mask)   # one pixel a block: unchanged
