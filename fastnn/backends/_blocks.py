"""One block of examples through the network, in the Numba kernels' two layouts.

Per example i (seed-notes notation, 0-based layers in code):

    a(1) = x(i);  z(l+1) = Θ(l) [1; a(l)];  a(l+1) = g(z(l+1));  h = σ(z(L))
    J_sum += w_i Σ_k loss term(z_k(L), y_k(i))
    δ(L) = w_i ∂ loss / ∂z(L);  δ(l) = (Θ(l)ᵀ δ(l+1))[1:] ∘ g′(a(l))
    Δ(l) += δ(l+1) [1; a(l)]ᵀ

taken ``BLOCK`` examples at a time, each step a product of :mod:`fastnn.backends._products`
with W(l) = Θ(l)[:, 1:]. As rows, A(l) of shape (nb, s_l) as X is (:func:`_propagate_block`,
:func:`_backward_block`; the batch kernel's steps too):

    forward    Z(l+1) = Θ(l)[:, 0] + A(l) W(l)ᵀ      (C = A(l),    B = W(l)ᵀ)
    δ          δ(l) = (δ(l+1) W(l)) ∘ g′(A(l))       (C = δ(l+1),  B = W(l))
    Δ          Δ(l)[:, 1:] += δ(l+1)ᵀ A(l)           (C = δ(l+1)ᵀ, B = A(l))

with W(l) and W(l)ᵀ read from contiguous copies, and the forward product of a layer of fewer
than ``NARROW`` units taken as dot products of rows of A(l) and W(l). Unit-major, A(l)ᵀ of
shape (s_l, nb), a row per unit running along the block's examples, for the layers after the
first (X stays a row per example; :func:`_forward_units`, :func:`_backward_units`):

    forward    Z(l+1)ᵀ = Θ(l)[:, 0] + W(l) A(l)ᵀ     (C = W(l),    B = A(l)ᵀ)
    δ          δ(l)ᵀ = (W(l)ᵀ δ(l+1)ᵀ) ∘ g′(A(l)ᵀ)   (C = W(l)ᵀ,   B = δ(l+1)ᵀ)
    Δ          Δ(l)[:, 1:] += δ(l+1)ᵀ A(l)           (C = δ(l+1)ᵀ, B = X or A(l))

with C read as scalars (W(l) straight from Θ, no copy), and Z(1)ᵀ = W(0) Xᵀ taken as dot
products of rows of X and of Θ(0), written transposed: every product after the first layer's
forward then has its inner loop along the block's examples, however few units the layers have.

θ is one flat vector; Θ(l) starts at ``offsets[l]``, W(l) of the unrolled Δ sums and weight
copies at ``w_offsets[l]``. The activation and δ buffers hold b examples (``BLOCK`` for the
chunked kernel, the batch for the batch kernel) of every layer after the first, layer l at
``b · (unit_offsets[l] − unit_offsets[1])``; layer 1 is read straight from X.
"""

import numpy as np
from numba import njit

from fastnn._jit import FASTMATH
from fastnn.activations import activate_row, scale_by_derivative_row
from fastnn.backends._products import _add_dot_products, _add_product
from fastnn.backends._tuning import BLOCK, NARROW
from fastnn.losses import SOFTMAX_CROSS_ENTROPY, loss_term_and_delta, softmax_terms_and_delta


@njit(cache=True)
def _copy_unit_weights(theta, layers, offsets, unit_offsets, w_offsets, u, W, WT):
    """Row j of W(l) = Θ(l)[:, 1:] and, unless ``WT`` is empty, column j of W(l)ᵀ, both
    contiguous (layer l at ``w_offsets[l]``), for unit u of the units after the input layer
    (unit j of layer l+1). The chunked kernel copies every unit's weights once per call when
    its blocks are rows; the batch kernel copies the rows of W(l), l ≥ 1, for its
    backpropagation. Both may spread the units over the threads (a row per unit: threads
    copying different units write different cache lines)."""
    l = 0
    while unit_offsets[l + 2] - unit_offsets[1] <= u:
        l += 1
    s_in, s_out = layers[l], layers[l + 1]
    j = u - (unit_offsets[l + 1] - unit_offsets[1])
    Theta = theta[offsets[l] : offsets[l + 1]].reshape((s_out, s_in + 1))
    W_l = W[w_offsets[l] : w_offsets[l + 1]].reshape((s_out, s_in))
    for k in range(s_in):
        W_l[j, k] = Theta[j, k + 1]
    if WT.shape[0] > 0:
        WT_l = WT[w_offsets[l] : w_offsets[l + 1]].reshape((s_in, s_out))
        for k in range(s_in):
            WT_l[k, j] = Theta[j, k + 1]


