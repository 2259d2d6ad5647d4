"""Reading a known number of bytes from a file-like stream straight into an array's memory."""

from __future__ import annotations

from typing import Any, Tuple

# Some streams implement readinto as read() plus a copy (zipfile's members do): reading in
# blocks keeps that temporary small instead of as large as the array.
_BLOCK = 2**20


def fill(stream: Any, buffer: memoryview) -> Tuple[int, bool]:
    """Reads into ``buffer``, a block at a time, until it is full or the stream ends (readinto
    may return short counts, e.g. on compressed streams); returns (bytes received, whether data
    continues past the buffer)."""
    received = 0
    while received < len(buffer):
        more = stream.readinto(buffer[received:received + _BLOCK])
        if not more:
            return received, False
        received += more
    return received, bool(stream.read(1))
