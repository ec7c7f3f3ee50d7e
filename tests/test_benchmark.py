"""fastnn.benchmark and ``fastnn bench``: the report's figures are computed, not made up."""

import json
from contextlib import suppress

import numba
import numpy as np
import pytest
import scipy.sparse
import threadpoolctl

import fastnn
from fastnn import benchmark
from fastnn.cli import main


@pytest.mark.parametrize("name", list(benchmark.WORKLOADS))
def test_make_data(name):
    workload = benchmark.WORKLOADS[name]
    X, y, theta = benchmark.make_data(workload, np.float32, scale=0.001)
    assert X.dtype == theta.dtype == np.float32
    assert X.shape == (max(64, round(workload.m * 0.001)), workload.layers[0])
    assert y.min() >= 0 and y.max() < workload.layers[-1]
    assert theta.shape == (fastnn.n_params(workload.layers),)


@pytest.fixture(scope="module")
def sparse():
    """A 2,000 × 5,000 tf-idf-shaped X with 1 % of its entries nonzero, float32."""
    return benchmark.make_sparse(2_000, 5_000, density=0.01, K=4, dtype=np.float32, seed=3)


def test_make_sparse_shape_and_format(sparse):
    X, _, theta = sparse
    assert isinstance(X, scipy.sparse.csr_matrix) and X.shape == (2_000, 5_000)
    assert X.dtype == theta.dtype == np.float32
    assert X.indices.dtype == X.indptr.dtype == np.int32
    assert theta.shape == (fastnn.n_params((5_000, 64, 4)),)
    assert X.nnz == pytest.approx(0.01 * 2_000 * 5_000, rel=0.03)
    # canonical CSR: column ids strictly increasing within every row
    steps = np.diff(X.indices)
    inside = np.ones(X.nnz - 1, dtype=bool)
    inside[X.indptr[1:-1] - 1] = False
    assert (steps[inside] > 0).all()
    copy = X.copy()
    copy.sum_duplicates()
    assert copy.nnz == X.nnz
    assert (X.data > 0).all() and (np.diff(X.indptr) >= 1).all()


def test_make_sparse_rows_are_unit_tf_idf_vectors(sparse):
    X = sparse[0]
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel())
    np.testing.assert_allclose(norms, 1.0, rtol=1e-6)


def test_make_sparse_values_are_tf_idf():
    """Each value over its row's smallest value is tf · idf over the smallest's tf · idf, the
    idf being scikit-learn's smooth idf of the column: a column in every row weighs least."""
    X, _, _ = benchmark.make_sparse(400, 600, density=0.05, seed=2)
    df = np.bincount(X.indices, minlength=600)
    idf = np.log(401 / (1 + df)) + 1
    for i in range(5):
        row = X[i]
        tf = row.data / idf[row.indices]
        np.testing.assert_allclose(tf / tf.min(), np.round(tf / tf.min()), rtol=1e-9)


def test_make_sparse_columns_follow_a_zipf_law(sparse):
    """A few columns are in most rows, most columns in few: the 1 % most frequent hold a large
    share of the nonzeros, and past the head (columns in most rows) the frequencies fall as
    1/rank."""
    X = sparse[0]
    df = np.sort(np.bincount(X.indices, minlength=X.shape[1]))[::-1]
    assert df[:50].sum() > 0.2 * X.nnz
    assert df[0] > 0.5 * X.shape[0] and np.median(df) < 0.05 * X.shape[0]
    assert df[99] / df[999] == pytest.approx(10, rel=0.3)


def test_make_sparse_nnz_and_labels():
    X, y, _ = benchmark.make_sparse(1_000, 3_000, nnz=40_000, K=3)
    assert X.nnz == pytest.approx(40_000, rel=0.03)
    counts = np.bincount(y, minlength=3)
    assert counts.sum() == 1_000 and counts.min() > 200  # every class, none rare


def test_make_sparse_labels_depend_on_the_features():
    """A linear model fit on half the rows predicts the other half's labels far better than
    chance: training has signal."""
    from sklearn.linear_model import LogisticRegression

    X, y, _ = benchmark.make_sparse(2_000, 1_000, density=0.05, K=4, seed=1)
    model = LogisticRegression(C=100.0, max_iter=500).fit(X[:1_000], y[:1_000])
    assert model.score(X[1_000:], y[1_000:]) > 0.5


