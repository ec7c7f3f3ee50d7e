"""The Numba backends: the kernels compiled for one thread and over Numba's threads.

The kernels are explicit loops over blocks of examples (:mod:`fastnn.backends._blocks`), each
layer step a register-tiled product (:mod:`fastnn.backends._products`). Two kernels for a
dense X share them:

- the chunked kernel (:mod:`fastnn.backends._chunked`) cuts the examples into chunks fixed by
  their number, each with its own Δ accumulator, summed in chunk order afterwards; it serves
  full batches, small networks, J alone, the Δ sums and the outputs;
- the batch kernel (:mod:`fastnn.backends._batch`) keeps a whole mini-batch's activations and
  splits the Δ products by columns, so that no thread holds a copy of Δ; it serves the
  mini-batches of large networks.

A CSR X (scipy.sparse, checked by :func:`fastnn._validation.check_sparse_X`) goes to the
sparse kernel (:mod:`fastnn.backends._sparse`) for every call, full batch, mini-batch or
outputs: its first layer by groups of units over the nonzeros, the layers after it through the
chunked kernel's block steps.

Each is written once with ``prange`` and compiled twice (:func:`fastnn._jit.compile_loop`):
``"numba"`` runs its loops on the calling thread, ``"numba-parallel"`` over Numba's threads,
with bitwise the same results. :func:`choose_kernel` decides which kernel and compilation
serves a call, by the constants of :mod:`fastnn.backends._tuning`.
"""

import functools
from itertools import pairwise
from typing import NamedTuple

import numpy as np

from fastnn._jit import compile_loop
from fastnn._threads import THREADS, size_class
from fastnn._validation import NO_WEIGHTS, is_sparse
from fastnn.activations import ACTIVATIONS
from fastnn.backends import _tuning
from fastnn.backends._base import Backend, kept_arrays
from fastnn.backends._batch import _batch_buffers, _batch_cost_and_grad, _delta_tasks
from fastnn.backends._blocks import NO_ROWS
from fastnn.backends._chunked import NO_LABELS, NO_MASK, _loss_and_delta_chunks, n_chunks
from fastnn.backends._sparse import _sparse_kernel
from fastnn.network import penalty_mask, theta_offsets


class KernelChoice(NamedTuple):
    """What :func:`choose_kernel` decides for one call."""

    batch: bool
    """The batch kernel; else the chunked kernel, as the fields below say."""
    unit_major: bool
    """The chunked kernel's blocks unit-major, else as rows: a compilation of its own."""
    parallel_reduce: bool
    """The chunks' Δ rows summed over the threads: a compilation of its own."""
    n_chunks: int
    """The chunks the examples are cut into (a function of their number only)."""
    copy_parts: int
    """Blocks as rows: the tasks the copy of W(l), W(l)ᵀ is cut into (1: on one thread)."""
    serial_copy: bool
    """The batch kernel: W(l), l ≥ 1, copied on one thread."""


