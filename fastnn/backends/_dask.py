"""The Dask backend: the sums over examples computed where the data are, added in a tree.

J and ∇J are sums over examples plus a penalty, so they split by rows:

    Σ_i w_i loss term(i) = Σ_k Σ_{i in chunk k} w_i loss term(i),    Δ(l) = Σ_k Δ(l)_k

Each row chunk of X and y is checked, converted and kept on the worker that computed it, as a
ready ``(X_k, targets_k)`` pair (:class:`DistributedData`). A mini-batch is a set of row
indices, split by chunk and sent with the tasks; the rows never move. An evaluation sends θ to
the workers (one task, whose result the workers fetch from each other), runs the Numba kernel
on every chunk where it lives — ``numba-parallel`` on workers with several threads, ``numba``
otherwise — and adds the partial ``(Σ loss terms, Δ)`` pairs in a binary tree of tasks, in
chunk order: no task receives more than two Δ, only the final sum reaches the client, and the
result does not depend on scheduling.

A worker that dies takes its chunks with it; the scheduler recomputes them from their lineage
(the graph that produced X and y: slices of in-memory arrays, reads of files) on the workers
left, and the evaluation that needed them waits for that and goes on.

X may be sparse: a Dask array whose chunks are scipy.sparse matrices, or a scipy.sparse matrix
(cut by rows as a CSR matrix). Each chunk is then checked into a CSR matrix on its worker
(:func:`fastnn._validation.check_sparse_X`) and handed to the same kernels, which take CSR X;
nothing is densified.
"""

import copy
import logging
import os
from contextlib import ExitStack, contextmanager

import numpy as np

from fastnn._validation import check_sample_weight, check_targets, check_X, is_sparse
from fastnn.backends._base import Backend, LocalData
from fastnn.backends._numba import PARALLEL, SERIAL

INSTALL = 'pip install "fastnn[dask]"'


def _modules():
    """``dask``, ``dask.array`` and ``distributed``, or an ImportError saying how to get them."""
    try:
        import dask
        import dask.array as da
        import distributed
    except ImportError:
        raise ImportError(f'backend="dask" needs Dask and distributed: {INSTALL}') from None
    return dask, da, distributed


def _client(client):
    distributed = _modules()[2]
    if client is not None:
        return client
    try:
        return distributed.get_client()
    except ValueError:
        raise ValueError(
            'client: backend="dask" needs a Dask client; start one (distributed.Client() or '
            "a LocalCluster) or pass client="
        ) from None


def _load_chunk(X_block, y_block, w_block, n_features, K, dtype, real, weight_scale):
    """One chunk checked and converted, on the worker that holds it; its weights (None, or
    checked with all of them) scaled by the same ``m / Σ w`` as in one process."""
    X_block = check_X(X_block, n_features, dtype)
    targets = check_targets(y_block, X_block.shape[0], K, dtype, real)
    if w_block is not None:
        targets = targets._replace(weights=np.asarray(w_block, np.float64) * weight_scale,
                                   weight_scale=weight_scale)
    return LocalData(X_block, targets)


def _kernel():
    """``numba-parallel`` on a worker with several threads, ``numba`` on one with a single."""
    from distributed import get_worker

    try:
        n_threads = get_worker().state.nthreads
    except ValueError:  # run outside a worker (e.g. the synchronous scheduler)
        n_threads = 1
    return PARALLEL if n_threads > 1 else SERIAL


def _chunk_loss_and_delta(theta, chunk, rows, problem, need_grad):
    if rows is not None:
        chunk = chunk.take(rows)
    return _kernel().loss_and_delta(theta, problem, chunk, need_grad)


def _chunk_forward(theta, chunk, layers, activation, logits):
    return _kernel().forward(theta, layers, chunk.X, activation, logits)


def _block_forward(X_block, theta, layers, activation, logits):
    """h_Θ(x) (or z(L)) of one block of a Dask array, on the worker that holds it."""
    X_block = check_X(X_block, layers[0], theta.dtype)
    return _kernel().forward(theta, layers, X_block, activation, logits)


def _add(a, b):
    """(Σ loss terms, Δ) of two partials."""
    return a[0] + b[0], (None if a[1] is None else a[1] + b[1])


def _tree_sum(client, futures):
    """The sum of the partials, added pairwise in chunk order on the workers."""
    while len(futures) > 1:
        pairs = [client.submit(_add, futures[i], futures[i + 1], pure=False)
                 for i in range(0, len(futures) - 1, 2)]
        futures = pairs + ([futures[-1]] if len(futures) % 2 else [])
    return futures[0].result()


