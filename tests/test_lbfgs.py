"""fastnn's L-BFGS against independent references: a dense inverse-BFGS matrix for the two-loop
recursion, the strong Wolfe conditions for the line search, known minima, and SciPy's L-BFGS-B
on a network objective."""

from itertools import pairwise

import numpy as np
import pytest
from scipy.optimize import minimize, rosen, rosen_der

import fastnn
from fastnn.lbfgs import (
    ABNORMAL,
    C1,
    C2,
    CONVERGED_DECREASE,
    CONVERGED_GRADIENT,
    STEP_MAX,
    STOP_CALLBACK,
    STOP_EVALUATIONS,
    STOP_ITERATIONS,
    _direction,
    _Line,
    _line_search,
    lbfgs,
)
from tests.conftest import make_problem


def rosenbrock(x):
    return rosen(x), rosen_der(x)


def dense_inverse_bfgs(pairs, gamma, n):
    """H after the BFGS updates H := (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ, oldest pair first,
    from H0 = γ I (Nocedal & Wright 6.17)."""
    H = gamma * np.eye(n)
    for s, y in pairs:
        rho = 1.0 / (y @ s)
        V = np.eye(n) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    return H


@pytest.mark.parametrize(("count", "newest"), [(1, 0), (3, 2), (5, 5), (5, 1), (6, 3)])
def test_two_loop_recursion_is_the_dense_inverse_bfgs_matrix(count, newest):
    """d = −H ∇J, H the BFGS inverse built explicitly from the same pairs; the pairs sit in a
    ring of 6 rows ending at ``newest`` (wrapping around when newest < count − 1)."""
    n, rows = 7, 6
    rng = np.random.default_rng(count * 10 + newest)
    A = rng.standard_normal((n, n))
    A = A @ A.T + n * np.eye(n)  # SPD: y = A s gives sᵀy > 0
    S, Y = np.full((rows, n), np.nan), np.full((rows, n), np.nan)
    rho, alpha = np.full(rows, np.nan), np.empty(rows)
    pairs = []
    for j in range(count - 1, -1, -1):  # oldest first
        row = (newest - j) % rows
        s = rng.standard_normal(n)
        S[row], Y[row] = s, A @ s
        rho[row] = 1.0 / (Y[row] @ S[row])
        pairs.append((S[row].copy(), Y[row].copy()))
    gamma = (S[newest] @ Y[newest]) / (Y[newest] @ Y[newest])
    grad = rng.standard_normal(n)
    d = np.empty(n)
    _direction(grad, S, Y, rho, alpha, newest, count, gamma, d)
    np.testing.assert_allclose(d, -dense_inverse_bfgs(pairs, gamma, n) @ grad, rtol=1e-12,
                               atol=1e-14)


@pytest.mark.parametrize("start", [0.0, 1.5, -1.2])
def test_line_search_step_satisfies_the_strong_wolfe_conditions(start):
    """Along −∇J of the Rosenbrock function, from points where the first step is far too long
    (zoom) or too short (extrapolation)."""
    x = np.full(4, start)
    J0, grad0 = rosenbrock(x)
    for scale in (1e-4, 1.0):  # the first trial step: too short, too long
        d = -grad0
        slope0 = grad0 @ d
        phi = _Line(rosenbrock, x.size)
        phi.start(x, d)
        t, J = _line_search(phi, J0, slope0, scale, budget=40)
        phi.settle(t)
        J_t, grad_t = rosenbrock(phi.theta_new)
        assert t > 0
        assert J == J_t
        np.testing.assert_allclose(phi.theta_new, x + t * d, rtol=1e-15)
        np.testing.assert_array_equal(phi.grad_new, grad_t)
        assert J_t <= J0 + C1 * t * slope0
        assert abs(grad_t @ d) <= C2 * abs(slope0)


@pytest.mark.parametrize("n", [2, 10])
def test_rosenbrock_minimum(n):
    result = lbfgs(rosenbrock, np.full(n, -1.2), max_iter=500, tol=1e-8)
    assert result.status == 0, result.message
    np.testing.assert_allclose(result.x, np.ones(n), atol=1e-6)


