"""The batch kernel: J and ∇J of a mini-batch of a large network in one call.

A mini-batch of a large network (at most ``BATCH_ROWS`` examples, ``BATCH_MIN_PARAMS``
weights or more) would cost the chunked kernel a P-sized Δ accumulator per chunk for a few
examples each. :func:`_batch_cost_and_grad` instead keeps the activations and δ of every
example of the batch, reads the batch's rows of X through their indices where they are (never
copied), keeps the activations as rows (A(l) of shape (b, s_l), the steps of
:mod:`fastnn.backends._blocks`), and splits the Δ products by columns of Δ(l) instead of by
examples, so that no thread holds a copy of Δ; it also adds the penalty and writes ∇J in the
dtype of θ in the same call. Its work arrays (:func:`_batch_arrays`) are kept across the calls
of a training run.
"""

from itertools import pairwise

import numpy as np
from numba import njit, prange

from fastnn.backends._base import kept_arrays
from fastnn.backends._blocks import (
    _backpropagate_block,
    _copy_unit_weights,
    _layer_rows,
    _loss_terms,
    _propagate_block,
)
from fastnn.backends._products import _add_product
from fastnn.backends._tuning import BATCH_BLOCKS, BATCH_TASKS, BLOCK, PASS_BYTES


def _batch_arrays(layout, dtype, capacity):
    """The work arrays of :func:`_batch_cost_and_grad` for up to ``capacity`` rows of one
    network and dtype: ``(W, acts, deltas, bias_parts, Ds)``, copies of W(l) (laid out like
    every layer's, filled for l ≥ 1), the batch's activations and δ, each block's bias sums and
    each Δ task's block of Δ(l)ᵀ. A training run keeps them in the data's
    :class:`~fastnn.backends._base.Workspace` and so allocates nothing per step."""
    layers, _, unit_offsets, w_offsets, tasks, _ = layout
    n_units = unit_offsets[-1] - unit_offsets[1]
    widths = tasks[:, 2] - tasks[:, 1]
    return (
        np.empty(w_offsets[-1], dtype=dtype),  # W
        np.empty(capacity * n_units, dtype=dtype),  # acts
        np.empty(capacity * n_units, dtype=dtype),  # deltas
        # bias_parts: _batch_blocks(b) gives at most BATCH_BLOCKS blocks up to b = 1024
        np.empty((max(BATCH_BLOCKS, -(-capacity // BLOCK)), n_units), dtype=dtype),
        np.empty((len(tasks), (layers[tasks[:, 0] + 1] * widths).max()), dtype=dtype),  # Ds
    )


def _batch_buffers(workspace, layers, layout, dtype, b):
    """:func:`_batch_arrays` kept in ``workspace`` (None: fresh ones) for b rows, as a
    context manager (:func:`~fastnn.backends._base.kept_arrays`)."""
    return kept_arrays(workspace, ("batch", layers, dtype.str), b,
                       lambda rows: _batch_arrays(layout, dtype, rows))


def _delta_tasks(layers):
    """The batch kernel's Δ tasks ``(l, first column, end column)``, int64 of shape (n, 3), and
    the bounds of their ``BATCH_TASKS`` groups (group g: tasks ``groups[g] ... groups[g+1]−1``).

    The columns of every Δ(l) in turn, each worth s_(l+1) products an example, are cut where
    the work reaches g / ``BATCH_TASKS`` of all of it, rounded to 4 columns (the rows of a
    task's Δ(l)ᵀ, taken 4 at a time); a group may end one layer and begin the next. Cut by
    layer instead, the first of two threads would take 54 % of the products of 784-128-10."""
    total = sum(s_in * s_out for s_in, s_out in pairwise(layers))
    tasks, groups = [], [0]
    l = k = done = 0
    for g in range(1, BATCH_TASKS + 1):
        target = total * g / BATCH_TASKS
        while l < len(layers) - 1:
            s_in, s_out = layers[l], layers[l + 1]
            end = (s_in if g == BATCH_TASKS  # the last group takes what is left
                   else min(s_in, k + max(0, round((target - done) / s_out / 4)) * 4))
            if end > k:
                tasks.append((l, k, end))
                done += (end - k) * s_out
                k = end
            if k < s_in:
                break
            l, k = l + 1, 0
        groups.append(len(tasks))
    return np.array(tasks, dtype=np.int64), np.array(groups, dtype=np.int64)


@njit(cache=True)
def _batch_blocks(b):
    """How many blocks the batch kernel cuts b examples into: ``BATCH_BLOCKS`` (⌈b / ``BLOCK``⌉
    beyond b = 1024), but one per 4 rows below 64 rows (at least one)."""
    return max(1, min(max(BATCH_BLOCKS, -(-b // BLOCK)), b // 4))


@njit(cache=True)
def _block_bounds(b, n_blocks, block):
    """Rows ``start, stop`` of a block of the batch kernel: the b // 4 groups of 4 rows spread
    evenly over the blocks (their sizes differ by one group at most; the last block also takes
    the b % 4 rows left), so that consecutive halves, quarters ... of the blocks, which are what
    Numba hands each thread, hold as many rows (200 rows: 100 for each of two threads)."""
    quads = b // 4
    start = 4 * (block * quads // n_blocks)
    stop = b if block == n_blocks - 1 else 4 * ((block + 1) * quads // n_blocks)
    return start, stop


def _batch_cost_and_grad(theta, layers, offsets, unit_offsets, w_offsets, tasks, groups, X,
                         rows, labels, Y, weights, activation, output, need_grad, serial_copy,
                         decay, grad, W, acts, deltas, bias_parts, Ds):
    """J and ∇J on the b ≤ ``BATCH_ROWS`` examples ``X[rows]``, written into ``grad``, with
    the work arrays of :func:`_batch_arrays` (for at least b rows).

        J = (1/b) Σ_i w_i Σ_k loss term + ½ decay Σ Θ²      grad = Δ/b + decay Θ  (bias: Δ/b)

    with ``decay`` = λ/W of the full objective (:attr:`fastnn.problem.Problem.decay`). Work is
    split so that no thread holds a P-sized accumulator and nothing is summed afterwards:

    1. W(l) of the layers after the first copied contiguous, a row per unit, for
       backpropagation: in parallel over the units, or on one thread with ``serial_copy``.
       Backpropagating through Θ(l)[:, 1:] in place, a strided view, would keep
       :func:`_add_product`'s loop from vectorizing (δ(2) W(1) on 1,024 rows of 784-128-10
       takes five times as long as from a contiguous copy). W(0), the largest, and every
       W(l)ᵀ are never copied: the forward pass reads W(l) in place, as rows of Θ(l) from
       column 1 (every forward product as dot products).
    2. Over blocks of examples (``BATCH_BLOCKS``), in parallel: the forward pass, its first
       layer reading the rows of X through ``rows`` (the batch is never copied out of X, by
       the caller or here), the loss terms and δ(L), and δ(l) = (δ(l+1) W(l)) ∘ g′(A(l)),
       kept for every example, with the block's sums Σ_i δ(l+1)_i for the bias columns
       (``bias_parts``, a row per block).
    3. Over groups of tasks (``BATCH_TASKS``, :func:`_delta_tasks`), in parallel, a task
       being columns k of one Δ(l): the transposed block Δ(l)[:, 1 + k]ᵀ = Σ_i A(l)_ik
       δ(l+1)_iᵀ, summed over the examples in order, as the product A(l)[:, k0:k1]ᵀ δ(l+1),
       whose rows run along the s_(l+1) units (a long, vectorized inner loop, and no copy of
       A(l); A(0) is X, its columns read through ``rows``), then scaled and penalized
       straight into ``grad``; the task of column 0 adds the blocks' bias sums in block order.

    Every sum runs in a fixed order over examples, blocks or tasks, so the serial and parallel
    compilations agree bitwise, whatever the number of threads.

    Reading X through ``rows`` (the forward's dot products, the Δ(0) tasks' columns) gives
    bitwise the J and ∇J of gathering the batch's rows into a buffer first, without moving
    them (3.2 MB from DRAM for 1024 rows of 784-128-10 in float32).
    """
    b = rows.shape[0]
    L = layers.shape[0]
    n_units = unit_offsets[-1] - unit_offsets[1]
    first_copied = layers[1]  # the units of layer 2 onwards: the rows of W(1), W(2), ...
    n_copied = n_units - first_copied
    if serial_copy:
        for part in range(n_copied):
            _copy_unit_weights(theta, layers, offsets, unit_offsets, w_offsets,
                               first_copied + part, W, W[:0])  # no W(l)ᵀ
    else:
        for part in prange(n_copied):
            _copy_unit_weights(theta, layers, offsets, unit_offsets, w_offsets,
                               first_copied + part, W, W[:0])

    n_blocks = _batch_blocks(b)
    block_costs = np.zeros(n_blocks)
    for block in prange(n_blocks):
        start, stop = _block_bounds(b, n_blocks, block)
        _propagate_block(theta, layers, offsets, unit_offsets, W, W, w_offsets, X, activation,
                         acts, b, start, True, rows[start:stop])  # in place: W, Wᵀ not read
        Z_out = _layer_rows(acts, layers, unit_offsets, L - 1, b, start, stop)
        d_out = _layer_rows(deltas, layers, unit_offsets, L - 1, b, start, stop)
        block_costs[block] = _loss_terms(Z_out, d_out, labels, Y, weights, rows, start, output,
                                         False)
        if need_grad:
            _backpropagate_block(layers, unit_offsets, W, w_offsets, activation, acts, deltas,
                                 b, start, stop)
            sums = bias_parts[block, :n_units]
            sums[:] = 0.0
            for l in range(1, L):
                d = _layer_rows(deltas, layers, unit_offsets, l, b, start, stop)
                first = unit_offsets[l] - unit_offsets[1]
                part = sums[first : first + layers[l]]
                for r in range(stop - start):
                    row = d[r]
                    for j in range(layers[l]):
                        part[j] += row[j]

    n_tasks = tasks.shape[0]
    task_squares = np.zeros(n_tasks)
    scale = 1.0 / b
    for group in prange(groups.shape[0] - 1):
        for q in range(groups[group], groups[group + 1]):
            l, k0, k1 = tasks[q, 0], tasks[q, 1], tasks[q, 2]
            s_in, s_out = layers[l], layers[l + 1]
            Theta = theta[offsets[l] : offsets[l + 1]].reshape((s_out, s_in + 1))
            squares = 0.0
            if need_grad:
                G = grad[offsets[l] : offsets[l + 1]].reshape((s_out, s_in + 1))
                d_out = _layer_rows(deltas, layers, unit_offsets, l + 1, b, 0, b)
                width = k1 - k0
                DT = Ds[q, : width * s_out].reshape((width, s_out))  # Δ(l)[:, 1 + k0 : 1 + k1]ᵀ
                DT[:] = 0.0
                step = max(4, PASS_BYTES // (s_out * d_out.itemsize) // 4 * 4)
                for i in range(0, b, step):
                    if l == 0:  # the batch's rows of X, read where they are
                        _add_product(X[:, k0:k1].T, d_out[i : i + step], DT, rows[i : i + step])
                    else:
                        A_in = _layer_rows(acts, layers, unit_offsets, l, b, i, min(i + step, b))
                        _add_product(A_in[:, k0:k1].T, d_out[i : i + step], DT)
                if k0 == 0:
                    unit0 = unit_offsets[l + 1] - unit_offsets[1]
                    for j in range(s_out):
                        bias = 0.0
                        for block in range(n_blocks):
                            bias += bias_parts[block, unit0 + j]
                        G[j, 0] = bias * scale
                for j in range(s_out):
                    theta_j, grad_j = Theta[j], G[j]
                    for k in range(k0, k1):
                        w = theta_j[k + 1]
                        grad_j[k + 1] = DT[k - k0, j] * scale + decay * w
                        squares += w * w
            else:
                for j in range(s_out):
                    theta_j = Theta[j]
                    for k in range(k0, k1):
                        squares += theta_j[k + 1] * theta_j[k + 1]
            task_squares[q] = squares
    total = 0.0
    for block in range(n_blocks):
        total += block_costs[block]
    squares = 0.0
    for q in range(n_tasks):
        squares += task_squares[q]
    return total * scale + 0.5 * decay * squares
