"""Model files written before the functional API (format version 1, by commit 1e7d4df) still load and predict
the same numbers: a Sequential (conv, batch norm, pooling, dropout, dense) and a depth-1 bilinear UNet."""
import numpy as np
import pytest

from tests.helpers import REPO
from tinyseg.saving import load_model

DATA = REPO / "tests" / "models" / "saved_v1"


@pytest.mark.parametrize("kind", ["sequential", "unet"])
def test_version_1_file_loads_and_predicts_as_when_saved(kind):
    model = load_model(DATA / f"{kind}_v1.npz")
    expected = np.load(DATA / "v1_expected.npz")
    np.testing.assert_array_equal(model.predict(expected[f"x_{kind}"]), expected[f"y_{kind}"])
