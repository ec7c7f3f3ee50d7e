"""Layer sizes, the flat parameter vector θ and the Θ(l) views into it, initialization.

The network has layers ``[s_1, ..., s_L]``; ``Θ(l)`` (``l = 1 ... L-1``) has shape
``(s_{l+1}, s_l + 1)`` and its column 0 multiplies the bias unit. The unrolled vector θ holds
Θ(1), Θ(2), ... one after the other, each in row-major (C) order, which is the layout the
kernels read through the offsets of :func:`theta_offsets`.
"""

import functools
from itertools import pairwise

import numpy as np

from fastnn._validation import (
    check_choice,
    check_dtype,
    check_layers,
    check_thetas,
    check_vector,
)
from fastnn.activations import ACTIVATIONS

__all__ = ["init_weights", "layers_of", "n_params", "pack", "unpack"]


def n_params(layers):
    """Number of weights, bias weights included: ``Σ_l s_{l+1} (s_l + 1)``."""
    return sum(s_next * (s + 1) for s, s_next in pairwise(layers))


def theta_shapes(layers):
    """Shapes ``(s_{l+1}, s_l + 1)`` of Θ(1) ... Θ(L-1)."""
    return [(s_next, s + 1) for s, s_next in pairwise(layers)]


def theta_offsets(layers):
    """Start of each Θ(l) in θ, plus the end: int64 array of length ``L``."""
    sizes = [s_next * (s + 1) for s, s_next in pairwise(layers)]
    return np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)


def penalty_mask(layers, dtype=np.float64):
    """1 where θ holds a weight that λ regularizes, 0 where it holds a bias weight (column 0).

    Made once per network and dtype, and read-only."""
    return _penalty_mask(tuple(layers), np.dtype(dtype))


@functools.lru_cache(maxsize=64)
def _penalty_mask(layers, dtype):
    mask = np.ones(n_params(layers), dtype=dtype)
    for theta in views(mask, layers):
        theta[:, 0] = 0
    mask.flags.writeable = False
    return mask


def layers_of(thetas):
    """Layer sizes ``[s_1, ..., s_L]`` of a list of Θ(l), checking that the shapes chain."""
    return check_thetas(thetas)


def views(vec, layers):
    """Θ(l) views into ``vec`` without any check: for callers whose inputs are validated
    (the kernels' wrappers); :func:`unpack` is the checked, public form."""
    offsets = theta_offsets(layers)
    return [
        vec[start:stop].reshape(s_next, s + 1)
        for start, stop, s, s_next in zip(offsets[:-1], offsets[1:], layers[:-1], layers[1:])
    ]


def unpack(vec, layers):
    """Θ(l) matrices as views into the unrolled vector θ (no copy).

    Parameters
    ----------
    vec : ndarray of shape (P,)
        Unrolled parameters, ``P = Σ_l s_{l+1} (s_l + 1)``, contiguous.
    layers : sequence of int
        Layer sizes ``[s_1, ..., s_L]``, ``L >= 2``.

    Returns
    -------
    thetas : list of ndarray
        ``thetas[l]`` of shape ``(s_{l+2}, s_{l+1} + 1)`` (0-based ``l``), sharing memory with
        ``vec``.
    """
    layers = check_layers(layers)
    vec = check_vector(vec, n_params(layers), "vec")
    return views(vec, layers)


def pack(thetas):
    """Unroll a list of Θ(l) into one contiguous 1-D vector θ (a copy).

    Parameters
    ----------
    thetas : list of ndarray
        ``thetas[l]`` of shape ``(s_{l+2}, s_{l+1} + 1)``, float32 or float64.

    Returns
    -------
    vec : ndarray of shape (P,)
        Θ(1) first, each matrix in row-major order, in the common dtype of ``thetas``.
    """
    check_thetas(thetas)
    dtype = np.result_type(*thetas)
    return np.concatenate([np.asarray(theta, dtype=dtype).ravel() for theta in thetas])


INITS = ("uniform", "glorot")
"""The initializations of :func:`init_weights`."""


def init_weights(layers, seed=None, dtype=np.float64, *, init="uniform", activation="sigmoid"):
    """Random symmetry-breaking initialization.

    ``init="uniform"`` (the seeds'): every entry of Θ(l), bias column included, is drawn
    uniformly from ``[-ε_init, ε_init)`` with ``ε_init = √6 / √(s_l + s_{l+1})``, row by row
    of Θ(l).

    ``init="glorot"`` (scikit-learn's MLP): the bound is ``√(f / (s_l + s_{l+1}))`` with
    f = 2 for the sigmoid hidden activation and f = 6 for the others, and each layer draws its
    weights as scikit-learn does, W(l)ᵀ of shape (s_l, s_{l+1}) first and then the biases:
    given a :class:`numpy.random.RandomState` scikit-learn's estimator would hold, the weights
    are scikit-learn's, bit for bit (in float64).

    Parameters
    ----------
    layers : sequence of int
        Layer sizes ``[s_1, ..., s_L]``, ``L >= 2``.
    seed : None, int, numpy.random.Generator or numpy.random.RandomState
        Anything :func:`numpy.random.default_rng` accepts, or a RandomState (drawn from as it
        is); the same seed gives the same weights.
    dtype : float32 or float64
        The values are drawn in float64 and rounded, so both dtypes hold the same draw.
    init : {"uniform", "glorot"}, default "uniform"
    activation : {"sigmoid", "tanh", "relu", "identity"}, default "sigmoid"
        The hidden layers' activation, which sets f of ``init="glorot"``.

    Returns
    -------
    thetas : list of ndarray
        ``thetas[l]`` of shape ``(s_{l+2}, s_{l+1} + 1)``, views into one contiguous θ
        (``pack`` of them equals that vector).
    """
    layers = check_layers(layers)
    dtype = check_dtype(dtype)
    check_choice(init, "init", INITS)
    check_choice(activation, "activation", ACTIVATIONS)
    rng = seed if isinstance(seed, np.random.RandomState) else np.random.default_rng(seed)
    factor = 2.0 if activation == "sigmoid" else 6.0
    vec = np.empty(n_params(layers), dtype=dtype)
    for theta in views(vec, layers):
        s_next, s_plus_1 = theta.shape
        if init == "glorot":  # scikit-learn's _init_coef, its expression and its draws
            bound = np.sqrt(factor / (s_plus_1 - 1 + s_next))
            theta[:, 1:] = rng.uniform(-bound, bound, (s_plus_1 - 1, s_next)).T
            theta[:, 0] = rng.uniform(-bound, bound, s_next)
        else:
            eps_init = np.sqrt(6.0) / np.sqrt(s_plus_1 - 1 + s_next)
            theta[...] = rng.uniform(-eps_init, eps_init, size=theta.shape)
    return views(vec, layers)
