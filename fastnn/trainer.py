"""The training loop: iterations or epochs, mini-batches, history, early stopping, callbacks.

The trainer owns the loop; the objective computes (J, ∇J) and the optimizer turns gradients
into steps (:mod:`fastnn.optim`). Monitoring is returned in a :class:`History`, never printed;
a tqdm progress bar is shown only when ``verbose``.
"""

import functools
import signal
import threading
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import ThreadpoolController
from tqdm.auto import tqdm

from fastnn._validation import check_choice, check_out
from fastnn.lbfgs import lbfgs
from fastnn.optim import make_optimizer

SOLVERS = ("lbfgs", "gd", "sgd", "adam")
STOCHASTIC_SOLVERS = ("sgd", "adam")
"""The mini-batch solvers: one iteration is an epoch, and ``n_iter_no_change`` and
``early_stopping`` apply to them only, as in scikit-learn."""


DIVERGENCE_RATIO = 1e6
"""A run whose cost exceeds this many times the first cost it recorded has diverged, as has
one whose cost is NaN or infinite. A step too large for the loss can make the cost grow by
orders of magnitude every epoch and yet stay finite for many epochs (make_friedman1's y × 1e6,
sgd at rate 1: 6e28 to 2e229 in ten), which would otherwise end as "converged" (no improvement
for ``n_iter_no_change`` epochs); a run that is learning does not end up a million times above
where it started."""


class TrainingDiverged(FloatingPointError, ValueError):
    """The cost became NaN or infinite, or rose past ``DIVERGENCE_RATIO`` times its first
    value; ``theta`` holds the last parameters with a finite cost in the first case, the best
    ones so far in the second. Also a ValueError, what scikit-learn's MLP raises for
    non-finite weights, so that code catching that catches this."""

    def __init__(self, message, theta, history):
        super().__init__(message)
        self.theta = theta
        self.history = history


@dataclass
class History:
    """One record per iteration (L-BFGS, gd) or epoch (sgd, adam).

    Each record has ``iteration``, ``cost`` (the training objective J; for mini-batch solvers
    the mean of the epoch's batch costs), ``time`` (seconds since the start) and, when
    validation data are given, ``val_cost`` (the data term of J on them, no penalty) and
    ``val_score`` (accuracy for a sigmoid output, R² for an identity output; see
    :meth:`fastnn.Objective.cost_and_score`).
    """

    records: list = field(default_factory=list)
    stopped: str = "max_iter"
    """Why training ended: "max_iter", "converged", "early_stopping", "callback",
    "interrupted", "diverged" (the history a :class:`TrainingDiverged` carries), or for L-BFGS
    "max_fun" (its limit on evaluations of J) and "abnormal" (its line search found no lower J
    along −∇J); ``message`` has L-BFGS's own words."""
    message: str = ""
    """:func:`fastnn.lbfgs.lbfgs`'s message when L-BFGS ended by itself, else empty."""

    def __getitem__(self, key):
        """The column ``key`` of the records, e.g. ``history["cost"]``."""
        return [record[key] for record in self.records]

    def __len__(self):
        return len(self.records)


@dataclass
class TrainResult:
    theta: np.ndarray
    """The kept parameters: the best ones when training stopped early or was interrupted."""
    history: History
    best_loss: float
    optimizer: object = None
    """The step rule with its state (velocity, moments), to continue with; None for L-BFGS."""


