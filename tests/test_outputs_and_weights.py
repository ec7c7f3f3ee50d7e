"""The identity output layer and example weights, in every backend, against the naive
reference, repeated rows, central differences and scikit-learn's own MLP."""

import numpy as np
import pytest

import fastnn
from fastnn.backends import _tuning
from tests import naive
from tests.conftest import make_problem
from tests.oracle import sklearn_cost_and_grad
from tests.test_backends import CASES, scaled_error

REGRESSION_LAYERS = [[6, 1], [6, 7, 3], [6, 7, 5, 2]]


def regression_problem(layers, m, seed=0, dtype=np.float64):
    """Random weights, inputs and real targets (a vector for one output)."""
    thetas, X, _ = make_problem(layers, m=m, target="binary", seed=seed, dtype=dtype)
    Y = np.random.default_rng(seed + 1).normal(scale=2.0, size=(m, layers[-1]))
    return thetas, X, (Y[:, 0] if layers[-1] == 1 else Y)


def integer_weights(m, seed=0):
    """Weights 0 ... 4 (some rows weigh nothing), at least one positive."""
    w = np.random.default_rng(seed).integers(0, 5, size=m)
    w[0] = 3
    return w


# -- the identity output ---------------------------------------------------------------------

@pytest.mark.parametrize("lam", [0.0, 1.3])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("layers", REGRESSION_LAYERS)
def test_identity_output_matches_naive(backend, layers, activation, lam):
    thetas, X, y = regression_problem(layers, m=203)
    options = {"loss": "squared_error", "activation": activation,
               "output_activation": "identity"}
    J, grads = fastnn.cost_and_grad(thetas, X, y, lam=lam, backend=backend, **options)
    J_ref, grads_ref = naive.cost_and_grad(thetas, X, y, lam, **options)
    assert J == pytest.approx(J_ref, rel=1e-12)
    for grad, grad_ref in zip(grads, grads_ref):
        assert scaled_error(grad, grad_ref) < 1e-12
    H = fastnn.forward(thetas, X, activation=activation, output_activation="identity",
                       backend=backend)
    np.testing.assert_allclose(H, naive.forward(thetas, X, activation, "identity"),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layers", REGRESSION_LAYERS)
def test_identity_output_gradient_check(backend, layers, dtype):
    thetas, X, y = regression_problem(layers, m=40)
    thetas = [theta.astype(dtype) for theta in thetas]
    err = fastnn.check_gradients(thetas, X, y, lam=0.6, loss="squared_error",
                                 output_activation="identity", backend=backend,
                                 eps=1e-4 if dtype == np.float64 else 1e-2)
    assert err < (1e-8 if dtype == np.float64 else 2e-2)


@pytest.mark.parametrize("lam", [0.0, 0.3, 4.0])
@pytest.mark.parametrize("layers", [[7, 1], [7, 6, 1], [7, 9, 5, 1]])
def test_identity_output_matches_sklearn_regressor(backend, layers, lam):
    """scikit-learn's MLPRegressor(activation="logistic") computes (1/2m) Σ (h − y)² +
    (λ/2m) Σ W² with an identity output: the same J and ∇J, from its own code."""
    thetas, X, y = regression_problem(layers, m=150)
    J, grads = fastnn.cost_and_grad(thetas, X, y, lam=lam, loss="squared_error",
                                    output_activation="identity", backend=backend)
    J_sk, grads_sk = sklearn_cost_and_grad(thetas, X, y[:, None], lam, regression=True)
    assert J == pytest.approx(J_sk, rel=1e-10)
    for grad, grad_sk in zip(grads, grads_sk):
        np.testing.assert_allclose(grad, grad_sk, rtol=1e-10, atol=1e-10 * np.abs(grad_sk).max())
    # not vacuous: the sigmoid output gives another answer
    J_sigmoid = fastnn.cost(thetas, X, (y > 0).astype(int), lam=lam, loss="squared_error",
                            backend=backend)
    assert J_sigmoid != pytest.approx(J_sk, rel=1e-3)


@pytest.mark.parametrize("layers", REGRESSION_LAYERS)
def test_identity_output_float32_agrees_with_float64(backend, layers):
    thetas, X, y = regression_problem(layers, m=500)
    options = {"loss": "squared_error", "output_activation": "identity", "backend": backend}
    J64, grads64 = fastnn.cost_and_grad(thetas, X, y, lam=0.5, **options)
    thetas32 = [theta.astype(np.float32) for theta in thetas]
    J32, grads32 = fastnn.cost_and_grad(thetas32, X.astype(np.float32), y, lam=0.5, **options)
    assert J32 == pytest.approx(J64, rel=1e-5)
    for grad32, grad64 in zip(grads32, grads64):
        assert grad32.dtype == np.float32
        assert scaled_error(grad32, grad64) < 1e-4


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"output_activation": "identity"}, ValueError, "loss: 'cross_entropy' does not go with"),
    ({"output_activation": "softmax", "loss": "squared_error"}, ValueError,
     "loss: 'squared_error' does not go with"),
    ({"output_activation": "softplus"}, ValueError, "output_activation: expected one of"),
])
def test_identity_output_bad_choices(kwargs, error, message):
    thetas, X, y = regression_problem([6, 1], m=10)
    with pytest.raises(error, match=message):
        fastnn.cost(thetas, X, y, **kwargs)


