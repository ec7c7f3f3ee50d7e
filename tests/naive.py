"""Slow, obvious reference implementations, written from the seed notes.

Nothing here imports fastnn: one example at a time, one-hot targets built in full, derivatives
taken from z (the kernels take them from a), and log of σ taken directly (so use inputs that do
not saturate).
"""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


ACTIVATIONS = {
    "sigmoid": (sigmoid, lambda z: sigmoid(z) * (1.0 - sigmoid(z))),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
    "identity": (lambda z: z, np.ones_like),
}


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


OUTPUTS = {"sigmoid": sigmoid, "identity": lambda z: z, "softmax": softmax, "exp": np.exp}


def target_matrix(y, K):
    """(m, K) targets: y itself if 2-D, else one-hot labels (K ≥ 2) or the 0/1 column (K = 1)."""
    y = np.asarray(y)
    if y.ndim == 2:
        return y.astype(float)
    if K == 1:
        return y.astype(float).reshape(-1, 1)
    return np.eye(K)[y.astype(int)]


def forward_example(thetas, x, activation="sigmoid", output_activation="sigmoid"):
    """Lists a(1..L) and z(2..L) (z[0] is None) for one example; a(L) = σ(z(L)), or z(L),
    softmax(z(L)), e^{z(L)} for the identity, softmax and exp outputs."""
    g = ACTIVATIONS[activation][0]
    a, z = [np.asarray(x, float)], [None]
    for l, theta in enumerate(thetas):
        z.append(theta @ np.concatenate(([1.0], a[-1])))
        if l < len(thetas) - 1:
            a.append(g(z[-1]))
        else:
            a.append(OUTPUTS[output_activation](z[-1]))
    return a, z


def forward(thetas, X, activation="sigmoid", output_activation="sigmoid"):
    return np.array([forward_example(thetas, x, activation, output_activation)[0][-1]
                     for x in X])


def cost_and_grad(thetas, X, y, lam=0.0, loss="cross_entropy", activation="sigmoid",
                  output_activation="sigmoid", sample_weight=None):
    """J and the list of D(l), by the per-example algorithm of the seed notes; with weights,
    example i counts w_i times and m becomes W = Σ w_i (scikit-learn's convention)."""
    thetas = [np.asarray(theta, float) for theta in thetas]
    X = np.asarray(X, float)
    m = X.shape[0]
    w = np.ones(m) if sample_weight is None else np.asarray(sample_weight, float)
    W = w.sum()
    K = thetas[-1].shape[0]
    identity = output_activation in ("identity", "exp")
    Y = np.asarray(y, float).reshape(m, K) if identity else target_matrix(y, K)
    g_prime = ACTIVATIONS[activation][1]
    J = 0.0
    Deltas = [np.zeros_like(theta) for theta in thetas]
    for i in range(m):
        a, z = forward_example(thetas, X[i], activation, output_activation)
        h, t = a[-1], Y[i]
        if output_activation == "softmax":  # −Σ t log h; ∂/∂z_k = h_k Σ t − t_k
            J -= w[i] * np.sum(t * np.log(h))
            delta = h * t.sum() - t
        elif loss == "poisson":  # half deviance t log(t/h) − t + h, 0 log 0 = 0
            J += w[i] * np.sum(np.where(t > 0, t * np.log(np.where(t > 0, t, 1) / h), 0) - t + h)
            delta = h - t
        elif loss == "cross_entropy":
            J -= w[i] * np.sum(t * np.log(h) + (1 - t) * np.log(1 - h))
            delta = h - t
        else:
            J += w[i] * 0.5 * np.sum((h - t) ** 2)
            delta = (h - t) if identity else (h - t) * h * (1 - h)
        delta = w[i] * delta
        for l in range(len(thetas) - 1, -1, -1):
            Deltas[l] += np.outer(delta, np.concatenate(([1.0], a[l])))
            if l > 0:
                delta = (thetas[l].T @ delta)[1:] * g_prime(z[l])
    J /= W
    grads = []
    for theta, Delta in zip(thetas, Deltas):
        J += lam / (2 * W) * np.sum(theta[:, 1:] ** 2)
        D = Delta / W
        D[:, 1:] += lam / W * theta[:, 1:]
        grads.append(D)
    return J, grads


def hidden_preactivations(thetas, X, activation="sigmoid"):
    """All hidden-layer z of all examples, flattened (to keep relu's kink out of reach)."""
    values = [np.concatenate(forward_example(thetas, x, activation)[1][1:-1] or [np.empty(0)])
              for x in X]
    return np.concatenate(values)
