"""bench/loader.py's own arithmetic: a short scroll run reports its figures, never crashes.

The scroll simulation is run for real (over a local folder instead of the PACS, which
`bench/loader.py` starts itself): what a run of `--scroll-seconds 1` produces is what
the summary line must survive.
"""

from __future__ import annotations

import pytest

from bench.loader import ScrollResult, Target, ours_scroll, scroll_line
from viewer import phantom
from viewer.loader import LocalFolderSource


def test_a_scroll_of_one_second_reports_no_late_figure_instead_of_dividing_by_zero(
    local: LocalFolderSource, small_study: phantom.StudyManifest
) -> None:
    series = small_study.series["uncompressed"]
    target = Target(
        base_url="", ca_file="", auth=("", ""),
        study_uid=small_study.study_uid, series_uid=series.series_uid,
    )  # fmt: skip
    result = ours_scroll(local, target, seconds=1.0)  # type: ignore[arg-type]
    assert result.ticks == 30 and result.late_ticks == 0  # nothing after the first second
    line = scroll_line([result], 1.0, "default open")
    assert "n/a after the first second" in line
    assert f"hits {result.hits / result.ticks * 100:5.1f}% overall" in line


@pytest.mark.parametrize("seconds", [0.0, 0.01, 1.0, 1.5, 1.99])
def test_the_summary_line_holds_for_any_scroll_length(seconds: float) -> None:
    ticks = int(seconds * 30)
    late = max(0, ticks - 30)
    line = scroll_line([ScrollResult(ticks // 2, ticks, late, late)], seconds, "default open")
    assert line.startswith(f"scroll 30 slices/s for {seconds:g} s, default open: hits ")
    if late:
        assert "100.0% after the first second (target >= 99%)" in line
    else:
        assert "n/a after the first second" in line
