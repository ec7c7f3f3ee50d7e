"""What every backend shares: the interface, and data kept in this process."""

from typing import NamedTuple

import numpy as np

from fastnn._validation import Targets, check_targets, check_X


class LocalData(NamedTuple):
    """Checked, converted examples in this process's memory.

    X : ndarray of shape (m, s_1), C-contiguous, in the compute dtype
    targets : fastnn._validation.Targets
    """

    X: np.ndarray
    targets: Targets

    @property
    def m(self):
        return self.X.shape[0]

    @property
    def inputs(self):
        return self.X

    def take(self, rows):
        """The examples ``rows`` (a slice or an index array)."""
        return LocalData(self.X[rows], self.targets.take(rows))


class Backend:
    """The backend interface (see :mod:`fastnn.backends`), with the in-process defaults."""

    in_process = True
    """False for backends that compute elsewhere (on a cluster) on data they keep there."""

    def prepare(self, X, y, layers, dtype, client=None):
        """X and y checked and converted once, as :class:`LocalData`."""
        if client is not None:
            raise ValueError('client: only backend="dask" computes on a cluster; got a '
                             "client with an in-process backend")
        X = check_X(X, layers[0], dtype)
        return LocalData(X, check_targets(y, X.shape[0], layers[-1], dtype))

    def holds(self, X):
        """In-process backends compute on in-memory arrays only."""
        return False

    def loss_and_delta(self, theta, layers, data, activation, loss, need_grad):
        raise NotImplementedError

    def forward(self, theta, layers, X, activation, logits=False):
        raise NotImplementedError
