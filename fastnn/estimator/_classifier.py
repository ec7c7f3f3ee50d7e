"""``MLPClassifier``: sigmoid outputs, the classes of its targets, and labels predicted.

Binary targets get one output (K = 1), multi-class targets one output per class (prediction
by argmax), multi-label indicator targets one output per label (thresholded at 0.5).
"""

from typing import ClassVar

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d

from fastnn.estimator._base import _BaseMLP, _has_stochastic_solver
from fastnn.io import ModelFileError
from fastnn.losses import LOSSES

__all__ = ["MLPClassifier"]


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A fully connected sigmoid network classifier trained by backpropagation.

    Parameters
    ----------
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
    loss : {"cross_entropy", "squared_error"}, default "cross_entropy"
        fastnn's own: the loss of the output layer.
    output : {"auto", "sigmoid"}, default "auto"
        fastnn's own. ``"auto"``: scikit-learn's output layer (a softmax over the classes of
        multi-class targets, sigmoids otherwise); ``"sigmoid"``: one sigmoid unit per class
        on the sum of K binary cross-entropies, the seeds' one-vs-all formulation.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
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
        K, the output units.
    out_activation_ : str
        ``"softmax"`` for multi-class targets (K units on the multinomial cross-entropy), as
        scikit-learn's; ``"logistic"`` for binary (one unit) and multi-label targets, and for
        multi-class ones with ``loss="squared_error"`` (one sigmoid unit per class).
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
        Validation accuracy (weighted, with weights) per epoch, when ``early_stopping`` (sgd,
        adam); None without.
    best_validation_score_ : float or None
        Their best; None without early stopping.
    history_ : fastnn.trainer.History
        Every iteration's record of the last fit (cost, time, validation cost and accuracy);
        not kept in model files.
    n_features_in_ : int
    """

    _parameter_constraints: ClassVar[dict] = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions(set(LOSSES))],
        "output": [StrOptions({"auto", "sigmoid"})],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="logistic", *, solver="adam",
                 alpha=1e-4, batch_size="auto", learning_rate="constant",
                 learning_rate_init=1e-3, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend="auto", dtype=None, progress=False, loss="cross_entropy",
                 output="auto"):
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
        self.output = output

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    @property
    def _loss(self):
        return self.loss

    def _output_activation(self):
        """The output layer for the targets just encoded, by fastnn's name, as scikit-learn's:
        the softmax over the classes of multi-class targets (on the multinomial
        cross-entropy), the sigmoid for binary targets (one unit) and for each label of
        multi-label ones. With ``output="sigmoid"`` or ``loss="squared_error"``, K sigmoid
        units for multi-class targets too (the seeds' one-vs-all output). The one place that
        decides it."""
        multiclass = not self._multilabel and len(self.classes_) > 2
        softmax = self.output == "auto" and self.loss == "cross_entropy"
        return "softmax" if multiclass and softmax else "sigmoid"

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
        """scikit-learn's rule: stratify when the network has one output (binary targets),
        not otherwise; a class of one example then makes the split raise ValueError."""
        return y if self._n_outputs == 1 else None

    def _check_warm_targets(self, y):
        """A warm ``fit`` needs y to have exactly the classes of the previous fit (the output
        layer is theirs), as scikit-learn's."""
        if self._multilabel:
            return
        classes = unique_labels(y)
        if set(classes) != set(self.classes_):
            raise ValueError("warm_start can only be used where `y` has the same classes as "
                             f"in the previous call to fit. Previously got {self.classes_}, "
                             f"`y` has {classes}")

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
        X : array-like or scipy.sparse matrix of shape (m, n_features)
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
        if (not first and classes is not None
                and not np.array_equal(self.classes_, unique_labels(classes))):
            raise ValueError(f"`classes={classes!r}` is not the same as on last call to "
                             f"partial_fit, was: {self.classes_!r}")
        return self._partial_fit(X, y, sample_weight, classes=classes)

    # -- prediction --------------------------------------------------------------------------

    def decision_function(self, X):
        """The output layer's pre-activations z(L).

        Parameters
        ----------
        X : array-like or scipy.sparse matrix of shape (m, n_features)

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
        X : array-like or scipy.sparse matrix of shape (m, n_features)

        Returns
        -------
        P : ndarray of shape (m, n_classes)
        """
        H = self._forward(X)
        if self._multilabel:
            return H
        if H.shape[1] == 1:
            return np.concatenate([1 - H, H], axis=1)
        if self.out_activation_ == "softmax":
            return H
        return H / H.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """The logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like or scipy.sparse matrix of shape (m, n_features)

        Returns
        -------
        log_P : ndarray of shape (m, n_classes)
        """
        P = self.predict_proba(X)
        return np.log(P, out=P)

    def predict(self, X):
        """Predicted labels.

        Parameters
        ----------
        X : array-like or scipy.sparse matrix of shape (m, n_features)

        Returns
        -------
        labels : ndarray of shape (m,) or (m, n_labels)
            Labels from ``classes_``, or a 0/1 indicator matrix for multi-label targets (a
            dense array, also after a fit on a scipy.sparse y, where scikit-learn's MLP
            returns a sparse matrix).
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
