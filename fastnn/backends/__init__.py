"""Backends: interchangeable implementations of the sums over examples behind J and ∇J.

Every backend is an object with the same small interface (:class:`Backend`), so that
:mod:`fastnn.cost` and the estimator never name one:

``prepare(X, y, layers, dtype, client=None, *, real=False, sample_weight=None)``
    The data (real-valued targets with ``real``) and the example weights checked and converted
    once (a scipy.sparse X into a canonical CSR matrix, never densified), kept where this
    backend computes: an object with ``m`` (the number of examples), ``sparse`` (X is sparse),
    ``weight_scale`` (m / Σ w), ``inputs`` (what :meth:`forward` takes for these examples),
    ``targets`` (:class:`fastnn._validation.Targets`, or None where the targets stay remote) and
    ``take(rows)`` (a mini-batch of the same kind).
``loss_and_delta(theta, problem, data, need_grad)``
    ``(Σ_i w_i Σ_k loss term, Δ)`` over the examples of ``data``, where Δ is
    ``Σ_i δ(l+1) [1; a(l)]ᵀ`` for every l (δ(L) times w_i), unrolled like θ in float64 (None
    unless ``need_grad``): the partial sums the Dask backend adds across chunks. ``problem``
    (:class:`fastnn.problem.Problem`) gives the network, its output and loss, the penalty and
    the objective's number of examples, built once per objective.
``cost_and_grad(theta, problem, data, need_grad, out=None)``
    J and ∇J with the penalty of the full objective, in the dtype of θ (∇J written into
    ``out`` when given): by default from ``loss_and_delta``; the Numba backends fuse it into
    their kernels, and keep the batch kernel's work arrays in the data's ``workspace``
    (:class:`~fastnn.backends._base.Workspace`) across calls.
``forward(theta, layers, X, activation, logits=False)``
    The outputs h_Θ(x) = σ(z(L)), or z(L) with ``logits``, shape (m, K), in the dtype of θ; X
    is a checked in-memory array or CSR matrix, a prepared ``inputs``, or an array the backend
    ``holds``.
``holds(X)``
    True when X is an array this backend computes on where it lies (a Dask array for
    ``"dask"``), which callers then leave where it is instead of gathering it.

What callers would otherwise decide by a backend's name, each backend answers itself, with the
in-process answer by default (:class:`Backend`): ``calls_blas`` and ``parallel_updates`` (how a
training loop holds the thread pools, of the backend ``choose(layers, m, dtype, sparse)`` gives
for its calls), ``classes``, ``encode`` and ``decode`` (a classifier's labels, where they lie),
``in_process`` and ``cluster(address)`` (computing on a cluster).

Inputs given to ``loss_and_delta`` and ``forward`` are trusted: ``prepare`` and
:mod:`fastnn._validation` have checked and converted them.
"""

from itertools import pairwise

import numba
from threadpoolctl import threadpool_limits

from fastnn._threads import bounded_spin
from fastnn._validation import check_choice, is_sparse
from fastnn.backends._base import Backend, LocalData
from fastnn.backends._dask import DaskBackend
from fastnn.backends._numba import PARALLEL, SERIAL
from fastnn.backends._numpy import NumpyBackend
from fastnn.backends._tuning import AUTO_NUMPY_MIN_ROWS, AUTO_NUMPY_MIN_WEIGHTS

__all__ = ["AUTO", "BACKENDS", "Backend", "LocalData", "auto_backend", "available_backends",
           "backend_for", "cluster_backends", "get_num_threads", "set_num_threads"]

BACKENDS = {
    "numpy": NumpyBackend(),
    "numba": SERIAL,
    "numba-parallel": PARALLEL,
    "dask": DaskBackend(),
}
"""Backend name → implementation. ``"auto"`` is resolved by :func:`auto_backend`."""

bounded_spin()  # before the first parallel call loads libgomp


def available_backends():
    """Names of the backends that compute in this process (``backend=`` also takes ``"auto"``
    and ``"dask"``): ``("numpy", "numba", "numba-parallel")``."""
    return tuple(name for name, backend in BACKENDS.items() if backend.in_process)


def cluster_backends():
    """Names of the backends that compute on a cluster: ``("dask",)``."""
    return tuple(name for name, backend in BACKENDS.items() if not backend.in_process)


def auto_backend(layers, m=None):
    """The name of the backend measured fastest for a network of these layer sizes, evaluated
    on m rows (None: a full batch of many), in either dtype."""
    largest = max(s_in * s_out for s_in, s_out in pairwise(layers))
    many_rows = m is None or m >= AUTO_NUMPY_MIN_ROWS
    return "numpy" if largest >= AUTO_NUMPY_MIN_WEIGHTS and many_rows else "numba-parallel"


class AutoBackend(Backend):
    """``"auto"``: each call goes to the backend :func:`auto_backend` picks for the network
    and the number of rows of that call (a mini-batch is not a full batch); every call on a
    sparse X to ``"numba-parallel"`` and its CSR kernels, whatever the sizes."""

    calls_blas = True
    """It may hand a call to ``"numpy"``."""

    def choose(self, layers, m, dtype, sparse=False):
        return BACKENDS["numba-parallel" if sparse else auto_backend(layers, m)]

    def loss_and_delta(self, theta, problem, data, need_grad):
        return self.choose(problem.layers, data.m, problem.dtype, data.sparse).loss_and_delta(
            theta, problem, data, need_grad)

    def cost_and_grad(self, theta, problem, data, need_grad, out=None):
        return self.choose(problem.layers, data.m, problem.dtype, data.sparse).cost_and_grad(
            theta, problem, data, need_grad, out)

    def forward(self, theta, layers, X, activation, logits=False):
        return self.choose(layers, X.shape[0], theta.dtype, is_sparse(X)).forward(
            theta, layers, X, activation, logits)


AUTO = AutoBackend()


def backend_for(name):
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
