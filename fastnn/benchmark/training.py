"""Training side by side: time per epoch of mini-batch adam and sgd, and per L-BFGS iteration.

Every implementation trains the same network on the same data from the same initial weights θ0,
with the same batch size and number of updates, and its time is reported with the objective J
its weights reach, computed for all of them by one function (fastnn's float64 NumPy
:class:`~fastnn.Objective`), so that speed is never shown without the result.

The objective is J(Θ) of fastnn with λ = :data:`~fastnn.benchmark.LAMBDA` (the cost-and-gradient
tables' λ): logistic hidden and output units, the binary cross-entropy summed over the K outputs
and averaged over the examples of a batch, plus (λ/2m) Σ W² with m the number of training
examples on every batch. How each implementation runs it:

``numba-parallel``, ``numba``, ``numpy``, ``auto``
    :func:`fastnn.train` on an :class:`~fastnn.Objective` built once per workload (``auto`` is
    the backend the estimator picks by default).
``sklearn``
    ``sklearn.neural_network.MLPClassifier(activation="logistic")`` fit on the one-hot target
    matrix (which gives it sigmoid outputs and the binary log loss), with ``warm_start`` from θ0
    set into ``coefs_[l] = Θ(l)[:, 1:]ᵀ`` and ``intercepts_[l] = Θ(l)[:, 0]``; ``max_iter=1``
    makes one ``fit`` one epoch (a fresh optimizer each call, as :func:`fastnn.train`).
    scikit-learn divides its penalty by the batch's own size b' instead of m: ``alpha = λ b / m``
    makes it (λ/2m) Σ W² on every full batch, but on the last batch of an epoch, when b does not
    divide m, its penalty is b / b' times fastnn's. For L-BFGS, ``alpha = λ`` exactly. Its
    float32 L-BFGS computes in float64 after the first evaluation (it puts SciPy's float64
    parameters into ``coefs_``).
``torch``
    A plain loop: ``torch.nn.Linear`` layers (weight Θ(l)[:, 1:], bias Θ(l)[:, 0]) with
    sigmoids between them, ``binary_cross_entropy_with_logits(..., reduction="sum") / b`` plus
    the penalty written out, ``torch.optim.Adam`` or ``SGD(momentum=0.9, nesterov=True)`` over
    the batches of a ``torch.randperm``, and ``torch.optim.LBFGS`` with the strong-Wolfe line
    search. Its Adam adds ε to the bias-corrected √v̂, where fastnn and scikit-learn add it to √v:
    written as theirs, α √(1 − β₂ᵗ) / (1 − β₁ᵗ) · m / (√v + ε), PyTorch's step has ε √(1 − β₂ᵗ)
    in place of ε (about ε / 32 at the first step); the tests bound the effect on J of one
    full-batch step by 1e-5 relative.

Differences no setting removes: the three shuffle the examples in different orders (each the same
order every run), so after an epoch of more than one batch their J differ a little; and L-BFGS
differs in its line search (fastnn's strong-Wolfe search, SciPy's L-BFGS-B for scikit-learn,
PyTorch's strong-Wolfe search), so in the evaluations per iteration, which the time per
iteration includes, and in the path it takes. fastnn and SciPy also end a run early when J
decreases by less than a relative 2.2e-9 (``ftol``), PyTorch when an iteration cannot step; the
time is divided by the iterations each run did.
"""

import time
import warnings
from itertools import pairwise
from typing import NamedTuple

import numpy as np

from fastnn._validation import check_choice
from fastnn.benchmark.peers import FASTNN, OPTIONAL_PEERS, PEERS, installed
from fastnn.benchmark.report import machine
from fastnn.benchmark.threads import PAUSE_S, threads_for
from fastnn.benchmark.workloads import LAMBDA, WORKLOADS, Workload, make_data
from fastnn.cost import Objective
from fastnn.lbfgs import EVALUATIONS_PER_ITERATION, HISTORY
from fastnn.network import pack, unpack
from fastnn.trainer import train

