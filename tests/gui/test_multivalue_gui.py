"""Multi-valued text (Accession Number ``PR\\US``) shows as DICOM writes it, never as a
Python list (``['PR', 'US']``): tag browser, corner text and export, in the real window."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dearpygui.dearpygui as dpg

from tests.gui.driver import Driver
from tests.support.broken_headers import multi_valued_instance
from viewer.app.model.annotations import series_text
from viewer.app.model.viewport import tag_rows

MakeApp = Callable[..., Driver]


def test_tag_rows_join_multiple_values_with_a_backslash() -> None:
    ds = multi_valued_instance()
    ds.WindowCenter = ["40", "400.50"]
    values = {row.tag: row.value for row in tag_rows(ds)}
    assert values["(0008,0050)"] == "PR\\US"
    assert values["(0010,0010)"] == "Doe^John\\Roe^Ann"
    assert values["(0028,1050)"] == "40\\400.50"
    assert not any("['" in value or "[" in value for value in values.values())
    assert [row.tag for row in tag_rows(ds, "pr\\us")] == ["(0008,0050)"]


def test_series_text_joins_multiple_values_with_a_backslash() -> None:
    text = series_text(multi_valued_instance())
    assert text.patient == "Doe John\\Roe Ann"
    assert text.patient_id == "ID-1\\ID-2"
    assert text.study == "HEAD\\NECK"
    assert text.series == "#7 T1\\AX"


def test_the_viewer_shows_multiple_values_as_dicom_writes_them(
    make_app: MakeApp, tmp_path: Path
) -> None:
    ds = multi_valued_instance()
    (tmp_path / "study").mkdir()
    ds.save_as(tmp_path / "study" / "multi.dcm", enforce_file_format=True)
    ui = make_app()
    app = ui.app
    ui.frames_until(lambda: app.demo_study is not None, what="the demo")
    app.open_local([tmp_path / "study"])
    studies = app.studies
    assert studies is not None
    ui.frames_until(lambda: studies.status == "ready", what="the folder's studies")
    (study,) = studies.rows
    assert study.accession_number == "PR\\US"  # the study list's Accession column
    app.open_series(ds.StudyInstanceUID, ds.SeriesInstanceUID)
    ui.frames_until(ui.slice_ready, what="the slice")
    page = app.viewer_page
    assert page is not None

    corners = app.viewer.overlays()
    assert corners["top_left"] == ["Doe John\\Roe Ann", "ID-1\\ID-2"]
    assert corners["top_right"][0] == "HEAD\\NECK"
    assert corners["bottom_left"][0] == "#7 T1\\AX"
    assert page.export_name() == "zhiva-7-t1-ax-slice-0001"

    page.show_tags()
    ui.frames(3)
    cells = [
        [dpg.get_value(cell) for cell in dpg.get_item_children(row, 1) or []]
        for row in dpg.get_item_children("viewer/tags/table", 1) or []
    ]
    by_tag = {cell[0].strip(): cell[3] for cell in cells if len(cell) == 4}
    assert by_tag["(0008,0050)"] == "PR\\US"
    assert by_tag["(0008,103E)"] == "T1\\AX"
