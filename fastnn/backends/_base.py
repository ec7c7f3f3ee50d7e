"""What every backend shares: the interface, and data kept in this process."""

import threading
from contextlib import contextmanager, nullcontext
from typing import NamedTuple

import numpy as np

from fastnn._validation import Targets, check_targets, check_X, is_sparse
from fastnn.network import penalty_mask


class Workspace:
    """Work arrays a backend keeps across calls on the same data, so that the calls of a
    training run allocate nothing.

    Work arrays of several hundred KiB allocated and freed per call cost more than their size
    suggests: glibc may give them back to the kernel on free, and then every call faults
    their pages in afresh (on adam batches of 784-128-10, 850 page faults a step, which made
    the calls half as slow again). Whether glibc returns the memory depends on the sizes freed
    before, so per-call arrays also make timings depend on what ran earlier in the process.

    One call at a time holds the arrays (:meth:`lease`); a call from another thread
    meanwhile works on arrays of its own.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._kept = {}

    @contextmanager
    def lease(self):
        """The kept arrays as a dict (the backend's keys), or an empty dict whose arrays are
        dropped afterwards when another call holds them."""
        if not self._lock.acquire(blocking=False):
            yield {}
            return
        try:
            yield self._kept
        finally:
            self._lock.release()


class KeptArrays(NamedTuple):
    """Work arrays kept in a :class:`Workspace`, made for calls of up to ``capacity`` rows."""

    capacity: int
    arrays: tuple


@contextmanager
def kept_arrays(workspace, key, rows, make):
    """The work arrays ``make(rows)`` makes for a call on ``rows`` rows, kept in ``workspace``
    under ``key`` (a :class:`KeptArrays`) and reused by later calls of at most as many rows;
    made for this call alone when ``workspace`` is None or another call holds it
    (:meth:`Workspace.lease`)."""
    with workspace.lease() if workspace is not None else nullcontext({}) as kept:
        found = kept.get(key)
        if found is None or found.capacity < rows:
            found = kept[key] = KeptArrays(rows, make(rows))
        yield found.arrays


class LocalData(NamedTuple):
    """Checked, converted examples in this process's memory, or a mini-batch of them.

    X : ndarray of shape (m_all, s_1), C-contiguous, in the compute dtype, or a
        scipy.sparse.csr_matrix of that shape and dtype, canonical, as
        :func:`fastnn._validation.check_sparse_X` makes it
    targets : fastnn._validation.Targets
        For the m_all rows of X.
    rows : ndarray of int64, shape (m,), or None
        The examples of a mini-batch, as indices into X; None for all of them. A mini-batch
        is not copied out of X: the Numba kernels read its rows through the indices.
        :attr:`inputs` and :meth:`materialize` of a sparse X give CSR matrices of the rows
        (scipy's row indexing copies their entries, never a dense row).
    workspace : Workspace or None
        The work arrays kept for calls on these examples (shared by their mini-batches).
    """

    X: np.ndarray
    targets: Targets
    rows: np.ndarray | None = None
    workspace: Workspace | None = None

    @property
    def m(self):
        return self.X.shape[0] if self.rows is None else self.rows.shape[0]

    @property
    def sparse(self):
        """True when X is a CSR matrix."""
        return is_sparse(self.X)

    @property
    def weight_scale(self):
        """``m / Σ w`` of all the examples (1 without weights; see
        :class:`fastnn._validation.Targets`)."""
        return self.targets.weight_scale

    @property
    def inputs(self):
        """X of these examples, for :meth:`Backend.forward`: X itself, or its rows (an array,
        or a CSR matrix for a sparse X)."""
        return self.X if self.rows is None else self.X[self.rows]

    def take(self, rows):
        """The examples ``rows`` (a slice or an index array, into these examples)."""
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(self.m), dtype=np.int64)
        rows = np.asarray(rows, dtype=np.int64)
        return LocalData(self.X, self.targets, rows if self.rows is None else self.rows[rows],
                         self.workspace)

    def materialize(self):
        """``(X, targets)`` of these examples as arrays of their own (a copy for a batch; a
        CSR matrix of the batch's rows for a sparse X)."""
        if self.rows is None:
            return self.X, self.targets
        return self.X[self.rows], self.targets.take(self.rows)


class Backend:
    """The backend interface (see :mod:`fastnn.backends`), with the in-process defaults."""

    in_process = True
    """False for backends that compute elsewhere (on a cluster) on data they keep there."""

    calls_blas = False
    """True for a backend whose own work is BLAS's matrix products (``"numpy"``). Beside any
    other, a training loop holds BLAS to one thread: BLAS's idle threads, woken by a call
    around the loop, would spin on the cores the backend's threads need."""

    parallel_updates = False
    """True for a backend whose kernels run over Numba's threads (``"numba-parallel"``): the
    optimizer's updates between two calls then run over the same threads, already awake."""

    def choose(self, layers, m, dtype, sparse=False):
        """The backend that computes a call on m rows of a network of ``layers`` in ``dtype``,
        of a scipy.sparse X when ``sparse``: this one (``"auto"`` picks one per call). A
        training loop asks it what its calls run on, for :attr:`calls_blas` and
        :attr:`parallel_updates`."""
        return self

    def classes(self, y):
        """The sorted distinct labels of y (a classifier's ``classes_``), found where y lies:
        a backend that keeps data on a cluster finds them there."""
        return np.unique(y)

    def encode(self, y, classes):
        """The labels y as indices into the sorted ``classes``, computed where y lies."""
        return np.searchsorted(classes, y)

    def decode(self, indices, classes):
        """The labels ``classes[indices]`` of predicted indices, computed where they lie: a
        prediction a backend leaves on a cluster stays there."""
        return np.asarray(classes)[indices]

    def cluster(self, address):
        """A context manager in which this backend computes on the cluster at ``address``
        (``"local"``: one started on this machine), entered as a description of it: for
        ``fastnn train --scheduler``, which names a cluster and no backend. In-process
        backends have none (ValueError)."""
        raise ValueError(f"{type(self).__name__} computes in this process, not on a cluster "
                         f"at {address!r}")

    def prepare(self, X, y, layers, dtype, client=None, *, real=False, sample_weight=None):
        """X, y and the example weights checked and converted once, as :class:`LocalData`;
        ``real``: y holds real-valued targets (an identity output layer)."""
        if client is not None:
            raise ValueError('client: only backend="dask" computes on a cluster; got a '
                             "client with an in-process backend")
        X = check_X(X, layers[0], dtype)
        return LocalData(X, check_targets(y, X.shape[0], layers[-1], dtype, real,
                                          sample_weight), workspace=Workspace())

    def holds(self, X):
        """In-process backends compute on in-memory arrays only."""
        return False

    def loss_and_delta(self, theta, problem, data, need_grad):
        """Σ_i w_i Σ_k loss term over the examples of ``data`` and the Δ(l) sums unrolled like
        θ (float64; None unless ``need_grad``), for the network and loss of ``problem``
        (:class:`~fastnn.problem.Problem`)."""
        raise NotImplementedError

    def forward(self, theta, layers, X, activation, logits=False):
        raise NotImplementedError

    def cost_and_grad(self, theta, problem, data, need_grad, out=None):
        """J and ∇J of ``problem`` (:class:`~fastnn.problem.Problem`) on the b examples of
        ``data``, the penalty that of all the problem's examples:

            J = (1/b) Σ w_i loss terms + (λ/2W) Σ Θ²        ∇J = Δ/b + (λ/W) Θ

        (bias column unpenalized; weights w_i of mean 1 over all m examples, or 1; W = Σ w):
        for a mini-batch, the batch estimate of the full objective's data term plus the full
        objective's penalty, so that the batches of an epoch average to the full objective.
        ``grad`` is in the dtype of θ, or None unless ``need_grad``; it is ``out`` (shape and
        dtype of θ) when given. This default builds them from :meth:`loss_and_delta`; a
        backend may fuse them into its kernels.
        """
        loss_sum, Delta = self.loss_and_delta(theta, problem, data, need_grad)
        weights = theta * penalty_mask(problem.layers)
        with np.errstate(over="ignore"):  # diverged weights give J = inf, for callers to see
            J = loss_sum / data.m + problem.penalty(np.square(weights).sum())
        if not need_grad:
            return float(J), None
        grad = Delta / data.m + problem.decay * weights
        if out is not None:
            out[...] = grad
            return float(J), out
        return float(J), grad.astype(theta.dtype, copy=False)
