"""Training per implementation: L-BFGS from the same θ0 on digits (64-25-10) and ex4
(400-25-10), fastnn's backends and the installed peers side by side (``extra_info`` has the
iterations done, the seconds per iteration and the J reached); and the estimator's whole fit on
scikit-learn's digits per backend (400 L-BFGS iterations, 100 adam epochs)."""

import warnings

import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

import fastnn
from fastnn.benchmark import (
    LBFGS_ITER,
    TRAINING_WORKLOADS,
    TrainingRun,
    training_implementations,
)


@pytest.mark.parametrize("name", training_implementations())
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("workload", ["digits", "ex4"])
def test_lbfgs(benchmark_training, workload_data, workload, dtype, name):
    workload = TRAINING_WORKLOADS[workload]
    m = len(workload_data(workload, dtype)[2])
    benchmark_training(name, workload, dtype, TrainingRun(workload, "lbfgs", None, LBFGS_ITER),
                       f"L-BFGS, {LBFGS_ITER} iterations: {workload.describe(m)}, {dtype}")


@pytest.fixture(scope="session")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


@pytest.mark.parametrize(("solver", "max_iter"), [("lbfgs", 400), ("adam", 100)])
@pytest.mark.parametrize("backend", ["auto", *fastnn.available_backends()])
def test_digits_fit(benchmark, digits, backend, solver, max_iter):
    X_train, X_test, y_train, y_test = digits
    clf = fastnn.MLPClassifier(hidden_layer_sizes=(25,), alpha=1.0, solver=solver,
                               learning_rate_init=0.01, max_iter=max_iter, n_iter_no_change=0,
                               backend=backend, random_state=0)

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return clf.fit(X_train, y_train)

    fit()  # compilation
    benchmark.group = f"digits 64-25-10, {solver}, {max_iter} iterations"
    benchmark.extra_info["test_accuracy"] = benchmark.pedantic(fit, rounds=3).score(X_test,
                                                                                      y_test)
