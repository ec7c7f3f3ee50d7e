"""The chunked kernel: J, the Δ sums, ∇J or the outputs over m examples cut into chunks.

The m examples are cut into ``n_chunks`` contiguous chunks whose boundaries depend only on m.
Each chunk owns its block buffers (allocated once per chunk, never per block or example), its
cost partial and its row of Δ accumulators, so the ``prange`` over chunks has no shared writes.
The chunk's examples go through :mod:`fastnn.backends._blocks` ``BLOCK`` at a time, in the
layout of the compilation (``UNIT_MAJOR``); every ``FLUSH_BLOCKS`` blocks their Δ contributions
are added into the chunk's float64 row, and the rows are summed in chunk order afterwards
(column by column, on one thread or over the threads: ``PARALLEL_REDUCE``), so the serial and
parallel compilations of the same source return bitwise-identical results, whatever the number
of threads. Blocks as rows read contiguous copies of W(l) and W(l)ᵀ, made once per call;
unit-major blocks read Θ in place.

This kernel serves full batches, the mini-batches of small networks, J alone, the Δ sums of
the Dask backend's chunks and the outputs (:func:`fastnn.backends._numba.choose_kernel`).
"""

import numpy as np
from numba import njit, prange

from fastnn.activations import sigmoid
from fastnn.backends._blocks import (
    NO_ROWS,
    _backward_block,
    _backward_units,
    _copy_unit_weights,
    _forward_units,
    _layer_rows,
    _loss_terms,
    _propagate_block,
    _unit_rows,
)
from fastnn.backends._tuning import (
    BLOCK,
    FLUSH_BLOCKS,
    MAX_CHUNKS,
    MIN_CHUNK,
    REDUCE_COLUMNS,
)

UNIT_MAJOR = False
"""Whether a compilation of :func:`_loss_and_delta_chunks` keeps its blocks unit-major: a
constant of each compilation (``compile_loop(..., UNIT_MAJOR=...)``), chosen per network in
Python, so that each compiles the code of one layout only."""

PARALLEL_REDUCE = False
"""Whether a compilation of :func:`_loss_and_delta_chunks` sums the chunks' Δ rows over the
threads (see ``REDUCE_PARALLEL_MIN``): a constant of each compilation, like ``UNIT_MAJOR``."""


NO_MASK = np.empty(0)
NO_MASK.flags.writeable = False
"""``mask`` of :func:`_loss_and_delta_chunks` when only J's data term and the Δ sums, or the
outputs, are asked for (no penalty, no ∇J); read-only like the masks of
:func:`~fastnn.network.penalty_mask`, so that the kernel is compiled for one type of mask."""

NO_LABELS = np.empty(0, dtype=np.int64)
"""``labels`` of :func:`_loss_and_delta_chunks` asked for the outputs."""


