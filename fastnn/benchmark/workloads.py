"""The benchmark's workloads: network shapes and example counts, and their data, dense and
sparse."""

from typing import NamedTuple

import numpy as np
import scipy.sparse

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


ZIPF_EXPONENT = 1.0
"""s of the columns' Zipf law: the r-th most frequent column is drawn with probability ∝ 1/rˢ
(Zipf's law of word frequencies)."""
ROW_SIGMA = 0.5
"""σ of the log-normal spread of the nonzeros per row around their mean."""


def make_sparse(m, n, density=None, *, nnz=None, hidden=(64,), K=10, dtype=np.float64,
                seed=0):
    """A tf-idf-shaped sparse X, labels that depend on it, and initial parameters.

    Row i is a document of T_i tokens, each a column drawn from a Zipf law (probability w_r ∝
    1/rˢ for the r-th most frequent column, s = :data:`ZIPF_EXPONENT`; the ranks are shuffled
    over the column ids): frequent columns are shared by most rows, the rest form a long tail.
    A column drawn c times in the row has the term frequency c. The rows' expected numbers of
    distinct columns k_i are log-normal (σ = :data:`ROW_SIGMA`) around the mean that
    ``density`` or ``nnz`` asks for, clipped to [1, n/2], and T_i solves
    E[distinct] = Σ_r 1 − (1 − w_r)^T_i = k_i, so nnz is close to the one asked for (not
    exactly it). Values are tf · idf with scikit-learn's smooth idf, ln((1 + m)/(1 + df_j)) + 1,
    and each row is scaled to unit L2 norm, as ``TfidfVectorizer`` does. The labels are the
    argmax of a random linear teacher's scores X W (W normal, of shape (n, K)), each class's
    score centred over the rows so that the classes are about equally frequent.

    Vectorized: all tokens are drawn at once, and one sort of their (row, column) keys gives
    the CSR arrays, in canonical form (column ids sorted within a row, no duplicates).

    Parameters
    ----------
    m, n : int
        Rows and columns of X.
    density : float, optional
        The fraction of X's entries that are nonzero, in (0, 0.5].
    nnz : int, optional
        The number of nonzeros, instead of ``density``.
    hidden : tuple of int
        Hidden layer sizes of the network θ is made for, ``(n, *hidden, K)``.
    K : int
        The number of classes, at least 2.
    dtype : float32 or float64
        The dtype of X's values and of θ.
    seed : int
        Seed of everything random.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (m, n)
        int32 ``indices`` and ``indptr``.
    y : ndarray of int64, shape (m,)
        Labels ``0 ... K-1``.
    theta : ndarray of shape (P,)
        The unrolled initial weights of ``(n, *hidden, K)``.
    """
    if (density is None) == (nnz is None):
        raise ValueError("give exactly one of density and nnz")
    per_row = density * n if nnz is None else nnz / m
    if not 0 < per_row <= n / 2:
        raise ValueError(f"expected 0 < nonzeros per row <= n/2 = {n / 2:g}, got {per_row:g}")
    rng = np.random.default_rng(seed)
    w = 1.0 / np.arange(1, n + 1) ** ZIPF_EXPONENT
    w /= w.sum()
    column_of_rank = rng.permutation(n).astype(np.int32)
    k = per_row * np.exp(ROW_SIGMA * rng.standard_normal(m) - ROW_SIGMA**2 / 2)
    tokens = np.maximum(1, np.rint(_tokens_for_distinct(w, np.clip(k, 1, n / 2)))).astype(np.int64)

    rows = np.repeat(np.arange(m, dtype=np.int64), tokens)
    cdf = np.cumsum(w)
    ranks = np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(rows.size), side="right"), n - 1)
    keys = rows * n + column_of_rank[ranks]
    del rows, ranks
    keys.sort()
    first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    tf = np.diff(np.r_[first, keys.size]).astype(np.float64)
    keys = keys[first]
    row = keys // n
    indices = (keys - row * n).astype(np.int32)
    del keys, first
    if indices.size >= 2**31:
        raise ValueError(f"{indices.size:,} nonzeros: more than int32 indices can address")
    indptr = np.zeros(m + 1, dtype=np.int32)
    np.cumsum(np.bincount(row, minlength=m), out=indptr[1:])

    df = np.bincount(indices, minlength=n)
    data = tf * (np.log((1 + m) / (1 + df)) + 1)[indices]
    data /= np.sqrt(np.bincount(row, weights=data**2, minlength=m))[row]
    del row, tf
    X = scipy.sparse.csr_matrix((data, indices, indptr), shape=(m, n), copy=False)
    X.has_canonical_format = True

    scores = X @ rng.standard_normal((n, K))
    y = np.argmax(scores - scores.mean(axis=0), axis=1).astype(np.int64)
    if np.dtype(dtype) != np.float64:
        X = X.astype(dtype)
    theta = pack(init_weights((n, *hidden, K), seed=seed, dtype=dtype))
    return X, y, theta


def _tokens_for_distinct(w, k, points=256):
    """T with E[distinct columns among T draws from w] = Σ_r 1 − (1 − w_r)^T = k, for each k
    (a monotone function of T, inverted by interpolation on a geometric grid of T)."""
    log_keep = np.log1p(-w)

    def distinct(T):
        return w.size - np.exp(np.multiply.outer(T, log_keep)).sum(axis=-1)

    high = 2.0
    while distinct(np.array([high]))[0] < k.max():
        high *= 2
    grid = np.geomspace(1.0, high, points)
    return np.interp(k, distinct(grid), grid)
