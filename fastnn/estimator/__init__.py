"""``fastnn.MLPClassifier`` and ``fastnn.MLPRegressor``: the scikit-learn estimators over the
trainer, and model files.

Parameter names follow :class:`sklearn.neural_network.MLPClassifier` and
:class:`~sklearn.neural_network.MLPRegressor` wherever the meaning is the same (``alpha`` is
λ). The classifier's output layer is the sigmoid: binary targets get one output (K = 1),
multi-class targets one output per class (prediction by argmax), multi-label indicator targets
one output per label (thresholded at 0.5). The regressor's output layer is the identity, one
output per target column, trained on the squared error

    J = (1/2m) Σ_i Σ_k (h_k(x(i)) − y_k(i))² + (λ/2m) Σ Θ².

Both take example weights (``sample_weight``): m becomes Σ_i w_i and example i's loss terms
count w_i times, so integer weights are the same as repeating rows (see :mod:`fastnn.cost`).

The modules:

``_base``
    :class:`~fastnn.estimator._base._BaseMLP`, what the two share: the parameters, fitting
    (fresh, warm, ``partial_fit``, the early-stopping split) and prediction's forward pass.
``_data``
    The data ``fit`` is given, checked and encoded in memory, or left on the cluster of a
    backend that computes there.
``_classifier``, ``_regressor``
    What differs: the targets, the output layer and loss, and prediction.
``_model_file``
    A fitted estimator to and from a model file, whose format :mod:`fastnn.io` owns.
"""

from fastnn.estimator._classifier import MLPClassifier
from fastnn.estimator._model_file import read_estimator
from fastnn.estimator._regressor import MLPRegressor
from fastnn.io import ModelFileError, read_model

__all__ = ["MLPClassifier", "MLPRegressor", "load"]

ESTIMATORS = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}
"""The estimators a model file can hold, by the name it records."""


def load(path):
    """Read a model file written by :meth:`MLPClassifier.save` or :meth:`MLPRegressor.save`.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    estimator : fastnn.MLPClassifier or fastnn.MLPRegressor
        The estimator the file names, fitted, predicting exactly as the saved one did, and
        able to continue training (``partial_fit``, or ``fit`` with ``warm_start=True``).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ModelFileError
        A truncated, corrupted or foreign file, an unknown format version, or metadata that
        do not describe a model.
    """
    arrays, metadata = read_model(path)
    estimator_class = ESTIMATORS.get(metadata["estimator"])
    if estimator_class is None:
        raise ModelFileError(f"{path}: holds a {metadata['estimator']!r}, which this fastnn "
                             f"does not know (it knows {sorted(ESTIMATORS)})")
    return read_estimator(estimator_class, arrays, metadata, path)