@njit(cache=True)
def n_chunks(m):
    """How many chunks the m examples are cut into: a function of m alone (compiled, for the
    sparse kernel's segments too)."""
    return max(1, min(MAX_CHUNKS, m // MIN_CHUNK))


@njit(cache=True)
def _copy_weights(theta, layers, offsets, unit_offsets, w_offsets, W, WT, part, n_parts):
    """:func:`_copy_unit_weights` of the units in part ``part`` of ``n_parts`` equal parts."""
    n_units = unit_offsets[-1] - unit_offsets[1]
    for u in range(part * n_units // n_parts, (part + 1) * n_units // n_parts):
        _copy_unit_weights(theta, layers, offsets, unit_offsets, w_offsets, u, W, WT)


@njit(cache=True)
def _add_rows(rows, lo, hi, total):
    """total[lo:hi] += Σ_c rows[c, lo:hi], each column summed in row order: the same sums, bit
    for bit, however the column ranges are spread over threads."""
    for c in range(rows.shape[0]):
        row = rows[c]
        for p in range(lo, hi):
            total[p] += row[p]


@njit(cache=True)
def _add_block_sums(layers, offsets, unit_offsets, w_offsets, DW, Db, Delta):
    """Δ(l)[:, 0] += Db(l), Δ(l)[:, 1:] += DW(l), in float64, Δ unrolled like θ."""
    for l in range(layers.shape[0] - 1):
        s_in, s_out = layers[l], layers[l + 1]
        Delta_l = Delta[offsets[l] : offsets[l + 1]].reshape((s_out, s_in + 1))
        DW_l = DW[w_offsets[l] : w_offsets[l + 1]].reshape((s_out, s_in))
        b_start = unit_offsets[l + 1] - unit_offsets[1]
        for j in range(s_out):
            Delta_l[j, 0] += Db[b_start + j]
            row, dw = Delta_l[j, 1:], DW_l[j]
            for k in range(s_in):
                row[k] += dw[k]


@njit(cache=True)
def _finish_grad(Delta_sum, lo, hi, theta, mask, m_data, decay, grad):
    """grad[p] = Δ[p] / m_data + decay · mask[p] θ[p] for p in lo ... hi−1, and Σ (mask[p]
    θ[p])² returned: the arithmetic of :meth:`Backend.cost_and_grad` (float64, ``mask`` 0 at
    the bias weights), element by element, so the gradients agree bitwise; ``grad`` empty: the
    sum only. No fast-math: a contracted multiply-add would round differently."""
    squares = 0.0
    write = grad.shape[0] > 0
    for p in range(lo, hi):
        w = theta[p] * mask[p]
        squares += w * w
        if write:
            grad[p] = Delta_sum[p] / m_data + decay * w
    return squares


def _loss_and_delta_chunks(
    theta, layers, offsets, unit_offsets, w_offsets, X, labels, Y, weights, activation, output,
    need_grad, n_chunks, copy_parts, mask, m_data, decay, grad, H, logits,
):
    """Σ_i w_i Σ_k loss term, Σ_i Δ contributions (float64, unrolled like θ) and, when
    ``mask`` is not empty, Σ (mask θ)² and (with ``need_grad``) ∇J written into ``grad`` (see
    :func:`_finish_grad`): J and ∇J in the one call, with nothing left for NumPy to assemble.
    The examples are cut into ``n_chunks`` chunks; blocks as rows copy W(l), W(l)ᵀ first, in
    ``copy_parts`` parts over the threads (see :func:`fastnn.backends._numba.choose_kernel`).

    With ``H`` of shape (m, K) instead of empty, the forward pass only: H[i] = h_Θ(x(i)) =
    σ(z(L)) for every example, or z(L) itself with ``logits``; the targets are not read and
    the sums are 0. The outputs come from this kernel rather than from one of their own
    because a parallel compilation holds its loop body several times over (the gufunc and its
    two wrappers each link it and optimize it again): a kernel for the forward pass alone
    would take about as long to compile as this one."""
    m = X.shape[0]
    L = layers.shape[0]
    n_units = unit_offsets[-1] - unit_offsets[1]
    if not UNIT_MAJOR:  # blocks as rows read contiguous copies of every W(l) and W(l)ᵀ
        W = np.empty(w_offsets[-1], dtype=theta.dtype)
        WT = np.empty(w_offsets[-1], dtype=theta.dtype)
        for part in prange(copy_parts):
            _copy_weights(theta, layers, offsets, unit_offsets, w_offsets, W, WT, part,
                          copy_parts)
    costs = np.empty(n_chunks)
    Delta_chunks = np.empty((n_chunks, theta.shape[0] if need_grad else 0))
    for c in prange(n_chunks):
        Delta_chunks[c] = 0.0  # by the chunk's thread
        acts = np.empty(BLOCK * n_units, dtype=theta.dtype)
        deltas = np.empty(BLOCK * n_units, dtype=theta.dtype)
        DW = np.empty(w_offsets[-1] if need_grad else 0, dtype=theta.dtype)
        Db = np.empty(n_units if need_grad else 0, dtype=theta.dtype)
        DW[:] = 0.0
        Db[:] = 0.0
        n_blocks = 0
        cost = 0.0
        chunk_stop = (c + 1) * m // n_chunks
        for start in range(c * m // n_chunks, chunk_stop, BLOCK):
            stop = min(start + BLOCK, chunk_stop)
            X_block = X[start:stop]
            nb = stop - start
            if UNIT_MAJOR:
                _forward_units(theta, layers, offsets, unit_offsets, X_block, activation, acts)
                Z_out = _unit_rows(acts, layers, unit_offsets, L - 1, nb)
                d_out = _unit_rows(deltas, layers, unit_offsets, L - 1, nb)
            else:
                _propagate_block(theta, layers, offsets, unit_offsets, W, WT, w_offsets, X_block,
                                 activation, acts, BLOCK, 0)
                Z_out = _layer_rows(acts, layers, unit_offsets, L - 1, BLOCK, 0, nb)
                d_out = _layer_rows(deltas, layers, unit_offsets, L - 1, BLOCK, 0, nb)
            if H.shape[0] > 0:
                Z_rows = Z_out.T if UNIT_MAJOR else Z_out
                for b in range(nb):
                    for k in range(H.shape[1]):
                        H[start + b, k] = Z_rows[b, k] if logits else sigmoid(Z_rows[b, k])
                continue
            cost += _loss_terms(Z_out, d_out, labels, Y, weights, NO_ROWS, start, output,
                                UNIT_MAJOR)
            if need_grad:
                if UNIT_MAJOR:
                    _backward_units(theta, layers, offsets, unit_offsets, w_offsets, X_block,
                                    activation, acts, deltas, DW, Db)
                else:
                    _backward_block(layers, unit_offsets, W, w_offsets, X_block, activation,
                                    acts, deltas, DW, Db)
                n_blocks += 1
                if n_blocks == FLUSH_BLOCKS or stop == chunk_stop:
                    _add_block_sums(layers, offsets, unit_offsets, w_offsets, DW, Db,
                                    Delta_chunks[c])
                    DW[:] = 0.0
                    Db[:] = 0.0
                    n_blocks = 0
        costs[c] = cost
    total = 0.0
    for c in range(n_chunks):
        total += costs[c]
    P = Delta_chunks.shape[1]
    Delta_sum = np.zeros(P)
    if not need_grad:  # Σ (mask θ)² over all of θ, in one task
        squares = _finish_grad(Delta_sum, 0, theta.shape[0], theta, mask, m_data, decay,
                               grad) if mask.shape[0] > 0 else 0.0
        return total, Delta_sum, squares
    if not PARALLEL_REDUCE:  # few numbers: on one thread, quicker than starting the threads
        _add_rows(Delta_chunks, 0, P, Delta_sum)
        squares = _finish_grad(Delta_sum, 0, P, theta, mask, m_data, decay,
                               grad) if mask.shape[0] > 0 else 0.0
        return total, Delta_sum, squares
    n_tasks = (P + REDUCE_COLUMNS - 1) // REDUCE_COLUMNS
    task_squares = np.zeros(n_tasks)
    for task in prange(n_tasks):
        lo = task * REDUCE_COLUMNS
        hi = min(lo + REDUCE_COLUMNS, P)
        _add_rows(Delta_chunks, lo, hi, Delta_sum)
        if mask.shape[0] > 0:
            task_squares[task] = _finish_grad(Delta_sum, lo, hi, theta, mask, m_data, decay,
                                              grad)
    squares = 0.0
    for task in range(n_tasks):
        squares += task_squares[task]
    return total, Delta_sum, squares
