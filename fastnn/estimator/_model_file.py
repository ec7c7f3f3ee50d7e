"""A fitted estimator to and from a model file (:mod:`fastnn.io` owns the format).

A file keeps what predicting and continuing training need: Θ(l), the description of the
targets (each estimator's ``_file_targets`` and ``_restore_targets``: the classifier's
classes), the parameters, the curves, and the step rule's state after sgd or adam.
"""

import numpy as np
from sklearn.utils._param_validation import InvalidParameterError

from fastnn.io import ModelFileError, write_model
from fastnn.optim import make_optimizer

FILE_FIELDS = ("loss", "activation", "dtype")
"""Metadata fields of a model file of their own, not under ``training``: the loss (a parameter
of the classifier, fixed for the regressor), the hidden activation and the dtype."""


def write_estimator(estimator, path):
    """Write the fitted ``estimator`` to ``path`` (see :meth:`_BaseMLP.save`)."""
    target, target_arrays = estimator._file_targets()
    layers = estimator._layers(estimator.n_features_in_, estimator.thetas_[-1].shape[0])
    params = estimator.get_params(deep=False)
    for name in FILE_FIELDS:
        params.pop(name, None)
    optimizer = getattr(estimator, "_optimizer", None)
    t, optimizer_arrays = optimizer.state() if optimizer is not None else (0, {})
    metadata = {
        "estimator": type(estimator).__name__,
        "layers": layers,
        "target": target,
        "loss": estimator._loss,
        "activation": estimator.activation,
        "dtype": estimator.dtype,
        "n_iter": estimator.n_iter_,
        "training": params,
        "loss_curve": estimator.loss_curve_,
        "best_loss": estimator.best_loss_ if np.isfinite(estimator.best_loss_) else None,
        "validation_scores": estimator.validation_scores_,
        "optimizer": ({"solver": estimator.solver, "t": t} if optimizer is not None
                      else None),
    }
    arrays = {**target_arrays,
              **{f"theta_{l}": theta for l, theta in enumerate(estimator.thetas_)},
              **{f"optimizer_{name}": array for name, array in optimizer_arrays.items()}}
    write_model(path, arrays, metadata)


def read_estimator(cls, arrays, metadata, path):
    """The fitted ``cls`` a model file holds, from what :func:`fastnn.io.read_model` read;
    ModelFileError when its settings or shapes do not make one."""
    layers = metadata["layers"]
    settings = dict(metadata["training"])
    params = set(cls._get_param_names())
    unknown = sorted(set(settings) - (params - set(FILE_FIELDS)))
    if unknown:
        raise ModelFileError(f"{path}: training settings {unknown} are not parameters of "
                             f"{cls.__name__}")
    if isinstance(settings.get("hidden_layer_sizes"), list):
        settings["hidden_layer_sizes"] = tuple(settings["hidden_layer_sizes"])
    fields = {name: metadata[name] for name in FILE_FIELDS if name in params}
    estimator = cls(**fields, **settings)
    try:
        estimator._validate_params()
    except (InvalidParameterError, ValueError) as error:
        raise ModelFileError(f"{path}: {error}") from None
    if metadata["loss"] != estimator._loss:
        raise ModelFileError(f"{path}: metadata field 'loss': expected {estimator._loss!r} "
                             f"for an {cls.__name__}, got {metadata['loss']!r}")
    hidden = estimator._hidden()
    if hidden != layers[1:-1]:
        raise ModelFileError(f"{path}: layers {layers} do not match hidden_layer_sizes "
                             f"{hidden}")
    estimator._restore_targets(arrays, metadata["target"], layers, path)
    estimator.thetas_ = [np.ascontiguousarray(theta) for theta in arrays["thetas"]]
    estimator.n_features_in_ = layers[0]
    estimator.loss_curve_ = list(metadata.get("loss_curve", []))
    estimator.n_iter_ = metadata["n_iter"]
    best_loss = metadata.get("best_loss")
    estimator.best_loss_ = float("inf") if best_loss is None else float(best_loss)
    estimator.validation_scores_ = metadata.get("validation_scores")
    saved = metadata.get("optimizer")
    if saved is not None:
        try:
            estimator._optimizer = make_optimizer(
                saved["solver"], sum(theta.size for theta in estimator.thetas_),
                estimator.learning_rate_init, estimator.momentum,
                estimator.nesterovs_momentum, estimator._dtype()).restore(
                    saved["t"], arrays["optimizer"])
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"{path}: optimizer state: {error}") from None
    return estimator
