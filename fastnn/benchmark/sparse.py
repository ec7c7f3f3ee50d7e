"""Sparse inputs: J and ∇J, and adam epochs, on a tf-idf-shaped CSR X; the memory of an epoch.

X comes from :func:`~fastnn.benchmark.make_sparse` (Zipf-distributed columns, log-normal row
lengths, L2-normalized tf · idf rows, labels from a linear teacher). ``fastnn bench --sparse``
runs three measurements:

full-batch J and ∇J
    On 20,000 × 20,000 at each density of :data:`DENSITIES`, a 20000-64-10 network, λ =
    :data:`~fastnn.benchmark.LAMBDA`: fastnn's ``numba-parallel`` backend on the CSR, its
    ``auto`` backend on the dense copy ``X.toarray()`` (where that takes at most
    :data:`DENSE_LIMIT` bytes), and its NumPy backend on the CSR, in turns
    (:func:`~fastnn.benchmark.time_interleaved`). Each comes with the relative difference of its
    J and ∇J from the float64 dense result (:func:`dense_reference`).
adam epochs
    :data:`EPOCHS` epochs of ``fastnn.MLPClassifier`` on the CSR and, where it fits, on the
    dense copy, and of scikit-learn's ``MLPClassifier`` on the same CSR, at density
    :data:`TRAINING_DENSITY`, with the same settings (:data:`TRAINING_SETTINGS`), whole fits
    timed in turns; each with the training loss it reached (``loss_``) and the epochs it ran.
memory of an epoch
    The peak resident size of one adam epoch of ``fastnn.MLPClassifier`` on 100,000 × 50,000
    with 10 M nonzeros and 32 hidden units, above the resident size once X is built, measured in
    a fresh process (:mod:`._sparse_memory_probe`), beside X's own bytes.

``--scale`` shrinks the rows (m) of all three, not the columns: the nonzeros per row, and so
the work per example, stay those of full scale.
"""

import subprocess
import sys
import warnings

import numpy as np

from fastnn.benchmark.report import _rel_diff, machine
from fastnn.benchmark.threads import PAUSE_S, time_interleaved
from fastnn.benchmark.workloads import LAMBDA, make_sparse
from fastnn.cost import Objective
from fastnn.network import penalty_mask

SHAPE = (20_000, 20_000)
"""m × n of the full-batch and training tables at full scale."""
DENSITIES = (0.001, 0.005, 0.01, 0.05, 0.1)
"""Fractions of X's entries that are nonzero in the full-batch table."""
HIDDEN = 64
K = 10
DENSE_LIMIT = 2 * 2**30
"""Bytes the dense copy of X may take; runs on a larger one are left out."""
COST_AND_GRAD = {"numba-parallel": "csr", "auto": "dense", "numpy": "csr"}
"""fastnn backend → the X it gets in the full-batch table."""

TRAINING_DENSITY = 0.005
EPOCHS = 2
TRAINING_SETTINGS = {
    "hidden_layer_sizes": (HIDDEN,), "activation": "logistic", "solver": "adam",
    "batch_size": 200, "learning_rate_init": 1e-3, "alpha": 1e-4, "max_iter": EPOCHS,
    "tol": 0.0, "n_iter_no_change": EPOCHS + 1, "shuffle": True, "random_state": 0,
}
"""The settings both estimators get: scikit-learn's defaults but 64 hidden units, batches of
200 (m, if fewer), exactly :data:`EPOCHS` epochs (no stop for lack of improvement) from seed
0."""
TRAINING = {"fastnn": ("auto", "csr"), "fastnn dense": ("auto", "dense"),
            "sklearn": ("sklearn", "csr")}
"""Name in the training table → (the implementation whose threads are held, the X it gets)."""

MEMORY_SHAPE = (100_000, 50_000)
MEMORY_NNZ = 10_000_000
MEMORY_HIDDEN = 32


def scaled_m(m, scale):
    """The rows of a table at ``scale`` (at least 64)."""
    return max(64, round(m * scale))


def dense_bytes(X, dtype):
    """Bytes of ``X.toarray()`` in ``dtype``."""
    return X.shape[0] * X.shape[1] * np.dtype(dtype).itemsize


def csr_bytes(X):
    """Bytes of a CSR matrix's own arrays (``data``, ``indices``, ``indptr``)."""
    return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes


