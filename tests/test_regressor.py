"""fastnn.MLPRegressor: identity output, squared error, scikit-learn's regressor conventions."""

import json

import numpy as np
import pytest
from sklearn.datasets import make_friedman1, make_regression
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

import fastnn
from fastnn import MLPClassifier, MLPRegressor, ModelFileError

# Short fits stop at max_iter on purpose; scikit-learn's ConvergenceWarning says so.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

LBFGS = {"hidden_layer_sizes": (6,), "solver": "lbfgs", "alpha": 1.0, "max_iter": 500,
         "random_state": 0}
"""A small, well-conditioned L-BFGS fit that converges."""


@pytest.fixture(scope="module")
def friedman():
    X, y = make_friedman1(n_samples=3000, noise=0.5, random_state=0)
    return train_test_split(X, y, test_size=0.25, random_state=0)


@pytest.fixture(scope="module")
def small():
    """200 examples of Friedman's function, X in [0, 1]^10 and y about 3 ... 27."""
    return make_friedman1(n_samples=200, noise=0.5, random_state=1)


@pytest.fixture(scope="module")
def scaled(small):
    """``small`` with X and y standardized. With ``STRONG`` L-BFGS then converges in about 50
    iterations and takes the same path on data that differ by rounding only (weights against
    repeated rows); on the raw data it takes hundreds, and such paths part (by 1e-6 to 1e-2)."""
    X, y = small
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


STRONG = {**LBFGS, "alpha": 10.0}


# As for the classifier (tests/test_estimator.py): every check passes, the sample-weight
# equivalence check included, with L-BFGS and with the default adam (full batches on the
# check's 15 examples).
@pytest.mark.parametrize("estimator", [MLPRegressor(solver="lbfgs", random_state=0),
                                       MLPRegressor(random_state=0)], ids=["lbfgs", "adam"])
def test_check_estimator(estimator):
    results = check_estimator(estimator, on_fail=None)
    assert [(r["check_name"], r["status"]) for r in results if r["status"] != "passed"] == []
    assert "check_sample_weight_equivalence_on_dense_data" in {r["check_name"] for r in results}
    assert len(results) >= 55


def test_friedman_r2(friedman):
    X_train, X_test, y_train, y_test = friedman
    reg = MLPRegressor(hidden_layer_sizes=(50,), solver="lbfgs", alpha=0.1, max_iter=200,
                       random_state=0).fit(X_train, y_train)
    assert reg.score(X_test, y_test) >= 0.85  # 0.987 (the noise leaves at most about 0.99)
    assert [theta.shape for theta in reg.thetas_] == [(50, 11), (1, 51)]
    assert reg.n_outputs_ == 1 and len(reg.loss_curve_) == reg.n_iter_
    # thetas_ act on the raw inputs, and the output is z(L): the functional API agrees.
    H = fastnn.forward(reg.thetas_, X_test, output_activation="identity")
    np.testing.assert_array_equal(H[:, 0], reg.predict(X_test))


def test_sgd_whose_loss_explodes_is_diverged_not_converged():
    """At learning rate 1 on friedman's y × 1e6, sgd's loss grows about 1e20-fold an epoch
    and stays finite: that is divergence (a TrainingDiverged, history "diverged", the best
    parameters kept), never "converged" after n_iter_no_change epochs without improvement."""
    X, y = make_friedman1(n_samples=1000, random_state=0)
    reg = MLPRegressor(solver="sgd", learning_rate_init=1.0, max_iter=50, random_state=0)
    with pytest.raises(fastnn.TrainingDiverged,
                       match=r"the cost rose to \S+, more than 1e\+06 times its first value"):
        reg.fit(X, y * 1e6)
    assert reg.history_.stopped == "diverged"
    assert all(np.isfinite(theta).all() for theta in reg.thetas_)
    assert np.isfinite(reg.predict(X)).all()


def test_cost_is_the_halved_mean_squared_error(small):
    """J = (1/2m) Σ (h − y)² + (λ/2m) Σ Θ² (no bias column), recorded in loss_curve_."""
    X, y = small
    reg = MLPRegressor(**{**LBFGS, "max_iter": 10}).fit(X, y)
    m = y.shape[0]
    penalty = sum(np.square(theta[:, 1:]).sum() for theta in reg.thetas_)
    J = np.square(reg.predict(X) - y).sum() / (2 * m) + LBFGS["alpha"] * penalty / (2 * m)
    assert reg.loss_curve_[-1] == pytest.approx(J, rel=1e-12)


