"""Metrics, by name or object. The C++ core tallies each batch as it runs (a confusion matrix
for classification, squared and absolute error sums for regression); a metric turns those tallies
into one number, so metrics cost nothing in the training loop.

Classification metrics need a rule that turns outputs into classes. ``accuracy`` picks it the
way Keras does: from the loss (sparse / categorical / binary cross-entropy) or, for other losses,
from the output width (one unit: threshold at 0.5; several: argmax).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

import numpy as np

from lamina import _core
from lamina._validation import describe

# How outputs become classes: the names of the core's MetricMode members.
ARGMAX_ONEHOT = _core.MetricMode.argmax_onehot.name
ARGMAX_SPARSE = _core.MetricMode.argmax_sparse.name
THRESHOLD = _core.MetricMode.threshold.name

# The one table of which targets each scoring mode reads, and which targets each kind of loss
# takes: compile() rejects every pair that disagrees, so the core never reads a target in a
# layout it was not written in.
LABELS, ROWS = "integer class labels", "one value per output"
MODE_LAYOUT = {ARGMAX_SPARSE: LABELS, ARGMAX_ONEHOT: ROWS, THRESHOLD: ROWS}
TARGET_LAYOUT = {"sparse": LABELS, "categorical": ROWS, "binary": ROWS, "regression": ROWS}
_LAYOUT_HINT = {
    ARGMAX_SPARSE: "use metrics=['accuracy'] or 'categorical_accuracy' with this loss, or "
                   "loss='sparse_categorical_crossentropy' for integer labels",
    ARGMAX_ONEHOT: "use metrics=['accuracy'] or 'sparse_categorical_accuracy' with integer labels",
    THRESHOLD: "use metrics=['accuracy'] or 'sparse_categorical_accuracy' with integer labels",
}


class Metric:
    """Base class: ``name`` (the key in History), the scoring ``mode`` it needs (None: any).

    >>> [(m.name, m.mode) for m in (lm.metrics.get("accuracy"), lm.metrics.get("binary_accuracy"))]
    [('accuracy', None), ('binary_accuracy', 'threshold')]
    """

    name = ""
    mode: Optional[str] = None
    needs_classes = False

    def result(self, stats: Any, mode: Optional[str] = None) -> float:
        """The metric's value from a ``_core.BatchStats`` tallied with scoring ``mode``."""
        raise TypeError(f"{type(self).__name__} does not define result()")

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class WeightedTallies:
    """The weighted tallies of a ``_core.BatchStats`` under the names metrics read, for Keras's
    ``weighted_metrics``: every sample counts with its weight. Without weights (the batches had
    none) they are the plain tallies, as a Keras weighted metric without sample_weight is.

    >>> stats = lm._core.BatchStats()
    >>> WeightedTallies(stats).elements
    0
    """

    def __init__(self, stats: Any) -> None:
        if stats.weight_sum > 0:
            self.confusion = stats.weighted_confusion
            self.squared_error, self.absolute_error = stats.weighted_squared_error, stats.weighted_absolute_error
            self.elements = stats.weighted_elements
        else:
            self.confusion = stats.confusion
            self.squared_error, self.absolute_error = stats.squared_error, stats.absolute_error
            self.elements = stats.elements


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


class Accuracy(Metric):
    """Fraction of samples (or outputs, for binary) whose predicted class is right.

    >>> model = lm.Sequential([lm.layers.Dense(3, activation="softmax", input_shape=(2,))], seed=0)
    >>> model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=[Accuracy()])
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> labels = model.predict(x, verbose=0).argmax(axis=1)  # the model is right on these labels
    >>> model.evaluate(x, labels, verbose=0)[1]
    1.0
    """

    name = "accuracy"
    needs_classes = True

    def __init__(self, name: str = "accuracy") -> None:
        self.name = name

    def result(self, stats: Any, mode: Optional[str] = None) -> float:
        c = stats.confusion
        total = c.sum()
        return float(np.trace(c) / total) if total else 0.0


class BinaryAccuracy(Accuracy):
    """Accuracy with every output a yes/no at threshold 0.5.

    >>> BinaryAccuracy().name, BinaryAccuracy().mode
    ('binary_accuracy', 'threshold')
    """

    mode = THRESHOLD

    def __init__(self, name: str = "binary_accuracy") -> None:
        super().__init__(name)


