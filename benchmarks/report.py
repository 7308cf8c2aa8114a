"""Turn measurements into rows with ratios and verdicts, and write results.md, results.json and ratios.png.

A row is one case at one thread count. Its ratio is a ratio of times, lower is better:

    compare='torch'     tinyseg / the faster of PyTorch NCHW and PyTorch channels_last
    compare='numpy'     Numba kernel / its NumPy twin
    compare='absolute'  no ratio: the measured value (ms or MB) is held against the goal directly

results.json also has ratio_of_minima (the same ratio of the fastest single calls), which a busy machine
disturbs less than the medians; the verdict is always on the medians.

Verdict: 'met' or 'missed', with the margin in percent of the goal: a ratio of 0.72 against a goal of
<= 0.6 is "missed by 20%"; 0.45 against <= 0.6 is "met (25% under)".
"""
import json
import math

ROW_KEYS = ("case", "title", "threads", "compare", "tinyseg_ms", "numpy_ms", "torch_nchw_ms",
            "torch_channels_last_ms", "keras_ms", "ratio", "ratio_vs_nchw", "ratio_vs_channels_last",
            "ratio_of_minima",
            "value", "unit", "goal", "goal_op", "goal_value", "goal_unit", "goal_threads", "status",
            "margin_pct", "verdict", "info", "timings", "error")

VARIANT_COLUMNS = {"tinyseg": "tinyseg_ms", "numpy": "numpy_ms", "torch_nchw": "torch_nchw_ms",
                   "torch_channels_last": "torch_channels_last_ms", "keras": "keras_ms"}


def _verdict(goal, x, threads):
    """(status, margin_pct, text) for value x against goal at this thread count."""
    if goal is None:
        return "info", None, "no goal"
    if goal.threads is not None and threads != goal.threads:
        return "info", None, f"info (goal is for {goal.threads} threads)"
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a", None, "n/a"
    margin = (x / goal.value - 1) * 100
    if goal.met(x):
        return "met", margin, f"met ({-margin:.0f}% under)" if margin < 0 else "met (at the goal)"
    return "missed", margin, f"missed by {margin:.0f}%"


def make_row(case, threads, variants=None, info=None, error=None, value=None, unit=None, title=None):
    """One row: `variants` maps variant -> timing dict (from timing.time_interleaved)."""
    row = dict.fromkeys(ROW_KEYS)
    goal = case.goal
    row.update(case=case.name, title=title or case.title, threads=threads, compare=case.compare,
               info=info or {}, error=error, timings=variants or {})
    for variant, col in VARIANT_COLUMNS.items():
        if variants and variant in variants:
            row[col] = variants[variant]["median_ms"]
    if goal is not None:
        row.update(goal=goal.text(), goal_op=goal.op, goal_value=goal.value, goal_unit=goal.unit,
                   goal_threads=goal.threads)
    measured = None
    if case.compare == "torch" and row["tinyseg_ms"] is not None:
        torch_times = [row[c] for c in ("torch_nchw_ms", "torch_channels_last_ms") if row[c] is not None]
        if row["torch_nchw_ms"]:
            row["ratio_vs_nchw"] = row["tinyseg_ms"] / row["torch_nchw_ms"]
        if row["torch_channels_last_ms"]:
            row["ratio_vs_channels_last"] = row["tinyseg_ms"] / row["torch_channels_last_ms"]
        if torch_times:
            row["ratio"] = measured = row["tinyseg_ms"] / min(torch_times)
        mins = [variants[v].get("min_ms") for v in ("torch_nchw", "torch_channels_last") if v in variants]
        mins = [m for m in mins if m]
        if mins and variants["tinyseg"].get("min_ms"):
            row["ratio_of_minima"] = variants["tinyseg"]["min_ms"] / min(mins)
    elif case.compare == "numpy" and row["tinyseg_ms"] is not None and row["numpy_ms"]:
        row["ratio"] = measured = row["tinyseg_ms"] / row["numpy_ms"]
        if variants["tinyseg"].get("min_ms") and variants["numpy"].get("min_ms"):
            row["ratio_of_minima"] = variants["tinyseg"]["min_ms"] / variants["numpy"]["min_ms"]
    elif case.compare == "absolute":
        row["value"], row["unit"] = value, unit
        measured = value
    if error:
        row["status"], row["verdict"] = "error", "error: " + error.strip().splitlines()[-1][:120]
    elif case.compare == "torch" and measured is None and row["tinyseg_ms"] is not None:
        row["status"], row["verdict"] = "n/a", "no PyTorch"
    else:
        row["status"], row["margin_pct"], row["verdict"] = _verdict(goal, measured, threads)
    return row