@pytest.mark.parametrize(("y_shape", "K"), [((200,), 1), ((200, 1), 1), ((200, 3), 3)])
def test_predict_shapes(small, y_shape, K):
    X, y = small
    Y = y.reshape(y_shape) if K == 1 else np.column_stack([y, -y, 2 * y])
    reg = MLPRegressor(**LBFGS).fit(X, Y)
    assert reg.n_outputs_ == K and reg.thetas_[-1].shape[0] == K
    assert reg.predict(X).shape == ((200,) if K == 1 else (200, K))
    assert reg.score(X, Y) > 0.5


def test_multi_output():
    X, Y = make_regression(n_samples=300, n_features=8, n_targets=3, noise=1.0, random_state=0)
    reg = MLPRegressor(hidden_layer_sizes=(20,), solver="lbfgs", alpha=1e-3, max_iter=300,
                       random_state=0).fit(X, Y / Y.std())
    assert reg.predict(X).shape == (300, 3)
    assert reg.score(X, Y / Y.std()) > 0.98
    np.testing.assert_allclose(reg.score(X, Y / Y.std()),
                               r2_score(Y / Y.std(), reg.predict(X)), rtol=1e-12)


def test_pipeline_cross_val_and_grid_search(small):
    X, y = small
    pipeline = Pipeline([("scale", StandardScaler()),
                         ("reg", MLPRegressor(hidden_layer_sizes=(10,), solver="lbfgs",
                                              alpha=1.0, max_iter=100, random_state=0))])
    scores = cross_val_score(pipeline, X, y, cv=3)
    assert scores.mean() > 0.7
    search = GridSearchCV(pipeline, {"reg__alpha": [0.1, 1.0]}, cv=2, n_jobs=2)
    search.fit(X, y)
    assert search.best_params_["reg__alpha"] in (0.1, 1.0)
    assert search.score(X, y) > 0.7


def test_bad_parameters():
    X, y = make_friedman1(n_samples=30, random_state=0)
    with pytest.raises(ValueError, match="^The 'loss' parameter of MLPRegressor must be"):
        MLPRegressor(loss="cross_entropy").fit(X, y)
    with pytest.raises(ValueError, match="^The 'solver' parameter of MLPRegressor must be"):
        MLPRegressor(solver="newton").fit(X, y)
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")


# -- sample_weight -------------------------------------------------------------------------------


def assert_thetas_close(estimator, reference, atol):
    for theta, theta_ref in zip(estimator.thetas_, reference.thetas_, strict=True):
        np.testing.assert_allclose(theta, theta_ref, rtol=0, atol=atol)


def test_integer_weights_are_repeated_rows(scaled):
    X, y = scaled
    w = np.random.default_rng(0).integers(0, 4, size=y.shape[0])
    weighted = MLPRegressor(**STRONG).fit(X, y, w)
    repeated = MLPRegressor(**STRONG).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    assert weighted.history_.stopped == repeated.history_.stopped == "converged"
    assert_thetas_close(weighted, repeated, atol=1e-8)


def test_zero_weights_drop_rows(scaled):
    X, y = scaled
    keep = np.random.default_rng(1).random(y.shape[0]) < 0.7
    weighted = MLPRegressor(**STRONG).fit(X, y, sample_weight=keep.astype(float))
    dropped = MLPRegressor(**STRONG).fit(X[keep], y[keep])
    assert_thetas_close(weighted, dropped, atol=1e-8)


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_unit_weights_are_no_weights(small, solver):
    X, y = small
    kwargs = {**LBFGS, "solver": solver, "max_iter": 20, "batch_size": 64}
    plain = MLPRegressor(**kwargs).fit(X, y)
    weighted = MLPRegressor(**kwargs).fit(X, y, sample_weight=np.ones(y.shape[0]))
    assert_thetas_close(weighted, plain, atol=0)
    assert weighted.loss_curve_ == plain.loss_curve_


@pytest.mark.parametrize(("sample_weight", "message"), [
    (np.ones(199), r"expected shape \(200,\)"),
    (np.ones((200, 2)), r"expected shape \(200,\)"),
    (np.r_[-1.0, np.ones(199)], "expected weights >= 0"),
    (np.r_[np.nan, np.ones(199)], "NaN or infinity"),
    (np.r_[np.inf, np.ones(199)], "NaN or infinity"),
    (np.zeros(200), "every weight is zero"),
], ids=["length", "2-D", "negative", "NaN", "inf", "all-zero"])
def test_bad_sample_weight(small, sample_weight, message):
    X, y = small
    original = sample_weight.copy()
    with pytest.raises(ValueError, match=f"^sample_weight: .*{message}"):
        MLPRegressor(hidden_layer_sizes=(3,), max_iter=2).fit(X, y, sample_weight=sample_weight)
    np.testing.assert_array_equal(sample_weight, original)


