"""scikit-learn's MLPClassifier as an outside oracle.

Its own loss and gradient (``_backprop``), with logistic units and a multi-label indicator
target, are exactly J(Θ) and ∇J with λ = alpha: see :mod:`tests.oracle`.
"""

import numpy as np
import pytest

import fastnn
from tests.conftest import make_problem
from tests.oracle import sklearn_cost_and_grad


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
