"""Update rules for the unrolled parameters θ, and the L-BFGS adapter.

Each rule takes a gradient and returns the step to add to θ; it keeps its own state (velocity,
moments) and never computes gradients (the objective does that, the trainer owns the loop).

========= ==================================================================================
gd        θ := θ − α ∇J                                      (batch gradient descent)
sgd       v := μ v − α ∇J;  θ := θ + v                       (classical momentum)
          θ := θ + μ v − α ∇J after the same v update       (Nesterov, as scikit-learn)
adam      m := β₁ m + (1 − β₁) ∇J;  v := β₂ v + (1 − β₂) ∇J²;
          θ := θ − α √(1 − β₂ᵗ) / (1 − β₁ᵗ) · m / (√v + ε)
========= ==================================================================================
"""

import numpy as np
from scipy.optimize import minimize


class GradientDescent:
    STATE = ()
    """Names of the arrays that make up the rule's state (see :meth:`state`)."""

    def __init__(self, learning_rate):
        self.learning_rate = learning_rate
        self.t = 0

    def step(self, grad):
        self.t += 1
        return -self.learning_rate * grad

    def state(self):
        """``(t, arrays)``: the number of steps taken and the state arrays by name, enough to
        continue exactly where this rule stopped (:meth:`restore`)."""
        return self.t, {name: getattr(self, name) for name in self.STATE}

    def restore(self, t, arrays):
        """Continue from a :meth:`state`; ValueError when it does not fit these parameters."""
        for name in self.STATE:
            saved = np.asarray(arrays.get(name))
            if saved.shape != getattr(self, name).shape:
                raise ValueError(f"optimizer state {name!r}: expected shape "
                                 f"{getattr(self, name).shape}, got {saved.shape}")
            setattr(self, name, saved.astype(np.float64))
        self.t = int(t)
        return self


class Momentum(GradientDescent):
    STATE = ("velocity",)

    def __init__(self, n_params, learning_rate, momentum=0.9, nesterov=True):
        super().__init__(learning_rate)
        self.momentum = momentum
        self.nesterov = nesterov
        self.velocity = np.zeros(n_params)

    def step(self, grad):
        self.t += 1
        self.velocity = self.momentum * self.velocity - self.learning_rate * grad
        if self.nesterov:
            return self.momentum * self.velocity - self.learning_rate * grad
        return self.velocity


class Adam(GradientDescent):
    STATE = ("first", "second")

    def __init__(self, n_params, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        super().__init__(learning_rate)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.first = np.zeros(n_params)
        self.second = np.zeros(n_params)

    def step(self, grad):
        self.t += 1
        self.first = self.beta_1 * self.first + (1 - self.beta_1) * grad
        self.second = self.beta_2 * self.second + (1 - self.beta_2) * grad * grad
        rate = (self.learning_rate * np.sqrt(1 - self.beta_2**self.t)
                / (1 - self.beta_1**self.t))
        return -rate * self.first / (np.sqrt(self.second) + self.epsilon)


OPTIMIZERS = {"gd": GradientDescent, "sgd": Momentum, "adam": Adam}
"""Step rules by solver name; ``"lbfgs"`` is :func:`lbfgs` instead (it owns its iterations)."""


def make_optimizer(solver, n_params, learning_rate, momentum=0.9, nesterov=True):
    """A fresh step rule of ``solver`` for P = ``n_params`` parameters."""
    if solver == "gd":
        return GradientDescent(learning_rate)
    if solver == "sgd":
        return Momentum(n_params, learning_rate, momentum, nesterov)
    return OPTIMIZERS[solver](n_params, learning_rate)


def lbfgs(objective, theta, max_iter, tol, callback):
    """Minimize ``objective`` (θ ↦ (J, ∇J)) from ``theta`` with SciPy's L-BFGS-B.

    ``callback(theta, J)`` is called after every iteration and may raise StopIteration to end
    the minimization early. Returns SciPy's OptimizeResult.
    """
    def report(intermediate_result):
        callback(intermediate_result.x, intermediate_result.fun)

    def fun(vec):
        J, grad = objective(vec)
        return J, grad.astype(np.float64, copy=False)

    return minimize(
        fun, theta.astype(np.float64), jac=True, method="L-BFGS-B", callback=report,
        options={"maxiter": max_iter, "gtol": tol, "maxfun": 20 * max_iter},
    )
