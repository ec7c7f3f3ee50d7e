"""The in-process backends against the naive reference and against each other."""

import dataclasses
import json
import os
import subprocess
import sys
from itertools import pairwise

import numba
import numpy as np
import pytest

import fastnn
from fastnn.backends import _batch, _chunked, _numba, _numpy, _products, _tuning
from fastnn.network import n_params
from tests import naive
from tests.conftest import make_problem

CASES = [
    # layers, target, activation, loss
    ([6, 1], "binary", "sigmoid", "cross_entropy"),
    ([6, 7, 4], "multiclass", "sigmoid", "cross_entropy"),
    ([6, 7, 4], "multilabel", "tanh", "squared_error"),
    ([6, 7, 5, 4], "multiclass", "relu", "cross_entropy"),
    ([6, 7, 5, 1], "binary", "tanh", "cross_entropy"),
    ([6, 7, 5, 4, 3], "multilabel", "sigmoid", "squared_error"),
    ([6, 7, 5, 4], "multiclass", "identity", "cross_entropy"),
]


def scaled_error(actual, expected):
    """max |actual − expected| relative to the largest |entry| of expected (entries that cancel
    to near zero are judged against the scale of their gradient, not their own size)."""
    return np.max(np.abs(actual - expected)) / np.max(np.abs(expected))


@pytest.mark.parametrize("lam", [0.0, 1.3])
@pytest.mark.parametrize(("layers", "target", "activation", "loss"), CASES)
def test_matches_naive(backend, layers, target, activation, loss, lam):
    thetas, X, y = make_problem(layers, m=203, target=target)
    J, grads = fastnn.cost_and_grad(
        thetas, X, y, lam=lam, loss=loss, activation=activation, backend=backend
    )
    J_ref, grads_ref = naive.cost_and_grad(thetas, X, y, lam, loss, activation)
    assert J == pytest.approx(J_ref, rel=1e-12)
    for grad, grad_ref in zip(grads, grads_ref):
        assert grad.shape == grad_ref.shape
        assert grad.dtype == np.float64
        assert scaled_error(grad, grad_ref) < 1e-12
    assert fastnn.cost(thetas, X, y, lam=lam, loss=loss, activation=activation,
                       backend=backend) == pytest.approx(J, rel=1e-14)


@pytest.mark.parametrize(("layers", "target", "activation", "loss"), CASES)
def test_backends_agree(layers, target, activation, loss):
    thetas, X, y = make_problem(layers, m=1001, target=target)
    results = {
        backend: fastnn.cost_and_grad(thetas, X, y, lam=0.5, loss=loss, activation=activation,
                                      backend=backend)
        for backend in fastnn.available_backends()
    }
    J_ref, grads_ref = results["numpy"]
    for J, grads in results.values():
        assert J == pytest.approx(J_ref, rel=1e-12)
        for grad, grad_ref in zip(grads, grads_ref):
            assert scaled_error(grad, grad_ref) < 1e-12


@pytest.mark.parametrize("m", [1, 31, 32, 33, 1000, 4097])
def test_serial_and_parallel_bitwise_identical(m):
    """Chunk boundaries depend on m only, and partials are summed in chunk order."""
    thetas, X, y = make_problem([5, 6, 3], m=m, target="multiclass")
    J_serial, grads_serial = fastnn.cost_and_grad(thetas, X, y, lam=1.0, backend="numba")
    for _ in range(3):
        J, grads = fastnn.cost_and_grad(thetas, X, y, lam=1.0, backend="numba-parallel")
        assert J == J_serial
        for grad, grad_serial in zip(grads, grads_serial):
            assert np.array_equal(grad, grad_serial)


def test_chunks_cover_the_examples():
    assert _chunked.n_chunks(1) == 1
    assert _chunked.n_chunks(_tuning.MIN_CHUNK * 2) == 2
    assert _chunked.n_chunks(10**7) == _tuning.MAX_CHUNKS


