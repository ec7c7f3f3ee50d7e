"""The regularized cost J(Θ), its gradient D(l) = ∂J/∂Θ(l), outputs, predictions, and checks.

    J = (1/m) Σ_i Σ_k loss term(h_k(x(i)), y_k(i)) + (λ / 2m) Σ_l Σ_j Σ_{i≥1} Θ(l)_{j,i}²
    D(l) = Δ(l) / m + (λ/m) Θ(l), except D(l)[:, 0] = Δ(l)[:, 0] / m

With example weights w_i (scikit-learn's convention), m becomes W = Σ_i w_i and example i's
loss terms count w_i times:

    J = (1/W) Σ_i w_i Σ_k loss term + (λ / 2W) Σ Θ²

so integer weights are the same as repeating rows, and weights of 1 the same as none. The
weights are scaled to mean 1 once (w_i m / W, see :class:`fastnn._validation.Targets`), which
turns this into the unweighted formulas above with w_i inside the sum; the backends multiply
each example's terms and δ(L) by it.
"""

import numpy as np

from fastnn._validation import (
    check_choice,
    check_dtype,
    check_lam,
    check_layers,
    check_out,
    check_thetas,
    check_X,
)
from fastnn.activations import ACTIVATIONS
from fastnn.backends import BACKENDS, backend_for
from fastnn.losses import (
    ALL_LOSSES,
    NUMPY_LOSSES,
    OUTPUT_ACTIVATIONS,
    OUTPUT_FUNCTIONS,
    is_regression,
    output_code,
)
from fastnn.network import n_params, pack, penalty_mask, unpack
from fastnn.problem import Problem

__all__ = ["Objective", "check_gradients", "cost", "cost_and_grad", "forward", "predict"]


