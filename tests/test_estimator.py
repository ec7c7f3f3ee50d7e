"""fastnn.MLPClassifier as a scikit-learn estimator."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_blobs, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

import fastnn
from fastnn import MLPClassifier

# Short fits stop at max_iter on purpose; scikit-learn's ConvergenceWarning says so.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


# scikit-learn's checks, sample-weight checks included, all passing:
# - L-BFGS, as scikit-learn runs its own MLPClassifier's sample-weight equivalence check. With
#   alpha = 1e-4 instead of 1e-3, check_classifier_multioutput fails for about half of the
#   random initializations: on its 42 unscaled examples L-BFGS drives some z(L) past 37,
#   where σ(z) rounds to 1.0 in float64, and predict_proba's ties then rank differently from
#   decision_function's distinct values.
# - The default adam: on the 15 examples of the equivalence check, batch_size="auto" is the
#   full batch, so the weighted and the repeated fits take the same steps (no shuffled
#   mini-batches, which would differ) and the equivalence holds to rounding.
@pytest.mark.parametrize("estimator", [MLPClassifier(solver="lbfgs", alpha=1e-3, random_state=0),
                                       MLPClassifier(random_state=0)], ids=["lbfgs", "adam"])
def test_check_estimator(estimator):
    results = check_estimator(estimator, on_fail=None)
    assert [(r["check_name"], r["status"]) for r in results if r["status"] != "passed"] == []
    assert "check_sample_weight_equivalence_on_dense_data" in {r["check_name"] for r in results}
    assert len(results) >= 60


def test_digits_accuracy(digits):
    X_train, X_test, y_train, y_test = digits
    clf = MLPClassifier(hidden_layer_sizes=(25,), alpha=1.0, solver="lbfgs", max_iter=400,
                        random_state=0).fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.96
    assert len(clf.loss_curve_) == clf.n_iter_ == 400
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert [theta.shape for theta in clf.thetas_] == [(25, 65), (10, 26)]
    # thetas_ act on the raw inputs: the functional API predicts the same.
    np.testing.assert_array_equal(fastnn.predict(clf.thetas_, X_test),
                                  np.searchsorted(clf.classes_, clf.predict(X_test)))


def test_string_labels_and_binary():
    X, y = make_blobs(n_samples=200, centers=2, random_state=0)
    labels = np.array(["cat", "dog"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=100,
                        random_state=0).fit(X, labels)
    assert list(clf.classes_) == ["cat", "dog"]
    assert clf.thetas_[-1].shape[0] == 1  # one sigmoid output for binary targets
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert clf.score(X, labels) > 0.95
    assert set(clf.predict(X)) <= {"cat", "dog"}
    np.testing.assert_array_equal(clf.decision_function(X) > 0, clf.predict(X) == "dog")


def test_multiclass_proba_sums_to_one():
    X, y = make_blobs(n_samples=300, centers=4, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=200,
                        random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))


def test_multilabel():
    X, Y = make_multilabel_classification(n_samples=300, n_classes=4, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(20,), solver="lbfgs", max_iter=300, alpha=0.1,
                        random_state=0).fit(StandardScaler().fit_transform(X), Y)
    proba = clf.predict_proba(StandardScaler().fit_transform(X))
    assert proba.shape == (300, 4)
    np.testing.assert_array_equal(clf.predict(StandardScaler().fit_transform(X)),
                                  (proba >= 0.5).astype(int))


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_continues(solver):
    X, y = make_blobs(n_samples=300, centers=3, random_state=1)
    X = StandardScaler().fit_transform(X)
    clf = MLPClassifier(hidden_layer_sizes=(10,), solver=solver, learning_rate_init=0.05,
                        random_state=0)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    first = clf.loss_curve_[-1]
    for _ in range(20):
        clf.partial_fit(X, y)
    # As scikit-learn's: n_iter_ counts the last call, the loss curve all of them.
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 21
    assert clf.loss_curve_[-1] < first
    with pytest.raises(ValueError, match="labels the model has not seen"):
        clf.partial_fit(X, y + 5)


def test_partial_fit_trains_the_weights_in_place():
    """As scikit-learn's: the arrays of ``thetas_`` are updated, no new θ is made per call."""
    X, y = make_blobs(n_samples=120, centers=3, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(5,), solver="adam", random_state=0)
    thetas = clf.partial_fit(X, y, classes=[0, 1, 2]).thetas_
    before = [theta.copy() for theta in thetas]
    clf.partial_fit(X, y)
    assert all(np.shares_memory(new, old) for new, old in zip(clf.thetas_, thetas))
    assert not any(np.array_equal(theta, old) for theta, old in zip(thetas, before))
    expected = MLPClassifier(hidden_layer_sizes=(5,), solver="adam", random_state=0)
    expected.partial_fit(X, y, classes=[0, 1, 2])
    expected.thetas_ = [theta.copy() for theta in expected.thetas_]  # not views: packed
    expected.partial_fit(X, y)
    for theta, other in zip(clf.thetas_, expected.thetas_):
        np.testing.assert_array_equal(theta, other)


