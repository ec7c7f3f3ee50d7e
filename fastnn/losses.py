"""Loss terms of the sigmoid output layer and the output delta δ(L) = ∂(loss term)/∂z(L).

For one output unit with pre-activation z, output h = σ(z) and target t:

============= ==================================================== =====================
name          loss term                                            δ(L)
============= ==================================================== =====================
cross_entropy −t log h − (1 − t) log(1 − h)                        h − t
              = t softplus(−z) + (1 − t) softplus(z)
squared_error ½ (h − t)²                                           (h − t) h (1 − h)
============= ==================================================== =====================

``log σ(z) = −softplus(−z)`` and ``log(1 − σ(z)) = −softplus(z)`` keep the cost finite and
accurate when units saturate, where ``log`` of a rounded σ(z) would give ``log 0``.
The cost is ``J = (1/m) Σ_i Σ_k term + (λ / 2m) Σ Θ²`` (bias column excluded).
"""

import numpy as np
from numba import njit
from scipy.special import expit

from fastnn.activations import exp_nonpositive, sigmoid

CROSS_ENTROPY, SQUARED_ERROR = 0, 1


def _cross_entropy(Z, T):
    """Summed loss terms and δ(L) for pre-activations Z and targets T, both (m, K)."""
    H = expit(Z)
    terms = T * np.logaddexp(0, -Z) + (1 - T) * np.logaddexp(0, Z)
    return terms.sum(dtype=np.float64), H - T


def _squared_error(Z, T):
    H = expit(Z)
    E = H - T
    return 0.5 * np.square(E).sum(dtype=np.float64), E * H * (1 - H)


LOSSES = {"cross_entropy": CROSS_ENTROPY, "squared_error": SQUARED_ERROR}
NUMPY_LOSSES = {CROSS_ENTROPY: _cross_entropy, SQUARED_ERROR: _squared_error}


@njit(cache=True, error_model="numpy", inline="always")
def softplus(x):
    """log(1 + e^x) without overflow."""
    return max(x, 0.0) + np.log1p(exp_nonpositive(-abs(x)))


@njit(cache=True, error_model="numpy", inline="always")
def loss_term_and_delta(z, t, code):
    """(loss term, δ(L)) of one sigmoid output unit with pre-activation z and target t."""
    h = sigmoid(z)
    if code == CROSS_ENTROPY:
        return t * softplus(-z) + (1.0 - t) * softplus(z), h - t
    e = h - t
    return 0.5 * e * e, e * h * (1.0 - h)
