"""When a series that grew during its folder's scan is read again (`SeriesGrowth`)."""

from __future__ import annotations

from viewer.app.local_scan import SeriesGrowth


def test_a_grown_series_is_read_again_once_the_scan_moved_past_it_or_ended() -> None:
    growth = SeriesGrowth()
    # Still growing from one report to the next: not yet (it would be read at each).
    assert growth.due([("st", "a", 10)], final=False) == []
    assert growth.due([("st", "a", 25)], final=False) == []
    # Unchanged since the last report: the scan has moved on, read it now, once.
    assert growth.due([("st", "a", 25)], final=False) == [("st", "a")]
    assert growth.due([("st", "a", 25)], final=False) == []
    # It grew again (files of it further on), and the scan ended: read it again.
    assert growth.due([("st", "a", 30), ("st", "b", 3)], final=True) == [("st", "a"), ("st", "b")]
    assert growth.due([("st", "a", 30)], final=True) == []
