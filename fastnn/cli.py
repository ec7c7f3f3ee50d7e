"""The ``fastnn`` command: ``train``, ``predict``, ``gradcheck`` and ``bench``.

Exit status: 0 on success, 2 on bad usage (argparse), 1 on failure with one line on stderr.
"""

import argparse
import contextlib
import os
import sys
import time
import warnings

import numba
import numpy as np
import scipy.sparse

from fastnn._validation import check_lam
from fastnn.activations import ACTIVATIONS
from fastnn.backends import BACKENDS, available_backends, cluster_backends
from fastnn.cost import check_gradients, cost_and_grad
from fastnn.losses import LOSSES
from fastnn.network import init_weights, n_params, pack
from fastnn.trainer import SOLVERS, TrainingDiverged


class CommandError(Exception):
    """A failure to report in one line, exit status 1."""


SPARSE_NPZ_KEYS = {"format", "shape", "data"}
"""Arrays every file of ``scipy.sparse.save_npz`` holds, whatever the matrix's format."""


def _read_array_file(path, want_labels, y_path=None):
    """X (and y) from a ``.npz`` with arrays ``X`` (and ``y``), a ``.npz`` of a sparse X
    written by ``scipy.sparse.save_npz`` with y from the ``.npy`` file ``y_path``, or a
    ``.csv`` of numbers (the label in the last column when ``want_labels``)."""
    if not os.path.isfile(path):
        raise CommandError(f"data file not found: {path}")
    if path.endswith(".npz"):
        try:
            with open(path, "rb") as file, np.load(file, allow_pickle=False) as data:
                keys = set(data)
                sparse = "X" not in keys and SPARSE_NPZ_KEYS <= keys
                if not sparse and "X" not in keys:
                    raise CommandError(f"{path}: no array named 'X' (found {sorted(data)}), "
                                       "and not a sparse matrix of scipy.sparse.save_npz")
                X = None if sparse else data["X"]
                y = data["y"] if "y" in data else None
            if sparse:
                X = scipy.sparse.load_npz(path)
        except (ValueError, OSError) as error:
            raise CommandError(f"{path}: not a readable .npz file ({error})") from None
        if sparse:
            return X, _read_targets(y_path, path, X.shape[0], want_labels)
        if y_path is not None:
            raise CommandError(f"--y: only with a sparse X file (scipy.sparse.save_npz); "
                               f"{path} holds its own arrays X and y")
        if want_labels and y is None:
            raise CommandError(f"{path}: no array named 'y' with the labels")
        return X, y
    if y_path is not None:
        raise CommandError(f"--y: only with a sparse X file (scipy.sparse.save_npz), not "
                           f"{path}")
    if path.endswith(".csv"):
        table = _read_csv(path)
        if want_labels:
            if table.shape[1] < 2:
                raise CommandError(f"{path}: needs feature columns and a label column")
            y = table[:, -1]
            return table[:, :-1], (y.astype(np.int64) if np.array_equal(y, y.round()) else y)
        return table, None
    raise CommandError(f"{path}: expected a .npz or .csv file")