THREAD_COUNTS = (1, 2, 32)
THREAD_PATHS = {
    # path: layers, m, the rows of the call (None: all)
    "full batch": ((20, 16, 4), 5000, None),
    "mini-batch": ((20, 16, 4), 5000, slice(1000, 4000)),
    "full batch, large P": ((100, 500, 10), 3000, None),
    "mini-batch, batch kernel": ((100, 500, 10), 3000, slice(0, 3000, 6)),
}
THREAD_PROBE = """
import hashlib, json, sys
import numpy as np
import fastnn
paths = {paths}
digests = {{}}
for path, (layers, m, rows) in paths.items():
    rng = np.random.default_rng(0)
    thetas = fastnn.init_weights(layers, seed=rng)
    X = rng.normal(size=(m, layers[0]))
    y = rng.integers(0, layers[-1], size=m)
    for backend in ("numba", "numba-parallel"):
        for dtype in ("float64", "float32"):
            objective = fastnn.Objective(layers, X, y, lam=0.3, backend=backend, dtype=dtype)
            J, grad = objective(fastnn.pack(thetas), rows=rows)
            digests[f"{{backend}} {{dtype}} {{path}}"] = hashlib.sha256(
                np.float64(J).tobytes() + grad.tobytes()).hexdigest()
json.dump(digests, sys.stdout)
"""


@pytest.fixture(scope="module")
def digests_by_thread_count():
    """J and ∇J (hashed) of the same calls in child processes started with each of
    THREAD_COUNTS as NUMBA_NUM_THREADS."""
    code = THREAD_PROBE.format(paths=repr(THREAD_PATHS))
    digests = {}
    for threads in THREAD_COUNTS:
        child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               env={**os.environ, "NUMBA_NUM_THREADS": str(threads)},
                               timeout=900, check=False)
        assert child.returncode == 0, child.stderr
        digests[threads] = json.loads(child.stdout)
    return digests


