"""The Numba backends: explicit loops over blocks of examples, compiled serial and parallel.

Per example i (seed-notes notation, 0-based layers in code):

    a(1) = x(i);  z(l+1) = Θ(l) [1; a(l)];  a(l+1) = g(z(l+1));  h = σ(z(L))
    J_sum += w_i Σ_k loss term(z_k(L), y_k(i))
    δ(L) = w_i ∂ loss / ∂z(L);  δ(l) = (Θ(l)ᵀ δ(l+1))[1:] ∘ g′(a(l))
    Δ(l) += δ(l+1) [1; a(l)]ᵀ

The examples go through these loops ``BLOCK`` at a time, so that with W(l) = Θ(l)[:, 1:]
each step is a product of the form ``OUT += C B`` computed by one register-tiled loop,
:func:`_add_product` (or as dot products of rows, :func:`_add_dot_products`). A weight loaded
from cache then serves a block of examples instead of one, which is what makes these loops
compete with BLAS-backed matrix products (one matrix-vector product per example streams every
weight from L2 for two floating-point operations).

For networks whose layers after the input all have fewer than ``NARROW`` units (64-25-10,
400-25-10) the chunked kernel keeps a block's layers after the first unit-major: A(l)ᵀ of
shape (s_l, nb), a row per unit running along the block's examples (X stays as it is, a row
per example). Every product after the first layer's forward then has its inner loop along the
block's 64 examples, however few units the layers have:

    forward    Z(l+1)ᵀ = Θ(l)[:, 0] + W(l) A(l)ᵀ     (C = W(l),    B = A(l)ᵀ)
    δ          δ(l)ᵀ = (W(l)ᵀ δ(l+1)ᵀ) ∘ g′(A(l)ᵀ)   (C = W(l)ᵀ,   B = δ(l+1)ᵀ)
    Δ          Δ(l)[:, 1:] += δ(l+1)ᵀ A(l)           (C = δ(l+1)ᵀ, B = X or A(l))

with C read as scalars (W(l) straight from Θ, no copy), and Z(1)ᵀ = W(0) Xᵀ taken as dot
products of rows of X and of Θ(0), written transposed; laid out by examples, as rows, the
loops over a layer of 25 or 10 units ran mostly in their remainder (see :func:`_unit_major`
for the measurements). Networks with wider layers keep every block as rows, A(l) of shape
(nb, s_l), as X is:

    forward    Z(l+1) = Θ(l)[:, 0] + A(l) W(l)ᵀ      (C = A(l),    B = W(l)ᵀ)
    δ          δ(l) = (δ(l+1) W(l)) ∘ g′(A(l))       (C = δ(l+1),  B = W(l))
    Δ          Δ(l)[:, 1:] += δ(l+1)ᵀ A(l)           (C = δ(l+1)ᵀ, B = A(l))

with W(l) and W(l)ᵀ copied contiguous once per call; the forward product of a layer of fewer
than ``NARROW`` units is taken as dot products of rows of A(l) and W(l).

The m examples are cut into ``n_chunks`` contiguous chunks whose boundaries depend only on m.
Each chunk owns its block buffers (allocated once per chunk, never per block or example), its
cost partial and its row of Δ accumulators, so the ``prange`` over chunks has no shared writes.
Every ``FLUSH_BLOCKS`` blocks the Δ contributions are added into the chunk's float64 row, and
the rows are summed in chunk order afterwards (column by column), so the serial and parallel
compilations of the same source return bitwise-identical results, whatever the number of
threads.

θ is one flat vector; Θ(l) starts at ``offsets[l]``, W(l) of the unrolled Δ sums and weight
copies at ``w_offsets[l]``. The chunked kernel's unit-major blocks read Θ in place; its
blocks as rows read copies of W(l) and W(l)ᵀ; the batch kernel reads Θ in place for its
forward pass, and copies W(l) of the layers it backpropagates through (see
:func:`_copy_serially`). A chunk's activation and δ buffers hold ``BLOCK``
examples of every layer after the first, layer l at ``BLOCK · (unit_offsets[l] −
unit_offsets[1])``; layer 1 is read straight from X.

That chunked kernel serves full batches and small networks. A mini-batch of a large network
(see ``BATCH_ROWS``) goes through the batch kernel, :func:`_batch_cost_and_grad`, which keeps
the activations and δ of every example of the batch, reads the batch's rows of X through their
indices where they are (never copied), keeps the activations as rows (A(l) of shape (b, s_l)),
and splits the Δ products by columns of Δ(l) instead of by examples, so that no thread holds a
copy of Δ; it also adds the penalty and writes ∇J in the dtype of θ in the same call.
"""

import functools
from contextlib import contextmanager, nullcontext
from itertools import pairwise

import numpy as np
from numba import njit, prange

from fastnn._jit import FASTMATH, compile_loop
from fastnn._threads import THREADS, size_class
from fastnn._validation import NO_WEIGHTS
from fastnn.activations import ACTIVATIONS, activate_row, scale_by_derivative_row, sigmoid
from fastnn.backends._base import Backend
from fastnn.losses import loss_term_and_delta
from fastnn.network import penalty_mask, theta_offsets

BLOCK = 64
"""Examples per block. Each weight loaded serves a whole block; the activations and δ of one
block (``2 · BLOCK · Σ_{l≥2} s_l`` numbers) stay in the core's L1/L2 cache."""

FLUSH_BLOCKS = 16
"""Blocks whose Δ contributions are summed in the dtype of θ before being added into the
chunk's float64 accumulator: in float32 no partial sum runs over more than 1024 examples."""

MIN_CHUNK = 32
"""Fewest examples per chunk: below this, thread start-up costs more than the chunk's work."""

