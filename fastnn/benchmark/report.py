"""The side-by-side run, the machine it ran on, and the report as text, JSON and a plot."""

import importlib
import json
import os
import platform

import numba
import numpy as np

from fastnn.benchmark.peers import OPTIONAL_PEERS, PEERS, PREPARE, installed
from fastnn.benchmark.threads import PAUSE_S, gemm_peak, time_interleaved
from fastnn.benchmark.workloads import WORKLOADS, make_data
from fastnn.network import n_params


def run_benchmarks(workloads, dtypes, names, threads, repeats, scale=1.0, progress=None,
                   gemm_size=2048, pause=PAUSE_S):
    """Time every implementation in ``names`` on every workload and dtype, side by side.

    Parameters
    ----------
    workloads : list of str
        Keys of :data:`fastnn.benchmark.WORKLOADS`.
    dtypes : list of dtype-like
        float32 and/or float64.
    names : list of str
        Implementations, keys of :data:`fastnn.benchmark.PREPARE`.
    threads : int
        Threads for every implementation.
    repeats : int
        Timed calls per implementation, workload and dtype (see
        :func:`fastnn.benchmark.threads.time_interleaved`).
    scale : float
        Fraction of each workload's m.
    progress : callable, optional
        Called with a line of text before each workload and dtype.
    gemm_size : int
        Size of the square matrices of the GEMM peak.
    pause : float
        Seconds to wait after each implementation's turn.

    Returns
    -------
    dict
        ``"machine"`` (:func:`machine`), ``"gemm_peak_gflops"`` (dtype name → GFLOP/s) and
        ``"results"``: one record per workload, dtype and implementation, with the times, the
        median, examples/s, GFLOP/s (6·P·m per call), the fraction of the GEMM peak, the
        median relative to the fastest peer's, and the relative differences of J and ∇J from
        the float64 NumPy backend's.
    """
    peaks = {np.dtype(d).name: gemm_peak(d, threads, gemm_size, pause=pause) for d in dtypes}
    records = []
    for workload_name in workloads:
        workload = WORKLOADS[workload_name]
        for dtype in dtypes:
            dtype = np.dtype(dtype)
            X, y, theta = make_data(workload, dtype, scale)
            m, P = X.shape[0], n_params(workload.layers)
            reference = PREPARE["numpy"](workload.layers, X.astype(np.float64), y, np.float64)
            J_ref, grad_ref = reference(theta.astype(np.float64))
            del reference
            if progress:
                progress(f"{workload.describe(m)}, {dtype}: {', '.join(names)}")
            runs = {name: PREPARE[name](workload.layers, X, y, dtype) for name in names}
            times, results = time_interleaved(runs, theta, threads, repeats, pause)
            del runs
            rows = []
            for name in names:
                median = float(np.median(times[name]))
                J, grad = results[name]
                rows.append({
                    "workload": workload.name, "layers": list(workload.layers), "m": m,
                    "dtype": dtype.name, "implementation": name, "threads": threads,
                    "times_s": times[name], "median_s": median, "examples_per_s": m / median,
                    "gflops": 6 * P * m / median / 1e9,
                    "peak_fraction": 6 * P * m / median / 1e9 / peaks[dtype.name],
                    "J_rel_diff": float(abs(J - J_ref) / abs(J_ref)),
                    "grad_rel_diff": _rel_diff(grad, grad_ref),
                })
            fastest = min((r["median_s"] for r in rows if r["implementation"] in PEERS),
                          default=None)
            for row in rows:
                row["vs_fastest_peer"] = row["median_s"] / fastest if fastest else None
            records.extend(rows)
    return {"machine": machine(threads), "gemm_peak_gflops": peaks, "results": records}


def _rel_diff(value, reference):
    scale = np.max(np.abs(reference))
    return float(np.max(np.abs(np.asarray(value, np.float64) - reference)) / scale)


def machine(threads):
    """What the figures were measured on.

    Parameters
    ----------
    threads : int
        The threads the run used.

    Returns
    -------
    dict
        ``"cpu"``, ``"cores"``, ``"threads"``, ``"python"`` and ``"versions"`` (NumPy, Numba
        and the installed peers).
    """
    versions = {"numpy": np.__version__, "numba": numba.__version__}
    for module in OPTIONAL_PEERS:
        if installed(module):
            versions[module] = importlib.import_module(module).__version__
    return {"cpu": _cpu_name(), "cores": os.cpu_count(), "threads": threads,
            "python": platform.python_version(), "versions": versions}


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def format_report(report):
    """The report of :func:`run_benchmarks` as text: one table per workload and dtype."""
    lines = []
    by_case = {}
    for row in report["results"]:
        by_case.setdefault((row["workload"], row["dtype"]), []).append(row)
    header = (f"{'implementation':<15} {'median ms':>10} {'examples/s':>11} {'GFLOP/s':>8} "
              f"{'% peak':>7} {'× peer':>7} {'J rel diff':>10} {'∇J rel diff':>11}")
    for (name, dtype), rows in by_case.items():
        peak = report["gemm_peak_gflops"][dtype]
        lines.append(f"{WORKLOADS[name].describe(rows[0]['m'])}, {dtype} "
                     f"(GEMM peak {peak:.0f} GFLOP/s, {rows[0]['threads']} threads)")
        lines.append(header)
        for r in rows:
            ratio = f"{r['vs_fastest_peer']:.2f}" if r["vs_fastest_peer"] else "-"
            lines.append(
                f"{r['implementation']:<15} {r['median_s'] * 1e3:>10.2f} "
                f"{r['examples_per_s']:>11.3g} {r['gflops']:>8.1f} "
                f"{100 * r['peak_fraction']:>6.1f}% {ratio:>7} "
                f"{r['J_rel_diff']:>10.1e} {r['grad_rel_diff']:>11.1e}")
        by_name = {r["implementation"]: r["median_s"] for r in rows}
        if "numba" in by_name and "numba-parallel" in by_name:
            lines.append(f"numba-parallel on {rows[0]['threads']} threads: "
                         f"{by_name['numba'] / by_name['numba-parallel']:.2f}x numba's speed")
        lines.append("")
    return "\n".join(lines)


def write_json(report, path):
    """Writes the report of :func:`run_benchmarks` to ``path`` as JSON."""
    with open(path, "w") as file:
        json.dump(report, file, indent=1)


def plot_report(report, path):
    """Bars per implementation per workload: median time relative to the fastest peer.

    One panel per dtype, a log scale, saved to ``path`` (needs matplotlib).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    dtypes = list(dict.fromkeys(r["dtype"] for r in report["results"]))
    fig, axes = plt.subplots(len(dtypes), 1, figsize=(10, 3.5 * len(dtypes)), squeeze=False)
    for ax, dtype in zip(axes[:, 0], dtypes):
        rows = [r for r in report["results"] if r["dtype"] == dtype]
        workloads = list(dict.fromkeys(r["workload"] for r in rows))
        names = list(dict.fromkeys(r["implementation"] for r in rows))
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            values = [next((r["vs_fastest_peer"] for r in rows
                            if r["workload"] == w and r["implementation"] == name), np.nan)
                      for w in workloads]
            ax.bar(np.arange(len(workloads)) + i * width, values, width, label=name)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(np.arange(len(workloads)) + 0.4 - width / 2, workloads)
        ax.set_ylabel("time / fastest peer")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.set_title(f"cost + gradient, {dtype}, {report['machine']['threads']} threads")
        ax.legend(fontsize="small", ncol=len(names))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
