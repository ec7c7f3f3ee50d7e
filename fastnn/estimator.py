"""``fastnn.MLPClassifier`` and ``fastnn.MLPRegressor``: the scikit-learn estimators over the
trainer.

Parameter names follow :class:`sklearn.neural_network.MLPClassifier` and
:class:`~sklearn.neural_network.MLPRegressor` wherever the meaning is the same (``alpha`` is
λ). The classifier's output layer is the sigmoid: binary targets get one output (K = 1),
multi-class targets one output per class (prediction by argmax), multi-label indicator targets
one output per label (thresholded at 0.5). The regressor's output layer is the identity, one
output per target column, trained on the squared error

    J = (1/2m) Σ_i Σ_k (h_k(x(i)) − y_k(i))² + (λ/2m) Σ Θ².

Both take example weights (``sample_weight``): m becomes Σ_i w_i and example i's loss terms
count w_i times, so integer weights are the same as repeating rows (see :mod:`fastnn.cost`).

:class:`_BaseMLP` holds everything the two share (parameters, fitting, warm start, model
files); the estimators add what differs: their targets, the output layer and loss, and
prediction.
"""

import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_regressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from fastnn._validation import check_sample_weight
from fastnn.activations import ACTIVATIONS
from fastnn.backends import BACKENDS, backend_for
from fastnn.cost import Objective, forward
from fastnn.io import ModelFileError, read_model, write_model
from fastnn.losses import LOSSES
from fastnn.network import init_weights, n_params, pack, theta_shapes, unpack, views
from fastnn.optim import make_optimizer
from fastnn.trainer import SOLVERS, STOCHASTIC_SOLVERS, TrainingDiverged, train

__all__ = ["MLPClassifier", "MLPRegressor", "load"]

FILE_FIELDS = ("loss", "activation", "dtype")
"""Metadata fields of a model file of their own, not under ``training``: the loss (a parameter
of the classifier, fixed for the regressor), the hidden activation and the dtype."""


def _has_stochastic_solver(estimator):
    """``partial_fit`` exists for the mini-batch solvers only (as in scikit-learn, so that
    ``hasattr(estimator, "partial_fit")`` tells whether it can be called)."""
    if estimator.solver not in STOCHASTIC_SOLVERS:
        raise AttributeError(f"partial_fit: only for the mini-batch solvers "
                             f"{STOCHASTIC_SOLVERS}, got solver={estimator.solver!r}")
    return True


