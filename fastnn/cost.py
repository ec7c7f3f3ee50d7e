"""The regularized cost J(Θ), its gradient D(l) = ∂J/∂Θ(l), outputs, predictions, and checks.

    J = (1/m) Σ_i Σ_k loss term(h_k(x(i)), y_k(i)) + (λ / 2m) Σ_l Σ_j Σ_{i≥1} Θ(l)_{j,i}²
    D(l) = Δ(l) / m + (λ/m) Θ(l), except D(l)[:, 0] = Δ(l)[:, 0] / m

The backends return the sums over examples; the division by m and the penalty are added here,
the same way for every backend.
"""

import numpy as np

from fastnn._validation import (
    check_choice,
    check_lam,
    check_layers,
    check_targets,
    check_thetas,
    check_X,
)
from fastnn.activations import ACTIVATIONS
from fastnn.backends import auto_backend, available_backends, get_backend
from fastnn.losses import LOSSES
from fastnn.network import n_params, pack, penalty_mask, unpack

__all__ = ["Objective", "check_gradients", "cost", "cost_and_grad", "forward", "predict"]


class Objective:
    """J(θ) and ∇J(θ) of fixed data, as functions of the unrolled parameters θ.

    The data are validated and converted once, here; each evaluation then goes straight to the
    backend. ``objective(vec)`` returns ``(J, grad)``, the form optimizers such as
    :func:`scipy.optimize.minimize` with ``jac=True`` expect.

    Parameters
    ----------
    layers : sequence of int
        Layer sizes ``[s_1, ..., s_L]``.
    X : array-like of shape (m, s_1)
        Inputs; converted once to ``dtype``.
    y : array-like of shape (m,) or (m, K)
        Integer labels ``0 ... K-1`` (K ≥ 2), a 0/1 vector (K = 1), or a 0/1 matrix.
    lam : float
        λ ≥ 0, the weight of the penalty on all but the bias column.
    loss : {"cross_entropy", "squared_error"}
    activation : {"sigmoid", "tanh", "relu"}
        Activation of the hidden layers (the output layer is always the sigmoid).
    backend : {"auto", "numpy", "numba", "numba-parallel", "dask"}
        ``"dask"``: X and y (Dask arrays chunked by rows, or in-memory arrays) are kept on the
        workers of a Dask cluster and the sums over examples are computed there (see
        :mod:`fastnn.backends._dask`); needs ``pip install "fastnn[dask]"``.
    dtype : float32 or float64
        The dtype of X, θ and the gradient inside the computation.
    client : distributed.Client, optional
        The cluster for ``backend="dask"``; by default Dask's default client.
    """

    def __init__(self, layers, X, y, lam=0.0, *, loss="cross_entropy", activation="sigmoid",
                 backend="auto", dtype=np.float64, client=None):
        self.layers = check_layers(layers)
        self.dtype = np.dtype(dtype)
        self.backend = check_choice(backend, "backend", ("auto", *available_backends(), "dask"))
        self.lam = check_lam(lam)
        self.loss = check_choice(loss, "loss", LOSSES)
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        if self.backend == "dask":
            from fastnn.backends import _dask

            self.X = _dask.DistributedData(X, y, self.layers, self.dtype, client)
            self.m, self.targets = self.X.m, None
        else:
            self.X = check_X(X, self.layers[0], self.dtype)
            self.m = self.X.shape[0]
            self.targets = check_targets(y, self.m, self.layers[-1], self.dtype)
        self.n_params = n_params(self.layers)
        self._mask = penalty_mask(self.layers)

    def _backend(self):
        if self.backend == "dask":
            from fastnn.backends import _dask

            return _dask
        return get_backend(self.backend, self.layers)

    def _evaluate(self, vec, need_grad, rows=None):
        """J and ∇J on the examples ``rows`` (all when None), penalty scaled by the full m.

        With b examples in ``rows``: ``J = (1/b) Σ_rows loss terms + (λ/2m) Σ Θ²`` and
        ``∇J = Δ/b + (λ/m) Θ`` (bias column unpenalized): the batch estimate of the full
        objective's data term, plus the full objective's penalty.
        """
        vec = np.ascontiguousarray(vec, dtype=self.dtype)
        X, targets, b = self.X, self.targets, self.m
        if rows is not None and self.backend == "dask":
            X = X.take(rows)
            b = X.m
        elif rows is not None:
            X, targets = X[rows], targets.take(rows)
            b = X.shape[0]
        backend = self._backend()
        loss_sum, Delta = backend.loss_and_delta(
            vec, self.layers, X, targets, self.activation, self.loss, need_grad
        )
        weights = vec * self._mask
        with np.errstate(over="ignore"):  # diverged weights give J = inf, for callers to see
            J = loss_sum / b + 0.5 * self.lam * np.square(weights).sum() / self.m
        if not need_grad:
            return float(J), None
        grad = Delta / b + (self.lam / self.m) * weights
        return float(J), grad.astype(self.dtype, copy=False)

    def __call__(self, vec, rows=None):
        """``(J, grad)`` at θ = ``vec``; ``grad`` of shape (P,) in the objective's dtype.

        ``rows`` (a slice or index array) restricts the data term to a mini-batch.
        """
        return self._evaluate(vec, need_grad=True, rows=rows)

    def backend_name(self):
        """The backend that evaluates this objective (``"auto"`` resolved)."""
        return self.backend if self.backend != "auto" else auto_backend(self.layers)

    def cost(self, vec):
        """J at θ = ``vec`` (no backpropagation)."""
        return self._evaluate(vec, need_grad=False)[0]

    def forward(self, vec):
        """Outputs h_Θ(x) of the objective's examples, shape (m, K)."""
        vec = np.ascontiguousarray(vec, dtype=self.dtype)
        return self._backend().forward(vec, self.layers, self.X, self.activation)

    def accuracy(self, vec):
        """Fraction of examples predicted right (every label right, for a target matrix)."""
        if self.backend == "dask":
            raise ValueError('accuracy: not available with backend="dask"; validate on '
                             "in-memory data")
        H = self.forward(vec)
        if self.targets.is_matrix:
            return float(((H >= 0.5) == self.targets.Y).all(axis=1).mean())
        if H.shape[1] == 1:
            return float(((H[:, 0] >= 0.5) == self.targets.labels).mean())
        return float((H.argmax(axis=1) == self.targets.labels).mean())


