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

from itertools import pairwise

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


def get_backend(name, layers):
    """The backend called ``name``; ``"auto"`` picks the one measured fastest for ``layers``."""
    check_choice(name, "backend", ("auto", *BACKENDS))
    if name == "auto":
        name = auto_backend(layers)
    return BACKENDS[name]


AUTO_NUMPY_MIN_WEIGHTS = 150_000
"""Weights in one Θ(l) from which ``"auto"`` picks ``"numpy"``. Measured with ``fastnn bench``
on 2 cores: ``numba-parallel`` is as fast as NumPy or faster on digits, ex4, mnist (largest
Θ(l): 100,480 weights) and wide-m (0.74× NumPy's time in float64), and much faster inside
training loops on small problems, where OpenBLAS's threads, woken for small products, spin
and contend with the optimizer (L-BFGS on digits: 0.4 s against 1.9 s). On the deep net
(784-256-...: 200,960 weights in Θ(1)), BLAS's cache blocking wins (0.87× ``numba-parallel``'s
time in float64, 0.95× in float32)."""


def auto_backend(layers):
    """The backend measured fastest for a network of these layer sizes."""
    largest = max(s_in * s_out for s_in, s_out in pairwise(layers))
    return "numpy" if largest >= AUTO_NUMPY_MIN_WEIGHTS else "numba-parallel"


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
