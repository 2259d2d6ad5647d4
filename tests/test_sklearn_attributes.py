"""The estimators' fitted attributes mean what scikit-learn's mean."""

import numpy as np
import pytest

pytest.importorskip("sklearn")

from lamina.sklearn import MLPClassifier, MLPRegressor


@pytest.mark.parametrize("outputs", [1, 3])
def test_regressor_loss_is_half_the_mean_squared_error_over_outputs_as_in_sklearn(outputs):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4))
    y = rng.normal(size=(64, outputs)) if outputs > 1 else rng.normal(size=64)
    reg = MLPRegressor(hidden_layer_sizes=(5,), alpha=0.0, learning_rate_init=1e-12, batch_size=64,
                       solver="sgd", momentum=0.0, shuffle=False, dtype="float64", random_state=0)
    reg.partial_fit(X, y)
    p = reg.predict(X)  # a 1e-12 step leaves the predictions where the loss was measured
    expected = np.mean((y - p) ** 2) / 2
    assert reg.loss_ == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_failed_warm_start_refit_keeps_n_features_in(Estimator):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    y = np.arange(40) % 2
    est = Estimator(hidden_layer_sizes=(3,), max_iter=2, warm_start=True, random_state=0)
    with pytest.warns(Warning):
        est.fit(X, y)
    before = est.predict(X)
    with pytest.raises(ValueError, match="4 features; X has 6"):
        est.fit(rng.normal(size=(40, 6)), y)
    assert est.n_features_in_ == 4
    np.testing.assert_array_equal(est.predict(X), before)


def test_estimators_set_their_own_thread_count_not_the_process_one():
    import lamina as lm

    before = lm.get_num_threads()
    est = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    with pytest.warns(Warning):
        est.fit(np.zeros((20, 2)), np.zeros(20))
    assert lm.get_num_threads() == before
    assert est.model_.num_threads == 1  # a small problem runs on one thread, for this model only