class Objective:
    """J(θ) and ∇J(θ) of fixed data, as functions of the unrolled parameters θ.

    The data are validated and converted once, here; each evaluation then goes straight to the
    backend. ``objective(vec)`` returns ``(J, grad)``, the form optimizers such as
    :func:`scipy.optimize.minimize` with ``jac=True`` expect.

    Parameters
    ----------
    layers : sequence of int
        Layer sizes ``[s_1, ..., s_L]``.
    X : array-like or scipy.sparse matrix of shape (m, s_1)
        Inputs; converted once to ``dtype``. A sparse X (any format) is kept as a canonical
        CSR matrix and never densified (:func:`fastnn._validation.check_sparse_X`); on it
        ``backend="auto"`` computes with ``"numba-parallel"``.
    y : array-like of shape (m,) or (m, K)
        Integer labels ``0 ... K-1`` (K ≥ 2), a 0/1 vector (K = 1), or a 0/1 matrix; for the
        identity and exp outputs, real values ((m,) for K = 1), ≥ 0 for the exp output. A
        scipy.sparse y (m, K) is converted to a dense matrix (K is the output layer's size).
    lam : float
        λ ≥ 0, the weight of the penalty on all but the bias column.
    loss : {"cross_entropy", "squared_error", "poisson"}
        The pairs of :data:`fastnn.losses.OUTPUTS`: ``"cross_entropy"`` with the sigmoid or
        softmax output, ``"squared_error"`` with the sigmoid or identity output,
        ``"poisson"`` with the exp output.
    activation : {"sigmoid", "tanh", "relu", "identity"}
        Activation of the hidden layers.
    output_activation : {"sigmoid", "softmax", "identity", "exp"}
        The output layer: h = σ(z(L)) (K independent outputs), h = softmax(z(L)) (K ≥ 2
        classes, the multinomial cross-entropy), h = z(L) (regression), or h = e^{z(L)}
        (the Poisson loss's log link).
    backend : {"auto", "numpy", "numba", "numba-parallel", "dask"}
        ``"dask"``: X and y (Dask arrays chunked by rows, or in-memory arrays; X's chunks may
        be scipy.sparse matrices) are kept on the workers of a Dask cluster and the sums
        over examples are computed there (see :mod:`fastnn.backends._dask`); needs
        ``pip install "fastnn[dask]"``.
    dtype : float32 or float64
        The dtype of X, θ and the gradient inside the computation.
    client : distributed.Client, optional
        The cluster for ``backend="dask"``; by default Dask's default client.
    sample_weight : array-like of shape (m,), optional
        Example weights w_i ≥ 0 (not all 0): J normalized by Σ w_i (see the module's
        docstring). A Dask array with ``backend="dask"``.
    """

    def __init__(self, layers, X, y, lam=0.0, *, loss="cross_entropy", activation="sigmoid",
                 output_activation="sigmoid", backend="auto", dtype=np.float64, client=None,
                 sample_weight=None):
        self.layers = check_layers(layers)
        self.dtype = check_dtype(dtype)
        self.backend = check_choice(backend, "backend", ("auto", *BACKENDS))
        self.lam = check_lam(lam)
        self.loss = check_choice(loss, "loss", ALL_LOSSES)
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        self.output_activation = check_choice(output_activation, "output_activation",
                                              OUTPUT_ACTIVATIONS)
        output_code(self.output_activation, self.loss)  # the pair checked before the data
        _check_outputs(self.output_activation, self.layers)
        self._backend = backend_for(self.backend)
        self.data = self._backend.prepare(X, y, self.layers, self.dtype, client,
                                          real=self.regression, sample_weight=sample_weight)
        self.m = self.data.m
        targets = self.data.targets
        if self.loss == "poisson" and targets is not None and (targets.Y < 0).any():
            raise ValueError(f"y: the poisson loss takes targets >= 0, got "
                             f"{float(targets.Y.min())!r}")
        self.problem = Problem(self.layers, self.activation, self.output_activation,
                               self.loss, self.lam, self.data.weight_scale, self.m, self.dtype)
        self.n_params = n_params(self.layers)
        self._mask = penalty_mask(self.layers)

    @property
    def regression(self):
        """True for the identity and exp output layers (real-valued targets)."""
        return is_regression(self.output_activation)

    def _evaluate(self, vec, need_grad, rows=None, out=None):
        """J and ∇J on the examples ``rows`` (all when None), penalty scaled by the full m.

        With b examples in ``rows``: ``J = (1/b) Σ_rows w_i loss terms + (λ/2m) Σ Θ²`` and
        ``∇J = Δ/b + (λ/m) Θ`` (bias column unpenalized; w_i of mean 1 over all m examples):
        the batch estimate of the full objective's data term, plus the full objective's
        penalty, so that the batch objectives of an epoch average to J.
        """
        vec = np.ascontiguousarray(vec, dtype=self.dtype)
        data = self.data if rows is None else self.data.take(rows)
        return self._backend.cost_and_grad(vec, self.problem, data, need_grad, out)

    def __call__(self, vec, rows=None, out=None):
        """``(J, grad)`` at θ = ``vec``; ``grad`` of shape (P,) in the objective's dtype.

        ``rows`` (a slice or index array) restricts the data term to a mini-batch. ``out``, a
        C-contiguous array of that shape and dtype, receives ∇J and is returned as ``grad``:
        a training loop then reuses one array instead of allocating P numbers per step.
        """
        if out is None:
            return self._evaluate(vec, need_grad=True, rows=rows)
        return self._evaluate(vec, need_grad=True, rows=rows,
                              out=check_out(out, self.n_params, self.dtype))

    def computed_by(self, rows=None):
        """The backend that evaluates this objective on batches of ``rows`` examples (all of
        them when None), ``"auto"`` resolved (:meth:`fastnn.backends.Backend.choose`):
        ``"numba-parallel"`` for a sparse X."""
        return self._backend.choose(self.layers, self.m if rows is None else rows, self.dtype,
                                    self.data.sparse)

    def cost(self, vec):
        """J at θ = ``vec`` (no backpropagation)."""
        return self._evaluate(vec, need_grad=False)[0]

    def forward(self, vec, logits=False):
        """Outputs h_Θ(x) of the objective's examples (z(L) with ``logits``), shape (m, K)."""
        vec = np.ascontiguousarray(vec, dtype=self.dtype)
        return _outputs(self._backend, vec, self.layers, self.data.inputs, self.activation,
                        self.output_activation, logits)

    def cost_and_score(self, vec):
        """J at θ = ``vec`` and the score of the predictions, from one forward pass: the
        (weighted) fraction of examples predicted right (every label right, for a target
        matrix; the argmax's class, for the softmax output) for the sigmoid and softmax
        outputs, R² (:func:`r2_score`) of h for the identity and exp outputs.

        The loss terms are taken from z(L) by the NumPy form of the loss
        (:data:`fastnn.losses.NUMPY_LOSSES`); predictions are those of :func:`predict`.
        """
        targets = self.data.targets
        if targets is None:
            raise ValueError(f"score: the targets of backend={self.backend!r} stay where "
                             "they are computed; validate on in-memory data")
        vec = np.ascontiguousarray(vec, dtype=self.dtype)
        Z = self.forward(vec, logits=True)
        w = targets.weights_of(slice(None))
        with np.errstate(under="ignore"):
            loss_fn = NUMPY_LOSSES[self.problem.output]
            loss_sum = loss_fn(Z, targets.one_hot(slice(None), Z.dtype), w)[0]
        penalized = vec * self._mask
        J = loss_sum / self.m + self.problem.penalty(np.square(penalized).sum())
        if self.regression:
            with np.errstate(over="ignore"):
                H = OUTPUT_FUNCTIONS[self.output_activation](Z)
            return float(J), r2_score(targets.Y, H, w)
        with np.errstate(under="ignore"):
            H = ACTIVATIONS["sigmoid"].forward(Z)
        if self.output_activation == "softmax":  # one class per example
            labels = targets.Y.argmax(axis=1) if targets.is_matrix else targets.labels
            right = Z.argmax(axis=1) == labels
        elif targets.is_matrix:
            right = ((H >= 0.5) == targets.Y).all(axis=1)
        elif H.shape[1] == 1:
            right = (H[:, 0] >= 0.5) == targets.labels
        else:
            right = H.argmax(axis=1) == targets.labels
        return float(J), float(np.average(right, weights=w))

    def score(self, vec):
        """The score of the predictions (see :meth:`cost_and_score`)."""
        return self.cost_and_score(vec)[1]


