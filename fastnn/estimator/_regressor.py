"""``MLPRegressor``: identity outputs, one per target column, and the squared error.

    J = (1/2m) Σ_i Σ_k (h_k(x(i)) − y_k(i))² + (λ/2m) Σ Θ²
"""

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils.metaestimators import available_if

from fastnn.estimator._base import _BaseMLP, _has_stochastic_solver
from fastnn.io import ModelFileError

__all__ = ["MLPRegressor"]


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
