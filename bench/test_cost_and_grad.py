"""Full-batch J and ∇J per backend, compilation excluded (one warm-up call first)."""

import numpy as np
import pytest

import fastnn


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("backend", fastnn.available_backends())
def test_ex4(benchmark, ex4_problem, backend, dtype):
    layers, thetas, X, y = ex4_problem
    objective = fastnn.Objective(layers, X, y, lam=1.0, backend=backend, dtype=dtype)
    vec = fastnn.pack(thetas).astype(dtype)
    objective(vec)
    benchmark.group = f"ex4 400-25-10, m = 5000, {np.dtype(dtype).name}"
    benchmark.pedantic(objective, args=(vec,), rounds=20, warmup_rounds=1)
