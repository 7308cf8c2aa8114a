"""Benchmarks: how fast tinyseg is next to PyTorch, and next to its own NumPy twins.

Run ``python -m benchmarks`` (or ``python benchmarks/run.py``); ``--quick`` for a short run, ``--help`` for
the options. Results go to benchmark-results/: results.md (a table), results.json and ratios.png.

    run.py            command line; starts one worker process per thread count and writes the reports
    timing.py         median-after-warm-up timing; the variants take turns in blocks
    cases.py          the timed cases (tinyseg, its NumPy twin, PyTorch NCHW and channels_last)
    torch_models.py   the PyTorch twins of the seed CNN and the U-Net
    process_cases.py  cases that need a fresh process: start-up time, first compile, peak memory
    report.py         results.md, results.json, ratios.png
    profile_layers.py where a training step spends its time, per layer type, forward and backward

Importing this package imports nothing heavy.
"""
