"""scipy.sparse X wherever X is taken: the same numbers as its dense copy, never densified.

Every sparse result is compared with the same call on ``X.toarray()``: J and ∇J to 1e-12
relative in float64 (1e-5 in float32), outputs likewise, fits to 1e-10.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

import fastnn
from fastnn._validation import check_X
from fastnn.backends import AUTO, BACKENDS, LocalData
from fastnn.cli import main

SPARSE_BACKENDS = ["numpy", "numba", "numba-parallel", "auto"]

M, N = 200, 300


def sparse_X(m=M, n=N, density=0.05, seed=0, dtype=np.float64, fmt="csr"):
    return sp.random(m, n, density=density, format=fmt, dtype=dtype, random_state=seed)


def targets(kind, m=M, K=4, seed=1):
    rng = np.random.default_rng(seed)
    if kind == "labels":
        return rng.integers(0, K, size=m)
    if kind == "matrix":
        return rng.integers(0, 2, size=(m, K))
    return rng.normal(size=(m, K))


def assert_grads_close(grads, expected, rtol):
    for grad, grad_ref in zip(grads, expected):
        np.testing.assert_allclose(grad, grad_ref, rtol=rtol,
                                   atol=rtol * np.abs(grad_ref).max())


# (id, hidden layers, output_activation, loss, targets, weighted, dtype)
CASES = [
    ("sigmoid", [7], "sigmoid", "cross_entropy", "matrix", False, np.float64),
    ("softmax", [7], "softmax", "cross_entropy", "labels", False, np.float64),
    ("identity", [7], "identity", "squared_error", "real", False, np.float64),
    ("weights", [7], "sigmoid", "cross_entropy", "labels", True, np.float64),
    ("two-hidden", [9, 5], "softmax", "cross_entropy", "labels", False, np.float64),
    ("float32", [7], "softmax", "cross_entropy", "labels", False, np.float32),
]


@pytest.mark.parametrize("backend", SPARSE_BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_cost_and_grad_equal_the_dense_ones(backend, case):
    _, hidden, output, loss, kind, weighted, dtype = case
    layers = [N, *hidden, 4]
    thetas = fastnn.init_weights(layers, seed=0, dtype=dtype)
    X = sparse_X(dtype=dtype)
    options = {"output_activation": output, "loss": loss, "lam": 0.3, "backend": backend,
               "sample_weight": np.random.default_rng(2).random(M) if weighted else None}
    J, grads = fastnn.cost_and_grad(thetas, X, targets(kind), **options)
    J_ref, grads_ref = fastnn.cost_and_grad(thetas, X.toarray(), targets(kind), **options)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    assert J == pytest.approx(J_ref, rel=rtol)
    assert fastnn.cost(thetas, X, targets(kind), **options) == pytest.approx(J_ref, rel=rtol)
    assert all(grad.dtype == dtype for grad in grads)
    assert_grads_close(grads, grads_ref, rtol)


@pytest.mark.parametrize("backend", SPARSE_BACKENDS)
@pytest.mark.parametrize("fmt", ["csc", "coo", "lil", "csr_array"])
def test_every_format_gives_the_csr_numbers(backend, fmt):
    thetas = fastnn.init_weights([N, 6, 4], seed=0)
    X = sparse_X()
    given = sp.csr_array(X) if fmt == "csr_array" else X.asformat(fmt)
    J, grads = fastnn.cost_and_grad(thetas, given, targets("labels"), backend=backend)
    J_ref, grads_ref = fastnn.cost_and_grad(thetas, X, targets("labels"), backend=backend)
    assert J == J_ref
    assert_grads_close(grads, grads_ref, 0.0)


@pytest.mark.parametrize("backend", SPARSE_BACKENDS)
@pytest.mark.parametrize("rows", [np.array([5, 0, 199, 17, 17, 63]), slice(40, 140)],
                         ids=["indices", "slice"])
def test_objective_mini_batches_equal_the_dense_ones(backend, rows):
    layers = [N, 8, 4]
    vec = fastnn.pack(fastnn.init_weights(layers, seed=3))
    X, y = sparse_X(), targets("labels")
    sparse = fastnn.Objective(layers, X, y, 0.5, backend=backend,
                              output_activation="softmax")
    dense = fastnn.Objective(layers, X.toarray(), y, 0.5, backend=backend,
                             output_activation="softmax")
    (J, grad), (J_ref, grad_ref) = sparse(vec, rows=rows), dense(vec, rows=rows)
    assert J == pytest.approx(J_ref, rel=1e-12)
    assert_grads_close([grad], [grad_ref], 1e-12)
    J, score = sparse.cost_and_score(vec)
    assert (J, score) == pytest.approx(dense.cost_and_score(vec), rel=1e-12)
    np.testing.assert_allclose(sparse.forward(vec), dense.forward(vec), rtol=1e-12)


@pytest.mark.parametrize("backend", SPARSE_BACKENDS)
@pytest.mark.parametrize("output", ["sigmoid", "softmax", "identity"])
def test_forward_and_predict_equal_the_dense_ones(backend, output):
    thetas = fastnn.init_weights([N, 7, 5, 3], seed=4)
    X = sparse_X(fmt="csc")
    H = fastnn.forward(thetas, X, output_activation=output, backend=backend)
    H_ref = fastnn.forward(thetas, X.toarray(), output_activation=output, backend=backend)
    np.testing.assert_allclose(H, H_ref, rtol=1e-12, atol=1e-15)
    Z = fastnn.forward(thetas, X, output_activation=output, backend=backend, logits=True)
    np.testing.assert_allclose(Z, fastnn.forward(thetas, X.toarray(), backend=backend,
                                                 logits=True), rtol=1e-12, atol=1e-15)
    if output != "identity":
        np.testing.assert_array_equal(
            fastnn.predict(thetas, X, output_activation=output, backend=backend),
            fastnn.predict(thetas, X.toarray(), output_activation=output, backend=backend))


@pytest.mark.parametrize("backend", SPARSE_BACKENDS)
def test_gradient_check_on_sparse_input(backend):
    thetas = fastnn.init_weights([40, 5, 3], seed=0)
    X = sparse_X(m=20, n=40, density=0.1)
    assert fastnn.check_gradients(thetas, X, targets("labels", m=20, K=3), lam=0.5,
                                  backend=backend) < 1e-8


def test_auto_computes_sparse_data_with_numba_parallel():
    """Even a network and a batch that "auto" would give to NumPy were X dense."""
    layers = [2000, 400, 10]
    assert AUTO.choose(layers, 10_000, np.float64) is BACKENDS["numpy"]
    assert AUTO.choose(layers, 10_000, np.float64, sparse=True) is BACKENDS["numba-parallel"]
    objective = fastnn.Objective([N, 5, 4], sparse_X(), targets("labels"))
    assert objective.data.sparse
    assert objective.computed_by() is BACKENDS["numba-parallel"]
    assert objective.computed_by(50) is BACKENDS["numba-parallel"]


def test_local_data_keeps_csr_rows():
    X = check_X(sparse_X(), N, np.float64)
    data = BACKENDS["numpy"].prepare(X, targets("labels"), [N, 5, 4], np.float64)
    assert data.X is X and data.sparse and data.m == M and data.inputs is X
    batch = data.take(np.array([7, 3, 3, 150]))
    assert isinstance(batch, LocalData) and batch.X is X and batch.m == 4
    for part in (batch.inputs, batch.materialize()[0]):
        assert type(part) is sp.csr_matrix and part.has_canonical_format
        assert part.indices.dtype == part.indptr.dtype == np.int32
        np.testing.assert_array_equal(part.toarray(), X.toarray()[[7, 3, 3, 150]])
    np.testing.assert_array_equal(batch.materialize()[1].labels,
                                  targets("labels")[[7, 3, 3, 150]])


# -- the checks at the boundary --------------------------------------------------------------


def test_a_canonical_csr_matrix_is_used_as_given():
    X = sparse_X()
    assert check_X(X, N, np.float64) is X


@pytest.mark.parametrize("given", ["float32", "int", "bool", "csr_array", "int64 indices"])
def test_conversions_make_a_canonical_csr_matrix(given):
    X = sparse_X()
    X = {"float32": lambda: X.astype(np.float32), "int": lambda: (X * 10).astype(np.int64),
         "bool": lambda: X.astype(bool), "csr_array": lambda: sp.csr_array(X),
         "int64 indices": lambda: _with_int64_indices(X)}[given]()
    checked = check_X(X, N, np.float64)
    assert type(checked) is sp.csr_matrix and checked.dtype == np.float64
    assert checked.indices.dtype == checked.indptr.dtype == np.int32
    assert checked.has_canonical_format
    np.testing.assert_array_equal(checked.toarray(), X.toarray().astype(np.float64))


def _with_int64_indices(X):
    X = X.copy()
    X.indices, X.indptr = X.indices.astype(np.int64), X.indptr.astype(np.int64)
    return X


def test_int64_indices_give_the_int32_numbers():
    thetas = fastnn.init_weights([N, 6, 4], seed=0)
    X = sparse_X()
    J, grads = fastnn.cost_and_grad(thetas, _with_int64_indices(X), targets("labels"),
                                    backend="numpy")
    J_ref, grads_ref = fastnn.cost_and_grad(thetas, X, targets("labels"), backend="numpy")
    assert J == J_ref
    assert_grads_close(grads, grads_ref, 0.0)


def unsorted_with_duplicates():
    """A CSR matrix whose rows list columns out of order and some twice."""
    rng = np.random.default_rng(5)
    counts = rng.integers(0, 12, size=M)
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    indices = rng.integers(0, N, size=indptr[-1]).astype(np.int32)
    data = rng.normal(size=indptr[-1])
    return sp.csr_matrix((data, indices, indptr), shape=(M, N))


@pytest.mark.parametrize("backend", SPARSE_BACKENDS)
def test_unsorted_indices_and_duplicates_are_summed_in_a_copy(backend):
    X = unsorted_with_duplicates()
    arrays = [X.data.copy(), X.indices.copy(), X.indptr.copy()]
    assert not X.has_sorted_indices
    thetas = fastnn.init_weights([N, 6, 4], seed=0)
    J, grads = fastnn.cost_and_grad(thetas, X, targets("labels"), backend=backend)
    J_ref, grads_ref = fastnn.cost_and_grad(thetas, X.toarray(), targets("labels"),
                                            backend=backend)
    assert J == pytest.approx(J_ref, rel=1e-12)
    assert_grads_close(grads, grads_ref, 1e-12)
    for array, before in zip((X.data, X.indices, X.indptr), arrays):
        np.testing.assert_array_equal(array, before)  # the caller's matrix untouched
    checked = check_X(X, N, np.float64)
    assert checked.has_canonical_format and checked.nnz < X.nnz
    assert not np.shares_memory(checked.indices, X.indices)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_in_the_data(value):
    X = sparse_X()
    X.data[7] = value
    with pytest.raises(ValueError, match="X: contains NaN or infinity"):
        check_X(X, N, np.float64)


BAD = [
    (lambda X: X[:, :10], ValueError, "X: has 10 columns but the network's input layer has"),
    (lambda X: X[:0], ValueError, r"X: expected at least one example \(row\), got m = 0"),
    (lambda X: X.astype(np.complex128), TypeError, "X: expected a numeric array, got sparse "
     "csr matrix of dtype complex128"),
    (lambda X: sp.coo_array(X.toarray()[0]), ValueError, "X: expected a 2-D array"),
    (lambda X: _out_of_range(X), ValueError, r"X: not a valid CSR matrix: column indices "
     r"must lie in 0 \.\.\. 299"),
]


def _out_of_range(X):
    X = X.copy()
    X.indices[3] = N
    return X


@pytest.mark.parametrize(("change", "error", "message"), BAD,
                         ids=["columns", "empty", "complex", "1-D", "index"])
def test_bad_sparse_X_names_the_argument(change, error, message):
    with pytest.raises(error, match=message):
        fastnn.cost(fastnn.init_weights([N, 3, 2], seed=0), change(sparse_X()),
                    np.zeros(M, np.int64), backend="numpy")


def test_a_sparse_y_is_densified():
    thetas = fastnn.init_weights([N, 5, 4], seed=0)
    X, Y = sparse_X(), targets("matrix")
    J = fastnn.cost(thetas, X, sp.csr_matrix(Y), backend="numpy")
    assert J == fastnn.cost(thetas, X, Y, backend="numpy")


# -- the estimators --------------------------------------------------------------------------


def classification(m=M):
    X = sparse_X(m=m)
    score = np.asarray(X[:, :40].sum(axis=1)).ravel()
    return X, np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))


def quiet_fit(estimator, X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y, **kwargs)


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
@pytest.mark.parametrize("estimator", [fastnn.MLPClassifier, fastnn.MLPRegressor])
def test_fit_on_csr_equals_the_dense_fit(estimator, solver):
    X, y = classification()
    settings = {"hidden_layer_sizes": (8,), "solver": solver, "max_iter": 15,
                "backend": "numpy", "random_state": 0, "shuffle": True, "batch_size": 32}
    sparse = quiet_fit(estimator(**settings), X, y)
    dense = quiet_fit(estimator(**settings), X.toarray(), y)
    for coef, coef_ref in zip(sparse.coefs_ + sparse.intercepts_,
                              dense.coefs_ + dense.intercepts_):
        np.testing.assert_allclose(coef, coef_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(sparse.predict(X), dense.predict(X.toarray()), rtol=1e-10)
    assert sparse.score(X.tocsc(), y) == pytest.approx(dense.score(X.toarray(), y), rel=1e-10)
    if estimator is fastnn.MLPClassifier:
        np.testing.assert_allclose(sparse.predict_proba(X.tocoo()),
                                   dense.predict_proba(X.toarray()), rtol=1e-10)


def test_partial_fit_early_stopping_and_validation_data_on_csr():
    X, y = classification()
    settings = {"hidden_layer_sizes": (8,), "backend": "numpy", "random_state": 0}
    sparse = fastnn.MLPClassifier(**settings).partial_fit(X, y, classes=[0, 1, 2])
    dense = fastnn.MLPClassifier(**settings).partial_fit(X.toarray(), y, classes=[0, 1, 2])
    np.testing.assert_allclose(sparse.coefs_[0], dense.coefs_[0], rtol=1e-10, atol=1e-12)
    stopped = quiet_fit(fastnn.MLPClassifier(**settings, early_stopping=True, max_iter=5),
                        X.tocoo(), y)
    assert len(stopped.validation_scores_) == 5
    validated = quiet_fit(fastnn.MLPRegressor(**settings, max_iter=3), X[:150], y[:150],
                          validation_data=(X[150:].tocsc(), y[150:]))
    assert len(validated.history_["val_score"]) == 3


def test_float32_csr_trains_a_float32_model():
    X, y = classification()
    clf = quiet_fit(fastnn.MLPClassifier((6,), max_iter=3, backend="numpy"),
                    X.astype(np.float32), y)
    assert clf.thetas_[0].dtype == np.float32
    assert clf.predict_proba(X).dtype == np.float32


def test_a_sparse_multilabel_y_trains_as_the_dense_one():
    """scikit-learn's MLPClassifier takes a sparse indicator matrix, densified."""
    X, Y = sparse_X(), targets("matrix", K=3)
    settings = {"hidden_layer_sizes": (6,), "max_iter": 5, "backend": "numpy",
                "random_state": 0}
    sparse = quiet_fit(fastnn.MLPClassifier(**settings), X, sp.csr_matrix(Y))
    dense = quiet_fit(fastnn.MLPClassifier(**settings), X, Y)
    np.testing.assert_array_equal(sparse.coefs_[0], dense.coefs_[0])
    assert isinstance(sparse.predict(X), np.ndarray)
    assert sparse.score(X, sp.csr_matrix(Y)) == dense.score(X, Y)
    real = quiet_fit(fastnn.MLPRegressor(**settings), X, sp.csr_matrix(targets("real", K=2)))
    assert real.n_outputs_ == 2


