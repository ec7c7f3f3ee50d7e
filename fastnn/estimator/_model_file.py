"""A fitted estimator to and from a model file (:mod:`fastnn.io` owns the format).

A file keeps what predicting and continuing training need: Θ(l), the description of the
targets (each estimator's ``_file_targets`` and ``_restore_targets``: the classifier's
classes), the output layer, the parameters, the curves, the examples seen (``t_``) and the
step rule's state after sgd or adam (its moments or velocity, and α as the learning-rate
schedule left it). Files written before these fields existed read with the defaults of
their time: the model's own output layer (the sigmoid or the identity), ``t_`` 0, and α from
``learning_rate_init``.
"""

import numpy as np
from sklearn.base import is_regressor
from sklearn.utils._param_validation import InvalidParameterError

from fastnn.io import ModelFileError, write_model

FILE_FIELDS = ("loss", "activation")
"""Metadata fields of a model file of their own, not under ``training``: the loss and the
hidden activation. The field ``dtype`` is the model's (Θ's); the parameter ``dtype``, which
may be None, is under ``training`` (files written before take the model's)."""


def write_estimator(estimator, path):
    """Write the fitted ``estimator`` to ``path`` (see :meth:`_BaseMLP.save`)."""
    target, target_arrays = estimator._file_targets()
    layers = estimator._layers(estimator.n_features_in_, estimator.thetas_[-1].shape[0])
    params = estimator.get_params(deep=False)
    for name in FILE_FIELDS:
        params.pop(name, None)
    if params["dtype"] is not None:
        params["dtype"] = np.dtype(params["dtype"]).name
    if params.get("n_iter_no_change") == np.inf:
        params["n_iter_no_change"] = "inf"  # JSON has no infinity
    optimizer = getattr(estimator, "_optimizer", None)
    t, optimizer_arrays = optimizer.state() if optimizer is not None else (0, {})
    metadata = {
        "estimator": type(estimator).__name__,
        "layers": layers,
        "target": target,
        "loss": estimator._loss,
        "activation": estimator.activation,
        "dtype": estimator.thetas_[0].dtype.name,
        "output_activation": estimator.out_activation_,
        "n_iter": estimator.n_iter_,
        "t": estimator.t_,
        "training": params,
        "loss_curve": estimator.loss_curve_,
        "best_loss": (estimator.best_loss_ if estimator.best_loss_ is not None
                      and np.isfinite(estimator.best_loss_) else None),
        "validation_scores": estimator.validation_scores_,
        "best_validation_score": estimator.best_validation_score_,
        "optimizer": ({"solver": estimator.solver, "t": t,
                       "learning_rate": float(optimizer.learning_rate)}
                      if optimizer is not None else None),
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
    settings.setdefault("dtype", metadata["dtype"])
    if settings.get("n_iter_no_change") == "inf":
        settings["n_iter_no_change"] = np.inf
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
    estimator.n_layers_ = len(layers)
    estimator.n_outputs_ = layers[-1]
    from fastnn.estimator._base import _sklearn_name  # _base imports this module

    # Files written before the field existed hold one sigmoid unit per class or label (the
    # classifier) or identity outputs (the regressor).
    estimator.out_activation_ = metadata.get("output_activation") or _sklearn_name(
        "identity" if is_regressor(estimator) else "sigmoid")
    estimator.loss_curve_ = list(metadata.get("loss_curve", []))
    if estimator.loss_curve_:
        estimator.loss_ = estimator.loss_curve_[-1]
    estimator.n_iter_ = metadata["n_iter"]
    estimator.t_ = int(metadata.get("t") or 0)
    estimator.validation_scores_ = metadata.get("validation_scores")
    monitored = estimator.validation_scores_ is not None
    best_loss = metadata.get("best_loss")
    estimator.best_loss_ = (None if monitored else float("inf") if best_loss is None
                            else float(best_loss))
    best_score = metadata.get("best_validation_score")
    if best_score is None and monitored and estimator.validation_scores_:
        best_score = max(estimator.validation_scores_)
    estimator.best_validation_score_ = best_score
    saved = metadata.get("optimizer")
    if saved is not None:
        try:
            estimator._optimizer = estimator._make_optimizer(
                sum(theta.size for theta in estimator.thetas_), estimator._dtype()).restore(
                    saved["t"], arrays["optimizer"])
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"{path}: optimizer state: {error}") from None
        if saved.get("learning_rate") is not None:
            estimator._optimizer.learning_rate = float(saved["learning_rate"])
    return estimator
