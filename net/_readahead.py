"""Read a response body on a helper thread while the caller parses what already arrived.

TLS decryption and socket reads release the GIL, so on a multi-core machine the
network read of a series overlaps with multipart parsing and `pydicom.dcmread` of the
parts before it. The queue is bounded, so a slow consumer slows the reader down rather
than buffering a whole series in memory.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

__all__ = ["READ_AHEAD_CHUNKS", "read_ahead"]

#: 64 chunks of 64 KiB: 4 MiB in flight, a few instances' worth.
READ_AHEAD_CHUNKS = 64
_POLL = 0.1  # how often a blocked reader checks whether the consumer went away
_JOIN_TIMEOUT = 2.0


class _End:
    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


def read_ahead(chunks: Iterable[bytes], *, depth: int = READ_AHEAD_CHUNKS) -> Iterator[bytes]:
    """Yield `chunks` in order, reading them on a background thread.

    An exception raised while reading is re-raised in the caller. Closing the returned
    generator stops the reader after its current chunk and waits for it briefly.
    """
    pipe: queue.Queue[bytes | _End] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: bytes | _End) -> bool:
        while not stop.is_set():
            try:
                pipe.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            put(_End(exc))
            return
        put(_End(None))

    thread = threading.Thread(target=reader, name="net-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = pipe.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
        thread.join(_JOIN_TIMEOUT)