@pytest.mark.parametrize("estimator", [fastnn.MLPClassifier(), fastnn.MLPRegressor()])
def test_estimators_say_they_take_sparse_input(estimator):
    assert estimator.__sklearn_tags__().input_tags.sparse


# -- the command -----------------------------------------------------------------------------


@pytest.fixture
def sparse_files(tmp_path):
    X, y = classification()
    sp.save_npz(tmp_path / "X.npz", X)
    np.save(tmp_path / "y.npy", y)
    return tmp_path


def test_train_and_predict_a_sparse_file(sparse_files, capsys):
    folder = sparse_files
    model, out = folder / "model.npz", folder / "predictions.txt"
    assert main(["train", "--data", str(folder / "X.npz"), "--y", str(folder / "y.npy"),
                 "--hidden", "6", "--max-iter", "10", "--quiet",
                 "--out", str(model)]) == 0
    assert "network 300-6-3" in capsys.readouterr().out
    assert main(["predict", str(model), str(folder / "X.npz"), "--y", str(folder / "y.npy"),
                 "--out", str(out)]) == 0
    assert f"on {M} examples" in capsys.readouterr().err
    assert len(out.read_text().splitlines()) == M


@pytest.mark.parametrize(("y", "message"), [
    (None, "X.npz: a sparse X (scipy.sparse.save_npz) holds no targets; give them with "
           "--y FILE.npy"),
    ("short.npy", "--y {folder}/short.npy: expected an array of 200 rows, one per row of "
                  "{folder}/X.npz, got shape (10,)"),
    ("missing.npy", "--y: file not found: {folder}/missing.npy"),
])
def test_a_sparse_file_without_its_targets(sparse_files, capsys, y, message):
    folder = sparse_files
    np.save(folder / "short.npy", np.zeros(10))
    args = ["train", "--data", str(folder / "X.npz"), "--quiet"]
    assert main(args + ([] if y is None else ["--y", str(folder / y)])) == 1
    assert message.format(folder=folder) in capsys.readouterr().err


def test_y_only_goes_with_a_sparse_file(capsys):
    assert main(["train", "--data", "digits", "--y", "y.npy", "--quiet"]) == 1
    assert "--y: only with a sparse X file" in capsys.readouterr().err
