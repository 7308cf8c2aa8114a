"""The Numba kernels (tinyseg/kernels/) against their NumPy twins and the definitions."""
