"""The data an estimator is given, made ready for its objective.

In memory, scikit-learn's ``validate_data`` checks X (and records ``n_features_in_`` and the
feature names), the estimator checks and encodes y (``_encode_targets``) and the example
weights are checked. X may be a scipy.sparse matrix of any format: ``validate_data``
converts it to CSR (``accept_sparse="csr"``) and the objective keeps it so, never densified.
A sparse y is converted to a dense array, as scikit-learn's MLPClassifier does with a sparse
indicator matrix (y is (m, K), K the outputs). A backend that computes on a cluster
(:attr:`fastnn.backends.Backend.in_process` false) keeps X, y and the weights where they lie:
only X's shape is checked here, the rest on the workers when the backend prepares them, and a
classifier's labels are found and encoded there (``_remote_targets``, through
:meth:`fastnn.backends.Backend.classes` and :meth:`~fastnn.backends.Backend.encode`).
"""

import numpy as np
from sklearn.base import is_regressor
from sklearn.utils.validation import validate_data

from fastnn._validation import check_sample_weight, is_sparse
from fastnn.trainer import STOCHASTIC_SOLVERS

ACCEPT_SPARSE = "csr"
"""``validate_data``'s ``accept_sparse``: every scipy.sparse format is taken, converted (once)
to CSR, the form the backends compute on; scikit-learn's MLP takes ``["csr", "coo"]``."""


def dense_targets(y):
    """y as given, or a scipy.sparse y as a dense array."""
    return y.toarray() if is_sparse(y) else y


def in_memory(estimator, X, y, sample_weight, reset, classes=None):
    """``(X, y, w)``: X a float array (or CSR matrix) of the estimator's dtype, y checked
    (numeric for the regressor; dense) and encoded for the objective, the weights checked
    (None when not given).
    ``reset`` records X's features and y's classes or columns afresh; ``classes`` are the
    classifier's (``partial_fit``)."""
    X, y = validate_data(estimator, X, dense_targets(y), reset=reset, multi_output=True,
                         dtype=estimator._dtype(), y_numeric=is_regressor(estimator),
                         accept_sparse=ACCEPT_SPARSE)
    y = estimator._encode_targets(y, reset=reset, classes=classes)
    return X, y, check_sample_weight(sample_weight, X.shape[0])[0]


def on_cluster(estimator, X, y, reset):
    """``(X, y)`` for a backend that keeps them on its cluster: X's shape checked against the
    previous fit's unless ``reset``, y encoded where it lies."""
    if estimator.early_stopping and estimator.solver in STOCHASTIC_SOLVERS:
        raise ValueError(f'early_stopping: with backend="{estimator.backend}", pass '
                         "validation_data to fit (no hold-out split is drawn from "
                         "distributed data)")
    if np.ndim(X) != 2:
        raise ValueError(f"X: expected a 2-D array, got shape {np.shape(X)}")
    if not reset and X.shape[1] != estimator.n_features_in_:
        raise ValueError(f"X: has {X.shape[1]} features, but {type(estimator).__name__} is "
                         f"expecting {estimator.n_features_in_} features as input")
    estimator.n_features_in_ = int(X.shape[1])
    return X, estimator._remote_targets(y, reset=reset)


def validation_data(estimator, data):
    """``fit``'s ``validation_data`` as ``(X_val, y_val, w_val)``, checked in memory against
    the fitted features and targets; w_val None when not given."""
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise ValueError("validation_data: expected (X_val, y_val) or (X_val, y_val, "
                         f"sample_weight_val), got {type(data).__name__} {data!r}"[:200])
    X_val, y_val, *weights = data
    X_val = validate_data(estimator, X_val, reset=False, dtype=estimator._dtype(),
                          accept_sparse=ACCEPT_SPARSE)
    y_val = estimator._encode_targets(np.asarray(dense_targets(y_val)), reset=False)
    w_val = (check_sample_weight(weights[0], X_val.shape[0], "validation_data[2]")[0]
             if weights else None)
    return X_val, y_val, w_val
