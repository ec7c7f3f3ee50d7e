"""Side-by-side timing of J and ∇J, and of training: fastnn's kernels, its NumPy fallback, and
installed peers.

One full-batch evaluation of the regularized cost and its gradient is timed per workload, dtype
and implementation, all in one process, next to the machine's matrix-multiply peak measured in
the same run. Every timing comes with the relative difference of J and ∇J from a float64
reference (fastnn's NumPy backend at the same θ), so that speed is never reported without
parity. ``fastnn bench`` prints the report; ``bench/`` (pytest-benchmark) reuses the workloads
and the peers.

FLOPs per evaluation are counted as 6·P·m (P weights including biases): 2·P·m each for the
forward products, the backpropagated δ and the Δ accumulation.

The modules, in the order of a run:

``workloads``
    The network shapes and example counts, and their data; tf-idf-shaped sparse data.
``peers``
    The implementations: ``PREPARE[name](layers, X, y, dtype)`` returns ``run(θ) -> (J, ∇J)``.
``threads``
    Thread pools held to a count per implementation, interleaved timing, the GEMM peak.
``report``
    The run, and its report as text, JSON and a plot.
``memory``
    Memory of one call, measured in a fresh process (``_memory_probe``).
``training``
    Time per epoch of mini-batch adam and sgd and per L-BFGS iteration, each with the J reached,
    from the same initial weights for every implementation (``fastnn bench --training``).
``sparse``
    J and ∇J and adam epochs on a tf-idf-shaped CSR X, beside its dense copy and scikit-learn,
    and the memory of an epoch (``fastnn bench --sparse``).

scikit-learn, PyTorch and matplotlib are imported only by the functions that need them.
"""

from fastnn.benchmark.memory import call_memory
from fastnn.benchmark.peers import (
    FASTNN,
    OPTIONAL_PEERS,
    PEERS,
    PREPARE,
    implementations,
)
from fastnn.benchmark.report import format_report, machine, plot_report, run_benchmarks, write_json
from fastnn.benchmark.threads import PAUSE_S, gemm_peak, threads_for, time_interleaved
from fastnn.benchmark.training import (
    BATCH_SIZES,
    LBFGS_ITER,
    PREPARE_TRAINING,
    TRAINING_SOLVERS,
    TRAINING_WORKLOADS,
    TrainingRun,
    best_seconds,
    format_training_report,
    run_training,
    time_training,
    training_implementations,
    training_runs,
)
from fastnn.benchmark.workloads import LAMBDA, WORKLOADS, Workload, make_data, make_sparse

__all__ = [
    "BATCH_SIZES",
    "FASTNN",
    "LAMBDA",
    "LBFGS_ITER",
    "OPTIONAL_PEERS",
    "PAUSE_S",
    "PEERS",
    "PREPARE",
    "PREPARE_TRAINING",
    "TRAINING_SOLVERS",
    "TRAINING_WORKLOADS",
    "WORKLOADS",
    "TrainingRun",
    "Workload",
    "best_seconds",
    "call_memory",
    "format_report",
    "format_training_report",
    "gemm_peak",
    "implementations",
    "machine",
    "make_data",
    "make_sparse",
    "plot_report",
    "run_benchmarks",
    "run_training",
    "threads_for",
    "time_interleaved",
    "time_training",
    "training_implementations",
    "training_runs",
    "write_json",
]