def test_make_sparse_is_deterministic_by_seed():
    a, b, c = (benchmark.make_sparse(300, 800, density=0.02, seed=seed)
               for seed in (5, 5, 6))
    for left, right in zip(a, b, strict=True):
        assert (left != right).nnz == 0 if scipy.sparse.issparse(left) else \
            np.array_equal(left, right)
    assert a[0].nnz != c[0].nnz or (a[0] != c[0]).nnz > 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "exactly one of density and nnz"),
    ({"density": 0.1, "nnz": 10}, "exactly one of density and nnz"),
    ({"density": 0.9}, "nonzeros per row <= n/2"),
])
def test_make_sparse_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        benchmark.make_sparse(10, 20, **kwargs)


def test_dense_reference_in_blocks_is_the_whole_dense_result():
    """J and ∇J summed over blocks of rows (of 64 bytes, 8 rows of 8 float64 columns here) are
    the NumPy backend's on the whole dense X, penalty included."""
    from fastnn.benchmark.sparse import dense_reference

    X, y, theta = benchmark.make_sparse(100, 8, density=0.25, hidden=(5,), K=3)
    J, grad = dense_reference((8, 5, 3), X, y, theta, block_bytes=64)
    J_ref, grad_ref = fastnn.Objective((8, 5, 3), X.toarray(), y, benchmark.LAMBDA,
                                       backend="numpy")(theta)
    assert J == pytest.approx(J_ref, rel=1e-13)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", [n for n in benchmark.implementations() if n != "numpy"])
def test_implementations_compute_J_and_grad(name):
    """Every implementation gives the NumPy backend's J and ∇J (the peers are oracles too)."""
    workload = benchmark.Workload("small", (12, 7, 5, 4), 300)
    X, y, theta = benchmark.make_data(workload, np.float64)
    J, grad = benchmark.PREPARE[name](workload.layers, X, y, np.float64)(theta)
    J_ref, grad_ref = benchmark.PREPARE["numpy"](workload.layers, X, y, np.float64)(theta)
    assert J == pytest.approx(J_ref, rel=1e-12)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-10, atol=1e-12 * np.abs(grad_ref).max())


def blas_threads():
    """The thread count of every BLAS library loaded."""
    return [pool["num_threads"] for pool in threadpoolctl.threadpool_info()
            if pool["user_api"] == "blas"]


@pytest.fixture
def all_threads():
    """Numba and BLAS on all ``NUMBA_NUM_THREADS`` threads during the test, as at start-up,
    whatever the tests before left: a count not restored to it shows."""
    most = numba.config.NUMBA_NUM_THREADS
    if most == 1:
        pytest.skip("NUMBA_NUM_THREADS is 1: there is no other thread count to restore")
    before = numba.get_num_threads()
    numba.set_num_threads(most)
    with threadpoolctl.threadpool_limits(limits=most, user_api="blas"):
        yield
    numba.set_num_threads(before)


@pytest.mark.parametrize("fails", [False, True], ids=["exit", "exception"])
@pytest.mark.parametrize("name", ["numba-parallel", "numpy"])
def test_threads_for_restores_thread_counts(all_threads, name, fails):
    """One thread inside the block (Numba's; BLAS's, which the Numba backends hold to one);
    Numba's and BLAS's thread counts as before it afterwards, also after an exception."""
    before = fastnn.get_num_threads(), blas_threads()
    with suppress(RuntimeError), benchmark.threads_for(name, 1):
        assert fastnn.get_num_threads() == 1
        assert set(blas_threads()) == {1}
        if fails:
            raise RuntimeError("an exception inside the block")
    assert (fastnn.get_num_threads(), blas_threads()) == before


def test_run_benchmarks_report(tmp_path):
    report = benchmark.run_benchmarks(["digits"], ["float64", "float32"],
                                      ["numba-parallel", "numba", "numpy"],
                                      threads=1, repeats=2, scale=0.05, gemm_size=256,
                                      pause=0)
    assert set(report["gemm_peak_gflops"]) == {"float64", "float32"}
    assert all(peak > 0 for peak in report["gemm_peak_gflops"].values())
    rows = report["results"]
    assert [(r["dtype"], r["implementation"]) for r in rows] == [
        (dtype, name) for dtype in ("float64", "float32")
        for name in ("numba-parallel", "numba", "numpy")]
    for row in rows:
        assert len(row["times_s"]) == 2  # two rounds of one timed call
        assert row["median_s"] == pytest.approx(np.median(row["times_s"]))
        assert row["gflops"] == pytest.approx(6 * 2410 * row["m"] / row["median_s"] / 1e9)
        # numpy is the only peer here, so it is the fastest peer
        assert row["vs_fastest_peer"] == pytest.approx(
            row["median_s"] / next(r["median_s"] for r in rows
                                   if r["dtype"] == row["dtype"] and r["implementation"] ==
                                   "numpy"))
        limit = 1e-12 if row["dtype"] == "float64" else 1e-5
        assert row["J_rel_diff"] < limit and row["grad_rel_diff"] < limit
    text = benchmark.format_report(report)
    assert "digits 64-32-10, m = 90, float64" in text and "numba " in text
    assert "numba-parallel on 1 threads: " in text
    benchmark.write_json(report, tmp_path / "report.json")
    assert json.loads((tmp_path / "report.json").read_text())["results"][0]["m"] == 90


