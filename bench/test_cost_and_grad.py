"""Full-batch J and ∇J on the five workloads: fastnn's backends and the installed peers, side by
side, grouped by workload and dtype. Compilation is excluded (one warm-up call first)."""

import numba
import pytest

from fastnn.benchmark import PREPARE, WORKLOADS, implementations, threads_for
from fastnn.network import n_params


@pytest.mark.parametrize("name", implementations())
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_cost_and_grad(benchmark, workload_data, rounds_for, workload, dtype, name):
    workload, X, y, theta = workload_data(workload, dtype)
    run = PREPARE[name](workload.layers, X, y, dtype)
    benchmark.group = f"{workload.describe(len(y))}, {dtype}"
    with threads_for(name, numba.config.NUMBA_NUM_THREADS):
        benchmark.pedantic(run, args=(theta,), rounds=rounds_for(workload), warmup_rounds=1)
    if benchmark.stats:  # None with --benchmark-disable
        flops = 6 * n_params(workload.layers) * len(y)
        benchmark.extra_info["gflops"] = flops / benchmark.stats.stats.median / 1e9
