"""scikit-learn's MLPClassifier as an outside oracle.

With ``activation="logistic"`` and a multi-label indicator target it uses logistic outputs and
the binary log loss summed over outputs and averaged over examples, plus
``(alpha / 2m) Σ W²`` over ``coefs_``: exactly J(Θ) with λ = alpha, when ``coefs_[l]`` is
``Θ(l)[:, 1:]ᵀ`` and ``intercepts_[l]`` is ``Θ(l)[:, 0]``.
"""

import inspect
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

import fastnn
from tests.conftest import make_problem


def sklearn_cost_and_grad(thetas, X, Y, lam):
    layers = fastnn.layers_of(thetas)
    clf = MLPClassifier(hidden_layer_sizes=layers[1:-1], activation="logistic", alpha=lam,
                        solver="sgd", max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, Y)  # sets up the layer structure; the weights are replaced below
    clf.coefs_ = [theta[:, 1:].T.copy() for theta in thetas]
    clf.intercepts_ = [theta[:, 0].copy() for theta in thetas]
    activations = [X] + [None] * (len(layers) - 1)
    deltas = [None] * (len(layers) - 1)
    coef_grads = [np.empty_like(coef) for coef in clf.coefs_]
    intercept_grads = [np.empty_like(intercept) for intercept in clf.intercepts_]
    args = [X, Y, activations, deltas, coef_grads, intercept_grads]
    if "sample_weight" in inspect.signature(clf._backprop).parameters:
        args.insert(2, None)
    J, coef_grads, intercept_grads = clf._backprop(*args)
    grads = [np.column_stack([b, W.T]) for W, b in zip(coef_grads, intercept_grads)]
    return J, grads


@pytest.mark.parametrize("lam", [0.0, 0.3, 4.0])
@pytest.mark.parametrize("layers", [[7, 4], [7, 6, 4], [7, 9, 5, 4]])
def test_matches_sklearn(backend, layers, lam):
    thetas, X, Y = make_problem(layers, m=150, target="multilabel")
    J, grads = fastnn.cost_and_grad(thetas, X, Y, lam=lam, backend=backend)
    J_sk, grads_sk = sklearn_cost_and_grad(thetas, X, Y, lam)
    assert J == pytest.approx(J_sk, rel=1e-10)
    for grad, grad_sk in zip(grads, grads_sk):
        np.testing.assert_allclose(grad, grad_sk, rtol=1e-10, atol=1e-10 * np.abs(grad_sk).max())


def test_oracle_is_sensitive():
    """A different λ changes sklearn's answer: the comparison above is not vacuous."""
    thetas, X, Y = make_problem([7, 6, 4], m=150, target="multilabel")
    J, grads = fastnn.cost_and_grad(thetas, X, Y, lam=0.3, backend="numpy")
    J_sk, grads_sk = sklearn_cost_and_grad(thetas, X, Y, 0.31)
    assert J != pytest.approx(J_sk, rel=1e-10)
    assert not np.allclose(grads[0], grads_sk[0], rtol=1e-10, atol=0)
