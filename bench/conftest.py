"""Shared set-up of the benchmark suite: workload data made once per session, and the timing of
one training run.

``FASTNN_BENCH_SCALE`` (a fraction, default 1) shrinks every workload's m, for a quick smoke
run of the whole suite: ``FASTNN_BENCH_SCALE=0.01 pytest bench --benchmark-disable``.
"""

import os
import warnings
from functools import partial

import numba
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastnn import Objective
from fastnn.benchmark import LAMBDA, PREPARE_TRAINING, WORKLOADS, make_data, threads_for

SCALE = float(os.environ.get("FASTNN_BENCH_SCALE", "1"))


@pytest.fixture(scope="session")
def bench_scale():
    """``FASTNN_BENCH_SCALE``: the fraction of every workload's m."""
    return SCALE


@pytest.fixture(scope="session")
def workload_data():
    """``get(workload, dtype) -> (workload, X, y, θ)``, each made once per session; ``workload``
    is a key of :data:`fastnn.benchmark.WORKLOADS` or a ``Workload``."""
    made = {}

    def get(workload, dtype):
        workload = WORKLOADS[workload] if isinstance(workload, str) else workload
        if (workload, dtype) not in made:
            made[workload, dtype] = (workload, *make_data(workload, dtype, SCALE))
        return made[workload, dtype]

    return get


@pytest.fixture(scope="session")
def rounds_for():
    """``rounds_for(workload)``: fewer rounds where one call takes most of a second."""
    return lambda workload: 5 if workload.m * sum(workload.layers) > 20_000_000 else 20


@pytest.fixture(scope="session")
def reference_cost(workload_data):
    """``get(workload, dtype)``: θ ↦ J on that data by fastnn's float64 NumPy objective, the
    one function that scores every implementation's trained weights."""
    made = {}

    def get(workload, dtype):
        workload, X, y, _ = workload_data(workload, dtype)
        if (workload, dtype) not in made:
            made[workload, dtype] = Objective(workload.layers, X.astype(np.float64, copy=False),
                                              y, LAMBDA, backend="numpy").cost
        return made[workload, dtype]

    return get


@pytest.fixture
def benchmark_training(benchmark, workload_data, reference_cost):
    """``time_run(name, workload, dtype, run, group)``: times one ``TrainingRun`` of
    implementation ``name`` from θ0 (loaded before each round, untimed; one warm-up round),
    on all ``NUMBA_NUM_THREADS`` threads. ``extra_info`` gets the epochs or iterations done,
    the J reached and, when timed, the median seconds per epoch or iteration."""

    def time_run(name, workload, dtype, run, group):
        workload, X, y, theta = workload_data(workload, dtype)
        trainer = PREPARE_TRAINING[name](workload.layers, X, y, dtype)
        benchmark.group = group
        with threads_for(trainer.threads_name, numba.config.NUMBA_NUM_THREADS), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter ends every run
            done = benchmark.pedantic(trainer.train, args=(run,),
                                      setup=partial(trainer.load, theta), rounds=3,
                                      warmup_rounds=1)
        benchmark.extra_info["iterations"] = int(done)
        benchmark.extra_info["J"] = reference_cost(workload, dtype)(trainer.weights())
        if benchmark.stats:  # None with --benchmark-disable
            benchmark.extra_info[f"s_per_{run.unit}"] = benchmark.stats.stats.median / done

    return time_run
