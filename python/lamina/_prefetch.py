"""Loading the next batches on a background thread while the core trains the current one.

The loader runs user Python (``Dataset.__getitem__``, a generator's ``next``) and the checks
that turn a batch into arrays; the consumer hands each batch to the core, which releases the GIL,
so the two overlap. Up to ``depth`` loaded items wait in a queue while the thread loads one more;
``groups()`` hands the consumer the next item together with those already waiting, so a fast
loader lets the core train several batches per call. Items are loaded one at a time, in order, by
one thread: the results do not depend on the timing, and a ``__getitem__`` need not be
thread-safe.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Iterator, List, Sequence, Tuple

# Seconds between checks for a stop request while waiting (Ctrl-C reaches the main thread then).
_POLL = 0.05


class Exhausted(Exception):
    """The loader found no more items (a generator that stopped)."""


class Prefetcher:
    """``load(k)`` for every k in ``keys``, in order, computed ahead on a thread.

    Iterate to receive the results; an exception in ``load`` is raised by the iteration that
    would have received that item. ``close()`` (or leaving a ``with`` block) waits for the item
    being loaded, so no load runs once it returns.
    """

    def __init__(self, load: Callable[[Any], Any], keys: Sequence[Any], depth: int = 1) -> None:
        self._load, self._keys = load, keys
        self._queue: "queue.Queue[Tuple[Any, ...]]" = queue.Queue(maxsize=depth)  # bounded memory
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lamina-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for key in self._keys:
            if self._stop.is_set():
                return
            try:
                item = (True, self._load(key))
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
                item = (False, exc)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=_POLL)
                    break
                except queue.Full:
                    continue
            if not item[0]:
                return

    def __iter__(self) -> Iterator[Any]:
        for group in self.groups(1):
            yield group[0]

    def groups(self, most: int) -> Iterator[List[Any]]:
        """Lists of up to ``most`` consecutive items: the next one (waited for) and those that
        are already loaded. An item whose load failed ends its group and raises on the next."""
        left = len(self._keys)
        while left:
            group: List[Any] = []
            while left and len(group) < most:
                try:
                    ok, value = self._queue.get(timeout=_POLL) if not group else self._queue.get_nowait()
                except queue.Empty:
                    if group:
                        break
                    if not self._thread.is_alive() and self._queue.empty():
                        return
                    continue
                if not ok:
                    if group:
                        yield group
                    raise value
                group.append(value)
                left -= 1
            yield group

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=_POLL)  # unblock a pending put
            except queue.Empty:
                pass
        self._thread.join()

    def __enter__(self) -> "Prefetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
