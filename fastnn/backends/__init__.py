"""Backends: interchangeable implementations of the sums over examples behind J and ∇J.

Each backend offers

``loss_and_delta(theta, layers, X, targets, activation, loss, need_grad)``
    ``(Σ_i Σ_k loss term, Δ)`` where Δ is ``Σ_i δ(l+1) [1; a(l)]ᵀ`` for every l, unrolled like
    θ in float64 (None unless ``need_grad``). Division by m and the penalty are added by the
    caller, once, for every backend alike.
``forward(theta, layers, X, activation, logits=False)``
    The outputs h_Θ(x) = σ(z(L)), or z(L) with ``logits``, shape (m, K), in the dtype of θ.

Inputs are trusted: :mod:`fastnn._validation` has checked and converted them.
"""

import numba
from threadpoolctl import threadpool_limits

from fastnn._validation import check_choice
from fastnn.backends import _numpy
from fastnn.backends._numba import NumbaBackend

BACKENDS = {
    "numpy": _numpy,
    "numba": NumbaBackend(parallel=False),
    "numba-parallel": NumbaBackend(parallel=True),
}


def available_backends():
    """Names ``backend=`` accepts besides ``"auto"``: ``("numpy", "numba", "numba-parallel")``."""
    return tuple(BACKENDS)


def get_backend(name, m, n_params):
    """The backend called ``name``; ``"auto"`` picks the fastest for m examples and P weights."""
    check_choice(name, "backend", ("auto", *BACKENDS))
    if name == "auto":
        name = auto_backend(m, n_params)
    return BACKENDS[name]


AUTO_NUMBA_MAX_WORK = 5_000_000
"""Largest m·P for which ``"auto"`` picks ``"numba-parallel"``. Measured on 2 cores, one
backend per process: up to about 5e6 (digits-sized problems: 64-32-10 with m = 1797, 20-10-3
with m = 5000) the compiled loop is as fast as NumPy or faster, and inside a training loop much
faster, because OpenBLAS's threads, woken for small products, spin and contend with the
optimizer (L-BFGS on digits: 0.4 s with numba-parallel, 1.9 s with numpy). Above it, the
per-example loop (one matrix-vector product per layer per example) loses to NumPy's blocked
matrix products (400-25-10, m = 5000: 8 ms against 16 ms)."""


def auto_backend(m, n_params):
    """The backend measured fastest for a problem of m examples and P weights."""
    return "numba-parallel" if m * n_params <= AUTO_NUMBA_MAX_WORK else "numpy"


def set_num_threads(n):
    """Use n threads: Numba's for ``"numba-parallel"``, BLAS's for ``"numpy"``.

    n is at most ``NUMBA_NUM_THREADS`` (the environment variable; by default the number of
    cores), which is read when Numba is first imported. The Numba setting applies to the
    calling thread. Results do not depend on n: the kernels' chunks are fixed by m alone.
    """
    most = numba.config.NUMBA_NUM_THREADS
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= most:
        raise ValueError(f"n: expected an integer from 1 to {most} (NUMBA_NUM_THREADS), got {n!r}")
    numba.set_num_threads(n)
    threadpool_limits(limits=n, user_api="blas")


def get_num_threads():
    """The number of threads ``"numba-parallel"`` uses in the calling thread."""
    return numba.get_num_threads()
