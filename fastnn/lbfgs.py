"""L-BFGS with a strong-Wolfe line search, its passes over θ compiled.

The method of Nocedal & Wright, *Numerical Optimization* (2nd ed., 2006): the search direction
d = −H ∇J from the two-loop recursion over the last ``history`` pairs

    s_k = θ_{k+1} − θ_k,    y_k = ∇J(θ_{k+1}) − ∇J(θ_k),    ρ_k = 1 / (y_kᵀ s_k),

with H0 = γ I, γ = sᵀy / yᵀy of the newest pair (Algorithms 7.4 and 7.5), and a step t along d
that satisfies the strong Wolfe conditions

    J(θ + t d) ≤ J(θ) + c₁ t ∇J(θ)ᵀd,    |∇J(θ + t d)ᵀd| ≤ c₂ |∇J(θ)ᵀd|,

found by bracketing and zooming with safeguarded cubic interpolation (Algorithms 3.5 and 3.6,
formula 3.59). It stops as SciPy's L-BFGS-B does: when the largest |∂J/∂θ_p| is at most ``tol``,
when an iteration lowers J by at most a relative ``FTOL``, or on the iteration or evaluation limit.

Why not SciPy's L-BFGS-B (which fastnn used before): between two evaluations of J it costs about
65 ns per parameter in its bound-constrained machinery (generalized Cauchy point, subspace
minimization), which has nothing to do for fastnn's unconstrained θ: a quarter of an ex4
float32 iteration. Here the two-loop recursion is 4 · ``history`` compiled passes over θ, the
line search a few more per evaluation, and the rest is Python on scalars.
"""

import math

import numpy as np
from numba import njit
from scipy.optimize import OptimizeResult

from fastnn._jit import FASTMATH

HISTORY = 10
"""Pairs (s, y) kept: SciPy's default ``maxcor``."""
C1 = 1e-4
"""Sufficient decrease of the line search (Nocedal & Wright's value)."""
C2 = 0.9
"""Curvature condition of the line search (Nocedal & Wright's value for quasi-Newton methods)."""
MAX_LINE_SEARCH = 20
"""Most evaluations of J in one line search (as L-BFGS-B)."""
EVALUATIONS_PER_ITERATION = 20
"""Default limit on evaluations of J: this many per iteration allowed (SciPy's ``maxfun`` as
fastnn set it)."""
FTOL = 1e7 * np.finfo(np.float64).eps
"""Relative decrease of J at or below which an iteration ends the run, by default: SciPy's
default ``ftol`` (``factr`` = 1e7 times the float64 ε, 2.2e-9)."""
STEP_MAX = 1e10
"""Largest step the line search extrapolates to (L-BFGS-B's ``stpmax`` without bounds): along a
direction where J keeps falling (no minimum, as with λ = 0 on separable data), the search ends
there, at its last step, instead of growing t until J overflows."""
XTOL = 1e-12
"""Relative width of the bracket at which the line search's zoom gives up."""

CONVERGED_GRADIENT = "CONVERGENCE: largest |dJ/dtheta| <= tol"
CONVERGED_DECREASE = "CONVERGENCE: relative reduction of J <= ftol"
STOP_ITERATIONS = "STOP: the number of iterations reached max_iter"
STOP_EVALUATIONS = "STOP: the number of evaluations of J reached max_fun"
STOP_CALLBACK = "STOP: the callback raised StopIteration"
ABNORMAL = "ABNORMAL: the line search found no step along steepest descent that lowers J"


@njit(cache=True, fastmath=FASTMATH)
def _dot(a, b):
    """aᵀb."""
    total = 0.0
    for p in range(a.shape[0]):
        total += a[p] * b[p]
    return total


@njit(cache=True, fastmath=FASTMATH)
def _max_abs(a):
    """max_p |a_p|; NaN when any a_p is NaN."""
    largest = 0.0
    for p in range(a.shape[0]):
        v = abs(a[p])
        if not v <= largest:
            largest = v
    return largest


@njit(cache=True, fastmath=FASTMATH)
def _trial(theta, t, d, out):
    """out = θ + t d."""
    for p in range(theta.shape[0]):
        out[p] = theta[p] + t * d[p]


@njit(cache=True, fastmath=FASTMATH)
def _store_pair(theta_new, theta, grad_new, grad, s, y):
    """s = θ_{k+1} − θ_k, y = ∇J_{k+1} − ∇J_k; returns (sᵀy, yᵀy)."""
    sy = 0.0
    yy = 0.0
    for p in range(theta.shape[0]):
        s_p = theta_new[p] - theta[p]
        y_p = grad_new[p] - grad[p]
        s[p] = s_p
        y[p] = y_p
        sy += s_p * y_p
        yy += y_p * y_p
    return sy, yy


