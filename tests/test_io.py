"""Model files: exact round trip, no pickle, atomic writes, clear errors."""

import json
import os
import zipfile

import numpy as np
import pytest
from sklearn.datasets import make_blobs, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning

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
    assert "input_scaling" not in metadata
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
    with pytest.raises(ModelFileError, match="not a readable fastnn model file") as error:
        fastnn.load(path)
    assert str(error.value).endswith("(it holds pickled Python objects, which fastnn does not "
                                     "load)")
    assert "allow_pickle" not in str(error.value)


@pytest.mark.parametrize(("content", "found"), [
    (b"hello world\n", r"text starting 'hello world\n'"),
    (b"", "an empty file"),
    (b"\x93NUMPY\x01\x00v\x00", "a single .npy array"),
    (b"\x80\x04\x95\xff\x00", r"binary data starting b'\x80\x04\x95\xff\x00'"),
], ids=["text", "empty", "npy", "pickle"])
def test_a_file_not_an_archive_is_named_and_never_loaded_unsafely(tmp_path, content, found):
    """What was expected and what came; never NumPy's advice to load with allow_pickle."""
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError) as error:
        fastnn.load(path)
    assert str(error.value) == (f"{path}: not a readable fastnn model file: expected a fastnn "
                                f"model (.npz), got {found}")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_a_model_file_error(tmp_path, fitted, value):
    """A Θ(l) with NaN or infinity is refused on reading, naming the file, the array and the
    value, not left for a plain ValueError at predict time."""
    clf, _ = fitted
    path = tmp_path / "m.npz"
    clf.save(path)
    with np.load(path) as data:
        arrays = dict(data)
    assert arrays["theta_1"].shape == (4, 7)
    arrays["theta_1"][2, 3] = value
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError) as error:
        fastnn.load(path)
    assert str(error.value) == (f"{path}: array 'theta_1' (Θ(2)): expected finite weights, got "
                                f"{value} at row 2, column 3 (1 of 28 not finite)")


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


def _rewrite_metadata(path, change):
    """Rewrite the metadata of the model file at ``path`` through ``change(metadata)``."""
    with np.load(path) as data:
        arrays = dict(data)
    metadata = json.loads(str(arrays["metadata"][()]))
    change(metadata)
    arrays["metadata"] = np.array(json.dumps(metadata))
    np.savez(path, **arrays)


def _drop(name):
    return lambda metadata: metadata.pop(name)


def _set(name, value):
    return lambda metadata: metadata.__setitem__(name, value)


@pytest.mark.parametrize(("change", "message"), [
    (_drop("training"), "lacks the field 'training'"),
    (_drop("dtype"), "lacks the field 'dtype'"),
    (_drop("target"), "lacks the field 'target'"),
    (_drop("loss"), "lacks the field 'loss'"),
    (_drop("layers"), "lacks the field 'layers'"),
    (_set("training", ["solver", "lbfgs"]), "field 'training': expected an object"),
    (_set("dtype", 64), "field 'dtype': expected 'float32' or 'float64'"),
    (_set("dtype", "int8"), "field 'dtype': expected 'float32' or 'float64'"),
    (_set("target", None), "field 'target': expected one of"),
    (_set("loss", ["cross_entropy"]), "field 'loss': expected a loss name"),
    (_set("loss", "hinge"), "The 'loss' parameter of MLPClassifier"),
    (_set("layers", [2, "6", 4, 3]), "field 'layers': expected a list"),
    (_set("layers", [2, 6, 3]), "weight matrices do not match layers"),
    (_set("n_iter", "30"), "field 'n_iter': expected an integer"),
    (_set("loss_curve", {"a": 1}), "field 'loss_curve': expected a list of numbers"),
    (_set("estimator", "MLPRanker"), "holds a 'MLPRanker'"),
    (_set("input_scaling", {"mean": [0, 0]}), "field 'input_scaling': expected null"),
    (lambda metadata: metadata["training"].__setitem__("max_iter", "many"),
     "The 'max_iter' parameter of MLPClassifier"),
    (lambda metadata: metadata["training"].__setitem__("depth", 3),
     r"training settings \['depth'\] are not parameters"),
    (lambda metadata: metadata["training"].__setitem__("hidden_layer_sizes", [6]),
     "do not match hidden_layer_sizes"),
])
def test_bad_metadata_is_a_model_file_error(tmp_path, fitted, change, message):
    """Every field is read and type-checked: a missing or mistyped one is a ModelFileError
    naming it, never a KeyError or AttributeError."""
    clf, _ = fitted
    path = tmp_path / "m.npz"
    clf.save(path)
    _rewrite_metadata(path, change)
    with pytest.raises(ModelFileError, match=message):
        fastnn.load(path)