def test_validation_scores_are_weighted_r2(small):
    X, y = small
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0)
    w_val = np.random.default_rng(0).integers(0, 3, size=y_val.shape[0]).astype(float)
    reg = MLPRegressor(**LBFGS).fit(X_train, y_train, validation_data=(X_val, y_val, w_val))
    assert reg.history_["val_score"][-1] == pytest.approx(
        r2_score(y_val, reg.predict(X_val), sample_weight=w_val), abs=1e-12)


def test_early_stopping_monitors_r2(scaled):
    X, y = scaled
    w = np.random.default_rng(0).integers(1, 3, size=y.shape[0]).astype(float)
    reg = MLPRegressor(hidden_layer_sizes=(10,), learning_rate_init=0.05, batch_size=32,
                       early_stopping=True, n_iter_no_change=5, max_iter=300, random_state=0)
    reg.fit(X, y, sample_weight=w)
    assert reg.history_.stopped == "early_stopping"
    assert len(reg.validation_scores_) == reg.n_iter_ < 300
    assert 0.5 < max(reg.validation_scores_) <= 1.0
    assert reg.validation_scores_ == reg.history_["val_score"]


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_continues(small, solver):
    X, y = small
    X = StandardScaler().fit_transform(X)
    reg = MLPRegressor(hidden_layer_sizes=(10,), solver=solver, learning_rate_init=0.01,
                       random_state=0)
    w = np.random.default_rng(0).integers(1, 3, size=y.shape[0])
    reg.partial_fit(X, y, sample_weight=w)
    first = reg.loss_curve_[-1]
    for _ in range(20):
        reg.partial_fit(X, y, sample_weight=w)
    assert reg.n_iter_ == 1 and len(reg.loss_curve_) == 21  # n_iter_: the last call
    assert reg.loss_curve_[-1] < first
    with pytest.raises(ValueError, match=r"^y: expected 1 target column\(s\)"):
        reg.partial_fit(X, np.column_stack([y, y]))


def test_warm_start_continues(small):
    X, y = small
    reg = MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=10, warm_start=True,
                       random_state=0)
    reg.fit(X, y)
    first = [theta.copy() for theta in reg.thetas_]
    reg.fit(X, y)
    assert reg.n_iter_ == 10 and len(reg.loss_curve_) == 20  # n_iter_: the last fit
    assert not np.array_equal(first[0], reg.thetas_[0])
    with pytest.raises(ValueError, match=r"^y: expected 1 target column\(s\), as in the first"):
        reg.fit(X, np.column_stack([y, y]))


def test_float32(small):
    X, y = small
    reg = MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=50, dtype="float32",
                       random_state=0).fit(X, y)
    assert all(theta.dtype == np.float32 for theta in reg.thetas_)
    assert reg.predict(X).dtype == np.float32
    assert reg.score(X, y) > 0.5


# -- model files ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(small):
    X, y = small
    reg = MLPRegressor(hidden_layer_sizes=(6, 4), solver="lbfgs", max_iter=30,
                       random_state=0).fit(X, y)
    return reg, X


@pytest.mark.parametrize("kind", ["single", "multi-output", "float32"])
def test_round_trip_is_bitwise(tmp_path, small, kind):
    X, y = small
    Y = np.column_stack([y, -y]) if kind == "multi-output" else y
    reg = MLPRegressor(hidden_layer_sizes=(6, 4), solver="lbfgs", max_iter=20, random_state=0,
                       dtype="float32" if kind == "float32" else "float64").fit(X, Y)
    reg.save(tmp_path / "m.npz")
    loaded = fastnn.load(tmp_path / "m.npz")
    assert type(loaded) is MLPRegressor
    assert loaded.n_outputs_ == reg.n_outputs_
    assert loaded.get_params() == reg.get_params()
    assert np.array_equal(loaded.predict(X), reg.predict(X))
    for theta, theta_loaded in zip(reg.thetas_, loaded.thetas_, strict=True):
        assert np.array_equal(theta, theta_loaded) and theta.dtype == theta_loaded.dtype


def test_file_holds_no_classes(tmp_path, fitted):
    reg, _ = fitted
    reg.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        metadata = json.loads(str(data["metadata"][()]))
        assert sorted(data) == ["metadata", "theta_0", "theta_1", "theta_2"]
    assert metadata["estimator"] == "MLPRegressor"
    assert metadata["target"] == "continuous"
    assert metadata["loss"] == "squared_error"
    assert metadata["layers"] == [10, 6, 4, 1]
    assert "loss" not in metadata["training"]


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_loaded_model_continues_partial_fit_exactly(tmp_path, small, solver):
    """partial_fit after save and load gives bitwise the weights of partial_fit without them."""
    X, y = small
    kwargs = {"hidden_layer_sizes": (5,), "solver": solver, "learning_rate_init": 0.01,
              "random_state": 0}
    straight = MLPRegressor(**kwargs).partial_fit(X, y)
    reg = MLPRegressor(**kwargs).partial_fit(X, y)
    reg.save(tmp_path / "m.npz")
    loaded = fastnn.load(tmp_path / "m.npz")
    assert loaded.n_iter_ == len(loaded.loss_curve_) == 1
    straight.partial_fit(X, y)
    loaded.partial_fit(X, y)
    for theta, theta_loaded in zip(straight.thetas_, loaded.thetas_, strict=True):
        assert np.array_equal(theta, theta_loaded)
    assert loaded.n_iter_ == 1 and len(loaded.loss_curve_) == 2
    assert loaded.loss_curve_ == straight.loss_curve_
    assert loaded.best_loss_ == straight.best_loss_


