"""Training beside other busy processes, and the first run on an empty Numba cache.

Users train next to a browser, another job or the other fits of a ``GridSearchCV``; a speed that
holds only on an idle machine is not theirs. :func:`run_contention` times whole fits as users
write them, fastnn's estimator (backend ``"auto"``) and scikit-learn's ``MLPClassifier`` with
the same settings, taking turns, with 0, 1, 2 ... processes busy-looping beside them, and
reports each one's time, its slowdown against its own idle time, and fastnn ÷ scikit-learn:

``digits adam``
    scikit-learn's digits (inputs scaled to [0, 1]), 50 logistic units, adam, batches of 200,
    50 epochs (``tol=0``).
``digits lbfgs``
    The same data, 25 units, λ = 1, 400 L-BFGS iterations (``tol=0``).
``mnist adam epoch``
    One adam epoch, batches of 200, on the MNIST-shaped 784-128-10 workload.
``digits grid search``
    ``GridSearchCV(n_jobs=2)`` over α ∈ {1e-4, 1e-2, 1} and 25 or 50 units, 2 folds (12 fits
    of the digits adam run), in joblib's worker processes.

Every fastnn fit starts with no record of which thread counts were fast
(:meth:`fastnn._threads.ThreadChoice.forget`), as in a new process. :func:`first_run` times
``fastnn train`` in a new process on an empty Numba cache, then again on the cache it filled.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager

import numpy as np

from fastnn.benchmark.threads import PAUSE_S
from fastnn.benchmark.workloads import WORKLOADS, make_data

BUSY = (0, 1, 2)
"""Busy processes beside the fits, by default."""

RUNS = ("digits adam", "digits lbfgs", "mnist adam epoch", "digits grid search")
"""The timed fits, in the order of the report."""

BUSY_LOOP = "while True: pass"


@contextmanager
def busy_processes(n):
    """n Python processes spinning on one core each, for the duration of the block (which gets
    their ``Popen`` objects)."""
    processes = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(n)]
    try:
        time.sleep(0.5 if n else 0.0)  # started and running
        yield processes
    finally:
        for process in processes:
            process.kill()
            process.wait()


def _digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def _settings(run):
    """Keyword arguments both estimators take for ``run``."""
    if run == "digits lbfgs":
        return {"hidden_layer_sizes": (25,), "solver": "lbfgs", "alpha": 1.0, "max_iter": 400,
                "tol": 0.0, "random_state": 0}
    epochs = 1 if run == "mnist adam epoch" else 50
    return {"hidden_layer_sizes": (128,) if run == "mnist adam epoch" else (50,),
            "solver": "adam", "batch_size": 200, "max_iter": epochs, "tol": 0.0,
            "n_iter_no_change": epochs, "random_state": 0}


def _fit(name, run, X, y):
    """The fit of ``run`` by ``name`` ("fastnn" or "sklearn"), returning nothing."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    import fastnn
    from fastnn._threads import THREADS

    def estimator(**settings):
        if name == "fastnn":
            return fastnn.MLPClassifier(**settings)
        return MLPClassifier(activation="logistic", **settings)

    if name == "fastnn":
        THREADS.forget()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if run != "digits grid search":
            estimator(**_settings(run)).fit(X, y)
            return
        from sklearn.model_selection import GridSearchCV

        grid = {"alpha": [1e-4, 1e-2, 1.0], "hidden_layer_sizes": [(25,), (50,)]}
        GridSearchCV(estimator(**_settings("digits adam")), grid, cv=2, n_jobs=2).fit(X, y)


