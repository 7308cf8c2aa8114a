"""The in-place Adam step (kernels/inplace.py) gives bit for bit the numbers of Adam's formulas as written in
optimizers/adam.py (the NumPy backend runs those lines), step after step, in float32 and float64."""
import numpy as np
import pytest

from tinyseg import backend, optimizers
from tinyseg.kernels import inplace


def run_adam(backend_name, dtype, steps=5, **kwargs):
    rng = np.random.default_rng(0)
    shapes = [(3, 3, 4, 8), (8,), (5, 7)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]
    opt = optimizers.Adam(learning_rate=0.01, **kwargs)
    previous = backend.get_backend()
    backend.set_backend(backend_name)
    try:
        for step in grads:
            opt.apply_gradients(list(zip(step, params)))
    finally:
        backend.set_backend(previous)
    return params, [opt._slots[key] for key in sorted(opt._slots)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kwargs", [{}, {"weight_decay": 0.01}, {"clipnorm": 0.5}])
def test_in_place_adam_is_bit_identical_to_the_formulas(dtype, kwargs):
    fast_params, fast_slots = run_adam("numba", dtype, **kwargs)
    plain_params, plain_slots = run_adam("numpy", dtype, **kwargs)
    for a, b in zip(fast_params + fast_slots, plain_params + plain_slots):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_work_arrays_grow_and_take_the_shape_asked_for():
    work = inplace.WorkArrays()
    a, b = work.get(np.zeros((2, 3), np.float32))
    assert a.shape == b.shape == (2, 3) and a.dtype == np.float32 and not np.shares_memory(a, b)
    a, b = work.get(np.zeros((4, 5), np.float32))
    assert a.shape == (4, 5)
    c, _ = work.get(np.zeros(3, np.float64))
    assert c.dtype == np.float64
