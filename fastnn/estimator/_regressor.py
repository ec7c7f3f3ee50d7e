"""``MLPRegressor``: identity outputs, one per target column, and the squared error.

    J = (1/2m) Σ_i Σ_k (h_k(x(i)) − y_k(i))² + (λ/2m) Σ Θ²
"""

from typing import ClassVar

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if

from fastnn.estimator._base import _BaseMLP, _has_stochastic_solver
from fastnn.io import ModelFileError
from fastnn.losses import REGRESSION_LOSSES

__all__ = ["MLPRegressor"]



class MLPRegressor(RegressorMixin, _BaseMLP):
    """A fully connected network regressor trained by backpropagation.

    The hidden layers are those of :class:`MLPClassifier`; one output unit per target
    column. With ``loss="squared_error"`` the output layer is the identity and the cost
    ``J = (1/2m) Σ_i Σ_k (h_k − y_k)² + (λ/2m) Σ Θ²``; with ``loss="poisson"``, h = e^z (the
    log link) on scikit-learn's half Poisson deviance, for targets y ≥ 0. Targets are used as
    given (not scaled).

    Parameters
    ----------
    loss : {"squared_error", "poisson"}, default "squared_error"
        The loss, a key of :data:`fastnn.losses.REGRESSION_LOSSES`, which names its output
        layer.
    hidden_layer_sizes : int or tuple of int, default (100,)
        Units of each hidden layer, s_2 ... s_{L-1}.
    activation : {"logistic", "sigmoid", "tanh", "relu"}, default "logistic"
        Activation of the hidden layers (the values of :data:`fastnn.activations.ACTIVATIONS`,
        with scikit-learn's name ``"logistic"`` for the sigmoid). The default is the sigmoid,
        not scikit-learn's ReLU.
    solver : {"lbfgs", "gd", "sgd", "adam"}, default "adam"
        ``"gd"``, full-batch gradient descent, is fastnn's own.
    alpha : float, default 1e-4
        λ, the L2 penalty ``(λ/2m) Σ Θ²`` on all but the bias weights.
    batch_size : int or "auto", default "auto"
        Mini-batch size of sgd and adam; "auto" is ``min(200, m)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        sgd's schedule, as scikit-learn's: "invscaling" sets α = α₀ / (t_ + 1)^power_t after
        every epoch; "adaptive" divides α by 5 when training would stop for lack of
        improvement, and stops once α ≤ 1e-6.
    learning_rate_init : float, default 1e-3
        α₀ of gd, sgd and adam.
    power_t : float, default 0.5
        The exponent of "invscaling".
    max_iter : int, default 200
        Iterations (lbfgs, gd) or epochs (sgd, adam).
    shuffle : bool, default True
        sgd and adam: draw each epoch's mini-batches in a new random order.
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        Initial weights, mini-batch order and the early-stopping split. A model file stores
        None or an int; save refuses the others (their repr would not give them back).
    tol : float, default 1e-4
        lbfgs and gd stop when the largest component of the gradient is at most ``tol``; for
        sgd and adam, the improvement an epoch needs to count as one (see
        ``n_iter_no_change``).
    verbose : bool or int, default False
        Print scikit-learn's ``Iteration N, loss = ...`` line after every iteration (and the
        validation score under early stopping).
    warm_start : bool, default False
        ``fit`` continues from the previous fit's weights (the targets must have the same
        classes or columns).
    momentum : float, default 0.9
    nesterovs_momentum : bool, default True
    early_stopping : bool, default False
        For sgd and adam (as in scikit-learn): hold out ``validation_fraction`` of the training
        data (with their weights), stop when its score has not improved by ``tol`` for more
        than ``n_iter_no_change`` epochs, and keep the best parameters. Refused by
        ``partial_fit``.
    validation_fraction : float in [0, 1), default 0.1
        0 only without early stopping.
    beta_1, beta_2, epsilon : float, default 0.9, 0.999, 1e-8
        adam's β₁, β₂ and ε.
    n_iter_no_change : int or numpy.inf, default 10
        sgd and adam stop after more than this many epochs without improvement
        (scikit-learn's count); 0 or ``np.inf`` never stops them early. Like scikit-learn's,
        it does not apply to lbfgs and gd.
    max_fun : int, default 15000
        lbfgs's limit on evaluations of J.
    backend : {"auto", "numpy", "numba", "numba-parallel", "dask"}, default "auto"
        ``"dask"``: ``fit`` leaves X, y and the weights (Dask arrays chunked by rows) on the
        workers of Dask's default client and computes every cost and gradient there (see
        :mod:`fastnn.backends._dask`); ``predict`` on a Dask array returns a Dask array.
    dtype : None, "float32", "float64" or the NumPy type or dtype of one of them, default None
        The model's float type; None keeps float32 X in float32 (as scikit-learn does) and
        trains anything else in float64.
    progress : bool, default False
        Show a progress bar (on a terminal).

    Attributes
    ----------
    coefs_ : list of ndarray
        W(l) of shape (s_l, s_{l+1}), scikit-learn's layout: views ``Θ(l)[:, 1:].T`` of
        ``thetas_``. Assigning a list of arrays of these shapes to a fitted estimator writes
        them into Θ, where ``partial_fit`` and a warm ``fit`` continue.
    intercepts_ : list of ndarray
        b(l) of shape (s_{l+1},): views ``Θ(l)[:, 0]``; assignable as ``coefs_``.
    thetas_ : list of ndarray
        Θ(l) of shape ``(s_{l+1}, s_l + 1)``, bias in column 0, acting on the raw inputs.
    n_layers_ : int
        L, the layers counting the input and the output.
    n_outputs_ : int
        K, the number of target columns (1 for y of shape (m,)).
    out_activation_ : str
        ``"identity"``.
    loss_ : float
        The last iteration's training cost.
    loss_curve_ : list of float
        The training cost after every iteration or epoch (every solver, L-BFGS included),
        over all the fits since the weights were made.
    n_iter_ : int
        Iterations of the last fit (1 for a ``partial_fit``), as scikit-learn counts.
    t_ : int
        Training examples seen since the weights were made (0 for lbfgs).
    best_loss_ : float or None
        The lowest training cost; None under early stopping.
    validation_scores_ : list of float or None
        Validation R² (weighted, with weights; averaged over the outputs) per epoch, when
        ``early_stopping`` (sgd, adam); None without.
    best_validation_score_ : float or None
        Their best; None without early stopping.
    history_ : fastnn.trainer.History
        Every iteration's record of the last fit (cost, time, validation cost and R²); not
        kept in model files.
    n_features_in_ : int
    """

    _parameter_constraints: ClassVar[dict] = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions(set(REGRESSION_LOSSES))],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="logistic",
                 *, solver="adam", alpha=1e-4, batch_size="auto", learning_rate="constant",
                 learning_rate_init=1e-3, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend="auto", dtype=None, progress=False):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, backend=backend, dtype=dtype, progress=progress)
        self.loss = loss

    @property
    def _loss(self):
        return self.loss

    def _output_activation(self):
        """The output layer by fastnn's name, one unit per target column: the identity on the
        squared error, the exponential (log link) on the Poisson deviance."""
        return REGRESSION_LOSSES[self.loss]

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
        X : array-like or scipy.sparse matrix of shape (m, n_features)
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
        X : array-like or scipy.sparse matrix of shape (m, n_features)

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
