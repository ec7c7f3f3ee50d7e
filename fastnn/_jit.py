"""Compiling one loop body twice (for one thread, and over Numba's threads), and the one place
the fast-math flags are set."""

import types

from numba import njit
from numba import types as nbtypes
from numba.extending import intrinsic

FASTMATH = {"reassoc", "contract"}
"""The only fast-math flags the kernels and the L-BFGS loops use: reassociation lets the
dot-product and axpy loops vectorize, contraction lets them use FMA. Never ``nnan``/``ninf`` (the
cost and the input checks rely on inf and NaN semantics), so never ``fastmath=True``. Results
change by rounding only; the tests pin them against the NumPy backend and the naive reference to
1e-12."""


PRANGE_ONLY = {"prange": True, "numpy": False, "setitem": False, "inplace_binop": False,
               "comprehension": False, "stencil": False}
"""Numba's parallel options of the parallel compilations: the ``prange`` loops run over the
threads, and nothing else does. Left on, ``numpy`` and ``setitem`` turn each ``np.zeros`` and
each ``a[:] = 0.0`` into a loop of its own: one outside the ``prange`` loops is a parallel
region, compiled into a gufunc with its wrappers and started on every call for a few numbers;
one inside runs on one thread anyway."""


def compile_loop(py_func, parallel, **constants):
    """``njit(cache=True, parallel=parallel)`` of ``py_func``, cached under its own name.

    ``error_model="numpy"``: a division by zero gives inf or NaN instead of raising, so that
    loops with divisions (the sigmoid's) have no exit and vectorize; the kernels' inputs are
    finite, and a diverged θ shows as a non-finite J.

    The body's ``prange`` loops run over Numba's threads in the parallel compilation and as
    plain loops in the serial one. Numba's cache index is keyed by the function's name and
    bytecode, not by ``parallel`` (numba issue #6845), so the two compilations of one source
    would overwrite each other's cache entries; the parallel one is compiled from a copy named
    ``<name>_parallel``.

    ``constants``: module globals of the body given these values in this compilation, for a
    choice the caller makes in Python before the call (``UNIT_MAJOR=True``). Numba reads a
    global as a constant and prunes the branches it decides before typing, so the code of the
    paths not taken, and the functions only they call, are never compiled. The copy is named
    after the values (``<name>_unit_major_1``), so that each has its own cache entries.
    """
    if parallel or constants:
        name = py_func.__name__ + ("_parallel" if parallel else "") + "".join(
            f"_{key.lower()}_{int(value)}" for key, value in sorted(constants.items()))
        py_func = types.FunctionType(
            py_func.__code__, {**py_func.__globals__, **constants} if constants
            else py_func.__globals__, name, py_func.__defaults__, py_func.__closure__
        )
        py_func.__qualname__ = name
    return njit(cache=True, parallel=dict(PRANGE_ONLY) if parallel else False,
                error_model="numpy")(py_func)


@intrinsic
def int64_as_float64(typingctx, bits):
    """The float64 whose bits are those of the int64 ``bits`` (a bitcast, which vectorizes)."""
    if not isinstance(bits, nbtypes.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(nbtypes.float64))

    return nbtypes.float64(nbtypes.int64), codegen


@intrinsic
def int32_as_float32(typingctx, bits):
    """The float32 whose bits are those of the int32 ``bits`` (a bitcast, which vectorizes)."""
    if not isinstance(bits, nbtypes.Integer):
        return None

    def codegen(context, builder, signature, args):
        value = context.cast(builder, args[0], signature.args[0], nbtypes.int32)
        return builder.bitcast(value, context.get_value_type(nbtypes.float32))

    return nbtypes.float32(bits), codegen
