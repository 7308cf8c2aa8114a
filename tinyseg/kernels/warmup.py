"""Compile every kernel ahead of its first use, on all of the machine's cores: the first run of an install.

Numba compiles a kernel the first time it is called and keeps the machine code in its on-disk cache, so
only the first run of a fresh install pays (later runs load each kernel in a few hundredths of a second).
That first run is some twenty kernels at a fraction of a second to a second each, one after the other:
Numba's compiler works on one function at a time and holds the GIL while it does, so threads cannot share
the work. Processes can. `compile_all` starts a helper process per extra core; each compiles its share of
the kernels into the cache, and this process compiles the rest, then loads the helpers' kernels from the
cache. The numbers are the same as compiling lazily; only the wall-clock time of the first run changes.

If a helper cannot run or the cache cannot be written, nothing is lost but time: this process then
compiles what is missing itself, as it would have on first use.

`kernel_calls()` is the list: one call of every public kernel function on a tiny float32 array, which
between them reach every Numba function in tinyseg.kernels (tests check it).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

from .config import get_backend, get_num_threads

# Run in each helper process: compile the kernels nobody has claimed yet.
_HELPER = "import sys; from tinyseg.kernels.warmup import compile_unclaimed; compile_unclaimed(sys.argv[1])"
HELPER_TIMEOUT = 120        # seconds (one kernel takes a few): a helper still at work is stopped, and this
                            # process compiles what it had not finished


def kernel_calls():
    """One call of every public kernel function on a tiny float32 array: name -> callable."""
    from . import depthwise as kd
    from . import elementwise as ke
    from . import im2col as ki
    from . import normalization as kn
    from . import pooling as kp
    from . import softmax as ks
    from . import upsampling as ku
    from . import winograd as kw

    x = np.random.default_rng(0).standard_normal((1, 4, 4, 2), dtype=np.float32)
    z = np.zeros((1, 2, 2, 2), np.float32)
    arg = np.zeros((1, 2, 2, 2), np.int32)
    nopad = (0, 0, 0, 0)
    cols = np.ones((16, 18), np.float32)
    big = np.ones((1, 8, 8, 2), np.float32)
    rows = x.reshape(-1, 2)
    per_channel = np.ones(2, np.float32)
    dk = np.ones((3, 3, 2, 1), np.float32)
    u = np.ones((6, 6, 2, 2), np.float32)
    return {
        # the slowest first (two tile kernels in one call): the processes of compile_all take the calls in
        # this order, so a long one drawn last would keep the others waiting
        "winograd_conv2d": lambda: kw.conv2d(x, u, (1, 1, 1, 1), (4, 4)),
        "winograd_kernel_grad": lambda: kw.kernel_grad(x, x, (1, 1, 1, 1)),
        "im2col": lambda: ki.im2col(x, 3, 3, 1, 1, (1, 1, 1, 1), (4, 4)),
        "im2row": lambda: ki.im2row(x, 3, 1, 1, 4, -1, 6),
        "col2im": lambda: ki.col2im(cols, (1, 4, 4, 2), 3, 3, 1, 1, (1, 1, 1, 1), (4, 4)),
        "max_pool2d": lambda: kp.max_pool2d(x, (2, 2), (2, 2), nopad, (2, 2)),
        "max_pool2d_backward": lambda: kp.max_pool2d_backward(z, arg, x.shape, (2, 2), (2, 2), nopad),
        "max_pool2d_backward_overlapping": lambda: kp.max_pool2d_backward(np.zeros((1, 3, 3, 2), np.float32),
                                                                          np.zeros((1, 3, 3, 2), np.int32),
                                                                          x.shape, (2, 2), (1, 1), nopad),
        "avg_pool2d": lambda: kp.avg_pool2d(x, (2, 2), (2, 2), nopad, (2, 2)),
        "avg_pool2d_backward": lambda: kp.avg_pool2d_backward(z, x.shape, (2, 2), (2, 2), nopad),
        "upsample_nearest": lambda: ku.upsample_nearest(x, (2, 2)),
        "upsample_nearest_backward": lambda: ku.upsample_nearest_backward(big, (2, 2)),
        "upsample_bilinear": lambda: ku.upsample_bilinear(x, (2, 2)),
        "upsample_bilinear_backward": lambda: ku.upsample_bilinear_backward(big, (2, 2)),
        "relu": lambda: ke.relu(x),
        "relu_backward": lambda: ke.relu_backward(x, x),
        "add_bias": lambda: ke.add_bias(x.copy(), per_channel),
        "channel_mean_var": lambda: kn.channel_mean_var(rows),
        "channel_affine": lambda: kn.channel_affine(rows, per_channel, per_channel, per_channel),
        "channel_grad_sums": lambda: kn.channel_grad_sums(rows, rows, per_channel, per_channel),
        "batchnorm_input_grad": lambda: kn.batchnorm_input_grad(rows, rows, per_channel, per_channel,
                                                                per_channel, per_channel, per_channel),
        "softmax": lambda: ks.softmax(rows),
        "depthwise_conv2d": lambda: kd.depthwise_conv2d(x, dk, (1, 1), (1, 1, 1, 1), (4, 4)),
        "depthwise_conv2d_input_grad": lambda: kd.depthwise_conv2d_input_grad(x, dk, (1, 1), (1, 1, 1, 1),
                                                                              x.shape),
        "depthwise_conv2d_kernel_grad": lambda: kd.depthwise_conv2d_kernel_grad(x, x, (3, 3), (1, 1),
                                                                                (1, 1, 1, 1)),
    }


def compile_unclaimed(claims):
    """Compile each kernel of kernel_calls() that no other process has claimed, claiming it first.

    The processes share one folder, `claims`; a process claims a kernel by creating the file of its name
    there, which the system lets only one process do. So each takes the next kernel as soon as it is free,
    and one that drew slow kernels simply takes fewer.
    """
    for name, call in kernel_calls().items():
        try:
            os.close(os.open(os.path.join(claims, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        call()


def compile_all(processes=None):
    """Compile every kernel, sharing the work between `processes` processes (default: tinyseg's thread
    count); this one is the first of them. Returns the number of helper processes that finished.

    With the numpy backend there is nothing to compile.
    """
    if get_backend() != "numba":
        return 0
    processes = get_num_threads() if processes is None else int(processes)
    if processes < 1:
        raise ValueError(f"compile_all: processes must be a positive integer, got {processes}")
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
               TINYSEG_NUM_THREADS="1")
    with tempfile.TemporaryDirectory(prefix="tinyseg-compile-") as claims:
        helpers = []
        for _ in range(1, processes):
            try:
                helpers.append(subprocess.Popen([sys.executable, "-c", _HELPER, claims], env=env,
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            except OSError:
                break                   # no helper, no harm: its kernels are compiled here
        compile_unclaimed(claims)
        finished = 0
        for helper in helpers:
            try:
                finished += helper.wait(timeout=HELPER_TIMEOUT) == 0
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait()
    for call in kernel_calls().values():
        call()                          # the helpers' kernels, loaded from the cache (or compiled here)
    return finished