REDUCE_COLUMNS = 4096
REDUCE_PARALLEL_MIN = 1 << 17
"""The chunks' Δ rows are summed over threads, ``REDUCE_COLUMNS`` columns (32 KiB of float64)
per task, when they hold ``REDUCE_PARALLEL_MIN`` numbers or more in more than one task's
columns; fewer are added on one thread, which is quicker than starting the threads.
Measured against the sum on one thread (each in its own process, best of 2 × 5,
numba-parallel): 784-512-256-10 (P = 533,770) 0.92 and 0.92 of its time at 2048 rows (float32,
float64), 1.01 and 0.95 at 4096; 784-128-10 1.11, 0.99, 1.04, 0.93 — a few per cent on large
P, the rest within this machine's noise."""

MAX_CHUNKS = 64
"""Chunks per call at most. A constant, not the machine's thread count, so that the chunk
boundaries, and with them the order of every sum, depend on m only: J and ∇J are bitwise the
same for any ``NUMBA_NUM_THREADS``. 64 chunks share evenly over 2, 4, ..., 64 threads and keep
8/9 of 12 or 24 threads busy. Each chunk holds a Δ accumulator of P float64: a call on at
least ``MAX_CHUNKS * MIN_CHUNK`` examples holds ``512 * P`` bytes of them (52 MB for
784-128-10), which is why the cap is not larger."""


