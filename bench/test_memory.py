"""Peak resident memory of one J-and-∇J call on wide-m, per backend, in a fresh process
(recorded in ``extra_info``; the time is the whole probe's, not the figure of interest)."""

import pytest

import fastnn
from fastnn.benchmark import call_memory


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("backend", fastnn.available_backends())
def test_memory_wide_m(benchmark, backend, dtype):
    benchmark.group = "memory: wide-m 100-50-10, m = 1,000,000"
    memory = benchmark.pedantic(call_memory, args=("wide-m", backend, dtype), rounds=1)
    benchmark.extra_info.update(memory)
