"""fastnn's estimators as drop-ins for scikit-learn's MLPClassifier and MLPRegressor:
parameters, fitted attributes and behaviours, with scikit-learn itself as the reference."""

import inspect
import json
import warnings

import numpy as np
import pytest
from sklearn import neural_network
from sklearn.datasets import make_blobs, make_friedman1
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkClassifier

import fastnn
from fastnn import MLPClassifier, MLPRegressor
from fastnn.trainer import TrainingDiverged

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

PAIRS = [(MLPClassifier, neural_network.MLPClassifier),
         (MLPRegressor, neural_network.MLPRegressor)]
FASTNN_OWN = {"backend", "dtype", "progress", "loss", "output"}
"""fastnn's parameters beyond scikit-learn's (the classifier's ``loss`` and ``output``)."""


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=120, centers=3, random_state=0)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def _signature(cls):
    return list(inspect.signature(cls.__init__).parameters.values())[1:]


# -- parameters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=["classifier", "regressor"])
def test_parameters_are_scikit_learns_in_order_and_kind(ours, theirs):
    """scikit-learn's parameters first, in its order, positional where its are, with its
    defaults (but the activation's); fastnn's own after them, keyword-only."""
    expected = _signature(theirs)
    got = _signature(ours)
    assert [(p.name, p.kind) for p in got[:len(expected)]] == [(p.name, p.kind)
                                                              for p in expected]
    assert {p.name for p in got[len(expected):]} <= FASTNN_OWN
    defaults = {p.name: p.default for p in got}
    for parameter in expected:
        if parameter.name != "activation":
            assert defaults[parameter.name] == parameter.default, parameter.name
    assert defaults["activation"] == "logistic"


def test_positional_arguments_mean_what_they_mean_in_scikit_learn():
    assert MLPClassifier((5,), "tanh").get_params()["activation"] == "tanh"
    assert MLPRegressor("squared_error", (5,), "relu").get_params()["hidden_layer_sizes"] == (5,)
    with pytest.raises(TypeError):
        MLPClassifier((5,), "logistic", "adam")  # keyword-only from solver on, as scikit-learn


def test_logistic_and_sigmoid_are_the_same_activation(blobs):
    X, y = blobs
    kwargs = {"hidden_layer_sizes": (4,), "max_iter": 5, "random_state": 0}
    logistic = MLPClassifier(activation="logistic", **kwargs).fit(X, y)
    sigmoid = MLPClassifier(activation="sigmoid", **kwargs).fit(X, y)
    for a, b in zip(logistic.coefs_, sigmoid.coefs_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("params", [
    {"n_iter_no_change": np.inf},
    {"random_state": np.random.RandomState(0)},
    {"validation_fraction": 0.0},
    {"dtype": np.float32},
    {"dtype": np.dtype("float32")},
    {"learning_rate": "invscaling", "power_t": 0.25, "solver": "sgd"},
    {"learning_rate": "adaptive", "solver": "sgd"},
    {"shuffle": False},
    {"beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-6},
    {"max_fun": 100, "solver": "lbfgs"},
], ids=lambda params: ",".join(params))
def test_scikit_learns_values_are_accepted(blobs, params):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, **params).fit(X, y)
    assert clf.predict(X).shape == y.shape
    theirs = {name: value for name, value in params.items() if name not in FASTNN_OWN}
    neural_network.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, **theirs).fit(X, y)


def test_dtype_as_a_numpy_type_trains_in_it(blobs):
    X, y = blobs
    for dtype in (np.float32, np.dtype("float32"), "float32"):
        clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, dtype=dtype).fit(X, y)
        assert clf.coefs_[0].dtype == np.float32