def run_contention(busy=BUSY, runs=RUNS, repeats=5, scale=1.0, progress=None):
    """Time every run for fastnn and scikit-learn with each number of busy processes.

    Parameters
    ----------
    busy : sequence of int
        Numbers of busy processes beside the fits; 0 (idle) is the reference of the slowdowns
        and is always included.
    runs : sequence of str
        Items of :data:`RUNS`.
    repeats : int
        Timed fits per implementation and condition, taken in turns (the order of the two
        alternates; a pause of :data:`~fastnn.benchmark.PAUSE_S` after each, for the idle
        threads of its thread pools to stop spinning), after one untimed fit of each.
    scale : float
        Fraction of the MNIST-shaped workload's 60,000 rows.
    progress : callable, optional
        Called with a line of text before each condition and run.

    Returns
    -------
    dict
        ``"busy"``, ``"runs"``, ``"repeats"`` and ``"times"``: run → busy → implementation →
        list of seconds.
    """
    busy = sorted({0, *busy})
    data = {"digits": _digits()}
    if "mnist adam epoch" in runs:
        X, y, _ = make_data(WORKLOADS["mnist"], "float64", scale)
        data["mnist"] = (X, y)
    times = {run: {n: {"fastnn": [], "sklearn": []} for n in busy} for run in runs}
    for n in busy:
        with busy_processes(n):
            for run in runs:
                if progress:
                    progress(f"{run}, {n} busy")
                X, y = data["mnist" if run.startswith("mnist") else "digits"]
                names = ["fastnn", "sklearn"]
                for name in names:
                    _fit(name, run, X, y)  # compilation, worker processes, caches
                for turn in range(repeats):
                    for name in names[:: 1 if turn % 2 == 0 else -1]:
                        start = time.perf_counter()
                        _fit(name, run, X, y)
                        times[run][n][name].append(time.perf_counter() - start)
                        time.sleep(PAUSE_S)  # for the idle threads of its pools to stop
    return {"busy": busy, "runs": list(runs), "repeats": repeats, "times": times}


def format_contention_report(report, first=None):
    """The contention table (median seconds, slowdowns, ratios) and, given ``first`` (from
    :func:`first_run`), the first-run line."""
    lines = [
        "Fits side by side with busy processes: fastnn (backend auto) and scikit-learn's "
        f"MLPClassifier in turns, median s of {report['repeats']} fits",
        "",
        "| run | busy | fastnn | scikit-learn | fastnn ÷ scikit-learn | fastnn slowdown "
        "| scikit-learn slowdown |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in report["runs"]:
        by_busy = report["times"][run]
        idle = {name: statistics.median(by_busy[0][name]) for name in ("fastnn", "sklearn")}
        for n in report["busy"]:
            f, s = (statistics.median(by_busy[n][name]) for name in ("fastnn", "sklearn"))
            lines.append(f"| {run if n == report['busy'][0] else ''} | {n} | {f:.3f} | {s:.3f} "
                         f"| {f / s:.2f} | {f / idle['fastnn']:.2f} | "
                         f"{s / idle['sklearn']:.2f} |")
    if first is not None:
        lines += ["", f"first `fastnn train` on an empty Numba cache: {first['cold']:.1f} s "
                  f"(the next, on the cache it filled: {first['warm']:.1f} s)"]
    return "\n".join(lines)


def first_run(args=("train", "--quiet")):
    """Seconds of ``python -m fastnn *args`` in a new process on an empty Numba cache
    (``NUMBA_CACHE_DIR`` a new folder), then again with the cache that run filled.

    Returns
    -------
    dict
        ``"cold"`` and ``"warm"``: seconds of each run, start to exit.
    """
    seconds = {}
    with tempfile.TemporaryDirectory() as folder:
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(folder, "cache"))
        command = [sys.executable, "-m", "fastnn", *args, "--out",
                   os.path.join(folder, "model.npz")]
        for key in ("cold", "warm"):
            start = time.perf_counter()
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
            seconds[key] = time.perf_counter() - start
    return seconds


def medians(report):
    """Run → busy → implementation → median seconds (for JSON and tests)."""
    return {run: {n: {name: float(np.median(values)) for name, values in by_name.items()}
                  for n, by_name in by_busy.items()}
            for run, by_busy in report["times"].items()}
