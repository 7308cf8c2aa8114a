"""The one pool of threads behind the banded convolution (tinyseg/kernels/bands.py).

What must hold, whatever the number of threads: every band runs exactly once; the convolution's output and
gradients are those of one thread; scratch buffers reused between calls never mix up two calls (a layer
shared in a graph, two Python threads calling tinyseg at once).
"""
import threading

import numpy as np
import pytest

import tinyseg as keras
from tinyseg.kernels import bands as kb
from tinyseg.kernels import convolution, get_num_threads, set_num_threads
from tinyseg.layers import Conv2D, Conv2DTranspose


@pytest.fixture
def threads():
    """Yield a setter for tinyseg's thread count; put the previous count back afterwards."""
    previous = get_num_threads()
    try:
        yield set_num_threads
    finally:
        set_num_threads(previous)


@pytest.mark.parametrize("count, n", [(1, 2), (2, 2), (7, 2), (30, 2), (5, 1)])
def test_every_band_runs_once_on_a_slot_of_its_own_thread(count, n):
    seen, slots_by_thread = [], {}
    lock = threading.Lock()

    def task(k, slot):
        with lock:
            seen.append(k)
            slots_by_thread.setdefault(threading.get_ident(), set()).add(slot)
    kb.run_bands(task, count, threads=n)
    assert sorted(seen) == list(range(count))
    used = set().union(*slots_by_thread.values())
    assert used <= set(range(min(n, count)))
    for slots in slots_by_thread.values():          # a slot belongs to one thread only
        assert len(slots) == 1


def test_an_error_in_a_band_reaches_the_caller():
    def task(k, slot):
        if k == 3:
            raise ArithmeticError("band 3")
    with pytest.raises(ArithmeticError, match="band 3"):
        kb.run_bands(task, 6, threads=2)


def test_a_band_that_runs_bands_itself_runs_them_alone_without_waiting_for_the_pool():
    """The pool runs one call at a time; a call made while it is busy (here from inside a band) runs on its
    caller's thread instead of waiting for a pool that waits for it."""
    done = []

    def inner(k, slot):
        done.append(("inner", k, slot))

    def outer(k, slot):
        kb.run_bands(inner, 3, threads=2)
        done.append(("outer", k))
    kb.run_bands(outer, 2, threads=2)
    assert sorted(d for d in done if d[0] == "outer") == [("outer", 0), ("outer", 1)]
    assert sorted(d for d in done if d[0] == "inner") == [("inner", k, 0) for k in range(3) for _ in range(2)]


def test_a_helper_whose_wait_was_interrupted_finishes_that_job_before_the_next():
    """Ctrl-C in the caller's wait leaves the helper's job running: the next call must not take that job's
    end for its own."""
    import time
    helper, order = kb._Helper(99), []
    helper.run(lambda: (time.sleep(0.2), order.append("first")))     # and no wait(): as if interrupted
    helper.run(lambda: order.append("second"))
    helper.wait()
    assert order == ["first", "second"]


def test_nested_blas_holds_ask_threadpoolctl_once_and_let_go_when_the_outermost_closes(monkeypatch):
    from tests.kernels.test_thread_setting import numpy_blas_threads
    previous = get_num_threads()
    set_num_threads(2)
    asked = []
    controller = kb.blas_controller()
    monkeypatch.setattr(kb, "blas_controller", lambda: asked.append(1) or controller)
    try:
        with kb.one_blas_thread():
            with kb.one_blas_thread():
                assert numpy_blas_threads() == {1}
            assert numpy_blas_threads() == {1}      # the inner one closing does not let go
        assert numpy_blas_threads() == {2}
        assert asked == [1]                         # only the outermost asked
    finally:
        set_num_threads(previous)


@pytest.mark.parametrize("cls, strides", [(Conv2D, 1), (Conv2D, 2), (Conv2DTranspose, 2), (Conv2DTranspose, 1)])
def test_two_threads_give_the_numbers_of_one(threads, cls, strides):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 12, 10, 5)).astype(np.float32)
    layer = cls(6, 3, strides=strides, padding="same")
    results = []
    old = convolution.BAND_BYTES
    convolution.BAND_BYTES = 2000                  # many small bands, so both threads get several
    try:
        for n in (1, 2):
            threads(n)
            y = layer.forward(x, training=True)
            g = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
            dx = layer.backward(g)
            results.append((y, dx, layer.grads["kernel"].copy(), layer.grads["bias"].copy()))
    finally:
        convolution.BAND_BYTES = old
    for one, two in zip(*results):
        np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-5)


