"""Fixtures shared by several test files (the functions they share are in tests/helpers.py)."""
import pytest

from tests.helpers import use_backend


@pytest.fixture
def one_torch_thread():
    """Run PyTorch on one thread: on a busy two-core machine its OpenMP threads wait on each other (a parity
    test then takes many times longer). Files that compare with PyTorch use it for every test."""
    torch = pytest.importorskip("torch")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def float64():
    """Layers made inside the test compute in float64 (for gradient checks and parity to 1e-10)."""
    import tinyseg
    old = tinyseg.floatx()
    tinyseg.set_floatx("float64")
    yield
    tinyseg.set_floatx(old)


@pytest.fixture
def backend():
    """A setter for the kernels' backend ('numba' or 'numpy'); whatever happens, the previous backend is put
    back after the test. Hypothesis tests use helpers.use_backend instead (a fixture is shared by all examples)."""
    from tinyseg.kernels import config
    with use_backend(config.get_backend()):
        yield config.set_backend
