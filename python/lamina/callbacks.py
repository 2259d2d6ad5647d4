"""Keras-style callbacks: hooks that ``fit`` calls as training goes.

Training runs in C++ chunks of batches (a fraction of a second each); ``on_batch_end`` is called
once per chunk, with ``batch`` the index of the chunk's last batch and ``logs`` the running epoch
averages so far. Setting ``model.stop_training = True`` from any hook stops ``fit`` after the
current chunk.

Ready-made callbacks, with Keras's arguments and behaviour: ``EarlyStopping``,
``ModelCheckpoint``, ``LearningRateScheduler``, ``ReduceLROnPlateau``, ``CSVLogger``,
``TerminateOnNaN``. One deliberate difference: a ``monitor`` key missing from the epoch's logs
raises ``ValueError`` (naming the keys there are) where Keras warns and carries on.
"""

from __future__ import annotations

import csv
import inspect
import math
import numbers
import os
from typing import Any, Callable, Dict, Iterable, List, Optional

from lamina._validation import describe, finite_float, non_negative_int
from lamina.plotting import plot_history

Logs = Dict[str, float]


class Callback:
    """Base class; override the hooks you need. ``self.model`` is the model being trained and
    ``self.params`` holds ``epochs``, ``steps`` (batches per epoch), ``batch_size``, ``samples``
    and ``verbose``.

    >>> class PrintLoss(lm.callbacks.Callback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         print(f"epoch {epoch + 1}/{self.params['epochs']}: {sorted(logs)}")
    >>> model = lm.Sequential([lm.layers.Dense(1, input_shape=(2,))], seed=0)
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> _ = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0, callbacks=[PrintLoss()])
    epoch 1/2: ['loss']
    epoch 2/2: ['loss']
    """

    # In a distributed fit, a callback with root_only runs on rank 0 alone (files, display);
    # the others run on every rank, seeing the same global logs, so they decide alike.
    root_only = False

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
    ``history.epoch`` lists the epoch numbers. ``fit`` returns one.

    >>> model = lm.Sequential([lm.layers.Dense(1, input_shape=(2,))], seed=0)
    >>> model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    >>> history = model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=3, validation_split=0.25, verbose=0)
    >>> history.epoch, sorted(history.history)
    ([0, 1, 2], ['loss', 'mean_absolute_error', 'val_loss', 'val_mean_absolute_error'])
    """

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
        return plot_history(self, metrics)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


class CallbackList:
    """Calls a list of callbacks in order (internal plumbing for ``fit``; History goes last)."""

    def __init__(self, callbacks: Iterable[Callback], model: Any, params: Dict[str, Any]) -> None:
        callbacks = list(callbacks)
        # History goes last, as in Keras, so it records what other callbacks add to the logs
        # (e.g. ``learning_rate`` from LearningRateScheduler / ReduceLROnPlateau).
        self.callbacks = ([cb for cb in callbacks if not isinstance(cb, History)]
                          + [cb for cb in callbacks if isinstance(cb, History)])
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


# ---------------------------------------------------------------------------------- helpers
_MAX_HINTS = ("acc", "auc", "precision", "recall", "f1")


def _resolve_mode(mode: Any, monitor: str) -> str:
    """"min" or "max"; "auto" is "max" for accuracy-like names (acc, auc, precision, recall,
    f1), else "min"."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', received mode={describe(mode)}")
    if mode != "auto":
        return mode
    name = monitor.lower()
    return "max" if any(hint in name for hint in _MAX_HINTS) else "min"


def _check_monitor(monitor: Any) -> str:
    if not isinstance(monitor, str) or not monitor:
        raise ValueError(f"monitor must be the name of a logged quantity such as 'val_loss', "
                         f"received monitor={describe(monitor)}")
    return monitor


def _monitor_value(logs: Optional[Logs], monitor: str, owner: str) -> float:
    logs = logs or {}
    if monitor not in logs:
        available = ", ".join(repr(k) for k in logs) or "none"
        hint = " (val_ entries need validation_data or validation_split in fit)" if monitor.startswith("val_") else ""
        raise ValueError(f"{owner} monitors {monitor!r}, which is not in the epoch's logs{hint}; "
                         f"available: {available}")
    return float(logs[monitor])


def _check_verbose(verbose: Any) -> int:
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, received verbose={describe(verbose)}")
    return int(verbose)


def _current_lr(model: Any, owner: str) -> float:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise ValueError(f"{owner} needs a compiled model (model.optimizer is None)")
    return float(optimizer.learning_rate)


