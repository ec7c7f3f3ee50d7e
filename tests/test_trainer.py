"""The training loop: solvers, history, early stopping, callbacks, interrupt, divergence."""

import pickle
import re
import warnings

import numpy as np
import pytest
import threadpoolctl
from sklearn.datasets import make_friedman1
from sklearn.exceptions import ConvergenceWarning

import fastnn
from fastnn.trainer import DIVERGENCE_RATIO, train
from tests.conftest import make_problem

LAYERS = [6, 8, 3]


@pytest.fixture(scope="module")
def problem():
    thetas, X, y = make_problem(LAYERS, m=300, target="multiclass")
    # Learnable labels: the class of the largest of three projections.
    y = (X[:, :3] @ np.diag([1.0, 0.9, 1.1])).argmax(axis=1)
    objective = fastnn.Objective(LAYERS, X[:240], y[:240], lam=0.1)
    validation = fastnn.Objective(LAYERS, X[240:], y[240:], lam=0.0)
    return objective, validation, fastnn.pack(thetas)


@pytest.mark.parametrize(("solver", "learning_rate"),
                         [("lbfgs", None), ("gd", 2.0), ("sgd", 0.1), ("adam", 0.01)])
def test_solvers_lower_the_cost(problem, solver, learning_rate):
    objective, validation, theta0 = problem
    result = train(objective, theta0, solver=solver, learning_rate=learning_rate or 0.1,
                   max_iter=60, batch_size=32, validation=validation, random_state=0,
                   n_iter_no_change=0)
    costs = result.history["cost"]
    assert len(costs) == 60 or result.history.stopped == "converged"
    assert costs[-1] < 0.5 * objective.cost(theta0)
    assert result.history["val_score"][-1] > 0.8
    assert objective.cost(result.theta) == pytest.approx(costs[-1], rel=0.2)
    assert result.best_loss == min(costs)


def test_gd_is_the_seed_notes_update(problem):
    """One gd iteration is θ − α ∇J, exactly."""
    objective, _, theta0 = problem
    result = train(objective, theta0, solver="gd", learning_rate=0.5, max_iter=1,
                   n_iter_no_change=0)
    np.testing.assert_array_equal(result.theta, theta0 - 0.5 * objective(theta0)[1])


def test_mini_batch_penalty_uses_full_m(problem):
    objective, _, theta0 = problem
    rows = np.arange(32)
    J_batch, grad_batch = objective(theta0, rows=rows)
    X, targets = objective.data.materialize()
    data_only = fastnn.Objective(LAYERS, X[rows], targets.labels[rows], 0.0)
    J_data, grad_data = data_only(theta0)
    weights = theta0 * fastnn.network.penalty_mask(LAYERS)
    assert J_batch == pytest.approx(J_data + 0.1 / (2 * 240) * np.sum(weights**2), rel=1e-13)
    np.testing.assert_allclose(grad_batch, grad_data + 0.1 / 240 * weights, rtol=1e-12)


def test_callback_stops_and_sees_records(problem):
    objective, _, theta0 = problem
    seen = []

    def stop_at_five(record):
        seen.append(record["iteration"])
        return record["iteration"] == 5

    result = train(objective, theta0, solver="adam", learning_rate=0.01, max_iter=50,
                   callbacks=[stop_at_five], n_iter_no_change=0, random_state=0)
    assert seen == [1, 2, 3, 4, 5]
    assert result.history.stopped == "callback"


def test_early_stopping_keeps_the_best(problem):
    objective, validation, theta0 = problem
    result = train(objective, theta0, solver="sgd", learning_rate=0.5, max_iter=300,
                   validation=validation, early_stopping=True, n_iter_no_change=5, tol=0.0,
                   random_state=0)
    assert result.history.stopped == "early_stopping"
    assert len(result.history) < 300
    assert validation.score(result.theta) == max(result.history["val_score"])
    # the parameters of the first epoch with that score, not of a later one with it
    best = result.history["val_score"].index(max(result.history["val_score"]))
    assert best < len(result.history) - 5
    assert validation.cost_and_score(result.theta)[0] == result.history["val_cost"][best]