def _read_targets(y_path, x_path, m, required):
    """The targets of the sparse X in ``x_path`` (m rows), from the ``.npy`` file ``y_path``
    (``numpy.save``): an array of m rows, or None when not ``required`` and not given."""
    if y_path is None:
        if required:
            raise CommandError(f"{x_path}: a sparse X (scipy.sparse.save_npz) holds no "
                               "targets; give them with --y FILE.npy")
        return None
    if not os.path.isfile(y_path):
        raise CommandError(f"--y: file not found: {y_path}")
    try:
        y = np.load(y_path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise CommandError(f"--y {y_path}: not a readable .npy file ({error})") from None
    if not isinstance(y, np.ndarray) or y.ndim not in (1, 2) or y.shape[0] != m:
        raise CommandError(f"--y {y_path}: expected an array of {m} rows, one per row of "
                           f"{x_path}, got shape {np.shape(y)}")
    return y


def _read_csv(path):
    """The numbers of a CSV file, a row a line, as an array of shape (rows, columns).

    The first line is skipped, with a note on stderr, only when it is a header: no field of it
    is a number and some field is not empty (column names). Any other line that is not a row
    of numbers is an error naming the file and the line (1-based), so that a malformed first
    line is never dropped as if it were a header.
    """
    with open(path, encoding="utf-8", errors="replace") as file:
        header = _is_header(file.readline())
    if header:
        print(f"fastnn: {path}: line 1 read as column names, not data", file=sys.stderr)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            table = np.loadtxt(path, delimiter=",", ndmin=2, skiprows=int(header))
    except ValueError as error:
        reason = _first_bad_line(path, int(header)) or f"not a CSV file of numbers ({error})"
        raise CommandError(f"{path}: {reason}") from None
    if table.shape[0] == 0:
        raise CommandError(f"{path}: expected rows of comma-separated numbers, got none")
    return table


def _is_number(field):
    try:
        float(field)
    except ValueError:
        return False
    return True


def _is_header(line):
    """Whether a CSV file's first line is a header: no field a number, some field not empty."""
    fields = [field.strip() for field in line.split("#", 1)[0].split(",")]
    return any(fields) and not any(_is_number(field) for field in fields)


def _first_bad_line(path, skip):
    """Where and why the first line after the first ``skip`` lines of a CSV file is not a row
    of numbers as wide as the first row (``"line 4, column 3: ..."``, lines counted from 1,
    comments after ``#`` and blank lines passed over as ``np.loadtxt`` does), or None."""
    width = None
    with open(path, encoding="utf-8", errors="replace") as file:
        for number, line in enumerate(file, start=1):
            text = line.split("#", 1)[0]
            if number <= skip or not text.strip():
                continue
            fields = text.split(",")
            for column, field in enumerate(fields, start=1):
                if not _is_number(field):
                    return (f"line {number}, column {column}: expected a number, got "
                            f"{field.strip()!r}")
            if width is None:
                width, first = len(fields), number
            elif len(fields) != width:
                return (f"line {number}: expected {width} comma-separated numbers (as on line "
                        f"{first}), got {len(fields)}")
    return None


def load_data(name, seed, y_path=None):
    """The named data set: ``digits``, ``synthetic``, ``friedman``, or a file path (with the
    targets of a sparse X from ``y_path``)."""
    if y_path is not None and name in ("digits", "synthetic", "friedman"):
        raise CommandError(f"--y: only with a sparse X file (scipy.sparse.save_npz), not "
                           f"--data {name}")
    if name == "digits":
        from sklearn.datasets import load_digits

        return load_digits(return_X_y=True)
    if name == "synthetic":
        from sklearn.datasets import make_classification

        return make_classification(n_samples=5000, n_features=20, n_informative=12,
                                   n_classes=4, random_state=seed)
    if name == "friedman":
        from sklearn.datasets import make_friedman1

        return make_friedman1(n_samples=3000, noise=0.5, random_state=seed)
    return _read_array_file(name, want_labels=True, y_path=y_path)


MAX_CLASSES = 50
"""``--task auto`` takes a target with more distinct values than this for regression."""


def detect_task(y):
    """``("regression" | "classification", why)`` for ``--task auto``: regression when y has
    non-integer numbers or more than ``MAX_CLASSES`` distinct values, else classification."""
    y = np.asarray(y)
    if y.dtype.kind == "f" and not np.array_equal(y, np.round(y)):
        return "regression", "y has non-integer values"
    distinct = np.unique(y).shape[0]
    if y.dtype.kind in "iuf" and distinct > MAX_CLASSES:
        return "regression", f"y has {distinct} distinct values (> {MAX_CLASSES})"
    return "classification", f"y has {distinct} distinct values"


def train_command(args):
    """Train an MLPClassifier or MLPRegressor, report its scores and speed, save the model."""
    from sklearn.model_selection import train_test_split

    from fastnn.estimator import MLPClassifier, MLPRegressor

    X, y = load_data(args.data, args.seed, args.y)
    task, why = (args.task, "--task") if args.task != "auto" else detect_task(y)
    regression = task == "regression"
    stratify = None
    if not regression:
        counts = np.unique(y, return_counts=True)[1]
        stratify = y if counts.min() >= 2 else None
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=args.test_size, stratify=stratify, random_state=args.seed)
    except ValueError as error:
        raise CommandError(f"cannot split {args.data} into train and test: {error}") from None
    backend = args.backend
    if args.scheduler is not None:
        on_clusters = cluster_backends()
        if backend != "auto" and backend not in on_clusters:
            raise CommandError(f"--backend {backend}: with --scheduler the backend is "
                               f"{' or '.join(on_clusters)}")
        backend = on_clusters[0] if backend == "auto" else backend
    settings = dict(
        hidden_layer_sizes=tuple(args.hidden), alpha=args.alpha, solver=args.solver,
        learning_rate_init=args.lr, max_iter=args.max_iter, batch_size=args.batch_size,
        backend=backend, dtype=args.dtype, random_state=args.seed, progress=not args.quiet,
    )
    estimator = (MLPRegressor(**settings) if regression
                 else MLPClassifier(**settings, output=args.output))
    from sklearn.exceptions import ConvergenceWarning

    with contextlib.ExitStack() as cluster:
        if args.scheduler is not None:
            print(f"scheduler: {_connect(BACKENDS[backend], args.scheduler, cluster)}")
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # reported below as iterations
            estimator.fit(X_train, y_train, validation_data=(X_test, y_test))
        elapsed = time.perf_counter() - start
    estimator.save(args.out)
    layers = [X.shape[1], *args.hidden, estimator.thetas_[-1].shape[0]]
    target = ("real-valued target" if regression
              else f"{len(estimator.classes_)} classes")
    print(f"data {args.data}: {X_train.shape[0]} train, {X_test.shape[0]} test examples, "
          f"{target}; task {task} ({why}); network {'-'.join(map(str, layers))}, "
          f"{estimator.out_activation_} output, solver {args.solver}, λ = {args.alpha:g}")
    if regression:
        print(f"train R² {estimator.score(X_train, y_train):.4f}, test R² "
              f"{estimator.score(X_test, y_test):.4f}, test RMSE "
              f"{rmse(y_test, estimator.predict(X_test)):.4g}")
    else:
        print(f"train accuracy {estimator.score(X_train, y_train):.4f}, "
              f"test accuracy {estimator.score(X_test, y_test):.4f}")
    per_iteration = typical_iteration(estimator.history_["time"], elapsed)
    print(f"{estimator.n_iter_} iterations in {elapsed:.2f} s: median "
          f"{1e3 * per_iteration:.2f} ms per iteration (stopped: {estimator.history_.stopped})")
    print(f"model saved to {os.path.abspath(args.out)}")
    if args.plot:
        plot_history(estimator.history_, args.plot, "test R²" if regression else "test accuracy")
        print(f"plot saved to {os.path.abspath(args.plot)}")
    return 0