@pytest.mark.parametrize("path", THREAD_PATHS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("backend", ["numba", "numba-parallel"])
def test_results_do_not_depend_on_numba_num_threads(digests_by_thread_count, backend, dtype,
                                                    path):
    """Chunk boundaries depend on m only: J and ∇J are bitwise the same whatever
    NUMBA_NUM_THREADS the process started with, so machines with different core counts train
    the same model from the same seed."""
    case = f"{backend} {dtype} {path}"
    assert _chunked.n_chunks(5000) == _tuning.MAX_CHUNKS  # as many chunks as there can be
    assert len({digests_by_thread_count[n][case] for n in THREAD_COUNTS}) == 1, {
        n: digests_by_thread_count[n][case] for n in THREAD_COUNTS}


@pytest.mark.parametrize("b", [1, 3, 4, 5, 57, 63, 64, 65, 200, 300, 500, 1023, 1024, 1030])
def test_batch_blocks_cover_the_rows_evenly(b):
    """Consecutive blocks of whole groups of 4 rows, the last with the b % 4 left; every
    halving of the blocks (each thread's share for 2, 4, 8 threads) within 4 rows of even."""
    n_blocks = _batch._batch_blocks(b)
    bounds = [_batch._block_bounds(b, n_blocks, block) for block in range(n_blocks)]
    assert bounds[0][0] == 0 and bounds[-1][1] == b
    assert all(stop == start for (_, stop), (start, _) in pairwise(bounds))
    sizes = [stop - start for start, stop in bounds]
    assert min(sizes) >= 1 and all(size % 4 == 0 for size in sizes[:-1])
    assert max(sizes) - min(sizes[:-1] or sizes) <= 4 + b % 4
    assert n_blocks == {1: 1, 3: 1, 4: 1, 5: 1, 57: 14, 63: 15, 1030: 17}.get(b, 16)
    for parts in (2, 4, 8):
        if n_blocks % parts == 0:
            share = [sum(sizes[k * n_blocks // parts:(k + 1) * n_blocks // parts])
                     for k in range(parts)]
            assert max(share) - min(share) <= 4 + b % 4


@pytest.mark.parametrize("layers", [(784, 128, 10), (784, 256, 128, 64, 10), (400, 25, 10),
                                    (30, 17, 4), (3000, 20, 1)])
def test_delta_tasks_cover_the_columns_in_groups_of_equal_work(layers):
    tasks, groups = _batch._delta_tasks(layers)
    columns = [(l, k) for l, k0, k1 in tasks for k in range(k0, k1)]
    assert columns == [(l, k) for l, s_in in enumerate(layers[:-1]) for k in range(s_in)]
    assert groups[0] == 0 and groups[-1] == len(tasks) and len(groups) == _tuning.BATCH_TASKS + 1
    assert all(np.diff(groups) >= 0)
    work = [sum((k1 - k0) * layers[l + 1] for l, k0, k1 in tasks[groups[g]:groups[g + 1]])
            for g in range(_tuning.BATCH_TASKS)]
    share = sum(work) / _tuning.BATCH_TASKS
    slack = 4 * max(layers[1:])  # a cut is rounded to 4 columns
    if share > 4 * slack:  # (not for the tiny network: a group is a few columns there)
        assert max(abs(w - share) for w in work) <= slack
        assert abs(sum(work[:8]) - sum(work[8:])) <= slack


def test_numpy_blocks_match_one_block(monkeypatch):
    """Several row blocks in the NumPy backend give the same sums as one."""
    thetas, X, y = make_problem([5, 6, 3], m=100, target="multiclass")
    J_one, grads_one = fastnn.cost_and_grad(thetas, X, y, lam=1.0, backend="numpy")
    monkeypatch.setattr(_numpy, "NUMPY_BLOCK_ROWS", 7)
    J, grads = fastnn.cost_and_grad(thetas, X, y, lam=1.0, backend="numpy")
    assert J == pytest.approx(J_one, rel=1e-14)
    for grad, grad_one in zip(grads, grads_one):
        assert scaled_error(grad, grad_one) < 1e-14
    np.testing.assert_allclose(fastnn.forward(thetas, X, backend="numpy"),
                               naive.forward(thetas, X), rtol=1e-13)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize(("layers", "target"), [([6, 1], "binary"), ([6, 7, 5, 4], "multiclass")])
def test_forward_and_predict(backend, layers, target, activation):
    thetas, X, _ = make_problem(layers, m=77, target=target)
    H = fastnn.forward(thetas, X, activation=activation, backend=backend)
    H_ref = naive.forward(thetas, X, activation)
    assert H.shape == (77, layers[-1])
    np.testing.assert_allclose(H, H_ref, rtol=1e-13)
    labels = fastnn.predict(thetas, X, activation=activation, backend=backend)
    expected = (H_ref[:, 0] >= 0.5) if layers[-1] == 1 else H_ref.argmax(axis=1)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, expected)


@pytest.mark.parametrize(("layers", "target", "activation", "loss"), CASES)
def test_float32_agrees_with_float64(backend, layers, target, activation, loss):
    thetas, X, y = make_problem(layers, m=500, target=target)
    J64, grads64 = fastnn.cost_and_grad(thetas, X, y, lam=0.5, loss=loss,
                                        activation=activation, backend=backend)
    thetas32 = [theta.astype(np.float32) for theta in thetas]
    J32, grads32 = fastnn.cost_and_grad(thetas32, X.astype(np.float32), y, lam=0.5, loss=loss,
                                        activation=activation, backend=backend)
    assert J32 == pytest.approx(J64, rel=1e-4)
    for grad32, grad64 in zip(grads32, grads64):
        assert grad32.dtype == np.float32
        assert scaled_error(grad32, grad64) < 1e-4
    H32 = fastnn.forward(thetas32, X, activation=activation, backend=backend)
    assert H32.dtype == np.float32
    np.testing.assert_allclose(H32, fastnn.forward(thetas, X, activation=activation,
                                                   backend=backend), atol=1e-5)


def test_saturated_units(backend):
    """|z| ≈ 800 everywhere: σ rounds to exactly 0 or 1, yet J and ∇J stay finite and exact.

    Hidden units saturate to a = 1 or 0 (so g′ = 0 and only Θ(2) gets a gradient); output unit
    k gets z = ±800 exactly, and each loss term is softplus(±800) = 800 or e^{−800}.
    """
    theta1 = np.array([[0.0, 800.0], [0.0, -800.0]])  # a(2) = [σ(800x), σ(−800x)]
    theta2 = np.array([[0.0, 800.0, 0.0], [0.0, 0.0, -800.0]])
    X = np.array([[1.0], [-1.0]])
    Y = np.array([[0, 1], [1, 1]])
    # z(3) for x = 1: [800, 0]; for x = −1: [0, −800]. Terms: softplus(800) = 800 for (x=1, k=0)
    # and for (x=−1, k=1); softplus(−0) = log 2 for the two units at z = 0 with t = 1 vs 0.
    with np.errstate(all="raise"):
        J, grads = fastnn.cost_and_grad([theta1, theta2], X, Y, lam=0.0, backend=backend)
    assert J == pytest.approx((800 + np.log(2) + np.log(2) + 800) / 2, rel=1e-14)
    assert all(np.isfinite(grad).all() for grad in grads)
    np.testing.assert_array_equal(grads[0], 0.0)
    # D(2) = Σ_i δ(3) [1; a(2)]ᵀ / m with δ(3) = h − y: x=1 → [1, −1/2], x=−1 → [−1/2, −1].
    expected = (np.outer([1.0, -0.5], [1, 1, 0]) + np.outer([-0.5, -1.0], [1, 0, 1])) / 2
    np.testing.assert_allclose(grads[1], expected, rtol=1e-15, atol=1e-300)


def test_large_saturated_network_is_finite(backend):
    thetas, X, y = make_problem([8, 6, 4], m=50, target="multiclass")
    thetas = [theta * 2000 for theta in thetas]
    with np.errstate(all="raise"):
        J, grads = fastnn.cost_and_grad(thetas, X, y, lam=1.0, backend=backend)
    J_ref, grads_ref = fastnn.cost_and_grad(thetas, X, y, lam=1.0, backend="numpy")
    assert np.isfinite(J) and J > 10
    assert J == pytest.approx(J_ref, rel=1e-12)
    for grad, grad_ref in zip(grads, grads_ref):
        assert np.isfinite(grad).all()
        assert scaled_error(grad, grad_ref) < 1e-12


def test_auto_picks_by_layer_sizes():
    from fastnn.backends import BACKENDS, auto_backend, backend_for

    assert auto_backend([64, 32, 10]) == "numba-parallel"
    assert auto_backend([784, 128, 10]) == "numba-parallel"
    assert auto_backend([784, 256, 128, 64, 10]) == "numba-parallel"
    assert auto_backend([784, 512, 256, 10]) == "numpy"
    for name in fastnn.available_backends():
        assert backend_for(name) is BACKENDS[name]


def test_set_num_threads_leaves_results_unchanged():
    thetas, X, Y = make_problem([9, 8, 3], m=500, target="multiclass")
    before = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(1)
        assert fastnn.get_num_threads() == 1
        J1, grads1 = fastnn.cost_and_grad(thetas, X, Y, lam=1.0, backend="numba-parallel")
        fastnn.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        J2, grads2 = fastnn.cost_and_grad(thetas, X, Y, lam=1.0, backend="numba-parallel")
    finally:
        fastnn.set_num_threads(before)
    assert J1 == J2
    assert all(np.array_equal(g1, g2) for g1, g2 in zip(grads1, grads2))


@pytest.mark.parametrize("n", [0, -1, 1.5, True, 10**6])
def test_set_num_threads_rejects(n):
    with pytest.raises(ValueError, match="n: expected an integer from 1 to"):
        fastnn.set_num_threads(n)


@pytest.fixture
def batch_kernel_for_small_networks(monkeypatch):
    """The batch kernel for networks of any size (it is used from BATCH_MIN_PARAMS weights)."""
    monkeypatch.setattr(_tuning, "BATCH_MIN_PARAMS", 0)


@pytest.mark.usefixtures("batch_kernel_for_small_networks")
@pytest.mark.parametrize("m", [1, 5, 64, 203, _tuning.BATCH_ROWS, _tuning.BATCH_ROWS + 1])
@pytest.mark.parametrize(("layers", "target", "activation", "loss"), CASES)
def test_batch_kernel_matches_naive_across_its_limit(layers, target, activation, loss, m):
    """Up to BATCH_ROWS examples the Numba backends take the batch kernel, beyond it the
    chunked one: both sides of the limit give the naive reference's J and ∇J."""
    thetas, X, y = make_problem(layers, m=m, target=target)
    J_ref, grads_ref = naive.cost_and_grad(thetas, X, y, 0.7, loss, activation)
    for backend in ("numba", "numba-parallel"):
        J, grads = fastnn.cost_and_grad(thetas, X, y, lam=0.7, loss=loss,
                                        activation=activation, backend=backend)
        assert J == pytest.approx(J_ref, rel=1e-12)
        for grad, grad_ref in zip(grads, grads_ref):
            assert scaled_error(grad, grad_ref) < 1e-12


@pytest.mark.parametrize("min_params", [0, _tuning.BATCH_MIN_PARAMS])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [1, 7, 64, 200, 512, 1500])
def test_mini_batch_read_through_its_rows(monkeypatch, dtype, batch, min_params):
    """A mini-batch given as row indices (read in place by the Numba kernels) gives what the
    same rows copied out give, on every backend; serial and parallel agree bitwise."""
    monkeypatch.setattr(_tuning, "BATCH_MIN_PARAMS", min_params)
    layers = [9, 8, 5, 3]
    thetas, X, y = make_problem(layers, m=3000, target="multiclass", dtype=dtype)
    theta = fastnn.pack(thetas)
    rows = np.sort(np.random.default_rng(batch).permutation(3000)[:batch])
    results = {}
    for backend in fastnn.available_backends():
        objective = fastnn.Objective(layers, X, y, lam=0.4, backend=backend, dtype=dtype)
        results[backend] = objective(theta, rows=rows)
    copied = fastnn.Objective(layers, X[rows], y[rows], lam=0.4 * batch / 3000,
                              backend="numpy", dtype=dtype)
    J_ref, grad_ref = copied(theta)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    for J, grad in results.values():
        assert grad.dtype == dtype
        assert J == pytest.approx(J_ref, rel=tolerance)
        assert scaled_error(grad, grad_ref) < tolerance
    J_serial, grad_serial = results["numba"]
    J_parallel, grad_parallel = results["numba-parallel"]
    assert J_serial == J_parallel and np.array_equal(grad_serial, grad_parallel)


@pytest.mark.usefixtures("batch_kernel_for_small_networks")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("backend", ["numba", "numba-parallel"])
def test_kept_work_arrays_give_what_fresh_ones_give(backend, dtype):
    """An Objective keeps the batch kernel's work arrays across calls (grown when a batch is
    larger than any before): every call gives bitwise what a fresh Objective gives."""
    layers = [12, 9, 4]
    thetas, X, y = make_problem(layers, m=2000, target="multiclass", dtype=dtype)
    theta = fastnn.pack(thetas)
    objective = fastnn.Objective(layers, X, y, lam=0.3, backend=backend, dtype=dtype)
    rng = np.random.default_rng(0)
    for b in (200, 200, 57, 512, 3, 512):
        rows = np.sort(rng.permutation(2000)[:b])
        J, grad = objective(theta, rows=rows)
        fresh = fastnn.Objective(layers, X, y, lam=0.3, backend=backend, dtype=dtype)
        J_fresh, grad_fresh = fresh(theta, rows=rows)
        assert J == J_fresh and np.array_equal(grad, grad_fresh)
        assert objective.cost(theta) == fresh.cost(theta)
    with objective.data.workspace.lease() as kept:
        [buffers] = kept.values()
    assert buffers.capacity == 512


@pytest.mark.usefixtures("batch_kernel_for_small_networks")
def test_a_call_while_the_work_arrays_are_held_uses_its_own():
    """A call that finds the kept work arrays held by another call (another thread's) works
    on arrays of its own: it gets its batch's result and leaves the kept arrays alone."""
    layers = [40, 30, 10]
    thetas, X, y = make_problem(layers, m=3000, target="multiclass")
    theta = fastnn.pack(thetas)
    objective = fastnn.Objective(layers, X, y, lam=0.3, backend="numba-parallel")
    small, large = np.arange(0, 3000, 30), np.arange(0, 3000, 5)
    J_small, grad_small = objective(theta, rows=small)
    J_large, grad_large = fastnn.Objective(layers, X, y, lam=0.3)(theta, rows=large)
    with objective.data.workspace.lease() as kept:
        [buffers] = kept.values()
        before = [array.copy() for array in buffers.arrays]
        J, grad = objective(theta, rows=large)
        assert J == J_large and np.array_equal(grad, grad_large)
        assert kept[next(iter(kept))] is buffers and buffers.capacity == len(small)
        assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(buffers.arrays, before))
    J, grad = objective(theta, rows=small)
    assert J == J_small and np.array_equal(grad, grad_small)


