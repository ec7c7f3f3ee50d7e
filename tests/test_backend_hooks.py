"""What every backend answers for itself (:class:`fastnn.backends.Backend`), so that the
trainer, the estimator and the command never compare a backend's name."""

import numpy as np
import pytest

import fastnn
from fastnn.backends import AUTO, BACKENDS, backend_for, cluster_backends


def test_backends_answer_for_themselves():
    """What the trainer, the estimator and the command ask a backend instead of comparing its
    name: which call BLAS, which update over Numba's threads, which compute on a cluster."""
    assert [name for name, backend in BACKENDS.items() if backend.calls_blas] == ["numpy"]
    assert [name for name, backend in BACKENDS.items()
            if backend.parallel_updates] == ["numba-parallel"]
    assert cluster_backends() == ("dask",)
    assert AUTO.calls_blas and not AUTO.parallel_updates
    for name in fastnn.available_backends():
        assert BACKENDS[name].choose([4, 3, 2], 10, np.dtype(np.float64)) is BACKENDS[name]


@pytest.mark.parametrize("name", ["auto", "numpy", "numba", "numba-parallel"])
def test_in_process_backends_encode_labels_in_memory(name):
    backend = backend_for(name)
    labels = np.array(["dog", "cat", "emu", "cat"])
    classes = backend.classes(labels)
    assert classes.tolist() == ["cat", "dog", "emu"]
    indices = backend.encode(labels, classes)
    assert indices.tolist() == [1, 0, 2, 0]
    np.testing.assert_array_equal(backend.decode(indices, classes), labels)
    with pytest.raises(ValueError, match="computes in this process, not on a cluster"):
        backend.cluster("local")