def typical_iteration(times, elapsed):
    """Seconds an iteration takes, from the history's times (since the start of the fit, one
    per iteration): the median of the intervals between them, so that Numba compiling kernels
    not cached yet — during the first iterations, and not only the first (a digits fit spent
    29 s before its first record and 7 s between its first and second) — does not count;
    ``elapsed`` for a fit of a single iteration."""
    if len(times) < 2:
        return elapsed
    return float(np.median(np.diff(times)))


def rmse(y, prediction):
    """The root of the mean squared error over examples and outputs."""
    return float(np.sqrt(np.mean(np.square(np.asarray(y, np.float64) - prediction))))


def _connect(backend, scheduler, stack):
    """``backend`` computing, until ``stack`` closes, on the cluster ``--scheduler`` names
    (:meth:`fastnn.backends.Backend.cluster`); returns the cluster's description."""
    try:
        return stack.enter_context(backend.cluster(scheduler))
    except (ImportError, ConnectionError) as error:
        raise CommandError(f"--scheduler: {error}") from None


def plot_history(history, path, score_name):
    """Cost and held-out score (accuracy or R²) per iteration, to a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CommandError("--plot needs matplotlib: pip install 'fastnn[plot]'") from None
    iterations = history["iteration"]
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(7, 6))
    top.plot(iterations, history["cost"], label="training cost J (with penalty)")
    top.plot(iterations, history["val_cost"], label="test cost (data term)")
    top.set_ylabel("cost")
    top.set_yscale("log")
    top.legend()
    bottom.plot(iterations, history["val_score"], color="tab:green")
    bottom.set_ylabel(score_name)
    bottom.set_xlabel("iteration")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def predict_command(args):
    """Predictions for the rows of DATA, one per line: a label, a value, or a row of values
    (comma-separated) for a model of several outputs."""
    from sklearn.base import is_regressor

    from fastnn.estimator import load

    if not os.path.isfile(args.model):
        raise CommandError(f"model file not found: {args.model}")
    estimator = load(args.model)
    X, y = _read_array_file(args.data, want_labels=False, y_path=args.y)
    if X.ndim != 2 or X.shape[1] != estimator.n_features_in_:
        raise CommandError(f"{args.data}: X has shape {X.shape}, the model expects "
                           f"{estimator.n_features_in_} features per row")
    predictions = estimator.predict(X)
    if y is not None:
        if is_regressor(estimator):
            if np.shape(y) != predictions.shape:
                raise CommandError(f"{args.data}: y has shape {np.shape(y)}, the model "
                                   f"predicts shape {predictions.shape}")
            print(f"R² {estimator.score(X, y):.4f}, RMSE {rmse(y, predictions):.4g} on "
                  f"{len(y)} examples", file=sys.stderr)
        else:
            unseen = np.setdiff1d(np.unique(y), estimator.classes_)
            if unseen.size:
                raise CommandError(f"{args.data}: y has labels the model has not seen: "
                                   f"{unseen[:5].tolist()}")
            print(f"accuracy {np.mean(predictions == y):.4f} on {len(y)} examples",
                  file=sys.stderr)
    lines = "".join(f"{_format_prediction(row)}\n" for row in predictions)
    if args.out:
        with open(args.out, "w") as file:
            file.write(lines)
    else:
        sys.stdout.write(lines)
    return 0


def _format_prediction(row):
    """A label as is; a value in the fewest digits that read back to it (float64); a row of
    values comma-separated."""
    if isinstance(row, np.ndarray):
        return ",".join(_format_prediction(value) for value in row)
    return repr(float(row)) if isinstance(row, np.floating) else str(row)


def gradcheck_command(args):
    """Cost and gradient of one random network with every backend, and the gradient check."""
    layers = args.layers
    rng = np.random.default_rng(args.seed)
    thetas = init_weights(layers, seed=rng)
    check_lam(args.lam)
    X = rng.normal(size=(args.m, layers[0]))
    y = rng.integers(0, layers[-1] if layers[-1] > 1 else 2, size=args.m)
    options = {"lam": args.lam, "loss": args.loss, "activation": args.activation}
    print(f"network {'-'.join(map(str, layers))} ({n_params(layers)} weights), m = {args.m}, "
          f"λ = {args.lam}, {args.loss}, {args.activation} hidden units")
    print(f"{'backend':<16}{'J':>22}{'max |∇J - ∇J numpy|':>22}{'gradient check':>16}"
          f"{'time':>10}")
    reference = None
    worst = 0.0
    for backend in available_backends():
        cost_and_grad(thetas, X, y, backend=backend, **options)  # compiled or loaded from cache
        start = time.perf_counter()
        J, grads = cost_and_grad(thetas, X, y, backend=backend, **options)
        elapsed = time.perf_counter() - start
        grad = pack(grads)
        reference = grad if reference is None else reference
        err = check_gradients(thetas, X, y, backend=backend, **options)
        worst = max(worst, err)
        print(f"{backend:<16}{J:>22.16f}{np.abs(grad - reference).max():>22.2e}{err:>16.2e}"
              f"{elapsed * 1e3:>8.1f}ms")
    passed = worst < args.tolerance
    print(f"relative difference ‖num − backprop‖ / ‖num + backprop‖ "
          f"{'<' if passed else '>='} {args.tolerance:g}: {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


def bench_command(args):
    """Time cost and gradient, or with ``--training`` training, with ``--sparse`` both on a
    sparse X, side by side; print tables."""
    from fastnn import benchmark

    if args.repeats < 1:
        raise CommandError(f"--repeats: expected at least 1, got {args.repeats}")
    if not 0 < args.scale <= 1:
        raise CommandError(f"--scale: expected a fraction in (0, 1], got {args.scale}")
    contention_only = {"--busy": args.busy, "--no-first-run": args.no_first_run or None}
    for option, value in contention_only.items():
        if value is not None and not args.contention:
            raise CommandError(f"{option}: only with --contention")
    sparse_only = {"--no-memory": args.no_memory or None, "--densities": args.densities}
    for option, value in sparse_only.items():
        if value is not None and not args.sparse:
            raise CommandError(f"{option}: only with --sparse")
    if args.contention:
        return _contention(args)
    if args.sparse:
        return _sparse(args)
    dtypes = _bench_dtypes(args)
    available = (benchmark.training_implementations() if args.training
                 else benchmark.implementations())
    names = args.implementations or list(available)
    missing = [name for name in names if name not in available]
    if missing:
        raise CommandError(f"not installed: {', '.join(missing)} (available: "
                           f"{', '.join(available)})")
    threads = _bench_threads(args)
    training_only = {"--solvers": args.solvers, "--batch-sizes": args.batch_sizes,
                     "--lbfgs-iter": args.lbfgs_iter}
    for option, value in training_only.items():
        if value is not None and not args.training:
            raise CommandError(f"{option}: only with --training")
    if args.training and args.plot:
        raise CommandError("--plot: only for the cost-and-gradient tables, not with --training")
    progress = None if args.quiet else (lambda text: print(f"  {text}", file=sys.stderr))
    if args.training:
        batch_sizes = args.batch_sizes or benchmark.BATCH_SIZES
        if min(batch_sizes) < 1:
            raise CommandError(f"--batch-sizes: expected sizes of at least 1, got {batch_sizes}")
        lbfgs_iter = benchmark.LBFGS_ITER if args.lbfgs_iter is None else args.lbfgs_iter
        if lbfgs_iter < 1:
            raise CommandError(f"--lbfgs-iter: expected at least 1, got {lbfgs_iter}")
        runs = [run for run in benchmark.training_runs(
                    args.solvers or benchmark.TRAINING_SOLVERS, batch_sizes, lbfgs_iter)
                if not args.workloads or run.workload.name in args.workloads]
        if not runs:
            raise CommandError(f"--workloads: no training runs on {', '.join(args.workloads)} "
                               "(mnist has the adam and sgd epochs, digits and ex4 L-BFGS)")
        report = benchmark.run_training(dtypes, names, threads, args.repeats, scale=args.scale,
                                        runs=runs, progress=progress)
        print(benchmark.format_training_report(report))
    else:
        workloads = args.workloads or list(benchmark.WORKLOADS)
        report = benchmark.run_benchmarks(workloads, dtypes, names, threads, args.repeats,
                                          scale=args.scale, progress=progress)
        print(benchmark.format_report(report))
    if args.json:
        benchmark.write_json(report, args.json)
        print(f"wrote {args.json}")
    if args.plot:
        benchmark.plot_report(report, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _bench_dtypes(args):
    return ["float64", "float32"] if args.dtype == "both" else [args.dtype]


def _bench_threads(args):
    """``--threads``, checked; ``NUMBA_NUM_THREADS`` when not given."""
    most = numba.config.NUMBA_NUM_THREADS
    threads = most if args.threads is None else args.threads
    if not 1 <= threads <= most:
        raise CommandError(f"--threads: expected 1 to {most} (NUMBA_NUM_THREADS), got {threads}")
    return threads


def _sparse(args):
    """``fastnn bench --sparse``: J and ∇J and adam epochs on a tf-idf-shaped CSR X, and the
    memory of an epoch."""
    from fastnn.benchmark import sparse, write_json

    others = {"--training": args.training, "--workloads": args.workloads,
              "--implementations": args.implementations, "--plot": args.plot,
              "--solvers": args.solvers, "--batch-sizes": args.batch_sizes,
              "--lbfgs-iter": args.lbfgs_iter}
    for option, value in others.items():
        if value:
            raise CommandError(f"{option}: not with --sparse")
    threads = _bench_threads(args)
    densities = args.densities or sparse.DENSITIES
    if not all(0 < density <= 0.5 for density in densities):
        raise CommandError(f"--densities: expected fractions in (0, 0.5], got {densities}")
    progress = None if args.quiet else (lambda text: print(f"  {text}", file=sys.stderr))
    report = sparse.run_sparse(_bench_dtypes(args), threads, args.repeats, scale=args.scale,
                               densities=densities, memory=not args.no_memory,
                               progress=progress)
    print(sparse.format_sparse_report(report))
    if args.json:
        write_json(report, args.json)
        print(f"wrote {args.json}")
    return 0


def _contention(args):
    """``fastnn bench --contention``: the contention table and the first-run time."""
    from fastnn.benchmark import contention, write_json

    busy = args.busy or contention.BUSY
    if min(busy) < 0:
        raise CommandError(f"--busy: expected numbers of processes, at least 0, got {busy}")
    others = {"--training": args.training, "--sparse": args.sparse,
              "--workloads": args.workloads, "--implementations": args.implementations,
              "--threads": args.threads, "--plot": args.plot}
    for option, value in others.items():
        if value:
            raise CommandError(f"{option}: not with --contention")
    progress = None if args.quiet else (lambda text: print(f"  {text}", file=sys.stderr))
    report = contention.run_contention(busy, repeats=args.repeats, scale=args.scale,
                                       progress=progress)
    first = None
    if not args.no_first_run:
        if progress:
            progress("fastnn train on an empty Numba cache")
        first = contention.first_run()
    print(contention.format_contention_report(report, first))
    if args.json:
        write_json({"medians": contention.medians(report), "first_run": first, **report},
                   args.json)
        print(f"wrote {args.json}")
    return 0


def _batch_size(text):
    return text if text == "auto" else int(text)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastnn", description="Fully connected networks trained by backpropagation, fast."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", help="train a classifier or a regressor and save it",
        description="Train an MLPClassifier on a stratified split (train and test accuracy) "
        "or an MLPRegressor on a random split (train and test R², test RMSE), report the "
        "time per iteration, and save the model.")
    train.add_argument("--data", default="digits",
                       help="digits (default; scikit-learn's 8x8 handwritten digits), "
                       "synthetic (4 classes), friedman (regression: make_friedman1, 3000 "
                       "rows), or a .npz file with arrays X and y, or a .csv file with the "
                       "target in the last column, or a sparse X written by "
                       "scipy.sparse.save_npz (.npz) with its targets in --y")
    train.add_argument("--y", metavar="FILE.npy",
                       help="the targets of a sparse X file: a .npy file (numpy.save) of one "
                       "label, value or row of targets per row of X")
    train.add_argument("--task", choices=("auto", "classification", "regression"),
                       default="auto",
                       help="auto (default): regression when y has non-integer values or more "
                       f"than {MAX_CLASSES} distinct values, else classification")
    train.add_argument("--hidden", type=int, nargs="+", default=[25], metavar="UNITS",
                       help="units of each hidden layer (default: 25)")
    train.add_argument("--alpha", type=float, default=1.0, help="λ, the L2 penalty (default: 1)")
    train.add_argument("--output", choices=("auto", "sigmoid"), default="auto",
                       help="classification's output layer: auto (default), scikit-learn's "
                       "(softmax for several classes); sigmoid, one sigmoid unit per class "
                       "(the one-vs-all formulation of the seeds)")
    train.add_argument("--solver", choices=SOLVERS, default="lbfgs")
    train.add_argument("--lr", type=float, default=1e-3,
                       help="learning rate of gd, sgd and adam (default: 0.001)")
    train.add_argument("--max-iter", type=int, default=400,
                       help="iterations (lbfgs, gd) or epochs (sgd, adam) (default: 400)")
    train.add_argument("--batch-size", type=_batch_size, default="auto",
                       help="mini-batch size of sgd and adam (default: auto, min(200, m))")
    train.add_argument("--backend", choices=("auto", *BACKENDS), default="auto")
    train.add_argument("--scheduler", metavar="ADDRESS|local",
                       help="train on a Dask cluster: a scheduler's address, or local for a "
                       "LocalCluster with one worker process per core (needs fastnn[dask])")
    train.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--test-size", type=float, default=0.25,
                       help="fraction held out for testing (default: 0.25)")
    train.add_argument("--out", default="model.npz", help="model file (default: model.npz)")
    train.add_argument("--plot", metavar="FILE.png",
                       help="plot cost and test accuracy (or R²) per iteration (needs "
                       "matplotlib)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=train_command)

    predict = commands.add_parser(
        "predict", help="predict labels or values with a saved model",
        description="Write one prediction per line for the rows of DATA (a .npz with an "
        "array X, or a .csv of features): a label, a value, or the comma-separated values of "
        "a model with several outputs. If the .npz also has y, or --y is given with a sparse "
        "X, the accuracy (or R² and RMSE) goes to stderr.")
    predict.add_argument("model", help="a model file written by fastnn train")
    predict.add_argument("data", help="a .npz file with an array X, a .npz of a sparse X "
                         "written by scipy.sparse.save_npz, or a .csv of features (a first "
                         "line of column names is skipped)")
    predict.add_argument("--y", metavar="FILE.npy",
                         help="targets of a sparse X file (numpy.save), to score the "
                         "predictions")
    predict.add_argument("--out", help="write the predictions to this file instead of stdout")
    predict.set_defaults(run=predict_command)

    check = commands.add_parser(
        "gradcheck",
        help="compare backpropagation with central differences, for every backend",
        description="Build a random network, compute J and ∇J with every backend, and compare "
        "each gradient with central differences (step 1e-4).",
    )
    check.add_argument("--layers", type=int, nargs="+", default=[3, 5, 3], metavar="S",
                       help="layer sizes s_1 ... s_L (default: 3 5 3)")
    check.add_argument("--m", type=int, default=5, help="number of examples (default: 5)")
    check.add_argument("--lam", type=float, default=1.0, help="λ (default: 1)")
    check.add_argument("--loss", choices=list(LOSSES), default="cross_entropy")
    check.add_argument("--activation", choices=list(ACTIVATIONS), default="sigmoid")
    check.add_argument("--seed", type=int, default=0)
    check.add_argument("--tolerance", type=float, default=1e-7,
                       help="largest relative difference that passes (default: 1e-7; a correct "
                       "float64 gradient gives about 1e-10 on small sigmoid networks)")
    check.set_defaults(run=gradcheck_command)

    bench = commands.add_parser(
        "bench", help="time cost and gradient, or training, against the NumPy fallback and "
        "installed peers",
        description="Time one full-batch cost-and-gradient evaluation per workload, dtype and "
        "implementation (fastnn's Numba kernels, its NumPy fallback, scikit-learn's and "
        "PyTorch's MLP gradients where installed), side by side in this process, with the "
        "machine's matrix-multiply peak and the difference of J and its gradient from a "
        "float64 reference. With --training, time training instead: one epoch of adam and of "
        "sgd per batch size on mnist (784-128-10), and L-BFGS iterations on digits (64-25-10) "
        "and ex4 (400-25-10), every implementation from the same initial weights, each time "
        "printed with the cost J the weights reached. With --sparse, the same on a sparse "
        "X, and fastnn's estimator beside scikit-learn's.")
    bench.add_argument("--training", action="store_true",
                       help="time training (per epoch, per L-BFGS iteration) instead of cost "
                       "and gradient")
    bench.add_argument("--contention", action="store_true",
                       help="time whole fits of fastnn and scikit-learn in turns, idle and "
                       "beside busy processes (digits adam and L-BFGS, an mnist adam epoch, a "
                       "GridSearchCV with n_jobs=2), and the first fastnn train on an empty "
                       "Numba cache")
    bench.add_argument("--sparse", action="store_true",
                       help="time J and its gradient (fastnn on a tf-idf-shaped CSR X and on "
                       "its dense copy, 20,000 x 20,000 at densities 0.1 %% to 10 %%) and 2 adam "
                       "epochs (fastnn and scikit-learn on the CSR, density 0.5 %%), and measure "
                       "the memory of an adam epoch on 100,000 x 50,000 with 10 M nonzeros")
    bench.add_argument("--no-memory", action="store_true",
                       help="with --sparse: skip the memory of an adam epoch")
    bench.add_argument("--densities", type=float, nargs="+", metavar="D",
                       help="with --sparse: fractions of nonzero entries of the J-and-gradient "
                       "tables (default: 0.001 0.005 0.01 0.05 0.1)")
    bench.add_argument("--busy", type=int, nargs="+", metavar="N",
                       help="with --contention: numbers of busy processes beside the fits "
                       "(default: 0 1 2)")
    bench.add_argument("--no-first-run", action="store_true",
                       help="with --contention: skip the first-run timing")
    bench.add_argument("--workloads", nargs="+", choices=list(_benchmark_workloads()),
                       metavar="NAME", help="digits, ex4, mnist, deep, wide-m (default: all; "
                       "with --training: mnist, digits, ex4)")
    bench.add_argument("--dtype", choices=("float64", "float32", "both"), default="both")
    bench.add_argument("--implementations", nargs="+", metavar="NAME",
                       help="numba-parallel, numba, numpy, sklearn, torch, numpy-script (not "
                       "with --training), and with --training auto (the estimator's default "
                       "backend) (default: all installed)")
    bench.add_argument("--threads", type=int,
                       help="threads for every implementation (default: NUMBA_NUM_THREADS)")
    bench.add_argument("--repeats", type=int, default=5,
                       help="timed calls (with --training: timed runs) per case after one "
                       "warm-up (default: 5)")
    bench.add_argument("--scale", type=float, default=1.0,
                       help="fraction of each workload's m to use (default: 1; with --sparse, "
                       "of the rows of every X)")
    from fastnn.benchmark import BATCH_SIZES, LBFGS_ITER, TRAINING_SOLVERS

    bench.add_argument("--solvers", nargs="+", choices=TRAINING_SOLVERS,
                       help="with --training: the solvers to time (default: "
                       f"{' '.join(TRAINING_SOLVERS)})")
    bench.add_argument("--batch-sizes", type=int, nargs="+", metavar="B",
                       help="with --training: mini-batch sizes of adam and sgd (default: "
                       f"{' '.join(map(str, BATCH_SIZES))})")
    bench.add_argument("--lbfgs-iter", type=int, metavar="N",
                       help="with --training: L-BFGS iterations per timed run (default: "
                       f"{LBFGS_ITER})")
    bench.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bench.add_argument("--plot", metavar="FILE.png",
                       help="bar chart of time relative to the fastest peer (needs matplotlib; "
                       "not with --training)")
    bench.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    bench.set_defaults(run=bench_command)
    return parser


def _benchmark_workloads():
    from fastnn.benchmark import WORKLOADS

    return WORKLOADS


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (CommandError, TrainingDiverged, ValueError, TypeError, OSError) as error:
        print(f"fastnn {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"fastnn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
