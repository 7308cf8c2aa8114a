"""The only home of Numba: small loop kernels, each beside the plain NumPy twin that defines it."""
from .config import compiled_before, get_backend, get_num_threads, set_backend, set_num_threads

__all__ = ["compiled_before", "get_backend", "get_num_threads", "set_backend", "set_num_threads"]