def n_chunks(m):
    """How many chunks the m examples are cut into: a function of m only."""
    return max(1, min(MAX_CHUNKS, m // MIN_CHUNK))


@njit(cache=True, fastmath=FASTMATH)
def _add_product(C, B, OUT, cols=None):
    """OUT += C B for C of shape (R, T), B (T, N), OUT (R, N); rows of B and OUT contiguous.
    ``cols``: C's columns are C[:, cols] (T = len(cols)), read where they are.

    A 4 × 4 tile of C is held in registers while the innermost loop runs along rows of B and
    OUT: every element of B loaded serves four rows of OUT, every element of OUT loaded and
    stored takes four products, and the lanes are independent, so the loop vectorizes without
    reassociation. The three products of backpropagation are all of this form.
    """
    R = C.shape[0]
    T = C.shape[1] if cols is None else cols.shape[0]
    N = OUT.shape[1]
    R4 = R - R % 4
    T4 = T - T % 4
    for r in range(0, R4, 4):
        o0, o1, o2, o3 = OUT[r], OUT[r + 1], OUT[r + 2], OUT[r + 3]
        for t in range(0, T4, 4):
            b0, b1, b2, b3 = B[t], B[t + 1], B[t + 2], B[t + 3]
            if cols is None:
                t0, t1, t2, t3 = t, t + 1, t + 2, t + 3
            else:
                t0, t1, t2, t3 = cols[t], cols[t + 1], cols[t + 2], cols[t + 3]
            c00, c01, c02, c03 = C[r, t0], C[r, t1], C[r, t2], C[r, t3]
            c10, c11, c12, c13 = C[r + 1, t0], C[r + 1, t1], C[r + 1, t2], C[r + 1, t3]
            c20, c21, c22, c23 = C[r + 2, t0], C[r + 2, t1], C[r + 2, t2], C[r + 2, t3]
            c30, c31, c32, c33 = C[r + 3, t0], C[r + 3, t1], C[r + 3, t2], C[r + 3, t3]
            for n in range(N):
                x0, x1, x2, x3 = b0[n], b1[n], b2[n], b3[n]
                o0[n] += c00 * x0 + c01 * x1 + c02 * x2 + c03 * x3
                o1[n] += c10 * x0 + c11 * x1 + c12 * x2 + c13 * x3
                o2[n] += c20 * x0 + c21 * x1 + c22 * x2 + c23 * x3
                o3[n] += c30 * x0 + c31 * x1 + c32 * x2 + c33 * x3
        for t in range(T4, T):
            b0 = B[t]
            t0 = t if cols is None else cols[t]
            c0, c1, c2, c3 = C[r, t0], C[r + 1, t0], C[r + 2, t0], C[r + 3, t0]
            for n in range(N):
                x = b0[n]
                o0[n] += c0 * x
                o1[n] += c1 * x
                o2[n] += c2 * x
                o3[n] += c3 * x
    for r in range(R4, R):
        o = OUT[r]
        for t in range(T):
            c = C[r, t if cols is None else cols[t]]
            b = B[t]
            for n in range(N):
                o[n] += c * b[n]


NARROW = 32
"""Layers of fewer units than this get their forward product from :func:`_add_dot_products`:
with so few columns of OUT, the vectorized loop of :func:`_add_product` is mostly remainder.
Measured on a block of 64 rows (µs, tile ÷ dot products, float32 / float64): 400 → 10 units
19.1/5.9, 42.7/10.6; 400 → 25: 27.4/14.5, 34.4/24.8; 128 → 10: 6.6/2.7, 12.3/4.1; but 64 → 32:
4.7/5.6, 5.9/6.7 and 784 → 128: 129/125, 232/261."""


@njit(cache=True, fastmath=FASTMATH)
def _add_dot_products(C, W, OUT, w_off=0, rows=None):
    """OUT += C Wᵀ for C of shape (R, T), W (N, T), OUT (R, N); rows of C and W contiguous.
    ``rows``: C's rows are C[rows] (R = len(rows)), read where they are.

    Each entry is the dot product of a row of C and a row of W; four rows of C against four
    of W are taken at a time (sixteen running sums in the dtype of C), so every element loaded
    serves four products, and the loop along T vectorizes by reassociation. For a narrow OUT
    (a layer of few units, N < ``NARROW``) this beats :func:`_add_product`, whose vector loop
    runs along N. ``w_off``: the rows of W start at that column (1: W = Θ(l), read in place).
    """
    R = C.shape[0] if rows is None else rows.shape[0]
    T = C.shape[1]
    N = W.shape[0]
    zero = np.zeros(1, C.dtype)[0]
    R4 = R - R % 4
    N4 = N - N % 4
    for r in range(0, R4, 4):
        if rows is None:
            c0, c1, c2, c3 = C[r], C[r + 1], C[r + 2], C[r + 3]
        else:
            c0, c1, c2, c3 = C[rows[r]], C[rows[r + 1]], C[rows[r + 2]], C[rows[r + 3]]
        for n in range(0, N4, 4):
            w0, w1, w2, w3 = W[n, w_off:], W[n + 1, w_off:], W[n + 2, w_off:], W[n + 3, w_off:]
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
            s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
            for t in range(T):
                a0, a1, a2, a3 = c0[t], c1[t], c2[t], c3[t]
                b0, b1, b2, b3 = w0[t], w1[t], w2[t], w3[t]
                s00 += a0 * b0
                s01 += a0 * b1
                s02 += a0 * b2
                s03 += a0 * b3
                s10 += a1 * b0
                s11 += a1 * b1
                s12 += a1 * b2
                s13 += a1 * b3
                s20 += a2 * b0
                s21 += a2 * b1
                s22 += a2 * b2
                s23 += a2 * b3
                s30 += a3 * b0
                s31 += a3 * b1
                s32 += a3 * b2
                s33 += a3 * b3
            o0, o1, o2, o3 = OUT[r], OUT[r + 1], OUT[r + 2], OUT[r + 3]
            o0[n] += s00
            o0[n + 1] += s01
            o0[n + 2] += s02
            o0[n + 3] += s03
            o1[n] += s10
            o1[n + 1] += s11
            o1[n + 2] += s12
            o1[n + 3] += s13
            o2[n] += s20
            o2[n + 1] += s21
            o2[n + 2] += s22
            o2[n + 3] += s23
            o3[n] += s30
            o3[n + 1] += s31
            o3[n + 2] += s32
            o3[n + 3] += s33
        for n in range(N4, N):
            w = W[n, w_off:]
            s0 = s1 = s2 = s3 = zero
            for t in range(T):
                b = w[t]
                s0 += c0[t] * b
                s1 += c1[t] * b
                s2 += c2[t] * b
                s3 += c3[t] * b
            OUT[r, n] += s0
            OUT[r + 1, n] += s1
            OUT[r + 2, n] += s2
            OUT[r + 3, n] += s3
    for r in range(R4, R):
        c = C[r] if rows is None else C[rows[r]]
        for n in range(N):
            w = W[n, w_off:]
            s = zero
            for t in range(T):
                s += c[t] * w[t]
            OUT[r, n] += s


@njit(cache=True)
def _copy_unit_weights(theta, layers, offsets, unit_offsets, w_offsets, u, W, WT):
    """Row j of W(l) = Θ(l)[:, 1:] and, unless ``WT`` is empty, column j of W(l)ᵀ, both
    contiguous (layer l at ``w_offsets[l]``), for unit u of the units after the input layer
    (unit j of layer l+1). The chunked kernel copies every unit's weights once per call when
    its blocks are rows, in parallel over units; the batch kernel copies the rows of W(l),
    l ≥ 1, for its backpropagation (a row per unit: threads copying different units write
    different cache lines)."""
    l = 0
    while unit_offsets[l + 2] - unit_offsets[1] <= u:
        l += 1
    s_in, s_out = layers[l], layers[l + 1]
    j = u - (unit_offsets[l + 1] - unit_offsets[1])
    Theta = theta[offsets[l] : offsets[l + 1]].reshape((s_out, s_in + 1))
    W_l = W[w_offsets[l] : w_offsets[l + 1]].reshape((s_out, s_in))
    for k in range(s_in):
        W_l[j, k] = Theta[j, k + 1]
    if WT.shape[0] > 0:
        WT_l = WT[w_offsets[l] : w_offsets[l + 1]].reshape((s_in, s_out))
        for k in range(s_in):
            WT_l[k, j] = Theta[j, k + 1]


COPY_PARALLEL_MIN = 32_768
"""Weights from which the chunked kernel copies W(l), W(l)ᵀ over the threads, unit by unit;
fewer are copied on one thread. Two threads writing columns of the same rows of W(l)ᵀ share
their cache lines, which costs most when the rows are short (few units). Measured per call
when every network's W(l) and W(l)ᵀ were copied (µs, one thread ÷ two, float32 / float64):
64-25-10 4.1/5.9, 4.1/4.8; 400-25-10 9.5/27.7, 9.8/13.6 (28–90 µs over threads in other
runs); 784-128-10 80/47, 162/101."""


@njit(cache=True)
def _copy_parts(W, n_units):
    """Parts the copy into W(l), W(l)ᵀ is cut into (a ``prange`` over them): one per unit from
    ``COPY_PARALLEL_MIN`` weights, else one; none when ``W`` is empty."""
    if W.shape[0] == 0:
        return 0
    return n_units if W.shape[0] >= COPY_PARALLEL_MIN else 1


@njit(cache=True)
def _copy_weights(theta, layers, offsets, unit_offsets, w_offsets, W, WT, part, n_parts):
    """:func:`_copy_unit_weights` of the units in part ``part`` of ``n_parts`` equal parts."""
    n_units = unit_offsets[-1] - unit_offsets[1]
    for u in range(part * n_units // n_parts, (part + 1) * n_units // n_parts):
        _copy_unit_weights(theta, layers, offsets, unit_offsets, w_offsets, u, W, WT)


def _unit_major(layers):
    """Whether the chunked kernel keeps its blocks unit-major (see :func:`_unit_rows`): when
    every layer after the input has fewer than ``NARROW`` units. Measured (unit-major ÷ rows,
    J and ∇J, numba-parallel, interleaved in one process, float64 / float32): 64-25-10 on
    1,797 rows 0.89–0.91 / 0.83–0.85, on 32 rows 0.89 / 0.88; 400-25-10 on 5,000 rows
    0.93–0.96 / 0.91–0.93. Wider layers, whose rows already fill the vector loops, gain
    nothing or lose (their inner loops run along 64 examples instead of their units, and a
    wide W(0) needs the row-tiled product, into rows, then transposed): 64-32-10 1.01–1.02 /
    1.01, 100-50-10 0.98 / 1.01, 784-64-10 1.00–1.02 / 1.01–1.03, 784-128-10 0.98–1.02 /
    1.00–1.02, 784-256-128-64-10 1.01 / 1.05, 784-256-128-10 1.16 / 1.07."""
    return all(s < NARROW for s in layers[1:])


UNIT_MAJOR = False
"""Whether a compilation of the chunked kernel keeps its blocks unit-major (see
:func:`_unit_major`): a constant of each compilation (``compile_loop(..., UNIT_MAJOR=...)``),
chosen per network in Python, so that each compiles the code of one layout only."""

PARALLEL_REDUCE = False
"""Whether a compilation of :func:`_loss_and_delta_chunks` sums the chunks' Δ rows over the
threads (see ``REDUCE_PARALLEL_MIN``): a constant of each compilation, like ``UNIT_MAJOR``."""


@njit(cache=True)
def _layer_rows(buf, layers, unit_offsets, l, b, start, stop):
    """Rows start ... stop−1 of layer l ≥ 1 in a buffer holding b rows of every layer after
    the first, layer-major: layer l's (b, s_l) block at ``b · (unit_offsets[l] −
    unit_offsets[1])``."""
    s = layers[l]
    base = b * (unit_offsets[l] - unit_offsets[1])
    return buf[base + start * s : base + stop * s].reshape((stop - start, s))


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _propagate_block(theta, layers, offsets, unit_offsets, W, WT, w_offsets, X_block,
                     activation, acts, b, start, in_place=False, rows=None):
    """A(l+1) = g(A(l) W(l)ᵀ + Θ(l)[:, 0]) for a block of examples (rows); z(L) last, not σ.

    The block's rows go to rows ``start ...`` of ``acts``, a buffer of b rows per layer. The
    product goes through :func:`_add_dot_products` (with W) for a layer of fewer than
    ``NARROW`` units, else through :func:`_add_product` (with Wᵀ); ``in_place``: through
    :func:`_add_dot_products` with the rows of Θ(l) from column 1, for every layer (W and WT
    are not read). ``rows``: the block's examples are X_block[rows], read where they are (the
    batch kernel's mini-batch), the first layer as dot products with Θ(0) in place."""
    nb = X_block.shape[0] if rows is None else rows.shape[0]
    n_weights = layers.shape[0] - 1
    A_in = X_block
    for l in range(n_weights):
        s_in, s_out = layers[l], layers[l + 1]
        Theta = theta[offsets[l] : offsets[l + 1]].reshape((s_out, s_in + 1))
        Z = _layer_rows(acts, layers, unit_offsets, l + 1, b, start, start + nb)
        for r in range(nb):
            Z[r] = Theta[:, 0]
        if l == 0 and rows is not None:
            _add_dot_products(X_block, Theta, Z, 1, rows)
        elif in_place:
            _add_dot_products(A_in, Theta, Z, 1)
        elif s_out < NARROW:
            _add_dot_products(A_in, W[w_offsets[l] : w_offsets[l + 1]].reshape((s_out, s_in)), Z)
        else:
            _add_product(A_in, WT[w_offsets[l] : w_offsets[l + 1]].reshape((s_in, s_out)), Z)
        if l < n_weights - 1:
            for r in range(nb):
                activate_row(Z[r], activation)
        A_in = Z


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _backpropagate_block(layers, unit_offsets, W, w_offsets, activation, acts, deltas, b,
                         start, stop):
    """Given δ(L) of rows start ... stop−1: δ(l) = (δ(l+1) W(l)) ∘ g′(A(l)) for l = L−1 ... 2,
    row by row, in buffers of b rows per layer; W(l) from its contiguous copy in W (layer l
    at ``w_offsets[l]``)."""
    for l in range(layers.shape[0] - 2, 0, -1):
        s_in, s_out = layers[l], layers[l + 1]
        d_out = _layer_rows(deltas, layers, unit_offsets, l + 1, b, start, stop)
        d_in = _layer_rows(deltas, layers, unit_offsets, l, b, start, stop)
        A = _layer_rows(acts, layers, unit_offsets, l, b, start, stop)
        d_in[:] = 0.0
        _add_product(d_out, W[w_offsets[l] : w_offsets[l + 1]].reshape((s_out, s_in)), d_in)
        for r in range(stop - start):
            scale_by_derivative_row(d_in[r], A[r], activation)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _backward_block(layers, unit_offsets, W, w_offsets, X_block, activation, acts, deltas,
                    DW, Db):
    """Given δ(L) of a block: δ(l) for l ≥ 2, DW(l) += δ(l+1)ᵀ A(l) and Db(l) += Σ_rows
    δ(l+1); DW is unrolled like W, Db holds the biases of layer l+1 at ``unit_offsets[l+1] −
    unit_offsets[1]``, like the block buffers."""
    nb = X_block.shape[0]
    _backpropagate_block(layers, unit_offsets, W, w_offsets, activation, acts, deltas,
                         BLOCK, 0, nb)
    for l in range(layers.shape[0] - 1):
        s_in, s_out = layers[l], layers[l + 1]
        d_out = _layer_rows(deltas, layers, unit_offsets, l + 1, BLOCK, 0, nb)
        A_in = X_block if l == 0 else _layer_rows(acts, layers, unit_offsets, l, BLOCK, 0, nb)
        _add_product(d_out.T, A_in, DW[w_offsets[l] : w_offsets[l + 1]].reshape((s_out, s_in)))
        Db_l = Db[unit_offsets[l + 1] - unit_offsets[1] : unit_offsets[l + 2] - unit_offsets[1]]
        for r in range(nb):
            d = d_out[r]
            for j in range(s_out):
                Db_l[j] += d[j]


@njit(cache=True)
def _unit_rows(buf, layers, unit_offsets, l, nb):
    """Layer l ≥ 1 of a block of nb ≤ ``BLOCK`` examples, unit-major: the (s_l, nb) array
    whose row j is unit j over the block's examples, in a buffer of ``BLOCK`` examples of
    every layer after the first (layer l at ``BLOCK · (unit_offsets[l] − unit_offsets[1])``)."""
    s = layers[l]
    base = BLOCK * (unit_offsets[l] - unit_offsets[1])
    return buf[base : base + s * nb].reshape((s, nb))


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _forward_units(theta, layers, offsets, unit_offsets, X_block, activation, acts):
    """A(l+1)ᵀ = g(Θ(l)[:, 0] + W(l) A(l)ᵀ) for a block of examples, unit-major (see
    :func:`_unit_rows`); z(L)ᵀ last, not σ. Z(1)ᵀ as dot products of the rows of X and of Θ(0)
    from column 1, written transposed (:func:`_add_dot_products` into a transposed view);
    later layers by :func:`_add_product` with W(l) read from Θ(l) as scalars, the inner loop
    along the block's examples."""
    nb = X_block.shape[0]
    n_weights = layers.shape[0] - 1
    for l in range(n_weights):
        s_in, s_out = layers[l], layers[l + 1]
        Theta = theta[offsets[l] : offsets[l + 1]].reshape((s_out, s_in + 1))
        Zt = _unit_rows(acts, layers, unit_offsets, l + 1, nb)
        for j in range(s_out):
            Zt[j] = Theta[j, 0]
        if l == 0:
            # OUT a view of any layout, w_off an int64 rather than the literal 1, as in
            # _backward_units: one compilation of _add_dot_products serves both (OUT is written
            # outside its inner loop, so the layout costs nothing)
            _add_dot_products(X_block, Theta, Zt.T[:, :s_out], np.int64(1))
        else:
            _add_product(Theta[:, 1:], _unit_rows(acts, layers, unit_offsets, l, nb), Zt)
        if l < n_weights - 1:
            for j in range(s_out):
                activate_row(Zt[j], activation)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _backward_units(theta, layers, offsets, unit_offsets, w_offsets, X_block, activation,
                    acts, deltas, DW, Db):
    """Given δ(L)ᵀ of a block (unit-major, see :func:`_unit_rows`): δ(l)ᵀ = (W(l)ᵀ δ(l+1)ᵀ)
    ∘ g′(A(l)ᵀ) for l = L−1 ... 2 (W(l)ᵀ read from Θ(l) as scalars), DW(l) += δ(l+1)ᵀ A(l) and
    Db(l) += Σ_examples δ(l+1). DW is unrolled like W (layer l at ``w_offsets[l]``), Db holds
    the biases of layer l+1 at ``unit_offsets[l+1] − unit_offsets[1]``, like the block buffers.
    DW(0) by :func:`_add_product` along the rows of X; DW(l), l ≥ 1, as dot products of the
    rows of δ(l+1)ᵀ and A(l)ᵀ, along the block's examples."""
    nb = X_block.shape[0]
    for l in range(layers.shape[0] - 2, 0, -1):
        s_in, s_out = layers[l], layers[l + 1]
        Theta = theta[offsets[l] : offsets[l + 1]].reshape((s_out, s_in + 1))
        d_in = _unit_rows(deltas, layers, unit_offsets, l, nb)
        d_in[:] = 0.0
        _add_product(Theta[:, 1:].T, _unit_rows(deltas, layers, unit_offsets, l + 1, nb), d_in)
        A = _unit_rows(acts, layers, unit_offsets, l, nb)
        for j in range(s_in):
            scale_by_derivative_row(d_in[j], A[j], activation)
    for l in range(layers.shape[0] - 1):
        s_in, s_out = layers[l], layers[l + 1]
        d = _unit_rows(deltas, layers, unit_offsets, l + 1, nb)
        DW_l = DW[w_offsets[l] : w_offsets[l + 1]].reshape((s_out, s_in))
        if l == 0:  # d typed as the Θ(l)[:, 1:] of the other products (C is read as
            # scalars, so the layout costs nothing): one compilation of _add_product serves all
            _add_product(d[:, :nb], X_block, DW_l)
        else:
            _add_dot_products(d, _unit_rows(acts, layers, unit_offsets, l, nb), DW_l[:, :s_in],
                              np.int64(0))  # typed as in _forward_units
        Db_l = Db[unit_offsets[l + 1] - unit_offsets[1] : unit_offsets[l + 2] - unit_offsets[1]]
        for j in range(s_out):
            total = Db_l[j]
            row = d[j]
            for r in range(nb):
                total += row[r]
            Db_l[j] = total


NO_MASK = np.empty(0)
NO_MASK.flags.writeable = False
"""``mask`` of :func:`_loss_and_delta_chunks` when only J's data term and the Δ sums, or the
outputs, are asked for (no penalty, no ∇J); read-only like the masks of
:func:`~fastnn.network.penalty_mask`, so that the kernel is compiled for one type of mask."""

NO_LABELS = np.empty(0, dtype=np.int64)
"""``labels`` of :func:`_loss_and_delta_chunks` asked for the outputs."""

NO_ROWS = np.empty(0, dtype=np.int64)
"""``rows`` of :func:`_loss_terms` when the block's examples are consecutive rows."""


@njit(cache=True, error_model="numpy")
def _loss_terms(Z_out, d_out, labels, Y, weights, rows, start, output, unit_major):
    """Σ_i w_i Σ_k loss terms of a block, and its δ(L) (times w_i) into ``d_out``; row r of the
    block is example i = ``rows[start + r]``, or ``start + r`` when ``rows`` is empty; w_i =
    ``weights[i]``, or 1 when ``weights`` is empty. ``Z_out`` and ``d_out`` are contiguous,
    of shape (nb, K), or (K, nb) with ``unit_major`` (see :func:`_unit_rows`).

    The terms and δ are taken in one loop over the block's nb · K outputs, which vectorizes; a
    loop per example over K = 10 outputs ran mostly in its scalar remainder (the loss of a call
    on ex4, 5,000 × 10 outputs, took 0.3–0.4 ms on one thread against 1.1 ms for its 400 → 25
    product). No sum is in that loop (a sum in order would not vectorize, and the compensated
    arithmetic of exp and log1p forbids reassociation): the terms are summed afterwards,
    example by example in order, each over k in order, whatever the layout."""
    if unit_major:
        K, nb = Z_out.shape
        r_step, k_step = 1, nb
    else:
        nb, K = Z_out.shape
        r_step, k_step = K, 1
    n = nb * K
    use_matrix = Y.shape[0] > 0
    weighted = weights.shape[0] > 0
    targets = np.empty(n)
    terms = np.empty(n)
    examples = rows[start : start + nb] if rows.shape[0] > 0 else np.arange(start, start + nb)
    for r in range(nb):
        i = examples[r]
        for k in range(K):
            if use_matrix:
                targets[r * r_step + k * k_step] = Y[i, k]
            elif K == 1:
                targets[r * r_step + k * k_step] = labels[i]
            else:
                targets[r * r_step + k * k_step] = 1.0 if labels[i] == k else 0.0
    z, d = Z_out.reshape(n), d_out.reshape(n)
    for e in range(n):
        terms[e], d[e] = loss_term_and_delta(z[e], targets[e], output)
    cost = 0.0
    for r in range(nb):
        row_terms = 0.0
        for k in range(K):
            row_terms += terms[r * r_step + k * k_step]
        if weighted:
            w = weights[examples[r]]
            cost += w * row_terms
            for k in range(K):
                d[r * r_step + k * k_step] *= w
        else:
            cost += row_terms
    return cost


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
def _finish_grad(Delta_sum, lo, hi, theta, mask, m_data, penalty, grad):
    """grad[p] = Δ[p] / m_data + penalty · mask[p] θ[p] for p in lo ... hi−1, and Σ (mask[p]
    θ[p])² returned: the arithmetic of :meth:`Backend.cost_and_grad` (float64, ``mask`` 0 at
    the bias weights), element by element, so the gradients agree bitwise; ``grad`` empty: the
    sum only. No fast-math: a contracted multiply-add would round differently."""
    squares = 0.0
    write = grad.shape[0] > 0
    for p in range(lo, hi):
        w = theta[p] * mask[p]
        squares += w * w
        if write:
            grad[p] = Delta_sum[p] / m_data + penalty * w
    return squares


def _loss_and_delta_chunks(
    theta, layers, offsets, unit_offsets, w_offsets, X, labels, Y, weights, activation, output,
    need_grad, n_chunks, mask, m_data, penalty, grad, H, logits,
):
    """Σ_i w_i Σ_k loss term, Σ_i Δ contributions (float64, unrolled like θ) and, when
    ``mask`` is not empty, Σ (mask θ)² and (with ``need_grad``) ∇J written into ``grad`` (see
    :func:`_finish_grad`): J and ∇J in the one call, with nothing left for NumPy to assemble.

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
        n_parts = _copy_parts(W, n_units)
        for part in prange(n_parts):
            _copy_weights(theta, layers, offsets, unit_offsets, w_offsets, W, WT, part, n_parts)
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
        squares = _finish_grad(Delta_sum, 0, theta.shape[0], theta, mask, m_data, penalty,
                               grad) if mask.shape[0] > 0 else 0.0
        return total, Delta_sum, squares
    if not PARALLEL_REDUCE:  # few numbers: on one thread, quicker than starting the threads
        _add_rows(Delta_chunks, 0, P, Delta_sum)
        squares = _finish_grad(Delta_sum, 0, P, theta, mask, m_data, penalty,
                               grad) if mask.shape[0] > 0 else 0.0
        return total, Delta_sum, squares
    n_tasks = (P + REDUCE_COLUMNS - 1) // REDUCE_COLUMNS
    task_squares = np.zeros(n_tasks)
    for task in prange(n_tasks):
        lo = task * REDUCE_COLUMNS
        hi = min(lo + REDUCE_COLUMNS, P)
        _add_rows(Delta_chunks, lo, hi, Delta_sum)
        if mask.shape[0] > 0:
            task_squares[task] = _finish_grad(Delta_sum, lo, hi, theta, mask, m_data, penalty,
                                              grad)
    squares = 0.0
    for task in range(n_tasks):
        squares += task_squares[task]
    return total, Delta_sum, squares


BATCH_ROWS = 1024
BATCH_MIN_PARAMS = 50_000
"""The batch kernel (:func:`_batch_cost_and_grad`) computes J and ∇J of calls on at most
``BATCH_ROWS`` examples of a network with at least ``BATCH_MIN_PARAMS`` weights; other calls
take the chunked kernel, whose per-chunk Δ rows cost little when P is small.
Measured (batch kernel ÷ chunked kernel, numba-parallel, 2 threads, interleaved, best of 15):
784-128-10 float64 0.76, 0.57, 0.60, 0.72 at 64, 128, 256, 512 rows (float32 0.82-0.85);
784-256-128-64-10 0.74-0.82; but 400-25-10 (P = 10,285) 0.85, then 1.03-1.23, and 64-32-10
1.12-1.39. At 1024 rows (each kernel in its own process, best of 2 × 5): 784-128-10 0.74
(float64) and 0.81 (float32), 784-256-128-64-10 0.86 and 0.79, 784-512-256-10 0.73 and 0.40
(the chunked kernel's 16 P-sized accumulators for 64 rows each); at 2048 rows 1.00, 1.00,
1.34, 1.07, 1.04, 0.66: mixed, hence the limit. At most 1024 rows, no sum in the dtype of θ
runs over more examples than the chunked kernel's (``FLUSH_BLOCKS · BLOCK``)."""

BATCH_BLOCKS = 16
"""Blocks the batch kernel cuts its examples into (whole groups of 4 rows, at most ``BLOCK``
rows up to b = 1024 but for the last block's b % 4 extra rows; see :func:`_block_bounds`),
so that even 64 examples keep every thread busy in the forward and δ pass. The rows of a block
depend only on the batch size, never on the number of threads."""

PASS_BYTES = 256 * 1024
"""Bytes of δ(l+1) rows a Δ task streams through its block of Δ(l)ᵀ at a time, so that they
stay in the core's L2 (1 MiB on this machine class) across the block's four-column passes.
The examples are taken in the same order either way (the passes have a multiple of 4 rows), so
results do not change. Measured on 784-128-10 float64 at 1024 rows (δ(2) is 1 MiB), batch
kernel with Δ(l)ᵀ blocks ÷ the kernel before them (Δ(l) blocks from copied panels of A(l)),
interleaved in one process: 1.05 (best 1.10) in one pass, 0.91–0.94 (0.90–0.97) in passes of
this size; float32 0.86–0.88 either way."""

@njit(cache=True)
def _copy_serially(layers):
    """Whether the batch kernel copies W(l), l ≥ 1 — what its backpropagation δ(l) = δ(l+1)
    W(l) reads, contiguous, a row per unit, at the start of the call — on one thread: for
    networks of one hidden layer, whose only such matrix is W(L−1), K rows (too little for a
    parallel region); deeper networks copy over Numba's threads. W(0), the largest, and every
    W(l)ᵀ are never copied: the forward pass reads W(l) in place, as rows of Θ(l) from column 1
    (every forward product as dot products, :func:`_add_dot_products` with ``w_off`` 1).

    Networks of one hidden layer had backpropagated through Θ(L−1)[:, 1:] in place, a strided
    view, which keeps :func:`_add_product`'s loop from vectorizing (δ(2) W(1) on 1,024 rows of
    784-128-10: 0.116 ms, against 0.023 from a contiguous copy, float32); reading the rows of
    Θ(L−1) from column 1 instead slowed its other calls. Measured (the serial copy ÷ in place,
    interleaved in one process, 20–30 rounds of 30 batches, numba-parallel): 784-128-10
    float32 0.89–0.97 at 1,024 rows, 0.96–0.97 at 200 and 64; float64 0.96 at 1,024, 0.90–1.00
    at 200, 0.97 at 64; 784-256-128-64-10 (unchanged) 1.00. The measurements of the rules
    before (batch kernel ÷ the kernel before it, interleaved, 16 rounds of 50 calls; float32 /
    float64):

- everything in place ÷ W(l), W(l)ᵀ copied for every layer: 784-128-10 0.66–0.72 / 0.62–0.66
  at 64 rows, 0.75–0.76 / 0.70–0.81 at 128, 0.89–1.01 / 0.84–0.90 at 200, 0.93 / 0.94 at 512,
  0.93–0.95 / 0.93–0.97 at 1024; 784-512-10 0.88 / 0.73 at 200, 0.81 / 0.79 at 512, 0.94 /
  0.66 at 1024; 784-64-10 0.94–1.08 / 0.96–1.03; 784-256-128-64-10 0.78–0.83 at 64 and
  0.92–0.98 at 128, but 1.10 / 0.97 at 200, 1.31 / 1.08 at 512, 1.30 / 1.07 at 1024: the
  strided backpropagation through wide Θ(l) costs more than copies from 200 rows;
- forward in place and W(l), l ≥ 1, copied ÷ W(l), W(l)ᵀ copied for every layer:
  784-256-128-64-10 0.77 / 0.76 at 200, 0.89–0.91 / 0.94 at 512, 0.93–0.94 / 0.84–1.05 at
  1024;
  784-512-256-10 0.74 / 0.78 at 200, 0.86 / 0.88 at 1024;
- W(l), l ≥ 1, copied ÷ in place at 128 rows and fewer (the rule before): 784-256-128-64-10
  0.87 / 0.99 at 32 rows, 0.78 / 0.98 at 64, 0.74–0.81 / 0.84 at 128; 784-512-256-10 0.78 /
  0.98 at 32, 0.79 / 0.86 at 64, 0.84 / 0.81–0.90 at 128; 784-64-32-10 1.02 / 1.02–1.03 at
  32, 1.02 / 0.96 at 64, 0.93 / 0.94–0.96 at 128 (bitwise the same ∇J: the same sums)."""
    return layers.shape[0] == 3


BATCH_TASKS = 16
"""Groups of equal work the Δ products of the batch kernel are cut into, one ``prange``
iteration each (see :func:`_delta_tasks`). Numba hands each thread an equal share of
consecutive iterations, so groups of equal work keep the threads equally busy; a task's block
of Δ(l)ᵀ (its columns by s_(l+1)) stays in L1 while the examples' rows of δ(l+1) stream
through it."""


def _delta_tasks(layers):
    """The batch kernel's Δ tasks ``(l, first column, end column)``, int64 of shape (n, 3), and
    the bounds of their ``BATCH_TASKS`` groups (group g: tasks ``groups[g] ... groups[g+1]−1``).

    The columns of every Δ(l) in turn, each worth s_(l+1) products an example, are cut where
    the work reaches g / ``BATCH_TASKS`` of all of it, rounded to 4 columns (the rows of a
    task's Δ(l)ᵀ, taken 4 at a time); a group may end one layer and begin the next. Cut by
    layer instead (the rule before: tasks of a 16th of all weights, rounded to 8 columns),
    784-128-10 made 17 tasks, 16 of 48 columns of Δ(0) and Δ(1) whole, and the first thread
    took 9 of them, 55,296 of the 101,632 products (54 %); now each thread does 50 %.
    Measured (this ÷ the rule before, interleaved in one process, 40 alternating rounds of 30
    batches, numba-parallel; median and quartiles of the rounds' ratios): 784-128-10 float32
    0.96 (0.93–1.00) at 1,024 rows, 0.91 (0.89–0.94) at 200; float64 0.95 (0.92–0.99) and
    1.00 (0.96–1.03). Runs of 12 rounds gave 0.95–1.05: a few per cent, near the noise."""
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
    Numba hands each thread, hold as many rows. 200 rows in blocks of 16 (the rule before: 13
    blocks, 112 rows for one thread and 88 for the other) now make 16 blocks of 12 or 16
    rows, 100 for each thread. Measured (this ÷ the rule before, interleaved in one process,
    12 alternating rounds of 30 batches, numba-parallel): 784-128-10 at 200 rows 0.95–0.96
    (float32) and 0.88–0.94 (float64), at 100 rows 0.95; 784-256-128-64-10 at 200 rows 0.93
    (float32), 0.98 (float64); 300 to 500 rows 0.93–1.04; 64 and 1,024 rows have the same
    blocks as before."""
    quads = b // 4
    start = 4 * (block * quads // n_blocks)
    stop = b if block == n_blocks - 1 else 4 * ((block + 1) * quads // n_blocks)
    return start, stop


def _batch_cost_and_grad(theta, layers, offsets, unit_offsets, w_offsets, tasks, groups, X,
                         rows, labels, Y, weights, activation, output, need_grad, penalty, grad,
                         W, acts, deltas, bias_parts, Ds):
    """J and ∇J on the b ≤ ``BATCH_ROWS`` examples ``X[rows]``, written into ``grad``, with
    the work arrays of :class:`BatchBuffers` (for at least b rows).

        J = (1/b) Σ_i w_i Σ_k loss term + ½ penalty Σ Θ²    grad = Δ/b + penalty Θ  (bias: Δ/b)

    with ``penalty`` = λ/m of the full objective. Work is split so that no thread holds a
    P-sized accumulator and nothing is summed afterwards:

    1. W(l) of the layers after the first copied contiguous, a row per unit, for
       backpropagation: in parallel over the units, or on one thread for a network of one
       hidden layer (see :func:`_copy_serially`; the forward pass always reads Θ in place).
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

    Reading X through ``rows`` (the forward's dot products, the Δ(0) tasks' columns) in place
    of gathering the batch's rows into a buffer first gives bitwise the same J and ∇J; the
    gather had cost 0.34 ms of a 2.9 ms call on 1024 rows of 784-128-10 float32 (3.2 MB from
    DRAM), the forward then takes ≈ 0.1 ms more and the Δ(0) tasks, whose rows are now
    scattered over X, 0–0.1 ms more. Measured (this ÷ the gathering kernel, interleaved in one
    process, 12 alternating rounds of 30 batches, numba-parallel): 784-128-10 float32 0.90–0.94
    at 1024 rows, 0.88–0.94 at 200 (once 1.03), 1.01 at 64; float64 0.89–0.97 at 200,
    1.00–1.07 at 1024; 784-256-128-64-10 0.97–0.99, float64 at 64 rows 1.06–1.08.
    """
    b = rows.shape[0]
    L = layers.shape[0]
    n_units = unit_offsets[-1] - unit_offsets[1]
    first_copied = layers[1]  # the units of layer 2 onwards: the rows of W(1), W(2), ...
    n_copied = n_units - first_copied
    if _copy_serially(layers):
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
                        grad_j[k + 1] = DT[k - k0, j] * scale + penalty * w
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
    return total * scale + 0.5 * penalty * squares


class BatchBuffers:
    """The work arrays of :func:`_batch_cost_and_grad` for up to ``capacity`` rows of one
    network and dtype: copies of W(l) (laid out like every layer's, filled for l ≥ 1), the
    batch's activations and δ, each block's bias sums and each Δ task's block
    of Δ(l)ᵀ. A training run keeps them in the data's
    :class:`~fastnn.backends._base.Workspace` and so allocates nothing per step."""

    def __init__(self, layout, dtype, capacity):
        layers, _, unit_offsets, w_offsets, tasks, _ = layout
        n_units = unit_offsets[-1] - unit_offsets[1]
        widths = tasks[:, 2] - tasks[:, 1]
        self.capacity = capacity
        self.arrays = (
            np.empty(w_offsets[-1], dtype=dtype),  # W
            np.empty(capacity * n_units, dtype=dtype),  # acts
            np.empty(capacity * n_units, dtype=dtype),  # deltas
            # bias_parts: _batch_blocks(b) gives at most BATCH_BLOCKS blocks up to b = 1024
            np.empty((max(BATCH_BLOCKS, -(-capacity // BLOCK)), n_units), dtype=dtype),
            np.empty((len(tasks), (layers[tasks[:, 0] + 1] * widths).max()), dtype=dtype),  # Ds
        )


@contextmanager
def _batch_buffers(workspace, layers, layout, dtype, b):
    """The :class:`BatchBuffers` kept in ``workspace`` (None: fresh ones) for b rows."""
    with workspace.lease() if workspace is not None else nullcontext({}) as kept:
        key = ("batch", layers, dtype.str)
        buffers = kept.get(key)
        if buffers is None or buffers.capacity < b:
            buffers = kept[key] = BatchBuffers(layout, dtype, b)
        yield buffers.arrays


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
        self._call = THREADS.call if parallel else _call

    def _loss_and_delta_kernel(self, layers, m, P):
        """The compilation of :func:`_loss_and_delta_chunks` for a network's layout and for
        how the Δ rows of m examples are summed (over the threads from ``REDUCE_PARALLEL_MIN``
        numbers); the same for J alone and for J and ∇J, so that a training run compiles one."""
        parallel_reduce = P > REDUCE_COLUMNS and n_chunks(m) * P >= REDUCE_PARALLEL_MIN
        return self._chunked[_unit_major(layers), parallel_reduce]

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
