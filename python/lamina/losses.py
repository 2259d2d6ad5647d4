"""Losses, by name or object, with Keras's names and reductions.

Each sample's loss is the mean over its outputs (MSE, MAE, Huber, binary cross-entropy) or the
sum over classes (categorical cross-entropies); a batch's loss is the mean over its samples, plus
any regularization penalty. The C++ core fuses softmax + categorical cross-entropy and sigmoid +
binary cross-entropy into the stable gradient ``(p - y) / batch``.

=====================================  ===========================================  ==============
loss                                   per-sample value                             targets ``y``
=====================================  ===========================================  ==============
``mean_squared_error`` (``mse``)       mean_j (p_j - y_j)^2                         ``(n, units)``
``mean_absolute_error`` (``mae``)      mean_j abs(p_j - y_j)                        ``(n, units)``
``huber``                              mean_j of 0.5 e^2 or delta (abs(e) - delta/2) ``(n, units)``
``binary_crossentropy``                -mean_j [y log p + (1 - y) log(1 - p)]       values in [0, 1]
``categorical_crossentropy``           -sum_j y_j log p_j                           one-hot rows
``sparse_categorical_crossentropy``    -log p_label                                 integer labels
=====================================  ===========================================  ==============
"""

from __future__ import annotations

from typing import Any, Dict, Union

import numpy as np

from lamina import _core
from lamina import _validation as check
from lamina._validation import describe, finite_float


class Loss:
    """Base class. ``kind`` says what targets look like: regression, binary, categorical, sparse.

    >>> [lm.losses.get(name).kind for name in ("mse", "binary_crossentropy", "sparse_categorical_crossentropy")]
    ['regression', 'binary', 'sparse']
    """

    name = ""
    kind = "regression"

    def __init__(self, from_logits: bool = False) -> None:
        if not isinstance(from_logits, bool):
            raise TypeError(f"from_logits must be True or False, received from_logits={describe(from_logits)}")
        if from_logits and self.kind == "regression":
            raise ValueError(f"from_logits applies to cross-entropies only, received it for {self.name}")
        self.from_logits = from_logits

    @property
    def delta(self) -> float:
        return 1.0

    def targets(self, y: Any, n_rows: int, units: int, dtype: Any, name: str = "y") -> np.ndarray:
        """``y`` checked against what this loss reads, as the core takes it: a contiguous
        ``(n_rows, units)`` block in ``dtype`` (``(n_rows, 1)`` labels for the sparse loss).
        A ValueError names ``name`` and the first offending entry.

        >>> lm.losses.get("mse").targets([1.0, 2.0], n_rows=2, units=1, dtype=np.float32).shape
        (2, 1)
        """
        arr = check.as_array(y, name)
        if arr.ndim == 0 or arr.shape[0] != n_rows:
            raise ValueError(f"{name} must have one entry per sample of x ({n_rows}), received shape {arr.shape}")
        check.check_finite(arr, name)
        return self._shaped(arr, n_rows, units, dtype, name)

    def _shaped(self, arr: np.ndarray, n_rows: int, units: int, dtype: Any, name: str) -> np.ndarray:
        if arr.ndim == 1 and units == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2 or arr.shape[1] != units:
            hint = ""
            if arr.ndim == 1 and self.kind == "categorical":
                hint = (f"; integer labels need lm.utils.to_categorical(y, {units}) or "
                        f"loss='sparse_categorical_crossentropy'")
            raise ValueError(f"{name} must have shape ({n_rows}, {units}) to match the model's {units} outputs, "
                             f"received shape {arr.shape}{hint}")
        if self.kind in ("binary", "categorical"):
            outside = np.argwhere((arr < 0) | (arr > 1))
            if outside.size:
                where = tuple(int(i) for i in outside[0])
                raise ValueError(f"{name} must hold probabilities in [0, 1] for {self.name}, "
                                 f"received {name}[{where}]={arr[where]!r}")
        return check.cast(arr, dtype, name)

    def _core_config(self) -> _core.LossConfig:
        """The typed loss configuration the network trains on."""
        return _core.LossConfig(kind=_core.Loss[self.name], from_logits=self.from_logits, delta=self.delta)

    def get_config(self) -> Dict[str, Any]:
        config: Dict[str, Any] = {"name": self.name}
        if self.kind != "regression":
            config["from_logits"] = self.from_logits
        return config

    def __repr__(self) -> str:
        extra = "from_logits=True" if self.from_logits else ""
        return f"{type(self).__name__}({extra})"


class MeanSquaredError(Loss):
    """``mean((p - y) ** 2)`` over outputs, then over samples.

    >>> model = lm.Sequential([lm.layers.Dense(1, kernel_initializer="zeros", input_shape=(1,))])
    >>> model.compile(optimizer="sgd", loss=MeanSquaredError())  # predictions are all 0
    >>> model.evaluate(np.zeros((2, 1)), np.array([[1.0], [3.0]]), verbose=0)  # (1 + 9) / 2
    5.0
    """

    name = "mean_squared_error"

    def __init__(self) -> None:
        super().__init__()


