"""Training progress on the terminal, drawn with tqdm.

``verbose=1``: a live bar per epoch (ETA, samples/s, loss and metrics) on a terminal; on a
non-terminal stream (a log file, CI) it falls back to one line per epoch so logs never flood.
``verbose=2``: one line per epoch. ``verbose=0``: silent.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Dict, Optional, TextIO

from tqdm.auto import tqdm

from lamina.callbacks import Callback, Logs


def format_logs(logs: Dict[str, float]) -> str:
    # Diagnostics such as gradient_norm/<layer> stay in History, off the progress line.
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items() if "/" not in k)


class ProgressDisplay(Callback):
    """The progress callback ``fit`` adds for ``verbose=1`` or ``2``."""

    def __init__(self, verbose: int, stream: Optional[TextIO] = None) -> None:
        super().__init__()
        self.stream = stream or sys.stderr
        is_tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.live = verbose == 1 and is_tty
        self._bar: Any = None
        self._start = 0.0
        self._done = 0

    def on_epoch_begin(self, epoch: int, logs: Optional[Logs] = None) -> None:
        self._start, self._done = time.perf_counter(), 0
        self._epoch = epoch
        if self.live:
            # A Dataset or generator has batches, not a known number of samples.
            by_batch = self.params["samples"] is None
            self._bar = tqdm(total=self.params["steps"] if by_batch else self.params["samples"],
                             unit="batch" if by_batch else "sample", unit_scale=True, leave=True,
                             desc=f"Epoch {epoch + 1}/{self.params['epochs']}", file=self.stream,
                             dynamic_ncols=True, mininterval=0.2)

    def on_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        if self._bar is None:
            return
        samples = self.params["samples"]
        done = batch + 1 if samples is None else min(samples, (batch + 1) * self.params["batch_size"])
        self._bar.update(done - self._done)
        self._done = done
        if logs:
            self._bar.set_postfix_str(format_logs(logs), refresh=False)

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        seconds = time.perf_counter() - self._start
        count, unit = ((self.params["steps"], "batches") if self.params["samples"] is None
                       else (self.params["samples"], "samples"))
        rate = count / seconds if seconds > 0 else float("inf")
        if self._bar is not None:
            self._bar.set_postfix_str(format_logs(logs or {}), refresh=True)
            self._bar.close()
            self._bar = None
            return
        self.stream.write(f"Epoch {epoch + 1}/{self.params['epochs']} - {seconds:.1f}s - {rate:,.0f} {unit}/s"
                          f" - {format_logs(logs or {})}\n")
        self.stream.flush()

    def on_train_end(self, logs: Optional[Logs] = None) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class PassProgress:
    """Progress of one ``predict`` or ``evaluate`` pass: a live bar for ``verbose=1`` on a
    terminal, else (``verbose=1`` or ``2``) one line when the pass ends; silent for 0."""

    def __init__(self, verbose: int, total: int, what: str, stream: Optional[TextIO] = None,
                 unit: str = "sample") -> None:
        self.stream = stream or sys.stderr
        self.verbose, self.total, self.what, self.unit = verbose, total, what, unit
        self._start, self._done = time.perf_counter(), 0
        live = verbose == 1 and bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar: Any = (tqdm(total=total, unit=unit, unit_scale=True, desc=what, file=self.stream,
                               dynamic_ncols=True, mininterval=0.2) if live else None)

    def update(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(done - self._done)
        self._done = done

    def close(self, logs: Optional[Dict[str, float]] = None) -> None:
        if self._bar is not None:
            if logs:
                self._bar.set_postfix_str(format_logs(logs), refresh=True)
            self._bar.close()
            self._bar = None
        elif self.verbose:
            seconds = time.perf_counter() - self._start
            tail = f" - {format_logs(logs)}" if logs else ""
            self.stream.write(f"{self.what}: {self.total} {self.unit}s - {seconds:.1f}s{tail}\n")
            self.stream.flush()
