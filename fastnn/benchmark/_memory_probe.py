"""The process :func:`fastnn.benchmark.call_memory` measures (Linux).

    python -m fastnn.benchmark._memory_probe WORKLOAD BACKEND DTYPE SCALE

compiles the backend's kernels on a small problem, makes the workload's data, resets the peak
resident size and makes one J-and-∇J call, then prints the MiB of X and of y, the resident
size before the call and the peak resident size during it.
"""

import sys

from fastnn.benchmark.workloads import LAMBDA, WORKLOADS, make_data
from fastnn.cost import Objective

COMPILE_M = 64
"""Examples of the problem that compiles the kernels (or loads them from Numba's cache)."""


def resident_mb(key):
    """A size from ``/proc/self/status`` in MiB: ``"VmRSS:"`` now, ``"VmHWM:"`` the peak."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(key)) / 1024


def reset_peak():
    """Resets the peak resident size (``VmHWM``) to the current one."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def main(argv=None):
    """Measures one call and prints the four figures.

    Parameters
    ----------
    argv : list of str, optional
        ``[WORKLOAD, BACKEND, DTYPE, SCALE]``; the command line's when None.
    """
    name, backend, dtype, scale = argv if argv is not None else sys.argv[1:]
    workload = WORKLOADS[name]
    X, y, theta = make_data(workload, dtype, COMPILE_M / workload.m)
    Objective(workload.layers, X, y, LAMBDA, backend=backend, dtype=dtype)(theta)
    X, y, theta = make_data(workload, dtype, float(scale))
    objective = Objective(workload.layers, X, y, LAMBDA, backend=backend, dtype=dtype)
    reset_peak()
    before = resident_mb("VmRSS:")
    objective(theta)
    print(X.nbytes / 2**20, y.nbytes / 2**20, before, resident_mb("VmHWM:"))


if __name__ == "__main__":
    main()
