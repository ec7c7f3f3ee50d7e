"""Shared set-up of the benchmark suite: workload data made once per session.

``FASTNN_BENCH_SCALE`` (a fraction, default 1) shrinks every workload's m, for a quick smoke
run of the whole suite: ``FASTNN_BENCH_SCALE=0.01 pytest bench --benchmark-disable``.
"""

import os

import pytest

from fastnn.benchmark import WORKLOADS, make_data

SCALE = float(os.environ.get("FASTNN_BENCH_SCALE", "1"))


@pytest.fixture(scope="session")
def workload_data():
    """``get(name, dtype) -> (workload, X, y, θ)``, each made once per session."""
    made = {}

    def get(name, dtype):
        if (name, dtype) not in made:
            made[name, dtype] = (WORKLOADS[name], *make_data(WORKLOADS[name], dtype, SCALE))
        return made[name, dtype]

    return get


@pytest.fixture(scope="session")
def rounds_for():
    """``rounds_for(workload)``: fewer rounds where one call takes most of a second."""
    return lambda workload: 5 if workload.m * sum(workload.layers) > 20_000_000 else 20