def test_keyboard_interrupt_keeps_the_best(problem):
    objective, _, theta0 = problem

    def interrupt(record):
        if record["iteration"] == 4:
            raise KeyboardInterrupt

    for solver in ("lbfgs", "gd", "adam"):
        result = train(objective, theta0, solver=solver, learning_rate=0.01, max_iter=50,
                       callbacks=[interrupt], n_iter_no_change=0, random_state=0)
        assert result.history.stopped == "interrupted"
        assert len(result.history) == 4
        if solver != "adam":  # full batch: the recorded cost is J at the recorded θ
            assert objective.cost(result.theta) == min(result.history["cost"])


class Recording(fastnn.Objective):
    """Keeps (θ, J) of every evaluation."""

    def __call__(self, vec, rows=None, out=None):
        J, grad = super().__call__(vec, rows, out)
        self.calls.append((vec.copy(), J))
        return J, grad


# Learning rates that make J overflow after the first step (adam, 1e160), the second (1e150)
# or the third (1e60): the last finite θ is then in either of the loop's two buffers.
@pytest.mark.parametrize(("solver", "learning_rate", "batch_size", "finite_steps"),
                         [("gd", 1e150, 200, 1), ("gd", 1e60, 200, 2), ("sgd", 1e150, 32, 1),
                          ("sgd", 1e60, 32, 2), ("adam", 1e160, 32, 0)])
def test_divergence_is_a_clear_error_with_the_last_finite_parameters(
        monkeypatch, problem, solver, learning_rate, batch_size, finite_steps):
    objective, _, theta0 = problem
    # The non-finite path: gd's finite costs before inf (1e296, 1e116) would otherwise stop the
    # run first, as risen past DIVERGENCE_RATIO times the first (tested below).
    monkeypatch.setattr(fastnn.trainer, "DIVERGENCE_RATIO", np.inf)
    recording = Recording(LAYERS, objective.data.X, objective.data.targets.labels, lam=0.1)
    recording.calls = []
    with pytest.raises(fastnn.TrainingDiverged, match="lower learning_rate_init") as error:
        train(recording, theta0, solver=solver, learning_rate=learning_rate, max_iter=20,
              batch_size=batch_size, n_iter_no_change=0, random_state=0)
    finite = [(theta, J) for theta, J in recording.calls if np.isfinite(J)]
    assert len(finite) == finite_steps + 1 and not np.isfinite(recording.calls[-1][1])
    np.testing.assert_array_equal(error.value.theta, finite[-1][0])
    assert np.isfinite(objective.cost(error.value.theta))
    assert error.value.history.stopped == "diverged"


@pytest.fixture(scope="module")
def exploding():
    """make_friedman1's regression with y × 1e6: at learning rate 1, the costs of sgd and gd
    grow by orders of magnitude an epoch (J(θ0) = 1.1e14) and stay finite for many epochs."""
    X, y = make_friedman1(n_samples=1000, random_state=0)
    layers = [10, 25, 1]
    objective = fastnn.Objective(layers, X, y * 1e6, lam=1.0, loss="squared_error",
                                 output_activation="identity")
    return objective, fastnn.pack(fastnn.init_weights(layers, seed=0))


@pytest.mark.parametrize("solver", ["sgd", "gd"])
def test_a_finite_cost_that_explodes_is_divergence(exploding, solver):
    """A cost past DIVERGENCE_RATIO times the first is divergence, as a non-finite one is:
    TrainingDiverged with the history up to it, never "converged" or "max_iter"."""
    objective, theta0 = exploding
    with pytest.raises(fastnn.TrainingDiverged,
                       match=r"the cost rose to \S+, more than 1e\+06 times its first value "
                       r"\S+, at iteration \d+ of solver") as error:
        train(objective, theta0, solver=solver, learning_rate=1.0, max_iter=50, batch_size=200,
              random_state=0)
    history = error.value.history
    assert history.stopped == "diverged"
    costs = history["cost"]
    assert np.isfinite(costs).all() and max(costs) <= DIVERGENCE_RATIO * costs[0]
    assert np.isfinite(error.value.theta).all()


