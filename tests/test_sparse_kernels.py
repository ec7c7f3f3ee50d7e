"""The Numba backends' sparse kernel against the NumPy backend on the dense copy.

These tests call the backends on prepared data directly (CSR X built here in canonical form),
so that they pin the kernel alone: J, ∇J, the Δ sums and the outputs from the CSR rows equal
the dense results to 1e-12 (float64), the serial and parallel compilations agree bitwise and
the results do not depend on the number of threads.
"""

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from fastnn._validation import check_targets
from fastnn.backends import BACKENDS
from fastnn.backends._base import LocalData, Workspace
from fastnn.backends._tuning import SPARSE_SEGMENT
from fastnn.network import init_weights, pack
from fastnn.problem import Problem

NUMBA = ("numba", "numba-parallel")


def _case(layers, m=300, density=0.05, dtype=np.float64, output="sigmoid",
          loss="cross_entropy", weighted=False, seed=0):
    """(problem, θ, CSR data, the same examples dense) for a random sparse X."""
    rng = np.random.default_rng(seed)
    X = sp.random(m, layers[0], density=density, format="csr", random_state=seed,
                  dtype=dtype)
    X.sum_duplicates()
    real = output == "identity"
    y = (rng.random((m, layers[-1])) if real
         else rng.integers(0, max(2, layers[-1]), m))
    w = rng.random(m) + 0.5 if weighted else None
    targets = check_targets(y, m, layers[-1], dtype, real, w)
    problem = Problem(tuple(layers), "sigmoid", output, loss, 1.0, targets.weight_scale, m,
                      np.dtype(dtype))
    theta = pack(init_weights(layers, seed=seed, dtype=dtype))
    return (problem, theta, LocalData(X, targets, workspace=Workspace()),
            LocalData(X.toarray(), targets, workspace=Workspace()))


def _relative(a, b):
    return np.abs(np.asarray(a, float) - b).max() / np.abs(b).max()


CASES = [
    dict(layers=[300, 20, 10]),
    dict(layers=[300, 4]),  # no hidden layer: z(1) is the output
    dict(layers=[300, 40, 12, 3], output="softmax"),
    dict(layers=[300, 16, 2], output="identity", loss="squared_error"),
    dict(layers=[300, 24, 3], weighted=True),
    dict(layers=[300, 20, 1], density=0.001),  # rows without a nonzero
]


@pytest.mark.parametrize("backend", NUMBA)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c["layers"])))
@pytest.mark.parametrize("batch", [False, True], ids=["full", "batch"])
def test_sparse_equals_dense(backend, case, batch):
    problem, theta, sparse, dense = _case(**case)
    if batch:  # a mini-batch: its rows read through indptr, ∇J without holding Δ(0)
        rows = np.arange(3, 290, 4)
        sparse, dense = sparse.take(rows), dense.take(rows)
    J_ref, grad_ref = BACKENDS["numpy"].cost_and_grad(theta, problem, dense, True)
    J, grad = BACKENDS[backend].cost_and_grad(theta, problem, sparse, True)
    assert abs(J - J_ref) <= 1e-12 * abs(J_ref)
    assert _relative(grad, grad_ref) <= 1e-12
    assert grad.dtype == theta.dtype
    J_alone, none = BACKENDS[backend].cost_and_grad(theta, problem, sparse, False)
    assert none is None and J_alone == J
    total, Delta = BACKENDS[backend].loss_and_delta(theta, problem, sparse, True)
    total_ref, Delta_ref = BACKENDS["numpy"].loss_and_delta(theta, problem, dense, True)
    assert abs(total - total_ref) <= 1e-12 * abs(total_ref)
    assert _relative(Delta, Delta_ref) <= 1e-12


@pytest.mark.parametrize("backend", NUMBA)
@pytest.mark.parametrize("logits", [False, True])
def test_sparse_forward(backend, logits):
    problem, theta, sparse, dense = _case([300, 20, 10])
    H = BACKENDS[backend].forward(theta, problem.layers, sparse.X, "sigmoid", logits)
    H_ref = BACKENDS["numpy"].forward(theta, problem.layers, dense.X, "sigmoid", logits)
    assert np.abs(H - H_ref).max() <= 1e-12


