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
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from fastnn.activations import ACTIVATIONS
from fastnn.backends import BACKENDS, backend_for
from fastnn.cost import Objective, forward
from fastnn.estimator import _data
from fastnn.estimator._model_file import write_estimator
from fastnn.losses import OUTPUT_FUNCTIONS
from fastnn.network import init_weights, n_params, pack, theta_shapes, unpack, views
from fastnn.optim import make_optimizer
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


LEARNING_RATES = ("constant", "invscaling", "adaptive")
"""sgd's learning-rate schedules, as scikit-learn's (see :class:`fastnn.optim.Momentum`)."""

ACTIVATION_ALIASES = {"logistic": "sigmoid"}
"""scikit-learn's names of fastnn's activations; ``activation`` takes either."""


def _sklearn_name(activation):
    """The activation's name as scikit-learn spells it (``"logistic"`` for the sigmoid)."""
    return {fastnn: sklearn for sklearn, fastnn in ACTIVATION_ALIASES.items()}.get(
        activation, activation)


def _init_source(random_state):
    """Where the initial weights are drawn from, as scikit-learn's MLP draws them: a
    RandomState seeded by an int (the global one for None), or the given RandomState or
    Generator itself. With scikit-learn's Glorot bounds (``init_weights(init="glorot")``), one
    seed gives both the same initial weights."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return check_random_state(random_state)


def _as_generator(random_state):
    """``random_state`` (None, an int, a RandomState or a Generator) as a Generator. A
    RandomState gives a seed drawn from it, so that it advances as scikit-learn's does."""
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31))
    return np.random.default_rng(random_state)


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, fitting, prediction's forward
    pass, model files.

    A subclass implements ``_output_activation`` and what concerns its targets:
    ``_loss``, ``_encode_targets``, ``_n_outputs``, ``_file_targets`` and
    ``_restore_targets``, and where the defaults do not do, ``_remote_targets`` and
    ``_stratify``.

    The parameters are scikit-learn's MLP's, in its order and with its defaults (except
    ``activation``, the sigmoid by default), then fastnn's own: ``backend``, ``dtype``,
    ``progress`` (and the classifier's ``loss``).
    """

    _parameter_constraints: ClassVar[dict] = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS) | set(ACTIVATION_ALIASES))],
        "solver": [StrOptions(set(SOLVERS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions(set(LEARNING_RATES))],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state", np.random.Generator],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 0, None, closed="left"),
                             Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "backend": [StrOptions({"auto", *BACKENDS})],
        "dtype": "no_validation",  # checked by _validate_params: a name, a type or a dtype
        "progress": ["boolean"],
    }

    # The classifier's signature without ``loss``; the regressor's ``loss`` comes first.
    def __init__(self, hidden_layer_sizes=(100,), activation="logistic", *, solver="adam",
                 alpha=1e-4, batch_size="auto", learning_rate="constant",
                 learning_rate_init=1e-3, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend="auto", dtype=None, progress=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.dtype = dtype
        self.progress = progress

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.sparse = True
        return tags

    # -- parameters --------------------------------------------------------------------------

    def _dtype(self):
        """The dtype X is converted to: ``dtype``; when that is None, the model's once fitted,
        and before, X's own if float32 and float64 otherwise (as scikit-learn keeps float32
        data in float32), given to ``validate_data`` as the pair to choose from."""
        if self.dtype is not None:
            return np.dtype(self.dtype)
        if hasattr(self, "thetas_"):
            return self.thetas_[0].dtype
        return (np.float64, np.float32)

    def _activation(self):
        """The hidden activation by fastnn's name (``"logistic"`` is ``"sigmoid"``)."""
        return ACTIVATION_ALIASES.get(self.activation, self.activation)

    def _validate_params(self):
        """The checks of ``_parameter_constraints``, and those they cannot express: the
        sizes in an array-like ``hidden_layer_sizes`` (a single int is theirs) and ``dtype``."""
        super()._validate_params()
        if self.dtype is not None:
            try:
                dtype = np.dtype(self.dtype)
            except (TypeError, ValueError):
                dtype = None
            if dtype not in (np.float32, np.float64):
                raise ValueError(f"dtype: expected None, 'float32', 'float64' or the NumPy "
                                 f"type or dtype of one of them, got {self.dtype!r}")
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

    def _check_warm_targets(self, y):
        """Refuse targets a warm ``fit`` cannot continue on (the classifier's classes)."""

    # -- fitting -----------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None, *, validation_data=None):
        """Train on X and y.

        Parameters
        ----------
        X : array-like or scipy.sparse matrix of shape (m, n_features)
            A sparse X (any format) is trained on as a CSR matrix, never densified.
        y : array-like of shape (m,) or (m, K)
            The classifier's labels or 0/1 indicator matrix; the regressor's real values, one
            column per output. A scipy.sparse y is converted to a dense array.
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
            for name in ("thetas_", "_optimizer"):
                self.__dict__.pop(name, None)
        y = _data.dense_targets(y)
        if warm and self._backend.in_process:
            self._check_warm_targets(y)
        if self._backend.in_process:
            X, y, sample_weight = _data.in_memory(self, X, y, sample_weight, reset=not warm)
        else:
            X, y = _data.on_cluster(self, X, y, reset=not warm)
        if validation_data is not None:
            validation_data = _data.validation_data(self, validation_data)
        return self._fit(X, y, sample_weight, max_iter=self.max_iter, warm=warm,
                         keep_optimizer=False, validation_data=validation_data)

    def _partial_fit(self, X, y, sample_weight, classes=None):
        """The ``partial_fit`` of both estimators; ``classes`` is the classifier's. Refused
        with ``early_stopping`` before anything changes, as scikit-learn does (one epoch holds
        out nothing to stop on)."""
        self._validate_params()
        if self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        first = not hasattr(self, "thetas_")
        X, y, sample_weight = _data.in_memory(self, X, y, sample_weight, reset=first,
                                              classes=classes)
        return self._fit(X, y, sample_weight, max_iter=1, warm=not first, keep_optimizer=True)

    def _hold_out(self, X, y, sample_weight, rng):
        """Split ``validation_fraction`` of the examples, with their weights, off for early
        stopping: ``(X_train, y_train, w_train), (X_val, y_val, w_val)``; ValueError, as
        scikit-learn's, when ``validation_fraction`` is 0 or leaves fewer than 2 examples to
        score."""
        arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
        parts = train_test_split(*arrays, test_size=self.validation_fraction,
                                 stratify=self._stratify(y), random_state=rng.integers(2**31))
        X_train, X_val, y_train, y_val = parts[:4]
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        w_train, w_val = parts[4:] if sample_weight is not None else (None, None)
        for part, weights in (("training", w_train), ("validation", w_val)):
            if weights is not None and not weights.any():
                raise ValueError(f"sample_weight: every weight of the {part} part of the "
                                 "early-stopping split is zero; change random_state or "
                                 "validation_fraction, or pass validation_data")
        return (X_train, y_train, w_train), (X_val, y_val, w_val)

    def _model_dtype(self, X, warm):
        """The dtype of Θ and of the arithmetic: ``dtype``; when that is None, the previous
        fit's when ``warm``, else float32 for float32 X and float64 otherwise."""
        if self.dtype is not None:
            return np.dtype(self.dtype)
        if warm:
            return self.thetas_[0].dtype
        return np.dtype(np.float32 if X.dtype == np.float32 else np.float64)

    def _make_optimizer(self, n_params, dtype):
        """A fresh step rule of ``solver`` with the estimator's settings (None for lbfgs)."""
        if self.solver == "lbfgs":
            return None
        return make_optimizer(self.solver, n_params, self.learning_rate_init, self.momentum,
                              self.nesterovs_momentum, dtype, schedule=self.learning_rate,
                              power_t=self.power_t, beta_1=self.beta_1, beta_2=self.beta_2,
                              epsilon=self.epsilon)

    def _print_iteration(self, record):
        """``verbose``: scikit-learn's line for each iteration (a callback of the trainer,
        which prints nothing itself); never stops training."""
        print(f"Iteration {record['iteration']}, loss = {record['cost']:.8f}")
        if "val_score" in record and self.early_stopping:
            print(f"Validation score: {record['val_score']:f}")
        return False

    def _stopping_message(self, stopped, optimizer):
        """``verbose``: scikit-learn's line when sgd or adam stop for lack of improvement."""
        what = ("Validation score" if stopped == "early_stopping" else "Training loss")
        small = (" Learning rate too small." if getattr(optimizer, "schedule", None)
                 == "adaptive" else "")
        return (f"{what} did not improve more than tol={self.tol:f} for "
                f"{self.n_iter_no_change} consecutive epochs.{small} Stopping.")

    def _fit(self, X, y, sample_weight, max_iter, warm, keep_optimizer, validation_data=None):
        """Train from the previous weights (``warm``) or new ones; ``validation_data`` is
        ``(X_val, y_val, w_val)`` or None."""
        layers = self._layers(X.shape[1], self._n_outputs)
        dtype = self._model_dtype(X, warm)
        if not warm:  # first, as scikit-learn draws them first from the same random state
            initial = init_weights(layers, seed=_init_source(self.random_state), dtype=dtype,
                                   init="glorot", activation=self._activation())
        rng = _as_generator(self.random_state)
        if warm:
            if [theta.shape for theta in self.thetas_] != theta_shapes(layers):
                raise ValueError("hidden_layer_sizes: changed since the previous fit; "
                                 "set warm_start=False to start over")
            theta = _trained_in_place(self.thetas_, layers, dtype)
        else:
            self.out_activation_ = _sklearn_name(self._output_activation())
            theta = pack(initial)
        stochastic = self.solver in STOCHASTIC_SOLVERS
        train_data = (X, y, sample_weight)
        if self.early_stopping and stochastic and max_iter > 1 and validation_data is None:
            train_data, validation_data = self._hold_out(X, y, sample_weight, rng)
        options = {"loss": self._loss, "activation": self._activation(),
                   "output_activation": self._out_activation(), "dtype": dtype}
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
        if state is None:
            state = self._make_optimizer(objective.n_params, dtype)
        samples_seen = self.t_ if warm else 0
        try:
            result = train(
                objective, theta, solver=self.solver, learning_rate=self.learning_rate_init,
                max_iter=max_iter, batch_size=batch_size, momentum=self.momentum,
                nesterov=self.nesterovs_momentum, tol=self.tol,
                n_iter_no_change=self.n_iter_no_change if max_iter > 1 else 0,
                validation=validation, early_stopping=self.early_stopping,
                callbacks=[self._print_iteration] if self.verbose else [],
                verbose=self.progress, random_state=rng, optimizer_state=state, out=theta,
                shuffle=self.shuffle, max_fun=self.max_fun, samples_seen=samples_seen)
        except TrainingDiverged as error:
            self._set_fitted(error.theta, layers, error.history, np.inf, warm, objective.m)
            raise
        self._optimizer = result.optimizer
        self._set_fitted(result.theta, layers, result.history, result.best_loss, warm,
                         objective.m)
        if (self.verbose and stochastic
                and result.history.stopped in ("converged", "early_stopping")):
            print(self._stopping_message(result.history.stopped, result.optimizer))
        if result.history.stopped == "max_iter" and max_iter > 1:
            warnings.warn(f"{self.solver}: max_iter={max_iter} reached before convergence; "
                          "raise max_iter or tol", ConvergenceWarning, stacklevel=3)
        return self

    def _set_fitted(self, theta, layers, history, best_loss, warm, m):
        """Fitted attributes with scikit-learn's meanings: ``n_iter_`` counts this fit's
        iterations (1 for a ``partial_fit``), ``t_`` the training examples seen since the
        weights were made (sgd, adam and gd; 0 for lbfgs), and a warm continuation extends
        the curves of the previous fits. Under early stopping ``best_loss_`` is None and
        ``best_validation_score_`` the best validation score, else the other way round."""
        self.thetas_ = unpack(theta, layers)  # θ is the estimator's own
        self.history_ = history
        self.n_layers_ = len(layers)
        self.n_outputs_ = layers[-1]
        self.loss_curve_ = (self.loss_curve_ if warm else []) + history["cost"]
        if self.loss_curve_:
            self.loss_ = self.loss_curve_[-1]
        self.n_iter_ = len(history)
        self.t_ = ((self.t_ if warm else 0)
                   + (len(history) * m if self.solver != "lbfgs" else 0))
        monitored = self.early_stopping and self.solver in STOCHASTIC_SOLVERS
        if monitored:
            scores = history["val_score"]
            self.validation_scores_ = ((self.validation_scores_ or []) + scores if warm
                                       else scores)
            previous = (self.best_validation_score_ if warm
                        and self.best_validation_score_ is not None else -np.inf)
            self.best_validation_score_ = float(max([previous, *scores]))
            self.best_loss_ = None
        else:
            previous = self.best_loss_ if warm and self.best_loss_ is not None else np.inf
            self.best_loss_ = float(min(best_loss, previous))
            self.validation_scores_ = None
            self.best_validation_score_ = None

    # -- scikit-learn's layout of the weights -----------------------------------------------

    @property
    def coefs_(self):
        """W(l) of shape (s_l, s_{l+1}) for each layer, scikit-learn's weights: views
        ``Θ(l)[:, 1:].T`` of ``thetas_`` (writing into them changes the model). Assigning a
        list of arrays of these shapes to a fitted estimator writes them into Θ, and the next
        ``partial_fit`` or warm ``fit`` continues from them."""
        check_is_fitted(self, "thetas_")
        return [theta[:, 1:].T for theta in self.thetas_]

    @coefs_.setter
    def coefs_(self, coefs):
        self._assign("coefs_", coefs, [theta[:, 1:].T for theta in self._fitted_thetas()])

    @property
    def intercepts_(self):
        """b(l) of shape (s_{l+1},) for each layer, scikit-learn's intercepts: the views
        ``Θ(l)[:, 0]`` of ``thetas_``; assignable as ``coefs_``."""
        check_is_fitted(self, "thetas_")
        return [theta[:, 0] for theta in self.thetas_]

    @intercepts_.setter
    def intercepts_(self, intercepts):
        self._assign("intercepts_", intercepts,
                     [theta[:, 0] for theta in self._fitted_thetas()])

    def _fitted_thetas(self):
        if not hasattr(self, "thetas_"):
            raise AttributeError(f"{type(self).__name__}: coefs_ and intercepts_ can be "
                                 "assigned once fitted (fit or partial_fit first); they are "
                                 "written into thetas_")
        return self.thetas_

    @staticmethod
    def _assign(name, arrays, targets):
        """Write ``arrays`` into the views ``targets`` after checking their number and
        shapes, so that the fitted Θ (trained in place) keeps them."""
        arrays = [np.asarray(array) for array in arrays]
        shapes = [target.shape for target in targets]
        if [array.shape for array in arrays] != shapes:
            raise ValueError(f"{name}: expected arrays of shapes {shapes}, got "
                             f"{[array.shape for array in arrays]}")
        for target, array in zip(targets, arrays):
            target[...] = array

    # -- prediction --------------------------------------------------------------------------

    def _out_activation(self):
        """The output activation by fastnn's name, from ``out_activation_``."""
        return ACTIVATION_ALIASES.get(self.out_activation_, self.out_activation_)

    def _forward(self, X, logits=False):
        """h_Θ(x) of every row of X, shape (m, K): the output activation of z(L), or z(L)
        with ``logits`` or the identity output."""
        check_is_fitted(self, "thetas_")
        backend = self._backend
        output = self._out_activation()
        if backend.holds(X):
            layers = self._layers(self.n_features_in_, self.thetas_[-1].shape[0])
            Z = backend.forward(pack(self.thetas_), layers, X, self._activation(), True)
            return Z if logits else OUTPUT_FUNCTIONS[output](Z)
        X = validate_data(self, X, reset=False, dtype=self._dtype(),
                          accept_sparse=_data.ACCEPT_SPARSE)
        return forward(self.thetas_, X, activation=self._activation(),
                       output_activation=output, backend=self._local_backend, logits=logits)

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
