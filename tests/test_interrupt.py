"""Ctrl-C during training: a clean stop at the next step on every backend and solver, in the
functional API, the estimator and the command, checked by sending SIGINT to a child process
while it trains."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastnn
from fastnn.trainer import train

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child process")

SOLVERS = ("adam", "lbfgs", "gd")
CASES = [(backend, solver) for backend in fastnn.available_backends() for solver in SOLVERS]

# Trains each case until interrupted: "ready" once the first iteration is recorded (the parent
# then sends SIGINT), then one JSON line with what training returned.
CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import fastnn
    from fastnn.trainer import train

    # Calls of a few ms, so that most signals land inside a kernel.
    rng = np.random.default_rng(0)
    X = rng.random((4000, 400))
    y = rng.integers(0, 10, size=4000)
    for case in json.loads(sys.argv[1]):
        backend, solver = case
        objective = fastnn.Objective([400, 25, 10], X, y, lam=1.0, backend=backend)
        theta0 = fastnn.pack(fastnn.init_weights([400, 25, 10], seed=0))

        def ready(record):
            if record["iteration"] == 1:
                print("ready", flush=True)

        result = train(objective, theta0, solver=solver, learning_rate=0.01, max_iter=10**6,
                       tol=0.0, n_iter_no_change=0, callbacks=[ready], random_state=0)
        costs = result.history["cost"]
        print(json.dumps({"stopped": result.history.stopped, "iterations": len(costs),
                          "kept_cost": objective.cost(result.theta), "best_cost": min(costs),
                          "finite": bool(np.isfinite(result.theta).all())}), flush=True)
""")

# fastnn train, announcing its first recorded iteration.
COMMAND = textwrap.dedent("""
    import sys
    from fastnn import cli, trainer

    record = trainer._Monitor.record

    def announcing(self, theta, J):
        if not self.history.records:
            print("ready", flush=True)
        return record(self, theta, J)

    trainer._Monitor.record = announcing
    sys.exit(cli.main(sys.argv[1:]))
""")


def interrupt_child(code, *args, timeout=600):
    """Run ``python -c code *args``, send SIGINT after every "ready" line it prints; return
    its exit status, its other lines of output and its standard error."""
    lines = []
    with subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as child:
        try:
            for line in child.stdout:
                if line.strip() == "ready":
                    child.send_signal(signal.SIGINT)
                else:
                    lines.append(line)
            stderr = child.stderr.read()
            status = child.wait(timeout=timeout)
        finally:
            if child.poll() is None:
                child.kill()
    return status, lines, stderr


@pytest.fixture(scope="module")
def interrupted_runs():
    """Every case trained in one child process (the kernels compile once), interrupted."""
    status, lines, stderr = interrupt_child(CHILD, json.dumps(CASES))
    assert status == 0, stderr
    assert len(lines) == len(CASES), stderr
    return dict(zip(CASES, map(json.loads, lines), strict=True))


@pytest.mark.parametrize("case", CASES, ids=["-".join(case) for case in CASES])
def test_sigint_stops_training_cleanly(interrupted_runs, case):
    run = interrupted_runs[case]
    assert run["stopped"] == "interrupted"
    assert run["iterations"] < 10**6
    assert run["finite"]
    if case[1] != "adam":  # full batch: the kept θ is the one of the best recorded cost
        assert run["kept_cost"] == run["best_cost"]


def test_sigint_stops_the_command_and_saves_the_model(tmp_path):
    model = tmp_path / "model.npz"
    status, lines, stderr = interrupt_child(
        COMMAND, "train", "--max-iter", "1000000", "--quiet", "--out", str(model))
    assert status == 0, stderr
    assert "stopped: interrupted" in "".join(lines)
    clf = fastnn.load(model)
    assert clf.n_iter_ < 10**6
    assert all(np.isfinite(theta).all() for theta in clf.thetas_)
    assert not list(tmp_path.glob(".fastnn-*"))  # no temporary file left behind


def test_sigint_in_process(problem_objective):
    """The first SIGINT stops training at the next step; the handler is Python's again after."""
    objective, theta0 = problem_objective

    def interrupt(record):
        if record["iteration"] == 3:
            os.kill(os.getpid(), signal.SIGINT)

    result = train(objective, theta0, solver="gd", learning_rate=0.1, max_iter=50,
                   callbacks=[interrupt])
    assert result.history.stopped == "interrupted"
    assert len(result.history) == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_second_sigint_aborts(problem_objective):
    objective, theta0 = problem_objective

    def interrupt_twice(record):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        train(objective, theta0, solver="lbfgs", max_iter=50, callbacks=[interrupt_twice])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.fixture
def problem_objective():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4))
    y = rng.integers(0, 3, size=50)
    return (fastnn.Objective([4, 5, 3], X, y, lam=0.1, backend="numba"),
            fastnn.pack(fastnn.init_weights([4, 5, 3], seed=0)))
