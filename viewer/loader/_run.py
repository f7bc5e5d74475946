"""The state of one opened series: one generation of the loader's work.

Everything here is read and written under the hub's condition. A `Run` serves the
`SeriesHandle`s open on one series of one source (usually one; two viewports showing
the same series share its frames and requests); it is closed when its last handle
closes, never reused, so work that still holds it can tell it is stale (`run.closed`).

Per slice it tracks a `SliceState` and the facts behind it (requested, waiting for
a retry, being decoded, failed), keeps the MISSING slices in a sorted list so the
nearest one to the cursor is found by bisection, and predicts when the bulk stream
will deliver a slice so a single request is made only when the stream would be late.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._cache import SeriesKey
from ._layout import InstanceHeader, SeriesLayout
from ._progress import SeriesProgress, SliceState

if TYPE_CHECKING:
    from ._handle import SeriesHandle

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
    #: The `SeriesLoader` (per source) that plans and does this run's work.
    loader: Any = None
    #: The handles showing this series, oldest first.
    handles: list[SeriesHandle] = field(default_factory=list)
    #: The handle whose cursor the prefetch follows (the last one moved).
    primary: SeriesHandle | None = None
    #: Cursors of the other visible handles: kept and fetched like the window.
    pinned: frozenset[int] = frozenset()
    closed: bool = False
    #: Whether the hub's cache holds this series as on screen (`FrameCache.set_focus`).
    focused: bool = False
    #: Why the series cannot be shown (no layout, no slices, every slice failed).
    failure: str | None = None
    opened_at: float = 0.0
    #: Bytes of the memory budget this run may fill (`LoaderHub` shares the budget
    #: out among the visible runs).
    share: int = 0
    layout: SeriesLayout | None = None
    cursor: int | None = None
    #: Set by the UI before the layout was known; wins over the first image.
    pending_cursor: int | None = None
    #: The image (SOP UID, frame) the cursor was on before the series was read again
    #: (`SeriesLoader.refresh_series`); wins over `pending_cursor` when in the layout.
    anchor: tuple[str, int] | None = None
    #: A refresh is under way (its metadata asked for); `refresh_again`: another was
    #: asked for meanwhile, and is made once this one is in.
    refreshing: bool = False
    refresh_again: bool = False
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
    #: Instances the stream brought that could not be read at all (left out).
    unreadable: int = 0
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
    #: Slices of this series its share of the memory budget holds (set with the layout).
    fits: int = 0
    #: Decoded bytes of one slice, as estimated from the headers (set with the layout).
    frame_cost: int = 0
    #: Slices taken off `fits` because frames came larger than estimated.
    shrunk: int = 0
    # Before the layout is known: headers and arrival order from the stream.
    headers: dict[str, InstanceHeader] = field(default_factory=dict)
    arrival: list[str] = field(default_factory=list)
    pre_count: int = 0
    first: tuple[str, int] | None = None
    #: The first frame was stored (`first_held`); until `first_hold_until` (monotonic,
    #: 0: no hold) the series' other reading waits for that frame to be shown.
    first_held: bool = False
    first_hold_until: float = 0.0
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

    @property
    def visible(self) -> bool:
        return not self.closed and any(h.visible for h in self.handles)

    def cursors(self) -> list[int]:
        """The slice on screen of each visible handle, the primary one's first."""
        if self.layout is None or not len(self.layout) or self.cursor is None:
            return []
        return [self.cursor, *sorted(self.pinned - {self.cursor})]

    def distance(self, index: int) -> int:
        """Slices from `index` to the nearest cursor of a visible handle."""
        distance = abs(index - (self.cursor or 0))
        for cursor in self.pinned:
            distance = min(distance, abs(index - cursor))
        return distance

    def in_window(self, index: int) -> bool:
        return self.window[0] <= index <= self.window[1] or index in self.pinned

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
        needed_in = self.distance(index) / ASSUMED_SCROLL_RATE
        return eta > needed_in + SINGLE_LEAD_SECONDS


#: The owner of study-level jobs (series list, study metadata): they belong to no
#: series, so closing a series must not drop them.
NO_RUN = Run(generation=-1, study_uid="", series_uid="", key=SeriesKey("", ""), protocol="wadors")
