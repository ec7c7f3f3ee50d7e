"""Checks at the boundary: everything a kernel trusts is established here, once per call.

Messages name the argument, what was expected and what came.
"""

import numbers
from typing import NamedTuple

import numpy as np
import scipy.sparse

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


NO_WEIGHTS = np.empty(0)
"""``Targets.weights`` when every example weighs the same."""


class Targets(NamedTuple):
    """Validated targets, and the examples' weights, in the form the kernels read.

    Exactly one of ``labels`` and ``Y`` has m rows; the other is empty.

    labels : ndarray of int64, shape (m,) or (0,)
        Class labels ``0 ... K-1`` for ``K >= 2`` (output k's target is ``[label == k]``), or the
        0/1 target itself for ``K = 1``.
    Y : ndarray of shape (m, K) or (0, K)
        A target matrix in the compute dtype: 0/1 (multi-label, or one-hot given as a matrix),
        or real values for an identity output layer.
    weights : ndarray of float64, shape (m,) or (0,)
        Example i's weight w_i scaled to mean 1 (``w_i m / Σ_j w_j``, see
        :func:`check_targets`), or empty when no weights were given. The kernels
        multiply example i's loss terms and δ(L) by it, so ``(1/m) Σ_i w_i loss_i`` is the
        weighted mean ``Σ_i w_i loss_i / Σ_i w_i`` of the given weights.
    weight_scale : float
        The scale ``m / Σ_j w_j`` (1 without weights): the penalty ``(λ / 2 Σ w) Σ Θ²`` is
        ``(λ weight_scale / 2m) Σ Θ²``.
    """

    labels: np.ndarray
    Y: np.ndarray
    weights: np.ndarray = NO_WEIGHTS
    weight_scale: float = 1.0

    @property
    def is_matrix(self):
        return self.Y.shape[0] > 0

    @property
    def weighted(self):
        return self.weights.shape[0] > 0

    def take(self, rows):
        """The targets (and weights) of the examples ``rows`` (a slice or an index array)."""
        weights = self.weights[rows] if self.weighted else self.weights
        if self.is_matrix:
            return Targets(self.labels, self.Y[rows], weights, self.weight_scale)
        return Targets(self.labels[rows], self.Y, weights, self.weight_scale)

    def weights_of(self, rows):
        """The weights of the examples ``rows`` (a slice), or None without weights."""
        return self.weights[rows] if self.weighted else None

    def one_hot(self, rows, dtype):
        """Dense ``(len(rows), K)`` targets for the examples ``rows`` (a slice)."""
        if self.is_matrix:
            return self.Y[rows].astype(dtype, copy=False)
        labels = self.labels[rows]
        K = self.Y.shape[1]
        if K == 1:
            return labels.astype(dtype)[:, None]
        return (labels[:, None] == np.arange(K)).astype(dtype)


INT32_MAX = np.iinfo(np.int32).max


def is_sparse(X):
    """True for a scipy.sparse matrix or array, of any format."""
    return scipy.sparse.issparse(X)


def _describe(value):
    if is_sparse(value):
        return f"sparse {value.format} matrix of dtype {value.dtype} and shape {value.shape}"
    if isinstance(value, np.ndarray):
        return f"array of dtype {value.dtype} and shape {value.shape}"
    return f"{type(value).__name__} {value!r}"[:120]


