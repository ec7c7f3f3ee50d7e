"""The process :func:`fastnn.benchmark.sparse.epoch_memory` measures (Linux).

    python -m fastnn.benchmark._sparse_memory_probe M N NNZ HIDDEN DTYPE

compiles the kernels with one epoch on a small CSR X of N columns, makes the m × n tf-idf-shaped
X with about NNZ nonzeros (:func:`fastnn.benchmark.make_sparse`), hands the memory its
generation freed back to the system (``malloc_trim``, so that the epoch cannot reuse pages that
would otherwise count as X's), resets the peak resident size and fits ``fastnn.MLPClassifier``
for one adam epoch (HIDDEN hidden units, batches of 200); then prints the MiB of X (data,
indices, indptr) and of y, the resident size before the epoch, the peak resident size during
it, and X's number of nonzeros.
"""

import ctypes
import gc
import sys
import warnings

from fastnn.benchmark._memory_probe import COMPILE_M, reset_peak, resident_mb
from fastnn.benchmark.sparse import K, csr_bytes
from fastnn.benchmark.workloads import make_sparse


def _epoch(X, y, hidden):
    from sklearn.exceptions import ConvergenceWarning

    from fastnn import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(hidden,), solver="adam", batch_size=200,
                        max_iter=1, tol=0.0, n_iter_no_change=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter ends the fit
        clf.fit(X, y)


def _trim():
    """Returns the C heap's free pages to the system, where glibc can."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def main(argv=None):
    """Measures one epoch and prints the five figures.

    Parameters
    ----------
    argv : list of str, optional
        ``[M, N, NNZ, HIDDEN, DTYPE]``; the command line's when None.
    """
    m, n, nnz, hidden, dtype = argv if argv is not None else sys.argv[1:]
    m, n, nnz, hidden = int(m), int(n), int(nnz), int(hidden)
    X, y, _ = make_sparse(COMPILE_M, n, nnz=max(1, nnz * COMPILE_M // m), hidden=(hidden,),
                          K=K, dtype=dtype)
    _epoch(X, y, hidden)
    X, y, theta = make_sparse(m, n, nnz=nnz, hidden=(hidden,), K=K, dtype=dtype)
    del theta
    gc.collect()
    _trim()
    reset_peak()
    before = resident_mb("VmRSS:")
    _epoch(X, y, hidden)
    print(csr_bytes(X) / 2**20, y.nbytes / 2**20, before, resident_mb("VmHWM:"), X.nnz)


if __name__ == "__main__":
    main()
