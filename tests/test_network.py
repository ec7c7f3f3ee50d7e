"""Layer sizes, packing, views and initialization."""

import re

import numpy as np
import pytest

import fastnn
from fastnn.network import penalty_mask, theta_offsets

LAYERS = [400, 25, 10]


def test_pack_unpack_round_trip():
    thetas = fastnn.init_weights([3, 5, 4, 2], seed=1)
    vec = fastnn.pack(thetas)
    assert vec.shape == (fastnn.n_params([3, 5, 4, 2]),) == (5 * 4 + 4 * 6 + 2 * 5,)
    # Θ(1) first, row-major.
    np.testing.assert_array_equal(vec[:20], thetas[0].ravel(order="C"))
    for theta, view in zip(thetas, fastnn.unpack(vec, [3, 5, 4, 2])):
        np.testing.assert_array_equal(theta, view)


def test_unpack_gives_views():
    vec = np.arange(fastnn.n_params(LAYERS), dtype=np.float64)
    thetas = fastnn.unpack(vec, LAYERS)
    assert [theta.shape for theta in thetas] == [(25, 401), (10, 26)]
    assert all(np.shares_memory(theta, vec) for theta in thetas)
    thetas[1][0, 0] = -1.0
    assert vec[25 * 401] == -1.0


def test_offsets_and_penalty_mask():
    np.testing.assert_array_equal(theta_offsets(LAYERS), [0, 25 * 401, 25 * 401 + 10 * 26])
    mask = fastnn.unpack(penalty_mask(LAYERS), LAYERS)
    for theta in mask:
        np.testing.assert_array_equal(theta[:, 0], 0)
        np.testing.assert_array_equal(theta[:, 1:], 1)


def test_pack_keeps_float32():
    thetas = fastnn.init_weights([3, 2], seed=0, dtype=np.float32)
    assert fastnn.pack(thetas).dtype == np.float32


def test_init_weights_is_reproducible():
    a = fastnn.init_weights(LAYERS, seed=7)
    b = fastnn.init_weights(LAYERS, seed=7)
    c = fastnn.init_weights(LAYERS, seed=8)
    for theta_a, theta_b in zip(a, b):
        assert np.array_equal(theta_a, theta_b)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_weights_range(dtype):
    thetas = fastnn.init_weights(LAYERS, seed=0, dtype=dtype)
    for theta, (s, s_next) in zip(thetas, [(400, 25), (25, 10)]):
        assert theta.dtype == dtype
        eps_init = np.sqrt(6) / np.sqrt(s + s_next)
        assert np.abs(theta).max() <= eps_init
        # A uniform draw of thousands of values comes close to both ends and is centred.
        assert np.abs(theta).max() > 0.95 * eps_init
        assert abs(theta.mean()) < 0.1 * eps_init
    assert len({theta.base is not None and id(theta.base) for theta in thetas}) == 1


def test_init_weights_float32_is_the_float64_draw_rounded():
    thetas64 = fastnn.init_weights([5, 4, 3], seed=3)
    thetas32 = fastnn.init_weights([5, 4, 3], seed=3, dtype=np.float32)
    for theta64, theta32 in zip(thetas64, thetas32):
        np.testing.assert_array_equal(theta32, theta64.astype(np.float32))


def test_layers_of():
    assert fastnn.layers_of(fastnn.init_weights([4, 3, 2], seed=0)) == [4, 3, 2]


def sklearn_initial_weights(layers, activation, random_state):
    """scikit-learn's initial coefs_ and intercepts_ from ``random_state``, as Θ(l): its MLP's
    _initialize, as fit calls it (the regressor's: the classifier's needs its fitted labels
    first; both draw in _init_coef)."""
    from sklearn.neural_network import MLPRegressor

    estimator = MLPRegressor(hidden_layer_sizes=tuple(layers[1:-1]), activation=activation)
    estimator._random_state = random_state
    estimator._initialize(np.zeros((1, layers[-1])), list(layers), np.float64)
    return [np.column_stack([b, W.T]) for W, b in zip(estimator.coefs_, estimator.intercepts_)]


@pytest.mark.parametrize(("activation", "sk_activation"), [("sigmoid", "logistic"),
                                                          ("relu", "relu"), ("tanh", "tanh"),
                                                          ("identity", "identity")])
@pytest.mark.parametrize("layers", [[5, 3], [6, 7, 4], [6, 9, 5, 3]])
def test_glorot_init_is_sklearns(layers, activation, sk_activation):
    """From the same RandomState, init="glorot" draws scikit-learn's weights bit for bit:
    bounds √(2 / (s_l + s_{l+1})) for the sigmoid (its "logistic"), √(6 / ...) otherwise,
    the weights and then the biases of each layer."""
    thetas = fastnn.init_weights(layers, seed=np.random.RandomState(4), init="glorot",
                                 activation=activation)
    expected = sklearn_initial_weights(layers, sk_activation, np.random.RandomState(4))
    for theta, theta_sk in zip(thetas, expected):
        np.testing.assert_array_equal(theta, theta_sk)
    uniform = fastnn.init_weights(layers, seed=np.random.RandomState(4))
    assert not np.array_equal(uniform[0], expected[0])


@pytest.mark.parametrize(("activation", "factor"), [("sigmoid", 2.0), ("tanh", 6.0)])
def test_glorot_init_bounds(activation, factor):
    thetas = fastnn.init_weights(LAYERS, seed=0, init="glorot", activation=activation)
    for theta, (s, s_next) in zip(thetas, [(400, 25), (25, 10)]):
        bound = np.sqrt(factor / (s + s_next))
        assert bound * 0.95 < np.abs(theta).max() <= bound


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"init": "he"}, "init: expected one of ['glorot', 'uniform'], got 'he'"),
    ({"activation": "logistic"}, "activation: expected one of"),
])
def test_init_weights_rejects(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        fastnn.init_weights([3, 2], **kwargs)
