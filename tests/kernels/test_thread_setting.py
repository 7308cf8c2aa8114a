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