@pytest.mark.parametrize(("y", "message"), [
    (np.full((10, 3), np.nan), "y: contains NaN or infinity"),
    (np.zeros(10), "y: a vector of targets fits K = 1 output, the network has K = 3"),
    (np.zeros((10, 2)), r"y: expected one column per output unit, K = 3, got shape \(10, 2\)"),
    (np.array(["a"] * 10), "y: expected real-valued targets"),
])
def test_identity_output_bad_targets(y, message):
    thetas, X, _ = regression_problem([6, 3], m=10)
    with pytest.raises((ValueError, TypeError), match=message):
        fastnn.cost(thetas, X, y, loss="squared_error", output_activation="identity")


def test_identity_objective_scores_r2(backend):
    """The validation score of an identity output is R², as scikit-learn computes it."""
    from sklearn.metrics import r2_score

    thetas, X, y = regression_problem([6, 7, 2], m=300)
    w = integer_weights(300)
    objective = fastnn.Objective([6, 7, 2], X, y, 0.0, loss="squared_error",
                                 output_activation="identity", backend=backend,
                                 sample_weight=w)
    theta = fastnn.pack(thetas)
    J, score = objective.cost_and_score(theta)
    H = fastnn.forward(thetas, X, output_activation="identity")
    assert score == pytest.approx(r2_score(y, H, sample_weight=w), rel=1e-12)
    assert J == pytest.approx(objective.cost(theta), rel=1e-12)


# -- example weights -------------------------------------------------------------------------

@pytest.mark.parametrize("lam", [0.0, 1.3])
@pytest.mark.parametrize(("layers", "target", "activation", "loss"), CASES)
def test_weights_match_naive(backend, layers, target, activation, loss, lam):
    thetas, X, y = make_problem(layers, m=203, target=target)
    w = np.random.default_rng(1).uniform(0.0, 3.0, size=203)
    J, grads = fastnn.cost_and_grad(thetas, X, y, lam=lam, loss=loss, activation=activation,
                                    backend=backend, sample_weight=w)
    J_ref, grads_ref = naive.cost_and_grad(thetas, X, y, lam, loss, activation,
                                           sample_weight=w)
    assert J == pytest.approx(J_ref, rel=1e-12)
    for grad, grad_ref in zip(grads, grads_ref):
        assert scaled_error(grad, grad_ref) < 1e-12


