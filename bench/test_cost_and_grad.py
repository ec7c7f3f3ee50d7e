"""Full-batch J and ∇J per backend, compilation excluded (one warm-up call first)."""

import pytest

import fastnn


@pytest.mark.parametrize("backend", fastnn.available_backends())
def test_ex4(benchmark, ex4_problem, backend):
    layers, thetas, X, y = ex4_problem
    objective = fastnn.Objective(layers, X, y, lam=1.0, backend=backend)
    vec = fastnn.pack(thetas)
    objective(vec)
    benchmark.group = "ex4 400-25-10, m = 5000, float64"
    benchmark(objective, vec)
