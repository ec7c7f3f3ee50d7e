"""The Numba backends: explicit loops over blocks of examples, compiled serial and parallel.

Per example i (seed-notes notation, 0-based layers in code):

    a(1) = x(i);  z(l+1) = Θ(l) [1; a(l)];  a(l+1) = g(z(l+1));  h = σ(z(L))
    J_sum += Σ_k loss term(z_k(L), y_k(i))
    δ(L) = ∂ loss / ∂z(L);  δ(l) = (Θ(l)ᵀ δ(l+1))[1:] ∘ g′(a(l))
    Δ(l) += δ(l+1) [1; a(l)]ᵀ

The examples go through these loops ``BLOCK`` at a time, stacked as rows (A(l) of shape
(nb, s_l), as X is), so that with W(l) = Θ(l)[:, 1:] each step is a product of the form
``OUT += C B`` computed by one register-tiled loop, :func:`_add_product`:

    forward    Z(l+1) = Θ(l)[:, 0] + A(l) W(l)ᵀ      (C = A(l),    B = W(l)ᵀ)
    δ          δ(l) = (δ(l+1) W(l)) ∘ g′(A(l))       (C = δ(l+1),  B = W(l))
    Δ          Δ(l)[:, 1:] += δ(l+1)ᵀ A(l)           (C = δ(l+1)ᵀ, B = A(l))

A weight loaded from cache then serves a block of examples instead of one, which is what
makes these loops compete with BLAS-backed matrix products (one matrix-vector product per
example streams every weight from L2 for two floating-point operations).

The m examples are cut into ``n_chunks`` contiguous chunks whose boundaries depend only on m.
Each chunk owns its block buffers (allocated once per chunk, never per block or example), its
cost partial and its row of Δ accumulators, so the ``prange`` over chunks has no shared writes.
Every ``FLUSH_BLOCKS`` blocks the Δ contributions are added into the chunk's float64 row, and
the rows are summed serially in chunk order afterwards, so the serial and parallel
compilations of the same source return bitwise-identical results, whatever the number of
threads.

θ is one flat vector; Θ(l) starts at ``offsets[l]``. W(l) and W(l)ᵀ are copied once per call
into contiguous vectors, layer l at ``w_offsets[l]``. A chunk's activation and δ buffers hold
``BLOCK`` rows of every layer after the first, layer l at ``BLOCK · (unit_offsets[l] −
unit_offsets[1])``; layer 1 is read straight from X.
"""

import types

import numba
import numpy as np
from numba import njit, prange

from fastnn.activations import ACTIVATIONS, activate, derivative, sigmoid
from fastnn.backends._base import Backend
from fastnn.losses import LOSSES, loss_term_and_delta
from fastnn.network import theta_offsets

FASTMATH = {"reassoc", "contract"}
"""The only fast-math flags the kernels use: reassociation lets the dot-product and axpy loops
vectorize, contraction lets them use FMA. Never ``nnan``/``ninf`` (the cost and the input
checks rely on inf and NaN semantics), so never ``fastmath=True``. Results change by rounding
only; the tests pin them against the NumPy backend and the naive reference to 1e-12."""

BLOCK = 64
"""Examples per block. Each weight loaded serves a whole block; the activations and δ of one
block (``2 · BLOCK · Σ_{l≥2} s_l`` numbers) stay in the core's L1/L2 cache."""

FLUSH_BLOCKS = 16
"""Blocks whose Δ contributions are summed in the dtype of θ before being added into the
chunk's float64 accumulator: in float32 no partial sum runs over more than 1024 examples."""

MIN_CHUNK = 32
"""Fewest examples per chunk: below this, thread start-up costs more than the chunk's work."""

MAX_CHUNKS = max(16, numba.config.NUMBA_NUM_THREADS)
"""Chunks per call at most. Fixed per machine so results do not depend on thread scheduling;
each chunk holds one Δ accumulator of P float64, so memory is ``MAX_CHUNKS * P * 8`` bytes."""


