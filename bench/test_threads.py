"""Thread scaling: numba-parallel on 1 and on all threads, next to the serial compilation."""

import numba
import pytest

from fastnn.benchmark import PREPARE, threads_for

ALL = numba.config.NUMBA_NUM_THREADS


@pytest.mark.parametrize(("name", "threads"),
                         [("numba", 1), ("numba-parallel", 1), ("numba-parallel", ALL)],
                         ids=["numba", "numba-parallel-1", f"numba-parallel-{ALL}"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("workload", ["ex4", "mnist", "deep"])
def test_threads(benchmark, workload_data, rounds_for, workload, dtype, name, threads):
    workload, X, y, theta = workload_data(workload, dtype)
    run = PREPARE[name](workload.layers, X, y, dtype)
    benchmark.group = f"threads: {workload.describe(len(y))}, {dtype}"
    with threads_for(name, threads):
        benchmark.pedantic(run, args=(theta,), rounds=rounds_for(workload), warmup_rounds=1)