def test_bench_command(tmp_path, capsys):
    out_json, out_png = tmp_path / "b.json", tmp_path / "b.png"
    status = main(["bench", "--workloads", "digits", "ex4", "--dtype", "float32", "--scale",
                   "0.02", "--repeats", "1", "--implementations", "numba-parallel", "numpy",
                   "--threads", "1", "--json", str(out_json), "--plot", str(out_png),
                   "--quiet"])
    assert status == 0
    out = capsys.readouterr().out
    assert "ex4 400-25-10, m = 100, float32" in out
    assert len(json.loads(out_json.read_text())["results"]) == 4
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--threads", "0"], "--threads: expected 1 to"),
    (["--repeats", "0"], "--repeats: expected at least 1"),
    (["--scale", "2"], "--scale: expected a fraction"),
    (["--implementations", "jax"], "not installed: jax"),
    (["--busy", "1"], "--busy: only with --contention"),
    (["--contention", "--training"], "--training: not with --contention"),
    (["--contention", "--busy", "-1"], "--busy: expected numbers of processes"),
])
def test_bench_command_bad_arguments(capsys, args, message):
    assert main(["bench", "--workloads", "digits", "--quiet", *args]) == 1
    assert message in capsys.readouterr().err


def test_call_memory_is_bounded():
    """One call's extra memory does not grow with m (the kernels never hold all activations):
    a 100-50-10 problem with 48 MB of inputs needs well under 64 MB more, on every backend."""
    for backend in fastnn.available_backends():
        memory = benchmark.call_memory("wide-m", backend, "float64", scale=0.06)
        assert memory["inputs_mb"] == pytest.approx(60_000 * 100 * 8 / 2**20 + 60_000 * 8 / 2**20)
        assert 0 <= memory["extra_mb"] < 64, (backend, memory)


def test_bench_sparse_command(tmp_path, capsys):
    out_json = tmp_path / "sparse.json"
    status = main(["bench", "--sparse", "--scale", "0.005", "--repeats", "1", "--threads", "1",
                   "--dtype", "float32", "--densities", "0.005", "0.05", "--quiet", "--json",
                   str(out_json)])
    assert status == 0
    out = capsys.readouterr().out
    assert ("J and ∇J, 100 × 20,000, density 0.5 % (" in out
            and "nonzeros), 20000-64-10, float32, λ = 1, 1 threads" in out)
    assert "2 adam epochs, 100 × 20,000, density 0.5 %" in out and "÷ sklearn" in out
    assert "adam epoch 500 × 50,000, " in out and "MiB above X (X is " in out
    report = json.loads(out_json.read_text())
    rows = report["cost_and_grad"]
    assert [(r["density"], r["implementation"], r["X"]) for r in rows] == [
        (density, name, kind) for density in (0.005, 0.05)
        for name, kind in benchmark.sparse.COST_AND_GRAD.items()]
    for row in rows:
        assert row["J_rel_diff"] < 1e-5 and row["grad_rel_diff"] < 1e-5, row
        assert row["vs_numpy"] == pytest.approx(
            row["median_s"] / next(r["median_s"] for r in rows if r["density"] == row["density"]
                                   and r["implementation"] == "numpy"))
    training = report["training"]
    assert [r["implementation"] for r in training] == list(benchmark.sparse.TRAINING)
    assert {r["epochs"] for r in training} == {benchmark.sparse.EPOCHS}
    # one batch of all 100 rows: no shuffling, the same two adam steps everywhere
    assert {round(r["loss"], 4) for r in training} == {round(training[0]["loss"], 4)}
    (memory,) = report["memory"]
    assert memory["x_mb"] > 0 and memory["peak_mb"] >= memory["resident_before_mb"]


