"""The loader's own log of what it requested, decoded and delivered, in order.

Tests assert on this order instead of on timing: "the cursor slice was delivered
first", "the old stream was cancelled", "no slice was delivered twice". Entries
are appended under a lock, so their order is the order things happened in;
`time` is for benchmarks and debugging only, never for assertions.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

__all__ = ["Trace", "TraceEntry"]

#: Enough for several opened series; older entries fall off.
TRACE_LIMIT = 200_000


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One thing the loader did.

    `kind` is one of: ``open`` (a series opened; index: the cursor asked for),
    ``layout`` (detail: where it came from: ``stream``, ``metadata``, ``known``,
    ``disk``), ``request`` (detail: ``metadata``, ``disk-metadata``, ``stream``,
    ``disk-stream``, ``instance``, ``frames``, ``wado-uri``, ``rendered``, ``disk``,
    ``series-list``, ``study-metadata``, ``thumbnail-<protocol>``), ``arrived`` (a
    frame kept before the layout was known), ``first-image``, ``ready`` (a slice
    entered the cache), ``not-kept`` (retrieved but outside the memory budget),
    ``duplicate`` (came again after it was ready; dropped), ``stale`` (a result for a
    superseded generation or window; dropped), ``cursor`` (the user moved),
    ``error`` (an attempt failed; detail: the message), ``retry`` (scheduled),
    ``failed`` (gave up), ``cancelled`` (a stream stopped because its series was
    replaced), ``stream-end`` (detail: ``complete`` or ``failed``), ``evicted``,
    ``window`` (a new server-side window), ``layout-late`` (the stream had not brought
    the layout in time: /metadata is fetched beside it), ``first-hold`` (a large first
    image holds the series' other reading back until the viewer has shown it).
    """

    seq: int
    time: float
    kind: str
    generation: int
    series_uid: str = ""
    index: int | None = None
    sop_uid: str = ""
    detail: str = ""


class Trace:
    def __init__(self, limit: int = TRACE_LIMIT) -> None:
        self._lock = threading.Lock()
        self._entries: deque[TraceEntry] = deque(maxlen=limit)
        self._seq = 0

    def add(
        self,
        kind: str,
        generation: int,
        series_uid: str = "",
        index: int | None = None,
        sop_uid: str = "",
        detail: str = "",
    ) -> None:
        with self._lock:
            self._seq += 1
            self._entries.append(
                TraceEntry(
                    self._seq,
                    time.perf_counter(),
                    kind,
                    generation,
                    series_uid,
                    index,
                    sop_uid,
                    detail,
                )
            )

    def entries(self) -> tuple[TraceEntry, ...]:
        with self._lock:
            return tuple(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