def test_files_without_the_newer_fields_still_load(tmp_path, fitted):
    """A file written before the estimator's name and its curves were stored is a classifier."""
    clf, X = fitted
    path = tmp_path / "m.npz"
    clf.save(path)

    def older(metadata):
        for name in ("estimator", "loss_curve", "best_loss", "validation_scores", "optimizer"):
            metadata.pop(name)
        metadata["input_scaling"] = None  # written, always null, by older versions

    _rewrite_metadata(path, older)
    loaded = fastnn.load(path)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_loaded_model_continues_partial_fit_exactly(tmp_path, solver, dtype):
    """partial_fit after save and load gives bitwise the weights of partial_fit without them:
    the step rule's state (moments, velocity) travels in the file, in the model's dtype."""
    X, y = make_blobs(n_samples=120, centers=3, random_state=0)
    kwargs = {"hidden_layer_sizes": (5,), "solver": solver, "learning_rate_init": 0.01,
              "random_state": 0, "dtype": dtype}
    straight = MLPClassifier(**kwargs).partial_fit(X, y, classes=[0, 1, 2])
    clf = MLPClassifier(**kwargs).partial_fit(X, y, classes=[0, 1, 2])
    clf.save(tmp_path / "m.npz")
    loaded = fastnn.load(tmp_path / "m.npz")
    assert loaded.n_iter_ == len(loaded.loss_curve_) == 1
    straight.partial_fit(X, y)
    loaded.partial_fit(X, y)
    for theta, theta_loaded in zip(straight.thetas_, loaded.thetas_):
        assert np.array_equal(theta, theta_loaded)
    assert loaded.n_iter_ == 1 and len(loaded.loss_curve_) == 2  # n_iter_: the last call
    assert loaded.loss_curve_ == straight.loss_curve_
    assert loaded.best_loss_ == straight.best_loss_


def test_loaded_model_continues_with_warm_start(tmp_path, fitted):
    clf, X = fitted
    labels = clf.predict(X)
    clf.save(tmp_path / "m.npz")
    loaded = fastnn.load(tmp_path / "m.npz")
    assert loaded.loss_curve_ == clf.loss_curve_ and loaded.n_iter_ == clf.n_iter_
    assert loaded.best_loss_ == clf.best_loss_
    loaded.set_params(warm_start=True, max_iter=5).fit(X, labels)
    assert loaded.n_iter_ == 5 and len(loaded.loss_curve_) == clf.n_iter_ + 5
    assert loaded.loss_curve_[:clf.n_iter_] == clf.loss_curve_


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_file_follows_the_umask(tmp_path, fitted, umask):
    clf, _ = fitted
    previous = os.umask(umask)
    try:
        clf.save(tmp_path / "m.npz")
        (tmp_path / "plain.txt").write_text("any other file")
    finally:
        os.umask(previous)
    mode = (tmp_path / "m.npz").stat().st_mode & 0o777
    assert mode == 0o666 & ~umask == (tmp_path / "plain.txt").stat().st_mode & 0o777


def test_overwritten_file_keeps_its_mode(tmp_path, fitted):
    clf, _ = fitted
    path = tmp_path / "m.npz"
    clf.save(path)
    path.chmod(0o640)
    clf.save(path)
    assert path.stat().st_mode & 0o777 == 0o640


def test_settings_are_stored_faithfully_or_refused(tmp_path):
    X, y = make_blobs(n_samples=60, centers=2, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=[np.int64(4)], solver="lbfgs", max_iter=5,
                        random_state=np.int64(3), alpha=np.float32(0.5))
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    clf.save(tmp_path / "m.npz")
    loaded = fastnn.load(tmp_path / "m.npz")
    assert loaded.get_params()["random_state"] == 3
    assert loaded.get_params()["hidden_layer_sizes"] == (4,)
    with pytest.warns(ConvergenceWarning):
        loaded.fit(X, y)  # the settings read back make a working estimator

    clf.set_params(random_state=np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"random_state.*Generator cannot be stored"):
        clf.save(tmp_path / "generator.npz")
    assert not (tmp_path / "generator.npz").exists()
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]  # no temporary file left behind
