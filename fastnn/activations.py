"""Activations g and their derivatives g′, written from the output a = g(z) where possible.

Each activation has an integer code (what the compiled kernels branch on) and NumPy versions
(what the vectorized backend calls). The output layer is always the sigmoid.

======== ================================ ==================================
name     g(z)                             g′(z) from a = g(z)
======== ================================ ==================================
sigmoid  σ(z) = 1 / (1 + e^{−z})          a (1 − a)
tanh     tanh(z)                          1 − a²
relu     max(z, 0)                        1 if a > 0 else 0 (0 at the kink)
======== ================================ ==================================
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numba import njit
from scipy.special import expit

SIGMOID, TANH, RELU = 0, 1, 2


class Activation(NamedTuple):
    code: int
    forward: Callable  # Z -> A, vectorized
    derivative: Callable  # A -> g′(Z), vectorized


ACTIVATIONS = {
    "sigmoid": Activation(SIGMOID, expit, lambda A: A * (1 - A)),
    "tanh": Activation(TANH, np.tanh, lambda A: 1 - A * A),
    "relu": Activation(RELU, lambda Z: np.maximum(Z, 0), lambda A: (A > 0).astype(A.dtype)),
}


@njit(cache=True)
def sigmoid(z):
    """σ(z) without overflow: e^{−|z|} is the only exponential taken."""
    if z >= 0:
        return 1.0 / (1.0 + np.exp(-z))
    e = np.exp(z)
    return e / (1.0 + e)


@njit(cache=True)
def activate(z, code):
    """g(z) for the activation ``code``."""
    if code == SIGMOID:
        return sigmoid(z)
    if code == TANH:
        return np.tanh(z)
    return max(z, 0.0)


@njit(cache=True)
def derivative(a, code):
    """g′(z) from a = g(z) for the activation ``code``."""
    if code == SIGMOID:
        return a * (1.0 - a)
    if code == TANH:
        return 1.0 - a * a
    return 1.0 if a > 0 else 0.0
