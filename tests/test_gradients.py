"""Backpropagation against central differences, and one example worked by hand."""

import numpy as np
import pytest

import fastnn
from tests.conftest import debug_problem, make_problem

DEPTHS = {2: [4], 3: [4, 5], 4: [4, 5, 3]}
OUTPUTS = {"binary": 1, "multiclass": 3, "multilabel": 3}


@pytest.mark.parametrize("lam", [0.0, 3.0])
def test_debug_network(backend, lam):
    thetas, X, y = debug_problem()
    assert fastnn.check_gradients(thetas, X, y, lam=lam, backend=backend) < 1e-9


@pytest.mark.parametrize("lam", [0.0, 0.7])
@pytest.mark.parametrize("depth", sorted(DEPTHS))
@pytest.mark.parametrize("target", sorted(OUTPUTS))
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "identity"])
@pytest.mark.parametrize("loss", ["cross_entropy", "squared_error"])
def test_random_networks(backend, loss, activation, target, depth, lam):
    layers = [*DEPTHS[depth], OUTPUTS[target]]
    thetas, X, y = make_problem(layers, m=75, target=target,
                                 avoid_kink=activation == "relu")
    err = fastnn.check_gradients(
        thetas, X, y, lam=lam, loss=loss, activation=activation, backend=backend
    )
    assert err < 1e-7


def test_check_gradients_detects_a_wrong_gradient(monkeypatch):
    """The check must fail when backprop is off: scale the gradient the objective returns."""
    thetas, X, y = debug_problem()
    evaluate = fastnn.Objective._evaluate

    def off_by_a_bit(self, vec, need_grad, rows=None):
        J, grad = evaluate(self, vec, need_grad, rows)
        return J, None if grad is None else grad * 1.001

    monkeypatch.setattr(fastnn.Objective, "_evaluate", off_by_a_bit)
    assert fastnn.check_gradients(thetas, X, y, backend="numpy") > 1e-4


def test_worked_by_hand(backend):
    """One input, one output, Θ = [[0, 0]]: h = σ(0) = 1/2 whatever x is.

    With y = 1, x = 2, λ = 1, m = 1 and Θ = [[0, 0]]: J = −log(1/2) = log 2,
    D = [h − y, (h − y) x] + [0, λ Θ_11] = [−1/2, −1].
    """
    thetas = [np.zeros((1, 2))]
    J, (D,) = fastnn.cost_and_grad(thetas, [[2.0]], [1], lam=1.0, backend=backend)
    assert J == pytest.approx(np.log(2), rel=1e-15)
    np.testing.assert_allclose(D, [[-0.5, -1.0]], rtol=1e-15)

    thetas = [np.array([[0.0, 0.5]])]  # now λ contributes: J += (λ/2m) 0.5², D_11 += λ 0.5
    J, (D,) = fastnn.cost_and_grad(thetas, [[0.0]], [1], lam=1.0, backend=backend)
    assert J == pytest.approx(np.log(2) + 0.125, rel=1e-15)
    np.testing.assert_allclose(D, [[-0.5, 0.5]], rtol=1e-15)
