"""The in-memory frame cache: decoded frames as stored values, bounded by bytes.

Frames are kept as the decoder gave them (int16 CT stays int16: a 300-slice 512x512
series is 158 MB) so the value under the mouse is exact and a window change never
touches them; RGBA is made at display time through one LUT. The bound is a byte
budget, not an entry count, because series differ a hundredfold in frame size. One
cache (one budget) serves the whole app: every loader of a `LoaderHub` puts here.

Eviction order: frames of series that no visible handle shows go first, least
recently used first; then frames of the series on screen (the *focus* series, one
per visible series) outside their neighbourhood (the window of slices around the
cursor that the loader keeps for that series), farthest from their cursor first;
the neighbourhoods are evicted last. A frame that would be farther out than
everything kept is refused instead of thrashing the cache. Thread-safe: workers
insert, the UI thread reads.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from pydicom.dataset import Dataset

from ._layout import InstanceHeader

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "CacheUsage",
    "CachedFrame",
    "FrameCache",
    "FrameKey",
    "PutResult",
    "SeriesKey",
]

#: The settings' default ("Memory for images"): 1 GiB.
DEFAULT_MEMORY_BUDGET = 1024**3


class SeriesKey(NamedTuple):
    """One series on one source: the namespace keeps two sources' UIDs apart."""

    namespace: str
    series_uid: str


class FrameKey(NamedTuple):
    """One frame: 0-based `frame` of instance `sop_uid` in `series`."""

    series: SeriesKey
    sop_uid: str
    frame: int


@dataclass(frozen=True, slots=True, eq=False)
class CachedFrame:
    """A decoded frame as stored values, plus what is needed to display it.

    `pixels` is read-only: (rows, columns) or (rows, columns, samples). `header` is
    the instance's dataset without pixel data (modality LUT, VOI, geometry), parsed
    from `source` on first use. `server_rendered` frames came from /rendered or
    WADO-URI images: 8-bit display values with `window` (centre, width) already
    applied by the server.
    """

    pixels: np.ndarray
    photometric_interpretation: str
    source: InstanceHeader
    frame: int = 0
    server_rendered: bool = False
    window: tuple[float, float] | None = None

    @property
    def header(self) -> Dataset:
        return self.source.dataset

    @property
    def nbytes(self) -> int:
        return int(self.pixels.nbytes)


class PutResult(NamedTuple):
    """What `FrameCache.put` did: whether the frame was kept, and what it pushed out."""

    admitted: bool
    evicted: tuple[FrameKey, ...]


@dataclass(slots=True)
class _Entry:
    frame: CachedFrame
    nbytes: int
    index: int | None  # position in its focus series' layout; None elsewhere


@dataclass(slots=True)
class _Focus:
    """A series on screen: its entries by layout position, the cursor and the window."""

    cursor: int = 0
    window: tuple[int, int] | None = None
    entries: dict[FrameKey, _Entry] = field(default_factory=dict)
    by_index: dict[int, FrameKey] = field(default_factory=dict)
    # Sorted, so the farthest from the cursor is always at one end (O(1) to find).
    indices: list[int] = field(default_factory=list)

    def rank(self, index: int) -> tuple[bool, int]:
        """Eviction rank of a position: outside the window first, then farthest."""
        window = self.window
        outside = window is not None and not window[0] <= index <= window[1]
        return outside, abs(index - self.cursor)

    def victim(self) -> int:
        """The position to evict next: one of the two ends of the sorted indices."""
        low, high = self.indices[0], self.indices[-1]
        return low if self.rank(low) >= self.rank(high) else high


@dataclass(slots=True)
class CacheUsage:
    """What the cache holds now (the Settings page's Cache section shows it)."""

    nbytes: int
    frames: int
    budget: int
    series: int


