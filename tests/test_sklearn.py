"""lamina.sklearn: MLPClassifier / MLPRegressor pass scikit-learn's estimator checks and work in
its tools (Pipeline, GridSearchCV, clone, pickle), with scikit-learn's parameter meanings."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import lamina as lm
from lamina.sklearn import MLPClassifier, MLPRegressor

no_convergence_warning = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# scikit-learn's own test parameters for its MLPs are max_iter=100 (default architecture).
@no_convergence_warning
@parametrize_with_checks([MLPClassifier(max_iter=100, random_state=0), MLPRegressor(max_iter=100, random_state=0)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@no_convergence_warning
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_sample_weight_equals_repeated_samples_exactly_in_float64_and_to_rounding_in_float32(Estimator):
    from sklearn.utils.estimator_checks import check_sample_weight_equivalence_on_dense_data

    check_sample_weight_equivalence_on_dense_data(Estimator.__name__, Estimator(max_iter=100, random_state=0))
    # float32 sums round differently for weighted and repeated rows: equal to about 1e-7.
    with pytest.raises(AssertionError, match=r"Max relative difference among violations: [0-9.]+e-0[67]"):
        check_sample_weight_equivalence_on_dense_data(Estimator.__name__,
                                                      Estimator(max_iter=100, random_state=0, dtype="float32"))


@no_convergence_warning
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_default_dtype_follows_the_input_as_scikit_learns_mlps_do(Estimator):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(int)
    for given, trained in ((X.astype(np.float32), "float32"), (X, "float64"), (np.round(X * 10).astype(int), "float64")):
        est = Estimator(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(given, y)
        assert est.model_.dtype == trained
        assert est.predict(X).shape[0] == 40  # float64 input to a float32 model is converted, not refused
    forced = Estimator(hidden_layer_sizes=(4,), max_iter=3, random_state=0, dtype="float32").fit(X, y)
    assert forced.model_.dtype == "float32"


@no_convergence_warning
def test_warm_start_and_partial_fit_keep_the_fitted_models_dtype():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(int)
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0, warm_start=True).fit(X, y)
    model = est.model_
    est.fit(X.astype(np.float32), y)
    assert est.model_ is model and model.dtype == "float64"
    est.partial_fit(X.astype(np.float32), y)
    assert est.model_.dtype == "float64"


@no_convergence_warning
def test_sample_weight_with_early_stopping_splits_weights_and_scores_weighted(iris):
    X, y = iris
    w = np.where(y == 2, 3.0, 1.0)
    clf = MLPClassifier(hidden_layer_sizes=(8,), early_stopping=True, max_iter=20, random_state=0)
    clf.fit(X, y, sample_weight=w)
    assert len(clf.validation_scores_) == clf.n_iter_
    with pytest.raises(ValueError, match="at least 2 classes with a non-zero sample_weight"):
        MLPClassifier(max_iter=5).fit(X, y, sample_weight=(y == 1).astype(float))
    with pytest.raises(ValueError, match="Negative values in data passed to"):
        MLPClassifier(max_iter=5).fit(X, y, sample_weight=-np.ones(len(y)))


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X, y


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=200, n_features=5, n_targets=2, noise=1.0, random_state=0)
    return X, y / np.abs(y).max(axis=0)


def test_import_lamina_loads_neither_sklearn_nor_onnx():
    code = "import sys, lamina; bad = [m for m in ('sklearn', 'onnx', 'onnxruntime') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ----------------------------------------------------------------------------- classifier
@no_convergence_warning
def test_classifier_in_pipeline_learns_digits():
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    clf = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), max_iter=30, random_state=0))
    clf.fit(X_tr, y_tr)
    assert clf.score(X_te, y_te) > 0.93
    proba = clf.predict_proba(X_te)
    assert proba.shape == (len(X_te), 10) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X_te))


@no_convergence_warning
def test_grid_search_over_lamina_parameters(iris):
    X, y = iris
    search = GridSearchCV(make_pipeline(StandardScaler(), MLPClassifier(max_iter=40, learning_rate_init=0.01,
                                                                        random_state=0)),
                          {"mlpclassifier__hidden_layer_sizes": [(8,), (16, 8)],
                           "mlpclassifier__alpha": [1e-4, 1e-1]}, cv=3)
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_score_ > 0.85
    assert search.best_estimator_.score(X, y) > 0.85


@no_convergence_warning
def test_string_labels_binary_uses_one_sigmoid_unit(iris):
    X, y = iris
    keep = y < 2
    labels = np.array(["setosa", "versicolor"])[y[keep]]
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=200, learning_rate_init=0.01, random_state=0)
    clf.fit(X[keep], labels)
    assert list(clf.classes_) == ["setosa", "versicolor"]
    out = clf.model_.layers[-1]
    assert (out.units, out.activation) == (1, "sigmoid") and clf.model_.loss.name == "binary_crossentropy"
    assert clf.n_outputs_ == 1 and clf.out_activation_ == "logistic"
    proba = clf.predict_proba(X[keep])
    assert proba.shape == (keep.sum(), 2)
    np.testing.assert_allclose(proba[:, 1], clf.model_.predict(X[keep])[:, 0], rtol=1e-6)
    assert set(clf.predict(X[keep])) <= {"setosa", "versicolor"}
    assert clf.score(X[keep], labels) > 0.95


@no_convergence_warning
def test_multiclass_uses_softmax_and_sparse_cross_entropy(iris):
    X, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y + 10)
    out = clf.model_.layers[-1]
    assert (out.units, out.activation) == (3, "softmax")
    assert clf.model_.loss.name == "sparse_categorical_crossentropy"
    assert list(clf.classes_) == [10, 11, 12] and clf.n_features_in_ == 4 and clf.n_layers_ == 3
    assert [c.shape for c in clf.coefs_] == [(4, 8), (8, 3)] and [b.shape for b in clf.intercepts_] == [(8,), (3,)]


def test_one_class_is_an_error(iris):
    X, _ = iris
    with pytest.raises(ValueError, match="1 class"):
        MLPClassifier(max_iter=2).fit(X, np.zeros(len(X)))


@no_convergence_warning
def test_partial_fit_needs_classes_first_and_keeps_learning(iris):
    X, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])  # the first batch may lack a class
    assert list(clf.classes_) == [0, 1, 2] and clf.model_.output_size == 3
    for _ in range(30):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 31
    assert clf.loss_curve_[-1] < clf.loss_curve_[1]
    with pytest.raises(ValueError, match="not in classes_"):
        clf.partial_fit(X[:3], np.array([0, 1, 7]))
    with pytest.raises(ValueError, match="not the same"):
        clf.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


# ----------------------------------------------------------------------------- regressor
@no_convergence_warning
def test_regressor_one_and_two_outputs(regression):
    X, Y = regression
    two = MLPRegressor(hidden_layer_sizes=(32,), max_iter=200, learning_rate_init=0.01, random_state=0).fit(X, Y)
    assert two.n_outputs_ == 2 and two.predict(X).shape == (200, 2) and two.score(X, Y) > 0.9
    assert two.model_.layers[-1].activation == "linear" and two.out_activation_ == "identity"
    one = MLPRegressor(hidden_layer_sizes=(32,), max_iter=200, learning_rate_init=0.01, random_state=0).fit(X, Y[:, 0])
    assert one.n_outputs_ == 1 and one.predict(X).shape == (200,) and one.score(X, Y[:, 0]) > 0.9
    with pytest.raises(ValueError, match="outputs"):
        one.partial_fit(X, Y)


@no_convergence_warning
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_alpha_mapping_and_loss_on_sklearn_scale(kind, iris, regression):
    """loss_ is scikit-learn's objective: log-loss (classifier) or 0.5 * squared error averaged
    over samples and outputs (regressor, scikit-learn's squared_loss), plus (alpha / (2 n))
    ||W||^2. A vanishing step size keeps the weights where they are, so the epoch's loss is the
    loss at the final weights."""
    alpha = 3.0
    if kind == "classifier":
        X, y = iris
        est = MLPClassifier(hidden_layer_sizes=(6,), alpha=alpha, batch_size=150, learning_rate_init=1e-12,
                            max_iter=1, shuffle=False, random_state=0, dtype="float64").fit(X, y)
        data = log_loss(y, est.predict_proba(X))
        l2 = alpha / (2 * 150)
    else:
        X, y = regression
        est = MLPRegressor(hidden_layer_sizes=(6,), alpha=alpha, batch_size=200, learning_rate_init=1e-12,
                           max_iter=1, shuffle=False, random_state=0, dtype="float64").fit(X, y)
        data = 0.5 * ((est.predict(X) - y) ** 2).mean()  # scikit-learn's squared_loss: the mean over outputs
        l2 = alpha / (2 * 200)
    # Classifier: L2(alpha / (2 B)); regressor: L2(alpha / (n_outputs * B)), here n_outputs = 2.
    dense = [l for l in est.model_.layers if isinstance(l, lm.layers.Dense)]
    assert [l.kernel_regularizer.l2 for l in dense] == pytest.approx([l2, l2])
    penalty = 0.5 * alpha / len(X) * sum(float((c ** 2).sum()) for c in est.coefs_)
    assert est.loss_ == pytest.approx(data + penalty, rel=1e-7)
    assert est.loss_curve_ == [est.loss_]
    assert MLPClassifier(alpha=0.0, max_iter=1).fit(*iris).model_.layers[0].kernel_regularizer is None


# ----------------------------------------------------------------------------- stopping rules
def test_stops_when_training_loss_stalls(iris):
    X, y = iris
    # With tol=10 no epoch after the first "improves": n_iter_no_change + 1 more epochs, then stop.
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(4,), tol=10.0, n_iter_no_change=3, max_iter=50,
                            random_state=0).fit(X, y)
    assert clf.n_iter_ == 5 and len(clf.loss_curve_) == 5 and clf.best_loss_ == min(clf.loss_curve_)


def test_convergence_warning_at_max_iter(iris):
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(3\\)"):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(*iris)


def test_early_stopping_restores_the_best_validation_weights(iris):
    X, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(8,), early_stopping=True, validation_fraction=0.2, n_iter_no_change=5,
                        learning_rate_init=0.05, max_iter=300, random_state=0)
    clf.fit(X, y)
    assert clf.n_iter_ < 300 and clf.best_loss_ is None
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    # The same split scikit-learn would draw: the random_state's first use.
    _, X_val, _, y_val = train_test_split(X, y, test_size=0.2, stratify=y, random_state=np.random.RandomState(0))
    assert clf.score(X_val, y_val) == pytest.approx(clf.best_validation_score_)


# ----------------------------------------------------------------------------- parameters
@no_convergence_warning
@pytest.mark.parametrize("solver", lm.optimizers.NAMES)
def test_every_lamina_solver(solver, iris):
    X, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver=solver, max_iter=3, random_state=0).fit(X, y)
    assert clf.model_.optimizer.name == solver and clf.model_.optimizer.learning_rate == 0.001
    if solver == "sgd":
        assert clf.model_.optimizer.momentum == 0.9 and clf.model_.optimizer.nesterov
    if solver == "adam":
        assert clf.model_.optimizer.epsilon == 1e-8


@no_convergence_warning
@pytest.mark.parametrize("activation",
                         ["identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu"])
def test_every_hidden_activation(activation, iris):
    X, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(5, 4), activation=activation, max_iter=2, random_state=0).fit(X, y)
    expected = {"identity": "linear", "logistic": "sigmoid"}.get(activation, activation)
    assert [l.activation for l in clf.model_.layers[:-1]] == [expected, expected]


@pytest.mark.parametrize("params, match", [
    ({"solver": "lbfgs"}, "solver"), ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
    ({"activation": "softmax"}, "output layers only"), ({"activation": "swish"}, "activation"),
    ({"alpha": -1.0}, "alpha"), ({"batch_size": 0}, "batch_size"), ({"max_iter": 0}, "max_iter"),
    ({"dropout": 1.0}, "dropout"), ({"dtype": "float16"}, "dtype"), ({"validation_fraction": 1.0}, "validation"),
    ({"learning_rate_init": 0.0}, "learning_rate_init"), ({"n_iter_no_change": 0}, "n_iter_no_change"),
])
def test_bad_parameters_raise_at_fit_not_init(params, match, iris):
    est = MLPClassifier(**params)  # no work, no checks in __init__
    assert est.get_params()[next(iter(params))] == next(iter(params.values()))
    with pytest.raises(ValueError, match=match):
        est.fit(*iris)


@no_convergence_warning
def test_dropout_dtype_and_reproducibility(iris):
    X, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(8, 8), dropout=0.25, dtype="float64", max_iter=5, random_state=3)
    clf.fit(X, y)
    assert [type(l).__name__ for l in clf.model_.layers] == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert clf.model_.dtype == "float64"
    again = clone(clf).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), again.predict_proba(X))
    assert clone(clf).get_params() == clf.get_params()


@no_convergence_warning
def test_batch_size_larger_than_data_is_clipped_with_a_warning(iris):
    with pytest.warns(UserWarning, match="clipped"):
        MLPClassifier(hidden_layer_sizes=(4,), batch_size=1000, max_iter=1).fit(*iris)


@no_convergence_warning
def test_warm_start_continues(iris):
    X, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, warm_start=True, random_state=0).fit(X, y)
    before = clf.coefs_[0].copy()
    clf.fit(X, y)
    assert clf.n_iter_ == 5 and len(clf.loss_curve_) == 10 and clf.model_.epochs_trained == 10
    assert not np.array_equal(before, clf.coefs_[0])


# ----------------------------------------------------------------------------- pickling
@no_convergence_warning
def test_pickle_round_trip_keeps_predictions_and_training_state(iris):
    X, y = iris
    clf = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0))
    clf.fit(X, y)
    blob = pickle.dumps(clf)
    restored = pickle.loads(blob)
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    # Training continues identically: same weights, optimizer state, step and epoch counters.
    a, b = clf[-1], restored[-1]
    a.partial_fit(X, y)
    b.partial_fit(X, y)
    np.testing.assert_array_equal(a.model_.get_weights()[0], b.model_.get_weights()[0])


def test_unfitted_raises_not_fitted(iris):
    with pytest.raises(NotFittedError):
        MLPRegressor().predict(iris[0])
    with pytest.raises(NotFittedError):
        _ = MLPClassifier().coefs_
