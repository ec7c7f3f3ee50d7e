"""Loss terms of the output layer and the output delta δ(L) = ∂(loss term)/∂z(L).

For one output unit with pre-activation z, output h and target t, by output activation and
loss (each pair has one integer code, what the kernels branch on):

======== ============= ================================================ ===================
output   loss          loss term                                        δ(L)
======== ============= ================================================ ===================
sigmoid  cross_entropy −t log h − (1 − t) log(1 − h),  h = σ(z)         h − t
                       = t softplus(−z) + (1 − t) softplus(z)
sigmoid  squared_error ½ (h − t)²,  h = σ(z)                            (h − t) h (1 − h)
identity squared_error ½ (h − t)²,  h = z                               h − t
======== ============= ================================================ ===================

``log σ(z) = −softplus(−z)`` and ``log(1 − σ(z)) = −softplus(z)`` keep the cost finite and
accurate when units saturate, where ``log`` of a rounded σ(z) would give ``log 0``. With
e = e^{−|z|}, softplus(±z) = max(±z, 0) + log1p(e), so for t ∈ {0, 1} the term is
``(max(z, 0) − t z) + log1p(e)``: the bracket is exactly max(−z, 0) for t = 1 and max(z, 0) for
t = 0. The term is taken in float64 for either dtype; σ(z) is the hidden layers' (in z's
arithmetic, see :func:`fastnn.activations.sigmoid`), so in float64 one exponential serves both.
The cost is ``J = (1/m) Σ_i w_i Σ_k term + (λ / 2m) Σ Θ²`` (bias column excluded), with the
example weights w_i scaled to mean 1 (all 1 without weights; see
:class:`fastnn._validation.Targets`): the kernels multiply example i's terms and δ(L) by w_i.
"""

import numpy as np
from numba import njit
from scipy.special import expit

from fastnn.activations import exp_nonpositive, log1p_unit, sigmoid

CROSS_ENTROPY, SQUARED_ERROR, IDENTITY_SQUARED_ERROR = 0, 1, 2

LOSSES = ("cross_entropy", "squared_error")
OUTPUT_ACTIVATIONS = ("sigmoid", "identity")
OUTPUTS = {
    ("sigmoid", "cross_entropy"): CROSS_ENTROPY,
    ("sigmoid", "squared_error"): SQUARED_ERROR,
    ("identity", "squared_error"): IDENTITY_SQUARED_ERROR,
}
"""The code of each (output activation, loss) pair the kernels compute."""


def output_code(output_activation, loss):
    """The code of an output layer (see :data:`OUTPUTS`); ValueError for a pair that is not
    one (cross-entropy needs outputs in (0, 1))."""
    code = OUTPUTS.get((output_activation, loss))
    if code is None:
        raise ValueError(f"loss: {loss!r} does not go with output_activation="
                         f"{output_activation!r}; the identity output takes 'squared_error'")
    return code


def _weighted_sum(terms, w):
    """Σ_i w_i Σ_k terms_ik in float64 (Σ terms without weights)."""
    if w is None:
        return terms.sum(dtype=np.float64)
    return float(terms.sum(axis=1, dtype=np.float64) @ w)


def _weighted(delta, w):
    """δ(L) with row i scaled by w_i, in place, in δ's dtype."""
    if w is not None:
        delta *= w.astype(delta.dtype, copy=False)[:, None]
    return delta


def _cross_entropy(Z, T, w=None):
    """Σ_i w_i Σ_k loss terms and δ(L) for pre-activations Z and targets T (0/1), both (m, K),
    and weights w of shape (m,) (None: all 1)."""
    E = np.exp(-np.abs(Z))
    terms = np.maximum(Z, 0) - T * Z
    terms += np.log1p(E)
    E += 1
    H = np.where(Z >= 0, 1, E - 1) / E
    return _weighted_sum(terms, w), _weighted(H - T, w)


def _squared_error(Z, T, w=None):
    H = expit(Z)
    E = H - T
    return _weighted_sum(0.5 * np.square(E), w), _weighted(E * H * (1 - H), w)


def _identity_squared_error(Z, T, w=None):
    E = Z - T
    return _weighted_sum(0.5 * np.square(E), w), _weighted(E, w)


NUMPY_LOSSES = {CROSS_ENTROPY: _cross_entropy, SQUARED_ERROR: _squared_error,
                IDENTITY_SQUARED_ERROR: _identity_squared_error}


@njit(cache=True, error_model="numpy", inline="always")
def loss_term_and_delta(z, t, code):
    """(loss term, δ(L)) of one output unit with pre-activation z and target t (0 or 1 for
    the sigmoid output)."""
    if code == IDENTITY_SQUARED_ERROR:
        e = z - t
        return 0.5 * e * e, e
    h = sigmoid(z)
    if code == CROSS_ENTROPY:
        return (max(z, 0.0) - t * z) + log1p_unit(exp_nonpositive(-abs(z))), h - t
    e = h - t
    return 0.5 * e * e, e * h * (1.0 - h)
