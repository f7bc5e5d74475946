"""File > Export study… through the real window: the dialog, the zip it writes.

The study opened from the command line is on the Viewer page; the export dialog
offers that series, "Choose where…" is clicked, and the save dialog is answered with
the dictionary dearpygui passes (its file list has no item tags to click). The zip
must hold the series de-identified with its pixels unchanged.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dearpygui.dearpygui as dpg
import pydicom
import pytest

from tests.gui.driver import Driver
from viewer import phantom
from viewer.app.export_dialog import DIALOG
from viewer.app.files import EXPORT_ZIP
from viewer.app.shell import menu_tag

MakeApp = Callable[..., Driver]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> phantom.StudyManifest:
    root = tmp_path_factory.mktemp("export")
    return phantom.generate_study(
        root / "study", slices=6, rows=64, cols=64, variants=("uncompressed",)
    )


def _answer(dialog: str, app_data: dict[str, Any]) -> None:
    dpg.configure_item(dialog, show=False)
    callback = dpg.get_item_callback(dialog)
    assert callback is not None
    callback(dialog, app_data)


def test_export_study_writes_the_series_on_screen_de_identified(
    make_app: MakeApp, study: phantom.StudyManifest, tmp_path: Path
) -> None:
    series = study.series["uncompressed"]
    ui = make_app(paths=[series.paths[0].parent])
    app = ui.app
    ui.frames_until(lambda: app.state.page == "viewer" and ui.slice_ready(), what="the viewer")
    ui.menu("shell/menu/file", menu_tag("export-study"))
    ui.frames_until(lambda: dpg.is_item_shown(DIALOG), what="the export dialog")
    assert dpg.is_item_shown("export/what")
    assert str(dpg.get_value("export/what")).startswith("This series (#1 CT")
    assert dpg.get_value("export/deidentify") is True  # de-identified unless unticked
    assert dpg.get_value("export/format") == "Zip file"
    ui.click("export/go")
    ui.frames_until(lambda: dpg.is_item_shown(EXPORT_ZIP), what="the save dialog")
    name = dpg.get_item_configuration(EXPORT_ZIP)["default_filename"]
    assert name.startswith("zhiva-export-") and "phantom" not in name.lower()
    target = tmp_path / "shared"
    _answer(EXPORT_ZIP, {"file_path_name": str(target)})
    written = tmp_path / "shared.zip"
    ui.frames_until(
        lambda: app.state.notice is not None and "Exported" in app.state.notice.text,
        what="the export",
    )
    assert app.state.notice is not None and app.state.notice.level == "success"
    with zipfile.ZipFile(written) as archive:
        exported = [pydicom.dcmread(archive.open(n)) for n in sorted(archive.namelist())]
    originals = [pydicom.dcmread(p) for p in series.paths]
    assert len(exported) == len(originals)
    assert {bytes(d.PixelData) for d in exported} == {bytes(d.PixelData) for d in originals}
    for ds in exported:
        assert ds.PatientName == "" and ds.PatientID != study.patient_id
        assert study.patient_id not in str(ds) and "Phantom" not in str(ds.PatientName)
        assert ds.StudyInstanceUID != study.study_uid
        assert ds.PatientIdentityRemoved == "YES"
    assert not list(tmp_path.glob("*.partial"))


def test_export_study_without_an_open_study_says_what_to_do(make_app: MakeApp) -> None:
    ui = make_app()
    app = ui.app
    app.export_study()
    ui.frames(2)
    assert app.state.notice is not None
    assert app.state.notice.text == "Open a study first: click it in the DICOMs list."
    assert not dpg.is_item_shown(DIALOG)