@njit(cache=True)
def _layer_rows(buf, layers, unit_offsets, l, b, start, stop):
    """Rows start ... stop−1 of layer l ≥ 1 in a buffer holding b rows of every layer after
    the first, layer-major: layer l's (b, s_l) block at ``b · (unit_offsets[l] −
    unit_offsets[1])``."""
    s = layers[l]
    base = b * (unit_offsets[l] - unit_offsets[1])
    return buf[base + start * s : base + stop * s].reshape((stop - start, s))


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _propagate_block(theta, layers, offsets, unit_offsets, W, WT, w_offsets, X_block,
                     activation, acts, b, start, in_place=False, rows=None):
    """A(l+1) = g(A(l) W(l)ᵀ + Θ(l)[:, 0]) for a block of examples (rows); z(L) last, not σ.

    The block's rows go to rows ``start ...`` of ``acts``, a buffer of b rows per layer. The
    product goes through :func:`_add_dot_products` (with W) for a layer of fewer than
    ``NARROW`` units, else through :func:`_add_product` (with Wᵀ); ``in_place``: through
    :func:`_add_dot_products` with the rows of Θ(l) from column 1, for every layer (W and WT
    are not read). ``rows``: the block's examples are X_block[rows], read where they are (the
    batch kernel's mini-batch), the first layer as dot products with Θ(0) in place."""
    nb = X_block.shape[0] if rows is None else rows.shape[0]
    n_weights = layers.shape[0] - 1
    A_in = X_block
    for l in range(n_weights):
        s_in, s_out = layers[l], layers[l + 1]
        Theta = theta[offsets[l] : offsets[l + 1]].reshape((s_out, s_in + 1))
        Z = _layer_rows(acts, layers, unit_offsets, l + 1, b, start, start + nb)
        for r in range(nb):
            Z[r] = Theta[:, 0]
        if l == 0 and rows is not None:
            _add_dot_products(X_block, Theta, Z, 1, rows)
        elif in_place:
            _add_dot_products(A_in, Theta, Z, 1)
        elif s_out < NARROW:
            _add_dot_products(A_in, W[w_offsets[l] : w_offsets[l + 1]].reshape((s_out, s_in)), Z)
        else:
            _add_product(A_in, WT[w_offsets[l] : w_offsets[l + 1]].reshape((s_in, s_out)), Z)
        if l < n_weights - 1:
            for r in range(nb):
                activate_row(Z[r], activation)
        A_in = Z


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _backpropagate_block(layers, unit_offsets, W, w_offsets, activation, acts, deltas, b,
                         start, stop):
    """Given δ(L) of rows start ... stop−1: δ(l) = (δ(l+1) W(l)) ∘ g′(A(l)) for l = L−1 ... 2,
    row by row, in buffers of b rows per layer; W(l) from its contiguous copy in W (layer l
    at ``w_offsets[l]``)."""
    for l in range(layers.shape[0] - 2, 0, -1):
        s_in, s_out = layers[l], layers[l + 1]
        d_out = _layer_rows(deltas, layers, unit_offsets, l + 1, b, start, stop)
        d_in = _layer_rows(deltas, layers, unit_offsets, l, b, start, stop)
        A = _layer_rows(acts, layers, unit_offsets, l, b, start, stop)
        d_in[:] = 0.0
        _add_product(d_out, W[w_offsets[l] : w_offsets[l + 1]].reshape((s_out, s_in)), d_in)
        for r in range(stop - start):
            scale_by_derivative_row(d_in[r], A[r], activation)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _backward_block(layers, unit_offsets, W, w_offsets, X_block, activation, acts, deltas,
                    DW, Db):
    """Given δ(L) of a block: δ(l) for l ≥ 2, DW(l) += δ(l+1)ᵀ A(l) and Db(l) += Σ_rows
    δ(l+1); DW is unrolled like W, Db holds the biases of layer l+1 at ``unit_offsets[l+1] −
    unit_offsets[1]``, like the block buffers."""
    nb = X_block.shape[0]
    _backpropagate_block(layers, unit_offsets, W, w_offsets, activation, acts, deltas,
                         BLOCK, 0, nb)
    for l in range(layers.shape[0] - 1):
        s_in, s_out = layers[l], layers[l + 1]
        d_out = _layer_rows(deltas, layers, unit_offsets, l + 1, BLOCK, 0, nb)
        A_in = X_block if l == 0 else _layer_rows(acts, layers, unit_offsets, l, BLOCK, 0, nb)
        _add_product(d_out.T, A_in, DW[w_offsets[l] : w_offsets[l + 1]].reshape((s_out, s_in)))
        Db_l = Db[unit_offsets[l + 1] - unit_offsets[1] : unit_offsets[l + 2] - unit_offsets[1]]
        for r in range(nb):
            d = d_out[r]
            for j in range(s_out):
                Db_l[j] += d[j]