def _trained_in_place(thetas, layers, dtype):
    """The vector θ that ``thetas`` are the views of, as the last fit left them, to train in
    place (no P-sized array made per ``partial_fit``); a packed copy when they are not."""
    vec = thetas[0].base
    if (isinstance(vec, np.ndarray) and vec.dtype == dtype and vec.flags.writeable
            and vec.ndim == 1 and vec.shape[0] == n_params(layers)
            and all(theta.base is vec and theta.ctypes.data == view.ctypes.data
                    for theta, view in zip(thetas, views(vec, layers)))):
        return vec
    return pack(thetas).astype(dtype, copy=False)


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, fitting, model files.

    A subclass sets ``_output_activation`` and ``_loss`` and implements what concerns its
    targets: ``_encode_targets``, ``_n_outputs``, ``_file_targets`` and ``_restore_targets``,
    and where the defaults do not do, ``_remote_targets`` and ``_stratify``.
    """

    _output_activation: ClassVar[str]
    """The output layer: ``"sigmoid"`` (classification) or ``"identity"`` (regression)."""

    _parameter_constraints: ClassVar[dict] = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "solver": [StrOptions(set(SOLVERS))],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 0, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "random_state": [None, Interval(Integral, 0, 2**32 - 1, closed="both"),
                         np.random.Generator],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "backend": [StrOptions({"auto", *BACKENDS})],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "dtype": [StrOptions({"float32", "float64"})],
    }

    # The regressor's signature; the classifier's adds ``loss``.
    def __init__(self, hidden_layer_sizes=(100,), alpha=1e-4, solver="adam",
                 learning_rate_init=1e-3, batch_size="auto", max_iter=200, tol=1e-4,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 momentum=0.9, nesterovs_momentum=True, random_state=None, verbose=False,
                 warm_start=False, backend="auto", activation="sigmoid", dtype="float64"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.backend = backend
        self.activation = activation
        self.dtype = dtype

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    # -- fitting -----------------------------------------------------------------------------

    def _dtype(self):
        return np.dtype(self.dtype)

    def _validate_params(self):
        """The checks of ``_parameter_constraints``, and the one they cannot express: the
        sizes in an array-like ``hidden_layer_sizes`` (a single int is theirs)."""
        super()._validate_params()
        hidden = self.hidden_layer_sizes
        if not np.isscalar(hidden) and not all(isinstance(size, Integral) and size > 0
                                               for size in hidden):
            raise ValueError(f"hidden_layer_sizes: expected positive integers, got "
                             f"{list(hidden)}")

    def _hidden(self):
        """The hidden layer sizes, checked by :meth:`_validate_params`, as a list of ints (a
        single int means one layer)."""
        hidden = self.hidden_layer_sizes
        return [int(size) for size in ([hidden] if np.isscalar(hidden) else hidden)]

    def _layers(self, n_features, n_outputs):
        return [n_features, *self._hidden(), n_outputs]

    @property
    def _backend(self):
        """The implementation behind ``backend`` (:func:`fastnn.backends.backend_for`)."""
        return backend_for(self.backend)

    @property
    def _local_backend(self):
        """The backend for in-memory data (validation, prediction)."""
        return self.backend if self._backend.in_process else "auto"

    def _validate_Xy(self, X, y, reset):
        """X as a float array of ``dtype`` and y checked (numeric for the regressor)."""
        return validate_data(self, X, y, reset=reset, multi_output=True, dtype=self._dtype(),
                             y_numeric=is_regressor(self))

    def _remote_targets(self, y, reset):
        """y for a backend that keeps it where it is (``"dask"``); by default as encoded by
        :meth:`_encode_targets`, which must then work on such an array."""
        return self._encode_targets(y, reset)

    def _stratify(self, y):
        """The labels to stratify the early-stopping split by, or None."""
        return None

    def fit(self, X, y, sample_weight=None, *, validation_data=None):
        """Train on X and y.

        Parameters
        ----------
        X : array-like of shape (m, n_features)
        y : array-like of shape (m,) or (m, K)
            The classifier's labels or 0/1 indicator matrix; the regressor's real values, one
            column per output.
        sample_weight : array-like of shape (m,) or float, optional
            Example weights w_i ≥ 0, not all zero: the cost becomes the weighted mean of the
            examples' loss terms, and λ's term is scaled by Σ w_i instead of m. Integer
            weights train as repeated rows; None weighs every example 1.
        validation_data : tuple (X_val, y_val) or (X_val, y_val, sample_weight_val), optional
            Held-out data whose cost and score (accuracy, or R² for the regressor; weighted
            with ``sample_weight_val``) are recorded every iteration in ``history_``; with
            ``early_stopping`` it is the data monitored (instead of a ``validation_fraction``
            split of X).

        Returns
        -------
        self
        """
        self._validate_params()
        warm = self.warm_start and hasattr(self, "thetas_")
        if not warm:
            self.__dict__.pop("_optimizer", None)
        if not self._backend.in_process:
            X, y_encoded = self._remote_data(X, y, warm)
        else:
            X, y = self._validate_Xy(X, y, reset=not warm)
            y_encoded = self._encode_targets(y, reset=not warm)
            sample_weight = check_sample_weight(sample_weight, X.shape[0])[0]
        if validation_data is not None:
            validation_data = self._validation_data(validation_data)
        return self._fit(X, y_encoded, sample_weight, max_iter=self.max_iter, warm=warm,
                         keep_optimizer=False, validation_data=validation_data)

    def _validation_data(self, validation_data):
        """``(X_val, y_val, w_val)`` checked and encoded, w_val None when not given."""
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data: expected (X_val, y_val) or (X_val, y_val, "
                             f"sample_weight_val), got {type(validation_data).__name__} "
                             f"{validation_data!r}"[:200])
        X_val, y_val, *weights = validation_data
        X_val = validate_data(self, X_val, reset=False, dtype=self._dtype())
        y_val = self._encode_targets(np.asarray(y_val), reset=False)
        w_val = (check_sample_weight(weights[0], X_val.shape[0], "validation_data[2]")[0]
                 if weights else None)
        return X_val, y_val, w_val

    def _remote_data(self, X, y, warm):
        """X and y for a backend that keeps them where they are (``"dask"``)."""
        if self.early_stopping and self.solver in STOCHASTIC_SOLVERS:
            raise ValueError(f'early_stopping: with backend="{self.backend}", pass '
                             "validation_data to fit (no hold-out split is drawn from "
                             "distributed data)")
        if np.ndim(X) != 2:
            raise ValueError(f"X: expected a 2-D array, got shape {np.shape(X)}")
        if warm and X.shape[1] != self.n_features_in_:
            raise ValueError(f"X: has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input")
        self.n_features_in_ = int(X.shape[1])
        return X, self._remote_targets(y, reset=not warm)

    def _partial_fit(self, X, y, sample_weight, classes=None):
        """The ``partial_fit`` of both estimators; ``classes`` is the classifier's."""
        self._validate_params()
        first = not hasattr(self, "thetas_")
        X, y = self._validate_Xy(X, y, reset=first)
        y_encoded = self._encode_targets(y, reset=first, classes=classes)
        sample_weight = check_sample_weight(sample_weight, X.shape[0])[0]
        return self._fit(X, y_encoded, sample_weight, max_iter=1, warm=not first,
                         keep_optimizer=True)

    def _hold_out(self, X, y, sample_weight, rng):
        """Split ``validation_fraction`` of the examples, with their weights, off for early
        stopping: ``(X_train, y_train, w_train), (X_val, y_val, w_val)``."""
        arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
        parts = train_test_split(*arrays, test_size=self.validation_fraction,
                                 stratify=self._stratify(y), random_state=rng.integers(2**31))
        X_train, X_val, y_train, y_val = parts[:4]
        w_train, w_val = parts[4:] if sample_weight is not None else (None, None)
        for part, weights in (("training", w_train), ("validation", w_val)):
            if weights is not None and not weights.any():
                raise ValueError(f"sample_weight: every weight of the {part} part of the "
                                 "early-stopping split is zero; change random_state or "
                                 "validation_fraction, or pass validation_data")
        return (X_train, y_train, w_train), (X_val, y_val, w_val)

    def _fit(self, X, y, sample_weight, max_iter, warm, keep_optimizer, validation_data=None):
        """Train from the previous weights (``warm``) or new ones; ``validation_data`` is
        ``(X_val, y_val, w_val)`` or None."""
        layers = self._layers(X.shape[1], self._n_outputs)
        rng = np.random.default_rng(self.random_state)
        if warm:
            if [theta.shape for theta in self.thetas_] != theta_shapes(layers):
                raise ValueError("hidden_layer_sizes: changed since the previous fit; "
                                 "set warm_start=False to start over")
            theta = _trained_in_place(self.thetas_, layers, self._dtype())
        else:
            theta = pack(init_weights(layers, seed=rng, dtype=self._dtype()))
        stochastic = self.solver in STOCHASTIC_SOLVERS
        train_data = (X, y, sample_weight)
        if self.early_stopping and stochastic and max_iter > 1 and validation_data is None:
            train_data, validation_data = self._hold_out(X, y, sample_weight, rng)
        options = {"loss": self._loss, "activation": self.activation,
                   "output_activation": self._output_activation, "dtype": self._dtype()}
        validation = None
        if validation_data is not None:
            X_val, y_val, w_val = validation_data
            validation = Objective(layers, X_val, y_val, 0.0, backend=self._local_backend,
                                   sample_weight=w_val, **options)
        X_train, y_train, w_train = train_data
        objective = Objective(layers, X_train, y_train, self.alpha, backend=self.backend,
                              sample_weight=w_train, **options)
        batch_size = (min(200, objective.m) if self.batch_size == "auto"
                      else min(self.batch_size, objective.m))
        state = getattr(self, "_optimizer", None) if keep_optimizer else None
        try:
            result = train(
                objective, theta, solver=self.solver, learning_rate=self.learning_rate_init,
                max_iter=max_iter, batch_size=batch_size, momentum=self.momentum,
                nesterov=self.nesterovs_momentum, tol=self.tol,
                n_iter_no_change=self.n_iter_no_change if max_iter > 1 else 0,
                validation=validation, early_stopping=self.early_stopping,
                verbose=self.verbose, random_state=rng, optimizer_state=state, out=theta)
        except TrainingDiverged as error:
            self._set_fitted(error.theta, layers, error.history, np.inf, warm)
            raise
        self._optimizer = result.optimizer
        self._set_fitted(result.theta, layers, result.history, result.best_loss, warm)
        if result.history.stopped == "max_iter" and max_iter > 1:
            warnings.warn(f"{self.solver}: max_iter={max_iter} reached before convergence; "
                          "raise max_iter or tol", ConvergenceWarning, stacklevel=3)
        return self

    def _set_fitted(self, theta, layers, history, best_loss, warm):
        """Fitted attributes; a warm continuation extends the curves of the previous fits."""
        self.thetas_ = unpack(theta, layers)  # θ is the estimator's own
        self.history_ = history
        self.loss_curve_ = (self.loss_curve_ if warm else []) + history["cost"]
        self.n_iter_ = (self.n_iter_ if warm else 0) + len(history)
        self.best_loss_ = float(min(best_loss, self.best_loss_) if warm else best_loss)
        monitored = self.early_stopping and self.solver in STOCHASTIC_SOLVERS
        scores = history["val_score"] if monitored else None
        self.validation_scores_ = ((self.validation_scores_ or []) + scores
                                   if warm and scores is not None else scores)

    # -- prediction --------------------------------------------------------------------------

    def _forward(self, X, logits=False):
        """h_Θ(x) of every row of X, shape (m, K): σ(z(L)), or z(L) with ``logits`` or the
        identity output."""
        check_is_fitted(self, "thetas_")
        backend = self._backend
        if backend.holds(X):
            layers = self._layers(self.n_features_in_, self.thetas_[-1].shape[0])
            return backend.forward(pack(self.thetas_), layers, X, self.activation,
                                   logits or self._output_activation == "identity")
        X = validate_data(self, X, reset=False, dtype=self._dtype())
        return forward(self.thetas_, X, activation=self.activation,
                       output_activation=self._output_activation,
                       backend=self._local_backend, logits=logits)

    # -- model files -------------------------------------------------------------------------

    def save(self, path):
        """Write the fitted model to ``path`` (one ``.npz`` file; see :func:`fastnn.load`).

        Everything needed to predict and to continue training is kept: Θ(l), the targets'
        description (the classifier's classes), the parameters, the loss curve, and the step
        rule's state after sgd or adam.

        Parameters
        ----------
        path : str or path-like

        Raises
        ------
        TypeError
            When a parameter cannot be stored faithfully (a ``numpy.random.Generator`` as
            ``random_state``, say): the message names it.
        """
        check_is_fitted(self, "thetas_")
        target, target_arrays = self._file_targets()
        layers = self._layers(self.n_features_in_, self.thetas_[-1].shape[0])
        params = self.get_params(deep=False)
        for name in FILE_FIELDS:
            params.pop(name, None)
        optimizer = getattr(self, "_optimizer", None)
        t, optimizer_arrays = optimizer.state() if optimizer is not None else (0, {})
        metadata = {
            "estimator": type(self).__name__,
            "layers": layers,
            "target": target,
            "loss": self._loss,
            "activation": self.activation,
            "dtype": self.dtype,
            "n_iter": self.n_iter_,
            "training": params,
            "loss_curve": self.loss_curve_,
            "best_loss": self.best_loss_ if np.isfinite(self.best_loss_) else None,
            "validation_scores": self.validation_scores_,
            "optimizer": {"solver": self.solver, "t": t} if optimizer is not None else None,
        }
        arrays = {**target_arrays,
                  **{f"theta_{l}": theta for l, theta in enumerate(self.thetas_)},
                  **{f"optimizer_{name}": array for name, array in optimizer_arrays.items()}}
        write_model(path, arrays, metadata)

    @classmethod
    def _from_file(cls, arrays, metadata, path):
        """The fitted estimator a model file holds; ModelFileError when its settings or
        shapes do not make one."""
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
            hidden = estimator._hidden()
        except (InvalidParameterError, ValueError) as error:
            raise ModelFileError(f"{path}: {error}") from None
        if metadata["loss"] != estimator._loss:
            raise ModelFileError(f"{path}: metadata field 'loss': expected "
                                 f"{estimator._loss!r} for an {cls.__name__}, got "
                                 f"{metadata['loss']!r}")
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


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A fully connected sigmoid network classifier trained by backpropagation.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
        Units of each hidden layer, s_2 ... s_{L-1}.
    alpha : float, default 1e-4
        λ, the L2 penalty ``(λ/2m) Σ Θ²`` on all but the bias weights.
    solver : {"lbfgs", "gd", "sgd", "adam"}, default "adam"
    learning_rate_init : float, default 1e-3
        α of gd, sgd and adam.
    batch_size : int or "auto", default "auto"
        Mini-batch size of sgd and adam; "auto" is ``min(200, m)``.
    max_iter : int, default 200
        Iterations (lbfgs, gd) or epochs (sgd, adam).
    tol : float, default 1e-4
        lbfgs and gd stop when the largest component of the gradient is at most ``tol``; for
        sgd and adam, the improvement below which an epoch counts as none (see
        ``n_iter_no_change``).
    early_stopping : bool, default False
        For sgd and adam (as in scikit-learn): hold out ``validation_fraction`` of the training
        data (stratified, with their weights), stop when its accuracy has not improved by
        ``tol`` for ``n_iter_no_change`` epochs, and keep the best parameters.
    validation_fraction : float, default 0.1
    n_iter_no_change : int, default 10
        Epochs without improvement after which sgd and adam stop; 0 never stops them early.
        Like scikit-learn's, it does not apply to lbfgs and gd.
    momentum : float, default 0.9
    nesterovs_momentum : bool, default True
    random_state : None, int or numpy.random.Generator
        Initial weights, mini-batch order and the early-stopping split. A model file stores
        None or an int; save refuses a Generator (its repr would not give it back).
    verbose : bool, default False
        Show a progress bar (on a terminal).
    warm_start : bool, default False
        Continue from the previous fit's weights.
    backend : {"auto", "numpy", "numba", "numba-parallel", "dask"}, default "auto"
        ``"dask"``: ``fit`` leaves X, y and the weights (Dask arrays chunked by rows) on the
        workers of Dask's default client and computes every cost and gradient there (see
        :mod:`fastnn.backends._dask`); ``predict`` on a Dask array returns a Dask array.
    loss : {"cross_entropy", "squared_error"}, default "cross_entropy"
    activation : {"sigmoid", "tanh", "relu"}, default "sigmoid"
        Activation of the hidden layers; the output layer is the sigmoid.
    dtype : {"float64", "float32"}, default "float64"

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    thetas_ : list of ndarray
        Θ(l) of shape ``(s_{l+1}, s_l + 1)``, acting on the raw inputs given to ``fit``.
    loss_curve_ : list of float
        The training cost after every iteration or epoch (every solver, L-BFGS included).
    n_iter_ : int
    best_loss_ : float
    validation_scores_ : list of float
        Validation accuracy (weighted, with weights) per epoch, when ``early_stopping`` (sgd,
        adam).
    history_ : fastnn.trainer.History
        Every iteration's record of the last fit (cost, time, validation cost and accuracy);
        not kept in model files.
    n_features_in_ : int
    """

    _output_activation = "sigmoid"
    _parameter_constraints: ClassVar[dict] = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions(set(LOSSES))],
    }

    def __init__(self, hidden_layer_sizes=(100,), alpha=1e-4, solver="adam",
                 learning_rate_init=1e-3, batch_size="auto", max_iter=200, tol=1e-4,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 momentum=0.9, nesterovs_momentum=True, random_state=None, verbose=False,
                 warm_start=False, backend="auto", loss="cross_entropy", activation="sigmoid",
                 dtype="float64"):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, alpha=alpha, solver=solver,
            learning_rate_init=learning_rate_init, batch_size=batch_size, max_iter=max_iter,
            tol=tol, early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, random_state=random_state, verbose=verbose,
            warm_start=warm_start, backend=backend, activation=activation, dtype=dtype)
        self.loss = loss

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    @property
    def _loss(self):
        return self.loss

    # -- targets -----------------------------------------------------------------------------

    def _encode_targets(self, y, reset, classes=None):
        """Set ``classes_`` (``reset``: from ``classes`` if given, else y) and return y encoded
        for the objective: indices into ``classes_``, or the 0/1 indicator matrix."""
        if getattr(y, "ndim", 1) == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        # type_of_target takes 0.1 ms even for 200 labels: once more only where it decides
        # (not for the next batch of a partial_fit of labels)
        kind = type_of_target(y) if reset or self._multilabel else None
        if reset:
            if kind == "multilabel-indicator":
                self.classes_ = np.arange(y.shape[1])
                self._multilabel = True
            else:
                self.classes_ = np.unique(y if classes is None else classes)
                self._multilabel = False
                self._check_two_classes()
        if self._multilabel:
            if kind != "multilabel-indicator" or y.shape[1] != self.classes_.shape[0]:
                raise ValueError(f"y: expected a 0/1 indicator matrix with "
                                 f"{self.classes_.shape[0]} columns, as in the first fit")
            return np.asarray(y)
        unseen = np.setdiff1d(np.unique(y), self.classes_)
        if unseen.size:
            raise ValueError(f"y: has labels the model has not seen: {unseen[:5].tolist()}; "
                             f"its classes are {self.classes_.tolist()}")
        return np.searchsorted(self.classes_, y)

    def _check_two_classes(self):
        if self.classes_.shape[0] < 2:
            raise ValueError(f"y: needs samples of at least 2 classes, got 1 class "
                             f"({self.classes_[0]!r})")

    def _remote_targets(self, y, reset):
        """The classes come from one pass over y where it lies, and y is encoded there,
        chunk by chunk."""
        if reset:
            self._multilabel = np.ndim(y) == 2
            self.classes_ = (np.arange(np.shape(y)[1]) if self._multilabel
                             else self._backend.classes(y))
            self._check_two_classes()
        if self._multilabel:
            return y
        return self._backend.encode(y, self.classes_)

    def _stratify(self, y):
        """Stratify by class, unless multi-label or a class has fewer than 2 examples."""
        stratifiable = not self._multilabel and np.bincount(y).min(initial=2) >= 2
        return y if stratifiable else None

    @property
    def _n_outputs(self):
        return self.classes_.shape[0] if self._multilabel or self.classes_.shape[0] > 2 else 1

    # -- fitting -----------------------------------------------------------------------------

    @available_if(_has_stochastic_solver)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch of the mini-batch solver (``sgd`` or ``adam``; with another solver there is
        no ``partial_fit``) on X, y.

        A model read by :func:`fastnn.load` continues with the step rule's state (velocity,
        moments) it was saved with.

        Parameters
        ----------
        X : array-like of shape (m, n_features)
        y : array-like of shape (m,) or (m, n_labels)
        classes : array-like of shape (n_classes,), optional
            All labels that will ever appear; required on the first call unless y is a
            multi-label indicator matrix.
        sample_weight : array-like of shape (m,) or float, optional
            Example weights, as in :meth:`fit`.

        Returns
        -------
        self
        """
        first = not hasattr(self, "thetas_")
        if first and classes is None and type_of_target(y) != "multilabel-indicator":
            raise ValueError("classes: required on the first call to partial_fit")
        return self._partial_fit(X, y, sample_weight, classes=classes)

    # -- prediction --------------------------------------------------------------------------

    def decision_function(self, X):
        """The output layer's pre-activations z(L).

        Parameters
        ----------
        X : array-like of shape (m, n_features)

        Returns
        -------
        Z : ndarray of shape (m,) or (m, K)
            (m,) for binary targets (positive means ``classes_[1]``), (m, K) otherwise
            (argmax for multi-class, sign per label for multi-label).
        """
        Z = self._forward(X, logits=True)
        return Z[:, 0] if Z.shape[1] == 1 and not self._multilabel else Z

    def predict_proba(self, X):
        """Class probabilities.

        Binary: ``[1 − h, h]``; multi-class: the K sigmoid outputs scaled to sum to 1;
        multi-label: each label's probability h_k (rows need not sum to 1).

        Parameters
        ----------
        X : array-like of shape (m, n_features)

        Returns
        -------
        P : ndarray of shape (m, n_classes)
        """
        H = self._forward(X)
        if self._multilabel:
            return H
        if H.shape[1] == 1:
            return np.concatenate([1 - H, H], axis=1)
        return H / H.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Predicted labels.

        Parameters
        ----------
        X : array-like of shape (m, n_features)

        Returns
        -------
        labels : ndarray of shape (m,) or (m, n_labels)
            Labels from ``classes_``, or a 0/1 indicator matrix for multi-label targets.
        """
        H = self._forward(X)
        if self._multilabel:
            return (H >= 0.5).astype(np.int64)
        index = (H[:, 0] >= 0.5).astype(np.intp) if H.shape[1] == 1 else H.argmax(axis=1)
        return self._backend.decode(index, self.classes_)

    # -- model files -------------------------------------------------------------------------

    def _file_targets(self):
        """The ``target`` field and the ``classes`` array of a model file."""
        classes = np.asarray(self.classes_)
        if classes.dtype.kind == "O" and all(isinstance(label, str) for label in classes):
            classes = classes.astype(str)
        if classes.dtype.kind not in "biufU":
            raise TypeError("classes_: only numeric or string class labels can be saved "
                            f"without pickle, got dtype {self.classes_.dtype}")
        target = ("multilabel" if self._multilabel
                  else "binary" if self._n_outputs == 1 else "multiclass")
        return target, {"classes": classes}

    def _restore_targets(self, arrays, target, layers, path):
        """``classes_`` from a model file, checked against its target and output layer."""
        if target == "continuous":
            raise ModelFileError(f"{path}: metadata field 'target': expected a class target "
                                 f"for an {type(self).__name__}, got {target!r}")
        classes = arrays["classes"]
        multilabel = target == "multilabel"
        K = classes.shape[0] if multilabel or classes.shape[0] > 2 else 1
        if K != layers[-1] or classes.shape[0] < 2:
            raise ModelFileError(f"{path}: layers {layers} do not match "
                                 f"{classes.shape[0]} classes")
        self.classes_ = classes
        self._multilabel = multilabel


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A fully connected network regressor trained by backpropagation.

    The hidden layers are those of :class:`MLPClassifier`; the output layer is the identity,
    one unit per target column, and the cost the squared error
    ``J = (1/2m) Σ_i Σ_k (h_k − y_k)² + (λ/2m) Σ Θ²``. Targets are used as given (not
    scaled).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (100,)
        Units of each hidden layer, s_2 ... s_{L-1}.
    alpha : float, default 1e-4
        λ, the L2 penalty ``(λ/2m) Σ Θ²`` on all but the bias weights.
    solver : {"lbfgs", "gd", "sgd", "adam"}, default "adam"
    learning_rate_init : float, default 1e-3
        α of gd, sgd and adam.
    batch_size : int or "auto", default "auto"
        Mini-batch size of sgd and adam; "auto" is ``min(200, m)``.
    max_iter : int, default 200
        Iterations (lbfgs, gd) or epochs (sgd, adam).
    tol : float, default 1e-4
        lbfgs and gd stop when the largest component of the gradient is at most ``tol``; for
        sgd and adam, the improvement below which an epoch counts as none (see
        ``n_iter_no_change``).
    early_stopping : bool, default False
        For sgd and adam (as in scikit-learn): hold out ``validation_fraction`` of the training
        data (with their weights), stop when its R² has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, and keep the best parameters.
    validation_fraction : float, default 0.1
    n_iter_no_change : int, default 10
        Epochs without improvement after which sgd and adam stop; 0 never stops them early.
        Like scikit-learn's, it does not apply to lbfgs and gd.
    momentum : float, default 0.9
    nesterovs_momentum : bool, default True
    random_state : None, int or numpy.random.Generator
        Initial weights, mini-batch order and the early-stopping split. A model file stores
        None or an int; save refuses a Generator (its repr would not give it back).
    verbose : bool, default False
        Show a progress bar (on a terminal).
    warm_start : bool, default False
        Continue from the previous fit's weights.
    backend : {"auto", "numpy", "numba", "numba-parallel", "dask"}, default "auto"
        ``"dask"``: ``fit`` leaves X, y and the weights (Dask arrays chunked by rows) on the
        workers of Dask's default client and computes every cost and gradient there (see
        :mod:`fastnn.backends._dask`); ``predict`` on a Dask array returns a Dask array.
    activation : {"sigmoid", "tanh", "relu"}, default "sigmoid"
        Activation of the hidden layers; the output layer is the identity.
    dtype : {"float64", "float32"}, default "float64"

    Attributes
    ----------
    n_outputs_ : int
        K, the number of target columns (1 for y of shape (m,)).
    thetas_ : list of ndarray
        Θ(l) of shape ``(s_{l+1}, s_l + 1)``, acting on the raw inputs given to ``fit``.
    loss_curve_ : list of float
        The training cost after every iteration or epoch (every solver, L-BFGS included).
    n_iter_ : int
    best_loss_ : float
    validation_scores_ : list of float
        Validation R² (weighted, with weights; averaged over the outputs) per epoch, when
        ``early_stopping`` (sgd, adam).
    history_ : fastnn.trainer.History
        Every iteration's record of the last fit (cost, time, validation cost and R²); not
        kept in model files.
    n_features_in_ : int
    """

    _output_activation = "identity"
    _loss = "squared_error"

    # -- targets -----------------------------------------------------------------------------

    def _encode_targets(self, y, reset, classes=None):
        """Set ``n_outputs_`` (``reset``) and return y, checked to have as many columns;
        ``classes`` is the classifier's and not used."""
        n_outputs = 1 if np.ndim(y) == 1 else int(np.shape(y)[1])
        if reset:
            self.n_outputs_ = n_outputs
        elif n_outputs != self.n_outputs_:
            raise ValueError(f"y: expected {self.n_outputs_} target column(s), as in the "
                             f"first fit, got shape {np.shape(y)}")
        return y

    @property
    def _n_outputs(self):
        return self.n_outputs_

    # -- fitting -----------------------------------------------------------------------------

    @available_if(_has_stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch of the mini-batch solver (``sgd`` or ``adam``; with another solver there is
        no ``partial_fit``) on X, y.

        A model read by :func:`fastnn.load` continues with the step rule's state (velocity,
        moments) it was saved with.

        Parameters
        ----------
        X : array-like of shape (m, n_features)
        y : array-like of shape (m,) or (m, n_outputs)
        sample_weight : array-like of shape (m,) or float, optional
            Example weights, as in :meth:`fit`.

        Returns
        -------
        self
        """
        return self._partial_fit(X, y, sample_weight)

    # -- prediction --------------------------------------------------------------------------

    def predict(self, X):
        """Predicted targets, the network's outputs h = z(L).

        Parameters
        ----------
        X : array-like of shape (m, n_features)

        Returns
        -------
        y : ndarray of shape (m,) or (m, n_outputs)
            (m,) when the model has one output (as scikit-learn's MLPRegressor), in the
            model's dtype.
        """
        H = self._forward(X)
        return H[:, 0] if H.shape[1] == 1 else H

    # -- model files -------------------------------------------------------------------------

    def _file_targets(self):
        """The ``target`` field of a model file, and no arrays: there are no classes."""
        return "continuous", {}

    def _restore_targets(self, arrays, target, layers, path):
        """``n_outputs_`` from a model file's output layer, after checking its target."""
        if target != "continuous":
            raise ModelFileError(f"{path}: metadata field 'target': expected 'continuous' "
                                 f"for an {type(self).__name__}, got {target!r}")
        self.n_outputs_ = layers[-1]


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
    return estimator_class._from_file(arrays, metadata, path)
