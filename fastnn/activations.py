"""Activations g and their derivatives g′, written from the output a = g(z) where possible.

Each activation has an integer code (what the compiled kernels branch on) and NumPy versions
(what the vectorized backend calls). The output layer's own functions are in
:mod:`fastnn.losses`.

======== ================================ ==================================
name     g(z)                             g′(z) from a = g(z)
======== ================================ ==================================
sigmoid  σ(z) = 1 / (1 + e^{−z})          a (1 − a)
tanh     tanh(z)                          1 − a²
relu     max(z, 0)                        1 if a > 0 else 0 (0 at the kink)
identity z                                1
======== ================================ ==================================
"""

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numba import njit, types
from numba.extending import overload
from scipy.special import expit

from fastnn._jit import int32_as_float32, int64_as_float64

SIGMOID, TANH, RELU, IDENTITY = 0, 1, 2, 3


class Activation(NamedTuple):
    code: int
    forward: Callable  # Z -> A, vectorized
    derivative: Callable  # A -> g′(Z), vectorized


ACTIVATIONS = {
    "sigmoid": Activation(SIGMOID, expit, lambda A: A * (1 - A)),
    "tanh": Activation(TANH, np.tanh, lambda A: 1 - A * A),
    "relu": Activation(RELU, lambda Z: np.maximum(Z, 0), lambda A: (A > 0).astype(A.dtype)),
    "identity": Activation(IDENTITY, lambda Z: Z, np.ones_like),
}


LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
"""ln 2 = LN2_HI + LN2_LO, LN2_HI with its low 32 bits zero, so n · LN2_HI is exact for the
|n| ≤ 1075 that occur (Cody and Waite's reduction)."""

EXP_MIN = -745.2
"""Below this, e^x rounds to 0 in float64 (e^x < 2^−1075 for x < −745.133)."""

TAYLOR = tuple(1.0 / math.factorial(k) for k in range(14))
"""1/k! for k = 0 ... 13: on |r| ≤ ln 2 / 2 the first omitted term, r^14 / 14!, is below
2^−57, so the series is exact to rounding."""


@njit(cache=True, fastmath={"contract"}, error_model="numpy", inline="always")
def horner(coefficients, x):
    """c_0 + c_1 x + ... + c_n x^n for a tuple of constants c, by Horner's rule. The loop over
    a tuple of known length unrolls into plain arithmetic, which vectorizes in the callers'
    loops, with the same values as the steps written out."""
    p = coefficients[len(coefficients) - 1]
    for i in range(len(coefficients) - 2, -1, -1):
        p = p * x + coefficients[i]
    return p


@njit(cache=True, fastmath={"contract"}, error_model="numpy", inline="always")
def exp_nonpositive(x):
    """e^x for x ≤ 0, within 1 ulp of libm's exp, in branch-free arithmetic LLVM vectorizes.

    Cody–Waite reduction x = n ln 2 + r with |r| ≤ ln 2 / 2, e^r by its Taylor series to r^13
    (Horner), and 2^n built from exponent bits in two factors 2^⌊n/2⌋ 2^⌈n/2⌉, so that results
    down to the smallest subnormal are rounded once. The llvmlite wheels carry no vector math
    library, so ``np.exp`` is a scalar call per unit; this is not. NaN gives NaN.
    """
    clamped = EXP_MIN if x < EXP_MIN else x
    n = np.floor(clamped * LOG2E + 0.5)
    r = (clamped - n * LN2_HI) - n * LN2_LO
    p = horner(TAYLOR, r)
    k = np.int64(n if n == n else 0.0)
    half = k >> 1
    scale = int64_as_float64((half + 1023) << 52) * int64_as_float64((k - half + 1023) << 52)
    return 0.0 if x < EXP_MIN else p * scale


SQRT2 = 1.4142135623730951
ATANH_SERIES = tuple(2.0 / (2 * n + 1) for n in range(1, 11))
"""2/3, 2/5, ..., 2/21: 2 atanh(s) = 2s + s Σ_n (2/(2n+1)) s^{2n}; for |s| ≤ 0.1716 the first
term left out, s^{22}, is below 2^−120 relative to 2s."""


@njit(cache=True, fastmath={"contract"}, error_model="numpy", inline="always")
def log1p_unit(x):
    """log(1 + x) for 0 ≤ x ≤ 1 (the e^{−|z|} of the cross-entropy term), in branch-free
    arithmetic, within 1 ulp of libm's ``log1p`` (tested on a dense sweep).

    1 + x = 2^k (1 + f) with k ∈ {0, 1} and f ∈ [√2/2 − 1, √2 − 1]: f = x itself for k = 0
    (no rounding at all); for k = 1, f = u/2 − 1 (exact) from u = 1 + x rounded, plus
    c = (x − (u − 1)) / u, the part of x that rounding dropped (log1p(x) = log u + c to first
    order). log(1 + f) = 2 atanh(s) with s = f / (2 + f), |s| ≤ 0.1716, written as
    f − s (f − R), R = Σ_n (2/(2n+1)) s^{2n} (ten terms), so that the large part f is exact;
    k ln 2 is added in two pieces (Cody and Waite's).
    """
    u = 1.0 + x
    above = u > SQRT2
    k = 1.0 if above else 0.0
    f = u * 0.5 - 1.0 if above else x
    c = (x - (u - 1.0)) / u if above else 0.0
    s = f / (2.0 + f)
    w = s * s
    R = horner(ATANH_SERIES, w) * w
    return k * LN2_HI + ((f - s * (f - R)) + (k * LN2_LO + c))