@pytest.mark.parametrize("min_params", [0, _tuning.BATCH_MIN_PARAMS])
@pytest.mark.parametrize("backend", ["auto", *fastnn.available_backends()])
def test_out_receives_the_gradient(monkeypatch, backend, min_params):
    """``out`` is filled with ∇J and returned, full batch and mini-batch, on every backend."""
    monkeypatch.setattr(_tuning, "BATCH_MIN_PARAMS", min_params)
    layers = [9, 8, 3]
    thetas, X, y = make_problem(layers, m=500, target="multiclass", dtype=np.float32)
    theta = fastnn.pack(thetas)
    objective = fastnn.Objective(layers, X, y, lam=0.3, backend=backend, dtype=np.float32)
    out = np.full(objective.n_params, np.nan, dtype=np.float32)
    for rows in (None, np.arange(0, 500, 3)):
        J_ref, grad_ref = objective(theta, rows=rows)
        J, grad = objective(theta, rows=rows, out=out)
        assert grad is out
        assert J == J_ref and np.array_equal(out, grad_ref)


@pytest.mark.parametrize("layers", [[6, 7, 5, 4], [100, 80, 10]])  # P = 8,890: threads sum Δ
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("backend", [_numba.SERIAL, _numba.PARALLEL], ids=["numba", "parallel"])
def test_chunked_kernel_writes_the_gradient_numpy_would_assemble(backend, dtype, layers):
    """The chunked kernel adds the penalty and writes ∇J itself: bit for bit what the default
    :meth:`Backend.cost_and_grad` assembles with NumPy from its Δ sums, and J to rounding
    (Σ Θ² summed in another order); also on a mini-batch, into ``out``, J alone, and with
    weights whose Θ² overflows (J = inf, as NumPy's)."""
    thetas, X, y = make_problem(layers, m=600, target="multiclass", dtype=dtype)
    theta = fastnn.pack(thetas)
    objective = fastnn.Objective(layers, X, y, lam=0.7, backend="numba", dtype=dtype)
    assert objective.n_params < _tuning.BATCH_MIN_PARAMS  # the chunked kernel's calls
    problem = objective.problem

    def both(theta, data, need_grad=True, out=None):
        fused = backend.cost_and_grad(theta, problem, data, need_grad, out)
        base = fastnn.backends._base.Backend.cost_and_grad(backend, theta, problem, data,
                                                           need_grad)
        return fused, base

    out = np.full(theta.shape, np.nan, dtype=dtype)
    for data, given in ((objective.data, None), (objective.data.take(np.arange(0, 600, 7)), out)):
        (J, grad), (J_ref, grad_ref) = both(theta, data, out=given)
        assert grad.dtype == dtype and (given is None or grad is given)
        assert np.array_equal(grad, grad_ref)
        assert J == pytest.approx(J_ref, rel=1e-15, abs=0)
        (J, grad), (J_ref, _) = both(theta, data, need_grad=False)
        assert grad is None and J == pytest.approx(J_ref, rel=1e-15, abs=0)
    if dtype == np.float64:  # Θ² of float32 weights cannot overflow in float64
        with np.errstate(over="ignore", invalid="ignore"):
            (J, _), (J_ref, _) = both(np.full_like(theta, 1e300), objective.data,
                                      need_grad=False)
        assert J == J_ref == np.inf


