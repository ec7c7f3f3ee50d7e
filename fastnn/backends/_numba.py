"""The Numba backends: explicit loops over examples, compiled serial and parallel.

Per example i (seed-notes notation, 0-based layers in code):

    a(1) = x(i);  z(l+1) = Θ(l) [1; a(l)];  a(l+1) = g(z(l+1));  h = σ(z(L))
    J_sum += Σ_k loss term(z_k(L), y_k(i))
    δ(L) = ∂ loss / ∂z(L);  δ(l) = (Θ(l)ᵀ δ(l+1))[1:] ∘ g′(a(l))
    Δ(l) += δ(l+1) [1; a(l)]ᵀ

The m examples are cut into ``n_chunks`` contiguous chunks whose boundaries depend only on m.
Each chunk owns its scratch buffers (allocated once per chunk, never per example), its cost
partial and its row of Δ accumulators, so the ``prange`` over chunks has no shared writes. The
partials are summed serially in chunk order afterwards, so the serial and parallel compilations
of the same source return bitwise-identical results, whatever the number of threads.

θ is one flat vector; Θ(l) starts at ``offsets[l]`` and its row j at ``offsets[l] + j (s_l + 1)``.
The activations a(l) of all layers of one example live in one flat buffer, layer l at
``unit_offsets[l]``; the δ(l) buffer has the same layout.
"""

import types

import numba
import numpy as np
from numba import njit, prange

from fastnn.activations import ACTIVATIONS, activate, derivative, sigmoid
from fastnn.losses import LOSSES, loss_term_and_delta
from fastnn.network import theta_offsets

FASTMATH = {"reassoc", "contract"}
"""The only fast-math flags the kernels use: reassociation lets the dot-product and axpy loops
vectorize, contraction lets them use FMA. Never ``nnan``/``ninf`` (the cost and the input
checks rely on inf and NaN semantics), so never ``fastmath=True``. Results change by rounding
only; the tests pin them against the NumPy backend and the naive reference to 1e-12."""

MIN_CHUNK = 32
"""Fewest examples per chunk: below this, thread start-up costs more than the chunk's work."""

MAX_CHUNKS = max(16, numba.config.NUMBA_NUM_THREADS)
"""Chunks per call at most. Fixed per machine so results do not depend on thread scheduling;
each chunk holds one Δ accumulator of P float64, so memory is ``MAX_CHUNKS * P * 8`` bytes."""


