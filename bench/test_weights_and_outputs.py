"""What example weights and the identity output cost the kernels: full-batch J and ∇J of each
fastnn backend with and without ``sample_weight`` (and on real targets with the identity
output), side by side per workload and dtype. Weights multiply each example's loss terms and
δ(L) inside the kernels, so the three should take the same time."""

import numba
import numpy as np
import pytest

from fastnn import Objective
from fastnn.benchmark import FASTNN, LAMBDA, threads_for

WORKLOADS = ("ex4", "mnist")
VARIANTS = ("plain", "weighted", "identity")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", FASTNN)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("workload", WORKLOADS)
def test_cost_and_grad(benchmark, workload_data, rounds_for, workload, dtype, name, variant):
    workload, X, y, theta = workload_data(workload, dtype)
    rng = np.random.default_rng(0)
    options = {}
    if variant == "weighted":
        options["sample_weight"] = rng.uniform(0.5, 2.0, size=len(y))
    elif variant == "identity":
        y = rng.normal(size=(len(y), workload.layers[-1]))
        options = {"loss": "squared_error", "output_activation": "identity"}
    objective = Objective(workload.layers, X, y, LAMBDA, backend=name, dtype=dtype, **options)
    benchmark.group = f"{workload.describe(len(y))}, {dtype}, {name}"
    with threads_for(name, numba.config.NUMBA_NUM_THREADS):
        benchmark.pedantic(objective, args=(theta,), rounds=rounds_for(workload),
                           warmup_rounds=1)