# ---------------------------------------------------------------------------------- monitors
class MonitorCallback(Callback):
    """A callback that watches one logged quantity: checks ``monitor`` and ``mode``, reads the
    value from an epoch's logs (naming the keys there are when it is missing) and decides what
    counts as an improvement. EarlyStopping, ModelCheckpoint and ReduceLROnPlateau share it.

    >>> watch = MonitorCallback(monitor="val_accuracy", min_delta=0.01)
    >>> watch.mode, watch._improves(0.95, 0.93), watch._improves(0.935, 0.93)
    ('max', True, False)
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", min_delta: float = 0) -> None:
        super().__init__()
        self.monitor = _check_monitor(monitor)
        self.mode = _resolve_mode(mode, self.monitor)
        self.min_delta = abs(finite_float(min_delta, "min_delta"))

    def _value(self, logs: Optional[Logs]) -> float:
        return _monitor_value(logs, self.monitor, type(self).__name__)

    def _improves(self, value: float, reference: Optional[float]) -> bool:
        """Whether ``value`` beats ``reference`` by more than ``min_delta``; with no reference
        yet, any value but NaN does (a NaN never improves)."""
        if reference is None:
            return not math.isnan(value)
        if self.mode == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta


# ---------------------------------------------------------------------------------- EarlyStopping
class EarlyStopping(MonitorCallback):
    """Stops training when ``monitor`` has stopped improving (Keras 3 semantics).

    An epoch improves on the best so far when ``current < best - min_delta`` (mode "min") or
    ``current > best + min_delta`` (mode "max"). Training stops once ``patience`` epochs in a row
    have not improved (epochs before ``start_from_epoch`` are ignored). With ``baseline``, the wait
    only restarts on an epoch that also beats the baseline. With ``restore_best_weights=True`` the
    weights of the best epoch are put back when training ends, whether or not it stopped early.

    >>> EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    EarlyStopping(monitor='val_loss', patience=3, mode='min', restore_best_weights=True)
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0, mode: str = "auto",
                 restore_best_weights: bool = False, start_from_epoch: int = 0, baseline: Optional[float] = None,
                 verbose: int = 0) -> None:
        super().__init__(monitor, mode, min_delta)
        self.patience = non_negative_int(patience, "patience")
        if not isinstance(restore_best_weights, bool):
            raise ValueError(f"restore_best_weights must be True or False, "
                             f"received restore_best_weights={describe(restore_best_weights)}")
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = non_negative_int(start_from_epoch, "start_from_epoch")
        self.baseline = None if baseline is None else finite_float(baseline, "baseline")
        self.verbose = _check_verbose(verbose)
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best: Optional[float] = None
        self.best_weights: Optional[List[Any]] = None
        self.best_epoch = 0

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        current = self._value(logs)
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # Nothing better seen yet: the current weights are the best.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._improves(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improves(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Optional[Logs] = None) -> None:
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        # best is None only if every monitored value was NaN: no epoch was ever best.
        if self.restore_best_weights and self.best_weights is not None and self.best is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def __repr__(self) -> str:
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, mode={self.mode!r}, "
                f"restore_best_weights={self.restore_best_weights})")


