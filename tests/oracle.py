"""scikit-learn's own J and ∇J: the tests' outside oracle. Nothing here imports fastnn.

With ``activation="logistic"`` and a 0/1 target matrix, scikit-learn's ``MLPClassifier`` has
logistic outputs and the binary log loss summed over outputs and averaged over examples, plus
``(alpha / 2m) Σ W²`` over ``coefs_``: exactly J(Θ) with λ = alpha, when ``coefs_[l]`` is
``Θ(l)[:, 1:]ᵀ`` and ``intercepts_[l]`` is ``Θ(l)[:, 0]``. Its ``MLPRegressor`` has an identity
output and ``(1/2m) Σ_i (h − y)²`` (for one output; it averages over outputs too): J of the
identity output with the squared error. With weights, scikit-learn (1.7 and later) averages
with them and divides the penalty by Σ w: J of weighted examples.

Fitted on labels of K ≥ 3 classes, its MLPClassifier has a softmax output and the multinomial
log loss (``log_loss``): J of the softmax output. Its MLPRegressor with ``loss="poisson"`` has
an exp output and the half Poisson deviance, its constant included: J of the exp output with
the Poisson loss.
"""

import inspect
import warnings

import numpy as np


def sklearn_cost_and_grad(thetas, X, Y, lam, regression=False, sample_weight=None, *,
                          softmax=False, loss="squared_error", activation="logistic"):
    """J and ∇J as scikit-learn computes them (``_backprop``) at the weights ``thetas``.

    The estimator gets its layer structure from a one-iteration fit on one row per output;
    its weights are then replaced by Θ.

    Parameters
    ----------
    thetas : list of ndarray of shape (s_{l+1}, s_l + 1)
        Θ(l), bias column first.
    X : ndarray of shape (m, s_1)
    Y : ndarray of shape (m, s_L)
        0/1 targets, or real ones of shape (m, 1) with ``regression``.
    lam : float
        λ ≥ 0 (scikit-learn's ``alpha``).
    regression : bool, default False
        scikit-learn's MLPRegressor instead of its MLPClassifier.
    sample_weight : ndarray of shape (m,), optional
        Example weights (needs scikit-learn ≥ 1.7).
    softmax : bool, default False
        The classifier fitted on K ≥ 3 class labels (its softmax output); Y one-hot.
    loss : {"squared_error", "poisson"}, default "squared_error"
        The regressor's loss.
    activation : str, default "logistic"
        scikit-learn's name of the hidden layers' activation.

    Returns
    -------
    J : float
    grads : list of ndarray of shape (s_{l+1}, s_l + 1)
        D(l) = ∂J/∂Θ(l).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    layers = [thetas[0].shape[1] - 1, *(theta.shape[0] for theta in thetas)]
    K = layers[-1]
    options = {"loss": loss} if regression else {}
    estimator = (MLPRegressor if regression else MLPClassifier)(
        hidden_layer_sizes=tuple(layers[1:-1]), activation=activation, alpha=lam,
        solver="sgd", max_iter=1, random_state=0, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        targets = np.eye(K, dtype=X.dtype)
        if softmax:
            targets = np.arange(K)
        elif regression:
            targets = targets if K > 1 else targets[:, 0]
        estimator.fit(X[np.arange(K) % len(X)], targets)
    expected = "softmax" if softmax else "exp" if loss == "poisson" else None
    if expected is not None and estimator.out_activation_ != expected:
        raise AssertionError(f"scikit-learn's output is {estimator.out_activation_!r}, "
                             f"not {expected!r}")
    estimator.coefs_ = [theta[:, 1:].T.copy() for theta in thetas]
    estimator.intercepts_ = [theta[:, 0].copy() for theta in thetas]
    n = len(layers)
    args = [X, Y, [X] + [None] * (n - 1), [None] * (n - 1),
            [np.empty_like(coef) for coef in estimator.coefs_],
            [np.empty_like(intercept) for intercept in estimator.intercepts_]]
    if "sample_weight" in inspect.signature(estimator._backprop).parameters:
        args.insert(2, sample_weight)
    elif sample_weight is not None:
        raise ValueError("sample_weight: this scikit-learn's MLP takes no weights "
                         "(scikit-learn >= 1.7 does)")
    J, coef_grads, intercept_grads = estimator._backprop(*args)
    return J, [np.column_stack([b, W.T]) for W, b in zip(coef_grads, intercept_grads)]
