"""Preparing data for training: a train/dev/test split, feature standardization, and
``Dataset``, the batch-by-batch source for data that does not fit in memory.

>>> import lamina as lm
>>> x, y = lm.datasets.load_digits()
>>> (x_tr, y_tr), (x_dev, y_dev), (x_te, y_te) = lm.data.train_dev_test_split(x, y, seed=0)
>>> scaler = lm.data.Standardizer().fit(x_tr)
>>> x_tr, x_dev, x_te = scaler.transform(x_tr), scaler.transform(x_dev), scaler.transform(x_te)
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = ["Dataset", "Standardizer", "train_dev_test_split"]

_DEFAULT_RATIOS = (0.6, 0.2, 0.2)
_RATIO_TOLERANCE = 1e-6

Split = Tuple[np.ndarray, np.ndarray]


# --------------------------------------------------------------------------------------
# Dataset: batches delivered one at a time
# --------------------------------------------------------------------------------------


class Dataset:
    """A source of batches, Keras's ``PyDataset`` shape: subclass it and define ``__len__``
    (the number of batches in an epoch) and ``__getitem__(i)``, returning the ``i``-th batch
    as ``(x_batch, y_batch)`` or ``(x_batch, y_batch, sample_weight_batch)``; ``predict`` also
    takes a bare ``x_batch``. ``on_epoch_end()`` is called after every epoch of ``fit``.

    ``fit``, ``evaluate`` and ``predict`` take one in place of ``x``. A background thread loads
    the next batches (calling ``__getitem__``, which may read files; at most five ahead) while the
    core trains the current ones with the GIL released (the batches already loaded go to the core
    in one call). Batches are requested in order ``0 .. len - 1`` (with
    ``fit(shuffle=True)``, in an order drawn from the model's seed and epoch), one at a time,
    so ``__getitem__`` need not be thread-safe and the results do not depend on the timing.

    >>> import numpy as np
    >>> class Halves(Dataset):
    ...     def __init__(self, x, y):
    ...         self.x, self.y = x, y
    ...     def __len__(self):
    ...         return 2
    ...     def __getitem__(self, i):
    ...         half = len(self.x) // 2
    ...         return self.x[i * half:(i + 1) * half], self.y[i * half:(i + 1) * half]
    >>> data = Halves(np.zeros((8, 3)), np.zeros((8, 1)))
    >>> len(data), data[1][0].shape
    (2, (4, 3))
    """

    def __len__(self) -> int:
        raise TypeError(f"{type(self).__name__} must define __len__ (the number of batches per epoch)")

    def __getitem__(self, index: int) -> Any:
        raise TypeError(f"{type(self).__name__} must define __getitem__(i), returning batch i as (x, y) or (x, y, w)")

    def on_epoch_end(self) -> None:
        """Called after each epoch of ``fit`` (for example to reshuffle files); does nothing here."""


# --------------------------------------------------------------------------------------
# train / dev / test split
# --------------------------------------------------------------------------------------


def train_dev_test_split(
    x: Any,
    y: Any,
    ratios: Sequence[float] = _DEFAULT_RATIOS,
    sizes: Optional[Sequence[int]] = None,
    shuffle: bool = True,
    stratify: Any = None,
    seed: Any = None,
) -> Tuple[Split, Split, Split]:
    """Split ``(x, y)`` into training, development (validation) and test sets.

    ``ratios`` gives the fraction of samples in each split (it must sum to 1); or pass
    ``sizes``, the exact number of samples per split (the rest are left out). Split sizes
    from ratios are rounded so they add up to ``len(x)``, and every split with a positive
    ratio gets at least one sample. ``stratify`` (usually ``y``) keeps each class's share
    the same in every split, as closely as whole samples allow. ``seed`` (an int or a
    ``numpy.random.Generator``) makes the shuffle reproducible.

    >>> import numpy as np
    >>> x, y = np.arange(40.0).reshape(20, 2), np.arange(20) % 2
    >>> (x_tr, y_tr), (x_dev, y_dev), (x_te, y_te) = train_dev_test_split(
    ...     x, y, ratios=(0.8, 0.1, 0.1), stratify=y, seed=42)
    """
    x_arr = np.asarray(x)
    y_arr = np.asarray(y)
    if x_arr.ndim == 0:
        raise ValueError(f"x must be an array of samples, received the scalar x={x_arr.item()!r}")
    if y_arr.ndim == 0:
        raise ValueError(f"y must be an array of samples, received the scalar y={y_arr.item()!r}")
    n = len(x_arr)
    if len(y_arr) != n:
        raise ValueError(
            f"x and y must have the same number of samples, received len(x)={n} and len(y)={len(y_arr)}"
        )
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False, received shuffle={shuffle!r}")

    counts = _split_counts(n, ratios, sizes)
    rng = _make_rng(seed)

    if stratify is not None:
        if not shuffle:
            raise ValueError("stratify requires shuffle=True, received shuffle=False with stratify")
        order = _stratified_order(stratify, n, counts, rng)
    elif shuffle:
        order = rng.permutation(n)
    else:
        order = np.arange(n)

    bounds = np.cumsum((0,) + counts)
    return tuple(  # type: ignore[return-value]
        (x_arr[order[lo:hi]], y_arr[order[lo:hi]]) for lo, hi in zip(bounds[:-1], bounds[1:])
    )


def _split_counts(n: int, ratios: Sequence[float], sizes: Optional[Sequence[int]]) -> Tuple[int, int, int]:
    """Number of samples in (train, dev, test)."""
    if sizes is not None:
        if tuple(_as_sequence(ratios, "ratios")) != _DEFAULT_RATIOS:
            raise TypeError(f"pass either ratios or sizes, not both; received ratios={ratios!r} and sizes={sizes!r}")
        values = _as_sequence(sizes, "sizes")
        if len(values) != 3 or any(
            isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) for v in values
        ):
            raise TypeError(f"sizes must be three integers (train, dev, test), received sizes={sizes!r}")
        if any(v < 0 for v in values):
            raise ValueError(f"sizes must not be negative, received sizes={sizes!r}")
        if sum(values) > n:
            raise ValueError(
                f"sizes add up to {sum(values)}, more than the {n} samples available; received sizes={sizes!r}"
            )
        return int(values[0]), int(values[1]), int(values[2])

    values = _as_sequence(ratios, "ratios")
    if len(values) != 3 or any(isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) for v in values):
        raise TypeError(f"ratios must be three numbers (train, dev, test), received ratios={ratios!r}")
    fractions = [float(v) for v in values]
    if not all(math.isfinite(v) for v in fractions):
        raise ValueError(f"ratios must be finite numbers, received ratios={ratios!r}")
    if any(v < 0 for v in fractions):
        raise ValueError(f"ratios must not be negative, received ratios={ratios!r}")
    if abs(sum(fractions) - 1.0) > _RATIO_TOLERANCE:
        raise ValueError(f"ratios must sum to 1, received ratios={ratios!r} (sum {sum(fractions):g})")

    needed = sum(1 for v in fractions if v > 0)
    if n < needed:
        raise ValueError(
            f"too few samples: {n} cannot fill {needed} non-empty splits; received ratios={ratios!r} and len(x)={n}"
        )
    # Largest-remainder rounding: counts add up to n exactly.
    exact = [v * n for v in fractions]
    counts = [math.floor(e) for e in exact]
    by_remainder = sorted(range(3), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    # A split asked for a share must not come out empty: take a sample from the largest.
    for i in range(3):
        if fractions[i] > 0 and counts[i] == 0:
            counts[counts.index(max(counts))] -= 1
            counts[i] = 1
    return counts[0], counts[1], counts[2]


def _stratified_order(stratify: Any, n: int, counts: Tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A sample order whose consecutive blocks of ``counts`` are stratified by class.

    Samples are grouped by class (classes and members in random order). Split labels
    are laid out evenly interleaved, so every class - a contiguous run of samples -
    receives each split in proportion to its size, give or take a sample or two.
    """
    labels = np.asarray(stratify)
    if labels.ndim == 0 or len(labels) != n:
        got = "a scalar" if labels.ndim == 0 else f"length {len(labels)}"
        raise ValueError(f"stratify must have one label per sample ({n}), received stratify of {got}")
    if labels.ndim == 1:
        classes, class_of = np.unique(labels, return_inverse=True)
    else:  # e.g. one-hot rows: each distinct row is a class
        classes, class_of = np.unique(labels.reshape(n, -1), axis=0, return_inverse=True)
    class_of = class_of.reshape(-1)
    members = np.bincount(class_of, minlength=len(classes))
    if members.min() < 2:
        rare = classes[int(np.argmin(members))].tolist()
        raise ValueError(
            f"stratify: class {rare!r} has only 1 sample; each class needs at least 2 to be stratified"
        )

    # Samples grouped by class: random class order, random order inside each class.
    class_rank = rng.permutation(len(classes))[class_of]
    by_class = np.lexsort((rng.random(n), class_rank))

    # Split labels 0, 1, 2 (and 3 = left out) spread evenly along the n positions.
    all_counts = list(counts) + [n - sum(counts)]
    split_id = np.concatenate([np.full(c, s) for s, c in enumerate(all_counts)])
    position = np.concatenate([(np.arange(c) + 0.5) / c for c in all_counts if c > 0])
    assigned = split_id[np.argsort(position, kind="stable")]

    # Gather each split's samples together, keeping the random order within it.
    split_of_sample = np.empty(n, dtype=np.int64)
    split_of_sample[by_class] = assigned
    shuffled = rng.permutation(n)
    return shuffled[np.argsort(split_of_sample[shuffled], kind="stable")]


def _as_sequence(value: Any, name: str) -> Sequence[Any]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise TypeError(f"{name} must be a sequence of three numbers, received {name}={value!r}")
    return list(value)


def _make_rng(seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be None, an int or a numpy.random.Generator, received seed={seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, received seed={seed!r}")
    return np.random.default_rng(int(seed))


# --------------------------------------------------------------------------------------
# Standardizer
# --------------------------------------------------------------------------------------


def guarded_scale(std: np.ndarray, epsilon: float, constant: Optional[np.ndarray] = None) -> np.ndarray:
    """The divisor for each feature: its standard deviation, or 1 where that is below ``epsilon``
    (or the feature is ``constant``), so such features map to 0, not NaN or inf.

    >>> guarded_scale(np.array([2.0, 0.0, 1e-9]), 1e-7)
    array([2., 1., 1.])
    """
    small = std < epsilon
    return np.where(small if constant is None else constant | small, 1.0, std)


class Standardizer:
    """Rescale each feature to mean 0 and standard deviation 1, using training statistics.

    ``fit`` learns the per-feature mean and (population) standard deviation in float64;
    ``transform`` computes ``(x - mean_) / scale_``. Constant features (standard deviation
    below ``epsilon``) get ``scale_ == 1``, so they become 0 rather than NaN or inf.
    Results are float32 unless the input is float64.

    >>> import numpy as np
    >>> x_train, x_test = np.array([[1.0, 10.0], [3.0, 10.0]]), np.array([[2.0, 10.0]])
    >>> scaler = Standardizer().fit(x_train)
    >>> x_train_s = scaler.transform(x_train)
    >>> scaler.transform(x_test)      # the training mean and scale; a constant feature becomes 0
    array([[0., 0.]])
    """

    def __init__(self, epsilon: float = 1e-7) -> None:
        if isinstance(epsilon, (bool, np.bool_)) or not isinstance(epsilon, numbers.Real):
            raise TypeError(f"epsilon must be a non-negative number, received epsilon={epsilon!r}")
        if not math.isfinite(float(epsilon)) or epsilon < 0:
            raise ValueError(f"epsilon must be a non-negative finite number, received epsilon={epsilon!r}")
        self.epsilon: float = float(epsilon)
        self.mean_: Optional[np.ndarray] = None
        self.scale_: Optional[np.ndarray] = None
        self.n_features_in_: Optional[int] = None

    def __repr__(self) -> str:
        fitted = f", n_features_in_={self.n_features_in_}" if self.is_fitted else ""
        return f"Standardizer(epsilon={self.epsilon!r}{fitted})"

    @property
    def is_fitted(self) -> bool:
        return self.mean_ is not None

    # -- learning and applying -------------------------------------------------------

    def fit(self, x: Any) -> "Standardizer":
        """Learn per-feature mean and scale from ``x`` of shape ``(samples, features)``."""
        data = self._as_2d(x, "x")
        if len(data) == 0:
            raise ValueError(f"fit needs at least one sample, received x with shape {data.shape}")
        if not np.isfinite(data).all():
            raise ValueError("x must not contain NaN or infinite values, received x with non-finite entries")
        mean = data.mean(axis=0, dtype=np.float64)
        std = data.std(axis=0, dtype=np.float64)
        # Exactly constant columns: take their value as the mean, so they map to exactly 0.
        constant = (data == data[:1]).all(axis=0)
        mean[constant] = data[0, constant]
        scale = guarded_scale(std, self.epsilon, constant)
        self.mean_ = mean
        self.scale_ = scale
        self.n_features_in_ = int(data.shape[1])
        return self

    def transform(self, x: Any) -> np.ndarray:
        """Return ``(x - mean_) / scale_`` (float32, or float64 for float64 input)."""
        data, mean, scale = self._prepare(x, "transform")
        return (data - mean) / scale

    def fit_transform(self, x: Any) -> np.ndarray:
        """``fit(x)`` then ``transform(x)``."""
        return self.fit(x).transform(x)

    def inverse_transform(self, x: Any) -> np.ndarray:
        """Undo ``transform``: return ``x * scale_ + mean_``."""
        data, mean, scale = self._prepare(x, "inverse_transform")
        return data * scale + mean

    # -- saving and restoring ----------------------------------------------------------

    def get_config(self) -> Dict[str, Any]:
        """Constructor arguments, JSON-serializable: ``Standardizer.from_config(cfg)`` rebuilds it unfitted."""
        return {"epsilon": self.epsilon}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Standardizer":
        unknown = set(config) - {"epsilon"}
        if unknown:
            raise ValueError(f"unknown Standardizer config keys {sorted(unknown)}, received config={dict(config)!r}")
        return cls(**config)

    def state(self) -> Dict[str, np.ndarray]:
        """The learned statistics as float64 arrays: ``{"mean": ..., "scale": ...}``."""
        self._check_fitted("state")
        assert self.mean_ is not None and self.scale_ is not None
        return {"mean": self.mean_.copy(), "scale": self.scale_.copy()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], config: Optional[Mapping[str, Any]] = None) -> "Standardizer":
        """A fitted Standardizer from ``state()`` arrays (and optionally ``get_config()``)."""
        scaler = cls.from_config(config) if config is not None else cls()
        missing = {"mean", "scale"} - set(state)
        if missing:
            raise ValueError(f"Standardizer state needs the keys 'mean' and 'scale', missing {sorted(missing)}")
        mean = np.array(state["mean"], dtype=np.float64)
        scale = np.array(state["scale"], dtype=np.float64)
        if mean.ndim != 1 or scale.shape != mean.shape:
            raise ValueError(
                "Standardizer state arrays 'mean' and 'scale' must be 1-D and the same length, "
                f"received shapes {mean.shape} and {scale.shape}"
            )
        if not np.isfinite(mean).all() or not (np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("Standardizer state must have finite 'mean' and finite, positive 'scale' values")
        scaler.mean_, scaler.scale_, scaler.n_features_in_ = mean, scale, int(mean.size)
        return scaler

    # -- helpers -----------------------------------------------------------------------

    def _check_fitted(self, method: str) -> None:
        if not self.is_fitted:
            raise RuntimeError(f"this Standardizer is not fitted yet: call fit(x_train) before {method}()")

    @staticmethod
    def _as_2d(x: Any, name: str) -> np.ndarray:
        data = np.asarray(x)
        if not (np.issubdtype(data.dtype, np.number) or data.dtype == np.bool_) or np.iscomplexobj(data):
            raise TypeError(f"{name} must be a numeric array, received {name} with dtype {data.dtype}")
        if data.ndim != 2:
            raise ValueError(
                f"{name} must be 2-D (samples, features), received {name} with shape {data.shape}; "
                "reshape it, e.g. x.reshape(len(x), -1)"
            )
        return data

    def _prepare(self, x: Any, method: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._check_fitted(method)
        assert self.mean_ is not None and self.scale_ is not None
        data = self._as_2d(x, "x")
        if data.shape[1] != self.n_features_in_:
            raise ValueError(
                f"x has {data.shape[1]} features, but this Standardizer was fitted on "
                f"{self.n_features_in_} features (received x with shape {data.shape})"
            )
        dtype = np.float64 if data.dtype == np.float64 else np.float32
        return data.astype(dtype, copy=False), self.mean_.astype(dtype), self.scale_.astype(dtype)