def n_chunks(m):
    """How many chunks the m examples are cut into (a function of m and the machine only)."""
    return max(1, min(MAX_CHUNKS, m // MIN_CHUNK))


@njit(cache=True, fastmath=FASTMATH)
def _forward_one(theta, layers, offsets, unit_offsets, x, activation, a):
    """Fill a(1) = x, a(2) ... a(L-1), and z(L) (not σ of it) in the last slot of ``a``."""
    a[: layers[0]] = x
    n_weights = layers.shape[0] - 1
    for l in range(n_weights):
        a_in = a[unit_offsets[l] : unit_offsets[l + 1]]
        a_out = a[unit_offsets[l + 1] : unit_offsets[l + 2]]
        Theta = theta[offsets[l] : offsets[l + 1]].reshape((layers[l + 1], layers[l] + 1))
        for j in range(a_out.shape[0]):
            # z_j = Θ_j0 + Σ_k Θ_j,k+1 a_k
            w = Theta[j, 1:]
            z = Theta[j, 0]
            for k in range(a_in.shape[0]):
                z += w[k] * a_in[k]
            a_out[j] = z if l == n_weights - 1 else activate(z, activation)


@njit(cache=True, fastmath=FASTMATH)
def _backward_one(theta, layers, offsets, unit_offsets, activation, a, d, Delta):
    """Given δ(L) in the last slot of ``d``: Δ(l) += δ(l+1) [1; a(l)]ᵀ and δ(l) for l < L."""
    for l in range(layers.shape[0] - 2, -1, -1):
        a_in = a[unit_offsets[l] : unit_offsets[l + 1]]
        d_in = d[unit_offsets[l] : unit_offsets[l + 1]]
        d_out = d[unit_offsets[l + 1] : unit_offsets[l + 2]]
        shape = (layers[l + 1], layers[l] + 1)
        Theta = theta[offsets[l] : offsets[l + 1]].reshape(shape)
        Delta_l = Delta[offsets[l] : offsets[l + 1]].reshape(shape)
        for j in range(d_out.shape[0]):
            # Δ_j += δ_j [1; a]
            dj = d_out[j]
            row = Delta_l[j, 1:]
            Delta_l[j, 0] += dj
            for k in range(a_in.shape[0]):
                row[k] += dj * a_in[k]
        if l == 0:
            break
        # δ(l) = (Θᵀ δ(l+1))[1:] ∘ g′(a(l)), accumulated row by row of Θ
        d_in[:] = 0.0
        for j in range(d_out.shape[0]):
            dj = d_out[j]
            w = Theta[j, 1:]
            for k in range(a_in.shape[0]):
                d_in[k] += w[k] * dj
        for k in range(a_in.shape[0]):
            d_in[k] *= derivative(a_in[k], activation)


def _loss_and_delta_chunks(
    theta, layers, offsets, unit_offsets, X, labels, Y, activation, loss, need_grad, n_chunks
):
    """Σ_i Σ_k loss term and Σ_i Δ contributions (float64, unrolled like θ)."""
    m = X.shape[0]
    K = layers[-1]
    out = unit_offsets[-2]
    use_matrix = Y.shape[0] > 0
    costs = np.zeros(n_chunks)
    Delta_chunks = np.zeros((n_chunks, theta.shape[0] if need_grad else 0))
    for c in prange(n_chunks):
        a = np.empty(unit_offsets[-1], dtype=theta.dtype)
        d = np.empty(unit_offsets[-1], dtype=theta.dtype)
        Delta = Delta_chunks[c]
        cost = 0.0
        for i in range(c * m // n_chunks, (c + 1) * m // n_chunks):
            _forward_one(theta, layers, offsets, unit_offsets, X[i], activation, a)
            for k in range(K):
                if use_matrix:
                    t = Y[i, k]
                elif K == 1:
                    t = labels[i]
                else:
                    t = 1.0 if labels[i] == k else 0.0
                term, delta = loss_term_and_delta(a[out + k], t, loss)
                cost += term
                d[out + k] = delta
            if need_grad:
                _backward_one(theta, layers, offsets, unit_offsets, activation, a, d, Delta)
        costs[c] = cost
    total = 0.0
    Delta_sum = np.zeros(Delta_chunks.shape[1])
    for c in range(n_chunks):
        total += costs[c]
        for p in range(Delta_sum.shape[0]):
            Delta_sum[p] += Delta_chunks[c, p]
    return total, Delta_sum


def _forward_chunks(theta, layers, offsets, unit_offsets, X, activation, logits, n_chunks, H):
    """H[i] = h_Θ(x(i)) = σ(z(L)) for every example, or z(L) itself with ``logits``."""
    m = X.shape[0]
    out = unit_offsets[-2]
    for c in prange(n_chunks):
        a = np.empty(unit_offsets[-1], dtype=theta.dtype)
        for i in range(c * m // n_chunks, (c + 1) * m // n_chunks):
            _forward_one(theta, layers, offsets, unit_offsets, X[i], activation, a)
            for k in range(H.shape[1]):
                H[i, k] = a[out + k] if logits else sigmoid(a[out + k])


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


class NumbaBackend:
    """One of the two compilations of the kernels, behind the backend interface."""

    def __init__(self, parallel):
        self.parallel = parallel
        self._loss_and_delta = _compile(_loss_and_delta_chunks, parallel)
        self._forward = _compile(_forward_chunks, parallel)

    @staticmethod
    def _layout(layers):
        unit_offsets = np.concatenate(([0], np.cumsum(layers))).astype(np.int64)
        return np.asarray(layers, dtype=np.int64), theta_offsets(layers), unit_offsets

    def loss_and_delta(self, theta, layers, X, targets, activation, loss, need_grad):
        """Σ_i Σ_k loss term and the Δ(l) sums, unrolled like θ (float64), or None."""
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
