"""fastnn: fully connected sigmoid networks trained by backpropagation, fast.

The cost, its gradient and the forward pass are computed by one of four backends: explicit
loops over blocks of examples compiled by Numba (``"numba"``, and ``"numba-parallel"`` over
threads), vectorized NumPy (``"numpy"``), or ``"dask"``, which runs the Numba kernels on the
row chunks of Dask arrays, on the workers that hold them; ``"auto"`` picks ``"numpy"`` or
``"numba-parallel"`` per call.
"""

import importlib

from fastnn.backends import available_backends, get_num_threads, set_num_threads
from fastnn.cost import Objective, check_gradients, cost, cost_and_grad, forward, predict
from fastnn.network import init_weights, layers_of, n_params, pack, unpack
from fastnn.trainer import History, TrainingDiverged, train

__version__ = "0.1.0"

# The estimator and model files need scikit-learn, which takes about half a second to import;
# they are loaded on first use so that the engine alone starts fast.
_LAZY = {"MLPClassifier": "fastnn.estimator", "MLPRegressor": "fastnn.estimator",
         "ModelFileError": "fastnn.io", "load": "fastnn.estimator"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fastnn' has no attribute {name!r}")


__all__ = [
    "History",
    "MLPClassifier",
    "MLPRegressor",
    "ModelFileError",
    "Objective",
    "TrainingDiverged",
    "available_backends",
    "check_gradients",
    "cost",
    "cost_and_grad",
    "forward",
    "get_num_threads",
    "init_weights",
    "layers_of",
    "load",
    "n_params",
    "pack",
    "predict",
    "set_num_threads",
    "train",
    "unpack",
]