TRAINING_WORKLOADS = {
    "mnist": WORKLOADS["mnist"],
    "digits": Workload("digits", (64, 25, 10), 1_797),
    "ex4": WORKLOADS["ex4"],
}
"""Mini-batch epochs on MNIST-shaped data (uniform random inputs and labels, as in the
cost-and-gradient tables); L-BFGS on scikit-learn's digits with 25 hidden units (``fastnn
train``'s default network) and on the classic exercise's 400-25-10."""

MINIBATCH_WORKLOAD = "mnist"
LBFGS_WORKLOADS = ("digits", "ex4")
TRAINING_SOLVERS = ("adam", "sgd", "lbfgs")
BATCH_SIZES = (64, 200, 1024)
"""Mini-batch sizes: a small one, scikit-learn's default (``batch_size="auto"`` is 200) and a
large one."""
LEARNING_RATE = 1e-3
"""α of adam and sgd: scikit-learn's ``learning_rate_init`` default, and fastnn's."""
MOMENTUM = 0.9
"""μ of sgd (Nesterov's momentum): scikit-learn's default, and fastnn's."""
LBFGS_ITER = 100
"""L-BFGS iterations per timed run, with ``tol = 0``: none stops on a small gradient. fastnn's
limits on evaluations of J per iteration and corrections kept
(:data:`fastnn.lbfgs.EVALUATIONS_PER_ITERATION`, :data:`fastnn.lbfgs.HISTORY`, SciPy's
``maxcor``, which scikit-learn uses) are given to scikit-learn (``max_fun``) and PyTorch
(``max_eval``, ``history_size``) too."""


class TrainingRun(NamedTuple):
    """One kind of timed training run.

    Attributes
    ----------
    workload : Workload
    solver : {"adam", "sgd", "lbfgs"}
    batch_size : int or None
        Examples per mini-batch (clipped to m); None for L-BFGS, which takes the full batch.
    max_iter : int
        Epochs (adam, sgd) or L-BFGS iterations of one run.
    """

    workload: Workload
    solver: str
    batch_size: int | None
    max_iter: int

    @property
    def unit(self):
        """What one iteration of the run is: ``"epoch"`` or ``"iteration"`` (of L-BFGS)."""
        return "iteration" if self.solver == "lbfgs" else "epoch"

    def batch(self, m):
        """The examples per update, with m examples."""
        return m if self.batch_size is None else min(self.batch_size, m)


def training_runs(solvers=TRAINING_SOLVERS, batch_sizes=BATCH_SIZES, lbfgs_iter=LBFGS_ITER):
    """The runs of the training tables.

    Parameters
    ----------
    solvers : sequence of {"adam", "sgd", "lbfgs"}
    batch_sizes : sequence of int
        Mini-batch sizes of adam and sgd, each at least 1.
    lbfgs_iter : int
        L-BFGS iterations per run, at least 1.

    Returns
    -------
    list of TrainingRun
        One epoch per solver and batch size on mnist, ``lbfgs_iter`` L-BFGS iterations on
        digits and on ex4.
    """
    for solver in solvers:
        check_choice(solver, "solvers", TRAINING_SOLVERS)
    if any(size < 1 for size in batch_sizes):
        raise ValueError(f"batch_sizes: expected sizes of at least 1, got {list(batch_sizes)}")
    if lbfgs_iter < 1:
        raise ValueError(f"lbfgs_iter: expected at least 1, got {lbfgs_iter}")
    runs = []
    for solver in solvers:
        if solver == "lbfgs":
            runs += [TrainingRun(TRAINING_WORKLOADS[name], solver, None, lbfgs_iter)
                     for name in LBFGS_WORKLOADS]
        else:
            runs += [TrainingRun(TRAINING_WORKLOADS[MINIBATCH_WORKLOAD], solver, size, 1)
                     for size in batch_sizes]
    return runs


