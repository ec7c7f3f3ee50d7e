"""Side-by-side timing of J and ∇J: fastnn's kernels, its NumPy fallback, and installed peers.

One full-batch evaluation of the regularized cost and its gradient is timed per workload, dtype
and implementation, all in one process, next to the machine's matrix-multiply peak measured in
the same run. Every timing comes with the relative difference of J and ∇J from a float64
reference (fastnn's NumPy backend at the same θ), so that speed is never reported without
parity. ``fastnn bench`` prints the report; ``bench/`` (pytest-benchmark) reuses the workloads
and the peers.

FLOPs per evaluation are counted as 6·P·m (P weights including biases): 2·P·m each for the
forward products, the backpropagated δ and the Δ accumulation.
"""

import importlib.util
import json
import os
import platform
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from typing import NamedTuple

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from fastnn.backends import set_num_threads
from fastnn.cost import Objective
from fastnn.network import init_weights, n_params, pack, unpack

LAMBDA = 1.0


class Workload(NamedTuple):
    name: str
    layers: tuple
    m: int

    def describe(self, m=None):
        return f"{self.name} {'-'.join(map(str, self.layers))}, m = {m or self.m:,}"


WORKLOADS = {
    w.name: w
    for w in (
        Workload("digits", (64, 32, 10), 1_797),
        Workload("ex4", (400, 25, 10), 5_000),
        Workload("mnist", (784, 128, 10), 60_000),
        Workload("deep", (784, 256, 128, 64, 10), 20_000),
        Workload("wide-m", (100, 50, 10), 1_000_000),
    )
}
"""The workloads of the performance issue: scikit-learn's digits, the classic exercise's
400-25-10, MNIST-sized, a deeper net, and many examples on a small net."""

FASTNN = ("numba-parallel", "numba", "numpy")
OPTIONAL_PEERS = ("sklearn", "torch")
"""Peers that run only where their package is installed (the import name is the peer's)."""
PEERS = ("numpy", *OPTIONAL_PEERS)
"""What fastnn's kernels are compared with: the NumPy fallback (vectorized matrix products)
and the MLP gradients of scikit-learn and PyTorch, where installed."""


def make_data(workload, dtype, scale=1.0, seed=0):
    """``(X, y, θ)`` for a workload: digits from scikit-learn (scaled to [0, 1]), the others
    uniform random inputs and labels; m scaled by ``scale`` (at least 64 examples)."""
    m = max(64, round(workload.m * scale))
    rng = np.random.default_rng(seed)
    if workload.name == "digits":
        from sklearn.datasets import load_digits

        X_all, y_all = load_digits(return_X_y=True)
        rows = np.arange(m) % len(y_all)
        X, y = (X_all[rows] / 16.0).astype(dtype), y_all[rows]
    else:
        X = rng.random((m, workload.layers[0]), dtype=dtype)
        y = rng.integers(0, workload.layers[-1], size=m)
    theta = pack(init_weights(workload.layers, seed=seed, dtype=dtype))
    return X, y, theta


def implementations():
    """Names of the implementations that can run here, fastnn's first."""
    return (*FASTNN, *(name for name in OPTIONAL_PEERS if _installed(name)))


def _installed(module):
    return importlib.util.find_spec(module) is not None


def _fastnn(backend):
    def prepare(layers, X, y, dtype):
        return Objective(layers, X, y, LAMBDA, backend=backend, dtype=dtype)

    return prepare