# ---------------------------------------------------------------------------------- ModelCheckpoint
class ModelCheckpoint(MonitorCallback):
    """Saves the model (``model.save``: weights, optimizer state, standardizer) after each epoch.

    ``filepath`` may hold format fields filled from the epoch number (1-based, as Keras) and the
    logs: ``"ckpt-{epoch:02d}-{val_loss:.3f}.lamina"``. With ``save_best_only=True`` a file is
    written only when ``monitor`` improves on the best value so far; a ``monitor`` missing from
    the logs raises ``ValueError`` at the end of the first epoch, listing the keys there are.
    Missing folders in the path are created, as in Keras.

    >>> import os, tempfile
    >>> model = lm.Sequential([lm.layers.Dense(1, input_shape=(2,))], seed=0)
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     checkpoint = ModelCheckpoint(os.path.join(tmp, "ckpt-{epoch:02d}.lamina"))
    ...     _ = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0, callbacks=[checkpoint])
    ...     print([os.path.basename(path) for path in checkpoint.saved])
    ['ckpt-01.lamina', 'ckpt-02.lamina']
    """

    root_only = True  # writes files: rank 0's alone in a distributed fit

    def __init__(self, filepath: Any, monitor: str = "val_loss", save_best_only: bool = False,
                 mode: str = "auto", verbose: int = 0) -> None:
        super().__init__(monitor, mode)
        if not isinstance(filepath, (str, os.PathLike)) or not os.fspath(filepath):
            raise ValueError(f"filepath must be a non-empty str or path, received filepath={describe(filepath)}")
        self.filepath = os.fspath(filepath)
        if not isinstance(self.filepath, str):
            raise ValueError(f"filepath must be a str or path, received filepath={describe(filepath)}")
        if not isinstance(save_best_only, bool):
            raise ValueError(f"save_best_only must be True or False, received save_best_only={describe(save_best_only)}")
        self.save_best_only = save_best_only
        self.verbose = _check_verbose(verbose)
        self.best: Optional[float] = None
        self.saved: List[str] = []  # paths written during the last fit, in order

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        self.saved = []

    def _path(self, epoch: int, logs: Logs) -> str:
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except KeyError as exc:
            raise ValueError(f"ModelCheckpoint filepath {self.filepath!r} names the field {exc.args[0]!r}, which "
                             f"is not in the epoch's logs; available: epoch, {', '.join(logs)}") from None
        except (ValueError, IndexError) as exc:
            raise ValueError(f"ModelCheckpoint could not format filepath {self.filepath!r}: {exc}") from None

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        logs = dict(logs or {})
        if self.save_best_only:
            current = self._value(logs)
            if not self._improves(current, self.best):
                if self.verbose:
                    print(f"Epoch {epoch + 1}: {self.monitor} did not improve from {self.best}")
                return
            previous, self.best = self.best, current
            path = self._path(epoch, logs)
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {previous} to {current}, "
                      f"saving model to {path}")
        else:
            path = self._path(epoch, logs)
            if self.verbose:
                print(f"Epoch {epoch + 1}: saving model to {path}")
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)  # as Keras does: "runs/{epoch}/model" just works
        self.model.save(path)
        self.saved.append(path)

    def __repr__(self) -> str:
        return (f"ModelCheckpoint({self.filepath!r}, monitor={self.monitor!r}, "
                f"save_best_only={self.save_best_only}, mode={self.mode!r})")


# ---------------------------------------------------------------------------------- learning rate
def _call_schedule(schedule: Callable[..., Any], epoch: int, lr: float) -> Any:
    try:
        inspect.signature(schedule).bind(epoch, lr)
    except TypeError:
        return schedule(epoch)  # the old one-argument form, schedule(epoch)
    except ValueError:  # no signature available (some builtins): try the Keras form
        pass
    return schedule(epoch, lr)


class LearningRateScheduler(Callback):
    """Sets the optimizer's learning rate at the start of each epoch to
    ``schedule(epoch, lr)`` (``epoch`` 0-based, ``lr`` the current rate; a one-argument
    ``schedule(epoch)`` works too) and logs it as ``learning_rate``.

    >>> LearningRateScheduler(lambda epoch, lr: lr if epoch < 10 else lr * 0.9)  # doctest: +ELLIPSIS
    LearningRateScheduler(...)
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise ValueError(f"schedule must be a function (epoch, lr) -> lr, received schedule={describe(schedule)}")
        self.schedule = schedule
        self.verbose = _check_verbose(verbose)

    def on_epoch_begin(self, epoch: int, logs: Optional[Logs] = None) -> None:
        lr = _current_lr(self.model, "LearningRateScheduler")
        new = _call_schedule(self.schedule, epoch, lr)
        if isinstance(new, bool) or not isinstance(new, numbers.Real) or not math.isfinite(float(new)) or new <= 0:
            raise ValueError(f"the schedule must return a positive finite learning rate, "
                             f"received {describe(new)} for epoch {epoch}")
        self.model.optimizer.learning_rate = float(new)
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(new)}.")

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        if logs is not None:
            logs["learning_rate"] = _current_lr(self.model, "LearningRateScheduler")

    def __repr__(self) -> str:
        return f"LearningRateScheduler({self.schedule!r})"


class ReduceLROnPlateau(MonitorCallback):
    """Multiplies the learning rate by ``factor`` once ``monitor`` has not improved (by more than
    ``min_delta``) for ``patience`` epochs, never going below ``min_lr``; after a reduction it
    waits ``cooldown`` epochs before counting again. Logs the rate as ``learning_rate``.

    >>> model = lm.Sequential([lm.layers.Dense(1, input_shape=(2,))], seed=0)
    >>> model.compile(optimizer=lm.optimizers.SGD(learning_rate=0.1), loss="mse")
    >>> reduce = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2)
    >>> reduce.set_model(model); reduce.on_train_begin()
    >>> for epoch, loss in enumerate([1.0, 1.0, 1.0]):  # no improvement after the first epoch
    ...     reduce.on_epoch_end(epoch, {"loss": loss})
    >>> model.optimizer.learning_rate
    0.05
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0, mode: str = "auto", verbose: int = 0) -> None:
        super().__init__(monitor, mode, min_delta)
        self.factor = finite_float(factor, "factor", low=0.0, high=1.0, low_open=True, high_open=True)
        self.patience = non_negative_int(patience, "patience")
        self.cooldown = non_negative_int(cooldown, "cooldown")
        self.min_lr = finite_float(min_lr, "min_lr", low=0.0)
        self.verbose = _check_verbose(verbose)
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        current = self._value(logs)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improves(current, self.best):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = _current_lr(self.model, "ReduceLROnPlateau")
                if old > self.min_lr:
                    new = max(old * self.factor, self.min_lr)
                    if new > 0:  # optimizers need a positive rate (min_lr=0 keeps shrinking it)
                        self.model.optimizer.learning_rate = new
                        if self.verbose:
                            print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0
        if logs is not None:
            logs["learning_rate"] = _current_lr(self.model, "ReduceLROnPlateau")

    def __repr__(self) -> str:
        return (f"ReduceLROnPlateau(monitor={self.monitor!r}, factor={self.factor}, patience={self.patience}, "
                f"mode={self.mode!r})")


