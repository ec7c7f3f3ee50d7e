"""One epoch of mini-batch training (adam, batch 128) on MNIST-shaped data per backend."""

import pytest

import fastnn


@pytest.mark.parametrize("backend", fastnn.available_backends())
def test_epoch(benchmark, workload_data, backend):
    workload, X, y, theta = workload_data("mnist", "float32")
    objective = fastnn.Objective(workload.layers, X, y, lam=1.0, backend=backend,
                                 dtype="float32")

    def epoch():
        return fastnn.train(objective, theta, solver="adam", learning_rate=1e-3, max_iter=1,
                            batch_size=128, n_iter_no_change=0, random_state=0)

    benchmark.group = f"one epoch, adam, batch 128: {workload.describe(len(y))}, float32"
    benchmark.pedantic(epoch, rounds=3, warmup_rounds=1)