def choose_kernel(layers, b, n_params, cost_and_grad=False):
    """Which kernel, in which compilation, serves a call on b examples of a network of
    ``layers`` (``n_params`` weights, biases included), and how it cuts its work. Every
    threshold is a constant of :mod:`fastnn.backends._tuning`:

    1. J (and ∇J) with the penalty (``cost_and_grad``) on at most ``BATCH_ROWS`` examples of
       a network of ``BATCH_MIN_PARAMS`` weights or more take the batch kernel, whose threads
       hold no P-sized accumulators; it copies W(l), l ≥ 1, on one thread for a network of one
       hidden layer (W(L−1) has K rows only, too few for a parallel region), over the threads
       otherwise.
    2. Every other call (more examples, a smaller network, the Δ sums, the outputs) takes the
       chunked kernel, on ``n_chunks(b)`` chunks, in the compilation for

       - its layout: unit-major when every layer after the input has fewer than ``NARROW``
         units (13–25 % less time on 64-25-10: the inner loops run along a block's 64
         examples instead of 25 or 10 units), else as rows, whose wide layers already fill
         the vector loops; as rows, W(l) and W(l)ᵀ are copied over the threads, a unit per
         task, from ``COPY_PARALLEL_MIN`` weights, on one thread below;
       - the sum of the chunks' Δ rows: over the threads from ``REDUCE_PARALLEL_MIN``
         numbers (chunks × P), on one thread below.

       A call for J alone and one for J and ∇J on as many examples take the same
       compilation, so that a training run compiles one.

    The choice depends on the shapes alone, never on the threads a call runs on: the serial
    and parallel backends make the same one and agree bitwise.
    """
    layers = tuple(layers)
    if (cost_and_grad and b <= _tuning.BATCH_ROWS
            and n_params >= _tuning.BATCH_MIN_PARAMS):
        return KernelChoice(True, False, False, 0, 0, len(layers) == 3)
    unit_major = all(s < _tuning.NARROW for s in layers[1:])
    chunks = n_chunks(b)
    n_weights = sum(s_in * s_out for s_in, s_out in pairwise(layers))
    copy_parts = sum(layers[1:]) if n_weights >= _tuning.COPY_PARALLEL_MIN else 1
    return KernelChoice(False, unit_major, chunks * n_params >= _tuning.REDUCE_PARALLEL_MIN,
                        chunks, 0 if unit_major else copy_parts, False)