def test_partial_fit_after_a_dtype_change_steps_in_the_new_dtype():
    """set_params(dtype=...) between partial_fit calls: the step rule's state follows the
    model's dtype, and the weights stay in it."""
    X, y = make_blobs(n_samples=120, centers=3, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(5,), solver="adam", random_state=0)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    assert clf._optimizer.first.dtype == np.float64
    clf.set_params(dtype="float32").partial_fit(X, y)
    assert clf._optimizer.first.dtype == clf._optimizer.second.dtype == np.float32
    assert all(theta.dtype == np.float32 for theta in clf.thetas_)
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 2


def test_partial_fit_needs_a_stochastic_solver_and_classes():
    X, y = make_blobs(n_samples=30, centers=3, random_state=1)
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as error:
        MLPClassifier(solver="lbfgs").partial_fit(X, y, classes=[0, 1, 2])
    assert str(error.value.__cause__).startswith("partial_fit: only for the mini-batch solvers")
    with pytest.raises(ValueError, match="^classes: required"):
        MLPClassifier().partial_fit(X, y)


def test_early_stopping_records_validation_scores():
    X, y = make_blobs(n_samples=400, centers=3, random_state=2)
    clf = MLPClassifier(hidden_layer_sizes=(10,), solver="adam", learning_rate_init=0.05,
                        early_stopping=True, n_iter_no_change=5, max_iter=500,
                        random_state=0).fit(X, y)
    assert clf.history_.stopped == "early_stopping"
    assert len(clf.validation_scores_) == clf.n_iter_ < 500


def test_minibatch_penalty_is_independent_of_batch_size():
    """With λ/m of the full set, the batch gradients average to the full gradient."""
    X, y = make_blobs(n_samples=120, centers=3, random_state=3)
    objective = fastnn.Objective([2, 4, 3], X, y, lam=2.0)
    theta = fastnn.pack(fastnn.init_weights([2, 4, 3], seed=0))
    _, full = objective(theta)
    for batch in (10, 40):
        grads = [objective(theta, rows=slice(s, s + batch))[1] for s in range(0, 120, batch)]
        np.testing.assert_allclose(np.mean(grads, axis=0), full, rtol=1e-12, atol=1e-15)


def test_divergence_keeps_finite_parameters():
    X, y = make_blobs(n_samples=100, centers=3, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(5,), solver="gd", learning_rate_init=1e300,
                        max_iter=10, random_state=0)
    with pytest.raises(fastnn.TrainingDiverged, match="learning_rate_init"):
        clf.fit(X, y)
    assert all(np.isfinite(theta).all() for theta in clf.thetas_)


def test_warm_start_continues():
    X, y = make_blobs(n_samples=200, centers=3, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(5,), solver="gd", learning_rate_init=0.5,
                        max_iter=10, warm_start=True, n_iter_no_change=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        first = [theta.copy() for theta in clf.thetas_]
        clf.fit(X, y)
    assert clf.n_iter_ == 10 and len(clf.loss_curve_) == 20  # n_iter_: the last fit
    assert not np.array_equal(first[0], clf.thetas_[0])


def test_pipeline_cross_val_and_grid_search(digits):
    X_train, _, y_train, _ = digits
    pipeline = Pipeline([("scale", StandardScaler()),
                         ("clf", MLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs",
                                               max_iter=60, random_state=0))])
    scores = cross_val_score(pipeline, X_train, y_train, cv=3)
    assert scores.mean() > 0.9
    search = GridSearchCV(pipeline, {"clf__alpha": [0.1, 1.0]}, cv=2, n_jobs=2)
    search.fit(X_train, y_train)
    assert search.best_params_["clf__alpha"] in (0.1, 1.0)
    assert search.score(X_train, y_train) > 0.9


def _constraint(param):
    return f"^The '{param}' parameter of MLPClassifier must be"