def r2_score(Y, H, w=None):
    """The coefficient of determination, as scikit-learn's ``r2_score`` (uniform average over
    outputs; an output whose targets are constant scores 1 when predicted exactly, else 0).

        R²_k = 1 − Σ_i w_i (y_ik − h_ik)² / Σ_i w_i (y_ik − ȳ_k)²,  ȳ_k = Σ_i w_i y_ik / Σ_i w_i

    Y, H : ndarray of shape (m, K); w : ndarray of shape (m,) or None (all 1).
    """
    Y = np.asarray(Y, dtype=np.float64)
    w = np.ones(Y.shape[0]) if w is None else w
    residual = w @ np.square(Y - H)
    total = w @ np.square(Y - (w @ Y) / w.sum())
    exact = total > 0
    scores = np.where(residual == 0, 1.0, 0.0)
    scores[exact] = 1.0 - residual[exact] / total[exact]
    return float(scores.mean())


def _check_outputs(output_activation, layers):
    """The softmax output needs K ≥ 2 classes (one unit's softmax is 1 whatever z is)."""
    if output_activation == "softmax" and layers[-1] < 2:
        raise ValueError(f"layers: the softmax output needs K >= 2 output units, got "
                         f"K = {layers[-1]}")


def _outputs(implementation, vec, layers, X, activation, output_activation, logits):
    """h = output(z(L)) of the examples X (z(L) with ``logits``): the sigmoid from the kernels,
    the other outputs from z(L) by :data:`fastnn.losses.OUTPUT_FUNCTIONS`, row by row (a Dask
    array's blocks hold whole rows)."""
    if logits or output_activation == "sigmoid":
        return implementation.forward(vec, layers, X, activation, logits)
    Z = implementation.forward(vec, layers, X, activation, True)
    function = OUTPUT_FUNCTIONS[output_activation]
    with np.errstate(under="ignore"):
        if isinstance(Z, np.ndarray):
            return function(Z)
        return Z.map_blocks(function, dtype=Z.dtype)


