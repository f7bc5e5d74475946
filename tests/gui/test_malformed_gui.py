"""A slice whose header has a malformed value says which, in the real window."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.gui.driver import Driver
from tests.support.broken_headers import PYDICOM_TEST_FILES, malformed_frames_series

MakeApp = Callable[..., Driver]


@pytest.mark.filterwarnings("ignore:Invalid value for VR")
def test_the_slice_on_screen_names_its_malformed_element(make_app: MakeApp, tmp_path: Path) -> None:
    study_uid, series_uid = malformed_frames_series(
        tmp_path / "broken", PYDICOM_TEST_FILES / "MR_small_RLE.dcm", 2
    )
    ui = make_app()
    app = ui.app
    ui.frames_until(lambda: app.demo_study is not None, what="the demo")
    app.open_local([tmp_path / "broken"])
    studies = app.studies
    assert studies is not None
    ui.frames_until(lambda: studies.status == "ready", what="the folder's studies")
    app.open_series(study_uid, series_uid)
    page = app.viewer_page
    assert page is not None
    ui.frames_until(lambda: page.slot == "failed", what="the failed slot")
    notice = app.state.notice
    assert notice is not None and notice.level == "error"
    assert notice.text == "Slice 1: Number of Frames (0028,0008) has the invalid value '1A'"
