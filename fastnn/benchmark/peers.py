"""The implementations of J and ∇J that are timed: fastnn's backends and its peers.

Every implementation is prepared once per workload, outside the timed call:
``PREPARE[name](layers, X, y, dtype)`` converts the data and sets up what the implementation
needs, and returns ``run(θ) -> (J, ∇J)`` with θ and ∇J unrolled. The peers import their
package when prepared, so that importing this module stays cheap.
"""

import importlib.util
import inspect
import warnings
from collections.abc import Callable

import numpy as np

from fastnn.benchmark.workloads import LAMBDA
from fastnn.cost import Objective
from fastnn.network import n_params, pack, unpack

FASTNN = ("numba-parallel", "numba", "numpy")
OPTIONAL_PEERS = ("sklearn", "torch")
"""Peers that run only where their package is installed (the import name is the peer's)."""
PEERS = ("numpy", "numpy-script", *OPTIONAL_PEERS)
"""What fastnn's kernels are compared with: the NumPy fallback (vectorized matrix products),
a careful stand-alone NumPy script (preallocated buffers, no blocks, no checks), and the MLP
gradients of scikit-learn and PyTorch, where installed."""


def installed(module):
    """True when ``module`` can be imported here (without importing it)."""
    return importlib.util.find_spec(module) is not None


def implementations():
    """Names of the implementations that can run here, fastnn's first."""
    return (*FASTNN, "numpy-script", *(name for name in OPTIONAL_PEERS if installed(name)))


def _fastnn(backend):
    def prepare(layers, X, y, dtype):
        return Objective(layers, X, y, LAMBDA, backend=backend, dtype=dtype)

    return prepare


def _sklearn(layers, X, y, dtype):
    """scikit-learn's own J and ∇J (``MLPClassifier._backprop``) of the labels y one-hot.

    With ``activation="logistic"`` and a 0/1 target matrix, scikit-learn's MLP computes J(Θ)
    with λ = alpha (logistic outputs, the binary log loss summed over outputs and averaged over
    examples, ``(alpha / 2m) Σ W²``) when ``coefs_[l]`` is ``Θ(l)[:, 1:]ᵀ`` and
    ``intercepts_[l]`` is ``Θ(l)[:, 0]``. The estimator gets its layer structure once, here,
    from a one-iteration fit on one row per class; a timed call sets its weights and calls
    ``_backprop``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    K, n = layers[-1], len(layers)
    Y = np.eye(K, dtype=dtype)[y]
    clf = MLPClassifier(hidden_layer_sizes=tuple(layers[1:-1]), activation="logistic",
                        alpha=LAMBDA, solver="sgd", max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X[np.arange(K) % len(X)], np.eye(K, dtype=X.dtype))
    # scikit-learn 1.7 and later take example weights, None for none, after the targets.
    weights = [None] if "sample_weight" in inspect.signature(clf._backprop).parameters else []

    def run(vec):
        thetas = unpack(vec, layers)
        clf.coefs_ = [theta[:, 1:].T.copy() for theta in thetas]
        clf.intercepts_ = [theta[:, 0].copy() for theta in thetas]
        J, coef_grads, intercept_grads = clf._backprop(
            X, Y, *weights, [X] + [None] * (n - 1), [None] * (n - 1),
            [np.empty_like(coef) for coef in clf.coefs_],
            [np.empty_like(intercept) for intercept in clf.intercepts_])
        return J, pack([np.column_stack([b, W.T]) for W, b in zip(coef_grads, intercept_grads)])

    return run


def _numpy_script(layers, X, y, dtype):
    """J and ∇J as a careful NumPy script computes them: sigmoid layers over all m rows at
    once, every activation, δ and gradient in a buffer allocated once, products written into
    them (``out=``), all in the compute dtype, the cost from z(L) as Σ softplus(z) − Σ y z."""
    from scipy.special import expit

    m, K = len(y), layers[-1]
    Y = np.eye(K, dtype=dtype)[y]
    A = [X] + [np.empty((m, s), dtype=dtype) for s in layers[1:]]
    D = [None] + [np.empty((m, s), dtype=dtype) for s in layers[1:]]
    grad = np.zeros(n_params(layers), dtype=dtype)  # (unpack checks that it is finite)
    G = unpack(grad, layers)
    L = len(layers)

    def run(vec):
        thetas = unpack(vec, layers)
        for l, theta in enumerate(thetas):
            np.matmul(A[l], theta[:, 1:].T, out=A[l + 1])
            A[l + 1] += theta[:, 0]
            if l < L - 2:
                expit(A[l + 1], out=A[l + 1])
        Z = A[-1]
        J = (np.logaddexp(0, Z).sum(dtype=np.float64) - np.vdot(Y, Z)) / m
        delta = expit(Z, out=D[-1])
        delta -= Y
        for l in range(L - 2, -1, -1):
            theta = thetas[l]
            np.matmul(delta.T, A[l], out=G[l][:, 1:])
            delta.sum(axis=0, out=G[l][:, 0])
            G[l] /= m
            G[l][:, 1:] += (LAMBDA / m) * theta[:, 1:]
            J += LAMBDA / (2 * m) * np.vdot(theta[:, 1:], theta[:, 1:])
            if l > 0:
                np.matmul(delta, theta[:, 1:], out=D[l])
                D[l] *= A[l]
                D[l] *= 1 - A[l]
                delta = D[l]
        return float(J), grad

    return run


def _torch(layers, X, y, dtype):
    """PyTorch CPU autograd: sigmoid hidden layers, ``binary_cross_entropy_with_logits``
    summed over outputs and averaged over examples, plus (λ/2m) Σ W²."""
    import torch

    m, K = len(y), layers[-1]
    X_t = torch.from_numpy(X)
    Y_t = torch.nn.functional.one_hot(torch.from_numpy(y), K).to(X_t.dtype)

    def run(vec):
        params = [torch.tensor(theta, requires_grad=True) for theta in unpack(vec, layers)]
        A = X_t
        for theta in params[:-1]:
            A = torch.sigmoid(torch.addmm(theta[:, 0], A, theta[:, 1:].T))
        Z = torch.addmm(params[-1][:, 0], A, params[-1][:, 1:].T)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(Z, Y_t, reduction="sum")
        penalty = sum((theta[:, 1:] ** 2).sum() for theta in params)
        J = loss / m + LAMBDA / (2 * m) * penalty
        J.backward()
        return J.item(), pack([theta.grad.numpy() for theta in params])

    return run


PREPARE: dict[str, Callable] = {
    "numba-parallel": _fastnn("numba-parallel"),
    "numba": _fastnn("numba"),
    "numpy": _fastnn("numpy"),
    "numpy-script": _numpy_script,
    "sklearn": _sklearn,
    "torch": _torch,
}
"""Implementation name → ``prepare(layers, X, y, dtype)`` returning ``run(θ) -> (J, ∇J)``."""
