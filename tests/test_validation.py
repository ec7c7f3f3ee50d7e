"""Bad input gets a clear error naming the argument; odd but valid input is converted once."""

import numpy as np
import pytest

import fastnn

THETAS = fastnn.init_weights([3, 4, 3], seed=0)
X = np.random.default_rng(0).normal(size=(6, 3))
Y = np.array([0, 1, 2, 0, 1, 2])


def replace(**changes):
    args = {"thetas": THETAS, "X": X, "y": Y, "lam": 1.0}
    args.update(changes)
    return args


def with_nan(array, value=np.nan):
    array = array.copy()
    array.flat[3] = value
    return array


BAD_INPUTS = [
    # (arguments, keywords, exception, message start)
    (replace(X=X[0]), {}, ValueError, "X: expected a 2-D array"),
    (replace(X=X[None]), {}, ValueError, "X: expected a 2-D array"),
    (replace(X=with_nan(X)), {}, ValueError, "X: contains NaN or infinity"),
    (replace(X=with_nan(X, np.inf)), {}, ValueError, "X: contains NaN or infinity"),
    (replace(X=X[:, :2]), {}, ValueError, "X: has 2 columns but the network's input layer"),
    (replace(X=X.astype(str)), {}, TypeError, "X: expected a numeric array"),
    (replace(X=X.astype(complex)), {}, TypeError, "X: expected a numeric array"),
    (replace(X=X[:0], y=Y[:0]), {}, ValueError, "X: expected at least one example"),
    (replace(y=Y[:5]), {}, ValueError, "y: has 5 rows but X has m = 6"),
    (replace(y=Y + 1), {}, ValueError, r"y: expected labels 0 \.\.\. 2 for K = 3 outputs"),
    (replace(y=Y - 1), {}, ValueError, r"y: expected labels 0 \.\.\. 2"),
    (replace(y=Y + 0.5), {}, ValueError, "y: expected integer labels"),
    (replace(y=with_nan(Y.astype(float))), {}, ValueError, "y: contains NaN"),
    (replace(y=Y.astype(str)), {}, TypeError, "y: expected integer labels"),
    (replace(y=np.eye(3)[Y][:, :2]), {}, ValueError, "y: a target matrix must have one column"),
    (replace(y=2 * np.eye(3)[Y]), {}, ValueError, "y: a target matrix must hold only 0 and 1"),
    (replace(y=Y[:, None, None]), {}, ValueError, r"y: expected shape \(m,\) or \(m, K\)"),
    (replace(thetas=[THETAS[0], THETAS[1][:, :4]]), {}, ValueError,
     r"thetas\[1\]: shape \(3, 4\) does not chain with thetas\[0\]"),
    (replace(thetas=THETAS[0]), {}, TypeError, "thetas: expected a list of weight matrices"),
    (replace(thetas=[]), {}, ValueError, "thetas: expected at least one weight matrix"),
    (replace(thetas=[THETAS[0].astype(int), THETAS[1]]), {}, TypeError,
     r"thetas\[0\]: expected dtype float32 or float64"),
    (replace(thetas=[THETAS[0], [[1.0]]]), {}, TypeError, r"thetas\[1\]: expected a numpy array"),
    (replace(thetas=[THETAS[0].ravel(), THETAS[1]]), {}, ValueError,
     r"thetas\[0\]: expected a 2-D matrix"),
    (replace(thetas=[with_nan(THETAS[0]), THETAS[1]]), {}, ValueError,
     r"thetas\[0\]: contains NaN"),
    (replace(lam=-1.0), {}, ValueError, "lam: expected a finite number >= 0"),
    (replace(lam=np.nan), {}, ValueError, "lam: expected a finite number >= 0"),
    (replace(lam=np.inf), {}, ValueError, "lam: expected a finite number >= 0"),
    (replace(lam="1"), {}, TypeError, "lam: expected a real number"),
    (replace(), {"backend": "cuda"}, ValueError, "backend: expected one of"),
    (replace(), {"loss": "hinge"}, ValueError, "loss: expected one of"),
    (replace(), {"activation": "softmax"}, ValueError, "activation: expected one of"),
]


@pytest.mark.parametrize(("args", "keywords", "error", "message"), BAD_INPUTS)
@pytest.mark.parametrize("function", [fastnn.cost_and_grad, fastnn.cost, fastnn.check_gradients])
def test_bad_input(function, args, keywords, error, message):
    with pytest.raises(error, match=f"^{message}"):
        function(**args, **keywords)


def test_binary_targets():
    thetas = fastnn.init_weights([3, 1], seed=0)
    with pytest.raises(ValueError, match=r"^y: expected a 0/1 vector for K = 1 output"):
        fastnn.cost(thetas, X, [0, 1, 2, 0, 1, 0])
    J = fastnn.cost(thetas, X, [0, 1, 1, 0, 1, 0])
    assert fastnn.cost(thetas, X, np.array([[0], [1], [1], [0], [1], [0]])) == J
    assert fastnn.cost(thetas, X, np.array([False, True, True, False, True, False])) == J