def check_choice(value, name, options):
    """Return ``value`` if it is one of ``options``; ValueError naming ``name`` otherwise."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name}: expected one of {sorted(options)}, got {value!r}")
    return value


def check_dtype(dtype, name="dtype"):
    """The compute dtype as a numpy.dtype: float32 or float64, nothing else.

    Every entry point that takes a dtype goes through here, so that an integer or half dtype
    is refused instead of truncating X and θ.
    """
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name}: expected float32 or float64, got {_describe(dtype)}") from None
    if resolved not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected float32 or float64, got {resolved}")
    return resolved


def check_layers(layers):
    """Layer sizes as a list of at least two positive Python ints."""
    try:
        sizes = list(layers)
    except TypeError:
        raise TypeError(
            f"layers: expected a sequence of layer sizes, got {_describe(layers)}"
        ) from None
    if len(sizes) < 2:
        raise ValueError(f"layers: expected at least 2 layer sizes (input and output), got {sizes}")
    for size in sizes:
        if not isinstance(size, numbers.Integral) or isinstance(size, bool) or size < 1:
            raise ValueError(f"layers: every size must be a positive integer, got {sizes}")
    return [int(size) for size in sizes]


def check_lam(lam):
    """λ as a finite, non-negative float."""
    if not isinstance(lam, numbers.Real) or isinstance(lam, bool):
        raise TypeError(f"lam: expected a real number, got {_describe(lam)}")
    if not np.isfinite(lam) or lam < 0:
        raise ValueError(f"lam: expected a finite number >= 0, got {lam!r}")
    return float(lam)


def _check_float_array(array, name):
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {_describe(array)}")
    if array.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {array.dtype}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains NaN or infinity")
    return array


def check_thetas(thetas):
    """Check a list of Θ(l) and return the layer sizes ``[s_1, ..., s_L]`` they imply.

    Θ(l) must be a 2-D float32/float64 array of shape ``(s_{l+1}, s_l + 1)``, so the rows of
    Θ(l) plus one must equal the columns of Θ(l+1).
    """
    if isinstance(thetas, np.ndarray) or not isinstance(thetas, (list, tuple)):
        raise TypeError(
            f"thetas: expected a list of weight matrices Θ(l), got {_describe(thetas)}; "
            "use fastnn.unpack(vec, layers) for an unrolled vector"
        )
    if len(thetas) == 0:
        raise ValueError("thetas: expected at least one weight matrix, got an empty list")
    layers = []
    for l, theta in enumerate(thetas):
        name = f"thetas[{l}]"
        _check_float_array(theta, name)
        if theta.ndim != 2 or theta.shape[0] < 1 or theta.shape[1] < 2:
            raise ValueError(
                f"{name}: expected a 2-D matrix of shape (s_{l + 2}, s_{l + 1} + 1) with at "
                f"least one unit on each side, got shape {theta.shape}"
            )
        if l == 0:
            layers.append(theta.shape[1] - 1)
        elif theta.shape[1] != layers[-1] + 1:
            raise ValueError(
                f"{name}: shape {theta.shape} does not chain with thetas[{l - 1}] of shape "
                f"{thetas[l - 1].shape}: expected {layers[-1] + 1} columns "
                f"(one per unit of layer {l + 1}, plus the bias)"
            )
        layers.append(theta.shape[0])
    return layers


def check_vector(vec, size, name):
    """A contiguous 1-D float32/float64 vector of length ``size``, returned as is."""
    _check_float_array(vec, name)
    if vec.ndim != 1 or vec.shape[0] != size:
        raise ValueError(f"{name}: expected shape ({size},) for these layers, got {vec.shape}")
    if not vec.flags.c_contiguous:
        raise ValueError(f"{name}: expected a contiguous vector (views cannot be made of it)")
    return vec


def check_out(out, size, dtype, name="out"):
    """An array to write P = ``size`` numbers of ``dtype`` into: writeable, C-contiguous, of
    shape (size,); returned as is."""
    if not (isinstance(out, np.ndarray) and out.shape == (size,) and out.dtype == dtype
            and out.flags.c_contiguous and out.flags.writeable):
        raise ValueError(
            f"{name}: expected a writeable C-contiguous array of shape ({size},) and dtype "
            f"{np.dtype(dtype)}, got "
            + (f"shape {out.shape}, dtype {out.dtype}" + ("" if out.flags.writeable
                                                          else ", read-only")
               if isinstance(out, np.ndarray) else type(out).__name__))
    return out


def check_X(X, n_features, dtype):
    """X as the kernels read it, converted once if needed.

    A dense X (any array-like) becomes a C-contiguous ``(m, s_1)`` ndarray of ``dtype``. A
    scipy.sparse X (matrix or array, any format) becomes a ``scipy.sparse.csr_matrix`` (see
    :func:`check_sparse_X`); it is never densified.
    """
    if is_sparse(X):
        return check_sparse_X(X, n_features, dtype)
    X_arr = np.asarray(X)
    if X_arr.dtype.kind not in "biuf":
        raise TypeError(f"X: expected a numeric array, got {_describe(X_arr)}")
    _check_X_shape(X_arr.shape, n_features)
    X_arr = np.ascontiguousarray(X_arr, dtype=dtype)
    if not np.isfinite(X_arr).all():
        raise ValueError("X: contains NaN or infinity")
    return X_arr


def _check_X_shape(shape, n_features):
    if len(shape) != 2:
        raise ValueError(f"X: expected a 2-D array of shape (m, {n_features}), got shape {shape}")
    if shape[0] == 0:
        raise ValueError("X: expected at least one example (row), got m = 0")
    if shape[1] != n_features:
        raise ValueError(
            f"X: has {shape[1]} columns but the network's input layer has s_1 = "
            f"{n_features} units"
        )


def check_sparse_X(X, n_features, dtype):
    """A scipy.sparse X as the canonical CSR matrix the kernels read, the caller's untouched.

    The result is a ``scipy.sparse.csr_matrix`` (whatever class and format came) with

    - ``data`` of ``dtype``, all finite (integer and bool data converted; complex refused);
    - canonical format: sorted column indices within each row, no duplicate entries
      (duplicates summed, in ``dtype``, as scipy defines them);
    - ``indices`` and ``indptr`` both int32 when nnz and the number of columns fit int32,
      else both int64 (scipy's rule: int64 index arrays whose values fit are downcast);
    - the shape checks of a dense X.

    Only what needs converting is copied, so a canonical CSR matrix of ``dtype`` with int32
    indices is returned as given; the caller's matrix is never modified (sorting and summing
    duplicates, which scipy does in place, work on a copy). The structure (index bounds,
    ``indptr``) is checked as well, so that the kernels never index out of X.
    """
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X: expected a numeric array, got {_describe(X)}")
    _check_X_shape(X.shape, n_features)
    own = X.format != "csr"  # every other format converts into arrays of its own
    if own:
        X = X.tocsr()
    data, indices, indptr = _csr_arrays(X)
    nnz = indices.shape[0]
    index_dtype = np.int32 if max(nnz, X.shape[1]) <= INT32_MAX else np.int64
    data = np.ascontiguousarray(data, dtype=dtype)
    indices = np.ascontiguousarray(indices, dtype=index_dtype)
    indptr = np.ascontiguousarray(indptr, dtype=index_dtype)
    if not np.isfinite(data).all():
        raise ValueError("X: contains NaN or infinity")
    canonical = _is_canonical(indices, indptr)
    given = (X.data, X.indices, X.indptr)
    if (type(X) is scipy.sparse.csr_matrix and canonical
            and all(new is old for new, old in zip((data, indices, indptr), given))):
        return X
    if not canonical and not own:  # the caller's arrays are sorted and summed in place
        data, indices, indptr = (new.copy() if np.may_share_memory(new, old) else new
                                 for new, old in zip((data, indices, indptr), given))
    result = scipy.sparse.csr_matrix((data, indices, indptr), shape=X.shape)
    if canonical:
        result.has_canonical_format = True
    else:
        result.sum_duplicates()  # sorts the indices, then sums duplicates, in place
    return result


def _csr_arrays(X):
    """``(data, indices, indptr)`` of a CSR matrix, the first two cut to its nnz, after
    checking that they describe one: ValueError naming X otherwise."""
    data, indices, indptr = X.data, X.indices, X.indptr
    m, n = X.shape
    problem = None
    if indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu":
        problem = f"integer index arrays expected, got {indices.dtype} and {indptr.dtype}"
    elif data.ndim != 1 or indices.ndim != 1 or indptr.shape != (m + 1,):
        problem = f"indptr of shape ({m + 1},) and 1-D data and indices expected"
    elif indptr[0] != 0 or (np.diff(indptr) < 0).any():
        problem = "indptr must start at 0 and never decrease"
    elif indptr[-1] > min(indices.shape[0], data.shape[0]):
        problem = f"indptr ends at {indptr[-1]}, beyond the stored entries"
    else:
        nnz = int(indptr[-1])
        if indices.shape[0] != nnz:
            indices = indices[:nnz]
        if data.shape[0] != nnz:
            data = data[:nnz]
        if nnz and (indices.min() < 0 or indices.max() >= n):
            problem = f"column indices must lie in 0 ... {n - 1}"
    if problem is not None:
        raise ValueError(f"X: not a valid CSR matrix: {problem}")
    return data, indices, indptr


def _is_canonical(indices, indptr):
    """Whether the column indices increase strictly within every row (sorted, no duplicate
    entries), checked afresh: a matrix's cached ``has_canonical_format`` is not trusted."""
    if indices.shape[0] < 2:
        return True
    increasing = indices[1:] > indices[:-1]
    starts = indptr[1:-1]  # where rows 2 ... m begin: no order across that boundary
    starts = starts[(starts > 0) & (starts < indices.shape[0])]
    increasing[starts - 1] = True
    return bool(increasing.all())


