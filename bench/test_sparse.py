"""Sparse X (see :mod:`fastnn.benchmark.sparse`): full-batch J and ∇J of fastnn's backends on a
tf-idf-shaped CSR X beside ``auto`` on its dense copy, grouped by density and dtype (the
relative differences of J and ∇J from the float64 dense result in ``extra_info``); two adam
epochs of fastnn's estimator on the CSR (and on the dense copy where it fits) beside
scikit-learn's on the same CSR; and the peak memory of one adam epoch above X's own, in a fresh
process."""

import numba
import numpy as np
import pytest

from fastnn.benchmark import sparse, threads_for

M = 5_000
"""Rows of the full-batch X here (of :data:`fastnn.benchmark.sparse.SHAPE`'s 20,000 columns),
so that the dense copy's NumPy products keep the suite to minutes."""


@pytest.fixture(scope="module")
def sparse_data(bench_scale):
    """``get(m, density, dtype) -> (X, y, θ)``, each made once per module (``m`` rows at full
    scale, of a network with :data:`~fastnn.benchmark.sparse.HIDDEN` hidden units)."""
    made = {}

    def get(m, density, dtype):
        if (m, density, dtype) not in made:
            made[m, density, dtype] = sparse.make_sparse(
                sparse.scaled_m(m, bench_scale), sparse.SHAPE[1], density,
                hidden=(sparse.HIDDEN,), K=sparse.K, dtype=dtype)
        return made[m, density, dtype]

    return get


@pytest.fixture(scope="module")
def dense_reference(sparse_data):
    """``get(m, density, dtype) -> (J, ∇J)`` of the float64 dense X, each computed once."""
    made = {}

    def get(m, density, dtype):
        if (m, density, dtype) not in made:
            X, y, theta = sparse_data(m, density, dtype)
            made[m, density, dtype] = sparse.dense_reference(
                (X.shape[1], sparse.HIDDEN, sparse.K), X, y, theta)
        return made[m, density, dtype]

    return get


def skip_if_dense_too_large(X, dtype, kind):
    if kind == "dense" and sparse.dense_bytes(X, dtype) > sparse.DENSE_LIMIT:
        pytest.skip(f"the dense copy takes {sparse.dense_bytes(X, dtype) / 2**30:.1f} GiB")


@pytest.mark.parametrize("name", list(sparse.COST_AND_GRAD))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("density", sparse.DENSITIES)
def test_cost_and_grad(benchmark, sparse_data, dense_reference, density, dtype, name):
    X, y, theta = sparse_data(M, density, dtype)
    skip_if_dense_too_large(X, dtype, sparse.COST_AND_GRAD[name])
    run = sparse.prepare_cost_and_grad(name, (X.shape[1], sparse.HIDDEN, sparse.K), X, y, dtype)
    benchmark.group = (f"sparse J and ∇J: {X.shape[0]:,} × {X.shape[1]:,}, density "
                       f"{100 * density:g} %, {dtype}")
    with threads_for(name, numba.config.NUMBA_NUM_THREADS):
        result = benchmark.pedantic(run, args=(theta,), rounds=5, warmup_rounds=1)
    benchmark.extra_info.update({"X": sparse.COST_AND_GRAD[name],
                                 **sparse.parity(result, dense_reference(M, density, dtype))})


@pytest.mark.parametrize("name", list(sparse.TRAINING))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_adam_epochs(benchmark, sparse_data, dtype, name):
    X, y, _ = sparse_data(sparse.SHAPE[0], sparse.TRAINING_DENSITY, dtype)
    implementation, kind = sparse.TRAINING[name]
    skip_if_dense_too_large(X, dtype, kind)
    run = sparse.prepare_fit(name, X, y)
    benchmark.group = (f"sparse adam, {sparse.EPOCHS} epochs: {X.shape[0]:,} × {X.shape[1]:,}, "
                       f"density {100 * sparse.TRAINING_DENSITY:g} %, {dtype}")
    with threads_for(implementation, numba.config.NUMBA_NUM_THREADS):
        loss, epochs = benchmark.pedantic(run, args=(None,), rounds=3, warmup_rounds=1)
    assert epochs == sparse.EPOCHS
    benchmark.extra_info.update({"X": kind, "loss": loss, "epochs": epochs})


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_memory_adam_epoch(benchmark, bench_scale, dtype):
    m = sparse.scaled_m(sparse.MEMORY_SHAPE[0], bench_scale)
    benchmark.group = (f"memory: adam epoch, {m:,} × {sparse.MEMORY_SHAPE[1]:,}, "
                       f"{sparse.MEMORY_HIDDEN} hidden")
    memory = benchmark.pedantic(sparse.epoch_memory, args=(dtype, bench_scale), rounds=1)
    benchmark.extra_info.update(memory)
    assert np.isfinite(memory["extra_mb"])
