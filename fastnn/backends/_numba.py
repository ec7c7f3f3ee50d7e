"""The Numba backends: the kernels compiled for one thread and over Numba's threads.

The kernels are explicit loops over blocks of examples (:mod:`fastnn.backends._blocks`), each
layer step a register-tiled product (:mod:`fastnn.backends._products`). Two kernels share them:

- the chunked kernel (:mod:`fastnn.backends._chunked`) cuts the examples into chunks fixed by
  their number, each with its own Δ accumulator, summed in chunk order afterwards; it serves
  full batches, small networks, J alone, the Δ sums and the outputs;
- the batch kernel (:mod:`fastnn.backends._batch`) keeps a whole mini-batch's activations and
  splits the Δ products by columns, so that no thread holds a copy of Δ; it serves the
  mini-batches of large networks.

Each is written once with ``prange`` and compiled twice (:func:`fastnn._jit.compile_loop`):
``"numba"`` runs its loops on the calling thread, ``"numba-parallel"`` over Numba's threads,
with bitwise the same results. The constants that cut the work are in
:mod:`fastnn.backends._tuning`.
"""

import functools

import numpy as np

from fastnn._jit import compile_loop
from fastnn._threads import THREADS, size_class
from fastnn._validation import NO_WEIGHTS
from fastnn.activations import ACTIVATIONS
from fastnn.backends._base import Backend
from fastnn.backends._batch import _batch_buffers, _batch_cost_and_grad, _delta_tasks
from fastnn.backends._chunked import NO_LABELS, NO_MASK, _loss_and_delta_chunks, n_chunks
from fastnn.backends._tuning import BATCH_MIN_PARAMS, BATCH_ROWS, NARROW, REDUCE_PARALLEL_MIN
from fastnn.network import penalty_mask, theta_offsets


def _unit_major(layers):
    """Whether the chunked kernel keeps its blocks unit-major: when every layer after the input
    has fewer than ``NARROW`` units (13–25 % less time on 64-25-10). Wider layers, whose rows
    already fill the vector loops, gain nothing or lose: their inner loops would run along 64
    examples instead of their units, and a wide W(0) would need the row-tiled product, into
    rows, then transposed."""
    return all(s < NARROW for s in layers[1:])


class NumbaBackend(Backend):
    """One of the two compilations of the kernels, behind the backend interface."""

    def __init__(self, parallel):
        self.parallel = parallel
        self._chunked = {
            (unit_major, parallel_reduce): compile_loop(
                _loss_and_delta_chunks, parallel, UNIT_MAJOR=unit_major,
                PARALLEL_REDUCE=parallel_reduce)
            for unit_major in (False, True) for parallel_reduce in (False, True)
        }
        self._batch = compile_loop(_batch_cost_and_grad, parallel)
        self._call = THREADS.call if parallel else _call

    def _loss_and_delta_kernel(self, layers, m, P):
        """The compilation of :func:`_loss_and_delta_chunks` for a network's layout and for
        how the Δ rows of m examples are summed (over the threads from ``REDUCE_PARALLEL_MIN``
        numbers); the same for J alone and for J and ∇J, so that a training run compiles one."""
        return self._chunked[_unit_major(layers), n_chunks(m) * P >= REDUCE_PARALLEL_MIN]

    def loss_and_delta(self, theta, layers, data, activation, output, need_grad):
        """Σ_i w_i Σ_k loss term and the Δ(l) sums, unrolled like θ (float64), or None."""
        X, targets = data.materialize()
        layers = tuple(layers)
        kernel = self._loss_and_delta_kernel(layers, X.shape[0], theta.shape[0])
        total, Delta, _ = self._call(
            ("chunks", layers, size_class(X.shape[0]), theta.dtype.char, need_grad), kernel,
            theta, *_layout(layers)[:4], X, targets.labels, targets.Y, targets.weights,
            ACTIVATIONS[activation].code, output, need_grad, n_chunks(X.shape[0]), NO_MASK, 1.0,
            0.0, np.empty(0, dtype=theta.dtype), np.empty((0, 0), dtype=theta.dtype), False,
        )
        return total, (Delta if need_grad else None)

    def cost_and_grad(self, theta, layers, data, activation, output, lam, m, need_grad,
                      out=None):
        """J and ∇J (see :meth:`Backend.cost_and_grad`), each in one fused call: of the batch
        kernel, reading a mini-batch through its row indices, with the work arrays kept in
        ``data.workspace``, or of the chunked kernel (see ``BATCH_ROWS``), which writes ∇J as
        :meth:`Backend.cost_and_grad` would assemble it, bit for bit."""
        layers = tuple(layers)
        layout = _layout(layers)
        grad = (out if need_grad and out is not None
                else np.empty(theta.shape[0] if need_grad else 0, dtype=theta.dtype))
        if data.m > BATCH_ROWS or theta.shape[0] < BATCH_MIN_PARAMS:
            X, targets = data.materialize()
            kernel = self._loss_and_delta_kernel(layers, X.shape[0], theta.shape[0])
            total, _, squares = self._call(
                ("chunks", layers, size_class(data.m), theta.dtype.char, need_grad), kernel,
                theta, *layout[:4], X, targets.labels, targets.Y, targets.weights,
                ACTIVATIONS[activation].code, output, need_grad, n_chunks(X.shape[0]),
                penalty_mask(layers), float(data.m), lam / m, grad,
                np.empty((0, 0), dtype=theta.dtype), False,
            )
            # As Backend.cost_and_grad: diverged weights give J = inf, for callers to see.
            J = total / data.m + 0.5 * lam * squares / m
            return float(J), (grad if need_grad else None)
        rows = data.rows if data.rows is not None else _all_rows(data.m)
        targets = data.targets
        with _batch_buffers(data.workspace, layers, layout, theta.dtype, data.m) as buffers:
            key = ("batch", layers, size_class(data.m), theta.dtype.char, need_grad)
            J = self._call(key, self._batch, theta, *layout, data.X, rows, targets.labels,
                           targets.Y, targets.weights, ACTIVATIONS[activation].code, output,
                           need_grad, lam / m, grad, *buffers)
        return float(J), (grad if need_grad else None)

    def forward(self, theta, layers, X, activation, logits=False):
        """Outputs h_Θ(x) (or z(L)) of every example, shape (m, K), in the dtype of θ."""
        H = np.empty((X.shape[0], layers[-1]), dtype=theta.dtype)
        layers = tuple(layers)
        kernel = self._loss_and_delta_kernel(layers, X.shape[0], theta.shape[0])
        self._call(  # the targets' arrays empty, of the types a training run passes
            ("forward", layers, size_class(X.shape[0]), theta.dtype.char), kernel,
            theta, *_layout(layers)[:4], X, NO_LABELS,
            np.empty((0, layers[-1]), dtype=theta.dtype), NO_WEIGHTS,
            ACTIVATIONS[activation].code, 0, False, n_chunks(X.shape[0]), NO_MASK, 1.0, 0.0,
            np.empty(0, dtype=theta.dtype), H, logits,
        )
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


@functools.lru_cache(maxsize=8)
def _all_rows(m):
    return np.arange(m, dtype=np.int64)


SERIAL = NumbaBackend(parallel=False)
"""``"numba"``: the kernels compiled for one thread."""
PARALLEL = NumbaBackend(parallel=True)
"""``"numba-parallel"``: the same kernels with the chunks spread over Numba's threads."""
