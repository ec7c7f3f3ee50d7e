"""The two product loops every Numba kernel's layer steps go through: ``OUT += C B``.

Taken example by example, backpropagation is a matrix-vector product per layer, which streams
every weight from L2 for two floating-point operations. The kernels take their examples a block
at a time instead, so that with W(l) = Θ(l)[:, 1:] each step is a product ``OUT += C B`` of a
block's activations or δ with W(l), W(l)ᵀ, or each other (see :mod:`fastnn.backends._blocks`):
a weight loaded from cache then serves a block of examples, which is what lets these loops
compete with BLAS-backed matrix products. :func:`_add_product` holds a tile of C in registers
and vectorizes along the rows of B and OUT; :func:`_add_dot_products` takes OUT's entries as
dot products of rows, for an OUT of few columns (a narrow layer), where the first loop would
run mostly in its remainder.
"""

import numpy as np
from numba import njit

from fastnn._jit import FASTMATH


@njit(cache=True, fastmath=FASTMATH)
def _add_product(C, B, OUT, cols=None):
    """OUT += C B for C of shape (R, T), B (T, N), OUT (R, N); rows of B and OUT contiguous.
    ``cols``: C's columns are C[:, cols] (T = len(cols)), read where they are.

    A 4 × 4 tile of C is held in registers while the innermost loop runs along rows of B and
    OUT: every element of B loaded serves four rows of OUT, every element of OUT loaded and
    stored takes four products, and the lanes are independent, so the loop vectorizes without
    reassociation. The three products of backpropagation are all of this form.
    """
    R = C.shape[0]
    T = C.shape[1] if cols is None else cols.shape[0]
    N = OUT.shape[1]
    R4 = R - R % 4
    T4 = T - T % 4
    for r in range(0, R4, 4):
        o0, o1, o2, o3 = OUT[r], OUT[r + 1], OUT[r + 2], OUT[r + 3]
        for t in range(0, T4, 4):
            b0, b1, b2, b3 = B[t], B[t + 1], B[t + 2], B[t + 3]
            if cols is None:
                t0, t1, t2, t3 = t, t + 1, t + 2, t + 3
            else:
                t0, t1, t2, t3 = cols[t], cols[t + 1], cols[t + 2], cols[t + 3]
            c00, c01, c02, c03 = C[r, t0], C[r, t1], C[r, t2], C[r, t3]
            c10, c11, c12, c13 = C[r + 1, t0], C[r + 1, t1], C[r + 1, t2], C[r + 1, t3]
            c20, c21, c22, c23 = C[r + 2, t0], C[r + 2, t1], C[r + 2, t2], C[r + 2, t3]
            c30, c31, c32, c33 = C[r + 3, t0], C[r + 3, t1], C[r + 3, t2], C[r + 3, t3]
            for n in range(N):
                x0, x1, x2, x3 = b0[n], b1[n], b2[n], b3[n]
                o0[n] += c00 * x0 + c01 * x1 + c02 * x2 + c03 * x3
                o1[n] += c10 * x0 + c11 * x1 + c12 * x2 + c13 * x3
                o2[n] += c20 * x0 + c21 * x1 + c22 * x2 + c23 * x3
                o3[n] += c30 * x0 + c31 * x1 + c32 * x2 + c33 * x3
        for t in range(T4, T):
            b0 = B[t]
            t0 = t if cols is None else cols[t]
            c0, c1, c2, c3 = C[r, t0], C[r + 1, t0], C[r + 2, t0], C[r + 3, t0]
            for n in range(N):
                x = b0[n]
                o0[n] += c0 * x
                o1[n] += c1 * x
                o2[n] += c2 * x
                o3[n] += c3 * x
    for r in range(R4, R):
        o = OUT[r]
        for t in range(T):
            c = C[r, t if cols is None else cols[t]]
            b = B[t]
            for n in range(N):
                o[n] += c * b[n]



@njit(cache=True, fastmath=FASTMATH)
def _add_dot_products(C, W, OUT, w_off=0, rows=None):
    """OUT += C Wᵀ for C of shape (R, T), W (N, T), OUT (R, N); rows of C and W contiguous.
    ``rows``: C's rows are C[rows] (R = len(rows)), read where they are.

    Each entry is the dot product of a row of C and a row of W; four rows of C against four
    of W are taken at a time (sixteen running sums in the dtype of C), so every element loaded
    serves four products, and the loop along T vectorizes by reassociation. For a narrow OUT
    (a layer of few units, N < ``NARROW``) this beats :func:`_add_product`, whose vector loop
    runs along N. ``w_off``: the rows of W start at that column (1: W = Θ(l), read in place).
    """
    R = C.shape[0] if rows is None else rows.shape[0]
    T = C.shape[1]
    N = W.shape[0]
    zero = np.zeros(1, C.dtype)[0]
    R4 = R - R % 4
    N4 = N - N % 4
    for r in range(0, R4, 4):
        if rows is None:
            c0, c1, c2, c3 = C[r], C[r + 1], C[r + 2], C[r + 3]
        else:
            c0, c1, c2, c3 = C[rows[r]], C[rows[r + 1]], C[rows[r + 2]], C[rows[r + 3]]
        for n in range(0, N4, 4):
            w0, w1, w2, w3 = W[n, w_off:], W[n + 1, w_off:], W[n + 2, w_off:], W[n + 3, w_off:]
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
            s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
            for t in range(T):
                a0, a1, a2, a3 = c0[t], c1[t], c2[t], c3[t]
                b0, b1, b2, b3 = w0[t], w1[t], w2[t], w3[t]
                s00 += a0 * b0
                s01 += a0 * b1
                s02 += a0 * b2
                s03 += a0 * b3
                s10 += a1 * b0
                s11 += a1 * b1
                s12 += a1 * b2
                s13 += a1 * b3
                s20 += a2 * b0
                s21 += a2 * b1
                s22 += a2 * b2
                s23 += a2 * b3
                s30 += a3 * b0
                s31 += a3 * b1
                s32 += a3 * b2
                s33 += a3 * b3
            o0, o1, o2, o3 = OUT[r], OUT[r + 1], OUT[r + 2], OUT[r + 3]
            o0[n] += s00
            o0[n + 1] += s01
            o0[n + 2] += s02
            o0[n + 3] += s03
            o1[n] += s10
            o1[n + 1] += s11
            o1[n + 2] += s12
            o1[n + 3] += s13
            o2[n] += s20
            o2[n + 1] += s21
            o2[n + 2] += s22
            o2[n + 3] += s23
            o3[n] += s30
            o3[n + 1] += s31
            o3[n + 2] += s32
            o3[n + 3] += s33
        for n in range(N4, N):
            w = W[n, w_off:]
            s0 = s1 = s2 = s3 = zero
            for t in range(T):
                b = w[t]
                s0 += c0[t] * b
                s1 += c1[t] * b
                s2 += c2[t] * b
                s3 += c3[t] * b
            OUT[r, n] += s0
            OUT[r + 1, n] += s1
            OUT[r + 2, n] += s2
            OUT[r + 3, n] += s3
    for r in range(R4, R):
        c = C[r] if rows is None else C[rows[r]]
        for n in range(N):
            w = W[n, w_off:]
            s = zero
            for t in range(T):
                s += c[t] * w[t]
            OUT[r, n] += s

