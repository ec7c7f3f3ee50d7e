"""The sparse kernel: J, the Δ sums, ∇J or the outputs over the CSR rows of X.

With X in CSR form (``data``, ``indices``, ``indptr``), only the first layer's products
change: for example i with nonzeros p = ``indptr[i] ... indptr[i+1]−1``,

    z(1)_j = Θ(0)[j, 0] + Σ_p data[p] Θ(0)[j, 1 + indices[p]]
    Δ(0)[j, 0] += δ(1)_j        Δ(0)[j, 1 + indices[p]] += data[p] δ(1)_j

(layers numbered from 0, the input). Both touch only the nonzeros: a row of x with 100
nonzeros among 50,000 columns costs 100 products a unit, not 50,000. The network from layer 1
on is dense and goes through the steps of :mod:`fastnn.backends._blocks` as the chunked kernel's
blocks as rows do, on Θ(1), Θ(2), ... as a network of its own (the "upper" network, its θ the
tail of θ from ``offsets[1]``).

The examples are taken ``SPARSE_SEGMENT`` at a time (a mini-batch is one segment), each in
three parallel passes:

1. **by units of layer 1**: each unit j's row of Θ(0), contiguous and kept in cache while the
   unit runs, gathers the products of every nonzero of the segment's rows into z(1)_j, written
   unit-major (a row per unit, so that no two tasks write one cache line);
2. **by chunks of examples** (their bounds a function of the segment's length, as the chunked
   kernel's): blocks of ``BLOCK`` rows take a(1) = g(z(1)), run the upper network forward, the
   loss terms and backpropagation down to δ(1) = (δ(2) W(1)) ∘ g′(a(1)), written unit-major; the
   upper network's Δ sums go into the chunk's float64 row, summed in chunk order at the end;
3. **by units of layer 1**: each unit's Δ(0) row, float64, gets the segment's δ(1)_j times each
   nonzero of its row, in example order, into the columns those nonzeros touch.

Each unit's row of Θ(0) and of Δ(0) is owned by one task, so Δ(0) needs no accumulator per
chunk or thread (16 copies of Θ(0) would be 205 MB for 50,000 inputs and 32 units) and no copy
of Θ(0) or W(0)ᵀ is made; every sum runs in a fixed order of examples, chunks and units, so
the serial and parallel compilations agree bitwise, whatever the number of threads.

A call of one segment that asks for ∇J (an optimizer's mini-batch) never holds Δ(0) at all:
pass 3 sums each unit's row into a float64 row of a per-group scratch, kept in cache, and
writes that unit's ∇J row, Δ/m + (λ/m) Θ, from it at once. Calls of several segments add into
a float64 Δ of P numbers (the Δ sums :meth:`loss_and_delta` returns anyway), and ∇J is written
from it at the end.
"""

import numpy as np
from numba import njit, prange

from fastnn.activations import activate_row, scale_by_derivative_row, sigmoid
from fastnn.backends._blocks import (
    _backward_block,
    _layer_rows,
    _loss_terms,
    _propagate_block,
)
from fastnn.backends._chunked import _add_block_sums, _add_rows, _copy_weights, _finish_grad
from fastnn.backends._products import _add_product
from fastnn.backends._tuning import (
    BLOCK,
    FLUSH_BLOCKS,
    MAX_CHUNKS,
    MIN_CHUNK,
    SPARSE_SEGMENT,
    UNIT_GROUPS,
)


@njit(cache=True, error_model="numpy")
def _unit_inputs(theta0_j, data, indices, indptr, rows, first, stop, Zt_j):
    """Zt_j[e − first] = Θ(0)[j, 0] + Σ_p data[p] Θ(0)[j, 1 + indices[p]] over the nonzeros of
    example e's row (``rows[e]``, or e when ``rows`` is empty), for e = first ... stop−1: unit
    j's z(1) over a segment, the nonzeros summed in order."""
    bias = theta0_j[0]
    weights = theta0_j[1:]
    use_rows = rows.shape[0] > 0
    for e in range(first, stop):
        i = rows[e] if use_rows else e
        z = bias
        for p in range(indptr[i], indptr[i + 1]):
            z += data[p] * weights[indices[p]]
        Zt_j[e - first] = z


@njit(cache=True, error_model="numpy")
def _unit_deltas(Dt_j, data, indices, indptr, rows, first, stop, acc):
    """acc[0] += δ(1)_j and acc[1 + indices[p]] += data[p] δ(1)_j over the nonzeros of the
    rows of examples first ... stop−1 (``Dt_j``: unit j's δ(1) over the segment), in example
    order: unit j's Δ(0) row, in float64, touched only where the rows have nonzeros."""
    use_rows = rows.shape[0] > 0
    columns = acc[1:]
    for e in range(first, stop):
        i = rows[e] if use_rows else e
        d = Dt_j[e - first]
        acc[0] += d
        for p in range(indptr[i], indptr[i + 1]):
            columns[indices[p]] += data[p] * d


