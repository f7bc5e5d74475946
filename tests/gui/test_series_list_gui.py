"""The DICOMs page's series list in the real window: rows keep their layout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from net import SeriesSummary, StudyQuery, StudySummary
from tests.gui.driver import Driver, count_near
from viewer.app.studies_page import series_tag

MakeApp = Callable[..., Driver]

STUDY = StudySummary(study_uid="1.2.3", patient_name="Row^Test", description="layout")
SERIES = tuple(
    SeriesSummary(study_uid="1.2.3", series_uid=f"1.2.3.{n}", series_number=n, modality="CT")
    for n in (1, 2)
)


def test_series_button_stays_put_when_its_thumbnail_arrives(
    make_app: MakeApp, tmp_path: Path
) -> None:
    ui = make_app()
    app = ui.app
    # No server saved: the demo opens first; let it settle so it cannot switch pages.
    ui.frames_until(lambda: app.demo_study is not None, what="the demo")
    studies = app.studies
    assert studies is not None

    def search(query: StudyQuery, limit: int, offset: int, fuzzy: bool) -> list[StudySummary]:
        return [STUDY] if offset == 0 else []

    # A source whose thumbnails come only when the test hands them over.
    studies.set_source("layout test", search, lambda study_uid: None)
    opened: list[str] = []
    studies.on_open_series = lambda study_uid, series_uid: opened.append(series_uid)
    app.state.navigate("studies")
    studies.search()
    ui.frames_until(lambda: studies.status == "ready", what="the search")
    studies.open_study(STUDY.study_uid)
    studies.study_opened(STUDY.study_uid, SERIES)
    ui.frames(3)
    before = {s.series_uid: ui.box(series_tag(s.series_uid)) for s in SERIES}
    thumb = "studies/series/thumb/1.2.3.1"
    slot_before = ui.box(thumb)

    # A tall thumbnail: narrower than the slot, the case that also moved the button.
    studies.thumbnail(STUDY.study_uid, "1.2.3.1", np.ones((64, 32, 4), np.float32))
    ui.frames(3)
    assert {s.series_uid: ui.box(series_tag(s.series_uid)) for s in SERIES} == before
    assert ui.box(thumb) == slot_before
    shot = ui.screenshot(tmp_path / "thumbnail.png")
    assert count_near(shot, slot_before, (255, 255, 255), tol=10) >= 32 * 64 * 0.9

    # Where the button was before the thumbnail is where a click opens the series.
    left, top, right, bottom = before["1.2.3.1"]
    ui.xdotool(
        "mousemove", "--window", ui.window(), str((left + right) // 2), str((top + bottom) // 2),
        "click", "1",
    )  # fmt: skip
    ui.frames_until(lambda: opened, what="the series to open")
    assert opened == ["1.2.3.1"]
