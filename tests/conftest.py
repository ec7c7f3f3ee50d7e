# ruff: noqa: E402 (Numba's cache directory is set before fastnn is imported)
import hashlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path

# Before anything imports SciPy: scikit-learn's check_array_api_input needs it (test_estimator).
os.environ.setdefault("SCIPY_ARRAY_API", "1")

CACHES_KEPT = 4
"""Numba cache directories kept under ``.numba-cache/``, the most recently used first."""


def use_numba_cache_of_this_source():
    """Point ``NUMBA_CACHE_DIR`` at ``.numba-cache/<hash of fastnn's source>`` before fastnn
    (and so its cached kernels) is imported; child processes inherit it.

    Numba checks a cached kernel against its own file only, so a kernel that inlines a function
    of another module (an activation, a loss, a tuning constant) would otherwise
    load stale code after that module is edited. Keyed on every file of the package, the same
    source reuses its cache and any change compiles anew. Older directories beyond
    ``CACHES_KEPT`` are removed."""
    if "fastnn" in sys.modules:
        raise RuntimeError("tests/conftest.py: fastnn was imported before the Numba cache "
                           "directory was set")
    package = Path(importlib.util.find_spec("fastnn").submodule_search_locations[0])
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    root = Path(__file__).resolve().parent.parent / ".numba-cache"
    cache = root / digest.hexdigest()[:16]
    cache.mkdir(parents=True, exist_ok=True)
    os.utime(cache)
    used = sorted(root.iterdir(), key=_last_used, reverse=True)
    for old in used[CACHES_KEPT:]:
        shutil.rmtree(old, ignore_errors=True)
    os.environ["NUMBA_CACHE_DIR"] = str(cache)
    if "numba" in sys.modules:  # imported by a plugin: have it read the environment again
        sys.modules["numba"].core.config.reload_config()


def _last_used(path):
    try:
        return path.stat().st_mtime
    except OSError:  # removed meanwhile by another run
        return 0.0


use_numba_cache_of_this_source()

import numpy as np
import pytest

import fastnn
from tests import naive

BACKENDS = fastnn.available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def make_problem(layers, m, target, seed=0, dtype=np.float64, avoid_kink=False):
    """Random weights, inputs and targets of the given kind ("binary", "multiclass",
    "multilabel"). With ``avoid_kink`` (for relu gradient checks), the seed is advanced until no
    hidden unit of any example has |z| < 0.01, so central differences with step 1e-4 never
    straddle the kink."""
    for attempt in range(seed, seed + 1000):
        rng = np.random.default_rng(attempt)
        thetas = fastnn.init_weights(layers, seed=rng, dtype=dtype)
        X = rng.normal(size=(m, layers[0])).astype(dtype)
        if not avoid_kink:
            break
        z = naive.hidden_preactivations(thetas, X, "relu")
        if z.size == 0 or np.abs(z).min() > 0.01:
            break
    K = layers[-1]
    if target == "binary":
        y = rng.integers(0, 2, size=m)
    elif target == "multiclass":
        y = rng.integers(0, K, size=m)
    else:
        y = rng.integers(0, 2, size=(m, K))
    return thetas, X, y


def debug_problem():
    """The classic debug network: 3-5-3, m = 5, weights and inputs sin(1), sin(2), ... / 10
    filled in column-major order, labels 1 + (i mod 3) for i = 1..5 (here 0-based)."""

    def debug_matrix(rows, cols):
        return np.sin(np.arange(1, rows * cols + 1)).reshape(rows, cols, order="F") / 10

    thetas = [debug_matrix(5, 4), debug_matrix(3, 6)]
    X = debug_matrix(5, 3)
    y = np.arange(1, 6) % 3
    return thetas, X, y