class CategoricalAccuracy(Accuracy):
    """Accuracy of argmax against one-hot targets.

    >>> model = lm.Sequential([lm.layers.Dense(3, activation="softmax", input_shape=(2,))], seed=0)
    >>> model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=[CategoricalAccuracy()])
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> wrong = np.eye(3)[(model.predict(x, verbose=0).argmax(axis=1) + 1) % 3]  # never the argmax
    >>> model.evaluate(x, wrong, verbose=0)[1]
    0.0
    """

    mode = ARGMAX_ONEHOT

    def __init__(self, name: str = "categorical_accuracy") -> None:
        super().__init__(name)


class SparseCategoricalAccuracy(Accuracy):
    """Accuracy of argmax against integer labels.

    >>> SparseCategoricalAccuracy().get_config(), SparseCategoricalAccuracy().mode
    ({'name': 'sparse_categorical_accuracy'}, 'argmax_sparse')
    """

    mode = ARGMAX_SPARSE

    def __init__(self, name: str = "sparse_categorical_accuracy") -> None:
        super().__init__(name)


class _PerClass(Metric):
    """Precision / recall / F1: of the positive class for binary outputs, else averaged over classes
    (``average="macro"``, the default) or weighted by support (``"weighted"``)."""

    needs_classes = True

    def __init__(self, average: str = "macro", name: Optional[str] = None) -> None:
        if average not in ("macro", "weighted"):
            raise ValueError(f"average must be 'macro' or 'weighted', received average={describe(average)}")
        self.average = average
        if name:
            self.name = name

    def _scores(self, c: np.ndarray) -> np.ndarray:
        raise TypeError(f"{type(self).__name__} does not define _scores()")

    def result(self, stats: Any, mode: Optional[str] = None) -> float:
        c = stats.confusion.astype(np.float64)
        scores = self._scores(c)
        if mode == THRESHOLD:  # yes/no outputs: the score of "yes"
            return float(scores[1])
        support = c.sum(axis=1)
        if self.average == "weighted":
            return float((scores * support).sum() / support.sum()) if support.sum() else 0.0
        return float(scores.mean())

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "average": self.average}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(average={self.average!r})"


class Precision(_PerClass):
    """tp / (tp + fp).

    >>> model = lm.Sequential([lm.layers.Dense(1, activation="sigmoid", kernel_initializer="zeros",
    ...                                        input_shape=(1,))])  # every prediction is 0.5
    >>> model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=[Precision()])
    >>> model.evaluate(np.zeros((4, 1)), np.array([0, 1, 1, 1]), verbose=0)[1]  # all "yes": 3 of 4 right
    0.75
    """

    name = "precision"

    def _scores(self, c: np.ndarray) -> np.ndarray:
        return _safe_divide(np.diag(c), c.sum(axis=0))


class Recall(_PerClass):
    """tp / (tp + fn).

    >>> model = lm.Sequential([lm.layers.Dense(1, activation="sigmoid", kernel_initializer="zeros",
    ...                                        input_shape=(1,))])  # every prediction is 0.5
    >>> model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=[Recall()])
    >>> model.evaluate(np.zeros((4, 1)), np.array([0, 1, 1, 1]), verbose=0)[1]  # every "yes" found
    1.0
    """

    name = "recall"

    def _scores(self, c: np.ndarray) -> np.ndarray:
        return _safe_divide(np.diag(c), c.sum(axis=1))


class F1Score(_PerClass):
    """2 tp / (2 tp + fp + fn): the harmonic mean of precision and recall.

    >>> model = lm.Sequential([lm.layers.Dense(1, activation="sigmoid", kernel_initializer="zeros",
    ...                                        input_shape=(1,))])  # every prediction is 0.5
    >>> model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=[F1Score()])
    >>> model.evaluate(np.zeros((4, 1)), np.array([0, 1, 1, 1]), verbose=0)[1]  # 2*3 / (2*3 + 1 + 0)
    0.857142...
    """

    name = "f1"

    def _scores(self, c: np.ndarray) -> np.ndarray:
        tp = np.diag(c)
        return _safe_divide(2 * tp, c.sum(axis=0) + c.sum(axis=1))