F32 = np.float32
LOG2E_32, LN2_HI_32, LN2_LO_32 = F32(LOG2E), F32(0.693145751953125), F32(1.4286068203094172e-06)
"""The float32 forms: LN2_HI_32 has its low 9 bits zero, so n · LN2_HI_32 is exact for the
|n| ≤ 150 that occur."""

EXP_MIN_32 = F32(-103.98)
"""Below this, e^x rounds to 0 in float32 (e^x < 2^−150 for x < −103.972)."""

TAYLOR_32 = tuple(F32(term) for term in TAYLOR[:8])
"""1/k! for k = 0 ... 7 in float32: on |r| ≤ ln 2 / 2 the first omitted term, r^8 / 8!, is
below 2^−27."""


@njit(cache=True, fastmath={"contract"}, error_model="numpy", inline="always")
def exp_nonpositive32(x):
    """e^x for float32 x ≤ 0 in float32 arithmetic: :func:`exp_nonpositive`'s reduction with a
    series to r^7, on twice as many lanes as float64 and with half the terms."""
    clamped = EXP_MIN_32 if x < EXP_MIN_32 else x
    n = np.floor(clamped * LOG2E_32 + F32(0.5))
    r = (clamped - n * LN2_HI_32) - n * LN2_LO_32
    p = horner(TAYLOR_32, r)
    k = np.int32(n if n == n else F32(0.0))
    half = k >> 1
    scale = int32_as_float32((half + 127) << 23) * int32_as_float32((k - half + 127) << 23)
    return F32(0.0) if x < EXP_MIN_32 else p * scale


def _exp64(x):
    return exp_nonpositive(x)


def _exp32(x):
    return exp_nonpositive32(x)


def exp_nonpositive_typed(x):
    """e^x for x ≤ 0 in the arithmetic of x's type: :func:`exp_nonpositive32` for a float32
    x, :func:`exp_nonpositive` otherwise (compiled; the softmax output's exponentials)."""
    return _exp64(x)


@overload(exp_nonpositive_typed, inline="always")
def _exp_in_the_type_of(x):
    return _exp32 if isinstance(x, types.Float) and x.bitwidth == 32 else _exp64


def _sigmoid64(z):
    e = exp_nonpositive(-abs(z))
    d = 1.0 + e
    return 1.0 / d if z >= 0 else e / d


def _sigmoid32(z):
    e = exp_nonpositive32(-abs(z))
    d = F32(1.0) + e
    return F32(1.0) / d if z >= 0 else e / d


def sigmoid(z):
    """σ(z) without overflow: e^{−|z|} is the only exponential taken, 1 / (1 + e) for z ≥ 0
    and e / (1 + e) below; branch-free, so that a loop over units vectorizes. Compiled, in the
    arithmetic of z's type: a float32 z takes :func:`exp_nonpositive32` and float32 divisions,
    within 2 ulp of σ computed in float64 and rounded (tested), and about five times as fast
    as float64 arithmetic on float32 units."""
    return _sigmoid64(z)


@overload(sigmoid, inline="always")
def _sigmoid_in_the_type_of(z):
    return _sigmoid32 if isinstance(z, types.Float) and z.bitwidth == 32 else _sigmoid64


@njit(cache=True, error_model="numpy", inline="always")
def activate_row(z, code):
    """z := g(z), in place, for a row of units: one loop per activation, so that the branch on
    ``code`` is taken once and each loop vectorizes (the identity leaves z as it is)."""
    if code == SIGMOID:
        for j in range(z.shape[0]):
            z[j] = sigmoid(z[j])
    elif code == TANH:
        for j in range(z.shape[0]):
            z[j] = np.tanh(z[j])
    elif code == RELU:
        for j in range(z.shape[0]):
            z[j] = max(z[j], 0.0)


@njit(cache=True, error_model="numpy", inline="always")
def scale_by_derivative_row(d, a, code):
    """d := d ∘ g′(z), in place, for a row of units with outputs a = g(z) (see
    :func:`activate_row`; g′ = 1 of the identity leaves d as it is)."""
    if code == SIGMOID:
        for k in range(d.shape[0]):
            d[k] *= a[k] * (1.0 - a[k])
    elif code == TANH:
        for k in range(d.shape[0]):
            d[k] *= 1.0 - a[k] * a[k]
    elif code == RELU:
        for k in range(d.shape[0]):
            d[k] *= 1.0 if a[k] > 0 else 0.0
