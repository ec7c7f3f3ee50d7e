"""The vectorized NumPy backend: every layer of a block of examples as one matrix product.

For a block of examples stacked as rows, with ``[1, A(l)]`` the activations with a bias column:

    Z(l+1) = A(l) Θ(l)[:, 1:]ᵀ + Θ(l)[:, 0]        A(l+1) = g(Z(l+1))
    δ(l) = (δ(l+1) Θ(l)[:, 1:]) ∘ g′(A(l))
    Δ(l)[:, 0] += Σ_rows δ(l+1)                    Δ(l)[:, 1:] += δ(l+1)ᵀ A(l)

Examples are processed in blocks of ``NUMPY_BLOCK_ROWS`` so that the activations held at once
stay bounded whatever m is.

A sparse X (a CSR matrix, see :func:`fastnn._validation.check_sparse_X`) goes through
scipy.sparse's products and is never densified: a block is a CSR row slice, Z(2) = A(1) Θ(1)ᵀ
a sparse-times-dense product, and the first layer's sum is taken as

    Δ(1)[:, 1:] += (A(1)ᵀ δ(2))ᵀ

a sparse-transpose-times-dense product whose dense result is Θ(1)-sized: no array of a
block's rows by s_1 columns is made.
"""

import numpy as np

from fastnn._validation import is_sparse
from fastnn.activations import ACTIVATIONS
from fastnn.backends._base import Backend
from fastnn.backends._tuning import NUMPY_BLOCK_ROWS
from fastnn.losses import NUMPY_LOSSES
from fastnn.network import n_params, views


def _propagate(thetas, X_block, act):
    """Activations ``[X, A(2), ..., A(L-1)]`` of a block and the output pre-activation Z(L)."""
    A = [X_block]
    for theta in thetas[:-1]:
        A.append(act.forward(A[-1] @ theta[:, 1:].T + theta[:, 0]))
    Z_out = A[-1] @ thetas[-1][:, 1:].T + thetas[-1][:, 0]
    return A, Z_out


class NumpyBackend(Backend):
    """The vectorized backend (``"numpy"``): BLAS matrix products on blocks of examples."""

    calls_blas = True

    def loss_and_delta(self, theta, problem, data, need_grad):
        """Σ_i w_i Σ_k loss term and the Δ(l) sums, unrolled like θ (float64), or None."""
        X, targets = data.materialize()
        return loss_and_delta(theta, problem.layers, X, targets, problem.activation,
                              problem.output, need_grad)

    def forward(self, theta, layers, X, activation, logits=False):
        """Outputs h_Θ(x) (or z(L)) of every example, shape (m, K), in the dtype of θ."""
        return forward(theta, layers, X, activation, logits)


def loss_and_delta(theta, layers, X, targets, activation, output, need_grad):
    """Σ_i w_i Σ_k loss term and the Δ(l) sums, unrolled like θ (float64), or None; ``output``
    is the code of the output layer and loss (:data:`fastnn.losses.OUTPUTS`); X an array or
    a CSR matrix."""
    act = ACTIVATIONS[activation]
    loss_fn = NUMPY_LOSSES[output]
    thetas = views(theta, layers)
    Delta = np.zeros(n_params(layers)) if need_grad else None
    Deltas = views(Delta, layers) if need_grad else None
    total = 0.0
    sparse = is_sparse(X)
    for start in range(0, X.shape[0], NUMPY_BLOCK_ROWS):
        rows = slice(start, start + NUMPY_BLOCK_ROWS)
        with np.errstate(under="ignore"):  # e^{−800} → 0 is the right answer, not an error
            A, Z_out = _propagate(thetas, X[rows], act)
            terms, delta = loss_fn(Z_out, targets.one_hot(rows, X.dtype),
                                   targets.weights_of(rows))
        total += terms
        if not need_grad:
            continue
        for l in range(len(thetas) - 1, -1, -1):
            Deltas[l][:, 0] += delta.sum(axis=0)
            Deltas[l][:, 1:] += (A[l].T @ delta).T if l == 0 and sparse else delta.T @ A[l]
            if l > 0:
                with np.errstate(under="ignore"):
                    delta = (delta @ thetas[l][:, 1:]) * act.derivative(A[l])
    return total, Delta


def forward(theta, layers, X, activation, logits=False):
    """Outputs h_Θ(x) (or z(L)) of every example, shape (m, K), in the dtype of θ; X an array
    or a CSR matrix."""
    act = ACTIVATIONS[activation]
    thetas = views(theta, layers)
    H = np.empty((X.shape[0], layers[-1]), dtype=theta.dtype)
    for start in range(0, X.shape[0], NUMPY_BLOCK_ROWS):
        rows = slice(start, start + NUMPY_BLOCK_ROWS)
        with np.errstate(under="ignore"):
            Z_out = _propagate(thetas, X[rows], act)[1]
            H[rows] = Z_out if logits else ACTIVATIONS["sigmoid"].forward(Z_out)
    return H