@njit(cache=True, fastmath=FASTMATH)
def _direction(grad, S, Y, rho, alpha, newest, count, gamma, d):
    """d = −H ∇J by the two-loop recursion over the ``count`` pairs that end at row ``newest``
    of the ring buffers S and Y (rows taken modulo their number), H0 = γ I.

        q = ∇J;  for i newest → oldest:  α_i = ρ_i s_iᵀq,  q −= α_i y_i
        r = γ q; for i oldest → newest:  β = ρ_i y_iᵀr,    r += (α_i − β) s_i
        d = −r
    """
    n = grad.shape[0]
    rows = S.shape[0]
    for p in range(n):
        d[p] = grad[p]
    for j in range(count):
        i = (newest - j) % rows
        a = 0.0
        for p in range(n):
            a += S[i, p] * d[p]
        a *= rho[i]
        alpha[i] = a
        for p in range(n):
            d[p] -= a * Y[i, p]
    for p in range(n):
        d[p] *= gamma
    for j in range(count - 1, -1, -1):
        i = (newest - j) % rows
        b = 0.0
        for p in range(n):
            b += Y[i, p] * d[p]
        b = alpha[i] - rho[i] * b
        for p in range(n):
            d[p] += b * S[i, p]
    for p in range(n):
        d[p] = -d[p]


def _cubic_step(t1, f1, g1, t2, f2, g2, low, high, otherwise):
    """The minimizer of the cubic through φ(t1) = f1, φ′(t1) = g1, φ(t2) = f2, φ′(t2) = g2
    (Nocedal & Wright 3.59), clipped to [low, high]; ``otherwise`` when it has none."""
    d1 = g1 + g2 - 3 * (f1 - f2) / (t1 - t2)
    square = d1 * d1 - g1 * g2
    if square >= 0:
        d2 = math.copysign(math.sqrt(square), t2 - t1)
        t = t2 - (t2 - t1) * (g2 + d2 - d1) / (g2 - g1 + 2 * d2)
        if math.isfinite(t):
            return min(max(t, low), high)
    return otherwise


class _Line:
    """φ(t) = J(θ + t d) and φ′(t) = ∇J(θ + t d)ᵀd along one direction, the point and its
    gradient written into buffers kept across iterations."""

    def __init__(self, fun, n):
        self.fun = fun
        self.theta_new = np.empty(n)
        self.grad_new = np.empty(n)
        self.grad_kept = np.empty(n)
        self.evaluations = 0

    def start(self, theta, d):
        self.theta, self.d = theta, d
        self.evaluations = 0
        self.last = None

    def __call__(self, t):
        _trial(self.theta, t, self.d, self.theta_new)
        J, grad = self.fun(self.theta_new)
        self.grad_new[:] = grad
        self.evaluations += 1
        self.last = t
        return float(J), _dot(self.grad_new, self.d)

    def keep(self):
        """Keep the gradient of the last point evaluated (the lowest point so far)."""
        self.grad_kept[:] = self.grad_new

    def settle(self, t):
        """Leave θ + t d and its gradient in the buffers (t is the last point or the kept one)."""
        if t != self.last:
            _trial(self.theta, t, self.d, self.theta_new)
            self.grad_new[:] = self.grad_kept


def _line_search(phi, J0, slope0, t, budget):
    """A step t along the direction satisfying the strong Wolfe conditions, with φ(t): by
    bracketing (Nocedal & Wright, Algorithm 3.5), extrapolating to t + 4 (t − t_prev) (the
    farthest step of Moré and Thuente's search), then :func:`_zoom`.

    The extrapolated steps depend on no value of J. Chosen by cubic interpolation (into
    [t + 1.1 (t − t_prev), t + 4 (t − t_prev)]) they moved with J's rounding: fits of one
    problem whose J differ by rounding only (the numba and numpy backends; Friedman's function,
    200 examples, 10-6-1, 30 iterations, one line search extrapolating 1 → 33) ended 3.5e-8
    apart, 1.1e-9 with fixed steps (SciPy's L-BFGS-B: 1.2e-10).

    Returns ``(t, J)``. When ``budget`` evaluations end first (or t reaches ``STEP_MAX``), the
    lowest point found that satisfies sufficient decrease; ``t = 0`` when there is none.
    """
    prev = (0.0, J0, slope0)
    while phi.evaluations < budget:
        J, slope = phi(t)
        point = (t, J, slope)
        if not J <= J0 + C1 * t * slope0 or (phi.evaluations > 1 and J >= prev[1]):
            return _zoom(phi, J0, slope0, prev, point, budget)
        if abs(slope) <= -C2 * slope0:
            return t, J
        phi.keep()
        if slope >= 0:
            return _zoom(phi, J0, slope0, point, prev, budget)
        if t >= STEP_MAX:
            return t, J
        t = min(t + 4 * (t - prev[0]), STEP_MAX)
        prev = point
    return prev[:2]