def _objective(thetas, X, y, lam, **options):
    layers = check_thetas(thetas)
    dtype = np.result_type(*thetas)
    objective = Objective(layers, X, y, lam, dtype=dtype, **options)
    return objective, pack(thetas)


def cost(thetas, X, y, lam=0.0, *, loss="cross_entropy", activation="sigmoid",
         output_activation="sigmoid", backend="auto", client=None, sample_weight=None):
    """The regularized cost J(Θ).

    Parameters
    ----------
    thetas : list of ndarray
        ``thetas[l]`` of shape ``(s_{l+2}, s_{l+1} + 1)``, float32 or float64; their common dtype
        is the dtype of the computation.
    X : array-like or scipy.sparse matrix of shape (m, s_1)
        A sparse X (any format) is computed on as a CSR matrix, never densified.
    y : array-like of shape (m,) or (m, K)
        Integer labels ``0 ... K-1`` (K ≥ 2), a 0/1 vector (K = 1), or a 0/1 matrix; for the
        identity and exp outputs, real values ((m,) for K = 1), ≥ 0 for the exp output. A
        scipy.sparse y is converted to a dense matrix.
    lam : float, default 0
        λ ≥ 0.
    loss : {"cross_entropy", "squared_error", "poisson"}, default "cross_entropy"
        With the output layer, a pair of :data:`fastnn.losses.OUTPUTS` (see :class:`Objective`).
    activation : {"sigmoid", "tanh", "relu", "identity"}, default "sigmoid"
        Activation of the hidden layers.
    output_activation : {"sigmoid", "softmax", "identity", "exp"}, default "sigmoid"
        The output layer: h = σ(z(L)), softmax(z(L)) (multinomial cross-entropy, K ≥ 2),
        z(L) (regression, with ``"squared_error"``) or e^{z(L)} (with ``"poisson"``).
    backend : {"auto", "numpy", "numba", "numba-parallel", "dask"}, default "auto"
        ``"dask"`` computes on the Dask cluster of ``client`` (X and y as Dask arrays chunked
        by rows, or in-memory arrays); see :class:`Objective`.
    client : distributed.Client, optional
        For ``backend="dask"``; by default Dask's default client.
    sample_weight : array-like of shape (m,), optional
        Example weights ≥ 0: J = (1/Σw) Σ_i w_i Σ_k loss term + (λ/2Σw) Σ Θ².

    Returns
    -------
    J : float
    """
    objective, vec = _objective(thetas, X, y, lam, loss=loss, activation=activation,
                                output_activation=output_activation, backend=backend,
                                client=client, sample_weight=sample_weight)
    return objective.cost(vec)


def cost_and_grad(thetas, X, y, lam=0.0, *, loss="cross_entropy", activation="sigmoid",
                  output_activation="sigmoid", backend="auto", client=None, sample_weight=None):
    """The regularized cost J(Θ) and its gradient by backpropagation.

    Parameters are those of :func:`cost`.

    Returns
    -------
    J : float
    grads : list of ndarray
        ``grads[l] = ∂J/∂Θ(l)``, shaped like ``thetas[l]``, in the dtype of the computation.
    """
    objective, vec = _objective(thetas, X, y, lam, loss=loss, activation=activation,
                                output_activation=output_activation, backend=backend,
                                client=client, sample_weight=sample_weight)
    J, grad = objective(vec)
    return J, unpack(grad, objective.layers)


