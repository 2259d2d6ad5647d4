"""The loop of ``fit``: epochs, chunks of batches, the chunk clock, Ctrl-C bookkeeping and the
callbacks, for arrays and for delivered batches (a Dataset or a generator), in one process or
data-parallel over MPI. ``Sequential.fit`` checks the arguments and builds a ``FitLoop``;
``in_chunks`` runs the chunked passes of ``evaluate`` and ``predict``.

A chunk is as many whole batches as take about ``CHUNK_SECONDS`` in the core (the GIL
released); Python gets control back between chunks (progress, callbacks, Ctrl-C). Batches are
the same whatever the chunks, so the results do not depend on the clock.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np

from lamina import _core, _prefetch, _sources
from lamina import layers as layers_module
from lamina.progress import PassProgress, ProgressDisplay

CHUNK_SECONDS = 0.15
STREAM_AHEAD = 4  # delivered batches loaded ahead of the one training (and trained in one call)
# Batch sizes above this are passed to the core as this (no data set has that many rows), so
# every size the core sees fits its 64-bit index arithmetic.
MAX_BATCH = 2**40


def next_chunk(batches: int, done: int, elapsed: float) -> int:
    """The next chunk's batch count: about ``CHUNK_SECONDS`` of work at the pace of the last
    chunk (``done`` batches in ``elapsed`` seconds), at most twice the last."""
    return max(1, min(batches * 2, int(done * CHUNK_SECONDS / max(elapsed, 1e-6))))


def first_chunk(batch_size: int) -> int:
    return max(1, 2048 // batch_size)


def in_chunks(n_rows: int, batch_size: int, run: Callable[[int, int], None],
              progress: Optional[PassProgress] = None) -> None:
    """Calls ``run(start, stop)`` over whole batches, each call about ``CHUNK_SECONDS`` of work,
    so Ctrl-C (which Python handles between calls) stops a long pass promptly. Every batch is
    the same whatever the chunks, and so are the results.

    >>> calls = []
    >>> in_chunks(10, 4, lambda start, stop: calls.append((start, stop)))
    >>> calls
    [(0, 10)]
    """
    batches, start = first_chunk(batch_size), 0
    while start < n_rows:
        stop = min(n_rows, start + batches * batch_size)
        started = time.perf_counter()
        run(start, stop)
        elapsed = time.perf_counter() - started
        if progress is not None:
            progress.update(stop)
        batches = next_chunk(batches, math.ceil((stop - start) / batch_size), elapsed)
        start = stop


class FitLoop:
    """One call of ``fit`` after its checks: runs the epochs over ``model``'s core network
    ``net``, reports to the callbacks ``cbs`` and validates on ``val`` (arrays ``(x, y, w)`` or
    a batch source). With ``run`` (a ``lamina.distributed.Run``) every rank takes the same steps
    in the same chunks, zero-row steps past the end of a short shard, and the logs are global.

    >>> model = lm.Sequential([lm.layers.Dense(1, input_shape=(2,))], seed=0)
    >>> model.compile("sgd", "mse")
    >>> history = model.fit(np.zeros((8, 2)), np.zeros(8), epochs=2, verbose=0)  # runs a FitLoop
    >>> model.epochs_trained
    2
    """

    def __init__(self, model: Any, net: Any, cbs: Any, val: Any, initial_epoch: int, epochs: int, shuffle: bool,
                 track_gradient_norms: bool, run: Any = None) -> None:
        self.model, self.net, self.cbs, self.val = model, net, cbs, val
        self.initial_epoch, self.epochs, self.shuffle = initial_epoch, epochs, shuffle
        self.track_gradient_norms, self.run = track_gradient_norms, run
        self.live: Any = None  # the running epoch's BatchStats (the core counts its batches)

    # ------------------------------------------------------------------ the whole fit
    def fit(self, steps: int, epochs_body: Callable[[], None]) -> None:
        """on_train_begin, the epochs, on_train_end. Ctrl-C lands between chunks: the weights and
        optimizer state are those of the last completed step and History holds the finished
        epochs. An epoch whose last chunk completed counts as trained (its shuffle is used up)."""
        model = self.model
        model._busy = "fit"
        try:
            with self._distributed():
                self.cbs.on_train_begin({})
                epochs_body()
                self.cbs.on_train_end({})
        except KeyboardInterrupt:
            if self.live is not None and self.live.batches == steps:
                model.epochs_trained += 1
            self.live = None
            for cb in self.cbs.callbacks:
                if isinstance(cb, ProgressDisplay):
                    cb.on_train_end({})  # close the progress bar only
            raise
        finally:
            model._busy = None

    @contextlib.contextmanager
    def _distributed(self) -> Iterator[None]:
        """Distributed: rank 0's state on every rank, the allreduce in the gradient hook and an
        abort of the whole job on any rank's error, for this fit."""
        run = self.run
        if run is None:
            yield
            return
        with run.abort_on_error():
            run.broadcast_state()
            self.net.set_gradient_hook(run.hook(self.model._gradient_hook))
            self.net.dropout_row_offset = run.ctx.rank * run.batch_size
            try:
                yield
            finally:
                self.net.set_gradient_hook(self.model._gradient_hook)
                self.net.dropout_row_offset = 0

    def _global(self, stats: Any) -> Any:
        return stats if self.run is None else self.run.reduce(stats)

    # ------------------------------------------------------------------ arrays
    def arrays(self, xs: np.ndarray, ys: np.ndarray, ws: Optional[np.ndarray], batch_size: int, steps: int) -> None:
        """The epochs over arrays: ``steps`` batches of ``batch_size`` rows of (xs, ys, ws)."""
        model, net, run, n = self.model, self.net, self.run, xs.shape[0]
        chunk = first_chunk(batch_size)
        for epoch in range(self.initial_epoch, self.epochs):
            self.cbs.on_epoch_begin(epoch, {})
            order = None
            if self.shuffle:
                order = (_core.shuffled_order(n, model.seed, model.epochs_trained) if run is None
                         else run.order(model.epochs_trained))
            stats = self.live = _core.BatchStats()
            if run is not None:
                run.begin_epoch()
            done = 0
            while done < steps and not model.stop_training:
                take = min(chunk, steps - done)
                started = time.perf_counter()
                net.train_batches(stats, xs, ys, order, done * batch_size, batch_size, take, ws,
                                  empty_steps=run is not None)
                elapsed = time.perf_counter() - started
                done += take
                chunk = next_chunk(chunk, take, elapsed)
                self.cbs.on_batch_end(done - 1, model._logs(self._global(stats)))
                if run is not None:  # every rank stops, and chunks, as rank 0 does
                    model.stop_training, chunk = run.agree(model.stop_training, chunk)
            self._end_epoch(epoch, stats, max(batch_size, 256))
            if model.stop_training:
                break

    # ------------------------------------------------------------------ delivered batches
    def stream(self, source: Any, keys: Optional[List[int]], first: Any, class_weight: Any) -> None:
        """The epochs over a Dataset or a generator: the batches loaded ahead (a background
        thread) train in one core call each time; ``first`` is keys[0]'s batch, already loaded."""
        model, net = self.model, self.net
        for epoch in range(self.initial_epoch, self.epochs):
            self.cbs.on_epoch_begin(epoch, {})
            if keys is None:
                keys = source.keys(model.seed, model.epochs_trained, self.shuffle)
            stats = self.live = _core.BatchStats()
            reported, done = time.perf_counter(), 0
            groups = model._batch_groups(source, keys, class_weight, first, most=STREAM_AHEAD)
            with contextlib.closing(groups):
                try:
                    for group in groups:
                        net.train_batch_list(stats, group)  # the loaded batches, GIL released
                        done += len(group)
                        now = time.perf_counter()
                        if now - reported >= CHUNK_SECONDS or done == len(keys):
                            reported = now
                            self.cbs.on_batch_end(done - 1, model._logs(stats))
                        if model.stop_training:
                            break
                except _prefetch.Exhausted as exc:
                    warnings.warn(f"{exc}; training stops here (give steps_per_epoch the number of batches it "
                                  "delivers per epoch)", UserWarning, stacklevel=5)
                    model.stop_training = True
            keys, first = None, None
            source.on_epoch_end()
            self._end_epoch(epoch, stats, 256)
            if model.stop_training:
                break

    # ------------------------------------------------------------------ the end of an epoch
    def _end_epoch(self, epoch: int, stats: Any, val_batch_size: int) -> None:
        """Counts the epoch, validates, and reports the epoch's (global) logs to the callbacks."""
        model, val = self.model, self.val
        model.epochs_trained += 1
        self.live = None
        logs: Dict[str, float] = model._logs(self._global(stats))
        if self.track_gradient_norms and stats.batches:
            dense = [layer.name for layer in model.layers if isinstance(layer, layers_module.Dense)]
            for name, total in zip(dense, stats.gradient_norms):
                logs[f"gradient_norm/{name}"] = total / stats.batches
        if isinstance(val, _sources.Source):
            logs.update(model._evaluate_stream(val, prefix="val_"))
        elif val is not None:
            val_stats = model._evaluate_stats(val[0], val[1], val_batch_size, weights=val[2])
            logs.update(model._logs(self._global(val_stats), prefix="val_"))
        self.cbs.on_epoch_end(epoch, logs)
        if self.run is not None:  # a callback's stop on any rank stops every rank
            model.stop_training, _ = self.run.agree(model.stop_training, 0)
