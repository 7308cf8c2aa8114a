"""Fixtures shared by several test files."""
import pytest


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