def _zoom(phi, J0, slope0, low, high, budget):
    """Algorithm 3.6 of Nocedal & Wright: ``low`` = (t, J, φ′) is the lowest point that
    satisfies sufficient decrease, the minimizer lies between it and ``high``; trial steps by
    cubic interpolation, kept a tenth of the bracket away from its ends."""
    while phi.evaluations < budget:
        a, b = sorted((low[0], high[0]))
        width = b - a
        if width <= XTOL * b:
            break
        t = _cubic_step(*low, *high, a + 0.1 * width, b - 0.1 * width, otherwise=a + width / 2)
        J, slope = phi(t)
        if not J <= J0 + C1 * t * slope0 or J >= low[1]:
            high = (t, J, slope)
            continue
        if abs(slope) <= -C2 * slope0:
            return t, J
        if slope * (high[0] - low[0]) >= 0:
            high = low
        low = (t, J, slope)
        phi.keep()
    return low[:2]


def lbfgs(fun, theta, max_iter, tol, callback=None, max_fun=None, ftol=FTOL, history=HISTORY):
    """Minimize J from θ0 = ``theta`` by L-BFGS.

    Parameters
    ----------
    fun : callable
        θ ↦ (J, ∇J), θ and ∇J of shape (P,); ∇J may be of another float dtype and may be a
        buffer the next call overwrites (it is copied).
    theta : ndarray of shape (P,)
        θ0; not changed.
    max_iter : int
        Most iterations.
    tol : float
        Stop when max_p |∂J/∂θ_p| ≤ ``tol``.
    callback : callable, optional
        ``callback(theta, J)`` after every iteration, θ of shape (P,) in a buffer the next
        iteration overwrites; raising StopIteration ends the run.
    max_fun : int, optional
        Most evaluations of J; by default ``EVALUATIONS_PER_ITERATION · max_iter``. Checked
        after each iteration, as SciPy does, and a line search never runs past it.
    ftol : float
        Stop when an iteration lowers J by at most ``ftol · max(|J_k|, |J_{k+1}|, 1)``.
    history : int
        Pairs (s, y) kept.

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x`` (float64, shape (P,)), ``fun``, ``jac``, ``nit``, ``nfev``, ``status`` (0
        converged, 1 a limit, 2 a line search along steepest descent found no lower J, 99 the
        callback stopped it, as SciPy's codes), ``message`` and ``success``.
    """
    max_fun = EVALUATIONS_PER_ITERATION * max_iter if max_fun is None else max_fun
    theta = np.array(theta, dtype=np.float64).ravel()
    n = theta.shape[0]
    # A ring of history + 1 rows: the next pair is written into a free row, and only counted
    # once it is kept (sᵀy > 0), so a skipped pair never overwrites the oldest one.
    S, Y = np.empty((history + 1, n)), np.empty((history + 1, n))
    rho, alpha = np.empty(history + 1), np.empty(history + 1)
    d, grad = np.empty(n), np.empty(n)
    J, first = fun(theta)
    J, grad[:] = float(J), first
    phi = _Line(fun, n)
    count = newest = nit = 0
    gamma, nfev = 1.0, 1
    status, message = None, None
    if _max_abs(grad) <= tol:
        status, message = 0, CONVERGED_GRADIENT
    while status is None:
        if count:
            _direction(grad, S, Y, rho, alpha, newest, count, gamma, d)
            t = 1.0
        else:
            np.negative(grad, out=d)
            t = 1.0 / math.sqrt(_dot(d, d))  # L-BFGS-B's first step: length 1 in θ
        slope = _dot(grad, d)
        if not slope < 0:
            if count:  # rounding made −H ∇J no descent direction: forget H
                count = 0
                continue
            status, message = 2, ABNORMAL
            break
        phi.start(theta, d)
        t, J_new = _line_search(phi, J, slope, t, min(MAX_LINE_SEARCH, max(1, max_fun - nfev)))
        nfev += phi.evaluations
        if t == 0:
            if nfev >= max_fun:
                status, message = 1, STOP_EVALUATIONS
            elif count:  # as L-BFGS-B: forget H and search along −∇J before giving up
                count = 0
                continue
            else:
                status, message = 2, ABNORMAL
            break
        phi.settle(t)
        row = (newest + 1) % (history + 1) if count else 0
        sy, yy = _store_pair(phi.theta_new, theta, phi.grad_new, grad, S[row], Y[row])
        if sy > np.finfo(np.float64).eps * -slope * t:  # L-BFGS-B's test to keep a pair
            newest, count = row, min(count + 1, history)
            rho[row], gamma = 1.0 / sy, sy / yy
        theta, phi.theta_new = phi.theta_new, theta
        grad, phi.grad_new = phi.grad_new, grad
        J_old, J = J, J_new
        nit += 1
        if callback is not None:
            try:
                callback(theta, J)
            except StopIteration:
                status, message = 99, STOP_CALLBACK
                break
        if _max_abs(grad) <= tol:
            status, message = 0, CONVERGED_GRADIENT
        elif J_old - J <= ftol * max(abs(J_old), abs(J), 1.0):
            status, message = 0, CONVERGED_DECREASE
        elif nit >= max_iter:
            status, message = 1, STOP_ITERATIONS
        elif nfev >= max_fun:
            status, message = 1, STOP_EVALUATIONS
    return OptimizeResult(x=theta, fun=J, jac=grad, nit=nit, nfev=nfev, status=status,
                          message=message, success=status == 0)
