"""Compiling one loop body twice: for one thread, and over Numba's threads."""

import types

from numba import njit


def compile_loop(py_func, parallel):
    """``njit(cache=True, parallel=parallel)`` of ``py_func``, cached under its own name.

    The body's ``prange`` loops run over Numba's threads in the parallel compilation and as
    plain loops in the serial one. Numba's cache index is keyed by the function's name and
    bytecode, not by ``parallel`` (numba issue #6845), so the two compilations of one source
    would overwrite each other's cache entries; the parallel one is compiled from a copy named
    ``<name>_parallel``.
    """
    if parallel:
        name = py_func.__name__ + "_parallel"
        py_func = types.FunctionType(
            py_func.__code__, py_func.__globals__, name, py_func.__defaults__, py_func.__closure__
        )
        py_func.__qualname__ = name
    return njit(cache=True, parallel=parallel)(py_func)
