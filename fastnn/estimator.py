"""``fastnn.MLPClassifier``: the scikit-learn estimator over the trainer.

Parameter names follow :class:`sklearn.neural_network.MLPClassifier` wherever the meaning is the
same (``alpha`` is λ). Binary targets get one sigmoid output (K = 1), multi-class targets one
output per class (prediction by argmax), multi-label indicator targets one output per label
(thresholded at 0.5).
"""

import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from fastnn.activations import ACTIVATIONS
from fastnn.backends import BACKENDS
from fastnn.cost import Objective, forward
from fastnn.io import ModelFileError, read_model, write_model
from fastnn.losses import LOSSES
from fastnn.network import init_weights, pack, theta_shapes, unpack
from fastnn.optim import make_optimizer
from fastnn.trainer import SOLVERS, STOCHASTIC_SOLVERS, TrainingDiverged, train

__all__ = ["MLPClassifier", "load"]

FILE_FIELDS = ("loss", "activation", "dtype")
"""Parameters a model file keeps as fields of their own; the others go under ``training``."""


class MLPClassifier(ClassifierMixin, BaseEstimator):
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
        data (stratified), stop when its accuracy has not improved by ``tol`` for
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
        ``"dask"``: ``fit`` leaves X and y (Dask arrays chunked by rows) on the workers of
        Dask's default client and computes every cost and gradient there (see
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
        Validation accuracy per epoch, when ``early_stopping`` (sgd, adam).
    history_ : fastnn.trainer.History
        Every iteration's record of the last fit (cost, time, validation cost and accuracy);
        not kept in model files.
    n_features_in_ : int
    """

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
        "loss": [StrOptions(set(LOSSES))],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "dtype": [StrOptions({"float32", "float64"})],
    }

    def __init__(self, hidden_layer_sizes=(100,), alpha=1e-4, solver="adam",
                 learning_rate_init=1e-3, batch_size="auto", max_iter=200, tol=1e-4,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10,
                 momentum=0.9, nesterovs_momentum=True, random_state=None, verbose=False,
                 warm_start=False, backend="auto", loss="cross_entropy", activation="sigmoid",
                 dtype="float64"):
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
        self.loss = loss
        self.activation = activation
        self.dtype = dtype

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    # -- fitting -----------------------------------------------------------------------------

    def _dtype(self):
        return np.dtype(self.dtype)

    def _hidden(self):
        """The hidden layer sizes as a list of ints (a single int means one layer)."""
        hidden = self.hidden_layer_sizes
        hidden = [hidden] if np.isscalar(hidden) else list(hidden)
        if not all(isinstance(size, Integral) and size > 0 for size in hidden):
            raise ValueError(f"hidden_layer_sizes: expected positive integers, got {hidden}")
        return [int(size) for size in hidden]

    def _layers(self, n_features, n_outputs):
        return [n_features, *self._hidden(), n_outputs]

    @property
    def _remote(self):
        """The backend when it computes elsewhere on data it keeps there, else None."""
        backend = BACKENDS.get(self.backend)
        return None if backend is None or backend.in_process else backend

    @property
    def _local_backend(self):
        """The backend for in-memory data (validation, prediction)."""
        return "auto" if self._remote is not None else self.backend

    def _encode_targets(self, y, classes=None):
        """Set ``classes_`` (first call) and return y encoded for the objective."""
        if getattr(y, "ndim", 1) == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        kind = type_of_target(y)
        if not hasattr(self, "classes_"):
            if kind == "multilabel-indicator":
                self.classes_ = np.arange(y.shape[1])
                self._multilabel = True
            else:
                self.classes_ = np.unique(y if classes is None else classes)
                self._multilabel = False
                if self.classes_.shape[0] < 2:
                    raise ValueError(
                        f"y: needs samples of at least 2 classes, got 1 class "
                        f"({self.classes_[0]!r})")
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

    @property
    def _n_outputs(self):
        return self.classes_.shape[0] if self._multilabel or self.classes_.shape[0] > 2 else 1

    def fit(self, X, y, validation_data=None):
        """Train on X (m, n_features) and y (labels, or a 0/1 indicator matrix).

        Parameters
        ----------
        X : array-like of shape (m, n_features)
        y : array-like of shape (m,) or (m, n_labels)
        validation_data : tuple (X_val, y_val), optional
            Held-out data whose cost and accuracy are recorded every iteration in
            ``history_``; with ``early_stopping`` it is the data monitored (instead of a
            ``validation_fraction`` split of X).

        Returns
        -------
        self
        """
        self._validate_params()
        warm = self.warm_start and hasattr(self, "thetas_")
        if not warm:
            for attribute in ("classes_", "_optimizer"):
                self.__dict__.pop(attribute, None)
        if self._remote is not None:
            X, y_encoded = self._remote_data(X, y, warm)
        else:
            X, y = validate_data(self, X, y, reset=not warm, multi_output=True,
                                 dtype=self._dtype(), y_numeric=False)
            y_encoded = self._encode_targets(y)
        if validation_data is not None:
            X_val, y_val = validation_data
            X_val = validate_data(self, X_val, reset=False, dtype=self._dtype())
            validation_data = (X_val, self._encode_targets(np.asarray(y_val)))
        return self._fit(X, y_encoded, max_iter=self.max_iter, solver=self.solver,
                         warm=warm, keep_optimizer=False, validation_data=validation_data)

    def _remote_data(self, X, y, warm):
        """X and y for a backend that keeps them where they are (``"dask"``): the classes come
        from one pass over y there, and y is encoded there, chunk by chunk."""
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
        if not hasattr(self, "classes_"):
            self._multilabel = np.ndim(y) == 2
            self.classes_ = (np.arange(np.shape(y)[1]) if self._multilabel
                             else self._remote.classes(y))
            if self.classes_.shape[0] < 2:
                raise ValueError(f"y: needs samples of at least 2 classes, got 1 class "
                                 f"({self.classes_[0]!r})")
        if self._multilabel:
            return X, y
        return X, self._remote.encode(y, self.classes_)

    def partial_fit(self, X, y, classes=None):
        """One epoch of the mini-batch solver (``sgd`` or ``adam``) on X, y.

        ``classes`` (all labels that will ever appear) is required on the first call unless y
        is a multi-label indicator matrix. A model read by :func:`fastnn.load` continues with
        the step rule's state (velocity, moments) it was saved with.
        """
        self._validate_params()
        if self.solver not in STOCHASTIC_SOLVERS:
            raise ValueError(f"partial_fit: only for the mini-batch solvers "
                             f"{STOCHASTIC_SOLVERS}, got solver={self.solver!r}")
        first = not hasattr(self, "thetas_")
        X, y = validate_data(self, X, y, reset=first, multi_output=True, dtype=self._dtype())
        if first:
            self.__dict__.pop("classes_", None)
            if classes is None and type_of_target(y) != "multilabel-indicator":
                raise ValueError("classes: required on the first call to partial_fit")
        y_encoded = self._encode_targets(y, classes=classes if first else None)
        return self._fit(X, y_encoded, max_iter=1, solver=self.solver, warm=not first,
                         keep_optimizer=True)

    def _fit(self, X, y, max_iter, solver, warm, keep_optimizer, validation_data=None):
        layers = self._layers(X.shape[1], self._n_outputs)
        rng = np.random.default_rng(self.random_state)
        if warm:
            if [theta.shape for theta in self.thetas_] != theta_shapes(layers):
                raise ValueError("hidden_layer_sizes: changed since the previous fit; "
                                 "set warm_start=False to start over")
            theta = pack(self.thetas_).astype(self._dtype())
        else:
            theta = pack(init_weights(layers, seed=rng, dtype=self._dtype()))
        stochastic = solver in STOCHASTIC_SOLVERS
        validation = None
        X_train, y_train = X, y
        if self.early_stopping and stochastic and max_iter > 1 and validation_data is None:
            stratifiable = not self._multilabel and np.bincount(y).min(initial=2) >= 2
            stratify = y if stratifiable else None
            X_train, X_val, y_train, y_val = train_test_split(
                X, y, test_size=self.validation_fraction, stratify=stratify,
                random_state=rng.integers(2**31))
            validation_data = (X_val, y_val)
        if validation_data is not None:
            validation = Objective(layers, *validation_data, 0.0, loss=self.loss,
                                   activation=self.activation, backend=self._local_backend,
                                   dtype=self._dtype())
        objective = Objective(layers, X_train, y_train, self.alpha, loss=self.loss,
                              activation=self.activation, backend=self.backend,
                              dtype=self._dtype())
        batch_size = (min(200, objective.m) if self.batch_size == "auto"
                      else min(self.batch_size, objective.m))
        state = getattr(self, "_optimizer", None) if keep_optimizer else None
        try:
            result = train(
                objective, theta, solver=solver, learning_rate=self.learning_rate_init,
                max_iter=max_iter, batch_size=batch_size, momentum=self.momentum,
                nesterov=self.nesterovs_momentum, tol=self.tol,
                n_iter_no_change=self.n_iter_no_change if max_iter > 1 else 0,
                validation=validation, early_stopping=self.early_stopping,
                verbose=self.verbose, random_state=rng, optimizer_state=state)
        except TrainingDiverged as error:
            self._set_fitted(error.theta, layers, error.history, np.inf, warm)
            raise
        self._optimizer = result.optimizer
        self._set_fitted(result.theta, layers, result.history, result.best_loss, warm)
        if result.history.stopped == "max_iter" and max_iter > 1:
            warnings.warn(f"{solver}: max_iter={max_iter} reached before convergence; "
                          "raise max_iter or tol", ConvergenceWarning, stacklevel=3)
        return self

    def _set_fitted(self, theta, layers, history, best_loss, warm):
        """Fitted attributes; a warm continuation extends the curves of the previous fits."""
        self.thetas_ = unpack(np.array(theta, dtype=self._dtype()), layers)
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
        check_is_fitted(self, "thetas_")
        if self._remote is not None and self._remote.holds(X):
            return self._remote.forward(pack(self.thetas_), self._layers(
                self.n_features_in_, self.thetas_[-1].shape[0]), X, self.activation, logits)
        X = validate_data(self, X, reset=False, dtype=self._dtype())
        return forward(self.thetas_, X, activation=self.activation,
                       backend=self._local_backend, logits=logits)

    def decision_function(self, X):
        """The output layer's pre-activations z(L): shape (m,) for binary targets (positive
        means ``classes_[1]``), (m, K) otherwise (argmax for multi-class, sign per label for
        multi-label)."""
        Z = self._forward(X, logits=True)
        return Z[:, 0] if Z.shape[1] == 1 and not self._multilabel else Z

    def predict_proba(self, X):
        """Class probabilities, shape (m, n_classes).

        Binary: ``[1 − h, h]``; multi-class: the K sigmoid outputs scaled to sum to 1;
        multi-label: each label's probability h_k (rows need not sum to 1).
        """
        H = self._forward(X)
        if self._multilabel:
            return H
        if H.shape[1] == 1:
            return np.concatenate([1 - H, H], axis=1)
        return H / H.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Predicted labels (from ``classes_``), or a 0/1 indicator matrix for multi-label."""
        H = self._forward(X)
        if self._multilabel:
            return (H >= 0.5).astype(np.int64)
        index = (H[:, 0] >= 0.5).astype(np.intp) if H.shape[1] == 1 else H.argmax(axis=1)
        if not isinstance(index, np.ndarray):  # an array left where it is, e.g. on Dask
            return index.map_blocks(self.classes_.take, dtype=self.classes_.dtype)
        return self.classes_[index]

    # -- model files -------------------------------------------------------------------------

    def save(self, path):
        """Write the fitted model to ``path`` (one ``.npz`` file; see :func:`fastnn.load`).

        Everything needed to predict and to continue training is kept: Θ(l), the classes, the
        parameters, the loss curve, and the step rule's state after sgd or adam.

        Raises
        ------
        TypeError
            When a parameter cannot be stored faithfully (a ``numpy.random.Generator`` as
            ``random_state``, say): the message names it.
        """
        check_is_fitted(self, "thetas_")
        classes = np.asarray(self.classes_)
        if classes.dtype.kind == "O" and all(isinstance(label, str) for label in classes):
            classes = classes.astype(str)
        if classes.dtype.kind not in "biufU":
            raise TypeError("classes_: only numeric or string class labels can be saved "
                            f"without pickle, got dtype {self.classes_.dtype}")
        layers = self._layers(self.n_features_in_, self.thetas_[-1].shape[0])
        params = self.get_params(deep=False)
        optimizer = getattr(self, "_optimizer", None)
        t, optimizer_arrays = optimizer.state() if optimizer is not None else (0, {})
        metadata = {
            "estimator": type(self).__name__,
            "layers": layers,
            "target": ("multilabel" if self._multilabel
                       else "binary" if layers[-1] == 1 else "multiclass"),
            **{name: params.pop(name) for name in FILE_FIELDS},
            "n_iter": self.n_iter_,
            "training": params,
            "loss_curve": self.loss_curve_,
            "best_loss": self.best_loss_ if np.isfinite(self.best_loss_) else None,
            "validation_scores": self.validation_scores_,
            "optimizer": {"solver": self.solver, "t": t} if optimizer is not None else None,
            "input_scaling": None,
        }
        arrays = {"classes": classes,
                  **{f"theta_{l}": theta for l, theta in enumerate(self.thetas_)},
                  **{f"optimizer_{name}": array for name, array in optimizer_arrays.items()}}
        write_model(path, arrays, metadata)

    @classmethod
    def _from_file(cls, arrays, metadata, path):
        """The fitted estimator a model file holds; ModelFileError when its settings or
        shapes do not make one."""
        layers = metadata["layers"]
        settings = dict(metadata["training"])
        unknown = sorted(set(settings) - (set(cls._get_param_names()) - set(FILE_FIELDS)))
        if unknown:
            raise ModelFileError(f"{path}: training settings {unknown} are not parameters of "
                                 f"{cls.__name__}")
        if isinstance(settings.get("hidden_layer_sizes"), list):
            settings["hidden_layer_sizes"] = tuple(settings["hidden_layer_sizes"])
        estimator = cls(**{name: metadata[name] for name in FILE_FIELDS}, **settings)
        try:
            estimator._validate_params()
            hidden = estimator._hidden()
        except (InvalidParameterError, ValueError) as error:
            raise ModelFileError(f"{path}: {error}") from None
        classes = arrays["classes"]
        multilabel = metadata["target"] == "multilabel"
        K = classes.shape[0] if multilabel or classes.shape[0] > 2 else 1
        if hidden != layers[1:-1] or K != layers[-1] or classes.shape[0] < 2:
            raise ModelFileError(f"{path}: layers {layers} do not match hidden_layer_sizes "
                                 f"{hidden} and {classes.shape[0]} classes")
        estimator.thetas_ = [np.ascontiguousarray(theta) for theta in arrays["thetas"]]
        estimator.classes_ = classes
        estimator._multilabel = multilabel
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
                    estimator.nesterovs_momentum).restore(saved["t"], arrays["optimizer"])
            except (KeyError, TypeError, ValueError) as error:
                raise ModelFileError(f"{path}: optimizer state: {error}") from None
        return estimator


ESTIMATORS = {"MLPClassifier": MLPClassifier}
"""The estimators a model file can hold, by the name it records."""


def load(path):
    """Read a model file written by :meth:`MLPClassifier.save`.

    Returns
    -------
    estimator : fastnn.MLPClassifier
        Fitted, predicting exactly as the saved one did, and able to continue training
        (``partial_fit``, or ``fit`` with ``warm_start=True``).

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
