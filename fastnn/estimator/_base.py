"""``_BaseMLP``: what the classifier and the regressor share, over the trainer.

``fit`` takes the data (:mod:`fastnn.estimator._data`), starts from new weights or, warm, from
the previous fit's, splits off the early-stopping examples, and hands one
:class:`fastnn.Objective` to :func:`fastnn.train`. The fitted Θ(l) are views into the vector
trained in place, so that a ``partial_fit`` allocates no array of P numbers.
"""

import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from fastnn.activations import ACTIVATIONS
from fastnn.backends import BACKENDS, backend_for
from fastnn.cost import Objective, forward
from fastnn.estimator import _data
from fastnn.estimator._model_file import write_estimator
from fastnn.network import init_weights, n_params, pack, theta_shapes, unpack, views
from fastnn.trainer import SOLVERS, STOCHASTIC_SOLVERS, TrainingDiverged, train


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
    """What the classifier and the regressor share: parameters, fitting, prediction's forward
    pass, model files.

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

    # -- parameters --------------------------------------------------------------------------

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

    # -- targets -----------------------------------------------------------------------------

    def _remote_targets(self, y, reset):
        """y for a backend that keeps it on its cluster (``_data.on_cluster``); by default as
        encoded by :meth:`_encode_targets`, which must then work on such an array."""
        return self._encode_targets(y, reset)

    def _stratify(self, y):
        """The labels to stratify the early-stopping split by, or None."""
        return None

    # -- fitting -----------------------------------------------------------------------------

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
        if self._backend.in_process:
            X, y, sample_weight = _data.in_memory(self, X, y, sample_weight, reset=not warm)
        else:
            X, y = _data.on_cluster(self, X, y, reset=not warm)
        if validation_data is not None:
            validation_data = _data.validation_data(self, validation_data)
        return self._fit(X, y, sample_weight, max_iter=self.max_iter, warm=warm,
                         keep_optimizer=False, validation_data=validation_data)

    def _partial_fit(self, X, y, sample_weight, classes=None):
        """The ``partial_fit`` of both estimators; ``classes`` is the classifier's."""
        self._validate_params()
        first = not hasattr(self, "thetas_")
        X, y, sample_weight = _data.in_memory(self, X, y, sample_weight, reset=first,
                                              classes=classes)
        return self._fit(X, y, sample_weight, max_iter=1, warm=not first, keep_optimizer=True)

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
        write_estimator(self, path)