@njit(cache=True)
def _row_squares(theta0_j):
    """Σ_k≥1 θ[k]² of unit j's row of Θ(0) (the bias not penalized), in float64, in order."""
    squares = 0.0
    for k in range(1, theta0_j.shape[0]):
        w = theta0_j[k] * 1.0
        squares += w * w
    return squares


@njit(cache=True)
def _finish_unit(acc, theta0_j, m_data, decay, grad0_j):
    """Unit j's ∇J row from its Δ(0) row ``acc``: grad[0] = Δ[0] / m (the bias, not
    penalized), grad[k] = Δ[k] / m + decay θ[k]: the arithmetic of
    :func:`~fastnn.backends._chunked._finish_grad`, element by element, so that a row agrees
    bitwise however its Δ was held."""
    grad0_j[0] = acc[0] / m_data + decay * 0.0
    for k in range(1, theta0_j.shape[0]):
        grad0_j[k] = acc[k] / m_data + decay * (theta0_j[k] * 1.0)


@njit(cache=True, error_model="numpy")
def _write_outputs(Z_out, H, start, logits):
    """H[start + r] = σ(z(L)) of the block's row r (z(L) itself with ``logits``)."""
    for r in range(Z_out.shape[0]):
        for k in range(H.shape[1]):
            H[start + r, k] = Z_out[r, k] if logits else sigmoid(Z_out[r, k])


@njit(cache=True, error_model="numpy")
def _upper_chunk(theta_up, ups, up_offsets, up_units, up_w, W, WT, Zt, Dt, first, start, stop,
                 labels, Y, weights, rows, activation, output, need_grad, H, logits, Delta_row):
    """Examples start ... stop−1 of the segment beginning at example ``first`` (a chunk), in
    blocks of ``BLOCK``: a(1) = g(z(1)) from the unit-major ``Zt``, the upper network forward,
    the loss terms and δ(L) (:func:`~fastnn.backends._blocks._loss_terms`), backpropagation to
    δ(1) written unit-major into ``Dt``, and the upper network's Δ sums added into
    ``Delta_row`` (float64) every ``FLUSH_BLOCKS`` blocks. Returns Σ_i w_i Σ_k loss terms;
    with ``H`` not empty, writes the outputs instead (see :func:`_sparse_kernel`)."""
    s1 = ups[0]
    n_up = ups.shape[0]
    n_units = up_units[-1] - up_units[1]
    A1 = np.empty((BLOCK, s1), dtype=Zt.dtype)
    D1 = np.empty((BLOCK, s1), dtype=Zt.dtype)
    acts = np.empty(BLOCK * n_units, dtype=Zt.dtype)
    deltas = np.empty(BLOCK * n_units, dtype=Zt.dtype)
    DW = np.zeros(up_w[-1] if need_grad else 0, dtype=Zt.dtype)
    Db = np.zeros(n_units if need_grad else 0, dtype=Zt.dtype)
    cost = 0.0
    n_blocks = 0
    for block_start in range(start, stop, BLOCK):
        block_stop = min(block_start + BLOCK, stop)
        nb = block_stop - block_start
        A = A1[:nb]
        for r in range(nb):
            for j in range(s1):
                A[r, j] = Zt[j, block_start - first + r]
        if n_up == 1:  # no hidden layer: z(1) is the output
            Z_out, d_out = A, D1[:nb]
        else:
            for r in range(nb):
                activate_row(A[r], activation)
            _propagate_block(theta_up, ups, up_offsets, up_units, W, WT, up_w, A, activation,
                             acts, BLOCK, 0)
            Z_out = _layer_rows(acts, ups, up_units, n_up - 1, BLOCK, 0, nb)
            d_out = _layer_rows(deltas, ups, up_units, n_up - 1, BLOCK, 0, nb)
        if H.shape[0] > 0:
            _write_outputs(Z_out, H, block_start, logits)
            continue
        cost += _loss_terms(Z_out, d_out, labels, Y, weights, rows, block_start, output, False)
        if not need_grad:
            continue
        if n_up > 1:
            _backward_block(ups, up_units, W, up_w, A, activation, acts, deltas, DW, Db)
            d1 = D1[:nb]
            d1[:] = 0.0
            _add_product(_layer_rows(deltas, ups, up_units, 1, BLOCK, 0, nb),
                         W[up_w[0] : up_w[1]].reshape((ups[1], s1)), d1)
            for r in range(nb):
                scale_by_derivative_row(d1[r], A[r], activation)
            n_blocks += 1
            if n_blocks == FLUSH_BLOCKS or block_stop == stop:
                _add_block_sums(ups, up_offsets, up_units, up_w, DW, Db, Delta_row)
                DW[:] = 0.0
                Db[:] = 0.0
                n_blocks = 0
        d1 = D1[:nb]
        for j in range(s1):
            for r in range(nb):
                Dt[j, block_start - first + r] = d1[r, j]
    return cost