def _objective(thetas, X, y, lam, loss, activation, backend, client=None):
    layers = check_thetas(thetas)
    dtype = np.result_type(*thetas)
    objective = Objective(layers, X, y, lam, loss=loss, activation=activation, backend=backend,
                          dtype=dtype, client=client)
    return objective, pack(thetas)


def cost(thetas, X, y, lam=0.0, *, loss="cross_entropy", activation="sigmoid", backend="auto",
         client=None):
    """The regularized cost J(Θ).

    Parameters
    ----------
    thetas : list of ndarray
        ``thetas[l]`` of shape ``(s_{l+2}, s_{l+1} + 1)``, float32 or float64; their common dtype
        is the dtype of the computation.
    X : array-like of shape (m, s_1)
    y : array-like of shape (m,) or (m, K)
        Integer labels ``0 ... K-1`` (K ≥ 2), a 0/1 vector (K = 1), or a 0/1 matrix.
    lam : float, default 0
        λ ≥ 0.
    loss : {"cross_entropy", "squared_error"}, default "cross_entropy"
    activation : {"sigmoid", "tanh", "relu"}, default "sigmoid"
        Activation of the hidden layers; the output layer is always the sigmoid.
    backend : {"auto", "numpy", "numba", "numba-parallel", "dask"}, default "auto"
        ``"dask"`` computes on the Dask cluster of ``client`` (X and y as Dask arrays chunked
        by rows, or in-memory arrays); see :class:`Objective`.
    client : distributed.Client, optional
        For ``backend="dask"``; by default Dask's default client.

    Returns
    -------
    J : float
    """
    objective, vec = _objective(thetas, X, y, lam, loss, activation, backend, client)
    return objective.cost(vec)


