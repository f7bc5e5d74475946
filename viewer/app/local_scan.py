"""Series opened before the scan of their folder ended: which to read again, and when.

File > Open lists a folder's studies while it is being scanned (a folder of 50,000
files shows its first studies at once), so a series can be opened, or its layout
read, before the scan has found all of its files; the loader lays out the files found
so far and keeps that layout. `LocalFolderSource.grown_series` names the series the
scan has found more of since they were read; `SeriesGrowth` decides when each is read
again (`SeriesLoader.refresh_series`): once the scan has moved past it — its count did
not change between two progress reports — or when the scan ends, so a series still
being found is not read again at every report. Plain Python: no GUI.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["SeriesGrowth"]


class SeriesGrowth:
    """The growth of one source's series between scan reports (one per scan)."""

    def __init__(self) -> None:
        #: Instances of each grown series at the previous report.
        self._last: dict[str, int] = {}
        #: Instances of each series when it was last handed out to be read again.
        self._refreshed: dict[str, int] = {}

    def due(self, grown: Iterable[tuple[str, str, int]], *, final: bool) -> list[tuple[str, str]]:
        """Of the `grown` series (study UID, series UID, instances found), those to read
        again now; `final`: the scan has ended (every grown series is due)."""
        due = []
        for study_uid, series_uid, found in grown:
            settled = final or self._last.get(series_uid) == found
            self._last[series_uid] = found
            if settled and self._refreshed.get(series_uid) != found:
                self._refreshed[series_uid] = found
                due.append((study_uid, series_uid))
        return due