@pytest.mark.parametrize(("args", "message"), [
    (["--no-memory"], "--no-memory: only with --sparse"),
    (["--densities", "0.1"], "--densities: only with --sparse"),
    (["--sparse", "--densities", "0.7"], "--densities: expected fractions in (0, 0.5]"),
    (["--sparse", "--training"], "--training: not with --sparse"),
    (["--sparse", "--implementations", "numpy"], "--implementations: not with --sparse"),
    (["--sparse", "--threads", "0"], "--threads: expected 1 to"),
    (["--contention", "--sparse"], "--sparse: not with --contention"),
])
def test_bench_sparse_bad_arguments(capsys, args, message):
    assert main(["bench", "--quiet", "--scale", "0.005", *args]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.fixture(scope="module")
def training_report():
    """Every training implementation on 0.5 % of each workload, float64: adam and sgd epochs
    with batches of 64 and of 1024 (more than m = 300: one full-batch update), 3 L-BFGS
    iterations."""
    runs = benchmark.training_runs(batch_sizes=(64, 1024), lbfgs_iter=3)
    return benchmark.run_training(["float64"], list(benchmark.training_implementations()),
                                  threads=1, repeats=1, scale=0.005, runs=runs, pause=0)


def test_training_records(training_report):
    rows = training_report["results"]
    names = benchmark.training_implementations()
    kinds = [("mnist", "adam", 64), ("mnist", "adam", 300), ("mnist", "sgd", 64),
             ("mnist", "sgd", 300), ("digits", "lbfgs", 64), ("ex4", "lbfgs", 64)]
    assert [(r["workload"], r["solver"], r["batch_size"], r["implementation"]) for r in rows] == [
        (*kind, name) for kind in kinds for name in names]
    for row in rows:
        assert set(row) == {
            "workload", "layers", "m", "dtype", "solver", "batch_size", "max_iter",
            "learning_rate", "lam", "implementation", "threads", "unit", "times_s", "iterations",
            "median_s", "examples_per_s", "J_start", "J", "vs_fastest_peer"}
        assert row["unit"] == ("iteration" if row["solver"] == "lbfgs" else "epoch")
        assert len(row["times_s"]) == len(row["iterations"]) == 1
        assert row["median_s"] == pytest.approx(row["times_s"][0] / row["iterations"][0])
        assert row["examples_per_s"] == pytest.approx(row["m"] / row["median_s"])
        peers = [r["median_s"] for r in rows if r["implementation"] in benchmark.PEERS
                 and (r["workload"], r["solver"], r["batch_size"]) ==
                 (row["workload"], row["solver"], row["batch_size"])]
        assert row["vs_fastest_peer"] == pytest.approx(row["median_s"] / min(peers))
    assert {r["iterations"][0] for r in rows if r["solver"] != "lbfgs"} == {1}
    text = benchmark.format_training_report(training_report)
    assert "adam, one epoch (learning rate 0.001): mnist 784-128-10, m = 300, float64" in text
    assert "L-BFGS, 3 iterations: digits 64-25-10, m = 64, float64" in text
    assert "J reached" in text
    assert json.loads(json.dumps(training_report)) == training_report


def test_training_report_gives_the_best_runs_beside_the_medians():
    """The text report's best column is the fastest run per epoch of each implementation, and
    its ratio the best over the fastest peer's best (not over the peer's median) at the same
    batch size (one table holds them all)."""
    def record(name, times, median, batch_size=64):
        return {"workload": "mnist", "layers": [784, 128, 10], "m": 60000, "dtype": "float32",
                "solver": "adam", "batch_size": batch_size, "max_iter": 1, "learning_rate": 0.001,
                "lam": 1.0, "implementation": name, "threads": 2, "unit": "epoch",
                "times_s": times, "iterations": [1] * len(times), "median_s": median,
                "examples_per_s": 60000 / median, "J_start": 7.0, "J": 3.0,
                "vs_fastest_peer": median / 0.6}
    report = {"machine": {}, "results": [record("auto", [0.9, 0.2, 0.5], 0.5),
                                          record("torch", [0.6, 0.4, 0.8], 0.6),
                                          record("auto", [0.1, 0.3], 0.2, batch_size=1024),
                                          record("torch", [0.25, 0.3], 0.3, batch_size=1024)]}
    assert benchmark.best_seconds(report["results"][0]) == 0.2
    lines = benchmark.format_training_report(report).splitlines()
    assert lines[1].split() == ["batch", "implementation", "ms/epoch", "examples/s", "×", "peer",
                                "best", "ms/epoch", "×", "peer", "J", "reached"]
    assert lines[2].split() == ["64", "auto", "500.00", "1.2e+05", "0.83", "200.00", "0.50",
                                "3.000000"]
    assert lines[3].split()[5:7] == ["400.00", "1.00"]
    assert lines[4].split()[5:7] == ["100.00", "0.40"]


@pytest.mark.parametrize("name", benchmark.training_implementations())
def test_every_implementation_trains(training_report, name):
    """J after the run, computed by fastnn for every implementation, is finite and below J(θ0)."""
    for row in training_report["results"]:
        if row["implementation"] == name:
            assert np.isfinite(row["J"]) and row["J"] < row["J_start"], row


def test_training_starts_from_the_same_weights(training_report):
    """Each implementation's own weights after loading θ0, scored by fastnn, give the same J."""
    for row in training_report["results"]:
        fastnn_row = next(r for r in training_report["results"]
                          if r["workload"] == row["workload"] and r["implementation"] == "numpy")
        assert row["J_start"] == pytest.approx(fastnn_row["J_start"], rel=1e-12), row


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_one_full_batch_update_is_the_same_everywhere(training_report, solver):
    """With the whole training set as one batch, shuffling plays no part: every implementation
    takes the same step, and so reaches the same J (PyTorch's adam up to its placement of ε)."""
    rows = [r for r in training_report["results"]
            if r["solver"] == solver and r["batch_size"] == r["m"]]
    reference = next(r["J"] for r in rows if r["implementation"] == "numpy")
    for row in rows:
        rel = 1e-5 if (solver, row["implementation"]) == ("adam", "torch") else 1e-12
        assert row["J"] == pytest.approx(reference, rel=rel), row


def test_bench_training_command(tmp_path, capsys):
    out_json = tmp_path / "training.json"
    status = main(["bench", "--training", "--scale", "0.005", "--repeats", "1", "--threads",
                   "1", "--quiet", "--dtype", "float32", "--solvers", "sgd", "--batch-sizes",
                   "100", "--implementations", "auto", "numpy", "--json", str(out_json)])
    assert status == 0
    out = capsys.readouterr().out
    assert ("sgd, one epoch (learning rate 0.001, Nesterov momentum 0.9): mnist 784-128-10, "
            "m = 300, float32") in out
    assert "ms/epoch" in out and "J reached" in out
    rows = json.loads(out_json.read_text())["results"]
    assert [(r["implementation"], r["batch_size"]) for r in rows] == [("auto", 100),
                                                                     ("numpy", 100)]


@pytest.mark.parametrize(("args", "message"), [
    (["--training", "--batch-sizes", "0"], "--batch-sizes: expected sizes of at least 1"),
    (["--training", "--lbfgs-iter", "0"], "--lbfgs-iter: expected at least 1, got 0"),
    (["--training", "--workloads", "deep"], "--workloads: no training runs on deep"),
    (["--training", "--plot", "b.png"], "--plot: only for the cost-and-gradient tables"),
    (["--training", "--implementations", "jax"], "not installed: jax"),
    (["--solvers", "adam"], "--solvers: only with --training"),
])
def test_bench_training_bad_arguments(capsys, args, message):
    assert main(["bench", "--quiet", "--scale", "0.005", *args]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_busy_processes_run_and_end():
    from fastnn.benchmark.contention import busy_processes

    with busy_processes(2) as processes:
        assert len(processes) == 2
        assert all(process.poll() is None for process in processes)
    assert all(process.returncode is not None for process in processes)


def test_contention_report():
    from fastnn.benchmark import contention

    report = contention.run_contention(busy=[1], runs=["digits adam"], repeats=1)
    assert report["busy"] == [0, 1]
    times = report["times"]["digits adam"]
    assert all(len(times[n][name]) == 1 for n in (0, 1) for name in ("fastnn", "sklearn"))
    text = contention.format_contention_report(report, {"cold": 12.0, "warm": 2.0})
    f0, s0, f1, s1 = (times[n][name][0] for n in (0, 1) for name in ("fastnn", "sklearn"))
    assert f"| digits adam | 0 | {f0:.3f} | {s0:.3f} | {f0 / s0:.2f} | 1.00 | 1.00 |" in text
    assert f"|  | 1 | {f1:.3f} | {s1:.3f} | {f1 / s1:.2f} | {f1 / f0:.2f} | {s1 / s0:.2f} |" in text
    assert "empty Numba cache: 12.0 s (the next, on the cache it filled: 2.0 s)" in text