# ----------------------------------------------------------------------------------------------------------
# results.md
# ----------------------------------------------------------------------------------------------------------
def _ms(x):
    if x is None:
        return "—"
    return f"{x:.3g}" if x < 10 else f"{x:.0f}" if x >= 1000 else f"{x:.1f}"


def markdown(rows, meta, notes):
    has_keras = any(r["keras_ms"] is not None for r in rows)
    head = ["Case", "Threads", "tinyseg (ms)", "NumPy twin (ms)", "PyTorch NCHW (ms)",
            "PyTorch channels_last (ms)"] + (["Keras (ms)"] if has_keras else []) + ["Ratio", "Goal", "Result"]
    lines = ["# tinyseg benchmarks", ""]
    lines += [f"- {k}: {v}" for k, v in meta_summary(meta).items()]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r["compare"] == "absolute":
            value = "—" if r["value"] is None else f"{r['value']:.0f} {r['unit']}" if r["unit"] == "ms" \
                else f"{r['value']:.1f} {r['unit']}"
            cells = [r["title"], str(r["threads"]), value, "—", "—", "—"]
            cells += (["—"] if has_keras else []) + ["—"]
        else:
            cells = [r["title"], str(r["threads"]), _ms(r["tinyseg_ms"]), _ms(r["numpy_ms"]),
                     _ms(r["torch_nchw_ms"]), _ms(r["torch_channels_last_ms"])]
            cells += [_ms(r["keras_ms"])] if has_keras else []
            cells += ["—" if r["ratio"] is None else f"{r['ratio']:.2f}"]
        cells += [r["goal"] or "—", r["verdict"] or "—"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += throughput_table(rows) + scaling_table(rows)
    lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _share(gflops, peak):
    """gflops as a share of the machine's peak, or a dash where either is unknown."""
    return f"{gflops / peak:.0%}" if peak and gflops else "—"


def _best_torch(row):
    times = [row[c] for c in ("torch_nchw_ms", "torch_channels_last_ms") if row[c] is not None]
    return min(times) if times else None


def throughput_table(rows):
    """GFLOP/s of every case that knows its arithmetic (info['flops']), as a share of the float32 matmul peak
    measured in the same worker (the faster of NumPy's BLAS and PyTorch on the matmul_peak case)."""
    peaks = {}
    for r in rows:
        if r["case"] == "matmul_peak" and r["tinyseg_ms"]:
            best = min(t for t in (r["tinyseg_ms"], _best_torch(r)) if t)
            peaks[r["threads"]] = r["info"]["flops"] / best / 1e6
    out = []
    for r in rows:
        flops = (r["info"] or {}).get("flops")
        if not flops or r["case"] == "matmul_peak" or not r["tinyseg_ms"]:
            continue
        peak = peaks.get(r["threads"])
        ts, tt = flops / r["tinyseg_ms"] / 1e6, (flops / _best_torch(r) / 1e6 if _best_torch(r) else None)
        out.append(f"| {r['title']} | {r['threads']} | {ts:.0f} ({_share(ts, peak)}) | "
                   + (f"{tt:.0f} ({_share(tt, peak)})" if tt else "—") + (f" | {peak:.0f} |" if peak else " | — |"))
    if not out:
        return []
    return ["", "Throughput: GFLOP/s (share of the float32 matmul peak measured in the same run):", "",
            "| Case | Threads | tinyseg | PyTorch (best layout) | matmul peak |", "|---|---|---|---|---|"] + out


SCALING_CASES = ("seed_cnn_step", "unet_step", "unet_camvid_step", "xception_unet_step", "train_epoch")


def scaling_table(rows):
    """Speed-up from 1 to 2 threads (time at 1 / time at 2) of each model step, tinyseg and PyTorch."""
    by = {(r["case"], r["threads"]): r for r in rows}
    out = []
    for case in SCALING_CASES:
        one, two = by.get((case, 1)), by.get((case, 2))
        if not one or not two or not one["tinyseg_ms"] or not two["tinyseg_ms"]:
            continue
        t_one, t_two = _best_torch(one), _best_torch(two)
        torch_text = f"{t_one / t_two:.2f}x" if t_one and t_two else "—"
        out.append(f"| {two['title']} | {one['tinyseg_ms'] / two['tinyseg_ms']:.2f}x | {torch_text} |")
    if not out:
        return []
    return ["", "Thread scaling, 1 -> 2 threads (time at 1 thread / time at 2; 2.00x is perfect):", "",
            "| Case | tinyseg | PyTorch (best layout) |", "|---|---|---|"] + out


def meta_summary(meta):
    keys = ("date", "mode", "machine", "python", "numpy", "numba", "torch", "blas", "threading_layer",
            "thread_control", "threads", "load_average")
    return {k: meta[k] for k in keys if meta.get(k) is not None}


# ----------------------------------------------------------------------------------------------------------
# results.json
# ----------------------------------------------------------------------------------------------------------
def write_json(path, rows, meta, notes, extra=None):
    doc = {"meta": meta, "notes": notes, "cases": rows, **(extra or {})}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, default=str)


