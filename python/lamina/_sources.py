"""Batch sources for fit / evaluate / predict: a ``lamina.data.Dataset`` or a Python generator.

A source says how many batches an epoch has and fetches one by key: a Dataset by index (in an
order drawn from the model's seed when shuffled), a generator by calling ``next`` (its key is
only a position). Arrays do not come through here; they go to the core whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, List, Optional, Tuple

from lamina import _core
from lamina import _validation as check
from lamina._prefetch import Exhausted
from lamina.data import Dataset


def is_stream(x: Any) -> bool:
    """True for the inputs that deliver batches one at a time."""
    return isinstance(x, (Dataset, Iterator))


class Source:
    """``count`` batches per epoch from ``data`` (a Dataset, or a generator with ``steps``)."""

    def __init__(self, data: Any, steps: Any, name: str, steps_name: str) -> None:
        self.data, self.name = data, name
        self.is_dataset = isinstance(data, Dataset)
        if steps is not None:
            steps = check.positive_int(steps, steps_name)
        if self.is_dataset:
            size = len(data)
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                raise ValueError(f"{name}: len() of a Dataset must be a positive number of batches, "
                                 f"received {check.describe(size)}")
            if steps is not None and steps > size:
                raise ValueError(f"{steps_name}={steps} is more than the {size} batches of {name}")
            self.count = steps if steps is not None else size
        else:
            if steps is None:
                raise ValueError(f"{name} is a generator, which has no length: give {steps_name} (batches per "
                                 f"epoch) as well")
            self.count = steps

    def keys(self, seed: int, epoch: int, shuffle: bool) -> List[int]:
        """The keys of one epoch's batches, in the order they are trained."""
        if self.is_dataset and shuffle:
            return [int(k) for k in _core.shuffled_order(len(self.data), seed, epoch)[:self.count]]
        return list(range(self.count))

    def fetch(self, key: int) -> Any:
        if self.is_dataset:
            return self.data[key]
        try:
            return next(self.data)
        except StopIteration:
            raise Exhausted(f"{self.name} stopped after {key} of its {self.count} batches") from None

    def on_epoch_end(self) -> None:
        if self.is_dataset:
            self.data.on_epoch_end()


def split_item(item: Any, where: str, targets: bool) -> Tuple[Any, Any, Any]:
    """(x, y, w) from a delivered batch: (x, y) or (x, y, w); for prediction also a bare x."""
    if isinstance(item, tuple) and len(item) in (2, 3):
        return item if len(item) == 3 else (item[0], item[1], None)
    if not targets:
        return (item[0] if isinstance(item, tuple) and len(item) == 1 else item), None, None
    raise ValueError(f"{where} must be a tuple (x, y) or (x, y, sample_weight), received {check.describe(item)}")


def optional(data: Any, steps: Any, name: str, steps_name: str) -> Optional[Source]:
    return Source(data, steps, name, steps_name) if is_stream(data) else None