def test_float32_data_train_a_float32_model_by_default(blobs):
    """dtype=None: float32 X keeps float32 (as scikit-learn), other X trains in float64."""
    X, y = blobs
    assert MLPClassifier(max_iter=2).fit(X.astype(np.float32), y).coefs_[0].dtype == np.float32
    assert MLPClassifier(max_iter=2).fit(X, y).coefs_[0].dtype == np.float64
    assert MLPClassifier(max_iter=2).fit(X.astype(int), y).coefs_[0].dtype == np.float64


@pytest.mark.parametrize(("param", "value"), [("dtype", "int8"), ("dtype", np.float16),
                                              ("dtype", "wide")])
def test_bad_dtype_names_the_argument(blobs, param, value):
    X, y = blobs
    with pytest.raises(ValueError, match="^dtype: expected None, 'float32', 'float64'"):
        MLPClassifier(**{param: value}).fit(X, y)


@pytest.mark.parametrize("params", [{"learning_rate": "cyclic"}, {"power_t": -1.0},
                                    {"beta_1": 1.0}, {"epsilon": 0.0}, {"max_fun": 0},
                                    {"shuffle": "yes"}, {"validation_fraction": 1.0}])
def test_scikit_learns_checks(blobs, params):
    X, y = blobs
    (name,) = params
    with pytest.raises(ValueError, match=f"^The '{name}' parameter of MLPClassifier must be"):
        MLPClassifier(**params).fit(X, y)


def test_early_stopping_with_no_validation_fraction_raises_as_scikit_learn(blobs):
    X, y = blobs
    for cls in (MLPClassifier, neural_network.MLPClassifier):
        with pytest.raises(ValueError, match="test_size"):
            cls(early_stopping=True, validation_fraction=0.0).fit(X, y)


def test_the_training_loss_stops_after_scikit_learns_count(blobs):
    """With a tol no epoch can meet, the number of epochs is the counting rule alone: more
    than n_iter_no_change epochs without improvement, as scikit-learn (one more than
    fastnn's former ``>=``)."""
    X, y = blobs
    kwargs = {"hidden_layer_sizes": (4,), "tol": 1e3, "n_iter_no_change": 3, "max_iter": 50}
    ours = MLPClassifier(**kwargs).fit(X, y)
    theirs = neural_network.MLPClassifier(**kwargs).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 5


def test_adaptive_learning_rate_divides_by_5_then_stops_as_scikit_learn(blobs):
    X, y = blobs
    kwargs = {"hidden_layer_sizes": (4,), "solver": "sgd", "learning_rate": "adaptive",
              "tol": 1e3, "n_iter_no_change": 1, "max_iter": 100}
    ours = MLPClassifier(**kwargs).fit(X, y)
    theirs = neural_network.MLPClassifier(**kwargs).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ < 100
    assert ours._optimizer.learning_rate == pytest.approx(theirs._optimizer.learning_rate)
    assert ours._optimizer.learning_rate <= 1e-6


def test_invscaling_learning_rate_follows_the_examples_seen(blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(4,), solver="sgd", learning_rate="invscaling",
                        power_t=0.3, learning_rate_init=0.1, max_iter=4,
                        n_iter_no_change=np.inf).fit(X, y)
    assert clf.t_ == 4 * X.shape[0]
    assert clf._optimizer.learning_rate == pytest.approx(0.1 / (clf.t_ + 1) ** 0.3)
    clf.partial_fit(X, y)
    assert clf._optimizer.learning_rate == pytest.approx(0.1 / (5 * X.shape[0] + 1) ** 0.3)


