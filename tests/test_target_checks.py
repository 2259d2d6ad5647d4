"""The core checks every target value it indexes with (Network::check_targets), whatever the
Python layer let through: a label out of range, a fractional label, or targets whose layout does
not match the metric mode raise ValueError before any state changes, never touch memory."""

import numpy as np
import pytest

import lamina as lm
from lamina import _core


def _model(loss, metric_mode, units=3, dtype="float32"):
    model = lm.Sequential([lm.layers.Dense(units, activation="softmax", input_shape=(4,))], seed=1, dtype=dtype)
    model.compile("adam", loss)
    # Straight to the core: this is the pairing Python's compile may reject first.
    model._net.set_metric_mode(_core.MetricMode[metric_mode])
    return model


def _state(model):
    net = model._net
    return net.parameters().copy(), net.steps, net.iterations, [s.copy() for s in net.optimizer_slots()]


def _assert_unchanged(model, before):
    after = _state(model)
    np.testing.assert_array_equal(before[0], after[0])
    assert before[1:3] == after[1:3]
    for a, b in zip(before[3], after[3]):
        np.testing.assert_array_equal(a, b)


X = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)


def _assert_layout_mismatch_refused(model, y):
    before = _state(model)
    for call in (lambda: model._net.evaluate(_core.BatchStats(), X, y, 4),
                 lambda: model._net.train_batches(_core.BatchStats(), X, y, None, 0, 4, 2)):
        with pytest.raises(ValueError, match="different target layouts"):
            call()
    _assert_unchanged(model, before)


def test_mse_with_sparse_metric_and_huge_label_raises_instead_of_writing_past_the_confusion_matrix():
    _assert_layout_mismatch_refused(_model("mse", "argmax_sparse"), np.full((8, 3), 1e6, np.float32))


@pytest.mark.parametrize("mode", ["argmax_onehot", "threshold"])
def test_sparse_loss_with_dense_metric_raises_instead_of_reading_past_the_labels(mode):
    _assert_layout_mismatch_refused(_model("sparse_categorical_crossentropy", mode), np.zeros((8, 1), np.float32))


@pytest.mark.parametrize("bad", [1e6, 3.0, -1.0, 0.5, np.nan])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sparse_label_outside_the_classes_or_fractional_raises_before_training(bad, dtype):
    model = _model("sparse_categorical_crossentropy", "argmax_sparse", dtype=dtype)
    y = np.zeros((8, 1), dtype)
    y[5, 0] = bad
    xs = X.astype(dtype)
    before = _state(model)
    for call in (lambda: model._net.train_batches(_core.BatchStats(), xs, y, None, 0, 4, 2),
                 lambda: model._net.evaluate(_core.BatchStats(), xs, y, 4),
                 lambda: model._net.loss_and_gradient(xs, y),
                 lambda: model._net.numerical_gradient(xs, y, 1e-3, np.array([0]))):
        with pytest.raises(ValueError, match="label out of range.*at row 5"):
            call()
    _assert_unchanged(model, before)


def test_public_compile_of_mse_with_sparse_accuracy_raises_value_error_on_huge_targets():
    model = lm.Sequential([lm.layers.Dense(3, activation="softmax", input_shape=(4,))], seed=1)
    y = np.full((8, 3), 1e6, np.float32)
    try:
        model.compile("adam", "mse", metrics=["sparse_categorical_accuracy"])
    except ValueError:
        return  # rejected at compile: the earlier door, equally safe
    with pytest.raises(ValueError):
        model.evaluate(X, y)
    with pytest.raises(ValueError):
        model.fit(X, y, epochs=1, verbose=0)


def test_matching_layouts_still_train_and_score():
    model = _model("sparse_categorical_crossentropy", "argmax_sparse")
    y = np.array([[0], [1], [2], [0], [1], [2], [0], [1]], np.float32)
    stats = _core.BatchStats()
    model._net.train_batches(stats, X, y, None, 0, 4, 2)
    assert stats.samples == 8 and int(np.asarray(stats.confusion).sum()) == 8