class NumbaBackend(Backend):
    """One of the two compilations of the kernels, behind the backend interface."""

    def __init__(self, parallel):
        self.parallel_updates = parallel
        self._chunked = {
            (unit_major, parallel_reduce): compile_loop(
                _loss_and_delta_chunks, parallel, UNIT_MAJOR=unit_major,
                PARALLEL_REDUCE=parallel_reduce)
            for unit_major in (False, True) for parallel_reduce in (False, True)
        }
        self._batch = compile_loop(_batch_cost_and_grad, parallel)
        self._sparse = compile_loop(_sparse_kernel, parallel)
        self._call = THREADS.call if parallel else _call

    def _run_sparse(self, key, theta, layers, X, rows, targets, activation, output, need_grad,
                    penalize=False, m_data=1.0, decay=0.0, grad=None, Delta=None, H=None,
                    logits=False, workspace=None):
        """:func:`~fastnn.backends._sparse._sparse_kernel` on the CSR X's rows ``rows`` (all
        when None): ``(Σ_i w_i Σ_k loss term, Σ (mask θ)²)`` (the squares with ``penalize``),
        Δ added into ``Delta`` (P float64 zeros) when given, ∇J written into ``grad`` when
        given, the outputs into ``H`` when given (``targets`` then None)."""
        layers = tuple(layers)
        m = X.shape[0] if rows is None else rows.shape[0]
        ups = layers[1:]
        up_sizes, up_offsets, up_units, up_w = _layout(ups)[:4]
        P0 = layers[1] * (layers[0] + 1)
        grad = np.empty(0, dtype=theta.dtype) if grad is None else grad
        Delta = _NO_DELTA if Delta is None else Delta
        if targets is None:
            labels, Y, weights = (NO_LABELS, np.empty((0, layers[-1]), dtype=theta.dtype),
                                  NO_WEIGHTS)
        else:
            labels, Y, weights = targets.labels, targets.Y, targets.weights
        with _sparse_buffers(workspace, layers, theta.dtype, min(m, _tuning.SPARSE_SEGMENT),
                             need_grad) as (Zt, Dt, tiles, accs):
            return self._call(
                key, self._sparse, theta, np.asarray(layers, dtype=np.int64), theta[P0:],
                up_sizes, up_offsets, up_units, up_w, X.data, X.indices, X.indptr,
                NO_ROWS if rows is None else rows, m, labels, Y, weights,
                ACTIVATIONS[activation].code, output, need_grad, penalize,
                penalty_mask(ups) if penalize else NO_MASK, float(m_data), decay, grad,
                grad[P0:] if grad.shape[0] > 0 else grad, Delta, Zt, Dt, tiles, accs,
                np.empty((0, 0), dtype=theta.dtype) if H is None else H, logits)

    def _run_chunked(self, key, choice, theta, layers, X, targets, activation, output,
                     need_grad, mask=NO_MASK, m_data=1.0, decay=0.0, grad=None, H=None,
                     logits=False):
        """:func:`~fastnn.backends._chunked._loss_and_delta_chunks` in the compilation and
        with the chunks ``choice`` gives: ``(Σ_i w_i Σ_k loss term, Δ sums, Σ (mask θ)²)``;
        ``targets`` None for the outputs alone, written into ``H``."""
        if targets is None:  # the targets' arrays empty, of the types a training run passes
            labels, Y, weights = (NO_LABELS, np.empty((0, layers[-1]), dtype=theta.dtype),
                                  NO_WEIGHTS)
        else:
            labels, Y, weights = targets.labels, targets.Y, targets.weights
        return self._call(
            key, self._chunked[choice.unit_major, choice.parallel_reduce],
            theta, *_layout(layers)[:4], X, labels, Y, weights, ACTIVATIONS[activation].code,
            output, need_grad, choice.n_chunks, choice.copy_parts, mask, m_data, decay,
            np.empty(0, dtype=theta.dtype) if grad is None else grad,
            np.empty((0, 0), dtype=theta.dtype) if H is None else H, logits,
        )

    def loss_and_delta(self, theta, problem, data, need_grad):
        """Σ_i w_i Σ_k loss term and the Δ(l) sums, unrolled like θ (float64), or None."""
        layers = problem.layers
        if data.sparse:
            key = ("sparse", layers, size_class(data.m), theta.dtype.char, need_grad)
            Delta = np.zeros(theta.shape[0]) if need_grad else None
            total, _ = self._run_sparse(key, theta, layers, data.X, data.rows, data.targets,
                                        problem.activation, problem.output, need_grad,
                                        Delta=Delta, workspace=data.workspace)
            return total, Delta
        X, targets = data.materialize()
        choice = choose_kernel(layers, X.shape[0], theta.shape[0])
        key = ("chunks", layers, size_class(X.shape[0]), theta.dtype.char, need_grad)
        total, Delta, _ = self._run_chunked(key, choice, theta, layers, X, targets,
                                            problem.activation, problem.output, need_grad)
        return total, (Delta if need_grad else None)

    def cost_and_grad(self, theta, problem, data, need_grad, out=None):
        """J and ∇J (see :meth:`Backend.cost_and_grad`), each in one fused call of the kernel
        :func:`choose_kernel` gives: the batch kernel, reading a mini-batch through its row
        indices, with the work arrays kept in ``data.workspace``, or the chunked kernel, which
        writes ∇J as :meth:`Backend.cost_and_grad` would assemble it, bit for bit."""
        layers, b = problem.layers, data.m
        grad = (out if need_grad and out is not None
                else np.empty(theta.shape[0] if need_grad else 0, dtype=theta.dtype))
        if data.sparse:
            key = ("sparse", layers, size_class(b), theta.dtype.char, need_grad)
            total, squares = self._run_sparse(
                key, theta, layers, data.X, data.rows, data.targets, problem.activation,
                problem.output, need_grad, True, float(b), problem.decay,
                grad if need_grad else None, workspace=data.workspace)
            J = total / b + problem.penalty(squares)
            return float(J), (grad if need_grad else None)
        choice = choose_kernel(layers, b, theta.shape[0], cost_and_grad=True)
        key = ("batch" if choice.batch else "chunks", layers, size_class(b), theta.dtype.char,
               need_grad)
        if not choice.batch:
            X, targets = data.materialize()
            total, _, squares = self._run_chunked(
                key, choice, theta, layers, X, targets, problem.activation, problem.output,
                need_grad, penalty_mask(layers), float(b), problem.decay, grad)
            # As Backend.cost_and_grad: diverged weights give J = inf, for callers to see.
            J = total / b + problem.penalty(squares)
            return float(J), (grad if need_grad else None)
        layout = _layout(layers)
        rows = data.rows if data.rows is not None else _all_rows(b)
        targets = data.targets
        with _batch_buffers(data.workspace, layers, layout, theta.dtype, b) as buffers:
            J = self._call(key, self._batch, theta, *layout, data.X, rows, targets.labels,
                           targets.Y, targets.weights, ACTIVATIONS[problem.activation].code,
                           problem.output, need_grad, choice.serial_copy, problem.decay, grad,
                           *buffers)
        return float(J), (grad if need_grad else None)

    def forward(self, theta, layers, X, activation, logits=False):
        """Outputs h_Θ(x) (or z(L)) of every example, shape (m, K), in the dtype of θ."""
        layers = tuple(layers)
        H = np.empty((X.shape[0], layers[-1]), dtype=theta.dtype)
        if is_sparse(X):
            key = ("sparse-forward", layers, size_class(X.shape[0]), theta.dtype.char)
            self._run_sparse(key, theta, layers, X, None, None, activation, 0, False, H=H,
                             logits=logits)
            return H
        choice = choose_kernel(layers, X.shape[0], theta.shape[0])
        key = ("forward", layers, size_class(X.shape[0]), theta.dtype.char)
        self._run_chunked(key, choice, theta, layers, X, None, activation, 0, False, H=H,
                          logits=logits)
        return H