def test_shuffle_false_takes_the_batches_in_order(blobs):
    """One epoch without shuffling is the partial_fit of each batch in turn (alpha 0: the
    penalty of a batch is scaled by the whole m in fit, by the batch's in partial_fit)."""
    X, y = blobs
    kwargs = {"hidden_layer_sizes": (4,), "alpha": 0.0, "batch_size": 40, "random_state": 0}
    fitted = MLPClassifier(shuffle=False, max_iter=1, **kwargs).fit(X, y)
    stepped = MLPClassifier(**kwargs)
    for start in range(0, X.shape[0], 40):
        stepped.partial_fit(X[start:start + 40], y[start:start + 40], classes=[0, 1, 2])
    for a, b in zip(fitted.coefs_, stepped.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    shuffled = MLPClassifier(max_iter=1, **kwargs).fit(X, y)
    assert not np.allclose(shuffled.coefs_[0], fitted.coefs_[0])


def test_adams_settings_reach_the_step_rule(blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, beta_1=0.5, beta_2=0.9,
                        epsilon=1e-6).fit(X, y)
    assert (clf._optimizer.beta_1, clf._optimizer.beta_2, clf._optimizer.epsilon) == (
        0.5, 0.9, 1e-6)
    default = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, y)
    assert not np.allclose(default.coefs_[0], clf.coefs_[0])


def test_max_fun_limits_lbfgs(blobs):
    X, y = blobs
    with pytest.warns(Warning, match="max_fun"):
        clf = MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", max_fun=5).fit(X, y)
    assert clf.history_.stopped == "max_fun"


# -- fitted attributes ---------------------------------------------------------------------------


def test_coefs_and_intercepts_are_views_in_scikit_learns_layout(blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(6, 4), max_iter=3).fit(X, y)
    theirs = neural_network.MLPClassifier(hidden_layer_sizes=(6, 4), max_iter=3).fit(X, y)
    assert [c.shape for c in clf.coefs_[:-1]] == [c.shape for c in theirs.coefs_[:-1]]
    assert [c.shape for c in clf.coefs_] == [(2, 6), (6, 4), (4, 3)]
    assert [b.shape for b in clf.intercepts_] == [(6,), (4,), (3,)]
    for coef, intercept, theta in zip(clf.coefs_, clf.intercepts_, clf.thetas_):
        assert np.shares_memory(coef, theta) and np.shares_memory(intercept, theta)
        np.testing.assert_array_equal(coef, theta[:, 1:].T)
        np.testing.assert_array_equal(intercept, theta[:, 0])
    assert (clf.n_layers_, clf.n_outputs_) == (theirs.n_layers_, theirs.n_outputs_) == (4, 3)
    assert not hasattr(MLPClassifier(), "coefs_")


@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_scikit_learns_weights_predict_as_scikit_learn(kind):
    """coefs_ and intercepts_ assigned from a scikit-learn model (logistic units, so the same
    network) make fastnn predict what scikit-learn does."""
    X, y = make_friedman1(n_samples=80, random_state=0)
    if kind == "binary":
        y = (y > np.median(y)).astype(int)
        ours, theirs = MLPClassifier, neural_network.MLPClassifier
    else:
        ours, theirs = MLPRegressor, neural_network.MLPRegressor
    reference = theirs(hidden_layer_sizes=(5,), activation="logistic", max_iter=20,
                       random_state=0).fit(X, y)
    model = ours(hidden_layer_sizes=(5,), max_iter=1).fit(X, y)
    model.coefs_ = reference.coefs_
    model.intercepts_ = reference.intercepts_
    assert model.out_activation_ == reference.out_activation_
    if kind == "binary":
        np.testing.assert_allclose(model.predict_proba(X), reference.predict_proba(X),
                                   rtol=1e-12)
        np.testing.assert_allclose(model.predict_log_proba(X),
                                   reference.predict_log_proba(X), rtol=1e-12)
    else:
        np.testing.assert_allclose(model.predict(X), reference.predict(X), rtol=1e-12)


