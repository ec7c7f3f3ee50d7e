"""Update rules for the unrolled parameters θ (L-BFGS, which owns its iterations, is
:mod:`fastnn.lbfgs`).

Each rule takes θ and its gradient and writes the next θ, in one compiled pass; it keeps its own
state (velocity, moments) and never computes gradients (the objective does that, the trainer
owns the loop).

========= ==================================================================================
gd        θ := θ − α ∇J                                      (batch gradient descent)
sgd       v := μ v − α ∇J;  θ := θ + v                       (classical momentum)
          θ := θ + μ v − α ∇J after the same v update       (Nesterov, as scikit-learn)
adam      m := β₁ m + (1 − β₁) ∇J;  v := β₂ v + (1 − β₂) ∇J²;
          θ := θ − α √(1 − β₂ᵗ) / (1 − β₁ᵗ) · m / (√v + ε)
========= ==================================================================================
"""

import numpy as np
from numba import prange

from fastnn._jit import compile_loop
from fastnn._threads import THREADS


def _gd(theta, grad, learning_rate, out):
    for p in prange(theta.shape[0]):
        out[p] = theta[p] - learning_rate * grad[p]


def _momentum(theta, grad, velocity, learning_rate, momentum, nesterov, out):
    for p in prange(theta.shape[0]):
        v = momentum * velocity[p] - learning_rate * grad[p]
        velocity[p] = v
        out[p] = theta[p] + (momentum * v - learning_rate * grad[p] if nesterov else v)


def _adam(theta, grad, first, second, rate, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2,
          epsilon, out):
    for p in prange(theta.shape[0]):
        g = grad[p]
        f = beta_1 * first[p] + one_minus_beta_1 * g
        s = beta_2 * second[p] + one_minus_beta_2 * g * g
        first[p] = f
        second[p] = s
        out[p] = theta[p] - rate * f / (np.sqrt(s) + epsilon)


PARALLEL_MIN_PARAMS = 16_384
"""Parameters from which an update asked to be parallel runs over Numba's threads: the
parallel compilation vectorizes, which the serial one, with five arrays that might alias, does
not (an adam pass over 101,770 parameters about 7 times as fast). Below this size the pass
costs a few microseconds either way."""

UPDATES = {
    rule.__name__: (compile_loop(rule, parallel=False), compile_loop(rule, parallel=True))
    for rule in (_gd, _momentum, _adam)
}
"""Each rule's compiled pass, serial and parallel."""


def _update(rule, parallel, theta, *args):
    serial, threaded = UPDATES[rule.__name__]
    if parallel and theta.shape[0] >= PARALLEL_MIN_PARAMS:
        return THREADS.call((rule.__name__, theta.shape[0], theta.dtype.char), threaded, theta,
                            *args)
    return serial(theta, *args)


class GradientDescent:
    """θ := θ − α ∇J. Every rule's :meth:`update` is one compiled pass over θ, its gradient
    and its state, writing the new θ into an array the caller gives (no temporaries).

    A rule keeps its state and does its arithmetic in ``dtype``, the model's (as PyTorch's and
    scikit-learn's optimizers do): a float32 model's adam pass over P = 101,770 took 48 µs with
    float64 moments and float64 scalars (each element converted up and back), 18 µs all in
    float32 (two threads; float32 moments with float64 scalars: still 47 µs)."""

    STATE = ()
    """Names of the arrays that make up the rule's state (see :meth:`state`)."""
    SETTINGS = ()
    """Names of the solver settings the rule takes besides α (see :func:`make_optimizer`)."""

    def __init__(self, n_params, learning_rate, dtype=np.float64):
        """P = ``n_params`` as every rule takes it (plain descent keeps no state of P numbers),
        α = ``learning_rate``, and the dtype of the rule's arithmetic."""
        self.learning_rate = learning_rate
        self.dtype = np.dtype(dtype)
        self.t = 0
        self._work = None

    def work_arrays(self, n_params):
        """``(out, grad)``: two arrays of P = ``n_params`` numbers in the rule's dtype for the
        loop around it, the θ an update writes and the ∇J it reads, made at the first call and
        kept with the rule, so that a run it continues (``partial_fit``) allocates none: a
        fresh array of P numbers costs its page faults each call (glibc gives freed memory
        back to the kernel). Not part of :meth:`state`, nor pickled."""
        if getattr(self, "_work", None) is None or self._work[0].shape[0] != n_params:
            self._work = (np.empty(n_params, self.dtype), np.empty(n_params, self.dtype))
        return self._work

    def __getstate__(self):
        return {**self.__dict__, "_work": None}

    def iteration_ends(self, samples_seen):
        """Called after every epoch with the examples seen so far (``t_``): the rules with a
        learning-rate schedule update α here; the others keep it."""

    def trigger_stopping(self):
        """Called when training would stop for lack of improvement: True to stop, False to go
        on (the "adaptive" schedule lowers α instead)."""
        return True

    def update(self, theta, grad, out, parallel=False):
        """Write θ + step into ``out`` (shape and dtype of θ; may be θ itself); ``parallel``:
        over Numba's threads (when nothing else, such as BLAS's threads, is busy on them)."""
        self.t += 1
        _update(_gd, parallel, theta, grad, self.dtype.type(self.learning_rate), out)

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
            setattr(self, name, saved.astype(self.dtype))
        self.t = int(t)
        return self

    def astype(self, dtype):
        """This rule with its state and arithmetic in ``dtype`` (the model's), for a model
        whose dtype changed between fits; itself when it already is."""
        dtype = np.dtype(dtype)
        if dtype != self.dtype:
            self.dtype = dtype
            self._work = None
            for name in self.STATE:
                setattr(self, name, getattr(self, name).astype(dtype))
        return self