@pytest.mark.parametrize(("param", "value", "message"), [
    ("solver", "newton", _constraint("solver")),
    ("max_iter", 0, _constraint("max_iter")),
    ("hidden_layer_sizes", (0,), "^hidden_layer_sizes: expected positive integers"),
    ("hidden_layer_sizes", "wide", _constraint("hidden_layer_sizes")),
    ("dtype", "int8", "^dtype: expected None, 'float32', 'float64'"),
    ("backend", "gpu", _constraint("backend")),
    ("batch_size", 0, _constraint("batch_size")),
    ("alpha", -1.0, _constraint("alpha")),
    ("learning_rate_init", 0.0, _constraint("learning_rate_init")),
    ("validation_fraction", 1.0, _constraint("validation_fraction")),
    # checked by none of the hand-written checks before the declarative constraints:
    ("tol", -1e-4, _constraint("tol")),
    ("n_iter_no_change", -1, _constraint("n_iter_no_change")),
    ("n_iter_no_change", 2.5, _constraint("n_iter_no_change")),
    ("momentum", 1.5, _constraint("momentum")),
    ("early_stopping", "yes", _constraint("early_stopping")),
    ("nesterovs_momentum", "no", _constraint("nesterovs_momentum")),
    ("warm_start", 1.0, _constraint("warm_start")),
    ("random_state", "seed", _constraint("random_state")),
    ("loss", "hinge", _constraint("loss")),
    ("activation", "gelu", _constraint("activation")),
])
def test_bad_parameters(param, value, message):
    X, y = make_blobs(n_samples=30, centers=2, random_state=0)
    with pytest.raises(ValueError, match=message):
        MLPClassifier(**{param: value}).fit(X, y)


def test_float32():
    X, y = make_blobs(n_samples=100, centers=3, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=50, dtype="float32",
                        random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert all(theta.dtype == np.float32 for theta in clf.thetas_)
    assert clf.predict_proba(X).dtype == np.float32


# -- sample_weight -------------------------------------------------------------------------------

LBFGS = {"hidden_layer_sizes": (5,), "solver": "lbfgs", "alpha": 1.0, "max_iter": 500,
         "random_state": 0}
"""A small, well-conditioned L-BFGS fit that converges (in about 60 iterations)."""


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=90, centers=3, cluster_std=2.0, random_state=0)
    return StandardScaler().fit_transform(X), y


def assert_thetas_close(estimator, reference, atol):
    for theta, theta_ref in zip(estimator.thetas_, reference.thetas_, strict=True):
        np.testing.assert_allclose(theta, theta_ref, rtol=0, atol=atol)


def test_integer_weights_are_repeated_rows(blobs):
    X, y = blobs
    w = np.random.default_rng(0).integers(0, 4, size=y.shape[0])
    weighted = MLPClassifier(**LBFGS).fit(X, y, w)
    repeated = MLPClassifier(**LBFGS).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    assert weighted.history_.stopped == repeated.history_.stopped == "converged"
    assert weighted.n_iter_ == repeated.n_iter_
    assert_thetas_close(weighted, repeated, atol=1e-8)


def test_zero_weights_drop_rows(blobs):
    X, y = blobs
    keep = np.random.default_rng(1).random(y.shape[0]) < 0.7
    weighted = MLPClassifier(**LBFGS).fit(X, y, sample_weight=keep.astype(float))
    dropped = MLPClassifier(**LBFGS).fit(X[keep], y[keep])
    assert_thetas_close(weighted, dropped, atol=1e-8)


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_unit_weights_are_no_weights(blobs, solver):
    X, y = blobs
    kwargs = {**LBFGS, "solver": solver, "max_iter": 20, "batch_size": 32}
    plain = MLPClassifier(**kwargs).fit(X, y)
    weighted = MLPClassifier(**kwargs).fit(X, y, sample_weight=np.ones(y.shape[0]))
    assert_thetas_close(weighted, plain, atol=0)
    assert weighted.loss_curve_ == plain.loss_curve_


@pytest.mark.parametrize(("sample_weight", "message"), [
    (np.ones(89), r"expected shape \(90,\)"),
    (np.ones((90, 1)), r"expected shape \(90,\)"),
    (np.r_[-1.0, np.ones(89)], "expected weights >= 0"),
    (np.r_[np.nan, np.ones(89)], "NaN or infinity"),
    (np.r_[np.inf, np.ones(89)], "NaN or infinity"),
    (np.zeros(90), "every weight is zero"),
], ids=["length", "2-D", "negative", "NaN", "inf", "all-zero"])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_bad_sample_weight(blobs, sample_weight, message, method):
    X, y = blobs
    options = {"classes": [0, 1, 2]} if method == "partial_fit" else {}
    with pytest.raises(ValueError, match=f"^sample_weight: .*{message}"):
        getattr(MLPClassifier(hidden_layer_sizes=(3,), max_iter=2), method)(
            X, y, sample_weight=sample_weight, **options)


