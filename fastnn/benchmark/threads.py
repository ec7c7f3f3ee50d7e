"""Thread pools held to a count while an implementation runs, interleaved timing, GEMM peak."""

import time
from contextlib import ExitStack, contextmanager

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from fastnn.backends import BACKENDS, backend_for
from fastnn.benchmark.peers import installed

PAUSE_S = 0.5
"""Seconds to wait after each implementation's turn, for the idle threads of its thread pool
(OpenBLAS, OpenMP inside PyTorch) to stop spinning before the next implementation runs."""


@contextmanager
def threads_for(name, n):
    """Within the block, ``name`` runs on n threads and nothing else spins.

    Numba's threads for fastnn's backends, and BLAS's for those that call it (the NumPy
    fallback; :attr:`fastnn.backends.Backend.calls_blas`) and for scikit-learn; PyTorch's own
    pool for PyTorch. BLAS is held to one thread beside the others: its idle threads otherwise
    contend. On leaving the block, also by an exception, every thread count is restored.

    Parameters
    ----------
    name : str
        An implementation, a key of :data:`fastnn.benchmark.PREPARE`.
    n : int
        Threads, 1 to ``NUMBA_NUM_THREADS``.
    """
    blas = n if _calls_blas(name) else 1
    with ExitStack() as stack:
        stack.enter_context(_set_within(numba.get_num_threads, numba.set_num_threads, n))
        stack.enter_context(threadpool_limits(limits=blas, user_api="blas"))
        if name == "torch":
            import torch

            stack.enter_context(_set_within(torch.get_num_threads, torch.set_num_threads, n))
        yield


def _calls_blas(name):
    """Whether the implementation ``name`` calls BLAS: fastnn's backends say so themselves;
    the peers but PyTorch (its own pool) do."""
    if name in ("auto", *BACKENDS):
        return backend_for(name).calls_blas
    return name != "torch"


@contextmanager
def _set_within(get, set_, value):
    """``set_(value)`` within the block; the value ``get()`` gave before is set back on exit."""
    before = get()
    set_(value)
    try:
        yield
    finally:
        set_(before)


def time_interleaved(runs, vec, threads, repeats, pause=PAUSE_S, rounds=3, threads_names=None):
    """Times of at least ``repeats`` calls of each ``runs[name](vec)``, taken in turns.

    The implementations take turns ``rounds`` times (fewer if ``repeats`` is smaller), so that
    a slow spell of a shared machine falls on all of them alike. A turn is one untimed call
    (Numba's compilation or cache load the first time; afterwards it wakes the threads and
    caches that the previous implementation left cold) and ``ceil(repeats / rounds)`` timed
    calls; ``pause`` seconds after each turn let its thread pool stop spinning.

    Parameters
    ----------
    runs : dict of str to callable
        Implementation name → ``run(θ) -> (J, ∇J)``.
    vec : ndarray of shape (P,)
        θ.
    threads : int
        Threads for every implementation (see :func:`threads_for`).
    repeats : int
        Timed calls per implementation, at least.
    pause : float
        Seconds to wait after each turn.
    rounds : int
        Turns per implementation, at most.
    threads_names : dict of str to str, optional
        Run name → the implementation :func:`threads_for` holds the threads of, for runs not
        named after one (two runs of one implementation on different data); by default each
        run's own name.

    Returns
    -------
    times : dict of str to list of float
        Seconds of each timed call, per implementation.
    results : dict of str to tuple
        ``(J, ∇J)`` of each implementation's first call.
    """
    rounds = max(1, min(rounds, repeats))
    per_turn = -(-repeats // rounds)
    threads_names = threads_names or {}
    results, times = {}, {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            with threads_for(threads_names.get(name, name), threads):
                results.setdefault(name, run(vec))
                times[name].extend(_timed(run, vec) for _ in range(per_turn))
            time.sleep(pause)
    return times, results


def gemm_peak(dtype, threads, n=2048, repeats=10, pause=PAUSE_S):
    """The machine's practical peak: the best matrix multiply installed.

    NumPy's BLAS and, where installed, PyTorch multiply two n × n matrices; the fastest of
    ``repeats`` calls of either counts.

    Parameters
    ----------
    dtype : float32 or float64
    threads : int
        Threads for each library (see :func:`threads_for`).
    n : int
        Matrix size.
    repeats : int
        Timed products per library.
    pause : float
        Seconds to wait after each library's turn.

    Returns
    -------
    float
        GFLOP/s, counting 2 n³ floating-point operations per product.
    """
    rng = np.random.default_rng(0)
    A, B = rng.random((n, n), dtype=dtype), rng.random((n, n), dtype=dtype)
    products = {"numpy": lambda: A @ B}
    if installed("torch"):
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


def _timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start