def test_objective_describes_its_problem_once():
    """An Objective builds one frozen Problem: λ/W and (λ/2W) Σ Θ² from λ, the example
    weights' scale and m, the pair of output and loss checked, no field to change."""
    layers = [4, 3, 2]
    _, X, y = make_problem(layers, m=50, target="multiclass")
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=50)
    problem = fastnn.Objective(layers, X, y, lam=0.6, activation="tanh", sample_weight=w).problem
    assert (problem.layers, problem.activation, problem.m) == ((4, 3, 2), "tanh", 50)
    assert problem.dtype == np.float64 and problem.output == 0
    assert problem.decay == pytest.approx(0.6 / w.sum(), rel=1e-14)
    assert problem.penalty(3.0) == pytest.approx(0.5 * 0.6 / w.sum() * 3.0, rel=1e-14)
    with pytest.raises(dataclasses.FrozenInstanceError):
        problem.lam = 1.0
    with pytest.raises(ValueError, match="does not go with"):
        dataclasses.replace(problem, output_activation="identity")


@pytest.mark.parametrize("out", [
    np.empty(5), np.empty(55, dtype=np.float32), np.empty((55, 1)), np.empty(110)[::2],
    np.zeros(55).tolist(), np.broadcast_to(np.zeros(1), (55,)),
])
def test_out_rejects(out):
    layers = [9, 4, 3]
    thetas, X, y = make_problem(layers, m=20, target="multiclass")
    objective = fastnn.Objective(layers, X, y)
    assert objective.n_params == 55
    with pytest.raises(ValueError, match=r"out: expected a writeable C-contiguous array of "
                                         r"shape \(55,\) and dtype float64, got"):
        objective(fastnn.pack(thetas), out=out)