# ---------------------------------------------------------------------------------- CSVLogger
class CSVLogger(Callback):
    """Writes one CSV row per epoch: ``epoch`` then the logs' keys in sorted order (as Keras).
    ``append=True`` adds to an existing file (without repeating its header). The file is opened
    and closed for every row, so it is complete after each epoch even if training crashes.

    >>> import os, tempfile
    >>> model = lm.Sequential([lm.layers.Dense(1, input_shape=(2,))], seed=0)
    >>> model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "log.csv")
    ...     _ = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0, callbacks=[CSVLogger(path)])
    ...     with open(path) as f:
    ...         print(f.readline().strip())
    epoch,loss,mean_absolute_error
    """

    root_only = True  # writes files: rank 0's alone in a distributed fit

    def __init__(self, filename: Any, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        if not isinstance(filename, (str, os.PathLike)) or not os.fspath(filename):
            raise ValueError(f"filename must be a non-empty str or path, received filename={describe(filename)}")
        self.filename = os.fspath(filename)
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator must be a single character, received separator={describe(separator)}")
        self.sep = separator
        if not isinstance(append, bool):
            raise ValueError(f"append must be True or False, received append={describe(append)}")
        self.append = append
        self.keys: Optional[List[str]] = None
        self._header = True

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        self.keys = None
        if self.append and os.path.exists(self.filename):
            with open(self.filename, "r", newline="") as f:
                self._header = not f.readline()
        else:
            self._header = True
            open(self.filename, "w", newline="").close()

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        with open(self.filename, "a", newline="") as f:
            writer = csv.writer(f, delimiter=self.sep, lineterminator="\n")
            if self._header:
                writer.writerow(["epoch"] + self.keys)
                self._header = False
            writer.writerow([epoch] + [_csv_value(logs.get(k, "NA")) for k in self.keys])

    def __repr__(self) -> str:
        return f"CSVLogger({self.filename!r}, separator={self.sep!r}, append={self.append})"


def _csv_value(value: Any) -> Any:
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)):
        return repr(float(value))
    return value


# ---------------------------------------------------------------------------------- TerminateOnNaN
class TerminateOnNaN(Callback):
    """Stops training as soon as the loss is NaN or infinite (checked after every chunk of
    batches and at the end of each epoch), printing why.

    >>> model = lm.Sequential([lm.layers.Dense(1, input_shape=(2,))], seed=0)
    >>> guard = TerminateOnNaN()
    >>> guard.set_model(model)
    >>> guard.on_epoch_end(0, {"loss": float("nan")})
    Epoch 1: invalid loss (nan), terminating training
    >>> model.stop_training
    True
    """

    def _check(self, where: str, logs: Optional[Logs]) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)) and not self.model.stop_training:
            print(f"{where}: invalid loss ({loss}), terminating training")
            self.model.stop_training = True

    def on_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        self._check(f"Batch {batch}", logs)

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        self._check(f"Epoch {epoch + 1}", logs)