def test_loaded_model_continues_with_warm_start(tmp_path, fitted, small):
    reg, X = fitted
    _, y = small
    reg.save(tmp_path / "m.npz")
    loaded = fastnn.load(tmp_path / "m.npz")
    assert loaded.loss_curve_ == reg.loss_curve_ and loaded.n_iter_ == reg.n_iter_
    loaded.set_params(warm_start=True, max_iter=5).fit(X, y)
    assert loaded.n_iter_ == 5 and len(loaded.loss_curve_) == reg.n_iter_ + 5
    assert loaded.loss_curve_[:reg.n_iter_] == reg.loss_curve_


def _rewrite(path, change):
    """Rewrite the model file at ``path`` through ``change(arrays, metadata)``."""
    with np.load(path) as data:
        arrays = dict(data)
    metadata = json.loads(str(arrays.pop("metadata")[()]))
    change(arrays, metadata)
    np.savez(path, metadata=np.array(json.dumps(metadata)), **arrays)


def _set(name, value):
    return lambda arrays, metadata: metadata.__setitem__(name, value)


def _add_classes(arrays, metadata):
    arrays["classes"] = np.arange(2)


def _drop_classes(arrays, metadata):
    arrays.pop("classes")


def _binary_with_classes(arrays, metadata):
    _add_classes(arrays, metadata)
    metadata["target"] = "binary"


@pytest.mark.parametrize(("estimator", "change", "message"), [
    ("regressor", _set("target", "binary"), "lacks the array 'classes'"),
    ("regressor", _binary_with_classes,
     "metadata field 'target': expected 'continuous' for an MLPRegressor"),
    ("regressor", _set("target", "ordinal"), "metadata field 'target': expected one of"),
    ("regressor", _set("loss", "cross_entropy"),
     "The 'loss' parameter of MLPRegressor must be"),
    ("regressor", _add_classes, "array 'classes': a model of continuous targets has none"),
    ("regressor", _set("estimator", "MLPClassifier"),
     "metadata field 'target': expected a class target for an MLPClassifier"),
    ("regressor", lambda arrays, metadata: metadata["training"].__setitem__("loss", "x"),
     r"training settings \['loss'\] are not parameters of MLPRegressor"),
    ("classifier", _drop_classes, "lacks the array 'classes' a model of multiclass targets"),
    ("classifier", _set("target", "continuous"), "array 'classes': a model of continuous"),
])
def test_bad_files_are_model_file_errors(tmp_path, fitted, estimator, change, message):
    """Regressor files have no classes; a classifier's file without them is still refused."""
    if estimator == "regressor":
        model = fitted[0]
    else:
        X, y = make_friedman1(n_samples=60, random_state=0)
        model = MLPClassifier(hidden_layer_sizes=(3,), solver="lbfgs", max_iter=5,
                              random_state=0).fit(X, np.digitize(y, [10, 15]))
    path = tmp_path / "m.npz"
    model.save(path)
    _rewrite(path, change)
    with pytest.raises(ModelFileError, match=message):
        fastnn.load(path)


def test_dask_backend_with_weights(small):
    """backend="dask" takes Dask arrays of X, y and the weights, and matches one machine."""
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    X, y = small
    w = np.random.default_rng(0).integers(0, 3, size=y.shape[0]).astype(float)
    kwargs = {**LBFGS, "max_iter": 30}
    here = MLPRegressor(backend="numba", **kwargs).fit(X, y, sample_weight=w)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster):
        there = MLPRegressor(backend="dask", **kwargs).fit(
            da.from_array(X, chunks=50), da.from_array(y, chunks=50),
            sample_weight=da.from_array(w, chunks=50))
        predictions = there.predict(da.from_array(X, chunks=50))
        assert isinstance(predictions, da.Array) and predictions.shape == (200,)
        np.testing.assert_allclose(predictions.compute(), there.predict(X), rtol=1e-12)
    # The sums differ from one machine's by rounding (other chunks, other order).
    assert_thetas_close(there, here, atol=1e-8)
