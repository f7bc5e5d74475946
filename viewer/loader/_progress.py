"""Per-slice state and per-series progress, as the UI shows them.

`SliceState` drives what a slice's placeholder says ("loading", "failed — retry");
`SeriesProgress` is the progress bar: instances retrieved out of the total, bytes
received and errors. Both are plain immutable values safe to hand across threads.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["SeriesProgress", "SliceState"]


class SliceState(enum.Enum):
    """Where one slice stands in the current series."""

    #: Not in memory and nothing under way (not yet reached, or evicted).
    MISSING = "missing"
    #: A request or decode for it is under way, or a retry is scheduled.
    LOADING = "loading"
    #: In the memory cache: `SeriesLoader.frame` returns it.
    READY = "ready"
    #: Every attempt failed: show "failed — retry"; `SeriesLoader.retry` tries again.
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SeriesProgress:
    """Loading progress of one series.

    `total` is None until the series' layout is known. `retrieved` counts slices
    fetched at least once (kept in memory, or only written to the disk cache when
    the memory budget is smaller than the series); `failed` counts slices that gave
    up, `errors` every failed attempt including those retried successfully.
    """

    series_uid: str
    total: int | None
    retrieved: int
    failed: int
    errors: int
    bytes_received: int

    @property
    def complete(self) -> bool:
        """Every slice was retrieved or gave up."""
        return self.total is not None and self.retrieved + self.failed >= self.total

    @property
    def fraction(self) -> float:
        """Retrieved share of the series, 0.0 while the total is unknown."""
        if not self.total:
            return 0.0
        return min(1.0, self.retrieved / self.total)