@pytest.mark.parametrize("kind", ["ndarray", "list", "series"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_sample_weight_is_read_not_modified(blobs, kind, early_stopping):
    """Lists and pandas Series work as arrays do, and the caller's weights stay as they were."""
    X, y = blobs
    w = np.random.default_rng(0).integers(1, 5, size=y.shape[0]).astype(float)
    given = {"ndarray": lambda: w.copy(), "list": lambda: w.tolist(),
             "series": lambda: pytest.importorskip("pandas").Series(w)}[kind]()
    kwargs = {"hidden_layer_sizes": (3,), "max_iter": 3, "random_state": 0,
              "early_stopping": early_stopping}
    clf = MLPClassifier(**kwargs).fit(X, y, sample_weight=given)
    np.testing.assert_array_equal(np.asarray(given), w)
    reference = MLPClassifier(**kwargs).fit(X, y, sample_weight=w)
    assert_thetas_close(clf, reference, atol=0)


def test_early_stopping_holds_out_the_weights_with_the_examples():
    """Half the labels are flipped and weigh 0: the validation accuracy passes 0.9 only if the
    held-out examples keep their weights (it stays below 0.6 without: 0.575 at this seed)."""
    X, y = make_blobs(n_samples=400, centers=2, random_state=0)
    flipped = np.random.default_rng(0).random(y.shape[0]) < 0.5
    noisy = np.where(flipped, 1 - y, y)
    clf = MLPClassifier(hidden_layer_sizes=(5,), learning_rate_init=0.05, early_stopping=True,
                        n_iter_no_change=5, random_state=0)
    clf.fit(X, noisy, sample_weight=(~flipped).astype(float))
    assert clf.history_.stopped == "early_stopping"
    assert max(clf.validation_scores_) > 0.9
    assert clf.score(X, y) > 0.9  # learned from the examples that weigh


def test_early_stopping_split_without_weight_is_refused(blobs):
    X, y = blobs
    w = np.zeros(y.shape[0])
    w[0] = 1.0
    with pytest.raises(ValueError, match=r"^sample_weight: every weight of the (training|"
                                         r"validation) part of the early-stopping split"):
        MLPClassifier(early_stopping=True, random_state=0).fit(X, y, sample_weight=w)


def test_validation_data_with_weights(blobs):
    X, y = blobs
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0)
    w_val = np.random.default_rng(0).integers(0, 3, size=y_val.shape[0]).astype(float)
    clf = MLPClassifier(**LBFGS).fit(X_train, y_train, validation_data=(X_val, y_val, w_val))
    assert clf.history_["val_score"][-1] == pytest.approx(
        accuracy_score(y_val, clf.predict(X_val), sample_weight=w_val), abs=1e-12)
    with pytest.raises(ValueError, match=r"^validation_data\[2\]: expected weights >= 0"):
        MLPClassifier(**LBFGS).fit(X_train, y_train, validation_data=(X_val, y_val, -w_val))
    with pytest.raises(ValueError, match=r"^validation_data: expected \(X_val, y_val\)"):
        MLPClassifier(**LBFGS).fit(X_train, y_train, validation_data=(X_val,))
    with pytest.raises(TypeError):  # validation_data is keyword-only
        MLPClassifier(**LBFGS).fit(X_train, y_train, None, (X_val, y_val))


def test_partial_fit_with_weights(blobs):
    X, y = blobs
    kwargs = {"hidden_layer_sizes": (5,), "learning_rate_init": 0.05, "batch_size": 500,
              "random_state": 0}
    plain = MLPClassifier(**kwargs).partial_fit(X, y, classes=[0, 1, 2])
    ones = MLPClassifier(**kwargs).partial_fit(X, y, classes=[0, 1, 2],
                                               sample_weight=np.ones(y.shape[0]))
    assert_thetas_close(ones, plain, atol=0)
    # One full batch per epoch: integer weights take the steps of repeated rows.
    w = np.random.default_rng(0).integers(0, 4, size=y.shape[0])
    weighted = MLPClassifier(**kwargs)
    repeated = MLPClassifier(**kwargs)
    for _ in range(3):
        weighted.partial_fit(X, y, classes=[0, 1, 2], sample_weight=w)
        repeated.partial_fit(np.repeat(X, w, axis=0), np.repeat(y, w), classes=[0, 1, 2])
    assert len(weighted.loss_curve_) == 3
    assert_thetas_close(weighted, repeated, atol=1e-12)
    assert not np.allclose(weighted.thetas_[0], plain.thetas_[0])