def test_an_exploding_cost_keeps_the_best_parameters(exploding):
    """gd records J at each θ it steps from: the kept θ is the one of the lowest cost."""
    objective, theta0 = exploding
    with pytest.raises(fastnn.TrainingDiverged) as error:
        train(objective, theta0, solver="gd", learning_rate=1.0, max_iter=50)
    costs = error.value.history["cost"]
    assert len(costs) >= 2 and costs[-1] > costs[0]
    assert objective.cost(error.value.theta) == pytest.approx(min(costs), rel=1e-12)


def test_unknown_solver(problem):
    objective, _, theta0 = problem
    with pytest.raises(ValueError, match="^solver: expected one of"):
        train(objective, theta0, solver="newton")


class WrongGradient(fastnn.Objective):
    """J right, ∇J pointing uphill: no line search can find a decrease along −∇J's opposite."""

    def __call__(self, vec, rows=None):
        J, grad = super().__call__(vec, rows)
        return J, -grad


def test_lbfgs_that_fails_its_line_search_says_so(problem):
    objective, _, theta0 = problem
    wrong = WrongGradient(LAYERS, objective.data.X, objective.data.targets.labels, lam=0.1)
    with pytest.warns(ConvergenceWarning, match=r"lbfgs stopped before converging \(abnormal\)"):
        result = train(wrong, theta0, solver="lbfgs", max_iter=50)
    assert result.history.stopped == "abnormal"
    assert "ABNORMAL" in result.history.message


def test_lbfgs_that_converges_reports_its_reason(problem):
    objective, _, theta0 = problem
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning on convergence
        result = train(objective, theta0, solver="lbfgs", max_iter=2000, tol=1e-3)
    assert result.history.stopped == "converged"
    assert "CONVERGENCE" in result.history.message
    assert np.abs(objective(result.theta)[1]).max() <= 1e-3


def test_lbfgs_at_its_evaluation_limit_warns(problem):
    objective, _, theta0 = problem
    with pytest.warns(ConvergenceWarning, match=r"\(max_fun\)"):
        result = train(objective, theta0, solver="lbfgs", max_iter=50, max_fun=3)
    assert result.history.stopped == "max_fun"


@pytest.mark.parametrize(("solver", "learning_rate", "max_iter"),
                         [("lbfgs", None, 200), ("gd", 1e-4, 30)])
def test_n_iter_no_change_is_for_the_mini_batch_solvers(problem, solver, learning_rate,
                                                         max_iter):
    """As in scikit-learn, n_iter_no_change does not stop the full-batch solvers: they run
    exactly as without it, through iterations that improve J by less than tol."""
    objective, _, theta0 = problem
    kwargs = {"solver": solver, "learning_rate": learning_rate, "max_iter": max_iter,
              "tol": 1e-4}
    patient = train(objective, theta0, n_iter_no_change=2, **kwargs)
    reference = train(objective, theta0, n_iter_no_change=0, **kwargs)
    small = -np.diff(patient.history["cost"]) < 1e-4
    assert (small[:-1] & small[1:]).any()  # two in a row: the rule would stop sgd and adam
    assert len(patient.history) == len(reference.history)
    np.testing.assert_array_equal(patient.theta, reference.theta)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_n_iter_no_change_stops_the_mini_batch_solvers(problem, solver):
    objective, _, theta0 = problem
    result = train(objective, theta0, solver=solver, learning_rate=0.01, max_iter=12,
                   n_iter_no_change=2, tol=1e3, random_state=0)
    # scikit-learn's count: the first epoch improves on nothing, and training stops after
    # more than n_iter_no_change epochs without improvement (the 4th).
    assert len(result.history) == 4 and result.history.stopped == "converged"


def test_gd_stops_at_a_small_gradient(problem):
    objective, _, theta0 = problem
    gtol = 0.5 * np.abs(objective(theta0)[1]).max()
    result = train(objective, theta0, solver="gd", learning_rate=1.0, max_iter=500, tol=gtol,
                   n_iter_no_change=0)
    assert result.history.stopped == "converged" and len(result.history) < 500
    assert np.abs(objective(result.theta)[1]).max() <= gtol


