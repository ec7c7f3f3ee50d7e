"""The softmax output (multinomial cross-entropy), the exp output (Poisson loss) and the
identity hidden activation, in every backend and dtype: against the naive reference, each
other, central differences and scikit-learn's own MLP."""

import numpy as np
import pytest

import fastnn
from fastnn.backends import _numba, _tuning
from fastnn.losses import REGRESSION_LOSSES
from fastnn.network import n_params
from tests import naive
from tests.conftest import make_problem
from tests.oracle import sklearn_cost_and_grad
from tests.test_backends import scaled_error

SOFTMAX = {"loss": "cross_entropy", "output_activation": "softmax"}
POISSON = {"loss": "poisson", "output_activation": "exp"}


def softmax_problem(layers, m, target="multiclass", seed=0, dtype=np.float64):
    """Labels 0 ... K−1, or the same as a one-hot matrix (``target="onehot"``)."""
    thetas, X, y = make_problem(layers, m=m, target="multiclass", seed=seed, dtype=dtype)
    return thetas, X, (np.eye(layers[-1], dtype=int)[y] if target == "onehot" else y)


def poisson_problem(layers, m, seed=0, dtype=np.float64):
    """Counts drawn around 1.5, zeros among them (the 0 log 0 of the deviance's constant)."""
    thetas, X, _ = make_problem(layers, m=m, target="binary", seed=seed, dtype=dtype)
    Y = np.random.default_rng(seed + 1).poisson(1.5, size=(m, layers[-1])).astype(float)
    return thetas, X, (Y[:, 0] if layers[-1] == 1 else Y)


PROBLEMS = {
    "softmax": (softmax_problem, SOFTMAX),
    "poisson": (poisson_problem, POISSON),
}


# -- against the naive reference and across backends -----------------------------------------

@pytest.mark.parametrize("lam", [0.0, 1.3])
@pytest.mark.parametrize("target", ["multiclass", "onehot"])
@pytest.mark.parametrize(("layers", "activation"), [([6, 2], "sigmoid"), ([6, 7, 3], "tanh"),
                                                    ([6, 7, 5, 10], "relu")])
def test_softmax_matches_naive(backend, layers, activation, target, lam):
    thetas, X, y = softmax_problem(layers, m=203, target=target)
    J, grads = fastnn.cost_and_grad(thetas, X, y, lam=lam, activation=activation,
                                    backend=backend, **SOFTMAX)
    J_ref, grads_ref = naive.cost_and_grad(thetas, X, y, lam, activation=activation, **SOFTMAX)
    assert J == pytest.approx(J_ref, rel=1e-12)
    for grad, grad_ref in zip(grads, grads_ref):
        assert scaled_error(grad, grad_ref) < 1e-12
    assert fastnn.cost(thetas, X, y, lam=lam, activation=activation, backend=backend,
                       **SOFTMAX) == pytest.approx(J, rel=1e-14)
    H = fastnn.forward(thetas, X, activation=activation, output_activation="softmax",
                       backend=backend)
    np.testing.assert_allclose(H, naive.forward(thetas, X, activation, "softmax"),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(H.sum(axis=1), 1.0, rtol=1e-14)
    labels = fastnn.predict(thetas, X, activation=activation, output_activation="softmax",
                            backend=backend)
    np.testing.assert_array_equal(labels, H.argmax(axis=1))


@pytest.mark.parametrize("lam", [0.0, 1.3])
@pytest.mark.parametrize(("layers", "activation"), [([6, 1], "sigmoid"), ([6, 7, 3], "tanh"),
                                                    ([6, 7, 5, 2], "identity")])
def test_poisson_matches_naive(backend, layers, activation, lam):
    thetas, X, y = poisson_problem(layers, m=203)
    J, grads = fastnn.cost_and_grad(thetas, X, y, lam=lam, activation=activation,
                                    backend=backend, **POISSON)
    J_ref, grads_ref = naive.cost_and_grad(thetas, X, y, lam, activation=activation, **POISSON)
    assert J == pytest.approx(J_ref, rel=1e-12)
    for grad, grad_ref in zip(grads, grads_ref):
        assert scaled_error(grad, grad_ref) < 1e-12
    H = fastnn.forward(thetas, X, activation=activation, output_activation="exp",
                       backend=backend)
    np.testing.assert_allclose(H, naive.forward(thetas, X, activation, "exp"), rtol=1e-12)


@pytest.mark.parametrize("min_params", [0, _tuning.BATCH_MIN_PARAMS])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("layers", "activation"), [([40, 31, 28, 4], "identity"),
                                                    ([40, 31, 32, 4], "tanh")])