def n_chunks(m):
    """How many chunks the m examples are cut into (a function of m and the machine only)."""
    return max(1, min(MAX_CHUNKS, m // MIN_CHUNK))


@njit(cache=True, fastmath=FASTMATH)
def _add_product(C, B, OUT):
    """OUT += C B for C of shape (R, T), B (T, N), OUT (R, N); rows of B and OUT contiguous.

    A 4 × 4 tile of C is held in registers while the innermost loop runs along rows of B and
    OUT: every element of B loaded serves four rows of OUT, every element of OUT loaded and
    stored takes four products, and the lanes are independent, so the loop vectorizes without
    reassociation. The three products of backpropagation are all of this form.
    """
    R, T = C.shape
    N = OUT.shape[1]
    R4 = R - R % 4
    T4 = T - T % 4
    for r in range(0, R4, 4):
        o0, o1, o2, o3 = OUT[r], OUT[r + 1], OUT[r + 2], OUT[r + 3]
        for t in range(0, T4, 4):
            b0, b1, b2, b3 = B[t], B[t + 1], B[t + 2], B[t + 3]
            c00, c01, c02, c03 = C[r, t], C[r, t + 1], C[r, t + 2], C[r, t + 3]
            c10, c11, c12, c13 = C[r + 1, t], C[r + 1, t + 1], C[r + 1, t + 2], C[r + 1, t + 3]
            c20, c21, c22, c23 = C[r + 2, t], C[r + 2, t + 1], C[r + 2, t + 2], C[r + 2, t + 3]
            c30, c31, c32, c33 = C[r + 3, t], C[r + 3, t + 1], C[r + 3, t + 2], C[r + 3, t + 3]
            for n in range(N):
                x0, x1, x2, x3 = b0[n], b1[n], b2[n], b3[n]
                o0[n] += c00 * x0 + c01 * x1 + c02 * x2 + c03 * x3
                o1[n] += c10 * x0 + c11 * x1 + c12 * x2 + c13 * x3
                o2[n] += c20 * x0 + c21 * x1 + c22 * x2 + c23 * x3
                o3[n] += c30 * x0 + c31 * x1 + c32 * x2 + c33 * x3
        for t in range(T4, T):
            b0 = B[t]
            c0, c1, c2, c3 = C[r, t], C[r + 1, t], C[r + 2, t], C[r + 3, t]
            for n in range(N):
                x = b0[n]
                o0[n] += c0 * x
                o1[n] += c1 * x
                o2[n] += c2 * x
                o3[n] += c3 * x
    for r in range(R4, R):
        o = OUT[r]
        for t in range(T):
            c = C[r, t]
            b = B[t]
            for n in range(N):
                o[n] += c * b[n]


@njit(cache=True)
def _split_weights(theta, layers, offsets, w_offsets):
    """W(l) = Θ(l)[:, 1:] and W(l)ᵀ, each contiguous, layer l at ``w_offsets[l]``."""
    W = np.empty(w_offsets[-1], dtype=theta.dtype)
    WT = np.empty(w_offsets[-1], dtype=theta.dtype)
    for l in range(layers.shape[0] - 1):
        s_in, s_out = layers[l], layers[l + 1]
        Theta = theta[offsets[l] : offsets[l + 1]].reshape((s_out, s_in + 1))
        W_l = W[w_offsets[l] : w_offsets[l + 1]].reshape((s_out, s_in))
        WT_l = WT[w_offsets[l] : w_offsets[l + 1]].reshape((s_in, s_out))
        for j in range(s_out):
            for k in range(s_in):
                W_l[j, k] = Theta[j, k + 1]
                WT_l[k, j] = Theta[j, k + 1]
    return W, WT


@njit(cache=True)
def _rows(buf, layers, unit_offsets, l, nb):
    """The (nb, s_l) block of layer l ≥ 1 in a per-chunk buffer of ``BLOCK`` rows per layer."""
    start = BLOCK * (unit_offsets[l] - unit_offsets[1])
    return buf[start : start + nb * layers[l]].reshape((nb, layers[l]))


@njit(cache=True, fastmath=FASTMATH)
def _propagate_block(theta, layers, offsets, unit_offsets, WT, w_offsets, X_block, activation,
                     acts):
    """A(l+1) = g(A(l) W(l)ᵀ + Θ(l)[:, 0]) for a block of examples (rows); z(L) last, not σ."""
    nb = X_block.shape[0]
    n_weights = layers.shape[0] - 1
    A_in = X_block
    for l in range(n_weights):
        s_in, s_out = layers[l], layers[l + 1]
        Theta = theta[offsets[l] : offsets[l + 1]].reshape((s_out, s_in + 1))
        Z = _rows(acts, layers, unit_offsets, l + 1, nb)
        for b in range(nb):
            Z[b] = Theta[:, 0]
        _add_product(A_in, WT[w_offsets[l] : w_offsets[l + 1]].reshape((s_in, s_out)), Z)
        if l < n_weights - 1:
            for b in range(nb):
                z = Z[b]
                for j in range(s_out):
                    z[j] = activate(z[j], activation)
        A_in = Z


@njit(cache=True, fastmath=FASTMATH)
def _backward_block(layers, unit_offsets, W, w_offsets, X_block, activation, acts, deltas,
                    DW, Db):
    """Given δ(L) of a block: DW(l) += δ(l+1)ᵀ A(l), Db(l) += Σ_rows δ(l+1), and δ(l), l ≥ 2.

    δ(l) = (δ(l+1) W(l)) ∘ g′(A(l)) row by row; DW is unrolled like W, Db holds the biases of
    layer l+1 at ``unit_offsets[l+1] − unit_offsets[1]``, like the block buffers.
    """
    nb = X_block.shape[0]
    for l in range(layers.shape[0] - 2, -1, -1):
        s_in, s_out = layers[l], layers[l + 1]
        d_out = _rows(deltas, layers, unit_offsets, l + 1, nb)
        A_in = X_block if l == 0 else _rows(acts, layers, unit_offsets, l, nb)
        DW_l = DW[w_offsets[l] : w_offsets[l + 1]].reshape((s_out, s_in))
        _add_product(d_out.T, A_in, DW_l)
        Db_l = Db[unit_offsets[l + 1] - unit_offsets[1] : unit_offsets[l + 2] - unit_offsets[1]]
        for b in range(nb):
            d = d_out[b]
            for j in range(s_out):
                Db_l[j] += d[j]
        if l == 0:
            break
        d_in = _rows(deltas, layers, unit_offsets, l, nb)
        d_in[:] = 0.0
        _add_product(d_out, W[w_offsets[l] : w_offsets[l + 1]].reshape((s_out, s_in)), d_in)
        for b in range(nb):
            d, a = d_in[b], A_in[b]
            for k in range(s_in):
                d[k] *= derivative(a[k], activation)


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


def _loss_and_delta_chunks(
    theta, layers, offsets, unit_offsets, w_offsets, X, labels, Y, activation, loss, need_grad,
    n_chunks,
):
    """Σ_i Σ_k loss term and Σ_i Δ contributions (float64, unrolled like θ)."""
    m = X.shape[0]
    K = layers[-1]
    L = layers.shape[0]
    use_matrix = Y.shape[0] > 0
    W, WT = _split_weights(theta, layers, offsets, w_offsets)
    n_units = unit_offsets[-1] - unit_offsets[1]
    costs = np.zeros(n_chunks)
    Delta_chunks = np.zeros((n_chunks, theta.shape[0] if need_grad else 0))
    for c in prange(n_chunks):
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
            _propagate_block(theta, layers, offsets, unit_offsets, WT, w_offsets, X_block,
                           activation, acts)
            Z_out = _rows(acts, layers, unit_offsets, L - 1, nb)
            d_out = _rows(deltas, layers, unit_offsets, L - 1, nb)
            for b in range(nb):
                i = start + b
                for k in range(K):
                    if use_matrix:
                        t = Y[i, k]
                    elif K == 1:
                        t = labels[i]
                    else:
                        t = 1.0 if labels[i] == k else 0.0
                    term, delta = loss_term_and_delta(Z_out[b, k], t, loss)
                    cost += term
                    d_out[b, k] = delta
            if need_grad:
                _backward_block(layers, unit_offsets, W, w_offsets, X_block, activation, acts,
                                deltas, DW, Db)
                n_blocks += 1
                if n_blocks == FLUSH_BLOCKS or stop == chunk_stop:
                    _add_block_sums(layers, offsets, unit_offsets, w_offsets, DW, Db,
                                    Delta_chunks[c])
                    DW[:] = 0.0
                    Db[:] = 0.0
                    n_blocks = 0
        costs[c] = cost
    total = 0.0
    Delta_sum = np.zeros(Delta_chunks.shape[1])
    for c in range(n_chunks):
        total += costs[c]
        for p in range(Delta_sum.shape[0]):
            Delta_sum[p] += Delta_chunks[c, p]
    return total, Delta_sum


def _forward_chunks(
    theta, layers, offsets, unit_offsets, w_offsets, X, activation, logits, n_chunks, H
):
    """H[i] = h_Θ(x(i)) = σ(z(L)) for every example, or z(L) itself with ``logits``."""
    m = X.shape[0]
    L = layers.shape[0]
    WT = _split_weights(theta, layers, offsets, w_offsets)[1]
    n_units = unit_offsets[-1] - unit_offsets[1]
    for c in prange(n_chunks):
        acts = np.empty(BLOCK * n_units, dtype=theta.dtype)
        chunk_stop = (c + 1) * m // n_chunks
        for start in range(c * m // n_chunks, chunk_stop, BLOCK):
            stop = min(start + BLOCK, chunk_stop)
            _propagate_block(theta, layers, offsets, unit_offsets, WT, w_offsets, X[start:stop],
                           activation, acts)
            Z_out = _rows(acts, layers, unit_offsets, L - 1, stop - start)
            for b in range(stop - start):
                for k in range(H.shape[1]):
                    H[start + b, k] = Z_out[b, k] if logits else sigmoid(Z_out[b, k])


def _compile(py_func, parallel):
    """``njit(cache=True, parallel=parallel)`` of ``py_func``, cached under its own name.

    Numba's cache index is keyed by the function's name and bytecode, not by ``parallel``
    (numba issue #6845), so the two compilations of one source would overwrite each other's
    cache entries; the parallel one is compiled from a copy named ``<name>_parallel``.
    """
    if parallel:
        name = py_func.__name__ + "_parallel"
        py_func = types.FunctionType(
            py_func.__code__, py_func.__globals__, name, py_func.__defaults__, py_func.__closure__
        )
        py_func.__qualname__ = name
    return njit(cache=True, parallel=parallel)(py_func)


class NumbaBackend(Backend):
    """One of the two compilations of the kernels, behind the backend interface."""

    def __init__(self, parallel):
        self.parallel = parallel
        self._loss_and_delta = _compile(_loss_and_delta_chunks, parallel)
        self._forward = _compile(_forward_chunks, parallel)

    @staticmethod
    def _layout(layers):
        layers = np.asarray(layers, dtype=np.int64)
        unit_offsets = np.concatenate(([0], np.cumsum(layers)))
        w_offsets = np.concatenate(([0], np.cumsum(layers[:-1] * layers[1:])))
        return layers, theta_offsets(layers), unit_offsets, w_offsets

    def loss_and_delta(self, theta, layers, data, activation, loss, need_grad):
        """Σ_i Σ_k loss term and the Δ(l) sums, unrolled like θ (float64), or None."""
        X, targets = data.X, data.targets
        total, Delta = self._loss_and_delta(
            theta, *self._layout(layers), X, targets.labels, targets.Y,
            ACTIVATIONS[activation].code, LOSSES[loss], need_grad, n_chunks(X.shape[0]),
        )
        return total, (Delta if need_grad else None)

    def forward(self, theta, layers, X, activation, logits=False):
        """Outputs h_Θ(x) (or z(L)) of every example, shape (m, K), in the dtype of θ."""
        H = np.empty((X.shape[0], layers[-1]), dtype=theta.dtype)
        self._forward(
            theta, *self._layout(layers), X, ACTIVATIONS[activation].code, logits,
            n_chunks(X.shape[0]), H,
        )
        return H


SERIAL = NumbaBackend(parallel=False)
"""``"numba"``: the kernels compiled for one thread."""
PARALLEL = NumbaBackend(parallel=True)
"""``"numba-parallel"``: the same kernels with the chunks spread over Numba's threads."""