class _Monitor:
    """Records each iteration, tracks the best parameters, decides when to stop."""

    def __init__(self, validation, early_stopping, tol, n_iter_no_change, callbacks, bar):
        self.validation = validation
        self.early_stopping = early_stopping and validation is not None
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.callbacks = callbacks
        self.bar = bar
        self.history = History()
        self.start = time.perf_counter()
        self.best_score = -np.inf
        self.best_theta = None
        self.best_loss = np.inf
        self.no_improvement = 0
        self.last = None
        """Where the last parameters are when not in the trainer's θ (in a step rule's buffer)."""
        self.last_finite = None
        """The parameters of the last finite cost when it is not the trainer's θ, set by the
        mini-batch loop (L-BFGS writes θ with accepted iterates only: θ is the last finite)."""
        self.risen = None
        """The cost that rose past ``DIVERGENCE_RATIO`` times the first, when that ended the
        run (it is not recorded, as a non-finite one is not)."""

    def record(self, theta, J):
        """Record iteration; return the reason to stop, or None to go on."""
        if not np.isfinite(J):
            return "diverged"
        if self.history.records and J > DIVERGENCE_RATIO * self.history.records[0]["cost"] > 0:
            self.risen = float(J)
            return "diverged"
        record = {"iteration": len(self.history) + 1, "cost": float(J),
                  "time": time.perf_counter() - self.start}
        if self.validation is not None:
            record["val_cost"], record["val_score"] = self.validation.cost_and_score(theta)
        self.history.records.append(record)
        if not self.bar.disable:  # tqdm formats the postfix even for a disabled bar
            self.bar.update(1)
            self.bar.set_postfix({key: record[key] for key in ("cost", "val_score")
                                  if key in record})
        # The monitored score: the validation score with early stopping, else −J.
        score = record["val_score"] if self.early_stopping else -record["cost"]
        self.best_loss = min(self.best_loss, record["cost"])
        # scikit-learn's rule: an epoch improves when the score gains at least tol over the
        # best so far, and training stops after more than n_iter_no_change that do not.
        if score >= self.best_score + self.tol:
            self.no_improvement = 0
        else:
            self.no_improvement += 1
        if score > self.best_score:
            self.best_score = score
            self.best_theta = theta  # copied by before_write when θ is about to change
        if any(callback(record) for callback in self.callbacks):
            return "callback"
        if self.n_iter_no_change and self.no_improvement > self.n_iter_no_change:
            return "early_stopping" if self.early_stopping else "converged"
        return None

    def before_write(self, buffer):
        """Called before ``buffer`` is overwritten: the best θ, if it is there, is copied out
        first. Parameters are copied only when they would be lost (a run of one epoch, such as
        a ``partial_fit``, copies none)."""
        if self.best_theta is buffer:
            self.best_theta = buffer.copy()

    def result(self, stopped, theta, optimizer):
        """θ with the last parameters after a normal end, the best ones after early stopping, a
        callback's stop or Ctrl-C, and whenever the validation score is monitored; copied into
        θ from wherever they are (a step rule's buffers are never handed out)."""
        self.history.stopped = stopped
        keep_best = self.early_stopping or stopped not in ("max_iter", "converged")
        keep = (self.best_theta if keep_best and self.best_theta is not None
                else self.last if self.last is not None else theta)
        if keep is not theta:
            theta[:] = keep
        return TrainResult(theta, self.history, float(self.best_loss), optimizer)


@functools.cache
def _blas():
    """threadpoolctl's controller of the thread pools loaded in this process, made once.

    Making one reads /proc/self/maps, long with Numba's compiled code mapped: a fresh
    ``threadpool_limits`` per training run would cost more than a mini-batch's (J, ∇J), a kept
    controller's ``.limit`` a few microseconds. Pools loaded later (say PyTorch's) are not in
    it; the BLAS fastnn calls is NumPy's, loaded before fastnn.
    """
    return ThreadpoolController()


class _Diverged(Exception):
    """Raised from inside L-BFGS when J is not finite, to end it at once."""


class _Interrupted(Exception):
    """Raised from inside L-BFGS at the first evaluation after Ctrl-C, to end it there."""


