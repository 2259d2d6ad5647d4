"""compile() rejects every metric whose target layout disagrees with the loss's, so no metric
ever reads targets written for another layout (this used to corrupt memory or give plausible but
wrong accuracies)."""

import numpy as np
import pytest

import lamina as lm
from lamina import metrics

MISMATCHED = [
    ("mse", "sparse_categorical_accuracy"),
    ("binary_crossentropy", "sparse_categorical_accuracy"),
    ("categorical_crossentropy", "sparse_categorical_accuracy"),
    ("sparse_categorical_crossentropy", "binary_accuracy"),
    ("sparse_categorical_crossentropy", "categorical_accuracy"),
    ("sparse_categorical_crossentropy", "mse"),
    ("sparse_categorical_crossentropy", "mae"),
]


def _model():
    return lm.Sequential([lm.layers.Dense(3, activation="softmax", input_shape=(2,))], seed=0)


@pytest.mark.parametrize("loss, metric", MISMATCHED)
def test_compile_rejects_metric_reading_another_target_layout(loss, metric):
    model = _model()
    with pytest.raises(ValueError, match="metrics="):
        model.compile("adam", loss, metrics=[metric])
    assert model.loss is None  # nothing changed


def test_mse_with_sparse_accuracy_on_huge_targets_is_an_error_not_a_crash():
    model = _model()
    with pytest.raises(ValueError):
        model.compile("adam", "mse", metrics=["sparse_categorical_accuracy"])
    model.compile("adam", "mse", metrics=["accuracy"])
    loss, acc = model.evaluate(np.zeros((4, 2)), np.full((4, 3), 1e6))
    assert np.isfinite(loss) and 0.0 <= acc <= 1.0


@pytest.mark.parametrize("loss", ["mse", "binary_crossentropy", "categorical_crossentropy",
                                  "sparse_categorical_crossentropy"])
def test_every_accepted_pair_reads_targets_in_its_own_layout(loss):
    for name in metrics.NAMES:
        metric = metrics.get(name)
        model = _model()
        try:
            model.compile("sgd", loss, metrics=[metric])
        except ValueError:
            continue
        mode = metrics.scoring_mode(model.loss.kind, 3, [metric])
        if mode is not None:
            assert metrics.MODE_LAYOUT[mode] == metrics.TARGET_LAYOUT[model.loss.kind]


def test_categorical_accuracy_with_categorical_loss_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 2))
    labels = rng.integers(0, 3, size=50)
    model = _model()
    model.compile("sgd", "categorical_crossentropy", metrics=["categorical_accuracy"])
    _, acc = model.evaluate(x, np.eye(3)[labels])
    truth = np.mean(model.predict(x).argmax(axis=1) == labels)
    assert acc == pytest.approx(truth)
