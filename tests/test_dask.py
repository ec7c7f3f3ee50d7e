"""backend="dask" on a real LocalCluster (2 worker processes, 1 thread each, loopback)."""

import logging
import os
import re
import signal
import sys

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import fastnn
from tests.conftest import make_problem

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=":0",
                                  silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        yield client


def dask_problem(layers, m, target, chunk_rows, dtype=np.float64):
    thetas, X, Y = make_problem(layers, m=m, target=target, dtype=dtype)
    X_dask = da.from_array(X, chunks=(chunk_rows, layers[0]))
    Y_dask = da.from_array(Y, chunks=(chunk_rows, *np.shape(Y)[1:]))
    return thetas, X, Y, X_dask, Y_dask


@pytest.mark.parametrize("target", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("chunk_rows", [250, 333])
def test_matches_one_machine(client, target, chunk_rows):
    layers = [12, 9, 1 if target == "binary" else 4]
    thetas, X, Y, X_dask, Y_dask = dask_problem(layers, 2000, target, chunk_rows)
    J, grads = fastnn.cost_and_grad(thetas, X_dask, Y_dask, lam=0.7, backend="dask",
                                    client=client)
    J_ref, grads_ref = fastnn.cost_and_grad(thetas, X, Y, lam=0.7, backend="numba")
    assert J == pytest.approx(J_ref, rel=1e-12)
    for grad, grad_ref in zip(grads, grads_ref):
        np.testing.assert_allclose(grad, grad_ref, rtol=1e-12, atol=1e-12 * np.abs(grad_ref).max())


def test_result_does_not_depend_on_scheduling(client):
    """Partials are added in a fixed tree: two evaluations agree bitwise."""
    thetas, _, _, X_dask, Y_dask = dask_problem([12, 9, 4], 2000, "multiclass", 111)
    objective = fastnn.Objective([12, 9, 4], X_dask, Y_dask, 1.0, backend="dask", client=client)
    vec = fastnn.pack(thetas)
    (J1, g1), (J2, g2) = objective(vec), objective(vec)
    assert J1 == J2 and np.array_equal(g1, g2)


def test_in_memory_arrays_are_distributed(client):
    thetas, X, Y = make_problem([6, 5, 3], m=300, target="multiclass")
    objective = fastnn.Objective([6, 5, 3], X, Y, 1.0, backend="dask", client=client)
    assert len(objective.data.chunks) == 4  # two per worker
    assert objective.cost(fastnn.pack(thetas)) == pytest.approx(
        fastnn.cost(thetas, X, Y, lam=1.0), rel=1e-12)
    np.testing.assert_allclose(objective.forward(fastnn.pack(thetas)),
                               fastnn.forward(thetas, X), rtol=1e-12)


@pytest.mark.parametrize("output", ["softmax", "exp"])
def test_forward_of_a_dask_array_applies_the_output(client, output):
    """The outputs of a Dask array stay a Dask array, each block of rows taken through the
    output layer: softmax rows (summing to 1) or e^z, as in one process."""
    thetas, X, _ = make_problem([6, 5, 3], m=300, target="multiclass")
    H = fastnn.forward(thetas, da.from_array(X, chunks=(70, 6)), output_activation=output,
                       backend="dask")
    assert isinstance(H, da.Array)
    np.testing.assert_allclose(H.compute(), fastnn.forward(thetas, X, output_activation=output),
                               rtol=1e-12)


def test_lbfgs_fit_matches_one_machine(client):
    layers = [12, 9, 4]
    thetas, X, Y, X_dask, Y_dask = dask_problem(layers, 1500, "multiclass", 400)
    vec = fastnn.pack(thetas)
    here = fastnn.train(fastnn.Objective(layers, X, Y, 1.0, backend="numba"), vec,
                        solver="lbfgs", max_iter=40, n_iter_no_change=0)
    there = fastnn.train(fastnn.Objective(layers, X_dask, Y_dask, 1.0, backend="dask",
                                          client=client), vec, solver="lbfgs", max_iter=40,
                         n_iter_no_change=0)
    assert len(there.history.records) == len(here.history.records)
    np.testing.assert_allclose(there.theta, here.theta, rtol=0, atol=1e-8)


def test_float32(client):
    thetas, X, Y, X_dask, Y_dask = dask_problem([12, 9, 4], 1000, "multiclass", 300,
                                                dtype=np.float32)
    J, grads = fastnn.cost_and_grad(thetas, X_dask, Y_dask, lam=1.0, backend="dask",
                                    client=client)
    J_ref = fastnn.cost(thetas, X, Y, lam=1.0, backend="numba")
    assert grads[0].dtype == np.float32
    assert J == pytest.approx(J_ref, rel=1e-6)


@pytest.mark.parametrize(("change", "message"), [
    (lambda X, y: (X[:, :5], y), "X: has 5 columns"),
    (lambda X, y: (X, y + 7), "y: expected labels 0 ... 3"),
    (lambda X, y: (X, y[:-1]), "y: expected shape (600,)"),
])
def test_bad_input_names_the_argument(client, change, message):
    _, X, y = make_problem([12, 9, 4], m=600, target="multiclass")
    X, y = change(da.from_array(X, chunks=(200, 12)), da.from_array(y, chunks=200))
    with pytest.raises(ValueError, match=re.escape(message)):
        fastnn.Objective([12, 9, 4], X, y, backend="dask", client=client)


@pytest.mark.parametrize("rows", [slice(150, 420), np.array([3, 199, 200, 201, 599]),
                                  np.arange(0, 600, 7)])
def test_mini_batches_match_one_machine(client, rows):
    thetas, X, Y, X_dask, Y_dask = dask_problem([12, 9, 4], 600, "multiclass", 200)
    there = fastnn.Objective([12, 9, 4], X_dask, Y_dask, 0.5, backend="dask", client=client)
    here = fastnn.Objective([12, 9, 4], X, Y, 0.5, backend="numba")
    (J, grad), (J_ref, grad_ref) = there(fastnn.pack(thetas), rows), here(fastnn.pack(thetas), rows)
    assert J == pytest.approx(J_ref, rel=1e-12)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-12, atol=1e-12 * np.abs(grad_ref).max())
    np.testing.assert_allclose(there.forward(fastnn.pack(thetas)),
                               here.forward(fastnn.pack(thetas)), rtol=1e-12)


