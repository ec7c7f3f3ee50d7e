"""Model files: exact round trip, no pickle, atomic writes, clear errors."""

import json
import os
import zipfile

import numpy as np
import pytest
from sklearn.datasets import make_blobs, make_multilabel_classification

import fastnn
from fastnn import MLPClassifier, ModelFileError

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def fitted():
    X, y = make_blobs(n_samples=150, centers=3, random_state=0)
    labels = np.array(["a", "b", "c"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(6, 4), solver="lbfgs", max_iter=30,
                        random_state=0).fit(X, labels)
    return clf, X


def test_round_trip_is_bitwise(tmp_path, fitted):
    clf, X = fitted
    path = tmp_path / "model.npz"
    clf.save(path)
    loaded = fastnn.load(path)
    assert isinstance(loaded, MLPClassifier)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.get_params()["hidden_layer_sizes"] == (6, 4)
    for theta, theta_loaded in zip(clf.thetas_, loaded.thetas_):
        assert np.array_equal(theta, theta_loaded)


@pytest.mark.parametrize("kind", ["binary", "multilabel", "float32"])
def test_round_trip_kinds(tmp_path, kind):
    if kind == "multilabel":
        X, y = make_multilabel_classification(n_samples=80, n_classes=3, random_state=0)
    else:
        X, y = make_blobs(n_samples=80, centers=2, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=20, random_state=0,
                        dtype="float32" if kind == "float32" else "float64").fit(X, y)
    clf.save(tmp_path / "m.npz")
    loaded = fastnn.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_file_holds_no_pickle_and_its_metadata(tmp_path, fitted):
    clf, _ = fitted
    clf.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        metadata = json.loads(str(data["metadata"][()]))
        assert sorted(data) == ["classes", "metadata", "theta_0", "theta_1", "theta_2"]
    assert metadata["format_version"] == 1
    assert metadata["layers"] == [2, 6, 4, 3]
    assert metadata["input_scaling"] is None
    assert metadata["training"]["solver"] == "lbfgs"


def test_save_is_atomic(tmp_path, fitted, monkeypatch):
    clf, _ = fitted
    path = tmp_path / "model.npz"
    clf.save(path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        clf.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind


def test_pickled_file_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, metadata=np.array([{"format": "fastnn-model"}], dtype=object))
    with pytest.raises(ModelFileError, match="not a readable fastnn model file"):
        fastnn.load(path)


def test_bad_files(tmp_path, fitted):
    clf, _ = fitted
    good = tmp_path / "good.npz"
    clf.save(good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ModelFileError, match="truncated.npz: not a readable"):
        fastnn.load(truncated)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, X=np.zeros(3))
    with pytest.raises(ModelFileError, match="foreign.npz: not a readable"):
        fastnn.load(foreign)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="text.npz: not a readable"):
        fastnn.load(text)
    with pytest.raises(FileNotFoundError):
        fastnn.load(tmp_path / "missing.npz")


def test_unknown_format_version(tmp_path, fitted):
    clf, _ = fitted
    path = tmp_path / "m.npz"
    clf.save(path)
    with np.load(path) as data:
        arrays = dict(data)
    metadata = json.loads(str(arrays["metadata"][()]))
    metadata["format_version"] = 99
    arrays["metadata"] = np.array(json.dumps(metadata))
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match="format_version 99"):
        fastnn.load(path)


def test_corrupted_member(tmp_path, fitted):
    clf, _ = fitted
    path = tmp_path / "m.npz"
    clf.save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["theta_0.npy"] = members["theta_0.npy"][:60]
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(ModelFileError):
        fastnn.load(path)
