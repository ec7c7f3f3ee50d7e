"""One epoch of mini-batch adam and sgd on MNIST-shaped data (784-128-10), per batch size,
dtype and implementation: fastnn's backends and the installed peers, from the same θ0 (see
:mod:`fastnn.benchmark.training`). ``extra_info`` has the J each reached."""

import pytest

from fastnn.benchmark import BATCH_SIZES, TRAINING_WORKLOADS, TrainingRun, training_implementations

MNIST = TRAINING_WORKLOADS["mnist"]


@pytest.mark.parametrize("name", training_implementations())
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_epoch(benchmark_training, workload_data, solver, batch_size, dtype, name):
    m = len(workload_data(MNIST, dtype)[2])
    benchmark_training(name, MNIST, dtype, TrainingRun(MNIST, solver, batch_size, 1),
                       f"one epoch, {solver}, batch {batch_size}: {MNIST.describe(m)}, {dtype}")
