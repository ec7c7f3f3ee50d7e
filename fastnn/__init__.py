"""fastnn: fully connected sigmoid networks trained by backpropagation, fast.

The cost, its gradient and the forward pass are computed by one of three backends: explicit
per-example loops compiled by Numba (``"numba"``, and ``"numba-parallel"`` over threads), or
vectorized NumPy (``"numpy"``).
"""

from fastnn.backends import available_backends
from fastnn.cost import Objective, check_gradients, cost, cost_and_grad, forward, predict
from fastnn.network import init_weights, layers_of, n_params, pack, unpack

__version__ = "0.1.0"

__all__ = [
    "Objective",
    "available_backends",
    "check_gradients",
    "cost",
    "cost_and_grad",
    "forward",
    "init_weights",
    "layers_of",
    "n_params",
    "pack",
    "predict",
    "unpack",
]
