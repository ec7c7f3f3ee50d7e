import os

# Before anything imports SciPy: scikit-learn's check_array_api_input needs it (test_estimator).
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest

import fastnn
from tests import naive

BACKENDS = fastnn.available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def make_problem(layers, m, target, seed=0, dtype=np.float64, avoid_kink=False):
    """Random weights, inputs and targets of the given kind ("binary", "multiclass",
    "multilabel"). With ``avoid_kink`` (for relu gradient checks), the seed is advanced until no
    hidden unit of any example has |z| < 0.01, so central differences with step 1e-4 never
    straddle the kink."""
    for attempt in range(seed, seed + 1000):
        rng = np.random.default_rng(attempt)
        thetas = fastnn.init_weights(layers, seed=rng, dtype=dtype)
        X = rng.normal(size=(m, layers[0])).astype(dtype)
        if not avoid_kink:
            break
        z = naive.hidden_preactivations(thetas, X, "relu")
        if z.size == 0 or np.abs(z).min() > 0.01:
            break
    K = layers[-1]
    if target == "binary":
        y = rng.integers(0, 2, size=m)
    elif target == "multiclass":
        y = rng.integers(0, K, size=m)
    else:
        y = rng.integers(0, 2, size=(m, K))
    return thetas, X, y


def debug_problem():
    """The classic debug network: 3-5-3, m = 5, weights and inputs sin(1), sin(2), ... / 10
    filled in column-major order, labels 1 + (i mod 3) for i = 1..5 (here 0-based)."""

    def debug_matrix(rows, cols):
        return np.sin(np.arange(1, rows * cols + 1)).reshape(rows, cols, order="F") / 10

    thetas = [debug_matrix(5, 4), debug_matrix(3, 6)]
    X = debug_matrix(5, 3)
    y = np.arange(1, 6) % 3
    return thetas, X, y
