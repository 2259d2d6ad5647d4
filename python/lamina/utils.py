"""Small helpers for preparing labels.

>>> import lamina as lm
>>> lm.utils.to_categorical([0, 2, 1])
array([[1., 0., 0.],
       [0., 0., 1.],
       [0., 1., 0.]], dtype=float32)
"""

from __future__ import annotations

import numbers
from typing import Any, Optional

import numpy as np

__all__ = ["to_categorical"]


def _describe(a: np.ndarray) -> str:
    """A short, bounded description of an array for error messages."""
    if a.size <= 8:
        return repr(a.tolist())
    return f"array of shape {a.shape} and dtype {a.dtype}"


def to_categorical(y: Any, num_classes: Optional[int] = None, dtype: Any = "float32") -> np.ndarray:
    """Turn integer class labels into one-hot rows, like ``keras.utils.to_categorical``.

    ``y`` holds class indices ``0 .. num_classes - 1``; it may be 1-D, ``(n, 1)`` or any
    other shape (a trailing axis of length 1 is dropped). The result has shape
    ``y.shape + (num_classes,)`` (after that drop). ``num_classes`` defaults to
    ``max(y) + 1``. Floats are accepted when they hold whole numbers (``2.0``).

    >>> to_categorical([[1], [0]], num_classes=3, dtype="float64")
    array([[0., 1., 0.],
           [1., 0., 0.]])
    """
    labels = np.asarray(y)
    if labels.dtype == object or not (
        np.issubdtype(labels.dtype, np.integer)
        or np.issubdtype(labels.dtype, np.floating)
        or labels.dtype == np.bool_
    ):
        raise TypeError(
            f"y must hold integer class indices, received y={_describe(labels)} "
            f"with dtype {labels.dtype}"
        )
    if labels.ndim == 0:
        raise ValueError(f"y must be an array of class indices, received the scalar y={labels.item()!r}")
    if labels.size == 0:
        raise ValueError(f"y must not be empty, received y with shape {labels.shape}")

    if np.issubdtype(labels.dtype, np.floating):
        if np.isnan(labels).any():
            raise ValueError(f"y must not contain NaN, received y={_describe(labels)}")
        if not np.isfinite(labels).all() or (labels != np.round(labels)).any():
            bad = labels[~np.isfinite(labels) | (labels != np.round(labels))].ravel()[0]
            raise ValueError(
                f"y must hold whole-number class indices, received y={_describe(labels)} "
                f"containing {bad!r}"
            )

    smallest = labels.min()
    if smallest < 0:
        raise ValueError(
            f"y must hold non-negative class indices, received y={_describe(labels)} "
            f"containing {smallest.item()!r}"
        )
    labels = labels.astype(np.int64)
    largest = int(labels.max())

    if num_classes is None:
        num_classes = largest + 1
    elif isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise TypeError(f"num_classes must be a positive integer or None, received num_classes={num_classes!r}")
    elif num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, received num_classes={num_classes!r}")
    elif largest >= num_classes:
        raise ValueError(
            f"num_classes={num_classes!r} is too small: y contains the class index {largest}, "
            f"so num_classes must be at least {largest + 1}"
        )
    num_classes = int(num_classes)

    shape = labels.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    flat = labels.reshape(-1)
    one_hot = np.zeros((flat.size, num_classes), dtype=dtype)
    one_hot[np.arange(flat.size), flat] = 1
    return one_hot.reshape(shape + (num_classes,))