def training_implementations():
    """Names of the implementations that can train here: fastnn's backends, ``auto``, peers."""
    return (*FASTNN, "auto", *(name for name in OPTIONAL_PEERS if installed(name)))


class _FastnnTraining:
    """:func:`fastnn.train` on an :class:`~fastnn.Objective` built once (``backend``)."""

    def __init__(self, backend, layers, X, y, dtype):
        self.objective = Objective(layers, X, y, LAMBDA, backend=backend, dtype=dtype)
        # auto may pick NumPy for some batches: its BLAS keeps all threads (the trainer itself
        # holds BLAS to one thread around the Numba backends)
        self.threads_name = backend
        self.theta = None

    def load(self, theta):
        self.theta = np.array(theta, dtype=self.objective.dtype)

    def weights(self):
        return self.theta

    def train(self, run):
        result = train(self.objective, self.theta, solver=run.solver,
                       learning_rate=LEARNING_RATE, max_iter=run.max_iter,
                       batch_size=run.batch(self.objective.m), momentum=MOMENTUM, nesterov=True,
                       tol=0.0, n_iter_no_change=0, random_state=0)
        self.theta = result.theta
        return len(result.history)


class _SklearnTraining:
    """scikit-learn's MLPClassifier, ``warm_start`` from the loaded weights; ``fit`` is one run."""

    threads_name = "sklearn"

    def __init__(self, layers, X, y, dtype):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        self.layers = tuple(layers)
        self.X, self.Y = X, np.eye(layers[-1], dtype=dtype)[y]
        self.clf = MLPClassifier(hidden_layer_sizes=layers[1:-1], activation="logistic",
                                 solver="sgd", max_iter=1, tol=0.0, momentum=MOMENTUM,
                                 nesterovs_momentum=True, learning_rate_init=LEARNING_RATE,
                                 shuffle=True, warm_start=True, random_state=0)
        # Gives the classifier its layers, classes and dtype; load() replaces the weights.
        rows = slice(0, layers[-1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.clf.fit(self.X[rows], self.Y[rows])

    def load(self, theta):
        thetas = unpack(theta, self.layers)
        self.clf.coefs_ = [Theta[:, 1:].T.copy() for Theta in thetas]
        self.clf.intercepts_ = [Theta[:, 0].copy() for Theta in thetas]

    def weights(self):
        return pack([np.column_stack([b, W.T])
                     for W, b in zip(self.clf.coefs_, self.clf.intercepts_)])

    def train(self, run):
        m = len(self.Y)
        self.clf.set_params(solver=run.solver, batch_size=run.batch(m), max_iter=run.max_iter,
                            alpha=LAMBDA * run.batch(m) / m,
                            max_fun=EVALUATIONS_PER_ITERATION * run.max_iter)
        self.clf.fit(self.X, self.Y)
        return self.clf.n_iter_


class _TorchTraining:
    """A PyTorch CPU training loop over ``torch.nn.Linear`` layers with sigmoids between them."""

    threads_name = "torch"

    def __init__(self, layers, X, y, dtype):
        import torch

        self.layers = tuple(layers)
        self.X = torch.from_numpy(X)
        self.Y = torch.nn.functional.one_hot(torch.as_tensor(y, dtype=torch.int64),
                                             layers[-1]).to(self.X.dtype)
        self.linears = [torch.nn.Linear(s_in, s_out, dtype=self.X.dtype)
                        for s_in, s_out in pairwise(layers)]
        hidden = [module for linear in self.linears[:-1]
                  for module in (linear, torch.nn.Sigmoid())]
        self.model = torch.nn.Sequential(*hidden, self.linears[-1])

    def load(self, theta):
        import torch

        with torch.no_grad():
            for linear, Theta in zip(self.linears, unpack(theta, self.layers)):
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(Theta[:, 1:])))
                linear.bias.copy_(torch.from_numpy(np.ascontiguousarray(Theta[:, 0])))

    def weights(self):
        return pack([np.column_stack([linear.bias.detach().numpy(),
                                      linear.weight.detach().numpy()])
                     for linear in self.linears])

    def cost(self, X, Y):
        """J of the batch (X, Y): (1/b) Σ cross-entropy terms + (λ/2m) Σ W²."""
        import torch

        data = torch.nn.functional.binary_cross_entropy_with_logits(
            self.model(X), Y, reduction="sum") / len(X)
        penalty = sum((linear.weight**2).sum() for linear in self.linears)
        return data + LAMBDA / (2 * len(self.X)) * penalty

    def train(self, run):
        import torch

        params = list(self.model.parameters())
        if run.solver == "lbfgs":
            optimizer = torch.optim.LBFGS(
                params, max_iter=run.max_iter, max_eval=EVALUATIONS_PER_ITERATION * run.max_iter,
                tolerance_grad=0.0, tolerance_change=0.0, history_size=HISTORY,
                line_search_fn="strong_wolfe")

            def closure():
                optimizer.zero_grad()
                J = self.cost(self.X, self.Y)
                J.backward()
                return J

            optimizer.step(closure)
            return optimizer.state[params[0]]["n_iter"]  # where LBFGS keeps its counts
        if run.solver == "adam":
            optimizer = torch.optim.Adam(params, lr=LEARNING_RATE)
        else:
            optimizer = torch.optim.SGD(params, lr=LEARNING_RATE, momentum=MOMENTUM,
                                        nesterov=True)
        m, b = len(self.X), run.batch(len(self.X))
        generator = torch.Generator().manual_seed(0)
        for _ in range(run.max_iter):
            order = torch.randperm(m, generator=generator)
            for start in range(0, m, b):
                rows = order[start:start + b]
                optimizer.zero_grad()
                self.cost(self.X[rows], self.Y[rows]).backward()
                optimizer.step()
        return run.max_iter


