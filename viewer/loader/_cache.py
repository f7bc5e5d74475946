"""The in-memory frame cache: decoded frames as stored values, bounded by bytes.

Frames are kept as the decoder gave them (int16 CT stays int16: a 300-slice 512x512
series is 158 MB) so the value under the mouse is exact and a window change never
touches them; RGBA is made at display time through one LUT. The bound is a byte
budget, not an entry count, because series differ a hundredfold in frame size.

Eviction order: frames of series other than the one on screen go first, least
recently used first; then frames of the series on screen outside its neighbourhood
(the window of slices around the cursor that the loader keeps), farthest from the
cursor first; the neighbourhood is evicted last. A frame that would be farther out
than everything kept is refused instead of thrashing the cache. Thread-safe: workers
insert, the UI thread reads.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from pydicom.dataset import Dataset

from ._layout import InstanceHeader

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "CachedFrame",
    "FrameCache",
    "FrameKey",
    "PutResult",
    "SeriesKey",
]

#: The settings' default ("Memory for images"): 1 GiB.
DEFAULT_MEMORY_BUDGET = 1024**3


class SeriesKey(NamedTuple):
    """One series on one source: the namespace keeps two servers' UIDs apart."""

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
    index: int | None  # position in the focus series' layout; None elsewhere


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
        # Frames of every series except the focus one, least recently used first.
        self._others: OrderedDict[FrameKey, _Entry] = OrderedDict()
        # The focus series: entries by key, and their indices sorted so that the
        # farthest from the cursor is always at one end (O(1) to find).
        self._focus: SeriesKey | None = None
        self._cursor = 0
        self._window: tuple[int, int] | None = None
        self._focus_entries: dict[FrameKey, _Entry] = {}
        self._focus_by_index: dict[int, FrameKey] = {}
        self._focus_indices: list[int] = []

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

    def __len__(self) -> int:
        with self._lock:
            return len(self._others) + len(self._focus_entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._focus_entries or key in self._others

    def frame_keys(self, series: SeriesKey | None = None) -> list[FrameKey]:
        """The cached keys, of one series or of all."""
        with self._lock:
            keys = [*self._focus_entries, *self._others]
        return keys if series is None else [k for k in keys if k.series == series]

    # -- lookups --------------------------------------------------------------------

    def get(self, key: FrameKey) -> CachedFrame | None:
        """The frame, counted as a hit or a miss (what the UI asks when it draws)."""
        with self._lock:
            entry = self._lookup(key)
            if entry is None:
                self._misses += 1
                return None
            self._hits += 1
            return entry.frame

    def peek(self, key: FrameKey) -> CachedFrame | None:
        """The frame without counting or touching recency (for the loader itself)."""
        with self._lock:
            entry = self._focus_entries.get(key) or self._others.get(key)
            return entry.frame if entry is not None else None

    def _lookup(self, key: FrameKey) -> _Entry | None:
        entry = self._focus_entries.get(key)
        if entry is not None:
            return entry
        entry = self._others.get(key)
        if entry is not None:
            self._others.move_to_end(key)
        return entry

    # -- focus ----------------------------------------------------------------------

    def set_focus(
        self, series: SeriesKey | None, cursor: int = 0, window: tuple[int, int] | None = None
    ) -> None:
        """Say which series is on screen, where its cursor is, and which slices around
        it (`window`, inclusive) to evict last.

        Frames of the previous focus series become ordinary LRU entries (most
        recently used, since they were just on screen).
        """
        with self._lock:
            self._cursor = cursor
            self._window = window
            if series == self._focus:
                return
            for key in sorted(self._focus_entries, key=lambda k: self._focus_entries[k].index or 0):
                entry = self._focus_entries[key]
                entry.index = None
                self._others[key] = entry
            self._focus_entries.clear()
            self._focus_by_index.clear()
            self._focus_indices.clear()
            self._focus = series
            # The new focus series' frames (if any were kept) have no index until the
            # loader knows its layout and calls `reindex`.

    def set_cursor(self, cursor: int, window: tuple[int, int] | None = None) -> None:
        with self._lock:
            self._cursor = cursor
            self._window = window

    def reindex(self, series: SeriesKey, indices: dict[FrameKey, int]) -> None:
        """Give the focus series' frames their layout positions (done once it is known).

        Frames of `series` not in `indices` stay as ordinary LRU entries.
        """
        with self._lock:
            if series != self._focus:
                raise ValueError("only the focus series can be indexed")
            entries = {**self._focus_entries}
            entries.update({k: e for k, e in self._others.items() if k.series == series})
            self._focus_entries.clear()
            self._focus_by_index.clear()
            self._focus_indices.clear()
            for key, entry in entries.items():
                index = indices.get(key)
                self._others.pop(key, None)
                if index is None or index in self._focus_by_index:
                    entry.index = None
                    self._others[key] = entry
                    continue
                entry.index = index
                self._focus_entries[key] = entry
                self._focus_by_index[index] = key
            self._focus_indices = sorted(self._focus_by_index)

    # -- insertion and eviction -----------------------------------------------------

    def put(self, key: FrameKey, frame: CachedFrame, *, index: int | None = None) -> PutResult:
        """Keep `frame` if the budget allows, evicting in the documented order.

        `index` places a frame of the focus series in its layout; without it the frame
        is an ordinary LRU entry. A focus frame farther from the cursor than every
        focus frame that would have to go is refused (`admitted` False).
        """
        nbytes = frame.nbytes
        evicted: list[FrameKey] = []
        with self._lock:
            old = self._remove(key)
            if old is not None:
                evicted.append(key)
            focus = key.series == self._focus and index is not None
            if focus and index in self._focus_by_index:
                # Another frame sits at this index (a re-indexed layout): replace it.
                evicted.append(self._focus_by_index[index])
                self._remove(self._focus_by_index[index])
            if not self._make_room(nbytes, index if focus else None, focus, evicted):
                # A replaced frame that cannot come back counts as evicted.
                return PutResult(False, tuple(evicted))
            entry = _Entry(frame, nbytes, index if focus else None)
            if focus and index is not None:
                self._focus_entries[key] = entry
                self._focus_by_index[index] = key
                bisect.insort(self._focus_indices, index)
            else:
                self._others[key] = entry
            self._nbytes += nbytes
            self._peak = max(self._peak, self._nbytes)
            return PutResult(True, tuple(k for k in evicted if k != key))

    def _rank(self, index: int) -> tuple[bool, int]:
        """Eviction rank of a focus index: outside the window first, then farthest."""
        window = self._window
        outside = window is not None and not window[0] <= index <= window[1]
        return outside, abs(index - self._cursor)

    def _victim(self) -> int:
        """The focus index to evict next: one of the two ends of the sorted indices."""
        low, high = self._focus_indices[0], self._focus_indices[-1]
        return low if self._rank(low) >= self._rank(high) else high

    def _make_room(
        self, nbytes: int, index: int | None, focus: bool, evicted: list[FrameKey]
    ) -> bool:
        if nbytes > self._budget:
            return False
        while self._nbytes + nbytes > self._budget:
            if self._others:
                key, _ = next(iter(self._others.items()))
                self._remove(key)
                evicted.append(key)
                continue
            if not focus or not self._focus_indices:
                return False  # only the focus series' neighbourhood is left: keep it
            far = self._victim()
            if index is not None and self._rank(far) <= self._rank(index):
                return False  # the newcomer would be the first to go: not worth it
            key = self._focus_by_index[far]
            self._remove(key)
            evicted.append(key)
        return True

    def _remove(self, key: FrameKey) -> _Entry | None:
        entry = self._focus_entries.pop(key, None)
        if entry is not None and entry.index is not None:
            del self._focus_by_index[entry.index]
            position = bisect.bisect_left(self._focus_indices, entry.index)
            del self._focus_indices[position]
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
        with self._lock:
            keys = [k for k in (*self._focus_entries, *self._others) if k.series == series]
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
                elif self._focus_indices:
                    key = self._focus_by_index[self._victim()]
                else:  # pragma: no cover - bytes without entries cannot happen
                    break
                self._remove(key)
                evicted.append(key)
        return tuple(evicted)

    def clear(self) -> None:
        with self._lock:
            self._others.clear()
            self._focus_entries.clear()
            self._focus_by_index.clear()
            self._focus_indices.clear()
            self._nbytes = 0