@njit(cache=True)
def _unit_rows(buf, layers, unit_offsets, l, nb):
    """Layer l ≥ 1 of a block of nb ≤ ``BLOCK`` examples, unit-major: the (s_l, nb) array
    whose row j is unit j over the block's examples, in a buffer of ``BLOCK`` examples of
    every layer after the first (layer l at ``BLOCK · (unit_offsets[l] − unit_offsets[1])``)."""
    s = layers[l]
    base = BLOCK * (unit_offsets[l] - unit_offsets[1])
    return buf[base : base + s * nb].reshape((s, nb))


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _forward_units(theta, layers, offsets, unit_offsets, X_block, activation, acts):
    """A(l+1)ᵀ = g(Θ(l)[:, 0] + W(l) A(l)ᵀ) for a block of examples, unit-major (see
    :func:`_unit_rows`); z(L)ᵀ last, not σ. Z(1)ᵀ as dot products of the rows of X and of Θ(0)
    from column 1, written transposed (:func:`_add_dot_products` into a transposed view);
    later layers by :func:`_add_product` with W(l) read from Θ(l) as scalars, the inner loop
    along the block's examples."""
    nb = X_block.shape[0]
    n_weights = layers.shape[0] - 1
    for l in range(n_weights):
        s_in, s_out = layers[l], layers[l + 1]
        Theta = theta[offsets[l] : offsets[l + 1]].reshape((s_out, s_in + 1))
        Zt = _unit_rows(acts, layers, unit_offsets, l + 1, nb)
        for j in range(s_out):
            Zt[j] = Theta[j, 0]
        if l == 0:
            # OUT a view of any layout, w_off an int64 rather than the literal 1, as in
            # _backward_units: one compilation of _add_dot_products serves both (OUT is written
            # outside its inner loop, so the layout costs nothing)
            _add_dot_products(X_block, Theta, Zt.T[:, :s_out], np.int64(1))
        else:
            _add_product(Theta[:, 1:], _unit_rows(acts, layers, unit_offsets, l, nb), Zt)
        if l < n_weights - 1:
            for j in range(s_out):
                activate_row(Zt[j], activation)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _backward_units(theta, layers, offsets, unit_offsets, w_offsets, X_block, activation,
                    acts, deltas, DW, Db):
    """Given δ(L)ᵀ of a block (unit-major, see :func:`_unit_rows`): δ(l)ᵀ = (W(l)ᵀ δ(l+1)ᵀ)
    ∘ g′(A(l)ᵀ) for l = L−1 ... 2 (W(l)ᵀ read from Θ(l) as scalars), DW(l) += δ(l+1)ᵀ A(l) and
    Db(l) += Σ_examples δ(l+1). DW is unrolled like W (layer l at ``w_offsets[l]``), Db holds
    the biases of layer l+1 at ``unit_offsets[l+1] − unit_offsets[1]``, like the block buffers.
    DW(0) by :func:`_add_product` along the rows of X; DW(l), l ≥ 1, as dot products of the
    rows of δ(l+1)ᵀ and A(l)ᵀ, along the block's examples."""
    nb = X_block.shape[0]
    for l in range(layers.shape[0] - 2, 0, -1):
        s_in, s_out = layers[l], layers[l + 1]
        Theta = theta[offsets[l] : offsets[l + 1]].reshape((s_out, s_in + 1))
        d_in = _unit_rows(deltas, layers, unit_offsets, l, nb)
        d_in[:] = 0.0
        _add_product(Theta[:, 1:].T, _unit_rows(deltas, layers, unit_offsets, l + 1, nb), d_in)
        A = _unit_rows(acts, layers, unit_offsets, l, nb)
        for j in range(s_in):
            scale_by_derivative_row(d_in[j], A[j], activation)
    for l in range(layers.shape[0] - 1):
        s_in, s_out = layers[l], layers[l + 1]
        d = _unit_rows(deltas, layers, unit_offsets, l + 1, nb)
        DW_l = DW[w_offsets[l] : w_offsets[l + 1]].reshape((s_out, s_in))
        if l == 0:  # d typed as the Θ(l)[:, 1:] of the other products (C is read as
            # scalars, so the layout costs nothing): one compilation of _add_product serves all
            _add_product(d[:, :nb], X_block, DW_l)
        else:
            _add_dot_products(d, _unit_rows(acts, layers, unit_offsets, l, nb), DW_l[:, :s_in],
                              np.int64(0))  # typed as in _forward_units
        Db_l = Db[unit_offsets[l + 1] - unit_offsets[1] : unit_offsets[l + 2] - unit_offsets[1]]
        for j in range(s_out):
            total = Db_l[j]
            row = d[j]
            for r in range(nb):
                total += row[r]
            Db_l[j] = total