def _fastnn(backend):
    def prepare(layers, X, y, dtype):
        return _FastnnTraining(backend, layers, X, y, dtype)

    return prepare


PREPARE_TRAINING = {
    "numba-parallel": _fastnn("numba-parallel"),
    "numba": _fastnn("numba"),
    "numpy": _fastnn("numpy"),
    "auto": _fastnn("auto"),
    "sklearn": _SklearnTraining,
    "torch": _TorchTraining,
}
"""Implementation name → ``prepare(layers, X, y, dtype)``, returning a trainer with
``load(θ)`` (set its weights from θ, of shape (P,)), ``train(run)`` (one :class:`TrainingRun`
from the loaded weights; returns the epochs or iterations done), ``weights()`` (its weights as
θ, of shape (P,)) and ``threads_name`` (the name :func:`threads_for` holds its threads by)."""


def time_training(trainers, run, theta, threads, repeats, pause=PAUSE_S, rounds=3):
    """Times of ``repeats`` runs of each trainer from θ0, the trainers taking turns.

    As :func:`~fastnn.benchmark.time_interleaved` times calls: ``rounds`` turns per trainer
    (fewer if ``repeats`` is smaller), ``pause`` seconds after each turn. But the untimed run
    comes only in a trainer's first turn (Numba's compilation or cache load, the peers'
    first-call set-up), as a run is a whole epoch or many iterations, and the epochs or
    iterations of every timed run are kept. Each run starts from θ0, loaded before the clock
    starts.

    Parameters
    ----------
    trainers : dict of str to trainer
        Implementation name → a trainer of :data:`PREPARE_TRAINING`.
    run : TrainingRun
    theta : ndarray of shape (P,)
        θ0.
    threads, repeats, pause, rounds : int, int, float, int
        As for :func:`~fastnn.benchmark.time_interleaved`, with runs in place of calls.

    Returns
    -------
    times : dict of str to list of float
        Seconds of each timed run.
    iterations : dict of str to list of int
        Epochs or L-BFGS iterations each timed run did.
    """
    from sklearn.exceptions import ConvergenceWarning

    rounds = max(1, min(rounds, repeats))
    runs_per_turn = -(-repeats // rounds)
    times = {name: [] for name in trainers}
    iterations = {name: [] for name in trainers}
    with warnings.catch_warnings():
        # max_iter ends every run; scikit-learn and fastnn's L-BFGS warn about that.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for turn in range(rounds):
            for name, trainer in trainers.items():
                with threads_for(trainer.threads_name, threads):
                    if turn == 0:
                        trainer.load(theta)
                        trainer.train(run)
                    for _ in range(runs_per_turn):
                        trainer.load(theta)
                        start = time.perf_counter()
                        done = trainer.train(run)
                        times[name].append(time.perf_counter() - start)
                        iterations[name].append(int(done))
                time.sleep(pause)
    return times, iterations


def run_training(dtypes, names, threads, repeats, scale=1.0, runs=None, progress=None,
                 pause=PAUSE_S):
    """Time every implementation in ``names`` on every training run and dtype, side by side.

    Parameters
    ----------
    dtypes : list of dtype-like
        float32 and/or float64.
    names : list of str
        Implementations, keys of :data:`PREPARE_TRAINING`.
    threads : int
        Threads for every implementation.
    repeats : int
        Timed runs per implementation, run and dtype (see :func:`time_training`).
    scale : float
        Fraction of each workload's m.
    runs : list of TrainingRun, optional
        By default :func:`training_runs` ``()``.
    progress : callable, optional
        Called with a line of text before each run and dtype.
    pause : float
        Seconds to wait after each implementation's turn.

    Returns
    -------
    dict
        ``"machine"`` (:func:`~fastnn.benchmark.machine`) and ``"results"``: one record per
        run, dtype and implementation with the workload, ``layers``, ``m``, ``dtype``,
        ``solver``, ``batch_size`` (examples per update), ``max_iter``, ``learning_rate``
        (None for L-BFGS), ``lam``, ``implementation``, ``threads``, ``unit`` ("epoch" or
        "iteration"), ``times_s`` and ``iterations`` (per timed run), ``median_s`` (the median
        of seconds per epoch or iteration), ``examples_per_s`` (m / ``median_s``), ``J_start``
        and ``J`` (J at the weights the implementation started from, and reached after its last
        timed run, both by fastnn's float64 NumPy objective) and ``vs_fastest_peer``
        (``median_s`` over the fastest peer's).
    """
    runs = training_runs() if runs is None else runs
    for name in names:
        check_choice(name, "names", PREPARE_TRAINING)
    records = []
    for workload in dict.fromkeys(run.workload for run in runs):
        for dtype in map(np.dtype, dtypes):
            X, y, theta = make_data(workload, dtype, scale)
            m = len(y)
            J_of = Objective(workload.layers, X.astype(np.float64, copy=False), y, LAMBDA,
                             backend="numpy").cost
            trainers = {name: PREPARE_TRAINING[name](workload.layers, X, y, dtype)
                        for name in names}
            J_start = {}
            for name, trainer in trainers.items():
                trainer.load(theta)
                J_start[name] = J_of(trainer.weights())
            for run in (r for r in runs if r.workload == workload):
                if progress:
                    progress(f"{_describe(workload._replace(m=m), run.solver, run.max_iter)}, "
                             f"{dtype}: {', '.join(names)}")
                # One timed run per turn: a run (an epoch, 100 iterations) is long enough to
                # time alone, and every turn is another chance at a quiet spell of a shared
                # machine for each implementation alike.
                times, iterations = time_training(trainers, run, theta, threads, repeats, pause,
                                                  rounds=repeats)
                rows = []
                for name, trainer in trainers.items():
                    median = float(np.median(np.divide(times[name], iterations[name])))
                    rows.append({
                        "workload": workload.name, "layers": list(workload.layers), "m": m,
                        "dtype": dtype.name, "solver": run.solver, "batch_size": run.batch(m),
                        "max_iter": run.max_iter,
                        "learning_rate": None if run.solver == "lbfgs" else LEARNING_RATE,
                        "lam": LAMBDA, "implementation": name, "threads": threads,
                        "unit": run.unit, "times_s": times[name],
                        "iterations": iterations[name],
                        "median_s": median, "examples_per_s": m / median,
                        "J_start": J_start[name], "J": J_of(trainer.weights()),
                    })
                fastest = min((r["median_s"] for r in rows if r["implementation"] in PEERS),
                              default=None)
                for row in rows:
                    row["vs_fastest_peer"] = row["median_s"] / fastest if fastest else None
                records.extend(rows)
            del trainers
    return {"machine": machine(threads), "results": records}


def _describe(workload, solver, max_iter):
    if solver == "lbfgs":
        what = f"L-BFGS, {max_iter} iterations"
    elif solver == "sgd":
        what = f"sgd, one epoch (learning rate {LEARNING_RATE:g}, Nesterov momentum {MOMENTUM:g})"
    else:
        what = f"adam, one epoch (learning rate {LEARNING_RATE:g})"
    return f"{what}: {workload.describe()}"


def best_seconds(record):
    """Seconds per epoch or iteration of the fastest timed run of a :func:`run_training`
    record."""
    return min(t / n for t, n in zip(record["times_s"], record["iterations"], strict=True))


def format_training_report(report):
    """The report of :func:`run_training` as text: one table per workload, solver and dtype.

    Each row: the batch size (mini-batch solvers) or the iterations done (L-BFGS, the fewest of
    the timed runs), the implementation, the median ms per epoch or per iteration, examples/s,
    the time over the fastest peer's, the same two for the best run of each (on a shared
    machine, neighbours only ever add time: the best run is the closest to what the code
    costs, the median to what a user sees), and the J its weights reached.
    """
    lines = []
    by_table = {}
    for row in report["results"]:
        by_table.setdefault((row["workload"], row["solver"], row["dtype"]), []).append(row)
    for (name, solver, dtype), rows in by_table.items():
        first = rows[0]
        workload = Workload(name, tuple(first["layers"]), first["m"])
        lines.append(f"{_describe(workload, solver, first['max_iter'])}, {dtype}, "
                     f"λ = {first['lam']:g}, {first['threads']} threads; "
                     f"J(θ0) = {first['J_start']:.6f}")
        count, per = ("iterations", "ms/iter") if solver == "lbfgs" else ("batch", "ms/epoch")
        lines.append(f"{count:>10} {'implementation':<15} {per:>10} {'examples/s':>11} "
                     f"{'× peer':>7} {'best ' + per:>15} {'× peer':>7} {'J reached':>10}")
        # One table holds every batch size of a solver: the best runs compared per batch size.
        best_peer = {}
        for r in rows:
            if r["implementation"] in PEERS:
                size = r["batch_size"]
                best_peer[size] = min(best_peer.get(size, np.inf), best_seconds(r))
        for r in rows:
            count = min(r["iterations"]) if solver == "lbfgs" else r["batch_size"]
            ratio = f"{r['vs_fastest_peer']:.2f}" if r["vs_fastest_peer"] else "-"
            own = best_seconds(r)
            peer = best_peer.get(r["batch_size"])
            best_ratio = f"{own / peer:.2f}" if peer else "-"
            lines.append(f"{count:>10} {r['implementation']:<15} {r['median_s'] * 1e3:>10.2f} "
                         f"{r['examples_per_s']:>11.3g} {ratio:>7} {own * 1e3:>15.2f} "
                         f"{best_ratio:>7} {r['J']:>10.6f}")
        lines.append("")
    return "\n".join(lines)