class _Sigint:
    """Ctrl-C during training, seen at step boundaries instead of raised where it lands.

    Python turns SIGINT into a ``KeyboardInterrupt`` raised in whatever the main thread runs;
    inside a compiled kernel that becomes a ``SystemError`` ("returned a result with an
    exception set") and the parameters are lost. While training runs in the main thread with
    Python's default handler, the first Ctrl-C only sets ``requested``, which the loops read
    after every step; a second one raises ``KeyboardInterrupt`` at once (abort). Elsewhere (a
    worker thread, a handler of the caller's own) nothing is installed and a
    ``KeyboardInterrupt`` stops training as before.
    """

    def __init__(self):
        self.requested = False

    def __call__(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    @contextmanager
    def installed(self):
        ours = (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        if not ours:
            yield self
            return
        signal.signal(signal.SIGINT, self)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def train(objective, theta, *, solver="lbfgs", learning_rate=0.001, max_iter=200,
          batch_size=200, momentum=0.9, nesterov=True, tol=1e-4, n_iter_no_change=10,
          validation=None, early_stopping=False, callbacks=(), verbose=False,
          random_state=None, optimizer_state=None, out=None, shuffle=True, max_fun=None,
          samples_seen=0):
    """Minimize ``objective`` from ``theta``.

    Parameters
    ----------
    objective : fastnn.Objective
        The training objective J(θ) with its data.
    theta : ndarray of shape (P,)
        Starting parameters (not modified, unless it is ``out``).
    solver : {"lbfgs", "gd", "sgd", "adam"}
        L-BFGS (:func:`fastnn.lbfgs.lbfgs`) and ``gd`` use the full batch each iteration; ``sgd``
        (momentum, Nesterov by default) and ``adam`` go through shuffled mini-batches, one epoch
        per iteration, the penalty of each batch scaled by the full m.
    learning_rate : float
        α of gd, sgd and adam.
    max_iter : int
        Iterations (L-BFGS, gd) or epochs (sgd, adam).
    batch_size : int
        Examples per mini-batch (clipped to m).
    momentum, nesterov : float, bool
        For ``sgd``.
    tol : float
        The full-batch solvers stop when the largest component of ∇J is at most ``tol`` (for
        L-BFGS too, as SciPy's ``gtol``). For sgd and adam, see
        ``n_iter_no_change``.
    n_iter_no_change : int or float
        sgd and adam stop when the monitored score (the validation score with
        ``early_stopping``, else −J) has not improved by at least ``tol`` for more than
        ``n_iter_no_change`` consecutive epochs (scikit-learn's count); 0 or ``np.inf``
        disables this. The step rule's :meth:`~fastnn.optim.GradientDescent.trigger_stopping`
        may go on instead (sgd's "adaptive" schedule: α / 5). As in scikit-learn, it does not
        apply to the full-batch solvers.
    validation : fastnn.Objective, optional
        Held-out data; its cost and score are recorded every iteration.
    early_stopping : bool
        For sgd and adam: monitor the validation score (needs ``validation``) and keep the best
        parameters.
    callbacks : sequence of callables
        ``callback(record)`` after every iteration; returning True stops training.
    verbose : bool
        Show a tqdm progress bar, when the output is a terminal (none in a log file).
    random_state : None, int or numpy.random.Generator
        Shuffling of the mini-batches.
    optimizer_state : object, optional
        A step rule (:func:`fastnn.optim.make_optimizer`) to step with, fresh or from a
        previous call to continue (``partial_fit``); it is returned in ``result.optimizer``.
        By default a fresh one of ``solver`` with ``learning_rate``, ``momentum`` and
        ``nesterov``.
    out : ndarray of shape (P,), optional
        Where training writes the parameters, returned as ``result.theta``: C-contiguous,
        writeable, of the objective's dtype; ``theta`` itself to train in place (as the
        estimators do). A new array by default.
    shuffle : bool
        sgd and adam: draw each epoch's mini-batches in a new random order; False takes the
        rows in order.
    max_fun : int, optional
        L-BFGS's limit on evaluations of J (see :func:`fastnn.lbfgs.lbfgs`).
    samples_seen : int
        Examples seen before this run (``t_`` of the estimators), for sgd's "invscaling"
        schedule; the count goes up by m every epoch.

    Returns
    -------
    result : TrainResult
        With ``theta`` (``out``: the best parameters if training stopped early or was
        interrupted, else the last), ``history`` and ``best_loss``. Ctrl-C stops training
        cleanly with the best parameters so far (``history.stopped == "interrupted"``).

    Raises
    ------
    TrainingDiverged
        When the cost becomes NaN or infinite, carrying the last parameters with a finite cost,
        or rises past ``DIVERGENCE_RATIO`` times the first cost of the run, carrying the best
        parameters so far.

    Warns
    -----
    sklearn.exceptions.ConvergenceWarning
        When L-BFGS stops on its evaluation limit or a failed line search
        (``history.stopped`` is "max_fun" or "abnormal").
    """
    check_choice(solver, "solver", SOLVERS)
    if out is None:
        theta = np.array(theta, dtype=objective.dtype)
    else:
        check_out(out, objective.n_params, objective.dtype)
        if out is not theta:
            out[:] = theta
        theta = out
    batch = objective.m if solver in ("lbfgs", "gd") else max(1, min(batch_size, objective.m))
    backend = objective.computed_by(batch)
    # Beside a backend that does not call BLAS, any BLAS call around the loop (the validation
    # set's forward pass when "auto" gives it to NumPy, a callback) would wake OpenBLAS's
    # threads to spin afterwards, taking the cores from the backend's threads (an L-BFGS fit on
    # digits took six times as long with them).
    blas_limit = (nullcontext() if backend.calls_blas
                  else _blas().limit(limits=1, user_api="blas"))
    stochastic = solver in STOCHASTIC_SOLVERS
    # disable=None: a bar on a terminal only, not one line per update in a log file.
    bar = tqdm(total=max_iter, disable=None if verbose else True, desc=solver, unit="it")
    sigint = _Sigint()
    with blas_limit, bar, sigint.installed():
        monitor = _Monitor(validation, early_stopping and stochastic, tol,
                           n_iter_no_change if stochastic else 0, callbacks, bar)
        optimizer = None
        try:
            if solver == "lbfgs":
                stopped = _run_lbfgs(objective, theta, max_iter, tol, monitor, sigint, max_fun)
            else:
                optimizer = (optimizer_state.astype(objective.dtype) if optimizer_state is not None
                             else make_optimizer(solver, objective.n_params, learning_rate,
                                                 momentum, nesterov, objective.dtype))
                stopped = _run_steps(objective, theta, optimizer, batch, max_iter,
                                     random_state, monitor, sigint,
                                     gtol=None if stochastic else tol,
                                     parallel=backend.parallel_updates,
                                     shuffle=shuffle, samples_seen=samples_seen)
        except _Interrupted:
            stopped = "interrupted"
        except (KeyboardInterrupt, SystemError) as error:
            # Raised inside a compiled call, a KeyboardInterrupt comes out as a SystemError.
            if not (isinstance(error, KeyboardInterrupt)
                    or isinstance(error.__context__, KeyboardInterrupt)):
                raise
            if sigint.requested:  # the second Ctrl-C: abort
                raise KeyboardInterrupt from None
            stopped = "interrupted"
        except _Diverged:
            stopped = "diverged"
    if stopped == "diverged":
        what = ("lower learning_rate_init (--lr)" if solver != "lbfgs"
                else "scale the inputs or raise alpha")
        if monitor.risen is None:
            how, kept = "became NaN or infinite", "The last parameters with a finite cost"
            theta_kept = monitor.last_finite if monitor.last_finite is not None else theta
        else:
            how = (f"rose to {monitor.risen:.3g}, more than {DIVERGENCE_RATIO:g} times its "
                   f"first value {monitor.history.records[0]['cost']:.3g},")
            kept, theta_kept = "The best parameters so far", monitor.best_theta
        monitor.history.stopped = "diverged"
        raise TrainingDiverged(
            f"training diverged: the cost {how} at iteration "
            f"{len(monitor.history) + 1} of solver {solver!r}"
            + (f" with learning rate {learning_rate:g}" if solver != "lbfgs" else "")
            + f"; {what}. {kept} were kept.",
            theta_kept,
            monitor.history,
        )
    if stopped in ("max_fun", "abnormal"):
        from sklearn.exceptions import ConvergenceWarning

        warnings.warn(f"lbfgs stopped before converging ({stopped}): "
                      f"{monitor.history.message}", ConvergenceWarning, stacklevel=2)
    return monitor.result(stopped, theta, optimizer)


def _run_lbfgs(objective, theta, max_iter, tol, monitor, sigint, max_fun=None):
    stop = []

    def callback(x, J):
        monitor.before_write(theta)
        theta[:] = x
        reason = monitor.record(theta, J)
        if reason is not None:
            stop.append(reason)
            raise StopIteration  # L-BFGS ends the minimization cleanly

    def guarded(vec):
        if sigint.requested:  # θ holds the last accepted iterate
            raise _Interrupted
        J, grad = objective(vec)
        if not np.isfinite(J):
            raise _Diverged
        return J, grad

    result = lbfgs(guarded, theta, max_iter, tol, callback, max_fun=max_fun)
    if stop:
        return stop[0]
    monitor.before_write(theta)
    theta[:] = result.x
    monitor.history.message = str(result.message)
    return _lbfgs_reason(result, max_iter)


def _lbfgs_reason(result, max_iter):
    """Why L-BFGS ended, from its status: 0 converged, 1 an iteration or evaluation
    limit, anything else an abnormal end (a line search that found no decrease)."""
    if result.status == 0:
        return "converged"
    if result.status == 1:
        return "max_iter" if result.nit >= max_iter else "max_fun"
    return "abnormal"


def _run_steps(objective, theta, optimizer, batch, max_iter, random_state, monitor, sigint,
               gtol, parallel, shuffle=True, samples_seen=0):
    """Steps of ``optimizer`` over batches of ``batch`` rows, ``max_iter`` epochs; with ``gtol``
    (gd), stop when the largest component of the full-batch gradient is at most ``gtol``. The
    updates run over Numba's threads (``parallel``) with the parallel kernels only: next to
    BLAS's spinning threads they would fight for the cores.

    θ lives in two buffers that take turns: each step reads one and writes the other, so the
    parameters a finite cost was taken at stay intact (for divergence) without a copy; ∇J is
    written into a third, the same every step. The second buffer and ∇J's are the step rule's
    (:meth:`~fastnn.optim.GradientDescent.work_arrays`), so that a run it continues allocates
    nothing P-sized: a ``partial_fit`` of one batch is a whole run, and every fresh array of P
    numbers costs its page faults (glibc hands freed memory back to the kernel): about 1,000 a
    ``partial_fit`` of 784-128-10, which made each call half as slow again."""
    m = objective.m
    rng = np.random.default_rng(random_state)
    current, (spare, grad) = theta, optimizer.work_arrays(theta.shape[0])
    try:
        for _ in range(max_iter):
            order = rng.permutation(m) if batch < m and shuffle else None
            total = 0.0
            for start in range(0, m, batch):
                rows = (None if batch == m else np.arange(start, min(start + batch, m))
                        if order is None else np.sort(order[start:start + batch]))
                J, _ = objective(current, rows=rows, out=grad)
                if not np.isfinite(J):
                    return _keep_last_finite(monitor)
                if gtol is not None and np.abs(grad).max() <= gtol:
                    monitor.record(current, J)
                    return "converged"
                monitor.last_finite = current
                monitor.before_write(spare)
                optimizer.update(current, grad, spare, parallel)
                current, spare = spare, current
                total += J * (m if rows is None else len(rows))
                if sigint.requested:
                    return "interrupted"
            # Full batch: the cost is J at the θ before the step, so record that θ with it.
            # Mini-batch: the epoch's mean batch cost goes with the θ at the end of the epoch.
            reason = monitor.record(monitor.last_finite if batch == m else current, total / m)
            if reason == "diverged":
                return _keep_last_finite(monitor)
            samples_seen += m
            optimizer.iteration_ends(samples_seen)
            if (reason in ("converged", "early_stopping") and gtol is None
                    and not optimizer.trigger_stopping()):
                monitor.no_improvement = 0
                reason = None
            if reason is not None:
                return reason
        return "max_iter"
    finally:
        monitor.last = current  # θ holds it or the best one after result()


def _keep_last_finite(monitor):
    """The last finite θ and the best one may be in the step rule's buffer, which is never
    handed out: copied."""
    if monitor.last_finite is not None:
        monitor.last_finite = monitor.last_finite.copy()
    if monitor.best_theta is not None:
        monitor.best_theta = monitor.best_theta.copy()
    return "diverged"
