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
exp      poisson       h − t z + (t log t − t),  h = e^z                h − t
======== ============= ================================================ ===================

The Poisson term is scikit-learn's half Poisson deviance t log(t/h) − t + h with the log link,
its constant t log t − t (0 log 0 = 0) included so that J is scikit-learn's ``loss_``; the
targets are counts or rates t ≥ 0.

The softmax output couples the K units of an example, so its term is one per example:

    h_k = e^{z_k − max z} / Σ_j e^{z_j − max z}
    loss term = −Σ_k t_k log h_k = Σ_k t_k (log Σ_j e^{z_j − max z} − (z_k − max z))
    δ_k(L) = h_k Σ_j t_j − t_k,  = h_k − t_k for a one-hot t

(the multinomial cross-entropy, scikit-learn's ``log_loss`` with its softmax output). Shifting
by the row's max makes every exponent ≤ 0, so nothing overflows and log Σ ≥ 0 never meets
``log 0``; the term is exact for any targets, and δ its exact derivative (Σ_j t_j = 1 for
labels and one-hot rows, where δ = h − t bit for bit).

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

from fastnn.activations import exp_nonpositive, exp_nonpositive_typed, log1p_unit, sigmoid

CROSS_ENTROPY, SQUARED_ERROR, IDENTITY_SQUARED_ERROR, SOFTMAX_CROSS_ENTROPY, POISSON = range(5)

OUTPUTS = {
    ("sigmoid", "cross_entropy"): CROSS_ENTROPY,
    ("sigmoid", "squared_error"): SQUARED_ERROR,
    ("identity", "squared_error"): IDENTITY_SQUARED_ERROR,
    ("softmax", "cross_entropy"): SOFTMAX_CROSS_ENTROPY,
    ("exp", "poisson"): POISSON,
}
"""The code of each (output activation, loss) pair the kernels compute."""

OUTPUT_ACTIVATIONS = tuple(dict.fromkeys(activation for activation, _ in OUTPUTS))
"""The output layers: ``("sigmoid", "identity", "softmax", "exp")``."""

ALL_LOSSES = tuple(dict.fromkeys(loss for _, loss in OUTPUTS))
"""Every loss some output layer takes: what the functional API accepts."""

LOSSES = ("cross_entropy", "squared_error")
"""The losses of the classification outputs (sigmoid and softmax)."""

REGRESSION_LOSSES = {"squared_error": "identity", "poisson": "exp"}
"""The losses of real-valued targets, each with the output layer it takes (its link): the
one list a regressor's ``loss`` is checked against."""


def is_regression(output_activation):
    """Whether an output layer fits real-valued targets (one of :data:`REGRESSION_LOSSES`)."""
    return output_activation in REGRESSION_LOSSES.values()


def output_code(output_activation, loss):
    """The code of an output layer (see :data:`OUTPUTS`); ValueError for a pair that is not
    one (cross-entropy needs outputs in (0, 1), the Poisson loss the exp output)."""
    code = OUTPUTS.get((output_activation, loss))
    if code is None:
        takes = [name for activation, name in OUTPUTS if activation == output_activation]
        raise ValueError(f"loss: {loss!r} does not go with output_activation="
                         f"{output_activation!r}; the {output_activation} output takes "
                         + " or ".join(repr(name) for name in takes))
    return code


def softmax(Z):
    """h = e^{z − max z} / Σ_j e^{z_j − max z} of each row of Z (m, K), in Z's dtype."""
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return (E / E.sum(axis=1, keepdims=True, dtype=np.float64)).astype(Z.dtype, copy=False)


OUTPUT_FUNCTIONS = {"sigmoid": expit, "identity": lambda Z: Z, "softmax": softmax,
                    "exp": np.exp}
"""h of z(L) for each output layer, vectorized over an (m, K) array."""


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


def _softmax_cross_entropy(Z, T, w=None):
    """The terms and δ of the softmax output, one term per example (as the kernels take it:
    the shifted exponentials in Z's dtype, their sum and the term in float64)."""
    shifted = Z - Z.max(axis=1, keepdims=True)
    E = np.exp(shifted)
    s = E.sum(axis=1, keepdims=True, dtype=np.float64)
    terms = T * (np.log(s) - shifted)
    delta = (E / s * T.sum(axis=1, keepdims=True, dtype=np.float64) - T).astype(Z.dtype)
    return _weighted_sum(terms, w), _weighted(delta, w)


def _poisson(Z, T, w=None):
    H = np.exp(Z)
    constant = T * np.log(np.where(T > 0, T, 1)) - T  # t log t − t, 0 log 0 = 0
    return _weighted_sum((H - T * Z) + constant, w), _weighted(H - T, w)


NUMPY_LOSSES = {CROSS_ENTROPY: _cross_entropy, SQUARED_ERROR: _squared_error,
                IDENTITY_SQUARED_ERROR: _identity_squared_error,
                SOFTMAX_CROSS_ENTROPY: _softmax_cross_entropy, POISSON: _poisson}


@njit(cache=True, error_model="numpy", inline="always")
def loss_term_and_delta(z, t, code):
    """(loss term, δ(L)) of one output unit with pre-activation z and target t (0 or 1 for
    the sigmoid output); every code but the softmax's (see :func:`softmax_terms_and_delta`)."""
    if code == IDENTITY_SQUARED_ERROR:
        e = z - t
        return 0.5 * e * e, e
    if code == POISSON:
        h = np.exp(z)
        return (h - t * z) + ((t * np.log(t) if t > 0 else 0.0) - t), h - t
    h = sigmoid(z)
    if code == CROSS_ENTROPY:
        return (max(z, 0.0) - t * z) + log1p_unit(exp_nonpositive(-abs(z))), h - t
    e = h - t
    return 0.5 * e * e, e * h * (1.0 - h)


@njit(cache=True, error_model="numpy", inline="always")
def softmax_terms_and_delta(z, t, terms, d, base, step, K):
    """The softmax output of one example: its loss term into ``terms[base]`` (the other K − 1
    entries 0) and δ(L) into ``d``, for the K units at ``base, base + step, ...`` of the flat
    z, t (see the module's table).

    One pass for the row's max, one for e_k = e^{z_k − max} (in z's dtype, by the branch-free
    :func:`~fastnn.activations.exp_nonpositive_typed`, kept in ``d``) and its float64 sum s
    and Σ t, one for δ_k = e_k / s · Σ t − t_k and the term Σ_k t_k (log s − (z_k − max)),
    in float64."""
    top = z[base]
    for k in range(1, K):
        top = max(top, z[base + k * step])
    s = 0.0
    mass = 0.0
    for k in range(K):
        p = base + k * step
        e = exp_nonpositive_typed(z[p] - top)
        d[p] = e
        s += e
        mass += t[p]
    log_s = np.log(s)
    term = 0.0
    for k in range(K):
        p = base + k * step
        term += t[p] * (log_s - (z[p] - top))
        d[p] = d[p] / s * mass - t[p]
        terms[p] = 0.0
    terms[base] = term