def _sparse_kernel(theta, layers, theta_up, ups, up_offsets, up_units, up_w, copy_parts,
                   data, indices, indptr, rows, m, labels, Y, weights, activation, output,
                   need_grad, penalize, mask_up, m_data, decay, grad, grad_up, Delta, Zt, Dt,
                   scratch, H, logits):
    """Over the m examples (the rows ``rows`` of the CSR X, or its first m rows when ``rows``
    is empty): ``(Σ_i w_i Σ_k loss term, Σ (mask θ)²)``, and

    - with ``need_grad`` and ``Delta`` of P float64 numbers (zeros): the Δ sums added into
      ``Delta``, unrolled like θ; with ``grad`` not empty as well, ∇J written from them;
    - with ``need_grad`` and ``Delta`` empty (one segment: m ≤ ``SPARSE_SEGMENT``): ∇J written
      into ``grad`` (and ``grad_up``, its tail from Θ(1)), each unit's Δ(0) row summed in a row
      of ``scratch`` (``UNIT_GROUPS`` float64 rows of s_0 + 1);
    - with ``H`` of shape (m, K) instead of empty: the outputs h_Θ(x) (z(L) with ``logits``).

    ``penalize``: the squares, with ``mask_up`` the upper network's penalty mask (else 0);
    ``m_data``, ``decay`` as :func:`~fastnn.backends._chunked._finish_grad` takes them.
    ``Zt``, ``Dt`` hold z(1) and δ(1) of a segment, unit-major, (s_1, ≥ min(m,
    ``SPARSE_SEGMENT``)). ``theta_up`` is θ from Θ(1) on, ``ups ... up_w`` its layout (see
    :func:`fastnn.backends._numba._layout`), W and Wᵀ of its layers copied contiguous once,
    in ``copy_parts`` parts over the threads."""
    s0, s1 = layers[0], layers[1]
    theta0 = theta[: s1 * (s0 + 1)].reshape((s1, s0 + 1))
    W = np.empty(up_w[-1], dtype=theta.dtype)
    WT = np.empty(up_w[-1], dtype=theta.dtype)
    for part in prange(copy_parts):
        _copy_weights(theta_up, ups, up_offsets, up_units, up_w, W, WT, part, copy_parts)
    P_up = theta_up.shape[0]
    Delta_chunks = np.zeros((MAX_CHUNKS, P_up if need_grad else 0))
    fused = need_grad and Delta.shape[0] == 0
    Delta0 = Delta[: s1 * (s0 + 1)].reshape((s1, s0 + 1)) if Delta.shape[0] > 0 else scratch
    unit_squares = np.empty(s1)
    forward_only = H.shape[0] > 0
    total = 0.0
    for first in range(0, m, SPARSE_SEGMENT):
        stop = min(first + SPARSE_SEGMENT, m)
        n = stop - first
        for j in prange(s1):
            _unit_inputs(theta0[j], data, indices, indptr, rows, first, stop, Zt[j])
        n_chunks = max(1, min(MAX_CHUNKS, n // MIN_CHUNK))
        costs = np.zeros(n_chunks)
        for c in prange(n_chunks):
            costs[c] = _upper_chunk(
                theta_up, ups, up_offsets, up_units, up_w, W, WT, Zt, Dt, first,
                first + c * n // n_chunks, first + (c + 1) * n // n_chunks, labels, Y, weights,
                rows, activation, output, need_grad, H, logits, Delta_chunks[c])
        for c in range(n_chunks):
            total += costs[c]
        if forward_only or not need_grad:
            continue
        if fused:
            n_groups = min(UNIT_GROUPS, s1)
            for g in prange(n_groups):
                acc = scratch[g]
                for j in range(g * s1 // n_groups, (g + 1) * s1 // n_groups):
                    acc[:] = 0.0
                    _unit_deltas(Dt[j], data, indices, indptr, rows, first, stop, acc)
                    _finish_unit(acc, theta0[j], m_data, decay,
                                 grad[j * (s0 + 1) : (j + 1) * (s0 + 1)])
        else:
            for j in prange(s1):
                _unit_deltas(Dt[j], data, indices, indptr, rows, first, stop, Delta0[j])
    if forward_only:
        return total, 0.0
    Delta_up = Delta[theta.shape[0] - P_up :] if Delta.shape[0] > 0 else np.zeros(P_up)
    if need_grad:
        _add_rows(Delta_chunks, 0, P_up, Delta_up)
    if not penalize:
        return total, 0.0
    write = need_grad and not fused and grad.shape[0] > 0
    for j in prange(s1):
        unit_squares[j] = _row_squares(theta0[j])
        if write:  # Δ(0) held in Delta: ∇J's rows of Θ(0) from it
            _finish_unit(Delta0[j], theta0[j], m_data, decay,
                         grad[j * (s0 + 1) : (j + 1) * (s0 + 1)])
    squares = 0.0
    for j in range(s1):
        squares += unit_squares[j]
    squares += _finish_grad(Delta_up, 0, P_up, theta_up, mask_up, m_data, decay,
                            grad_up if need_grad else grad_up[:0])
    return total, squares