def _call(key, kernel, *args):
    """The serial backend's calls: ``kernel(*args)`` (``key`` is for :data:`THREADS`)."""
    return kernel(*args)


@functools.lru_cache(maxsize=64)
def _layout(layers):
    """``(layers, offsets, unit_offsets, w_offsets, tasks, groups)`` of a network, made once:
    int64 arrays of the sizes, the start of each Θ(l) in θ, of each layer's units (input
    first), of each W(l) = Θ(l)[:, 1:], and the batch kernel's Δ tasks and their groups
    (:func:`_delta_tasks`)."""
    sizes = np.asarray(layers, dtype=np.int64)
    unit_offsets = np.concatenate(([0], np.cumsum(sizes)))
    w_offsets = np.concatenate(([0], np.cumsum(sizes[:-1] * sizes[1:])))
    return sizes, theta_offsets(layers), unit_offsets, w_offsets, *_delta_tasks(layers)


_NO_DELTA = np.empty(0)
"""``Delta`` of the sparse kernel when it holds no Δ sums of its own."""


def _sparse_buffers(workspace, layers, dtype, segment, need_grad):
    """``(Zt, Dt, tiles, accs)`` of :func:`~fastnn.backends._sparse._sparse_kernel` for
    segments of up to ``segment`` rows, kept in ``workspace`` (None: fresh ones), as a context
    manager (:func:`~fastnn.backends._base.kept_arrays`): a training run's calls allocate none
    of them (``tiles`` and ``accs`` are Θ(0)-sized); ``accs`` is empty unless ``need_grad``."""
    s0, s1 = layers[0], layers[1]
    tile = (-(-s1 // _tuning.TILE_UNITS), s0 + 1, _tuning.TILE_UNITS)

    def make(rows):
        return (np.empty((s1, rows), dtype=dtype), np.empty((s1, rows), dtype=dtype),
                np.empty(tile, dtype=dtype),
                np.empty(tile if need_grad else (0, 0, _tuning.TILE_UNITS)))

    return kept_arrays(workspace, ("sparse", layers, dtype.str, need_grad), segment, make)


@functools.lru_cache(maxsize=8)
def _all_rows(m):
    return np.arange(m, dtype=np.int64)


SERIAL = NumbaBackend(parallel=False)
"""``"numba"``: the kernels compiled for one thread."""
PARALLEL = NumbaBackend(parallel=True)
"""``"numba-parallel"``: the same kernels with the chunks spread over Numba's threads."""