def forward(thetas, X, *, activation="sigmoid", output_activation="sigmoid", backend="auto",
            logits=False):
    """Forward propagation: the outputs h_Θ(x) of every example.

    Parameters
    ----------
    thetas : list of ndarray
        ``thetas[l]`` of shape ``(s_{l+2}, s_{l+1} + 1)``.
    X : array-like or scipy.sparse matrix of shape (m, s_1)
        A sparse X (any format) is computed on as a CSR matrix, never densified.
    activation : {"sigmoid", "tanh", "relu", "identity"}, default "sigmoid"
    output_activation : {"sigmoid", "softmax", "identity", "exp"}, default "sigmoid"
    backend : {"auto", "numpy", "numba", "numba-parallel", "dask"}, default "auto"
        ``"dask"`` takes a Dask array chunked by rows and returns a Dask array.
    logits : bool, default False
        Return the output layer's pre-activations z(L) instead of h.

    Returns
    -------
    H : ndarray of shape (m, K)
        The outputs h (the softmax's rows sum to 1), or z(L) (with ``logits`` or the identity
        output), in the dtype of ``thetas``.
    """
    layers = check_thetas(thetas)
    vec = pack(thetas)
    check_choice(activation, "activation", ACTIVATIONS)
    check_choice(output_activation, "output_activation", OUTPUT_ACTIVATIONS)
    _check_outputs(output_activation, layers)
    implementation = backend_for(backend)
    if not implementation.holds(X):
        X = check_X(X, layers[0], vec.dtype)
    return _outputs(implementation, vec, layers, X, activation, output_activation,
                    logits or output_activation == "identity")


def predict(thetas, X, *, activation="sigmoid", output_activation="sigmoid", backend="auto"):
    """Predicted labels: ``argmax_k h_k(x)`` for K ≥ 2, ``[h(x) ≥ 0.5]`` for K = 1.

    Parameters are those of :func:`forward`; ``output_activation`` is ``"sigmoid"`` or
    ``"softmax"`` (a classifier's).

    Returns
    -------
    labels : ndarray of int64, shape (m,)
    """
    check_choice(output_activation, "output_activation", ("sigmoid", "softmax"))
    H = forward(thetas, X, activation=activation, output_activation=output_activation,
                backend=backend)
    if H.shape[1] == 1:
        return (H[:, 0] >= 0.5).astype(np.int64)
    return H.argmax(axis=1).astype(np.int64)


def check_gradients(thetas, X, y, lam=0.0, *, eps=1e-4, loss="cross_entropy",
                    activation="sigmoid", output_activation="sigmoid", backend="auto",
                    sample_weight=None):
    """Compare backpropagation with central differences on the unrolled θ.

    ``num_p = (J(θ + ε e_p) − J(θ − ε e_p)) / 2ε`` for every parameter p (2P evaluations of J:
    meant for small networks).

    Parameters are those of :func:`cost`, plus ``eps`` (ε, default 1e-4).

    Returns
    -------
    err : float
        ``‖num − backprop‖ / ‖num + backprop‖``; about 1e-9 or less in float64 for a correct
        gradient.
    """
    objective, vec = _objective(thetas, X, y, lam, loss=loss, activation=activation,
                                output_activation=output_activation, backend=backend,
                                sample_weight=sample_weight)
    _, grad = objective(vec)
    numerical = np.empty(vec.shape[0])
    for p in range(vec.shape[0]):
        saved = vec[p]
        vec[p] = saved + eps
        J_plus = objective.cost(vec)
        vec[p] = saved - eps
        J_minus = objective.cost(vec)
        vec[p] = saved
        numerical[p] = (J_plus - J_minus) / (2 * eps)
    denominator = np.linalg.norm(numerical + grad)
    difference = np.linalg.norm(numerical - grad)
    return float(difference / denominator) if denominator > 0 else float(difference)
