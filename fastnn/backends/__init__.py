"""Backends: interchangeable implementations of the sums over examples behind J and ∇J.

Every backend is an object with the same small interface (:class:`Backend`), so that
:mod:`fastnn.cost` and the estimator never name one:

``prepare(X, y, layers, dtype, client=None)``
    The data checked and converted once, kept where this backend computes: an object with
    ``m`` (the number of examples), ``inputs`` (what :meth:`forward` takes for these examples),
    ``targets`` (:class:`fastnn._validation.Targets`, or None where the targets stay remote) and
    ``take(rows)`` (a mini-batch of the same kind).
``loss_and_delta(theta, layers, data, activation, loss, need_grad)``
    ``(Σ_i Σ_k loss term, Δ)`` over the examples of ``data``, where Δ is
    ``Σ_i δ(l+1) [1; a(l)]ᵀ`` for every l, unrolled like θ in float64 (None unless
    ``need_grad``): the partial sums the Dask backend adds across chunks.
``cost_and_grad(theta, layers, data, activation, loss, lam, m, need_grad)``
    J and ∇J with the penalty λ/2m Σ Θ² of the full objective (m its number of examples), in
    the dtype of θ: by default from ``loss_and_delta``; the Numba backends fuse it into a
    kernel for mini-batches.
``forward(theta, layers, X, activation, logits=False)``
    The outputs h_Θ(x) = σ(z(L)), or z(L) with ``logits``, shape (m, K), in the dtype of θ; X
    is a checked in-memory array, a prepared ``inputs``, or an array the backend ``holds``.
``holds(X)``
    True when X is an array this backend computes on where it lies (a Dask array for
    ``"dask"``), which callers then leave where it is instead of gathering it.

Inputs given to ``loss_and_delta`` and ``forward`` are trusted: ``prepare`` and
:mod:`fastnn._validation` have checked and converted them.
"""

from itertools import pairwise

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from fastnn._validation import check_choice
from fastnn.backends._base import Backend, LocalData
from fastnn.backends._dask import DaskBackend
from fastnn.backends._numba import PARALLEL, SERIAL
from fastnn.backends._numpy import NumpyBackend

__all__ = ["AUTO", "BACKENDS", "Backend", "LocalData", "auto_backend", "available_backends",
           "backend_for", "get_backend", "get_num_threads", "set_num_threads"]

BACKENDS = {
    "numpy": NumpyBackend(),
    "numba": SERIAL,
    "numba-parallel": PARALLEL,
    "dask": DaskBackend(),
}
"""Backend name → implementation. ``"auto"`` is resolved by :func:`auto_backend`."""


def available_backends():
    """Names of the backends that compute in this process (``backend=`` also takes ``"auto"``
    and ``"dask"``): ``("numpy", "numba", "numba-parallel")``."""
    return tuple(name for name, backend in BACKENDS.items() if backend.in_process)


def get_backend(name, layers):
    """The backend called ``name``; ``"auto"`` picks the one measured fastest for a full batch
    of ``layers`` in float64 (:func:`backend_for` gives the ``"auto"`` that decides per call)."""
    check_choice(name, "backend", ("auto", *BACKENDS))
    if name == "auto":
        name = auto_backend(layers)
    return BACKENDS[name]


AUTO_NUMPY_MIN_WEIGHTS = 150_000
"""Weights in one Θ(l) from which ``"auto"`` picks ``"numpy"`` (but for float32 batches of 64
or fewer). Measured with ``fastnn bench`` on 2 cores: ``numba-parallel`` is as fast as NumPy or
faster on digits, ex4, mnist (largest Θ(l): 100,480 weights) and wide-m (0.74× NumPy's time
in float64), and much faster inside training loops on small problems, where OpenBLAS's
threads, woken for small products, spin and contend with the optimizer (L-BFGS on digits:
0.4 s against 1.9 s). On the deep net (784-256-...: 200,960 weights in Θ(1)), BLAS's cache
blocking wins (0.87× ``numba-parallel``'s time in float64, 0.95× in float32); on its
mini-batches the two are within 15 % of each other either way in float64, and
``numba-parallel`` takes 0.64× NumPy's time on float32 batches of 64."""

AUTO_NUMPY_FLOAT32_MIN_WEIGHTS = 50_000
AUTO_NUMPY_FLOAT32_MIN_ROWS = 129
"""In float32, from this many rows on, with a Θ(l) of ``AUTO_NUMPY_FLOAT32_MIN_WEIGHTS``
weights or more, ``"auto"`` picks ``"numpy"``: sgemm's eight-lane products win there.
Measured per call (``numba-parallel`` ÷ NumPy, 2 threads, interleaved, best of 15) on
784-128-10: 0.83 at 64 rows, 1.02 at 200, 1.10 at 512, 1.19 at 1024, 1.11 at 4096 (float64:
0.57, 0.67, 1.02, then 0.85-0.87 with the chunked kernel at 1025 and 4096 rows)."""


def auto_backend(layers, m=None, dtype=np.float64):
    """The name of the backend measured fastest for a network of these layer sizes, evaluated
    on m rows (None: a full batch of many) in ``dtype``."""
    largest = max(s_in * s_out for s_in, s_out in pairwise(layers))
    small_batch = m is not None and m <= 64
    if np.dtype(dtype) == np.float32:
        if small_batch:
            return "numba-parallel"
        if largest >= AUTO_NUMPY_FLOAT32_MIN_WEIGHTS and (
                m is None or m >= AUTO_NUMPY_FLOAT32_MIN_ROWS):
            return "numpy"
    return "numpy" if largest >= AUTO_NUMPY_MIN_WEIGHTS else "numba-parallel"


class AutoBackend(Backend):
    """``"auto"``: each call goes to the backend :func:`auto_backend` picks for the network,
    the number of rows of that call (a mini-batch is not a full batch) and the dtype."""

    def choose(self, layers, m, dtype):
        return BACKENDS[auto_backend(layers, m, dtype)]

    def loss_and_delta(self, theta, layers, data, activation, loss, need_grad):
        return self.choose(layers, data.m, theta.dtype).loss_and_delta(
            theta, layers, data, activation, loss, need_grad)

    def cost_and_grad(self, theta, layers, data, activation, loss, lam, m, need_grad):
        return self.choose(layers, data.m, theta.dtype).cost_and_grad(
            theta, layers, data, activation, loss, lam, m, need_grad)

    def forward(self, theta, layers, X, activation, logits=False):
        return self.choose(layers, X.shape[0], theta.dtype).forward(
            theta, layers, X, activation, logits)


AUTO = AutoBackend()


def backend_for(name, layers):
    """The implementation behind ``backend=name``: :data:`AUTO` for ``"auto"`` (deciding per
    call), else the named backend."""
    check_choice(name, "backend", ("auto", *BACKENDS))
    return AUTO if name == "auto" else BACKENDS[name]


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