@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_kernels_agree_with_numpy(monkeypatch, problem, layers, activation, dtype,
                                  min_params):
    """The chunked kernel unit-major (layers below NARROW units) and as rows, and the batch
    kernel (``min_params`` 0) give NumPy's J and ∇J, with example weights; serial and
    parallel bitwise equal."""
    monkeypatch.setattr(_tuning, "BATCH_MIN_PARAMS", min_params)
    make, options = PROBLEMS[problem]
    m = 300
    thetas, X, y = make(layers, m=m, seed=3, dtype=dtype)
    w = np.random.default_rng(5).uniform(0.0, 3.0, size=m)
    choice = _numba.choose_kernel(layers, m, n_params(layers), cost_and_grad=True)
    assert choice.batch == (min_params == 0)
    options = dict(options, activation=activation, sample_weight=w, lam=0.4)
    J_ref, grads_ref = fastnn.cost_and_grad(thetas, X, y, backend="numpy", **options)
    J, grads = fastnn.cost_and_grad(thetas, X, y, backend="numba", **options)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    assert J == pytest.approx(J_ref, rel=tolerance)
    for grad, grad_ref in zip(grads, grads_ref):
        assert grad.dtype == dtype
        assert scaled_error(grad, grad_ref) < tolerance
    J_parallel, grads_parallel = fastnn.cost_and_grad(thetas, X, y, backend="numba-parallel",
                                                      **options)
    assert J_parallel == J
    assert all(np.array_equal(a, b) for a, b in zip(grads_parallel, grads))


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_float32_agrees_with_float64(backend, problem):
    make, options = PROBLEMS[problem]
    thetas, X, y = make([6, 7, 4], m=500)
    J64, grads64 = fastnn.cost_and_grad(thetas, X, y, lam=0.5, backend=backend, **options)
    thetas32 = [theta.astype(np.float32) for theta in thetas]
    J32, grads32 = fastnn.cost_and_grad(thetas32, X.astype(np.float32), y, lam=0.5,
                                        backend=backend, **options)
    assert J32 == pytest.approx(J64, rel=1e-5)
    for grad32, grad64 in zip(grads32, grads64):
        assert grad32.dtype == np.float32
        assert scaled_error(grad32, grad64) < 1e-4


def test_softmax_saturated_logits_stay_finite(backend):
    """Logits of ±800: the shifted exponentials are ≤ 1 and the normalizer ≥ 1, so J is the
    exact z_max − z_y and δ = h − y, where e^{800} would overflow: example 0 is right
    (term 0, δ = 0), example 1 has h = (1, 0, 0) for class 1 (term 1600, δ = (1, −1, 0))."""
    thetas = [np.array([[0.0, 800.0], [0.0, -800.0], [0.0, 0.0]])]
    X, y = np.array([[1.0], [1.0]]), np.array([0, 1])
    J, (D,) = fastnn.cost_and_grad(thetas, X, y, backend=backend, **SOFTMAX)
    assert J == pytest.approx(1600.0 / 2, rel=1e-15)
    np.testing.assert_allclose(D, [[0.5, 0.5], [-0.5, -0.5], [0.0, 0.0]], atol=1e-300)