@pytest.mark.parametrize("function", [fastnn.forward, fastnn.predict])
def test_bad_input_to_forward(function):
    with pytest.raises(ValueError, match="^X: has 2 columns"):
        function(THETAS, X[:, :2])
    with pytest.raises(ValueError, match="^X: contains NaN"):
        function(THETAS, with_nan(X))
    with pytest.raises(ValueError, match="^activation: expected one of"):
        function(THETAS, X, activation="gelu")
    with pytest.raises(ValueError, match="^backend: expected one of"):
        function(THETAS, X, backend="gpu")
    with pytest.raises(TypeError, match="unexpected keyword argument 'loss'"):
        function(THETAS, X, loss="cross_entropy")  # the outputs do not depend on the loss


def test_bad_layers_and_vectors():
    with pytest.raises(ValueError, match="^layers: expected at least 2"):
        fastnn.init_weights([3])
    with pytest.raises(ValueError, match="^layers: every size must be a positive integer"):
        fastnn.init_weights([3, 0, 2])
    with pytest.raises(ValueError, match="^layers: every size must be a positive integer"):
        fastnn.init_weights([3, 2.5])
    with pytest.raises(TypeError, match="^layers: expected a sequence"):
        fastnn.init_weights(3)
    with pytest.raises(TypeError, match="^dtype: expected float32 or float64"):
        fastnn.init_weights([3, 2], dtype=np.int32)
    with pytest.raises(ValueError, match=r"^vec: expected shape \(8,\)"):
        fastnn.unpack(np.zeros(9), [3, 2])
    with pytest.raises(ValueError, match="^vec: expected a contiguous vector"):
        fastnn.unpack(np.zeros(16)[::2], [3, 2])


@pytest.mark.parametrize(
    "X_variant",
    [np.asfortranarray(X), np.hstack([X, X])[:, ::2], X.astype(np.float32).astype(np.float64)],
    ids=["fortran", "strided", "float32-exact"],
)
def test_odd_layouts_are_converted(backend, X_variant):
    J, grads = fastnn.cost_and_grad(THETAS, X_variant, Y, lam=1.0, backend=backend)
    J_ref, grads_ref = fastnn.cost_and_grad(THETAS, np.ascontiguousarray(X_variant), Y, lam=1.0,
                                            backend=backend)
    assert J == J_ref
    for grad, grad_ref in zip(grads, grads_ref):
        np.testing.assert_array_equal(grad, grad_ref)


def test_integer_and_float32_X_are_accepted(backend):
    X_int = np.arange(18).reshape(6, 3) % 4
    J = fastnn.cost(THETAS, X_int, Y, backend=backend)
    assert J == fastnn.cost(THETAS, X_int.astype(float), Y, backend=backend)
    X32 = X.astype(np.float32)
    assert fastnn.cost(THETAS, X32, Y, backend=backend) == fastnn.cost(
        THETAS, X32.astype(np.float64), Y, backend=backend)


def test_objective_converts_once():
    X_f = np.asfortranarray(X.astype(np.float32))
    objective = fastnn.Objective([3, 4, 3], X_f, Y, lam=1.0)
    assert objective.data.X.dtype == np.float64 and objective.data.X.flags.c_contiguous
    converted = objective.data.X
    objective(fastnn.pack(THETAS))
    assert objective.data.X is converted


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float16, "complex128", "U3"])
def test_objective_refuses_non_float_dtypes(dtype):
    """An integer dtype would truncate X and θ; every entry point takes float32 or float64."""
    with pytest.raises(TypeError, match="^dtype: expected float32 or float64, got"):
        fastnn.Objective([3, 4, 3], X, Y, dtype=dtype)
    with pytest.raises(TypeError, match="^dtype: expected float32 or float64, got"):
        fastnn.init_weights([3, 4, 3], dtype=dtype)


def test_objective_refuses_a_client_for_an_in_process_backend():
    with pytest.raises(ValueError, match='^client: only backend="dask"'):
        fastnn.Objective([3, 4, 3], X, Y, backend="numba", client=object())


def test_numpy_backend_trusts_its_validated_theta(monkeypatch):
    """θ is checked once, at the boundary: an evaluation does not re-check it (a pass over
    all of θ) through the public ``unpack``."""
    objective = fastnn.Objective([3, 4, 3], X, Y, lam=1.0, backend="numpy")
    theta = fastnn.pack(THETAS)
    checks = []
    real_check = fastnn.network.check_vector
    monkeypatch.setattr(fastnn.network, "check_vector",
                        lambda *args: checks.append(args[2]) or real_check(*args))
    objective(theta)
    objective.cost(theta)
    objective.forward(theta)
    assert checks == []
    fastnn.unpack(theta, [3, 4, 3])  # the public form still checks
    assert checks == ["vec"]