@pytest.mark.parametrize("backend", NUMBA)
def test_sparse_float32(backend):
    problem, theta, sparse, _ = _case([300, 20, 10], dtype=np.float32)
    problem64, theta64, _, dense64 = _case([300, 20, 10])
    J_ref, grad_ref = BACKENDS["numpy"].cost_and_grad(theta64, problem64, dense64, True)
    J, grad = BACKENDS[backend].cost_and_grad(theta, problem, sparse, True)
    assert grad.dtype == np.float32
    assert abs(J - J_ref) <= 1e-5 * abs(J_ref)
    assert _relative(grad, grad_ref) <= 1e-5


def test_several_segments():
    """More rows than one segment: Δ(0) added into float64 across segments."""
    m = SPARSE_SEGMENT + 808
    problem, theta, sparse, dense = _case([60, 8, 3], m=m, density=0.1)
    J_ref, grad_ref = BACKENDS["numpy"].cost_and_grad(theta, problem, dense, True)
    for backend in NUMBA:
        J, grad = BACKENDS[backend].cost_and_grad(theta, problem, sparse, True)
        assert abs(J - J_ref) <= 1e-12 * abs(J_ref)
        assert _relative(grad, grad_ref) <= 1e-12


def test_serial_parallel_and_threads_bitwise():
    """Serial and parallel compilations, and any number of threads, give the same bits."""
    problem, theta, sparse, _ = _case([300, 40, 12, 3], m=2000, output="softmax")
    batch = sparse.take(np.arange(0, 2000, 7))
    for data in (sparse, batch):
        J, grad = BACKENDS["numba"].cost_and_grad(theta, problem, data, True)
        grad = grad.copy()
        before = numba.get_num_threads()
        try:
            for threads in sorted({1, before}):
                numba.set_num_threads(threads)
                J_par, grad_par = BACKENDS["numba-parallel"].cost_and_grad(
                    theta, problem, data, True)
                assert J_par == J
                assert np.array_equal(grad_par, grad)
        finally:
            numba.set_num_threads(before)


def test_unsorted_and_duplicate_indices():
    """The kernel sums every stored entry: duplicates add up as scipy defines them, and the
    order of a row's entries does not matter beyond rounding."""
    problem, theta, sparse, dense = _case([300, 20, 10])
    X = sparse.X
    # each row's entries reversed, and every entry split into two halves
    indptr = X.indptr * 2
    indices = np.empty(2 * X.nnz, dtype=X.indices.dtype)
    data = np.empty(2 * X.nnz)
    for i in range(X.shape[0]):
        lo, hi = X.indptr[i], X.indptr[i + 1]
        cols, vals = X.indices[lo:hi][::-1], X.data[lo:hi][::-1]
        indices[2 * lo : 2 * hi] = np.repeat(cols, 2)
        data[2 * lo : 2 * hi] = np.repeat(vals / 2, 2)
    messy = sp.csr_matrix((data, indices, indptr), shape=X.shape)
    assert not messy.has_canonical_format
    J_ref, grad_ref = BACKENDS["numpy"].cost_and_grad(theta, problem, dense, True)
    J, grad = BACKENDS["numba-parallel"].cost_and_grad(
        theta, problem, sparse._replace(X=messy), True)
    assert abs(J - J_ref) <= 1e-12 * abs(J_ref)
    assert _relative(grad, grad_ref) <= 1e-12


def test_int64_index_arrays():
    """Index arrays of int64 (scipy's for more than 2³¹ nonzeros) give the same numbers."""
    problem, theta, sparse, _ = _case([300, 20, 10])
    X = sparse.X
    wide = X.copy()  # scipy's constructor would take the indices back to int32
    wide.indices, wide.indptr = X.indices.astype(np.int64), X.indptr.astype(np.int64)
    assert wide.indices.dtype == wide.indptr.dtype == np.int64
    J, grad = BACKENDS["numba"].cost_and_grad(theta, problem, sparse, True)
    grad = grad.copy()
    J64, grad64 = BACKENDS["numba"].cost_and_grad(theta, problem, sparse._replace(X=wide), True)
    assert J64 == J and np.array_equal(grad64, grad)