def test_assigned_weights_are_where_partial_fit_continues(blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(4,), random_state=0).partial_fit(
        X, y, classes=[0, 1, 2])
    zeros = [np.zeros_like(c) for c in clf.coefs_]
    clf.coefs_ = zeros
    clf.intercepts_ = [np.zeros_like(b) for b in clf.intercepts_]
    assert all(not theta.any() for theta in clf.thetas_)
    clf.partial_fit(X, y)
    # One adam step of rate 1e-3 from zero moves each weight by about 1e-3 at most.
    assert all(np.abs(coef).max() < 2e-3 for coef in clf.coefs_)
    with pytest.raises(ValueError, match=r"^coefs_: expected arrays of shapes"):
        clf.coefs_ = [np.zeros((3, 3))]
    with pytest.raises(AttributeError, match="once fitted"):
        MLPClassifier().coefs_ = zeros


def test_loss_attributes_as_scikit_learn(blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5).fit(X, y)
    assert clf.loss_ == clf.loss_curve_[-1]
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    assert clf.t_ == 5 * X.shape[0] and clf.n_iter_ == 5
    stopped = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, early_stopping=True).fit(X, y)
    assert stopped.best_loss_ is None
    assert stopped.best_validation_score_ == max(stopped.validation_scores_)
    # n_iter_ counts the last fit, the loss curve and t_ all of them (as scikit-learn).
    clf.set_params(warm_start=True, max_iter=3).fit(X, y)
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 8 and clf.t_ == 8 * X.shape[0]


@pytest.mark.parametrize("targets", ["binary", "multiclass", "multilabel"])
def test_out_activation_is_scikit_learns(blobs, targets):
    X, y = blobs
    if targets == "binary":
        y = y % 2
    elif targets == "multilabel":
        y = np.column_stack([y == 0, y == 1]).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(max_iter=1).fit(X, y)
        theirs = SkClassifier(max_iter=1).fit(X, y)
    assert ours.out_activation_ == theirs.out_activation_
    P = ours.predict_proba(X)
    if targets != "multilabel":
        np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)


def test_multiclass_probabilities_are_the_softmax_of_the_logits(blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=20,
                        random_state=0).fit(X, y)
    Z = clf._forward(X, logits=True)
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(clf.predict_proba(X), E / E.sum(axis=1, keepdims=True),
                               rtol=1e-12)
    # The seeds' one-vs-all output stays one parameter away.
    seeds = MLPClassifier(max_iter=1, output="sigmoid").fit(X, y)
    assert seeds.out_activation_ == "logistic" and seeds.thetas_[-1].shape[0] == 3
    assert MLPClassifier(max_iter=1, loss="squared_error").fit(X, y).out_activation_ == "logistic"


def test_regressor_out_activation_follows_the_loss(blobs):
    X, y = blobs
    y = y.astype(float)
    assert MLPRegressor(max_iter=1).fit(X, y).out_activation_ == "identity"
    poisson = MLPRegressor(loss="poisson", hidden_layer_sizes=(5,), solver="lbfgs",
                           max_iter=50, random_state=0).fit(X, y)
    assert poisson.out_activation_ == "exp"
    assert np.all(poisson.predict(X) > 0)
    with pytest.raises(ValueError, match="y"):
        MLPRegressor(loss="poisson", max_iter=1).fit(X, y - 1.0)


# -- behaviours ----------------------------------------------------------------------------------


def test_partial_fit_with_early_stopping_is_refused_before_any_change(blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(4,)).partial_fit(X, y, classes=[0, 1, 2])
    before = [theta.copy() for theta in clf.thetas_]
    curve = list(clf.loss_curve_)
    clf.set_params(early_stopping=True)
    with pytest.raises(ValueError, match="^partial_fit does not support early_stopping=True"):
        clf.partial_fit(X, y)
    assert clf.loss_curve_ == curve
    for theta, old in zip(clf.thetas_, before):
        np.testing.assert_array_equal(theta, old)


@pytest.mark.parametrize("n", [5, 10])
def test_a_validation_set_too_small_raises_as_scikit_learn(n):
    X, y = make_friedman1(n_samples=n, random_state=0)
    for cls in (MLPRegressor, neural_network.MLPRegressor):
        with pytest.raises(ValueError, match="^The validation set is too small"):
            cls(early_stopping=True, max_iter=3).fit(X, y)