def _sklearn(layers, X, y, dtype):
    """scikit-learn's own loss and gradient (``MLPClassifier._backprop``): logistic units and
    the binary log loss over a 0/1 target matrix are J(Θ) with λ = alpha."""
    import inspect

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    K = layers[-1]
    Y = np.zeros((len(y), K), dtype=dtype)
    Y[np.arange(len(y)), y] = 1
    clf = MLPClassifier(hidden_layer_sizes=layers[1:-1], activation="logistic", alpha=LAMBDA,
                        solver="sgd", max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X[:K * 4], np.eye(K, dtype=dtype)[np.arange(K * 4) % K])  # the structure only
    n = len(layers)
    with_weights = "sample_weight" in inspect.signature(clf._backprop).parameters

    def run(vec):
        thetas = unpack(vec, layers)
        clf.coefs_ = [theta[:, 1:].T.copy() for theta in thetas]
        clf.intercepts_ = [theta[:, 0].copy() for theta in thetas]
        coef_grads = [np.empty_like(c) for c in clf.coefs_]
        intercept_grads = [np.empty_like(b) for b in clf.intercepts_]
        args = [X, Y, [X] + [None] * (n - 1), [None] * (n - 1), coef_grads, intercept_grads]
        if with_weights:
            args.insert(2, None)
        J, coef_grads, intercept_grads = clf._backprop(*args)
        return J, pack([np.column_stack([b, W.T]) for W, b in zip(coef_grads, intercept_grads)])

    return run


def _torch(layers, X, y, dtype):
    """PyTorch CPU autograd: sigmoid hidden layers, ``binary_cross_entropy_with_logits``
    summed over outputs and averaged over examples, plus (λ/2m) Σ W²."""
    import torch

    m, K = len(y), layers[-1]
    X_t = torch.from_numpy(X)
    Y_t = torch.nn.functional.one_hot(torch.from_numpy(y), K).to(X_t.dtype)

    def run(vec):
        params = [torch.tensor(theta, requires_grad=True) for theta in unpack(vec, layers)]
        A = X_t
        for theta in params[:-1]:
            A = torch.sigmoid(torch.addmm(theta[:, 0], A, theta[:, 1:].T))
        Z = torch.addmm(params[-1][:, 0], A, params[-1][:, 1:].T)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(Z, Y_t, reduction="sum")
        penalty = sum((theta[:, 1:] ** 2).sum() for theta in params)
        J = loss / m + LAMBDA / (2 * m) * penalty
        J.backward()
        return J.item(), pack([theta.grad.numpy() for theta in params])

    return run


PREPARE: dict[str, Callable] = {
    "numba-parallel": _fastnn("numba-parallel"),
    "numba": _fastnn("numba"),
    "numpy": _fastnn("numpy"),
    "sklearn": _sklearn,
    "torch": _torch,
}
"""Implementation name → ``prepare(layers, X, y, dtype)`` returning ``run(θ) -> (J, ∇J)``."""


PAUSE_S = 0.5
"""Seconds to wait after each implementation's turn, for the idle threads of its thread pool
(OpenBLAS, OpenMP inside PyTorch) to stop spinning before the next implementation runs."""


