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

The units of layer 1 are taken in groups of ``TILE_UNITS`` (8): a group's rows of Θ(0) are
interleaved once per call into a tile whose row k holds the group's 8 weights of input k, so
that each nonzero reads one cache line of the tile (float64) and feeds 8 running sums, and
the group's Δ(0) rows are summed the same way, interleaved, in float64. The examples are taken
``SPARSE_SEGMENT`` at a time (a mini-batch is one segment), each in three parallel passes:

1. **by groups of units**: the segment's rows' nonzeros gathered from the group's tile into
   z(1), written unit-major (a row per unit, so that no two tasks write one cache line);
2. **by chunks of examples** (their bounds a function of the segment's length, as the chunked
   kernel's): blocks of ``BLOCK`` rows take a(1) = g(z(1)), run the upper network forward, the
   loss terms and backpropagation down to δ(1) = (δ(2) W(1)) ∘ g′(a(1)), written unit-major; the
   upper network's Δ sums go into the chunk's float64 row, summed in chunk order at the end;
3. **by groups of units**: each nonzero of the segment's rows adds data[p] δ(1) of the group's
   units into the tile row of its column, in example order: only the columns the nonzeros
   touch.

∇J's rows of Θ(0) (or the Δ sums, for :meth:`loss_and_delta`) are written from the group's
Δ(0) tile at the end. Each group's rows of Θ(0) and Δ(0) are owned by one task, so Δ(0) needs
no accumulator per chunk of examples or thread (16 copies of Θ(0) would be 205 MB for 50,000
inputs and 32 units), and every sum runs in a fixed order of examples, chunks and units: the
serial and parallel compilations agree bitwise, whatever the number of threads.
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
from fastnn.backends._chunked import (
    _add_block_sums,
    _add_rows,
    _copy_weights,
    _finish_grad,
    n_chunks,
)
from fastnn.backends._products import _add_product
from fastnn.backends._tuning import (
    BLOCK,
    FLUSH_BLOCKS,
    MAX_CHUNKS,
    SPARSE_SEGMENT,
    TILE_UNITS,
)


@njit(cache=True)
def _row_squares(theta0_j):
    """Σ_k≥1 θ[k]² of unit j's row of Θ(0) (the bias not penalized), in float64: eight running
    sums (k mod 8) added in a fixed order at the end, so that the loop vectorizes without
    reassociation and the sum is the same on any thread."""
    parts = np.zeros(8)
    weights = theta0_j[1:]
    n8 = weights.shape[0] - weights.shape[0] % 8
    for k in range(0, n8, 8):
        for q in range(8):
            w = weights[k + q] * 1.0
            parts[q] += w * w
    for k in range(n8, weights.shape[0]):
        w = weights[k] * 1.0
        parts[0] += w * w
    return ((parts[0] + parts[1]) + (parts[2] + parts[3])) + (
        (parts[4] + parts[5]) + (parts[6] + parts[7]))


@njit(cache=True)
def _tile_weights(theta0, j0, T, squares):
    """T[k, u] = Θ(0)[j0 + u, k] for the ``TILE_UNITS`` units of the group from unit j0 (0 past
    the last unit): the group's rows of Θ(0) interleaved, so that a nonzero's weights for all
    of the group's units are one row of T; and each unit's Σ_k≥1 θ² into ``squares``."""
    w = min(TILE_UNITS, theta0.shape[0] - j0)
    for u in range(w):
        squares[j0 + u] = _row_squares(theta0[j0 + u])
    zero = T[0, 0] * 0
    for k in range(theta0.shape[1]):
        t = T[k]
        for u in range(TILE_UNITS):
            t[u] = theta0[j0 + u, k] if u < w else zero


@njit(cache=True, error_model="numpy")
def _group_inputs(T, data, indices, indptr, rows, first, stop, Zt, j0):
    """Zt[j0 + u, e − first] = z(1) of unit j0 + u for the examples e = first ... stop−1 (row
    ``rows[e]``, or e when ``rows`` is empty): T[0, u] + Σ_p data[p] T[1 + indices[p], u], the
    nonzeros in order. Each nonzero reads one row of the tile (:func:`_tile_weights`) and
    feeds the group's eight running sums."""
    w = min(TILE_UNITS, Zt.shape[0] - j0)
    use_rows = rows.shape[0] > 0
    bias = T[0]
    for e in range(first, stop):
        i = rows[e] if use_rows else e
        z0, z1, z2, z3 = bias[0], bias[1], bias[2], bias[3]
        z4, z5, z6, z7 = bias[4], bias[5], bias[6], bias[7]
        for p in range(indptr[i], indptr[i + 1]):
            x = data[p]
            t = T[1 + indices[p]]
            z0 += x * t[0]
            z1 += x * t[1]
            z2 += x * t[2]
            z3 += x * t[3]
            z4 += x * t[4]
            z5 += x * t[5]
            z6 += x * t[6]
            z7 += x * t[7]
        c = e - first
        Zt[j0, c] = z0
        if w > 1:
            Zt[j0 + 1, c] = z1
        if w > 2:
            Zt[j0 + 2, c] = z2
        if w > 3:
            Zt[j0 + 3, c] = z3
        if w > 4:
            Zt[j0 + 4, c] = z4
        if w > 5:
            Zt[j0 + 5, c] = z5
        if w > 6:
            Zt[j0 + 6, c] = z6
        if w > 7:
            Zt[j0 + 7, c] = z7


@njit(cache=True, error_model="numpy")
def _group_deltas(Dt, data, indices, indptr, rows, first, stop, A, j0):
    """A[0, u] += δ(1) and A[1 + indices[p], u] += data[p] δ(1) of unit j0 + u, over the
    nonzeros of the examples first ... stop−1, in example order (``Dt``: δ(1) over the
    segment, unit-major): the group's Δ(0) rows, interleaved like the tile, in float64,
    touched only where the rows have nonzeros."""
    w = min(TILE_UNITS, Dt.shape[0] - j0)
    use_rows = rows.shape[0] > 0
    zero = Dt[0, 0] * 0
    for e in range(first, stop):
        i = rows[e] if use_rows else e
        c = e - first
        d0 = Dt[j0, c]
        d1 = Dt[j0 + 1, c] if w > 1 else zero
        d2 = Dt[j0 + 2, c] if w > 2 else zero
        d3 = Dt[j0 + 3, c] if w > 3 else zero
        d4 = Dt[j0 + 4, c] if w > 4 else zero
        d5 = Dt[j0 + 5, c] if w > 5 else zero
        d6 = Dt[j0 + 6, c] if w > 6 else zero
        d7 = Dt[j0 + 7, c] if w > 7 else zero
        a = A[0]
        a[0] += d0
        a[1] += d1
        a[2] += d2
        a[3] += d3
        a[4] += d4
        a[5] += d5
        a[6] += d6
        a[7] += d7
        for p in range(indptr[i], indptr[i + 1]):
            x = data[p]
            a = A[1 + indices[p]]
            a[0] += x * d0
            a[1] += x * d1
            a[2] += x * d2
            a[3] += x * d3
            a[4] += x * d4
            a[5] += x * d5
            a[6] += x * d6
            a[7] += x * d7


@njit(cache=True)
def _group_gradient(A, theta0, j0, m_data, decay, grad0):
    """∇J's rows of the group's units from their Δ(0) rows in ``A``: grad[j, 0] = Δ / m (the
    bias, not penalized), grad[j, k] = Δ / m + decay θ: the arithmetic of
    :func:`~fastnn.backends._chunked._finish_grad`, element by element."""
    w = min(TILE_UNITS, theta0.shape[0] - j0)
    a = A[0]
    for u in range(w):
        grad0[j0 + u, 0] = a[u] / m_data + decay * 0.0
    for k in range(1, theta0.shape[1]):
        a = A[k]
        for u in range(w):
            grad0[j0 + u, k] = a[u] / m_data + decay * (theta0[j0 + u, k] * 1.0)


@njit(cache=True)
def _group_delta_out(A, j0, Delta0):
    """Delta0[j0 + u, k] = A[k, u]: the group's Δ(0) rows as θ lays them out."""
    w = min(TILE_UNITS, Delta0.shape[0] - j0)
    for k in range(Delta0.shape[1]):
        a = A[k]
        for u in range(w):
            Delta0[j0 + u, k] = a[u]


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


def _sparse_kernel(theta, layers, theta_up, ups, up_offsets, up_units, up_w, data, indices,
                   indptr, rows, m, labels, Y, weights, activation, output, need_grad,
                   penalize, mask_up, m_data, decay, grad, grad_up, Delta, Zt, Dt, tiles, accs,
                   H, logits):
    """Over the m examples (the rows ``rows`` of the CSR X, or its first m rows when ``rows``
    is empty): ``(Σ_i w_i Σ_k loss term, Σ (mask θ)²)`` (the squares with ``penalize``, else
    0; ``mask_up`` is the upper network's penalty mask), and

    - with ``need_grad``: the Δ sums, written into ``Delta`` (P float64 zeros) when it is not
      empty, and ∇J = Δ / ``m_data`` + ``decay`` mask θ written into ``grad`` (``grad_up`` its
      tail from Θ(1)) when that is not empty;
    - with ``H`` of shape (m, K) instead of empty: the outputs h_Θ(x) (z(L) with ``logits``).

    Work arrays: ``Zt``, ``Dt`` hold z(1) and δ(1) of a segment, unit-major, (s_2, ≥ min(m,
    ``SPARSE_SEGMENT``)); ``tiles`` (groups, s_1 + 1, ``TILE_UNITS``) in the dtype of θ and
    ``accs`` of that shape in float64 (empty without ``need_grad``) hold each group's tile of
    Θ(0) and its Δ(0) rows. ``theta_up`` is θ from Θ(1) on, ``ups ... up_w`` its layout (see
    :func:`fastnn.backends._numba._layout`), W and Wᵀ of its layers copied contiguous once."""
    s0, s1 = layers[0], layers[1]
    P0 = s1 * (s0 + 1)
    theta0 = theta[:P0].reshape((s1, s0 + 1))
    W = np.empty(up_w[-1], dtype=theta.dtype)
    WT = np.empty(up_w[-1], dtype=theta.dtype)
    # on this thread: the upper network's weights are few next to the first layer's, and each
    # parallel loop of the kernel costs its compilation seconds (four for a prange)
    _copy_weights(theta_up, ups, up_offsets, up_units, up_w, W, WT, 0, 1)
    P_up = theta_up.shape[0]
    Delta_chunks = np.zeros((MAX_CHUNKS, P_up if need_grad else 0))
    n_groups = (s1 + TILE_UNITS - 1) // TILE_UNITS
    unit_squares = np.empty(s1)
    forward_only = H.shape[0] > 0
    write_delta = Delta.shape[0] > 0
    write_grad = penalize and grad.shape[0] > 0
    total = 0.0
    for first in range(0, m, SPARSE_SEGMENT):
        stop = min(first + SPARSE_SEGMENT, m)
        n = stop - first
        for g in prange(n_groups):
            if first == 0:
                _tile_weights(theta0, g * TILE_UNITS, tiles[g], unit_squares)
            _group_inputs(tiles[g], data, indices, indptr, rows, first, stop, Zt,
                          g * TILE_UNITS)
        chunks = n_chunks(n)
        costs = np.zeros(chunks)
        for c in prange(chunks):
            costs[c] = _upper_chunk(
                theta_up, ups, up_offsets, up_units, up_w, W, WT, Zt, Dt, first,
                first + c * n // chunks, first + (c + 1) * n // chunks, labels, Y, weights,
                rows, activation, output, need_grad, H, logits, Delta_chunks[c])
        for c in range(chunks):
            total += costs[c]
        if need_grad and not forward_only:
            last = stop == m  # each group's Δ(0) rows written out while still in cache
            for g in prange(n_groups):
                if first == 0:
                    accs[g][:] = 0.0
                _group_deltas(Dt, data, indices, indptr, rows, first, stop, accs[g],
                              g * TILE_UNITS)
                if last and write_delta:
                    _group_delta_out(accs[g], g * TILE_UNITS,
                                     Delta[:P0].reshape((s1, s0 + 1)))
                if last and write_grad:
                    _group_gradient(accs[g], theta0, g * TILE_UNITS, m_data, decay,
                                    grad[:P0].reshape((s1, s0 + 1)))
    if forward_only:
        return total, 0.0
    if need_grad:
        Delta_up = Delta[P0:] if write_delta else np.zeros(P_up)
        _add_rows(Delta_chunks, 0, P_up, Delta_up)
    else:
        Delta_up = np.zeros(P_up)
    if not penalize:
        return total, 0.0
    squares = 0.0
    for j in range(s1):
        squares += unit_squares[j]
    squares += _finish_grad(Delta_up, 0, P_up, theta_up, mask_up, m_data, decay,
                            grad_up if need_grad else grad_up[:0])
    return total, squares