def test_partial_fit_with_other_classes_raises(blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(4,)).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match=r"^`classes=\[0, 1, 2, 3\]` is not the same as on "
                                         "last call to partial_fit"):
        clf.partial_fit(X, y, classes=[0, 1, 2, 3])
    clf.partial_fit(X, y, classes=[2, 1, 0])  # the same classes, in another order


@pytest.mark.parametrize("keep", [[0, 1], [0, 1, 2, 3]], ids=["subset", "superset"])
def test_a_warm_refit_needs_the_same_classes(blobs, keep):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, warm_start=True).fit(X, y)
    y_new = y.copy() if len(keep) > 3 else y[np.isin(y, keep)]
    X_new = X if len(keep) > 3 else X[np.isin(y, keep)]
    if len(keep) > 3:
        y_new[0] = 3
    with pytest.raises(ValueError, match="^warm_start can only be used where `y` has the same "
                                         "classes"):
        clf.fit(X_new, y_new)


def test_early_stopping_stratifies_binary_targets_as_scikit_learn():
    """Binary targets are stratified, so a class of one example raises as in scikit-learn;
    multi-class targets are not stratified (scikit-learn splits their one-hot rows)."""
    X, y = make_blobs(n_samples=40, centers=2, random_state=0)
    y[:] = 0
    y[0] = 1
    for cls in (MLPClassifier, neural_network.MLPClassifier):
        with pytest.raises(ValueError, match="least populated class"):
            cls(early_stopping=True, max_iter=2).fit(X, y)
    y[1] = 2
    MLPClassifier(early_stopping=True, max_iter=2).fit(X, y)


def test_verbose_prints_scikit_learns_lines(blobs, capsys):
    X, y = blobs
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, verbose=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == [f"Iteration {i}" for i in (1, 2, 3)]
    assert all(line.startswith(f"Iteration {i + 1}, loss = ") for i, line in enumerate(lines))


@pytest.mark.parametrize("learning_rate", ["constant", "adaptive"])
def test_verbose_says_why_training_stopped_as_scikit_learn(blobs, capsys, learning_rate):
    X, y = blobs
    kwargs = {"hidden_layer_sizes": (4,), "solver": "sgd", "learning_rate": learning_rate,
              "tol": 1e3, "n_iter_no_change": 2, "max_iter": 100, "verbose": True}
    MLPClassifier(**kwargs).fit(X, y)
    ours = capsys.readouterr().out.splitlines()[-1]
    neural_network.MLPClassifier(**kwargs).fit(X, y)
    assert ours == capsys.readouterr().out.splitlines()[-1]
    assert ours.endswith("Stopping.")


def test_diverging_is_a_value_error(blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(5,), solver="sgd", learning_rate_init=1e300)
    with pytest.raises(ValueError) as caught:
        clf.fit(X * 1e10, y)
    assert isinstance(caught.value, TrainingDiverged)


# -- model files ---------------------------------------------------------------------------------


def test_model_files_keep_the_new_state(tmp_path, blobs):
    X, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(4,), solver="sgd", learning_rate="adaptive",
                        tol=1e3, n_iter_no_change=1, max_iter=4, dtype=np.float32,
                        beta_1=0.8).fit(X, y)
    clf.set_params(n_iter_no_change=np.inf)
    clf.save(tmp_path / "m.npz")
    loaded = fastnn.load(tmp_path / "m.npz")
    assert loaded._optimizer.learning_rate == clf._optimizer.learning_rate < 1e-3
    assert (loaded.t_, loaded.out_activation_, loaded.n_layers_) == (
        clf.t_, "softmax", 3)
    assert loaded.get_params()["n_iter_no_change"] == np.inf
    assert loaded.get_params()["dtype"] == "float32" and loaded.beta_1 == 0.8
    assert loaded.best_loss_ == clf.best_loss_ and loaded.loss_ == clf.loss_