class Momentum(GradientDescent):
    """sgd with momentum, and scikit-learn's learning-rate schedules (``schedule``):
    "constant"; "invscaling", α := α₀ / (t + 1)^``power_t`` after every epoch, t the examples
    seen; "adaptive", α := α / 5 each time training would stop for lack of improvement, until
    α ≤ ``MIN_ADAPTIVE_RATE`` (scikit-learn's ``SGDOptimizer``)."""

    STATE = ("velocity",)
    SETTINGS = ("momentum", "nesterov", "schedule", "power_t")

    def __init__(self, n_params, learning_rate, dtype=np.float64, momentum=0.9, nesterov=True,
                 schedule="constant", power_t=0.5):
        super().__init__(n_params, learning_rate, dtype)
        self.momentum = momentum
        self.nesterov = nesterov
        self.learning_rate_init = learning_rate
        self.schedule = schedule
        self.power_t = power_t
        self.velocity = np.zeros(n_params, self.dtype)

    def iteration_ends(self, samples_seen):
        if self.schedule == "invscaling":
            self.learning_rate = self.learning_rate_init / (samples_seen + 1) ** self.power_t

    def trigger_stopping(self):
        if self.schedule != "adaptive" or self.learning_rate <= MIN_ADAPTIVE_RATE:
            return True
        self.learning_rate /= 5.0
        return False

    def update(self, theta, grad, out, parallel=False):
        self.t += 1
        scalar = self.dtype.type
        _update(_momentum, parallel, theta, grad, self.velocity, scalar(self.learning_rate),
                scalar(self.momentum), self.nesterov, out)


class Adam(GradientDescent):
    STATE = ("first", "second")
    SETTINGS = ("beta_1", "beta_2", "epsilon")

    def __init__(self, n_params, learning_rate, dtype=np.float64, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8):
        super().__init__(n_params, learning_rate, dtype)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.first = np.zeros(n_params, self.dtype)
        self.second = np.zeros(n_params, self.dtype)

    def update(self, theta, grad, out, parallel=False):
        self.t += 1
        rate = (self.learning_rate * np.sqrt(1 - self.beta_2**self.t)
                / (1 - self.beta_1**self.t))
        scalar = self.dtype.type
        _update(_adam, parallel, theta, grad, self.first, self.second, scalar(rate),
                scalar(self.beta_1), scalar(1 - self.beta_1), scalar(self.beta_2),
                scalar(1 - self.beta_2), scalar(self.epsilon), out)


OPTIMIZERS = {"gd": GradientDescent, "sgd": Momentum, "adam": Adam}
"""Step rules by solver name; ``"lbfgs"`` is :func:`fastnn.lbfgs.lbfgs` instead (it owns its
iterations)."""


MIN_ADAPTIVE_RATE = 1e-6
"""The "adaptive" schedule stops training when α is at or below this (scikit-learn's rule)."""


def make_optimizer(solver, n_params, learning_rate, momentum=0.9, nesterov=True,
                   dtype=np.float64, *, schedule="constant", power_t=0.5, beta_1=0.9,
                   beta_2=0.999, epsilon=1e-8):
    """A fresh step rule of ``solver`` for P = ``n_params`` parameters of ``dtype``; of the
    solver settings, each rule takes those it names in ``SETTINGS`` (sgd: μ, Nesterov's and
    the learning-rate schedule; adam: β₁, β₂, ε)."""
    rule = OPTIMIZERS[solver]
    settings = {"momentum": momentum, "nesterov": nesterov, "schedule": schedule,
                "power_t": power_t, "beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon}
    return rule(n_params, learning_rate, dtype, **{name: settings[name] for name in rule.SETTINGS})