@pytest.mark.usefixtures("batch_kernel_for_small_networks")
@pytest.mark.parametrize("m", [64, 500])
def test_batch_kernel_does_not_depend_on_the_thread_count(m):
    thetas, X, y = make_problem([30, 17, 4], m=m, target="multiclass")
    before = fastnn.get_num_threads()
    results = []
    try:
        for n in range(1, numba.config.NUMBA_NUM_THREADS + 1):
            fastnn.set_num_threads(n)
            results.append(fastnn.cost_and_grad(thetas, X, y, lam=1.0,
                                                backend="numba-parallel"))
    finally:
        fastnn.set_num_threads(before)
    for J, grads in results[1:]:
        assert J == results[0][0]
        assert all(np.array_equal(g, g0) for g, g0 in zip(grads, results[0][1]))


def test_auto_decides_per_call():
    """"auto" picks by layer sizes and rows (a mini-batch is not a full batch): NumPy's BLAS
    for 257 rows or more when a Θ(l) has 300,000 weights or more, numba-parallel otherwise,
    in either dtype."""
    from fastnn.backends import AUTO, BACKENDS, backend_for

    layers, wide = [784, 128, 10], [784, 512, 256, 10]
    assert backend_for("auto") is AUTO
    parallel, numpy = BACKENDS["numba-parallel"], BACKENDS["numpy"]
    for dtype in (np.dtype(np.float64), np.dtype(np.float32)):
        for m in (64, 200, 1024, None):
            assert AUTO.choose(layers, m, dtype) is parallel
        assert AUTO.choose(wide, 256, dtype) is parallel
        assert AUTO.choose(wide, 257, dtype) is numpy
        assert AUTO.choose(wide, None, dtype) is numpy
    objective = fastnn.Objective(wide, np.zeros((300, 784)), np.arange(300) % 10,
                                 dtype=np.float32)
    assert objective.computed_by(rows=200) is parallel
    assert objective.computed_by() is numpy


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("R", "T", "N"), [(64, 400, 25), (7, 13, 10), (5, 3, 1), (64, 33, 31),
                                            (12, 64, 32), (1, 9, 6)])