@contextmanager
def threads_for(name, n):
    """Within the block, ``name`` runs on n threads and nothing else spins: Numba's threads
    for the Numba backends (BLAS held to one, its idle threads otherwise contend), BLAS's for
    the NumPy fallback and scikit-learn, PyTorch's own pool for PyTorch."""
    set_num_threads(n)
    blas = 1 if name.startswith("numba") or name == "torch" else n
    with threadpool_limits(limits=blas, user_api="blas"):
        if name != "torch":
            yield
            return
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def time_interleaved(runs, vec, threads, repeats, pause=PAUSE_S, rounds=3):
    """Seconds of at least ``repeats`` calls of each ``runs[name](vec)``, taken in turns.

    The implementations take turns ``rounds`` times (fewer if ``repeats`` is smaller), so that
    a slow spell of a shared machine falls on all of them alike. A turn is one untimed call
    (Numba's compilation or cache load the first time; afterwards it wakes the threads and
    caches that the previous implementation left cold) and ``ceil(repeats / rounds)`` timed
    calls; ``pause`` seconds after each turn let its thread pool stop spinning. Returns
    ``{name: times}`` and ``{name: (J, ∇J)}`` of each implementation's first call.
    """
    rounds = max(1, min(rounds, repeats))
    per_turn = -(-repeats // rounds)
    results, times = {}, {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            with threads_for(name, threads):
                result = run(vec)
                results.setdefault(name, result)
                for _ in range(per_turn):
                    start = time.perf_counter()
                    run(vec)
                    times[name].append(time.perf_counter() - start)
            time.sleep(pause)
    return times, results


def gemm_peak(dtype, threads, n=2048, repeats=10, pause=PAUSE_S):
    """The machine's practical peak: GFLOP/s of the best matrix multiply installed (NumPy's
    BLAS, and PyTorch's where installed) on n × n matrices with ``threads`` threads."""
    rng = np.random.default_rng(0)
    A, B = rng.random((n, n), dtype=dtype), rng.random((n, n), dtype=dtype)
    products = {"numpy": lambda: A @ B}
    if _installed("torch"):
        import torch

        A_t, B_t = torch.from_numpy(A), torch.from_numpy(B)
        products["torch"] = lambda: torch.mm(A_t, B_t)
    best = np.inf
    for name, product in products.items():
        with threads_for(name, threads):
            product()
            best = min(best, *(_timed(product) for _ in range(repeats)))
        time.sleep(pause)
    return 2 * n**3 / best / 1e9


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _rel_diff(value, reference):
    scale = np.max(np.abs(reference))
    return float(np.max(np.abs(np.asarray(value, np.float64) - reference)) / scale)


def run_benchmarks(workloads, dtypes, names, threads, repeats, scale=1.0, progress=None,
                   gemm_size=2048, pause=PAUSE_S):
    """Time every implementation in ``names`` on every workload and dtype, side by side.

    Returns a dict with the machine, the GEMM peak per dtype (``gemm_size`` square matrices)
    and one record per timing; ``pause`` seconds pass after each implementation.
    """
    peaks = {np.dtype(d).name: gemm_peak(d, threads, gemm_size, pause=pause) for d in dtypes}
    records = []
    for workload_name in workloads:
        workload = WORKLOADS[workload_name]
        for dtype in dtypes:
            dtype = np.dtype(dtype)
            X, y, theta = make_data(workload, dtype, scale)
            m, P = X.shape[0], n_params(workload.layers)
            reference = _fastnn("numpy")(workload.layers, X.astype(np.float64), y, np.float64)
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


def machine(threads):
    """What the figures were measured on."""
    versions = {"numpy": np.__version__, "numba": numba.__version__}
    for module in OPTIONAL_PEERS:
        if _installed(module):
            versions[module] = importlib.import_module(module).__version__
    return {"cpu": _cpu_name(), "cores": os.cpu_count(), "threads": threads,
            "python": platform.python_version(), "versions": versions}


_MEMORY_PROBE = """
import sys, numpy as np, fastnn
from fastnn.benchmark import WORKLOADS, make_data
name, backend, dtype, scale = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
w = WORKLOADS[name]
X, y, theta = make_data(w, dtype, 64 / w.m)
fastnn.Objective(w.layers, X, y, 1.0, backend=backend, dtype=dtype)(theta)  # compile first
X, y, theta = make_data(w, dtype, scale)
objective = fastnn.Objective(w.layers, X, y, 1.0, backend=backend, dtype=dtype)
def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key)) / 1024
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak resident size to the current one
before = status("VmRSS:")
objective(theta)
print(X.nbytes / 2**20, y.nbytes / 2**20, before, status("VmHWM:"))
"""


def call_memory(workload, backend, dtype, scale=1.0):
    """Memory of one J-and-∇J call, measured in a fresh process (Linux).

    Returns ``{"inputs_mb", "resident_before_mb", "peak_mb", "extra_mb"}``: the size of X and y,
    the resident size once they and the compiled kernels are loaded, the peak resident size
    during the call, and the difference (what the call itself needed).
    """
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, workload, backend, np.dtype(dtype).name,
         str(scale)], check=True, capture_output=True, text=True).stdout
    x_mb, y_mb, before, peak = map(float, out.split())
    return {"inputs_mb": x_mb + y_mb, "resident_before_mb": before, "peak_mb": peak,
            "extra_mb": peak - before}


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
    """The report as text: one table per workload and dtype."""
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
    with open(path, "w") as file:
        json.dump(report, file, indent=1)


def plot_report(report, path):
    """Bars per implementation per workload: median time relative to the fastest peer."""
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