def test_adam_epoch_matches_one_machine(client):
    layers = [12, 9, 4]
    thetas, X, Y, X_dask, Y_dask = dask_problem(layers, 900, "multiclass", 250)
    vec = fastnn.pack(thetas)
    kwargs = {"solver": "adam", "learning_rate": 0.01, "max_iter": 2, "batch_size": 128,
              "n_iter_no_change": 0, "random_state": 0}
    here = fastnn.train(fastnn.Objective(layers, X, Y, 1.0, backend="numba"), vec, **kwargs)
    there = fastnn.train(fastnn.Objective(layers, X_dask, Y_dask, 1.0, backend="dask",
                                          client=client), vec, **kwargs)
    np.testing.assert_allclose(there.theta, here.theta, rtol=0, atol=1e-10)


def test_without_a_client():
    _, X, y = make_problem([6, 5, 3], m=100, target="multiclass")
    with pytest.raises(ValueError, match="client: backend=\"dask\" needs a Dask client"):
        fastnn.Objective([6, 5, 3], X, y, backend="dask")


def test_without_dask_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    _, X, y = make_problem([6, 5, 3], m=100, target="multiclass")
    with pytest.raises(ImportError, match=r'pip install "fastnn\[dask\]"'):
        fastnn.Objective([6, 5, 3], X, y, backend="dask")


@pytest.fixture
def default_client(client):
    """``client`` as Dask's default client, which the estimator uses."""
    with distributed.Client(client.scheduler.address, set_as_default=True) as default:
        yield default