def test_quadratic_minimum_and_gradient_stop():
    """J = ½ θᵀAθ − bᵀθ: θ* = A⁻¹b, and the run ends on the gradient test."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((30, 30))
    A = A @ A.T + np.eye(30)
    b = rng.standard_normal(30)
    result = lbfgs(lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b), np.zeros(30), max_iter=1000,
                   tol=1e-7, ftol=0.0)
    assert result.message == CONVERGED_GRADIENT
    assert np.abs(A @ result.x - b).max() <= 1e-7
    np.testing.assert_allclose(result.x, np.linalg.solve(A, b), rtol=1e-5)


@pytest.fixture(scope="module")
def network():
    layers = (8, 6, 3)
    thetas, X, y = make_problem(layers, m=120, target="multiclass")
    objective = fastnn.Objective(layers, X, y, lam=0.5, backend="numpy")
    return objective, fastnn.pack(thetas)


def test_network_minimum_is_scipys(network):
    """Run to convergence, fastnn's L-BFGS and SciPy's L-BFGS-B reach the same minimum of a
    network's regularized cost (the two take different paths)."""
    objective, theta0 = network
    ours = lbfgs(objective, theta0, max_iter=3000, tol=1e-7, ftol=0.0)
    scipys = minimize(objective, theta0, jac=True, method="L-BFGS-B",
                      options={"maxiter": 3000, "gtol": 1e-7, "ftol": 0.0})
    assert ours.status == 0 and scipys.status == 0
    assert ours.fun == pytest.approx(scipys.fun, rel=1e-10)
    np.testing.assert_allclose(ours.x, scipys.x, atol=1e-4)  # a flat minimum


def test_deterministic_and_input_untouched(network):
    objective, theta0 = network
    before = theta0.copy()
    first = lbfgs(objective, theta0, max_iter=30, tol=0.0)
    second = lbfgs(objective, theta0, max_iter=30, tol=0.0)
    np.testing.assert_array_equal(theta0, before)
    np.testing.assert_array_equal(first.x, second.x)
    assert first.nit == 30 and first.message == STOP_ITERATIONS


def test_float32_gradients_and_reused_buffers(network):
    """∇J of another dtype, in a buffer every call overwrites, gives the run of a float64
    ∇J in fresh arrays up to float32 rounding."""
    objective, theta0 = network
    buffer = np.empty(theta0.size, np.float32)

    def float32_in_place(vec):
        J, grad = objective(vec)
        buffer[:] = grad
        return J, buffer

    reference = lbfgs(objective, theta0, max_iter=20, tol=0.0)
    result = lbfgs(float32_in_place, theta0, max_iter=20, tol=0.0)
    assert result.x.dtype == np.float64
    assert result.fun == pytest.approx(reference.fun, rel=1e-5)


def test_callback_sees_each_iterate_and_can_stop(network):
    objective, theta0 = network
    seen = []

    def callback(theta, J):
        seen.append((theta.copy(), J))
        if len(seen) == 4:
            raise StopIteration

    result = lbfgs(objective, theta0, max_iter=50, tol=0.0, callback=callback)
    assert (result.status, result.message, result.nit) == (99, STOP_CALLBACK, 4)
    np.testing.assert_array_equal(seen[-1][0], result.x)
    costs = [J for _, J in seen]
    assert costs == [objective(theta)[0] for theta, _ in seen]
    assert all(a > b for a, b in pairwise(costs))  # sufficient decrease every step


def test_evaluation_limit(network):
    objective, theta0 = network
    result = lbfgs(objective, theta0, max_iter=50, tol=0.0, max_fun=5)
    assert (result.status, result.message) == (1, STOP_EVALUATIONS)
    assert 5 <= result.nfev <= 5 + 1  # checked after an iteration; no search runs past it


def test_relative_decrease_stop():
    """An iteration that lowers J by a relative 3e-10 < ftol ends the run (J = 1 + θᵀθ from
    θ = 1e-5: the first step lowers J by 3e-10)."""
    result = lbfgs(lambda x: (1.0 + x @ x, 2 * x), np.full(3, 1e-5), max_iter=100, tol=0.0)
    assert (result.status, result.message, result.nit) == (0, CONVERGED_DECREASE, 1)


def test_unbounded_direction_stops_at_the_largest_step():
    """J = −θ₀ falls without end along d = −∇J: the line search extrapolates up to
    ``STEP_MAX`` and stops there with a finite J, not at an overflow."""
    phi = _Line(lambda x: (-x[0], np.array([-1.0, 0.0])), 2)
    x, d = np.zeros(2), np.array([1.0, 0.0])
    phi.start(x, d)
    t, J = _line_search(phi, 0.0, -1.0, 1.0, budget=40)
    assert t == STEP_MAX and J == -STEP_MAX
    assert phi.evaluations == 18  # t = 1, 5, 21, 85, ... (steps growing 4-fold), then 1e10


def test_wrong_gradient_ends_abnormally():
    """A gradient pointing uphill: no step along the supposed −∇J lowers J."""
    result = lbfgs(lambda x: (x @ x, -2 * x), np.ones(4), max_iter=10, tol=0.0)
    assert (result.status, result.message, result.nit) == (2, ABNORMAL, 0)
    np.testing.assert_array_equal(result.x, np.ones(4))
