"""Argument checks shared by the public API.

Every check runs before any state changes and raises ``ValueError`` or ``TypeError`` that names
the argument and echoes the value received, the way Keras words its errors.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Tuple

import numpy as np

from lamina import _core


def describe(value: Any) -> str:
    """A short, bounded rendering of a value for an error message."""
    if isinstance(value, np.ndarray):
        if value.size <= 6:
            return f"array({value.tolist()!r}, dtype={value.dtype})"
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, received {name}={describe(value)}")
    return int(value)


def bounded_int(value: Any, name: str, low: int, high: int) -> int:
    """An integer in [low, high] (bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= int(value) <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], received {name}={describe(value)}")
    return int(value)


def verbosity(value: Any) -> int:
    """verbose=0 (silent), 1 (progress bar) or 2 (one line), as in Keras."""
    if isinstance(value, bool) or value not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, received verbose={describe(value)}")
    return int(value)


def non_negative_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, received {name}={describe(value)}")
    return int(value)


def finite_float(value: Any, name: str, *, low: Optional[float] = None, high: Optional[float] = None,
                 low_open: bool = False, high_open: bool = False) -> float:
    """A real number, optionally inside [low, high] (or open at either end)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, received {name}={describe(value)}")
    v = float(value)
    ok = np.isfinite(v)
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v < high if high_open else v <= high
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        rng = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
        raise ValueError(f"{name} must be a finite number in {rng}, received {name}={describe(value)}")
    return v


def as_array(value: Any, name: str) -> np.ndarray:
    """Any array-like as a numeric numpy array (no copy when already one)."""
    if value is None:
        raise ValueError(f"{name} is required, received {name}=None")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged lists and the like
        raise ValueError(f"{name} must be a rectangular numeric array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, received dtype {arr.dtype}")
    return arr


# check_finite reads this many bytes per call into the core, so an array larger than memory (an
# np.memmap) is checked without a copy and the offending element is located within one block.
_FINITE_BLOCK_BYTES = 64 * 2**20


def check_finite(arr: np.ndarray, name: str) -> None:
    """Rejects NaN and infinity, pointing at the first offending element."""
    if arr.dtype.kind != "f":
        return
    if arr.ndim == 0:
        arr = arr.reshape(1)
    row_bytes = max(1, arr.itemsize * (arr.size // max(1, len(arr))))
    rows = max(1, _FINITE_BLOCK_BYTES // row_bytes)
    for start in range(0, len(arr), rows):
        block = arr[start:start + rows]
        if _core.all_finite(block):
            continue
        first = np.argwhere(~np.isfinite(block))[0]
        where = (int(first[0]) + start,) + tuple(int(i) for i in first[1:])
        raise ValueError(f"{name} contains NaN or infinity (first at index {where}: {arr[where]})")


def features(value: Any, name: str, dtype: Any, dims: Optional[Tuple[int, ...]] = None,
             defer_finite: bool = False) -> np.ndarray:
    """A (samples, values) block in the model's dtype, contiguous, finite, non-empty.

    ``dims`` is one sample's shape (the model's input shape): x may be (samples, *dims) or already
    flat, (samples, prod(dims)); samples are flattened row-major, a view (no copy) of a
    C-contiguous x. Without ``dims`` any sample shape is taken.

    ``defer_finite``: when ``value`` is already such a block (no copy is made), skip the NaN /
    infinity check: the caller has the core check each batch as it goes (see models.predict),
    and calls ``check_finite`` for the message if the core finds one."""
    arr = as_array(value, name)
    if arr.ndim < 2:
        hint = " (use x.reshape(-1, 1) for a single feature)" if arr.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D (samples, features), received shape {arr.shape}{hint}")
    if arr.shape[0] == 0 or math.prod(arr.shape[1:]) == 0:
        raise ValueError(f"{name} must not be empty, received shape {arr.shape}")
    if dims is not None and arr.shape[1:] != tuple(dims):
        size = math.prod(dims)
        if len(dims) == 1 and arr.ndim > 2:
            raise ValueError(f"{name} must be 2-D (samples, features) for the model's input shape {tuple(dims)}, "
                             f"received shape {arr.shape} (flatten each sample first, e.g. x.reshape(len(x), -1), "
                             f"or declare Input(shape={arr.shape[1:]}))")
        if len(dims) == 1:
            raise ValueError(f"{name} must have {size} features per sample (the model's input size), "
                             f"received shape {arr.shape}")
        if arr.ndim != 2 or arr.shape[1] != size:
            raise ValueError(f"{name} must hold samples of shape {tuple(dims)} (the model's input shape), or "
                             f"flattened ones of {size} values, received shape {arr.shape}")
    if arr.ndim > 2:
        arr = arr.reshape(arr.shape[0], -1)  # a view when arr is C-contiguous
    if defer_finite and arr.dtype == dtype and arr.flags.c_contiguous:
        return arr
    check_finite(arr, name)
    return cast(arr, dtype, name)


def cast(arr: np.ndarray, dtype: Any, name: str) -> np.ndarray:
    """A contiguous copy (or the array itself) in ``dtype``; values that overflow it are an error."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(arr, dtype=dtype)
    converted = out.dtype != arr.dtype  # only a conversion can overflow (e.g. 1e300 into float32)
    if converted and out.dtype.kind == "f" and not _core.all_finite(out):
        raise ValueError(f"{name} holds values too large for {np.dtype(dtype).name}")
    return out


def require_built(model: Any, what: str) -> None:
    """A model whose input size is known (so its weights exist), or a ValueError saying how."""
    if not model.built:
        raise ValueError(f"{what}() needs a built model: give the first layer input_shape=(features,), "
                         f"call model.build((None, features)) or fit it first")


def require_compiled(model: Any, what: str) -> None:
    if model.loss is None:
        raise ValueError(f"{what}() needs a compiled model: call model.compile(optimizer, loss) first")
