"""A second process's first call, with Numba's cache warm: import, data, one J and ∇J."""

import subprocess
import sys

import pytest

import fastnn

SCRIPT = """
import numpy as np, fastnn
rng = np.random.default_rng(0)
thetas = fastnn.init_weights([400, 25, 10], seed=0)
fastnn.cost_and_grad(thetas, rng.random((5000, 400)), rng.integers(0, 10, 5000), lam=1.0,
                     backend="{backend}")
"""


@pytest.mark.parametrize("backend", fastnn.available_backends())
def test_first_call_in_new_process(benchmark, backend):
    def run():
        subprocess.run([sys.executable, "-c", SCRIPT.format(backend=backend)], check=True)

    run()  # fills Numba's cache
    benchmark.group = "startup: python -c 'import fastnn; cost_and_grad(...)', cache warm"
    benchmark.pedantic(run, rounds=5)
