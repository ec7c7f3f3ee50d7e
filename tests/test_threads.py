"""The per-call choice of thread count (fastnn._threads): it follows the measured times, never
changes results, and leaves Numba's thread count as it found it."""

import os
import subprocess
import sys
import time

import numba
import numpy as np
import pytest

import fastnn
from fastnn._threads import SPIN_COUNT, ThreadChoice

pytestmark = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 threads")


def sleeper(on_all, on_one):
    """A stand-in kernel: sleeps ``on_all`` seconds on several threads, ``on_one`` on one, and
    returns the thread count it ran with."""

    def kernel():
        threads = numba.get_num_threads()
        time.sleep(on_all if threads > 1 else on_one)
        return threads

    return kernel


@pytest.mark.parametrize(("on_all", "on_one", "expected"),
                         [(0.004, 0.0005, "one"), (0.0005, 0.004, "all")])
def test_the_faster_choice_wins(on_all, on_one, expected):
    choice = ThreadChoice()
    kernel = sleeper(on_all, on_one)
    before = numba.get_num_threads()
    runs = [choice.call("kind", kernel) for _ in range(64)]
    assert choice.choices() == {"kind": expected}
    assert numba.get_num_threads() == before
    # The first calls run on all threads; the slower choice is re-tried less and less often.
    first = ThreadChoice.WARM_CALLS + ThreadChoice.FIRST_INTERVAL
    assert runs[:first] == [before] * first
    slow = 1 if expected == "all" else before
    assert runs[42:].count(slow) == 0


def test_a_change_of_the_machine_is_followed():
    choice = ThreadChoice()
    for _ in range(20):
        choice.call("kind", sleeper(0.0005, 0.004))
    assert choice.choices() == {"kind": "all"}
    for _ in range(40):  # the calls on all threads become slow: a busy machine
        choice.call("kind", sleeper(0.004, 0.0005))
    assert choice.choices() == {"kind": "one"}


def test_one_thread_allowed_means_no_choice():
    choice = ThreadChoice()
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        assert all(choice.call("kind", sleeper(0.0, 0.0)) == 1 for _ in range(10))
        assert choice.choices() == {}
    finally:
        numba.set_num_threads(before)


def test_the_thread_count_is_restored_after_an_exception():
    choice = ThreadChoice()
    before = numba.get_num_threads()

    def failing():
        raise RuntimeError("kernel")

    for _ in range(10):
        with pytest.raises(RuntimeError):
            choice.call("kind", failing)
    assert numba.get_num_threads() == before


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_training_is_the_same_whatever_the_choices(solver):
    """numba-parallel trains bitwise like numba, however its calls are spread over threads."""
    rng = np.random.default_rng(0)
    X, y = rng.random((300, 20)), rng.integers(0, 3, size=300)
    thetas = {}
    for backend in ("numba", "numba-parallel"):
        objective = fastnn.Objective([20, 60, 3], X, y, lam=0.1, backend=backend)
        theta0 = fastnn.pack(fastnn.init_weights([20, 60, 3], seed=0))
        thetas[backend] = fastnn.train(objective, theta0, solver=solver, max_iter=30,
                                       batch_size=50, random_state=0).theta
    assert np.array_equal(thetas["numba"], thetas["numba-parallel"])


def test_spin_count_is_bounded_unless_set():
    code = "import os, fastnn; print(os.environ.get('GOMP_SPINCOUNT'))"
    env = {key: value for key, value in os.environ.items()
           if key not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    default = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout.strip()
    assert default == SPIN_COUNT
    kept = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "active"},
                          capture_output=True, text=True, check=True).stdout.strip()
    assert kept == "None"