def test_estimator_fit_predict(default_client):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X_dask, y_dask = da.from_array(X, chunks=(450, 64)), da.from_array(y, chunks=450)
    kwargs = {"hidden_layer_sizes": (25,), "alpha": 1.0, "solver": "lbfgs", "max_iter": 60,
              "random_state": 0}
    with pytest.warns(ConvergenceWarning):
        there = fastnn.MLPClassifier(backend="dask", **kwargs).fit(X_dask, y_dask)
    with pytest.warns(ConvergenceWarning):
        here = fastnn.MLPClassifier(backend="numba", **kwargs).fit(X, y)
    np.testing.assert_array_equal(there.classes_, here.classes_)
    # The sums differ from one machine's by rounding (other chunks, other order); 60 L-BFGS
    # iterations amplify that to about 2e-7 here (40 on the smaller problem above: < 1e-8).
    for theta, theta_ref in zip(there.thetas_, here.thetas_):
        np.testing.assert_allclose(theta, theta_ref, rtol=0, atol=1e-6)
    labels = there.predict(X_dask)
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(), there.predict(X))
    np.testing.assert_allclose(there.predict_proba(X_dask).compute(), there.predict_proba(X),
                               rtol=1e-12)
    np.testing.assert_array_equal(there.predict(X), here.predict(X))


def test_estimator_refuses_early_stopping_without_validation_data(default_client):
    X = da.from_array(np.random.default_rng(0).random((100, 4)), chunks=50)
    y = da.from_array(np.arange(100) % 2, chunks=50)
    with pytest.raises(ValueError, match='early_stopping: with backend="dask"'):
        fastnn.MLPClassifier(backend="dask", early_stopping=True).fit(X, y)


# The killed worker's connections are left for the garbage collector to close.
@pytest.mark.filterwarnings("ignore::ResourceWarning",
                            "ignore::pytest.PytestUnraisableExceptionWarning")
def test_training_survives_a_killed_worker():
    """SIGKILL one of the two worker processes mid-training: Dask recomputes the chunks it
    held from their lineage (here, slices of the in-memory arrays in the graph), its nanny
    starts a new worker, and L-BFGS ends where an undisturbed run ends."""
    layers = [12, 9, 4]
    thetas, _, _, X_dask, Y_dask = dask_problem(layers, 1200, "multiclass", 150)
    vec = fastnn.pack(thetas)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=":0",
                                  silence_logs=logging.CRITICAL) as cluster, \
            distributed.Client(cluster, set_as_default=False) as own_client:
        objective = fastnn.Objective(layers, X_dask, Y_dask, 1.0, backend="dask",
                                     client=own_client)
        undisturbed = fastnn.train(objective, vec, solver="lbfgs", max_iter=25,
                                   n_iter_no_change=0)
        pids = own_client.run(os.getpid)
        killed = []

        def kill_one_worker(record):
            if record["iteration"] == 5 and not killed:
                address = sorted(pids)[0]
                os.kill(pids[address], signal.SIGKILL)
                killed.append(address)

        disturbed = fastnn.train(objective, vec, solver="lbfgs", max_iter=25,
                                 n_iter_no_change=0, callbacks=[kill_one_worker])
        assert killed and killed[0] not in own_client.scheduler_info()["workers"]
    assert len(disturbed.history) == len(undisturbed.history) == 25
    assert np.array_equal(disturbed.theta, undisturbed.theta)


