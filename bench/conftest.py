import numpy as np
import pytest

import fastnn


@pytest.fixture(scope="session")
def ex4_problem():
    """The classic exercise's shape: 400-25-10, m = 5000, made once per session."""
    layers = [400, 25, 10]
    rng = np.random.default_rng(0)
    thetas = fastnn.init_weights(layers, seed=rng)
    X = rng.random((5000, 400))
    y = rng.integers(0, 10, size=5000)
    return layers, thetas, X, y
