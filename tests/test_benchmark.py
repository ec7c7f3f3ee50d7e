"""fastnn.benchmark and ``fastnn bench``: the report's figures are computed, not made up."""

import json
from contextlib import suppress

import numba
import numpy as np
import pytest
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