# ----------------------------------------------------------------------------------------------------------
# ratios.png (matplotlib's Figure API: no pyplot, no global state, no display needed)
# ----------------------------------------------------------------------------------------------------------
COLORS = {"met": "#4c9a2a", "missed": "#c0392b"}


def plot(path, rows):
    from matplotlib.figure import Figure

    ratio_rows = [r for r in rows if r["ratio"] is not None]
    abs_rows = [r for r in rows if r["compare"] == "absolute" and r["value"] is not None and r["goal_value"]]
    panels = [p for p in ((ratio_rows, "ratio"), (abs_rows, "absolute")) if p[0]]
    heights = [max(len(p[0]), 1) for p in panels] or [1]
    fig = Figure(figsize=(10, 1.4 + 0.3 * sum(heights) + 0.9 * len(panels)), layout="constrained")
    if not panels:
        ax = fig.subplots()
        ax.text(0.5, 0.5, "no ratios measured", ha="center", va="center")
        ax.set_axis_off()
        fig.savefig(path, dpi=110)
        return
    axes = fig.subplots(len(panels), 1, gridspec_kw={"height_ratios": heights}, squeeze=False)[:, 0]
    for ax, (prows, kind) in zip(axes, panels):
        labels = [f"{r['case']}  [{r['threads']}t]" for r in prows]
        if kind == "ratio":
            values = [r["ratio"] for r in prows]
            goals = [r["goal_value"] for r in prows]
            xlabel = ("time ratio, lower is better; black ticks: goals\n(tinyseg / faster PyTorch layout; "
                      "Numba / NumPy twin for the *_numba_vs_numpy kernels)")
        else:
            values = [r["value"] / r["goal_value"] for r in prows]
            goals = [1.0 for _ in prows]
            labels = [f"{lab}  {r['value']:.0f} {r['unit']} / {r['goal_value']:g}" for lab, r in zip(labels, prows)]
            xlabel = "measured / goal (goal = 1), lower is better"
        y = list(range(len(prows)))[::-1]
        colors = [COLORS.get(r["status"], "#8e8e8e") for r in prows]
        ax.barh(y, values, color=colors, height=0.7)
        for yi, g in zip(y, goals):
            if g is not None:
                ax.vlines(g, yi - 0.45, yi + 0.45, colors="black", linewidth=2)
        for yi, v in zip(y, values):
            ax.text(v * 1.03, yi, f"{v:.2f}", va="center", fontsize=8)
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_xscale("log")
        finite = [v for v in values + [g for g in goals if g] if v and v > 0]
        ax.set_xlim(min(finite) / 1.6, max(finite) * 1.8)
        ax.axvline(1.0, color="#555555", linewidth=0.8, linestyle=":")
        ax.set_xlabel(xlabel, fontsize=9)
        ax.grid(axis="x", which="both", alpha=0.25)
    fig.suptitle("tinyseg speed goals (green: met, red: missed, grey: no goal at this thread count)",
                 fontsize=10)
    fig.savefig(path, dpi=110)