def cost_and_grad(thetas, X, y, lam=0.0, *, loss="cross_entropy", activation="sigmoid",
                  backend="auto", client=None):
    """The regularized cost J(Θ) and its gradient by backpropagation.

    Parameters are those of :func:`cost`.

    Returns
    -------
    J : float
    grads : list of ndarray
        ``grads[l] = ∂J/∂Θ(l)``, shaped like ``thetas[l]``, in the dtype of the computation.
    """
    objective, vec = _objective(thetas, X, y, lam, loss, activation, backend, client)
    J, grad = objective(vec)
    return J, unpack(grad, objective.layers)


def forward(thetas, X, *, loss="cross_entropy", activation="sigmoid", backend="auto",
            logits=False):
    """Forward propagation: the outputs h_Θ(x) of every example.

    Parameters
    ----------
    thetas : list of ndarray
        ``thetas[l]`` of shape ``(s_{l+2}, s_{l+1} + 1)``.
    X : array-like of shape (m, s_1)
    loss : {"cross_entropy", "squared_error"}, default "cross_entropy"
        Checked and accepted like everywhere else; the outputs do not depend on it.
    activation : {"sigmoid", "tanh", "relu"}, default "sigmoid"
    backend : {"auto", "numpy", "numba", "numba-parallel"}, default "auto"
    logits : bool, default False
        Return the output layer's pre-activations z(L) instead of h = σ(z(L)).

    Returns
    -------
    H : ndarray of shape (m, K)
        Sigmoid outputs (or z(L)), in the dtype of ``thetas``.
    """
    layers = check_thetas(thetas)
    vec = pack(thetas)
    X = check_X(X, layers[0], vec.dtype)
    check_choice(loss, "loss", LOSSES)
    check_choice(activation, "activation", ACTIVATIONS)
    return get_backend(backend, layers).forward(vec, layers, X, activation, logits)


def predict(thetas, X, *, loss="cross_entropy", activation="sigmoid", backend="auto"):
    """Predicted labels: ``argmax_k h_k(x)`` for K ≥ 2, ``[h(x) ≥ 0.5]`` for K = 1.

    Parameters are those of :func:`forward`.

    Returns
    -------
    labels : ndarray of int64, shape (m,)
    """
    H = forward(thetas, X, loss=loss, activation=activation, backend=backend)
    if H.shape[1] == 1:
        return (H[:, 0] >= 0.5).astype(np.int64)
    return H.argmax(axis=1).astype(np.int64)


def check_gradients(thetas, X, y, lam=0.0, *, eps=1e-4, loss="cross_entropy",
                    activation="sigmoid", backend="auto"):
    """Compare backpropagation with central differences on the unrolled θ.

    ``num_p = (J(θ + ε e_p) − J(θ − ε e_p)) / 2ε`` for every parameter p (2P evaluations of J:
    meant for small networks).

    Parameters are those of :func:`cost`, plus ``eps`` (ε, default 1e-4).

    Returns
    -------
    err : float
        ``‖num − backprop‖ / ‖num + backprop‖``; about 1e-9 or less in float64 for a correct
        gradient.
    """
    objective, vec = _objective(thetas, X, y, lam, loss, activation, backend)
    _, grad = objective(vec)
    numerical = np.empty(vec.shape[0])
    for p in range(vec.shape[0]):
        saved = vec[p]
        vec[p] = saved + eps
        J_plus = objective.cost(vec)
        vec[p] = saved - eps
        J_minus = objective.cost(vec)
        vec[p] = saved
        numerical[p] = (J_plus - J_minus) / (2 * eps)
    denominator = np.linalg.norm(numerical + grad)
    difference = np.linalg.norm(numerical - grad)
    return float(difference / denominator) if denominator > 0 else float(difference)