def test_both_product_loops_against_numpy(R, T, N, dtype):
    """OUT += C B by the row-tiled loop and by dot products (B given transposed), remainders of
    rows, columns and T included."""
    rng = np.random.default_rng(R * T * N)
    C = rng.normal(size=(R, T)).astype(dtype)
    B = rng.normal(size=(T, N)).astype(dtype)
    OUT0 = rng.normal(size=(R, N)).astype(dtype)
    expected = OUT0.astype(np.float64) + C.astype(np.float64) @ B.astype(np.float64)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    for product, operand in ((_products._add_product, B), (_products._add_dot_products,
                                                        np.ascontiguousarray(B.T))):
        OUT = OUT0.copy()
        product(C, operand, OUT)
        assert scaled_error(OUT, expected) < tolerance


@pytest.mark.parametrize("width", [_tuning.NARROW - 1, _tuning.NARROW])
def test_narrow_and_wide_layers_match_naive(backend, width):
    """Layers of fewer than NARROW units take the dot-product loop forward, wider ones the
    row-tiled loop: both give the naive reference's J and ∇J."""
    thetas, X, y = make_problem([40, width, width + 3, 4], m=150, target="multiclass")
    J, grads = fastnn.cost_and_grad(thetas, X, y, lam=0.3, backend=backend)
    J_ref, grads_ref = naive.cost_and_grad(thetas, X, y, 0.3)
    assert J == pytest.approx(J_ref, rel=1e-12)
    for grad, grad_ref in zip(grads, grads_ref):
        assert scaled_error(grad, grad_ref) < 1e-12