def test_bias_gradient_from_the_kernel_gradient_pass_is_the_channel_sum(threads):
    threads(2)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 9, 9, 3))
    g = rng.standard_normal((2, 9, 9, 4))
    dk, db = convolution.conv2d_kernel_grad(x, g, (3, 3), (1, 1), (1, 1, 1, 1), bias=True)
    np.testing.assert_allclose(db, g.sum(axis=(0, 1, 2)), rtol=1e-12)
    dk_alone, none = convolution.conv2d_kernel_grad(x, g, (3, 3), (1, 1), (1, 1, 1, 1))
    assert none is None
    np.testing.assert_array_equal(dk, dk_alone)


def test_a_shared_convolution_keeps_each_calls_input_for_its_backward(threads):
    """One Conv2D called twice in a graph (its second forward runs before the first call's backward) gets the
    gradients of two separate layers with the same weights: nothing its first backward needs was overwritten
    by the second forward's buffers."""
    threads(2)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 16, 16, 4)).astype(np.float32)

    def model(shared):
        inp = keras.Input((16, 16, 4))
        first = Conv2D(4, 3, padding="same", name="c1")
        second = first if shared else Conv2D(4, 3, padding="same", name="c2")
        h = first(inp)
        out = second(keras.layers.Activation("tanh")(h))
        return keras.Model(inp, out), first, second

    m_shared, c, _ = model(True)
    m_twin, c1, c2 = model(False)
    c1.set_weights(c.get_weights())
    c2.set_weights(c.get_weights())
    g = rng.standard_normal((2, 16, 16, 4)).astype(np.float32)
    for m in (m_shared, m_twin):
        m.call(x, training=True)
        m.backward(g)
    np.testing.assert_allclose(c.grads["kernel"], c1.grads["kernel"] + c2.grads["kernel"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(c.grads["bias"], c1.grads["bias"] + c2.grads["bias"], rtol=1e-4, atol=1e-4)


def test_two_python_threads_calling_at_once_each_get_their_own_result(threads):
    """Scratch buffers belong to the calling thread: two threads running convolutions at the same time (a data
    loader predicting while the main thread trains, say) never read each other's im2col."""
    threads(2)
    rng = np.random.default_rng(4)
    layers = [Conv2D(8, 3, padding="same") for _ in range(2)]
    xs = [rng.standard_normal((2, 32, 32, 3 + i)).astype(np.float32) for i in range(2)]
    expected = [layer.forward(x) for layer, x in zip(layers, xs)]
    got, errors = [None, None], []

    def work(i):
        try:
            for _ in range(20):
                y = layers[i].forward(xs[i])
                if not np.array_equal(y, expected[i]):
                    got[i] = y
                    return
        except Exception as err:                  # pragma: no cover - reported below
            errors.append(err)
    workers = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors and got == [None, None]


def _results(value):
    """A kernel's result as a flat list of arrays (some kernels return a tuple)."""
    if isinstance(value, tuple):
        return [np.asarray(v) for v in value]
    return [np.asarray(value)]


@pytest.mark.parametrize("n", [2, 3])
def test_every_row_kernel_gives_the_same_numbers_in_chunks(threads, n, monkeypatch):
    """Each row kernel run in many chunks (more than its rows, so some chunks are empty) equals one chunk."""
    from tinyseg.kernels.warmup import kernel_calls
    calls = kernel_calls()
    threads(1)
    alone = {name: _results(call()) for name, call in calls.items()}
    threads(n)
    monkeypatch.setattr(kb, "MIN_PARALLEL_VALUES", 0)
    for name, call in calls.items():
        for got, want in zip(_results(call()), alone[name]):
            np.testing.assert_array_equal(got, want, err_msg=name)


def test_piece_covers_the_rows_once_in_order():
    for m in (0, 1, 5, 17):
        for chunks in (1, 3, 8):
            rows = [r for k in range(chunks) for r in range(*kb.piece(m, k, chunks))]
            assert rows == list(range(m))