def test_model_files_written_before_load(tmp_path, blobs):
    """A file without the fields this version adds (as the previous version wrote them)."""
    X, y = blobs
    # The previous version's classifier: one sigmoid unit per class.
    clf = MLPClassifier(hidden_layer_sizes=(4,), dtype="float64", max_iter=3,
                        output="sigmoid").fit(X, y)
    path = tmp_path / "m.npz"
    clf.save(path)
    with np.load(path) as data:
        arrays = dict(data)
    metadata = json.loads(str(arrays["metadata"][()]))
    for name in ("output_activation", "t", "best_validation_score"):
        del metadata[name]
    del metadata["optimizer"]["learning_rate"]
    for name in ("learning_rate", "power_t", "shuffle", "beta_1", "beta_2", "epsilon",
                 "max_fun", "progress", "dtype", "output"):
        del metadata["training"][name]
    metadata["activation"] = "sigmoid"
    arrays["metadata"] = np.array(json.dumps(metadata))
    np.savez(path, **arrays)
    loaded = fastnn.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.out_activation_ == "logistic" and loaded.t_ == 0
    assert loaded.dtype == "float64"
    loaded.partial_fit(X, y)


@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_the_loss_curve_is_scikit_learns_loss(kind):
    """The first epoch's loss (one full batch: the cost at the starting weights) equals
    scikit-learn's from the same weights: data term plus α/(2m)·Σ‖W‖², no bias."""
    X, y = make_friedman1(n_samples=60, random_state=0)
    if kind == "binary":
        y = (y > np.median(y)).astype(int)
        ours, theirs = MLPClassifier, neural_network.MLPClassifier
    else:
        ours, theirs = MLPRegressor, neural_network.MLPRegressor
    kwargs = {"hidden_layer_sizes": (5,), "alpha": 0.5, "solver": "sgd", "batch_size": 60,
              "learning_rate_init": 1e-12, "random_state": 0}
    extra = {"classes": [0, 1]} if kind == "binary" else {}
    model = ours(**kwargs).partial_fit(X, y, **extra)
    reference = theirs(activation="logistic", **kwargs).partial_fit(X, y, **extra)
    reference.coefs_ = [coef.copy() for coef in model.coefs_]
    reference.intercepts_ = [intercept.copy() for intercept in model.intercepts_]
    reference.partial_fit(X, y)
    assert model.loss_curve_[0] == pytest.approx(reference.loss_curve_[-1], rel=1e-9)


@pytest.mark.parametrize("activation", ["logistic", "tanh", "relu"])
def test_initial_weights_are_scikit_learns(blobs, activation):
    """The same random_state starts both from the same weights (Glorot bounds, drawn first)."""
    X, y = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = SkClassifier((6,), activation, solver="sgd", learning_rate_init=1e-12,
                              max_iter=1, shuffle=False, random_state=3).fit(X, y)
    ours = MLPClassifier((6,), activation, max_iter=1, random_state=3)
    ours._validate_params()
    layers = [X.shape[1], 6, 3]
    initial = fastnn.init_weights(layers, seed=np.random.RandomState(3), init="glorot",
                                  activation=ours._activation())
    for theta, coef, intercept in zip(initial, theirs.coefs_, theirs.intercepts_):
        np.testing.assert_allclose(theta[:, 1:].T, coef, rtol=0, atol=1e-9)
        np.testing.assert_allclose(theta[:, 0], intercept, rtol=0, atol=1e-9)
    fitted = MLPClassifier((6,), activation, solver="sgd", learning_rate_init=1e-12,
                           max_iter=1, shuffle=False, momentum=0.0,
                           random_state=3).fit(X, y)
    for coef, theirs_coef in zip(fitted.coefs_, theirs.coefs_):
        np.testing.assert_allclose(coef, theirs_coef, rtol=0, atol=1e-9)
