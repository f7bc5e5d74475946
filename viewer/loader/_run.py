"""The state of one opened series: one generation of the loader's work.

Everything here is read and written under the loader's condition; a `Run` is
replaced, never reused, when the user opens another series, so work that still
holds the old one can tell it is stale (`run is not loader.current`).

Per slice it tracks a `SliceState` and the facts behind it (requested, waiting for
a retry, being decoded, failed), keeps the MISSING slices in a sorted list so the
nearest one to the cursor is found by bisection, and predicts when the bulk stream
will deliver a slice so a single request is made only when the stream would be late.
"""

from __future__ import annotations

import bisect
from concurrent.futures import Future
from dataclasses import dataclass, field

from ._cache import SeriesKey
from ._layout import InstanceHeader, SeriesLayout
from ._progress import SeriesProgress, SliceState

__all__ = ["NO_RUN", "Run", "StreamState"]

#: Assumed fastest sustained scroll (slices/s): how soon a neighbour may be needed.
ASSUMED_SCROLL_RATE = 60.0
#: Stream delivery rate (parts/s) assumed before one is measured: conservative, so
#: slices near the cursor are fetched alone rather than waited for.
PRIOR_STREAM_RATE = 100.0
#: No part for this long: the stream is stalled and predicts nothing.
STREAM_STALL_SECONDS = 0.5
#: A single request is worth it when the stream would be at least this much later.
SINGLE_LEAD_SECONDS = 0.05


class StreamState:
    NONE = "none"  # no bulk stream planned
    WANTED = "wanted"  # planned; starts when the cursor slice is served
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(eq=False)
class Run:
    generation: int
    study_uid: str
    series_uid: str
    key: SeriesKey
    protocol: str
    opened: Future[SeriesLayout]
    layout: SeriesLayout | None = None
    cursor: int | None = None
    #: Set by the UI before the layout was known; wins over the first image.
    pending_cursor: int | None = None
    #: +1 or -1: the way the user last moved, preferred when two slices tie.
    direction: int = 1
    window: tuple[int, int] = (0, -1)
    state: list[SliceState] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    requested: set[int] = field(default_factory=set)
    waiting: set[int] = field(default_factory=set)
    decoding: set[int] = field(default_factory=set)
    failed: dict[int, str] = field(default_factory=dict)
    attempts: dict[int, int] = field(default_factory=dict)
    retrieved: bytearray = field(default_factory=bytearray)
    retrieved_count: int = 0
    errors: int = 0
    bytes_received: int = 0
    singles_in_flight: int = 0
    # The bulk stream (network or disk).
    stream: str = StreamState.NONE
    stream_from_disk: bool = False
    stream_parts: int = 0
    stream_started: float = 0.0
    stream_first: float = 0.0
    stream_last: float = 0.0
    layout_from_stream: bool = False
    metadata_requested: bool = False
    metadata_error: BaseException | None = None
    #: Slices of this series the memory budget holds (set with the layout).
    fits: int = 0
    # Before the layout is known: headers and arrival order from the stream.
    headers: dict[str, InstanceHeader] = field(default_factory=dict)
    arrival: list[str] = field(default_factory=list)
    pre_count: int = 0
    first: tuple[str, int] | None = None
    disk_order: tuple[str, ...] = ()
    # Server-rendered (https) images: a window change bumps the render generation.
    render_generation: int = 0
    server_window: tuple[float, float] | None = None

    # -- layout ---------------------------------------------------------------------

    def install(self, layout: SeriesLayout, cursor: int) -> None:
        n = len(layout)
        self.layout = layout
        self.cursor = max(0, min(cursor, n - 1)) if n else 0
        self.state = [SliceState.MISSING] * n
        self.missing = list(range(n))
        self.retrieved = bytearray(n)
        self.retrieved_count = 0

    def in_window(self, index: int) -> bool:
        return self.window[0] <= index <= self.window[1]

    def set_window(self, fits: int) -> None:
        """The `fits` slices nearest the cursor: what the memory budget lets us keep."""
        n = len(self.state)
        if n == 0 or self.cursor is None:
            self.window = (0, -1)
            return
        fits = max(1, min(fits, n))
        low = self.cursor - fits // 2
        low = max(0, min(low, n - fits))
        self.window = (low, low + fits - 1)

    # -- per-slice state ------------------------------------------------------------

    def set_state(self, index: int, state: SliceState) -> None:
        old = self.state[index]
        if old is state:
            return
        if old is SliceState.MISSING:
            position = bisect.bisect_left(self.missing, index)
            if position < len(self.missing) and self.missing[position] == index:
                del self.missing[position]
        if state is SliceState.MISSING:
            bisect.insort(self.missing, index)
        self.state[index] = state

    def settle(self, index: int) -> None:
        """Recompute a slice that is not READY from what is still under way for it."""
        if self.state[index] is SliceState.READY:
            return
        if index in self.failed:
            self.set_state(index, SliceState.FAILED)
        elif index in self.requested or index in self.waiting or index in self.decoding:
            self.set_state(index, SliceState.LOADING)
        else:
            self.set_state(index, SliceState.MISSING)

    def mark_retrieved(self, index: int) -> None:
        if not self.retrieved[index]:
            self.retrieved[index] = 1
            self.retrieved_count += 1

    def progress(self) -> SeriesProgress:
        return SeriesProgress(
            series_uid=self.series_uid,
            total=len(self.layout) if self.layout is not None else None,
            retrieved=self.retrieved_count if self.layout is not None else self.pre_count,
            failed=len(self.failed),
            errors=self.errors,
            bytes_received=self.bytes_received,
        )

    # -- the bulk stream --------------------------------------------------------------

    @property
    def streaming(self) -> bool:
        """A stream is planned or running, so slices may still come from it."""
        return self.stream in (StreamState.WANTED, StreamState.RUNNING)

    def stream_rate(self) -> float:
        if self.stream_parts >= 2 and self.stream_last > self.stream_first:
            return (self.stream_parts - 1) / (self.stream_last - self.stream_first)
        return PRIOR_STREAM_RATE

    def stream_is_late_for(self, index: int, now: float) -> bool:
        """Whether the stream would deliver slice `index` too late for a scrolling user.

        Assumes the stream follows the server's instance order (Orthanc's series
        retrieval and metadata agree, measured); if it does not, a slice whose rank
        the stream has passed is simply fetched alone.
        """
        assert self.layout is not None and self.cursor is not None
        ahead = self.layout.slices[index].stream_rank - self.stream_parts
        if ahead < 0:
            return True
        if self.stream == StreamState.RUNNING:
            last = self.stream_last if self.stream_parts else self.stream_started
            if now - last > STREAM_STALL_SECONDS:
                return True
        eta = ahead / self.stream_rate()
        needed_in = abs(index - self.cursor) / ASSUMED_SCROLL_RATE
        return eta > needed_in + SINGLE_LEAD_SECONDS


#: The owner of study-level jobs (series list, study metadata): they belong to no
#: series, so opening another series must not drop them.
NO_RUN = Run(
    generation=-1,
    study_uid="",
    series_uid="",
    key=SeriesKey("", ""),
    protocol="wadors",
    opened=Future(),
)