class FrameCache:
    """A byte-bounded cache of `CachedFrame`s; see the module docstring for the order."""

    def __init__(self, budget: int = DEFAULT_MEMORY_BUDGET) -> None:
        if budget < 0:
            raise ValueError("the memory budget cannot be negative")
        self._lock = threading.Lock()
        self._budget = budget
        self._nbytes = 0
        self._peak = 0
        self._hits = 0
        self._misses = 0
        # Frames of every series not on screen, least recently used first.
        self._others: OrderedDict[FrameKey, _Entry] = OrderedDict()
        self._focus: dict[SeriesKey, _Focus] = {}

    # -- sizes and statistics -------------------------------------------------------

    @property
    def budget(self) -> int:
        return self._budget

    @property
    def nbytes(self) -> int:
        """Bytes of pixel data held now."""
        return self._nbytes

    @property
    def peak_nbytes(self) -> int:
        """The most bytes ever held at once (never above the budget)."""
        return self._peak

    @property
    def hits(self) -> int:
        return self._hits

    @property
    def misses(self) -> int:
        return self._misses

    def usage(self) -> CacheUsage:
        with self._lock:
            keys = [*self._others, *(k for f in self._focus.values() for k in f.entries)]
            return CacheUsage(self._nbytes, len(keys), self._budget, len({k.series for k in keys}))

    def __len__(self) -> int:
        with self._lock:
            return len(self._others) + sum(len(f.entries) for f in self._focus.values())

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, FrameKey):
            return False
        with self._lock:
            return self._find(key) is not None

    def frame_keys(self, series: SeriesKey | None = None) -> list[FrameKey]:
        """The cached keys, of one series or of all."""
        with self._lock:
            keys = [*(k for f in self._focus.values() for k in f.entries), *self._others]
        return keys if series is None else [k for k in keys if k.series == series]

    # -- lookups --------------------------------------------------------------------

    def _find(self, key: FrameKey) -> _Entry | None:
        focus = self._focus.get(key.series)
        entry = focus.entries.get(key) if focus is not None else None
        return entry if entry is not None else self._others.get(key)

    def get(self, key: FrameKey) -> CachedFrame | None:
        """The frame, counted as a hit or a miss (what the UI asks when it draws)."""
        with self._lock:
            entry = self._find(key)
            if entry is None:
                self._misses += 1
                return None
            if entry.index is None and key in self._others:
                self._others.move_to_end(key)
            self._hits += 1
            return entry.frame

    def peek(self, key: FrameKey) -> CachedFrame | None:
        """The frame without counting or touching recency (for the loader itself)."""
        with self._lock:
            entry = self._find(key)
            return entry.frame if entry is not None else None

    # -- focus ----------------------------------------------------------------------

    def set_focus(
        self, series: SeriesKey, cursor: int = 0, window: tuple[int, int] | None = None
    ) -> None:
        """Say that `series` is on screen, where its cursor is, and which slices around
        it (`window`, inclusive) to evict last. Other focus series stay focused.

        A series newly focused has no positions until the loader knows its layout and
        calls `reindex`; frames put with an `index` meanwhile get that one.
        """
        with self._lock:
            focus = self._focus.get(series)
            if focus is None:
                focus = self._focus[series] = _Focus()
            focus.cursor, focus.window = cursor, window

    def unfocus(self, series: SeriesKey) -> None:
        """The series left the screen: its frames become ordinary LRU entries (the most
        recently used, since they were just on screen), nearest the cursor last."""
        with self._lock:
            focus = self._focus.pop(series, None)
            if focus is None:
                return

            def distance(key: FrameKey) -> int:
                return focus.rank(focus.entries[key].index or 0)[1]

            for key in sorted(focus.entries, key=distance, reverse=True):
                entry = focus.entries[key]
                entry.index = None
                self._others[key] = entry

    def focused(self) -> tuple[SeriesKey, ...]:
        with self._lock:
            return tuple(self._focus)

    def set_cursor(
        self, series: SeriesKey, cursor: int, window: tuple[int, int] | None = None
    ) -> None:
        with self._lock:
            focus = self._focus.get(series)
            if focus is not None:
                focus.cursor, focus.window = cursor, window

    def reindex(self, series: SeriesKey, indices: dict[FrameKey, int]) -> None:
        """Give a focus series' frames their layout positions (done once it is known).

        Frames of `series` not in `indices` stay as ordinary LRU entries.
        """
        with self._lock:
            focus = self._focus.get(series)
            if focus is None:
                raise ValueError("only a focus series can be indexed")
            entries = {**focus.entries}
            entries.update({k: e for k, e in self._others.items() if k.series == series})
            focus.entries.clear()
            focus.by_index.clear()
            for key, entry in entries.items():
                index = indices.get(key)
                self._others.pop(key, None)
                if index is None or index in focus.by_index:
                    entry.index = None
                    self._others[key] = entry
                    continue
                entry.index = index
                focus.entries[key] = entry
                focus.by_index[index] = key
            focus.indices = sorted(focus.by_index)

    # -- insertion and eviction -----------------------------------------------------

    def put(self, key: FrameKey, frame: CachedFrame, *, index: int | None = None) -> PutResult:
        """Keep `frame` if the budget allows, evicting in the documented order.

        `index` places a frame of a focus series in its layout; without it the frame
        is an ordinary LRU entry. A focus frame farther from its cursor than every
        focus frame that would have to go is refused (`admitted` False).
        """
        nbytes = frame.nbytes
        evicted: list[FrameKey] = []
        with self._lock:
            old = self._remove(key)
            if old is not None:
                evicted.append(key)
            focus = self._focus.get(key.series) if index is not None else None
            if focus is not None and index in focus.by_index:
                # Another frame sits at this index (a re-indexed layout): replace it.
                other = focus.by_index[index]
                evicted.append(other)
                self._remove(other)
            rank = focus.rank(index) if focus is not None and index is not None else None
            if not self._make_room(nbytes, rank, evicted):
                # A replaced frame that cannot come back counts as evicted.
                return PutResult(False, tuple(evicted))
            entry = _Entry(frame, nbytes, index if focus is not None else None)
            if focus is not None and index is not None:
                focus.entries[key] = entry
                focus.by_index[index] = key
                bisect.insort(focus.indices, index)
            else:
                self._others[key] = entry
            self._nbytes += nbytes
            self._peak = max(self._peak, self._nbytes)
            return PutResult(True, tuple(k for k in evicted if k != key))

    def _worst_focus(self) -> tuple[tuple[bool, int], _Focus, int] | None:
        """The focus frame to evict next, over every focus series."""
        worst: tuple[tuple[bool, int], _Focus, int] | None = None
        for focus in self._focus.values():
            if not focus.indices:
                continue
            far = focus.victim()
            rank = focus.rank(far)
            if worst is None or rank > worst[0]:
                worst = (rank, focus, far)
        return worst

    def _make_room(
        self, nbytes: int, rank: tuple[bool, int] | None, evicted: list[FrameKey]
    ) -> bool:
        """Evict until `nbytes` fit; `rank` is the newcomer's (None: not a focus frame,
        which may only push out other non-focus frames)."""
        if nbytes > self._budget:
            return False
        while self._nbytes + nbytes > self._budget:
            if self._others:
                key, _ = next(iter(self._others.items()))
                self._remove(key)
                evicted.append(key)
                continue
            worst = self._worst_focus() if rank is not None else None
            if worst is None:
                return False  # only the series on screen are left: keep them
            if rank is not None and worst[0] <= rank:
                return False  # the newcomer would be the first to go: not worth it
            key = worst[1].by_index[worst[2]]
            self._remove(key)
            evicted.append(key)
        return True

    def _remove(self, key: FrameKey) -> _Entry | None:
        focus = self._focus.get(key.series)
        entry = focus.entries.pop(key, None) if focus is not None else None
        if entry is not None and focus is not None and entry.index is not None:
            del focus.by_index[entry.index]
            position = bisect.bisect_left(focus.indices, entry.index)
            del focus.indices[position]
        elif entry is None:
            entry = self._others.pop(key, None)
        if entry is not None:
            self._nbytes -= entry.nbytes
        return entry

    def discard(self, key: FrameKey) -> bool:
        with self._lock:
            return self._remove(key) is not None

    def discard_series(self, series: SeriesKey) -> int:
        """Drop every frame of one series (e.g. server-rendered frames after a window change)."""
        return self.discard_where(lambda k: k == series)

    def discard_namespace(self, namespace: str) -> int:
        """Drop every frame of one source (its loader was closed)."""
        return self.discard_where(lambda k: k.namespace == namespace)

    def discard_where(self, matches: Callable[[SeriesKey], bool]) -> int:
        """Drop every frame whose series `matches`; returns how many went."""
        with self._lock:
            keys = [
                k
                for k in (*(k for f in self._focus.values() for k in f.entries), *self._others)
                if matches(k.series)
            ]
            for key in keys:
                self._remove(key)
            return len(keys)

    def set_budget(self, budget: int) -> tuple[FrameKey, ...]:
        """Change the budget (a settings change), evicting what no longer fits."""
        if budget < 0:
            raise ValueError("the memory budget cannot be negative")
        evicted: list[FrameKey] = []
        with self._lock:
            self._budget = budget
            while self._nbytes > budget:
                if self._others:
                    key = next(iter(self._others))
                else:
                    worst = self._worst_focus()
                    if worst is None:  # pragma: no cover - bytes without entries
                        break
                    key = worst[1].by_index[worst[2]]
                self._remove(key)
                evicted.append(key)
        return tuple(evicted)

    def clear(self) -> int:
        """Drop every frame ("Clear cache"); returns the bytes freed."""
        with self._lock:
            freed = self._nbytes
            self._others.clear()
            for focus in self._focus.values():
                focus.entries.clear()
                focus.by_index.clear()
                focus.indices.clear()
            self._nbytes = 0
            return freed
