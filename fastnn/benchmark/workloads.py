"""The benchmark's workloads: network shapes and example counts, and their data."""

from typing import NamedTuple

import numpy as np

from fastnn.network import init_weights, pack

LAMBDA = 1.0
"""λ of every benchmarked J(Θ)."""


class Workload(NamedTuple):
    """A network shape and a number of examples to time J and ∇J on.

    Attributes
    ----------
    name : str
    layers : tuple of int
        Layer sizes ``(s_1, ..., s_L)``.
    m : int
        The number of examples at full scale.
    """

    name: str
    layers: tuple
    m: int

    def describe(self, m=None):
        """``"name s_1-...-s_L, m = ..."``, with ``m`` in place of the workload's own if given."""
        return f"{self.name} {'-'.join(map(str, self.layers))}, m = {m or self.m:,}"


WORKLOADS = {
    w.name: w
    for w in (
        Workload("digits", (64, 32, 10), 1_797),
        Workload("ex4", (400, 25, 10), 5_000),
        Workload("mnist", (784, 128, 10), 60_000),
        Workload("deep", (784, 256, 128, 64, 10), 20_000),
        Workload("wide-m", (100, 50, 10), 1_000_000),
    )
}
"""The workloads of the performance issue: scikit-learn's digits, the classic exercise's
400-25-10, MNIST-sized, a deeper net, and many examples on a small net."""


def make_data(workload, dtype, scale=1.0, seed=0):
    """Inputs, labels and initial parameters for a workload.

    Digits come from scikit-learn (scaled to [0, 1], repeated where ``scale`` asks for more
    rows than there are); the other workloads have uniform random inputs and labels.

    Parameters
    ----------
    workload : Workload
    dtype : float32 or float64
        The dtype of X and θ.
    scale : float
        Fraction of ``workload.m`` to make; at least 64 examples are made.
    seed : int
        Seed of the random inputs, labels and weights.

    Returns
    -------
    X : ndarray of shape (m, s_1)
    y : ndarray of shape (m,)
        Integer labels ``0 ... s_L - 1``.
    theta : ndarray of shape (P,)
        The unrolled initial weights.
    """
    m = max(64, round(workload.m * scale))
    rng = np.random.default_rng(seed)
    if workload.name == "digits":
        from sklearn.datasets import load_digits

        X_all, y_all = load_digits(return_X_y=True)
        rows = np.arange(m) % len(y_all)
        X, y = (X_all[rows] / 16.0).astype(dtype), y_all[rows]
    else:
        X = rng.random((m, workload.layers[0]), dtype=dtype)
        y = rng.integers(0, workload.layers[-1], size=m)
    theta = pack(init_weights(workload.layers, seed=seed, dtype=dtype))
    return X, y, theta
