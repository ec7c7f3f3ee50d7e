"""Memory of one J-and-∇J call, measured in a fresh process by :mod:`._memory_probe`."""

import subprocess
import sys

import numpy as np


def call_memory(workload, backend, dtype, scale=1.0):
    """Memory of one J-and-∇J call, measured in a fresh process (Linux).

    Parameters
    ----------
    workload : str
        A key of :data:`fastnn.benchmark.WORKLOADS`.
    backend : str
        One of :func:`fastnn.available_backends`.
    dtype : float32 or float64
    scale : float
        Fraction of the workload's m (see :func:`fastnn.benchmark.make_data`).

    Returns
    -------
    dict
        ``{"inputs_mb", "resident_before_mb", "peak_mb", "extra_mb"}`` in MiB: the size of X
        and y, the resident size once they and the compiled kernels are loaded, the peak
        resident size during the call, and the difference (what the call itself needed).
    """
    out = subprocess.run(
        [sys.executable, "-m", "fastnn.benchmark._memory_probe", workload, backend,
         np.dtype(dtype).name, str(scale)], check=True, capture_output=True, text=True).stdout
    x_mb, y_mb, before, peak = map(float, out.split())
    return {"inputs_mb": x_mb + y_mb, "resident_before_mb": before, "peak_mb": peak,
            "extra_mb": peak - before}