@pytest.mark.parametrize(("layers", "b", "cost_and_grad", "expected"), [
    ([784, 128, 10], 200, True, {"batch": True, "serial_copy": True}),
    ([784, 256, 128, 64, 10], 1024, True, {"batch": True, "serial_copy": False}),
    ([784, 128, 10], 1025, True, {"batch": False, "unit_major": False}),
    ([784, 128, 10], 200, False, {"batch": False, "copy_parts": 138, "parallel_reduce": True}),
    ([400, 25, 10], 200, True, {"batch": False, "unit_major": True}),
    ([20, 60, 3], 300, True, {"batch": False, "unit_major": False, "copy_parts": 1,
                              "parallel_reduce": False, "n_chunks": 9}),
])
def test_kernel_choice_follows_its_rule(layers, b, cost_and_grad, expected):
    """The batch kernel for J and ∇J on at most BATCH_ROWS examples of a network of
    BATCH_MIN_PARAMS weights or more (W(l) copied on one thread for one hidden layer); else the
    chunked kernel, unit-major for narrow layers, its copy of W(l) over the threads from
    COPY_PARALLEL_MIN weights, its Δ rows summed over the threads from REDUCE_PARALLEL_MIN."""
    choice = _numba.choose_kernel(layers, b, n_params(layers), cost_and_grad)
    assert {key: getattr(choice, key) for key in expected} == expected


@pytest.mark.parametrize(("layers", "unit_major"), [([40, 31, 28, 4], True),
                                                    ([40, 31, 32, 4], False)])
@pytest.mark.parametrize(("activation", "output_activation", "loss"),
                         [("tanh", "sigmoid", "cross_entropy"),
                          ("relu", "identity", "squared_error"),
                          ("identity", "softmax", "cross_entropy"),
                          ("tanh", "exp", "poisson")])
def test_unit_major_and_row_blocks_match_naive(layers, unit_major, activation,
                                               output_activation, loss):
    """The chunked kernel keeps a block unit-major when every layer after the input has fewer
    than NARROW units, as rows otherwise: both give the naive reference's J, ∇J and outputs,
    with example weights and a target matrix, on chunks of 68–69 rows (a block of 64, then
    one of 4 or 5); serial and parallel bitwise identical."""
    m = 1100
    choice = _numba.choose_kernel(layers, m, n_params(layers))
    assert choice.unit_major == unit_major
    assert choice.n_chunks == 16  # chunks of 68 or 69 rows
    thetas, X, y = make_problem(layers, m=m, target="multilabel", seed=3)
    w = np.random.default_rng(5).uniform(0.0, 3.0, size=m)
    options = dict(loss=loss, activation=activation, output_activation=output_activation,
                   sample_weight=w)
    J_ref, grads_ref = naive.cost_and_grad(thetas, X, y, 0.3, **options)
    J, grads = fastnn.cost_and_grad(thetas, X, y, lam=0.3, backend="numba", **options)
    assert J == pytest.approx(J_ref, rel=1e-12)
    for grad, grad_ref in zip(grads, grads_ref):
        assert scaled_error(grad, grad_ref) < 1e-12
    J_parallel, grads_parallel = fastnn.cost_and_grad(thetas, X, y, lam=0.3,
                                                      backend="numba-parallel", **options)
    assert J_parallel == J
    assert all(np.array_equal(a, b) for a, b in zip(grads_parallel, grads))
    H = fastnn.forward(thetas, X, activation=activation, output_activation=output_activation,
                       backend="numba-parallel")
    np.testing.assert_allclose(H, naive.forward(thetas, X, activation, output_activation),
                               rtol=1e-12, atol=1e-15)