@pytest.mark.parametrize("output", ["sigmoid", "identity"])
@pytest.mark.parametrize("m", [7, 300, 2000])
def test_integer_weights_equal_repeated_rows(backend, output, m):
    """Weight k is the row k times (0: the row left out), on both sides of the batch kernel's
    limit."""
    layers = [6, 7, 5, 3]
    if output == "identity":
        thetas, X, y = regression_problem(layers, m=m)
        options = {"loss": "squared_error", "output_activation": "identity"}
    else:
        thetas, X, y = make_problem(layers, m=m, target="multiclass")
        options = {}
    w = integer_weights(m)
    J, grads = fastnn.cost_and_grad(thetas, X, y, lam=0.8, backend=backend, sample_weight=w,
                                    **options)
    J_rep, grads_rep = fastnn.cost_and_grad(thetas, np.repeat(X, w, axis=0),
                                            np.repeat(y, w, axis=0), lam=0.8, backend=backend,
                                            **options)
    assert J == pytest.approx(J_rep, rel=1e-12)
    for grad, grad_rep in zip(grads, grads_rep):
        assert scaled_error(grad, grad_rep) < 1e-12


@pytest.mark.parametrize("weights", [np.ones(333), 2.5], ids=["ones", "number"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_equal_weights_are_no_weights(backend, dtype, weights):
    """Equal weights (of 1, or one number for every example, as in scikit-learn) give bitwise
    what no weights give."""
    thetas, X, y = make_problem([6, 7, 4], m=333, target="multiclass", dtype=dtype)
    J, grads = fastnn.cost_and_grad(thetas, X, y, lam=0.5, backend=backend)
    J_w, grads_w = fastnn.cost_and_grad(thetas, X, y, lam=0.5, backend=backend,
                                        sample_weight=weights)
    assert J_w == J
    assert all(np.array_equal(g, g_w) for g, g_w in zip(grads, grads_w))


def test_scaled_weights_scale_the_penalty(backend):
    """The data term is a weighted mean and the penalty is over Σ w (scikit-learn's
    convention), so weights c w with λ are weights w with λ / c."""
    thetas, X, y = make_problem([6, 7, 4], m=150, target="multilabel")
    w = integer_weights(150)
    J, grads = fastnn.cost_and_grad(thetas, X, y, lam=0.5, backend=backend, sample_weight=w)
    J_s, grads_s = fastnn.cost_and_grad(thetas, X, y, lam=0.5 * 0.37, backend=backend,
                                        sample_weight=w * 0.37)
    assert J_s == pytest.approx(J, rel=1e-13)
    assert all(scaled_error(g_s, g) < 1e-13 for g, g_s in zip(grads, grads_s))


@pytest.mark.parametrize("output", ["sigmoid", "identity"])
@pytest.mark.parametrize("lam", [0.0, 0.9])
def test_weights_gradient_check(backend, output, lam):
    layers = [5, 6, 3]
    if output == "identity":
        thetas, X, y = regression_problem(layers, m=30)
        options = {"loss": "squared_error", "output_activation": "identity"}
    else:
        thetas, X, y = make_problem(layers, m=30, target="multiclass")
        options = {}
    w = np.random.default_rng(2).uniform(0.0, 4.0, size=30)
    err = fastnn.check_gradients(thetas, X, y, lam=lam, backend=backend, sample_weight=w,
                                 **options)
    assert err < 1e-8


@pytest.mark.parametrize("lam", [0.0, 2.0])
@pytest.mark.parametrize("regression", [False, True])
def test_weights_match_sklearn(backend, regression, lam):
    """scikit-learn's MLPs weigh examples the same way (weighted mean, penalty over Σ w)."""
    layers = [7, 6, 1] if regression else [7, 6, 4]
    if regression:
        thetas, X, y = regression_problem(layers, m=120)
        Y, options = y[:, None], {"loss": "squared_error", "output_activation": "identity"}
    else:
        thetas, X, Y = make_problem(layers, m=120, target="multilabel")
        y, options = Y, {}
    w = np.random.default_rng(3).uniform(0.0, 2.0, size=120)
    J, grads = fastnn.cost_and_grad(thetas, X, y, lam=lam, backend=backend, sample_weight=w,
                                    **options)
    J_sk, grads_sk = sklearn_cost_and_grad(thetas, X, Y, lam, regression, w)
    assert J == pytest.approx(J_sk, rel=1e-10)
    for grad, grad_sk in zip(grads, grads_sk):
        np.testing.assert_allclose(grad, grad_sk, rtol=1e-10, atol=1e-10 * np.abs(grad_sk).max())


@pytest.mark.parametrize("min_params", [0, _tuning.BATCH_MIN_PARAMS])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weighted_mini_batches_average_to_the_full_gradient(monkeypatch, dtype, min_params):
    """The batches of an epoch average to the full J and ∇J with weights too (the batch
    term is its rows' weighted sum scaled by m / (b Σ w), the penalty the full one), in the
    batch kernel and the chunked one; serial and parallel agree bitwise."""
    monkeypatch.setattr(_tuning, "BATCH_MIN_PARAMS", min_params)
    layers = [9, 8, 5, 3]
    m, batch = 1200, 200
    thetas, X, y = make_problem(layers, m=m, target="multiclass", dtype=dtype)
    w = np.random.default_rng(4).uniform(0.0, 3.0, size=m)
    theta = fastnn.pack(thetas)
    order = np.random.default_rng(5).permutation(m)
    for backend in fastnn.available_backends():
        objective = fastnn.Objective(layers, X, y, lam=0.4, backend=backend, dtype=dtype,
                                     sample_weight=w)
        J_full, grad_full = objective(theta)
        parts = [objective(theta, rows=np.sort(order[start:start + batch]))
                 for start in range(0, m, batch)]
        tolerance = 1e-12 if dtype == np.float64 else 1e-5
        assert np.mean([J for J, _ in parts]) == pytest.approx(J_full, rel=tolerance)
        mean_grad = np.mean([grad.astype(np.float64) for _, grad in parts], axis=0)
        assert scaled_error(mean_grad, grad_full) < tolerance
    rows = np.sort(order[:batch])
    serial = fastnn.Objective(layers, X, y, lam=0.4, backend="numba", dtype=dtype,
                              sample_weight=w)(theta, rows=rows)
    parallel = fastnn.Objective(layers, X, y, lam=0.4, backend="numba-parallel", dtype=dtype,
                                sample_weight=w)(theta, rows=rows)
    assert serial[0] == parallel[0] and np.array_equal(serial[1], parallel[1])


@pytest.mark.parametrize(("weights", "error", "message"), [
    (np.ones(9), ValueError, r"sample_weight: expected shape \(10,\)"),
    (np.ones((10, 1)), ValueError, r"sample_weight: expected shape \(10,\)"),
    (np.r_[-1.0, np.ones(9)], ValueError, "sample_weight: expected weights >= 0, got -1.0"),
    (np.r_[np.nan, np.ones(9)], ValueError, "sample_weight: contains NaN or infinity"),
    (np.r_[np.inf, np.ones(9)], ValueError, "sample_weight: contains NaN or infinity"),
    (np.zeros(10), ValueError, "sample_weight: every weight is zero"),
    (np.array(["a"] * 10), TypeError, "sample_weight: expected numbers"),
])
def test_bad_weights_name_the_argument(backend, weights, error, message):
    thetas, X, y = make_problem([6, 3], m=10, target="multiclass")
    with pytest.raises(error, match=message):
        fastnn.cost_and_grad(thetas, X, y, backend=backend, sample_weight=weights)


def test_weights_are_not_modified():
    thetas, X, y = make_problem([6, 3], m=10, target="multiclass")
    w = np.arange(1.0, 11.0)
    fastnn.cost_and_grad(thetas, X, y, sample_weight=w)
    np.testing.assert_array_equal(w, np.arange(1.0, 11.0))


def test_weighted_accuracy(backend):
    """The validation score of a sigmoid output is the weighted fraction predicted right."""
    thetas, X, y = make_problem([6, 7, 4], m=300, target="multiclass")
    w = integer_weights(300)
    objective = fastnn.Objective([6, 7, 4], X, y, backend=backend, sample_weight=w)
    right = fastnn.predict(thetas, X) == y
    assert objective.score(fastnn.pack(thetas)) == pytest.approx(np.average(right, weights=w),
                                                                 rel=1e-14)