@pytest.mark.parametrize("rows", [None, np.arange(0, 600, 7)])
@pytest.mark.parametrize("output", ["sigmoid", "identity", "softmax", "exp"])
def test_weights_and_identity_output_match_one_machine(client, output, rows):
    """Weights (a Dask array chunked unlike X) scaled by the same Σ w as in one process; the
    identity output with real targets, the softmax output, the exp output with counts: the
    output reaches the chunks' kernels, and the outputs are the same."""
    layers = [12, 9, 3]
    thetas, X, Y = make_problem(layers, m=600, target="multiclass")
    options = {}
    if output == "identity":
        Y = np.random.default_rng(1).normal(size=(600, 3))
        options = {"loss": "squared_error", "output_activation": "identity"}
    elif output == "softmax":
        options = {"output_activation": "softmax"}
    elif output == "exp":
        Y = np.random.default_rng(1).poisson(1.5, size=(600, 3)).astype(float)
        options = {"loss": "poisson", "output_activation": "exp"}
    w = np.random.default_rng(2).integers(0, 4, size=600).astype(float)
    there = fastnn.Objective(layers, da.from_array(X, chunks=(200, 12)),
                             da.from_array(Y, chunks=(150, *Y.shape[1:])), 0.5, backend="dask",
                             client=client, sample_weight=da.from_array(w, chunks=170),
                             **options)
    here = fastnn.Objective(layers, X, Y, 0.5, backend="numba", sample_weight=w, **options)
    (J, grad), (J_ref, grad_ref) = there(fastnn.pack(thetas), rows), here(fastnn.pack(thetas), rows)
    assert J == pytest.approx(J_ref, rel=1e-12)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-12, atol=1e-12 * np.abs(grad_ref).max())
    np.testing.assert_allclose(there.forward(fastnn.pack(thetas)),
                               here.forward(fastnn.pack(thetas)), rtol=1e-12)


@pytest.mark.parametrize(("w", "message"), [
    (np.ones(599), "sample_weight: expected shape (600,)"),
    (np.r_[-2.0, np.ones(599)], "sample_weight: expected weights >= 0, got -2.0"),
    (np.r_[np.nan, np.ones(599)], "sample_weight: contains NaN or infinity"),
    (np.zeros(600), "sample_weight: every weight is zero"),
])
def test_bad_weights_name_the_argument(client, w, message):
    _, X, y = make_problem([12, 9, 4], m=600, target="multiclass")
    with pytest.raises(ValueError, match=re.escape(message)):
        fastnn.Objective([12, 9, 4], da.from_array(X, chunks=(200, 12)), y, backend="dask",
                         client=client, sample_weight=da.from_array(w, chunks=200))


def sparse_problem(m=600, n=80, K=4):
    import scipy.sparse as sp

    X = sp.random(m, n, density=0.05, format="csr", random_state=0)
    y = np.random.default_rng(1).integers(0, K, size=m)
    return fastnn.init_weights([n, 7, K], seed=0), X, y


@pytest.mark.parametrize("given", ["scipy", "dask of csr chunks"])
def test_sparse_chunks_are_kept_as_csr(client, given):
    """A scipy.sparse X, or a Dask array of sparse chunks, is cut by rows and each chunk
    checked into a CSR matrix on its worker; no chunk is densified."""
    import scipy.sparse as sp

    _, X, y = sparse_problem()
    if given != "scipy":
        X = da.from_array(X, chunks=(150, 80), asarray=False)
    objective = fastnn.Objective([80, 7, 4], X, y, backend="dask", client=client)
    assert objective.data.sparse
    chunks = client.gather(objective.data.chunks)
    assert all(type(chunk.X) is sp.csr_matrix and chunk.X.has_canonical_format
               for chunk in chunks)
    assert sum(chunk.X.shape[0] for chunk in chunks) == 600


@pytest.mark.parametrize("given", ["scipy", "dask of csr chunks"])
def test_sparse_X_matches_one_machine(client, given):
    thetas, X, y = sparse_problem()
    X_given = X if given == "scipy" else da.from_array(X, chunks=(150, 80), asarray=False)
    J, grads = fastnn.cost_and_grad(thetas, X_given, y, lam=0.5, backend="dask",
                                    client=client)
    J_ref, grads_ref = fastnn.cost_and_grad(thetas, X.toarray(), y, lam=0.5, backend="numba")
    assert J == pytest.approx(J_ref, rel=1e-12)
    for grad, grad_ref in zip(grads, grads_ref):
        np.testing.assert_allclose(grad, grad_ref, rtol=1e-12, atol=1e-12 * np.abs(grad_ref).max())
    H = fastnn.forward(thetas, da.from_array(X, chunks=(150, 80), asarray=False),
                       backend="dask")
    np.testing.assert_allclose(H.compute(), fastnn.forward(thetas, X.toarray()), rtol=1e-12)