def _integral_values(y):
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind in "iu":
        return y.astype(np.int64, copy=False)
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise ValueError("y: contains NaN or infinity")
        as_int = y.astype(np.int64)
        if not np.array_equal(as_int, y):
            raise ValueError("y: expected integer labels, got non-integer values")
        return as_int
    raise TypeError(f"y: expected integer labels or a 0/1 array, got {_describe(y)}")


def check_sample_weight(sample_weight, m, name="sample_weight", compute=None):
    """Example weights as given (not scaled), in a new float64 array of shape (m,), and their
    scale ``m / Σ w``; ``(None, 1.0)`` for None.

    scikit-learn's conventions: a number weighs every example the same; a list, a pandas Series
    or any array-like is converted into a copy, so the caller's array is never modified.
    Weights must be finite and non-negative, with a positive sum; errors name ``name``.
    ``compute``, for weights kept elsewhere (a Dask array, which stays one): evaluates the
    checks' summary (all finite, the least, the sum) in one pass, as ``dask.compute`` does.
    """
    if sample_weight is None:
        return None, 1.0
    if isinstance(sample_weight, numbers.Real):
        sample_weight = np.full(m, sample_weight)
    w = np.asarray(sample_weight) if compute is None else sample_weight
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected numbers, got {_describe(w)}")
    if w.ndim != 1 or w.shape[0] != m:
        raise ValueError(f"{name}: expected shape ({m},), one weight per example, got "
                         f"shape {w.shape}")
    w = w.astype(np.float64)
    summary = (np.isfinite(w).all(), w.min(), w.sum())
    finite, low, total = summary if compute is None else compute(*summary)
    if not finite:
        raise ValueError(f"{name}: contains NaN or infinity")
    if low < 0:
        raise ValueError(f"{name}: expected weights >= 0, got {float(low)!r}")
    if total <= 0:
        raise ValueError(f"{name}: every weight is zero; at least one must be positive")
    return w, m / total