class DistributedData:
    """X and y cut by rows and kept, checked and converted, on the workers of a Dask cluster.

    Parameters
    ----------
    X : dask.array.Array, array-like or scipy.sparse matrix of shape (m, s_1)
        Chunked by rows (columns are joined into one chunk); an in-memory array or a sparse
        matrix (as CSR) is cut into two chunks per worker. The chunks may be scipy.sparse
        matrices.
    y : dask.array.Array or array-like of shape (m,) or (m, K)
        Rechunked to X's rows.
    layers : tuple of int
    dtype : numpy.dtype
    client : distributed.Client or None
        None: the default client.
    real : bool
        y holds real-valued targets (an identity output layer).
    sample_weight : dask.array.Array or array-like of shape (m,), optional
        Rechunked to X's rows; checked as a whole (one pass on the workers), then each chunk's
        weights are scaled by ``m / Σ w`` where they lie.
    """

    def __init__(self, X, y, layers, dtype, client=None, real=False, sample_weight=None):
        dask, da, _ = _modules()
        self.client = _client(client)
        if not isinstance(X, da.Array):
            sparse = is_sparse(X)
            X = X.tocsr() if sparse else np.asarray(X)
            n_chunks = 2 * max(1, len(self.client.scheduler_info()["workers"]))
            X = da.from_array(X, chunks=(max(1, -(-X.shape[0] // n_chunks)), *X.shape[1:]),
                              asarray=not sparse)
        if X.ndim != 2:
            raise ValueError(f"X: expected a 2-D array of shape (m, {layers[0]}), got shape "
                             f"{X.shape}")
        if np.isnan(X.shape[0]):
            raise ValueError("X: the number of rows per chunk is unknown; call "
                             "X.compute_chunk_sizes() first")
        X = X.rechunk({1: -1})
        y = y if isinstance(y, da.Array) else da.from_array(np.asarray(y))
        if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
            raise ValueError(f"y: expected shape ({X.shape[0]},) or ({X.shape[0]}, K) to match "
                             f"X, got shape {y.shape}")
        y = y.rechunk({0: X.chunks[0], **({1: -1} if y.ndim == 2 else {})})
        w_blocks, weight_scale = [None] * len(X.chunks[0]), 1.0
        if sample_weight is not None:
            w, weight_scale = _weights(da, sample_weight, X.shape[0])
            w_blocks = w.rechunk({0: X.chunks[0]}).to_delayed().ravel()
        parts = [dask.delayed(_load_chunk, pure=True)(X_block, y_block, w_block, layers[0],
                                                      layers[-1], dtype, real, weight_scale)
                 for X_block, y_block, w_block in zip(X.to_delayed().ravel(),
                                                      y.to_delayed().ravel(), w_blocks)]
        self.chunks = self.client.compute(parts)
        for chunk in self.chunks:  # waits for every chunk, without moving it to the client
            if chunk.exception() is not None:
                chunk.result()  # raises the worker's error, which names the argument
        self.m = int(X.shape[0])
        self.sparse = is_sparse(X._meta)
        self.weight_scale = weight_scale
        self.row_starts = np.cumsum((0, *X.chunks[0]))
        self.parts = [(chunk, None) for chunk in self.chunks]

    targets = None
    """The targets stay on the workers, with their chunks."""

    @property
    def inputs(self):
        """What :meth:`DaskBackend.forward` takes for these examples: the data themselves."""
        return self

    def take(self, rows):
        """The examples ``rows`` (indices into 0 ... m−1, or a slice) where they are: a view
        whose ``parts`` pair each chunk that holds some of them with their local indices."""
        rows = np.arange(*rows.indices(self.m)) if isinstance(rows, slice) else np.asarray(rows)
        owner = np.searchsorted(self.row_starts, rows, side="right") - 1
        batch = copy.copy(self)
        batch.parts = [(self.chunks[k], rows[owner == k] - self.row_starts[k])
                       for k in np.unique(owner)]
        batch.m = rows.size
        return batch


def _weights(da, sample_weight, m):
    """Weights as a Dask array of shape (m,) and their scale ``m / Σ w``, after one pass that
    checks them (:func:`fastnn._validation.check_sample_weight`)."""
    w = sample_weight if _is_dask_array(sample_weight) else da.asarray(np.asarray(sample_weight))
    return check_sample_weight(w, m, compute=da.compute)


def _identity(value):
    return value


def _send(client, theta):
    """θ as a one-task future: it goes to one worker, and the others fetch it from there (or
    from each other) as their tasks need it. Unlike scattered data it has a lineage, so a lost
    worker holding it costs a recomputation, not the evaluation."""
    return client.submit(_identity, theta, pure=False)


def _is_dask_array(X):
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "map_blocks")


class DaskBackend(Backend):
    """``"dask"``: the Numba kernels run on the row chunks of data kept on a Dask cluster."""

    in_process = False

    def prepare(self, X, y, layers, dtype, client=None, *, real=False, sample_weight=None):
        """X, y and the weights cut by rows onto the workers of ``client``
        (:class:`DistributedData`)."""
        return DistributedData(X, y, layers, dtype, client, real, sample_weight)

    def holds(self, X):
        """Dask arrays are computed on where they are."""
        return _is_dask_array(X)

    def loss_and_delta(self, theta, problem, data, need_grad):
        """Σ_i w_i Σ_k loss term and the Δ(l) sums over the examples of ``data`` (all of them,
        or a :meth:`DistributedData.take` batch), added in a tree on the workers."""
        client = data.client
        theta_future = _send(client, theta)
        partials = [client.submit(_chunk_loss_and_delta, theta_future, chunk, rows, problem,
                                  need_grad, pure=False)
                    for chunk, rows in data.parts]
        return _tree_sum(client, partials)

    def forward(self, theta, layers, X, activation, logits=False):
        """Outputs h_Θ(x) (or z(L)), shape (m, K): a Dask array chunked like X for a Dask
        array (of dense or scipy.sparse chunks); gathered in row order for
        :class:`DistributedData`."""
        if isinstance(X, DistributedData):
            client = X.client
            theta_future = _send(client, theta)
            outputs = [client.submit(_chunk_forward, theta_future, chunk, tuple(layers),
                                     activation, logits, pure=False)
                       for chunk in X.chunks]
            return np.concatenate(client.gather(outputs))
        if _is_dask_array(X):
            if X.ndim != 2 or X.shape[1] != layers[0]:
                raise ValueError(f"X: expected shape (m, {layers[0]}), got {X.shape}")
            X = X.rechunk({1: -1})
            return X.map_blocks(_block_forward, theta, tuple(layers), activation, logits,
                                dtype=theta.dtype, chunks=(X.chunks[0], (layers[-1],)),
                                meta=np.empty((0, 0), dtype=theta.dtype))
        raise TypeError(f'X: backend="dask" computes on Dask arrays, got {type(X).__name__}; '
                        "use an in-process backend for in-memory data")

    def classes(self, y):
        """The distinct labels of y (a Dask array or array-like), found where y lies."""
        da = _modules()[1]
        y = y if _is_dask_array(y) else da.asarray(np.asarray(y))
        return np.unique(da.unique(y).compute())

    def encode(self, y, classes):
        """y as indices into ``classes``, chunk by chunk on the workers (a Dask array)."""
        da = _modules()[1]
        y = y if _is_dask_array(y) else da.asarray(np.asarray(y))
        return y.map_blocks(_encode_block, classes, dtype=np.int64)

    def decode(self, indices, classes):
        """The labels ``classes[indices]``: a Dask array chunked like ``indices`` for a Dask
        array, else an in-memory array."""
        if _is_dask_array(indices):
            return indices.map_blocks(classes.take, dtype=classes.dtype)
        return super().decode(indices, classes)

    @contextmanager
    def cluster(self, address):
        """Dask's default client, within the block, on the scheduler at ``address``, or for
        ``"local"`` on a LocalCluster of one single-threaded worker process per core (the
        kernels then run serially, one chunk per core); entered as ``"ADDRESS (N workers)"``.
        ImportError without Dask, ConnectionError when the scheduler cannot be reached."""
        distributed = _modules()[2]
        with ExitStack() as stack:
            if address == "local":
                cluster = stack.enter_context(distributed.LocalCluster(
                    n_workers=os.cpu_count() or 1, threads_per_worker=1, dashboard_address=":0",
                    silence_logs=logging.ERROR))
                client = stack.enter_context(distributed.Client(cluster))
            else:
                try:
                    client = stack.enter_context(distributed.Client(address, timeout="10s"))
                except (OSError, TimeoutError, ValueError) as error:
                    raise ConnectionError(f"cannot connect to {address}: {error}") from None
            n_workers = len(client.scheduler_info()["workers"])
            yield f"{client.scheduler.address} ({n_workers} workers)"


def _encode_block(y_block, classes):
    return np.searchsorted(classes, y_block)