def dense_reference(layers, X, y, theta, block_bytes=2**28):
    """J and ∇J of the float64 dense X, by fastnn's NumPy backend, one block of rows at a time.

    J = Σ_b (m_b/m) J_b + (λ/2m) Σ Θ² and ∇J = Σ_b (m_b/m) ∇J_b + (λ/m) Θ (bias weights
    excepted), with J_b the unregularized cost of block b's m_b rows, so that no more than
    ``block_bytes`` of X is dense at a time.

    Parameters
    ----------
    layers : tuple of int
    X : scipy.sparse.csr_matrix of shape (m, s_1)
    y : ndarray of shape (m,)
    theta : ndarray of shape (P,)
    block_bytes : int
        The most bytes of a dense block of X.

    Returns
    -------
    J : float
    grad : ndarray of float64, shape (P,)
    """
    m, n = X.shape
    theta = theta.astype(np.float64)
    step = max(1, block_bytes // (8 * n))
    J, grad = 0.0, np.zeros_like(theta)
    for start in range(0, m, step):
        block = X[start:start + step].toarray().astype(np.float64, copy=False)
        J_b, grad_b = Objective(layers, block, y[start:start + step], 0.0, backend="numpy")(theta)
        J += len(block) / m * J_b
        grad += len(block) / m * grad_b
    penalized = penalty_mask(layers) * theta
    return J + LAMBDA / (2 * m) * float(penalized @ penalized), grad + LAMBDA / m * penalized


def parity(result, reference):
    """``{"J_rel_diff", "grad_rel_diff"}``: |J − J_ref| / |J_ref| and max |∇J − ∇J_ref| over
    max |∇J_ref|, of ``result = (J, ∇J)`` from ``reference = (J_ref, ∇J_ref)``."""
    (J, grad), (J_ref, grad_ref) = result, reference
    return {"J_rel_diff": float(abs(J - J_ref) / abs(J_ref)),
            "grad_rel_diff": _rel_diff(grad, grad_ref)}


def run_sparse_cost_and_grad(dtypes, threads, repeats, scale=1.0, densities=DENSITIES,
                             progress=None, pause=PAUSE_S):
    """The full-batch table: each backend of :data:`COST_AND_GRAD` at each density and dtype.

    Parameters
    ----------
    dtypes : list of dtype-like
    threads : int
        Threads for every implementation.
    repeats : int
        Timed calls per implementation (see :func:`~fastnn.benchmark.time_interleaved`).
    scale : float
        Fraction of m.
    densities : sequence of float
    progress : callable, optional
        Called with a line of text before each density and dtype.
    pause : float
        Seconds to wait after each implementation's turn.

    Returns
    -------
    list of dict
        One record per density, dtype and implementation that ran: ``m``, ``n``, ``density``,
        ``nnz``, ``layers``, ``dtype``, ``implementation`` (the backend), ``X`` ("csr" or
        "dense"), ``dense_bytes`` (of X's dense copy), ``threads``, ``times_s``, ``median_s``,
        ``J_rel_diff`` and ``grad_rel_diff`` (from :func:`dense_reference`), and ``vs_numpy``
        (``median_s`` over the NumPy backend's on the CSR).
    """
    m, n = scaled_m(SHAPE[0], scale), SHAPE[1]
    layers = (n, HIDDEN, K)
    records = []
    for density in densities:
        X64, y, theta64 = make_sparse(m, n, density, hidden=(HIDDEN,), K=K)
        for dtype in map(np.dtype, dtypes):
            X, theta = X64.astype(dtype), theta64.astype(dtype)
            reference = dense_reference(layers, X, y, theta)
            names = [name for name, kind in COST_AND_GRAD.items()
                     if kind == "csr" or dense_bytes(X, dtype) <= DENSE_LIMIT]
            if progress:
                progress(f"J and ∇J, {_describe(X, density)}, {dtype}: {', '.join(names)}")
            runs = {name: prepare_cost_and_grad(name, layers, X, y, dtype) for name in names}
            times, results = time_interleaved(runs, theta, threads, repeats, pause)
            del runs
            table = []
            for name in names:
                table.append({
                    "m": m, "n": n, "density": density, "nnz": X.nnz, "layers": list(layers),
                    "dtype": dtype.name, "implementation": name, "X": COST_AND_GRAD[name],
                    "dense_bytes": dense_bytes(X, dtype), "threads": threads,
                    "times_s": times[name], "median_s": float(np.median(times[name])),
                    **parity(results[name], reference),
                })
            numpy = next(r["median_s"] for r in table if r["implementation"] == "numpy")
            for row in table:
                row["vs_numpy"] = row["median_s"] / numpy
            records.extend(table)
    return records


def prepare_cost_and_grad(name, layers, X, y, dtype):
    """``run(θ) -> (J, ∇J)`` of the backend ``name`` of :data:`COST_AND_GRAD` on the CSR X or
    on its dense copy, as that table gives it."""
    X = X.toarray() if COST_AND_GRAD[name] == "dense" else X
    return Objective(layers, X, y, LAMBDA, backend=name, dtype=dtype)


def prepare_fit(name, X, y):
    """``run(_) -> (loss_, n_iter_)``: one fit of the estimator ``name`` of :data:`TRAINING`
    (with :data:`TRAINING_SETTINGS`) on the CSR X or on its dense copy, as that table gives
    it."""
    from sklearn.exceptions import ConvergenceWarning

    if name == "sklearn":
        from sklearn.neural_network import MLPClassifier
    else:
        from fastnn import MLPClassifier
    X = X.toarray() if TRAINING[name][1] == "dense" else X
    # batches of at most m, where scikit-learn would clip them with a warning
    settings = {**TRAINING_SETTINGS, "batch_size": min(TRAINING_SETTINGS["batch_size"], len(y))}

    def run(_):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter ends every fit
            clf = MLPClassifier(**settings).fit(X, y)
        return float(clf.loss_), int(clf.n_iter_)

    return run


def run_sparse_training(dtypes, threads, repeats, scale=1.0, progress=None, pause=PAUSE_S):
    """The training table: :data:`EPOCHS` adam epochs of each estimator of :data:`TRAINING`.

    Parameters
    ----------
    dtypes, threads, repeats, scale, progress, pause
        As for :func:`run_sparse_cost_and_grad`, with whole fits in place of calls.

    Returns
    -------
    list of dict
        One record per dtype and estimator that ran: ``m``, ``n``, ``density``, ``nnz``,
        ``hidden``, ``batch_size``, ``dtype``, ``implementation``, ``X``, ``threads``,
        ``times_s`` and ``median_s`` (seconds per fit of :data:`EPOCHS` epochs), ``loss`` and
        ``epochs`` (``loss_`` and ``n_iter_`` of the first fit) and ``vs_sklearn``
        (``median_s`` over scikit-learn's).
    """
    m, n = scaled_m(SHAPE[0], scale), SHAPE[1]
    X64, y, _ = make_sparse(m, n, TRAINING_DENSITY, hidden=(HIDDEN,), K=K)
    records = []
    for dtype in map(np.dtype, dtypes):
        X = X64.astype(dtype)
        names = [name for name, (_, kind) in TRAINING.items()
                 if kind == "csr" or dense_bytes(X, dtype) <= DENSE_LIMIT]
        if progress:
            progress(f"{EPOCHS} adam epochs, {_describe(X, TRAINING_DENSITY)}, {dtype}: "
                     f"{', '.join(names)}")
        runs = {name: prepare_fit(name, X, y) for name in names}
        times, results = time_interleaved(
            runs, None, threads, repeats, pause,
            threads_names={name: TRAINING[name][0] for name in names})
        del runs
        sklearn = float(np.median(times["sklearn"]))
        for name in names:
            median = float(np.median(times[name]))
            records.append({
                "m": m, "n": n, "density": TRAINING_DENSITY, "nnz": X.nnz, "hidden": HIDDEN,
                "batch_size": min(TRAINING_SETTINGS["batch_size"], m), "dtype": dtype.name,
                "implementation": name, "X": TRAINING[name][1],
                "threads": threads, "times_s": times[name], "median_s": median,
                "loss": results[name][0], "epochs": results[name][1],
                "vs_sklearn": median / sklearn,
            })
    return records


def epoch_memory(dtype="float64", scale=1.0):
    """Memory of one adam epoch of ``fastnn.MLPClassifier`` on a CSR X, in a fresh process.

    X is :data:`MEMORY_SHAPE` with :data:`MEMORY_NNZ` nonzeros at full scale (``scale`` shrinks
    m and the nonzeros alike), the network has :data:`MEMORY_HIDDEN` hidden units and
    :data:`K` outputs. See :mod:`fastnn.benchmark._sparse_memory_probe` (Linux).

    Returns
    -------
    dict
        In MiB: ``x_mb`` (X's data, indices and indptr), ``y_mb``, ``resident_before_mb`` (the
        resident size once X and y are built and the kernels compiled), ``peak_mb`` (the peak
        resident size during the epoch) and ``extra_mb`` (the difference: what the epoch needed
        above X); and ``m``, ``n``, ``nnz`` (X's own), ``hidden``, ``dtype``.
    """
    m, n = scaled_m(MEMORY_SHAPE[0], scale), MEMORY_SHAPE[1]
    nnz = round(MEMORY_NNZ * m / MEMORY_SHAPE[0])
    out = subprocess.run(
        [sys.executable, "-m", "fastnn.benchmark._sparse_memory_probe", str(m), str(n),
         str(nnz), str(MEMORY_HIDDEN), np.dtype(dtype).name],
        check=True, capture_output=True, text=True).stdout
    x_mb, y_mb, before, peak, made = out.split()
    return {"m": m, "n": n, "nnz": int(made), "hidden": MEMORY_HIDDEN,
            "dtype": np.dtype(dtype).name, "x_mb": float(x_mb), "y_mb": float(y_mb),
            "resident_before_mb": float(before), "peak_mb": float(peak),
            "extra_mb": float(peak) - float(before)}


def run_sparse(dtypes, threads, repeats, scale=1.0, densities=DENSITIES, memory=True,
               progress=None, pause=PAUSE_S):
    """All three measurements (see the module's docstring).

    Returns
    -------
    dict
        ``"machine"``, ``"cost_and_grad"`` (:func:`run_sparse_cost_and_grad`), ``"training"``
        (:func:`run_sparse_training`) and ``"memory"`` (a list of :func:`epoch_memory`, one per
        dtype; empty when ``memory`` is False).
    """
    cost_and_grad = run_sparse_cost_and_grad(dtypes, threads, repeats, scale, densities,
                                             progress, pause)
    training = run_sparse_training(dtypes, threads, repeats, scale, progress, pause)
    memories = []
    for dtype in dtypes if memory else ():
        if progress:
            progress(f"memory of an adam epoch, {np.dtype(dtype)}")
        memories.append(epoch_memory(dtype, scale))
    return {"machine": machine(threads), "cost_and_grad": cost_and_grad, "training": training,
            "memory": memories}


def _describe(X, density):
    m, n = X.shape
    return f"{m:,} × {n:,}, density {100 * density:g} % ({X.nnz:,} nonzeros)"


def format_sparse_report(report):
    """The report of :func:`run_sparse` as text: a table per density and dtype, one per dtype
    of adam epochs, and a line per memory measurement."""
    lines = []
    by_case = {}
    for row in report["cost_and_grad"]:
        by_case.setdefault((row["density"], row["dtype"]), []).append(row)
    for (density, dtype), table in by_case.items():
        first = table[0]
        lines.append(f"J and ∇J, {first['m']:,} × {first['n']:,}, density {100 * density:g} % "
                     f"({first['nnz']:,} nonzeros), {'-'.join(map(str, first['layers']))}, "
                     f"{dtype}, λ = {LAMBDA:g}, {first['threads']} threads")
        lines.append(f"{'implementation':<15} {'X':<6} {'median ms':>10} {'× numpy':>8} "
                     f"{'J rel diff':>10} {'∇J rel diff':>11}")
        for r in table:
            lines.append(f"{r['implementation']:<15} {r['X']:<6} {r['median_s'] * 1e3:>10.2f} "
                         f"{r['vs_numpy']:>8.2f} {r['J_rel_diff']:>10.1e} "
                         f"{r['grad_rel_diff']:>11.1e}")
        if all(r["X"] != "dense" for r in table):
            lines.append(f"(dense copy {first['dense_bytes'] / 2**30:.1f} GiB, over "
                         f"{DENSE_LIMIT / 2**30:g} GiB: not run)")
        lines.append("")
    by_dtype = {}
    for row in report["training"]:
        by_dtype.setdefault(row["dtype"], []).append(row)
    for dtype, table in by_dtype.items():
        first = table[0]
        lines.append(f"{EPOCHS} adam epochs, {first['m']:,} × {first['n']:,}, density "
                     f"{100 * first['density']:g} % ({first['nnz']:,} nonzeros), "
                     f"{first['hidden']} hidden, batch {first['batch_size']}, "
                     f"{dtype}, {first['threads']} threads")
        lines.append(f"{'implementation':<15} {'X':<6} {'median s':>9} {'÷ sklearn':>9} "
                     f"{'epochs':>6} {'loss_':>9}")
        for r in table:
            lines.append(f"{r['implementation']:<15} {r['X']:<6} {r['median_s']:>9.3f} "
                         f"{r['vs_sklearn']:>9.2f} {r['epochs']:>6} {r['loss']:>9.5f}")
        lines.append("")
    for r in report["memory"]:
        lines.append(f"adam epoch {r['m']:,} × {r['n']:,}, {r['nnz']:,} nonzeros, "
                     f"{r['hidden']} hidden, {r['dtype']}: peak {r['extra_mb']:.1f} MiB above X "
                     f"(X is {r['x_mb']:.1f} MiB)")
    return "\n".join(lines)