def check_targets(y, m, K, dtype, real=False, sample_weight=None):
    """Targets and weights for m examples and K outputs (see :class:`Targets`).

    ``y`` may be integer labels ``0 ... K-1`` of shape (m,) for ``K >= 2``, a 0/1 vector of
    shape (m,) for ``K = 1``, or a 0/1 matrix of shape (m, K); with ``real`` (an identity
    output layer), any finite values of shape (m,) for ``K = 1`` or (m, K).
    A scipy.sparse y is converted to a dense array first: the targets are (m, K), K the
    output layer's size, and the kernels read them dense.
    ``sample_weight`` goes through :func:`check_sample_weight` and is scaled to mean 1: that
    leaves the weighted objective unchanged (it is normalized by Σ w) and makes it the plain
    one when all weights are equal, so weights that all scale to exactly 1 are dropped.
    """
    y_arr = y.toarray() if is_sparse(y) else np.asarray(y)
    if y_arr.ndim not in (1, 2):
        raise ValueError(f"y: expected shape (m,) or (m, K), got shape {y_arr.shape}")
    if y_arr.shape[0] != m:
        raise ValueError(f"y: has {y_arr.shape[0]} rows but X has m = {m} examples")
    weights, scale = check_sample_weight(sample_weight, m)
    if weights is None:
        weights = NO_WEIGHTS
    else:
        weights *= scale
        if (weights == 1.0).all():  # equal weights: the plain objective, computed as such
            weights, scale = NO_WEIGHTS, 1.0
    if real:
        return Targets(np.empty(0, np.int64), _real_targets(y_arr, K, dtype), weights, scale)
    values = _integral_values(y_arr)
    if y_arr.ndim == 2:
        if y_arr.shape[1] != K:
            raise ValueError(
                f"y: a target matrix must have one column per output unit, K = {K}, got shape "
                f"{y_arr.shape}"
            )
        if ((values != 0) & (values != 1)).any():
            raise ValueError("y: a target matrix must hold only 0 and 1")
        return Targets(np.empty(0, np.int64), np.ascontiguousarray(values, dtype=dtype),
                       weights, scale)
    high = 1 if K == 1 else K - 1
    if values.min() < 0 or values.max() > high:
        if K == 1:
            what = "a 0/1 vector for K = 1 output"
        else:
            what = f"labels 0 ... {high} for K = {K} outputs"
        raise ValueError(f"y: expected {what}, got values from {values.min()} to {values.max()}")
    return Targets(np.ascontiguousarray(values), np.empty((0, K), dtype=dtype), weights, scale)


def _real_targets(y, K, dtype):
    """Real-valued targets as a contiguous (m, K) matrix of ``dtype``."""
    if y.dtype.kind not in "biuf":
        raise TypeError(f"y: expected real-valued targets, got {_describe(y)}")
    if y.ndim == 1:
        if K != 1:
            raise ValueError(f"y: a vector of targets fits K = 1 output, the network has K = "
                             f"{K}; give y of shape (m, {K})")
        y = y[:, None]
    if y.shape[1] != K:
        raise ValueError(f"y: expected one column per output unit, K = {K}, got shape "
                         f"{y.shape}")
    Y = np.ascontiguousarray(y, dtype=dtype)
    if not np.isfinite(Y).all():
        raise ValueError(f"y: contains NaN or infinity, or values beyond {dtype}'s range")
    return Y
