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
    # Same weights, same outputs; only float32 rounding may differ, since the convolution kernels now add
    # their products in another order than the build that wrote the file (probabilities: 1e-5 is far below
    # what one wrong weight would change).
    np.testing.assert_allclose(model.predict(expected[f"x_{kind}"]), expected[f"y_{kind}"], rtol=1e-5, atol=1e-5)