def test_validation_is_one_pass_per_iteration(problem, monkeypatch):
    """Validation cost and accuracy come from one forward pass over the held-out data."""
    objective, validation, theta0 = problem
    backend = type(validation._backend)
    calls = {"forward": 0, "loss_and_delta": 0}
    for name in calls:
        real = getattr(backend, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(backend, name, counted)
    monkeypatch.setattr(objective, "_backend", fastnn.backends.BACKENDS["numpy"])
    result = train(objective, theta0, solver="gd", learning_rate=1.0, max_iter=4,
                   validation=validation)
    assert calls == {"forward": 4, "loss_and_delta": 0}
    # gd records each iteration with the θ its cost was taken at: θ0 first
    first = result.history.records[0]
    assert first["val_cost"] == pytest.approx(validation.cost(theta0), rel=1e-12)
    labels = validation.data.targets.labels
    assert first["val_score"] == np.mean(
        fastnn.predict(fastnn.unpack(theta0, LAYERS), validation.data.X) == labels)


def test_progress_bar_only_on_a_terminal(problem, capsys):
    """verbose shows a bar on a terminal; a log file (not a terminal) gets no bar lines."""
    objective, _, theta0 = problem
    train(objective, theta0, solver="gd", learning_rate=1.0, max_iter=30, verbose=True)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def _reference_steps(solver, theta, grads, learning_rate, dtype=np.float64):
    """The update rules of fastnn.optim's table, step by step in NumPy in ``dtype``."""
    theta = theta.astype(dtype)
    first = np.zeros_like(theta)
    second = np.zeros_like(theta)
    for t, grad in enumerate(grads, start=1):
        if solver == "gd":
            theta = theta - learning_rate * grad
        elif solver == "sgd":  # Nesterov momentum, μ = 0.9
            first = 0.9 * first - learning_rate * grad
            theta = theta + 0.9 * first - learning_rate * grad
        else:
            first = 0.9 * first + 0.1 * grad
            second = 0.999 * second + 0.001 * grad * grad
            rate = float(learning_rate * np.sqrt(1 - 0.999**t) / (1 - 0.9**t))  # weak scalar
            theta = theta - rate * first / (np.sqrt(second) + 1e-8)
    return theta


@pytest.mark.parametrize("solver", ["gd", "sgd", "adam"])
def test_update_rules_are_the_table(solver):
    """The compiled one-pass updates compute the rules of the optim module's table."""
    rng = np.random.default_rng(0)
    theta = rng.normal(size=50)
    grads = [rng.normal(size=50) for _ in range(5)]
    rule = fastnn.optim.make_optimizer(solver, 50, 0.01)
    current, out = theta.copy(), np.empty(50)
    for grad in grads:
        rule.update(current, grad, out)
        current, out = out, current
    np.testing.assert_allclose(current, _reference_steps(solver, theta, grads, 0.01),
                               rtol=1e-14, atol=1e-15)
    assert rule.t == 5


@pytest.mark.parametrize(("solver", "rule", "settings"), [
    ("gd", "GradientDescent", {}),
    ("sgd", "Momentum", {"momentum": 0.5, "nesterov": False, "schedule": "constant",
                         "power_t": 0.5}),
    ("adam", "Adam", {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8}),
])
def test_every_solver_is_in_the_registry_with_its_settings(solver, rule, settings):
    made = fastnn.optim.make_optimizer(solver, 50, 0.01, momentum=0.5, nesterov=False)
    assert type(made) is fastnn.optim.OPTIMIZERS[solver] is getattr(fastnn.optim, rule)
    assert {name: getattr(made, name) for name in made.SETTINGS} == settings


@pytest.mark.parametrize("solver", ["gd", "sgd", "adam"])
def test_float32_rules_keep_their_state_and_arithmetic_in_float32(solver):
    """A float32 model's step rule holds float32 state and computes in float32, as NumPy's
    float32 steps do (float64 scalars would make every element round-trip through float64)."""
    rng = np.random.default_rng(0)
    theta = rng.normal(size=50).astype(np.float32)
    grads = [rng.normal(size=50).astype(np.float32) for _ in range(5)]
    rule = fastnn.optim.make_optimizer(solver, 50, 0.01, dtype=np.float32)
    assert all(array.dtype == np.float32 for array in rule.state()[1].values())
    current, out = theta.copy(), np.empty_like(theta)
    for grad in grads:
        rule.update(current, grad, out)
        current, out = out, current
    expected = _reference_steps(solver, theta, grads, 0.01, dtype=np.float32)
    assert expected.dtype == np.float32
    np.testing.assert_allclose(current, expected, rtol=2e-6, atol=1e-6)
    t, arrays = rule.state()
    restored = fastnn.optim.make_optimizer(solver, 50, 0.01, dtype=np.float32).restore(
        t, {name: array.astype(np.float64) for name, array in arrays.items()})
    assert all(array.dtype == np.float32 for array in restored.state()[1].values())
    widened = restored.astype(np.float64)
    assert widened.dtype == np.float64
    assert all(array.dtype == np.float64 for array in widened.state()[1].values())


def blas_threads():
    return {pool["num_threads"] for pool in threadpoolctl.threadpool_info()
            if pool["user_api"] == "blas"}


@pytest.mark.parametrize(("backend", "limited"), [("numba", True), ("numba-parallel", True),
                                                  ("numpy", False)])
def test_blas_held_to_one_thread_around_numba_training_only(backend, limited):
    thetas, X, y = make_problem(LAYERS, m=100, target="multiclass")
    objective = fastnn.Objective(LAYERS, X, y, lam=0.1, backend=backend)
    theta0 = fastnn.pack(thetas)
    seen = []
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        for _ in range(2):  # the second call through the controller made by the first
            train(objective, theta0, solver="adam", max_iter=2, batch_size=64, random_state=0,
                  callbacks=[lambda record: seen.append(blas_threads())], n_iter_no_change=0)
            assert blas_threads() == {2}
    assert seen == [{1} if limited else {2}] * 4


# 240 examples in batches of 48: five steps an epoch, so that after an odd number of epochs
# the last parameters are in the step rule's buffer, not in the trainer's θ.
STEPS = {"solver": "adam", "learning_rate": 0.05, "batch_size": 48, "n_iter_no_change": 0,
         "random_state": 0}


@pytest.mark.parametrize("max_iter", [3, 4])
@pytest.mark.parametrize("solver", ["lbfgs", "gd", "adam"])
def test_out_receives_the_parameters_and_may_be_theta(problem, solver, max_iter):
    objective, _, theta0 = problem
    kwargs = {**STEPS, "solver": solver, "max_iter": max_iter}
    expected = train(objective, theta0, **kwargs).theta
    out = np.full_like(theta0, np.nan)
    assert train(objective, theta0, out=out, **kwargs).theta is out
    np.testing.assert_array_equal(out, expected)
    in_place = theta0.copy()
    assert train(objective, in_place, out=in_place, **kwargs).theta is in_place
    np.testing.assert_array_equal(in_place, expected)


@pytest.mark.parametrize(("out", "got"), [
    (np.empty(5), "shape (5,), dtype float64"),
    (np.empty(83, dtype=np.float32), "shape (83,), dtype float32"),
    (np.empty(166)[::2], "shape (83,), dtype float64"),  # not contiguous
    (np.broadcast_to(0.0, 83), "shape (83,), dtype float64, read-only"),
    ([0.0] * 83, "list"),
])
def test_out_must_be_a_writeable_vector_of_the_objectives_dtype(problem, out, got):
    objective, _, theta0 = problem
    with pytest.raises(ValueError, match=re.escape(
            "out: expected a writeable C-contiguous array of shape (83,) and dtype float64, got "
            + got)):
        train(objective, theta0, solver="adam", max_iter=1, out=out)


def test_a_continued_run_reuses_the_rules_arrays_and_never_hands_them_out(problem):
    objective, _, theta0 = problem
    first = train(objective, theta0, max_iter=3, **STEPS)
    rule = first.optimizer
    work = rule.work_arrays(objective.n_params)
    second = train(objective, first.theta, max_iter=3, optimizer_state=rule, **STEPS)
    assert second.optimizer is rule
    assert all(a is b for a, b in zip(rule.work_arrays(objective.n_params), work))
    for theta in (first.theta, second.theta):
        assert not any(np.shares_memory(theta, array) for array in work)
    copied = pickle.loads(pickle.dumps(rule))  # the work arrays are not part of a saved rule
    assert copied._work is None and copied.t == rule.t == 30
    np.testing.assert_array_equal(copied.first, rule.first)