# -- central differences ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("lam", [0.0, 0.7])
@pytest.mark.parametrize("layers", [[4, 2], [4, 5, 3], [4, 5, 3, 6]])
@pytest.mark.parametrize("target", ["multiclass", "onehot"])
def test_softmax_gradient_check(backend, target, layers, lam, dtype):
    thetas, X, y = softmax_problem(layers, m=60, target=target, dtype=dtype)
    w = np.random.default_rng(2).uniform(0.5, 2.0, size=60)
    err = fastnn.check_gradients(thetas, X, y, lam=lam, backend=backend, sample_weight=w,
                                 eps=1e-4 if dtype == np.float64 else 1e-2, **SOFTMAX)
    assert err < (1e-8 if dtype == np.float64 else 2e-2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layers", [[4, 1], [4, 5, 3]])
def test_poisson_gradient_check(backend, layers, dtype):
    thetas, X, y = poisson_problem(layers, m=60, dtype=dtype)
    err = fastnn.check_gradients(thetas, X, y, lam=0.5, backend=backend,
                                 eps=1e-4 if dtype == np.float64 else 1e-2, **POISSON)
    assert err < (1e-8 if dtype == np.float64 else 2e-2)


@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
@pytest.mark.parametrize("layers", [[4, 5, 3], [4, 5, 3, 3]])
def test_identity_activation_gradient_check(backend, layers, output):
    thetas, X, y = make_problem(layers, m=60, target="multiclass")
    err = fastnn.check_gradients(thetas, X, y, lam=0.5, activation="identity",
                                 output_activation=output, backend=backend)
    assert err < 1e-8


# -- scikit-learn's own loss and gradient ----------------------------------------------------

@pytest.mark.parametrize("lam", [0.0, 0.3, 4.0])
@pytest.mark.parametrize("layers", [[7, 3], [7, 6, 4], [7, 9, 5, 10]])
def test_softmax_matches_sklearn(backend, layers, lam):
    """scikit-learn's MLPClassifier fitted on K ≥ 3 labels has a softmax output and the
    multinomial log loss: its ``_backprop`` gives fastnn's J and ∇J."""
    thetas, X, y = softmax_problem(layers, m=150)
    J, grads = fastnn.cost_and_grad(thetas, X, y, lam=lam, backend=backend, **SOFTMAX)
    Y = np.eye(layers[-1])[y]
    J_sk, grads_sk = sklearn_cost_and_grad(thetas, X, Y, lam, softmax=True)
    assert J == pytest.approx(J_sk, rel=1e-10)
    for grad, grad_sk in zip(grads, grads_sk):
        np.testing.assert_allclose(grad, grad_sk, rtol=1e-10, atol=1e-10 * np.abs(grad_sk).max())
    # not vacuous: the K-sigmoid output gives another answer
    assert fastnn.cost(thetas, X, y, lam=lam, backend=backend) != pytest.approx(J_sk, rel=1e-3)


@pytest.mark.parametrize("activation", ["sigmoid", "identity"])
@pytest.mark.parametrize("layers", [[7, 1], [7, 6, 3]])
def test_poisson_matches_sklearn(backend, layers, activation):
    """scikit-learn's MLPRegressor(loss="poisson") has an exp output and the half Poisson
    deviance with its constant t log t − t: its ``_backprop`` gives fastnn's J and ∇J."""
    thetas, X, y = poisson_problem(layers, m=150)
    J, grads = fastnn.cost_and_grad(thetas, X, y, lam=0.3, activation=activation,
                                    backend=backend, **POISSON)
    J_sk, grads_sk = sklearn_cost_and_grad(
        thetas, X, y.reshape(150, -1), 0.3, regression=True, loss="poisson",
        activation="logistic" if activation == "sigmoid" else activation)
    assert J == pytest.approx(J_sk, rel=1e-10)
    for grad, grad_sk in zip(grads, grads_sk):
        np.testing.assert_allclose(grad, grad_sk, rtol=1e-10, atol=1e-10 * np.abs(grad_sk).max())


# -- choices and checks ----------------------------------------------------------------------

def test_regression_losses_name_their_outputs():
    assert REGRESSION_LOSSES == {"squared_error": "identity", "poisson": "exp"}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"output_activation": "softmax", "loss": "squared_error"},
     "loss: 'squared_error' does not go with output_activation='softmax'; the softmax output "
     "takes 'cross_entropy'"),
    ({"loss": "poisson"}, "loss: 'poisson' does not go with output_activation='sigmoid'"),
    ({"output_activation": "exp"}, "the exp output takes 'poisson'"),
])
def test_bad_pairs_name_what_goes(kwargs, message):
    thetas, X, y = softmax_problem([6, 3], m=10)
    with pytest.raises(ValueError, match=message):
        fastnn.cost(thetas, X, y, **kwargs)


def test_softmax_needs_two_outputs():
    thetas, X, y = make_problem([6, 1], m=10, target="binary")
    message = "layers: the softmax output needs K >= 2 output units, got K = 1"
    with pytest.raises(ValueError, match=message):
        fastnn.cost(thetas, X, y, **SOFTMAX)
    with pytest.raises(ValueError, match=message):
        fastnn.forward(thetas, X, output_activation="softmax")


def test_poisson_needs_nonnegative_targets():
    thetas, X, y = poisson_problem([6, 2], m=10)
    y[3, 1] = -0.5
    with pytest.raises(ValueError, match=r"y: the poisson loss takes targets >= 0, got -0.5"):
        fastnn.cost(thetas, X, y, **POISSON)


def test_softmax_score_is_the_argmax_class():
    thetas, X, y = softmax_problem([6, 7, 4], m=200)
    objective = fastnn.Objective([6, 7, 4], X, y, backend="numpy", **SOFTMAX)
    vec = fastnn.pack(thetas)
    J, score = objective.cost_and_score(vec)
    assert J == pytest.approx(objective.cost(vec), rel=1e-12)
    predicted = fastnn.predict(thetas, X, output_activation="softmax")
    assert score == pytest.approx(np.mean(predicted == y))
    onehot = fastnn.Objective([6, 7, 4], X, np.eye(4, dtype=int)[y], backend="numpy", **SOFTMAX)
    assert onehot.cost_and_score(vec) == pytest.approx((J, score), rel=1e-12)