class MeanSquaredError(Metric):
    """Mean of (p - y)^2 over every output of every sample.

    >>> model = lm.Sequential([lm.layers.Dense(1, kernel_initializer="zeros", input_shape=(1,))])
    >>> model.compile(optimizer="sgd", loss="mae", metrics=[MeanSquaredError()])  # predictions are all 0
    >>> model.evaluate(np.zeros((2, 1)), np.array([[1.0], [3.0]]), verbose=0)  # [loss, mse]
    [2.0, 5.0]
    """

    name = "mean_squared_error"

    def __init__(self, name: str = "mean_squared_error") -> None:
        self.name = name

    def result(self, stats: Any, mode: Optional[str] = None) -> float:
        return stats.squared_error / stats.elements if stats.elements else 0.0


class MeanAbsoluteError(Metric):
    """Mean of |p - y| over every output of every sample.

    >>> model = lm.Sequential([lm.layers.Dense(1, kernel_initializer="zeros", input_shape=(1,))])
    >>> model.compile(optimizer="sgd", loss="mse", metrics=[MeanAbsoluteError(name="mae")])
    >>> model.evaluate(np.zeros((2, 1)), np.array([[1.0], [3.0]]), verbose=0)  # [loss, mae]
    [5.0, 2.0]
    """

    name = "mean_absolute_error"

    def __init__(self, name: str = "mean_absolute_error") -> None:
        self.name = name

    def result(self, stats: Any, mode: Optional[str] = None) -> float:
        return stats.absolute_error / stats.elements if stats.elements else 0.0


_BY_NAME = {
    "accuracy": Accuracy, "acc": Accuracy, "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy, "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "precision": Precision, "recall": Recall, "f1": F1Score, "f1_score": F1Score,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
}
NAMES = tuple(_BY_NAME)


def get(identifier: Union[str, Metric]) -> Metric:
    """A metric from a name or an instance.

    >>> get("accuracy")
    Accuracy()
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"unknown metric, received metrics entry {describe(identifier)}; "
                     f"expected one of {', '.join(NAMES)}")


_CLASSES = {cls.__name__: cls for cls in (Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
                                          Precision, Recall, F1Score, MeanSquaredError, MeanAbsoluteError)}


def serialize(metric: Metric) -> Dict[str, Any]:
    """``{"class_name": ..., "config": ...}``, JSON-able; ``deserialize`` inverts it.

    >>> serialize(Precision(average="weighted"))
    {'class_name': 'Precision', 'config': {'name': 'precision', 'average': 'weighted'}}
    """
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(entry: Dict[str, Any]) -> Metric:
    """The metric ``serialize`` described.

    >>> deserialize(serialize(Recall(average="weighted")))
    Recall(average='weighted')
    """
    cls = _CLASSES.get(entry.get("class_name", ""))
    if cls is None:
        raise ValueError(f"unknown metric class, received {describe(entry.get('class_name'))}")
    return cls(**entry.get("config", {}))


def scoring_mode(loss_kind: str, units: int, metrics: List[Any]) -> Optional[str]:
    """The one rule the core uses to turn outputs into classes for these metrics, or None.

    >>> scoring_mode("sparse", 10, [Accuracy()]), scoring_mode("regression", 1, [Accuracy()])
    ('argmax_sparse', 'threshold')
    >>> print(scoring_mode("regression", 1, [MeanSquaredError()]))  # no classes needed
    None
    """
    errors = [m.name for m in metrics if isinstance(m, (MeanSquaredError, MeanAbsoluteError))]
    if errors and TARGET_LAYOUT[loss_kind] != ROWS:
        raise ValueError(f"metrics={errors} need one-hot or real targets, not the integer labels of "
                         f"sparse_categorical_crossentropy")
    wanted = {m.mode for m in metrics if m.mode is not None}
    if len(wanted) > 1:
        raise ValueError(f"metrics ask for incompatible ways of scoring classes: {sorted(wanted)}")
    if wanted:
        mode = wanted.pop()
        layout = TARGET_LAYOUT[loss_kind]
        if MODE_LAYOUT[mode] != layout:
            names = [m.name for m in metrics if m.mode == mode]
            raise ValueError(f"metrics={names} score {MODE_LAYOUT[mode]} targets, but the loss's targets are "
                             f"{layout}; {_LAYOUT_HINT[mode]}")
        return mode
    if not any(m.needs_classes for m in metrics):
        return None
    if loss_kind == "sparse":
        return ARGMAX_SPARSE
    if loss_kind == "categorical":
        return ARGMAX_ONEHOT
    if loss_kind == "binary" or units == 1:
        return THRESHOLD
    return ARGMAX_ONEHOT
