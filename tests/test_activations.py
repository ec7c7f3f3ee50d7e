"""The compiled exp and sigmoid against libm, ulp by ulp, over the whole range the kernels use."""

import numpy as np
import pytest
from numba import njit

from fastnn.activations import (
    EXP_MIN,
    EXP_MIN_32,
    exp_nonpositive,
    exp_nonpositive32,
    log1p_unit,
    sigmoid,
)
from fastnn.losses import CROSS_ENTROPY, loss_term_and_delta


@njit
def _over(f, x):
    out = np.empty_like(x)  # in the dtype of x: float32 x takes the float32 arithmetic
    for i in range(x.shape[0]):
        out[i] = f(x[i])
    return out


@njit
def _exp(x):
    return exp_nonpositive(x)


@njit
def _exp32(x):
    return exp_nonpositive32(x)


@njit
def _log1p(x):
    return log1p_unit(x)


@njit
def _sigmoid(x):
    return sigmoid(x)


@njit
def _cross_entropy_term(z, t):
    out = np.empty(z.shape[0])
    for i in range(z.shape[0]):
        out[i] = loss_term_and_delta(z[i], t, CROSS_ENTROPY)[0]
    return out


def ulps(actual, expected):
    """Distance in units in the last place: how many float64 values lie between the two."""
    a = np.asarray(actual, np.float64).view(np.int64)
    b = np.asarray(expected, np.float64).view(np.int64)
    return np.abs(a - b)


SWEEP = -np.concatenate([
    np.linspace(0.0, 1.0, 1_000_001),
    np.linspace(1.0, 40.0, 1_000_001),
    np.linspace(40.0, 708.0, 1_000_001),        # down to the last normal results
    np.linspace(708.0, 746.0, 400_001),         # subnormal results, then 0
    np.geomspace(1e-300, 1e-3, 100_001),        # tiny arguments: e^x rounds near 1
    [np.log(2.0) / 2, 745.13321910194122, 745.1332191019412, 1000.0, 1e300, np.inf],
])


def test_exp_within_one_ulp_of_libm():
    values = _over(_exp, SWEEP)
    with np.errstate(under="ignore"):
        expected = np.exp(SWEEP)
    assert ulps(values, expected).max() <= 1
    assert (values[SWEEP < EXP_MIN] == 0).all()


def test_log1p_within_one_ulp_of_libm():
    """On [0, 1], the range of e^{−|z|}: a dense sweep, tiny and subnormal arguments (where
    log1p(x) rounds to x), and both sides of the reduction's switch at 1 + x = √2."""
    x = np.concatenate([np.linspace(0.0, 1.0, 2_000_001), np.geomspace(5e-324, 1e-3, 100_001),
                        [np.sqrt(2.0) - 1, np.nextafter(np.sqrt(2.0) - 1, 1.0), 1.0]])
    values = _over(_log1p, x)
    assert ulps(values, np.log1p(x)).max() <= 1
    assert values[0] == 0.0


def test_exp_propagates_nan():
    assert np.isnan(_over(_exp, np.array([np.nan]))[0])


def _libm_sigmoid(z):
    """σ(z) as before the compiled exp: 1 / (1 + e^−z) for z ≥ 0, e^z / (1 + e^z) below."""
    with np.errstate(under="ignore", over="ignore"):
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@pytest.mark.parametrize("scale", [1.0, 40.0, 800.0])
def test_sigmoid_and_cross_entropy_within_two_ulp(scale):
    """The saturated tails included: at |z| = 800, σ is 0 or 1 and the cross-entropy term
    −log σ(z) = softplus(−z) (t = 1) or −log(1 − σ(z)) = softplus(z) (t = 0) is |z| or e^−|z|."""
    z = np.linspace(-scale, scale, 2_000_001)
    assert ulps(_over(_sigmoid, z), _libm_sigmoid(z)).max() <= 2
    with np.errstate(under="ignore"):
        reference = np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
    assert ulps(_cross_entropy_term(z, 0.0), reference).max() <= 2
    # softplus(−z) for t = 1 is the t = 0 term at −z, bit for bit
    np.testing.assert_array_equal(_cross_entropy_term(z, 1.0), _cross_entropy_term(-z, 0.0))


def test_sigmoid_at_infinities_and_nan():
    values = _over(_sigmoid, np.array([np.inf, -np.inf, np.nan, 0.0]))
    assert values[0] == 1.0 and values[1] == 0.0 and np.isnan(values[2]) and values[3] == 0.5


def test_the_check_can_fail():
    """ulps counts neighbours: the next float64 is 1 away, a 1e-15 relative change several."""
    assert ulps(1.0, np.nextafter(1.0, 2.0)) == 1
    assert ulps(1.0, 1.0 + 1e-15) > 2


def ulps32(actual, expected):
    """As :func:`ulps`, between float32 values."""
    a = np.asarray(actual, np.float32).view(np.int32).astype(np.int64)
    b = np.asarray(expected, np.float32).view(np.int32).astype(np.int64)
    return np.abs(a - b)


def test_float32_exp_within_one_ulp_of_the_rounded_float64_exp():
    x = -np.concatenate([np.linspace(0.0, 1.0, 1_000_001), np.linspace(1.0, 87.0, 1_000_001),
                         np.linspace(87.0, 105.0, 200_001),  # subnormal results, then 0
                         np.geomspace(1e-38, 1e-3, 10_001), [np.inf]]).astype(np.float32)
    values = _over(_exp32, x)
    assert values.dtype == np.float32
    with np.errstate(under="ignore"):
        expected = np.exp(x.astype(np.float64)).astype(np.float32)
    assert ulps32(values, expected).max() <= 1
    assert (values[x < EXP_MIN_32] == 0).all()
    assert np.isnan(_over(_exp32, np.float32([np.nan]))[0])


@pytest.mark.parametrize("scale", [1.0, 20.0, 120.0])
def test_float32_sigmoid_in_float32_within_two_ulp(scale):
    """A float32 z is computed in float32 (half the vector width of float64 arithmetic):
    within 2 ulp of σ computed in float64 and rounded, the tails included."""
    z = np.linspace(-scale, scale, 2_000_001).astype(np.float32)
    values = _over(_sigmoid, z)
    assert values.dtype == np.float32
    assert ulps32(values, _libm_sigmoid(z.astype(np.float64)).astype(np.float32)).max() <= 2
    special = _over(_sigmoid, np.float32([np.inf, -np.inf, np.nan, 0.0]))
    assert special[0] == 1 and special[1] == 0 and np.isnan(special[2]) and special[3] == 0.5
