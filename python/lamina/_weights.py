"""Sample and class weights, Keras's way: checked here, applied by the C++ core.

Each sample's loss is multiplied by its weight and a batch's loss is the weighted sum divided by
the batch's number of samples (Keras's ``sum_over_batch_size``). ``class_weight`` maps each
sample's class (its integer label, the argmax of a one-hot row, or a single output rounded) to a
weight; classes it does not name weigh 1, as in Keras.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any, Optional

import numpy as np

from lamina import _core
from lamina._validation import describe


def sample_weights(value: Any, n_rows: int, dtype: Any, name: str = "sample_weight") -> np.ndarray:
    """``value`` as one finite, non-negative weight per row in ``dtype``, not all zero."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged lists and the like
        raise ValueError(f"{name} must be a 1-D array of numbers, one per sample: {exc}") from None
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold real numbers, received {name} of dtype {arr.dtype} "
                         f"({describe(value)})")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.shape != (n_rows,):
        raise ValueError(f"{name} must have shape ({n_rows},), one weight per sample, received shape {arr.shape}")
    if arr.dtype.kind == "f" and not _core.all_finite(arr):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"{name} must be finite, received {name}[{bad}]={arr[bad].item()!r}")
    negative = np.flatnonzero(arr < 0)
    if negative.size:
        raise ValueError(f"{name} must not be negative, received {name}[{negative[0]}]={arr[negative[0]].item()!r}")
    if n_rows and not arr.any():
        raise ValueError(f"{name} is all zero: no sample would count; received {describe(value)}")
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=dtype)
    if not _core.all_finite(out):
        raise ValueError(f"{name} holds values too large for {np.dtype(dtype).name}")
    return out


def class_table(class_weight: Any, n_classes: int) -> np.ndarray:
    """The weight of each class in [0, n_classes) (1 for classes the dict leaves out)."""
    if not isinstance(class_weight, Mapping):
        raise ValueError(f"class_weight must be a dict {{class index: weight}}, "
                         f"received class_weight={describe(class_weight)}")
    table = np.ones(n_classes, dtype=np.float64)
    for key, weight in class_weight.items():
        if isinstance(key, (bool, np.bool_)) or not isinstance(key, numbers.Integral) or not 0 <= int(key) < n_classes:
            raise ValueError(f"class_weight names class {key!r}, but the model's classes are the integers "
                             f"0 to {n_classes - 1}")
        if isinstance(weight, (bool, np.bool_)) or not isinstance(weight, numbers.Real) \
                or not np.isfinite(float(weight)) or weight < 0:
            raise ValueError(f"class_weight[{key!r}] must be a finite, non-negative number, "
                             f"received {describe(weight)}")
        table[int(key)] = float(weight)
    return table


def classes_of(targets: np.ndarray, sparse: bool) -> np.ndarray:
    """Each row's class from the targets as the core takes them (n, 1) or (n, units)."""
    if sparse or targets.shape[1] == 1:
        return np.rint(targets[:, 0]).astype(np.int64)  # labels, or a single output rounded (0/1)
    return np.argmax(targets, axis=1)


def from_class_weight(class_weight: Any, targets: np.ndarray, sparse: bool, n_classes: int,
                      dtype: Any) -> np.ndarray:
    """Per-sample weights from ``class_weight`` (checked as ``sample_weight`` is)."""
    table = class_table(class_weight, n_classes)
    classes = classes_of(targets, sparse)
    known = (classes >= 0) & (classes < n_classes)  # a regression target may round outside: weight 1, as in Keras
    weights = np.where(known, table[np.clip(classes, 0, n_classes - 1)], 1.0)
    if targets.shape[0] and not weights.any():
        raise ValueError(f"class_weight={describe(class_weight)} gives every sample weight 0: no sample would count")
    return sample_weights(weights, targets.shape[0], dtype, "class_weight")


def resolve(sample_weight: Any, class_weight: Any, targets: np.ndarray, sparse: bool, n_classes: int,
            dtype: Any) -> Optional[np.ndarray]:
    """The per-sample weights fit trains with, or None (unweighted)."""
    if sample_weight is not None and class_weight is not None:
        raise ValueError("pass sample_weight or class_weight, not both (as in Keras); multiply the class weights "
                         "into sample_weight to combine them")
    if sample_weight is not None:
        return sample_weights(sample_weight, targets.shape[0], dtype)
    if class_weight is not None:
        return from_class_weight(class_weight, targets, sparse, n_classes, dtype)
    return None