NO_ROWS = np.empty(0, dtype=np.int64)
"""``rows`` of :func:`_loss_terms` when the block's examples are consecutive rows."""


@njit(cache=True, error_model="numpy")
def _loss_terms(Z_out, d_out, labels, Y, weights, rows, start, output, unit_major):
    """Σ_i w_i Σ_k loss terms of a block, and its δ(L) (times w_i) into ``d_out``; row r of the
    block is example i = ``rows[start + r]``, or ``start + r`` when ``rows`` is empty; w_i =
    ``weights[i]``, or 1 when ``weights`` is empty. ``Z_out`` and ``d_out`` are contiguous,
    of shape (nb, K), or (K, nb) with ``unit_major`` (see :func:`_unit_rows`).

    The terms and δ are taken in one loop over the block's nb · K outputs, which vectorizes (a
    loop per example over K = 10 outputs would run mostly in its scalar remainder). No sum is
    in that loop (a sum in order would not vectorize, and the compensated
    arithmetic of exp and log1p forbids reassociation): the terms are summed afterwards,
    example by example in order, each over k in order, whatever the layout. The softmax
    output's terms are one per example (:func:`fastnn.losses.softmax_terms_and_delta`): its
    row max, normalizer and δ(L) in passes over the example's K outputs, along the layout's
    stride."""
    if unit_major:
        K, nb = Z_out.shape
        r_step, k_step = 1, nb
    else:
        nb, K = Z_out.shape
        r_step, k_step = K, 1
    n = nb * K
    use_matrix = Y.shape[0] > 0
    weighted = weights.shape[0] > 0
    targets = np.empty(n)
    terms = np.empty(n)
    examples = rows[start : start + nb] if rows.shape[0] > 0 else np.arange(start, start + nb)
    for r in range(nb):
        i = examples[r]
        for k in range(K):
            if use_matrix:
                targets[r * r_step + k * k_step] = Y[i, k]
            elif K == 1:
                targets[r * r_step + k * k_step] = labels[i]
            else:
                targets[r * r_step + k * k_step] = 1.0 if labels[i] == k else 0.0
    z, d = Z_out.reshape(n), d_out.reshape(n)
    if output == SOFTMAX_CROSS_ENTROPY:
        for r in range(nb):
            softmax_terms_and_delta(z, targets, terms, d, r * r_step, k_step, K)
    else:
        for e in range(n):
            terms[e], d[e] = loss_term_and_delta(z[e], targets[e], output)
    cost = 0.0
    for r in range(nb):
        row_terms = 0.0
        for k in range(K):
            row_terms += terms[r * r_step + k * k_step]
        if weighted:
            w = weights[examples[r]]
            cost += w * row_terms
            for k in range(K):
                d[r * r_step + k * k_step] *= w
        else:
            cost += row_terms
    return cost
