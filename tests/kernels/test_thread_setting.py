"""tinyseg's thread count holds BLAS too: fewer threads than cores must not leave BLAS on every core."""
import os
import subprocess
import sys

from threadpoolctl import threadpool_info

from tests.helpers import REPO
from tinyseg.kernels import get_num_threads, set_num_threads


def blas_threads():
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


def test_set_num_threads_limits_blas_as_well():
    before = get_num_threads()
    try:
        set_num_threads(1)
        assert blas_threads() == {1}
        set_num_threads(2)
        assert blas_threads() == {2}
    finally:
        set_num_threads(before)


def test_the_environment_variable_limits_blas_from_import_on():
    code = ("import tinyseg, threadpoolctl; "
            "print(sorted({p['num_threads'] for p in threadpoolctl.threadpool_info() if p['user_api'] == 'blas'}))")
    env = {**os.environ, "TINYSEG_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[1]"


def numpy_blas_threads():
    """The thread count of the BLAS that NumPy's products run on (Numba may load SciPy's too, unused)."""
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas" and "numpy" in p["filepath"]}


def test_a_models_step_holds_blas_to_one_thread_and_then_lets_go():
    """tinyseg shares each step between its own threads; BLAS's spinning helpers would take their cores."""
    import numpy as np

    import tinyseg as keras
    seen = []
    model = keras.Sequential([keras.layers.Dense(3, input_shape=(4,))])
    model.compile("sgd", "mse")
    dense = model.layers[0]
    forward = dense.forward_linear                  # the layer's own math, which the graph runs

    def recording_forward(*args, **kwargs):
        seen.append(numpy_blas_threads())
        return forward(*args, **kwargs)
    dense.forward_linear = recording_forward
    x, y = np.ones((2, 4), np.float32), np.zeros((2, 3), np.float32)
    before = get_num_threads()
    try:
        set_num_threads(2)
        model.train_on_batch(x, y)
        model.test_on_batch(x, y)
        model.predict(x)
        model(x)
        assert seen == [{1}] * 4
        assert numpy_blas_threads() == {2}
    finally:
        set_num_threads(before)