class MeanAbsoluteError(Loss):
    """``mean(|p - y|)`` over outputs, then over samples.

    >>> model = lm.Sequential([lm.layers.Dense(1, kernel_initializer="zeros", input_shape=(1,))])
    >>> model.compile(optimizer="sgd", loss=MeanAbsoluteError())  # predictions are all 0
    >>> model.evaluate(np.zeros((2, 1)), np.array([[1.0], [-3.0]]), verbose=0)  # (1 + 3) / 2
    2.0
    """

    name = "mean_absolute_error"

    def __init__(self) -> None:
        super().__init__()


class Huber(Loss):
    """Quadratic for ``|e| <= delta``, linear beyond: ``0.5 e^2`` or ``delta (|e| - delta / 2)``.

    >>> Huber(delta=2.0).get_config()
    {'name': 'huber', 'delta': 2.0}
    >>> model = lm.Sequential([lm.layers.Dense(1, kernel_initializer="zeros", input_shape=(1,))])
    >>> model.compile(optimizer="sgd", loss=Huber(delta=1.0))  # predictions are all 0
    >>> model.evaluate(np.zeros((2, 1)), np.array([[0.5], [3.0]]), verbose=0)  # (0.125 + 2.5) / 2
    1.3125
    """

    name = "huber"

    def __init__(self, delta: float = 1.0) -> None:
        super().__init__()
        self._delta = finite_float(delta, "delta", low=0.0, low_open=True)

    @property
    def delta(self) -> float:
        return self._delta

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "delta": self._delta}

    def __repr__(self) -> str:
        return f"Huber(delta={self._delta})"


class BinaryCrossentropy(Loss):
    """Binary cross-entropy; targets in [0, 1], one or more independent yes/no outputs.

    >>> model = lm.Sequential([lm.layers.Dense(1, activation="sigmoid", kernel_initializer="zeros",
    ...                                        input_shape=(1,))])  # every prediction is 0.5
    >>> model.compile(optimizer="sgd", loss=BinaryCrossentropy())
    >>> round(model.evaluate(np.zeros((2, 1)), np.array([0, 1]), verbose=0), 6)  # log(2)
    0.693147
    """

    name = "binary_crossentropy"
    kind = "binary"


class CategoricalCrossentropy(Loss):
    """Cross-entropy against one-hot (or probability) rows; pair with ``softmax``.

    >>> model = lm.Sequential([lm.layers.Dense(4, activation="softmax", kernel_initializer="zeros",
    ...                                        input_shape=(2,))])  # uniform: p = 1/4 per class
    >>> model.compile(optimizer="sgd", loss=CategoricalCrossentropy())
    >>> round(model.evaluate(np.zeros((1, 2)), np.array([[0, 0, 1, 0]]), verbose=0), 6)  # log(4)
    1.386294
    """

    name = "categorical_crossentropy"
    kind = "categorical"


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy against integer class labels ``0 .. units - 1``; pair with ``softmax``.

    >>> SparseCategoricalCrossentropy(from_logits=True)
    SparseCategoricalCrossentropy(from_logits=True)
    >>> SparseCategoricalCrossentropy().get_config()
    {'name': 'sparse_categorical_crossentropy', 'from_logits': False}
    """

    name = "sparse_categorical_crossentropy"
    kind = "sparse"

    def _shaped(self, arr: np.ndarray, n_rows: int, units: int, dtype: Any, name: str) -> np.ndarray:
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            hint = " (one-hot targets go with loss='categorical_crossentropy')" if arr.ndim == 2 else ""
            raise ValueError(f"{name} must hold integer class labels of shape ({n_rows},) for "
                             f"sparse_categorical_crossentropy, received shape {arr.shape}{hint}")
        bad = np.flatnonzero((arr != np.round(arr)) | (arr < 0) | (arr >= units))
        if bad.size:
            raise ValueError(f"{name} must hold integer labels in [0, {units - 1}] (the model has {units} outputs), "
                             f"received {name}[{bad[0]}]={arr[bad[0]]!r}")
        return check.cast(arr.reshape(-1, 1), dtype, name)


_BY_NAME = {cls.name: cls for cls in (MeanSquaredError, MeanAbsoluteError, Huber, BinaryCrossentropy,
                                      CategoricalCrossentropy, SparseCategoricalCrossentropy)}
_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error"}
NAMES = tuple(_core.Loss.__members__)  # the core's losses; each has a class above


def get(identifier: Union[str, Loss, Dict[str, Any]]) -> Loss:
    """A loss from a name (or ``mse`` / ``mae``), an instance or a config dict.

    >>> get("sparse_categorical_crossentropy")
    SparseCategoricalCrossentropy()
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict) and identifier.get("name") in _BY_NAME:
        config = dict(identifier)
        return _BY_NAME[config.pop("name")](**config)
    if isinstance(identifier, str):
        key = _ALIASES.get(identifier.lower(), identifier.lower())
        if key in _BY_NAME:
            return _BY_NAME[key]()
    raise ValueError(f"unknown loss, received loss={describe(identifier)}; expected one of {', '.join(NAMES)}")
