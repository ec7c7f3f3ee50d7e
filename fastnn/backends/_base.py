"""What every backend shares: the interface, and data kept in this process."""

from typing import NamedTuple

import numpy as np

from fastnn._validation import Targets, check_targets, check_X
from fastnn.network import penalty_mask


class LocalData(NamedTuple):
    """Checked, converted examples in this process's memory, or a mini-batch of them.

    X : ndarray of shape (m_all, s_1), C-contiguous, in the compute dtype
    targets : fastnn._validation.Targets
        For the m_all rows of X.
    rows : ndarray of int64, shape (m,), or None
        The examples of a mini-batch, as indices into X; None for all of them. A mini-batch
        is not copied out of X: the Numba kernels read its rows through the indices.
    """

    X: np.ndarray
    targets: Targets
    rows: np.ndarray | None = None

    @property
    def m(self):
        return self.X.shape[0] if self.rows is None else self.rows.shape[0]

    @property
    def weight_scale(self):
        """``m / Σ w`` of all the examples (1 without weights; see
        :class:`fastnn._validation.Targets`)."""
        return self.targets.weight_scale

    @property
    def inputs(self):
        return self.X if self.rows is None else self.X[self.rows]

    def take(self, rows):
        """The examples ``rows`` (a slice or an index array, into these examples)."""
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(self.m), dtype=np.int64)
        rows = np.asarray(rows, dtype=np.int64)
        return LocalData(self.X, self.targets, rows if self.rows is None else self.rows[rows])

    def materialize(self):
        """``(X, targets)`` of these examples as arrays of their own (a copy for a batch)."""
        if self.rows is None:
            return self.X, self.targets
        return self.X[self.rows], self.targets.take(self.rows)


class Backend:
    """The backend interface (see :mod:`fastnn.backends`), with the in-process defaults."""

    in_process = True
    """False for backends that compute elsewhere (on a cluster) on data they keep there."""

    def prepare(self, X, y, layers, dtype, client=None, *, real=False, sample_weight=None):
        """X, y and the example weights checked and converted once, as :class:`LocalData`;
        ``real``: y holds real-valued targets (an identity output layer)."""
        if client is not None:
            raise ValueError('client: only backend="dask" computes on a cluster; got a '
                             "client with an in-process backend")
        X = check_X(X, layers[0], dtype)
        return LocalData(X, check_targets(y, X.shape[0], layers[-1], dtype, real,
                                          sample_weight))

    def holds(self, X):
        """In-process backends compute on in-memory arrays only."""
        return False

    def loss_and_delta(self, theta, layers, data, activation, output, need_grad):
        """Σ_i w_i Σ_k loss term over the examples of ``data`` and the Δ(l) sums unrolled like
        θ (float64; None unless ``need_grad``); ``output`` is the code of the output layer and
        loss (:data:`fastnn.losses.OUTPUTS`)."""
        raise NotImplementedError

    def forward(self, theta, layers, X, activation, logits=False):
        raise NotImplementedError

    def cost_and_grad(self, theta, layers, data, activation, output, lam, m, need_grad):
        """J and ∇J on the b examples of ``data``, the penalty scaled by the full m:

            J = (1/b) Σ w_i loss terms + (λ/2m) Σ Θ²        ∇J = Δ/b + (λ/m) Θ

        (bias column unpenalized; weights w_i of mean 1 over all m examples, or 1): for a
        mini-batch, the batch estimate of the full objective's data term plus the full
        objective's penalty, so that the batches of an epoch average to the full objective.
        ``grad`` is in the dtype of θ, or None unless ``need_grad``. This default builds them
        from :meth:`loss_and_delta`; a backend may fuse them into its kernels.
        """
        loss_sum, Delta = self.loss_and_delta(theta, layers, data, activation, output,
                                              need_grad)
        weights = theta * penalty_mask(layers)
        with np.errstate(over="ignore"):  # diverged weights give J = inf, for callers to see
            J = loss_sum / data.m + 0.5 * lam * np.square(weights).sum() / m
        if not need_grad:
            return float(J), None
        grad = Delta / data.m + (lam / m) * weights
        return float(J), grad.astype(theta.dtype, copy=False)
