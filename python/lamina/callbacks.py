"""Keras-style callbacks: hooks that ``fit`` calls as training goes.

Training runs in C++ chunks of batches (a fraction of a second each); ``on_batch_end`` is called
once per chunk, with ``batch`` the index of the chunk's last batch and ``logs`` the running epoch
averages so far. Setting ``model.stop_training = True`` from any hook stops ``fit`` after the
current chunk.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

Logs = Dict[str, float]


class Callback:
    """Base class; override the hooks you need. ``self.model`` is the model being trained and
    ``self.params`` holds ``epochs``, ``steps`` (batches per epoch), ``batch_size``, ``samples``
    and ``verbose``."""

    def __init__(self) -> None:
        self.model: Any = None
        self.params: Dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: Dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        """Called once before the first epoch."""

    def on_train_end(self, logs: Optional[Logs] = None) -> None:
        """Called once after the last epoch (also when stopped early)."""

    def on_epoch_begin(self, epoch: int, logs: Optional[Logs] = None) -> None:
        """Called at the start of each epoch (0-based)."""

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        """Called at the end of each epoch with its loss, metrics and val_ entries."""

    def on_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        """Called after each chunk of batches with the epoch's running averages."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class History(Callback):
    """Records each epoch's logs: ``history.history["loss"]``, ``["val_accuracy"]``, ...
    ``history.epoch`` lists the epoch numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.history: Dict[str, List[float]] = {}
        self.epoch: List[int] = []

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        self.history, self.epoch = {}, []

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def plot(self, metrics: Optional[Iterable[str]] = None) -> Any:
        """Learning curves: one panel per quantity (loss first), training vs validation per epoch.
        Needs matplotlib (``pip install lamina[plot]``); returns the figure."""
        from lamina.plotting import plot_history

        return plot_history(self, metrics)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


class CallbackList:
    """Calls a list of callbacks in order."""

    def __init__(self, callbacks: Iterable[Callback], model: Any, params: Dict[str, Any]) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)

    def __getattr__(self, hook: str) -> Any:
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call_all(*args: Any) -> None:
            for cb in self.callbacks:
                getattr(cb, hook)(*args)

        return call_all
