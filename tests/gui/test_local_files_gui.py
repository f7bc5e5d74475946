"""File > Open, "Store on server" and Export through the real window.

Local files go through the same DICOMs page and viewer as a server's studies; storing
sends them to the real test PACS (Orthanc behind nginx TLS) and the test reads them
back from it. dearpygui's file dialogs are real windows here; where a test answers one
it calls the dialog's own callback with the dictionary dearpygui passes (the dialog's
file list is drawn by a third-party widget with no item tags to click).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dearpygui.dearpygui as dpg
import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import generate_uid

from net import DicomWebClient, ServerConfig, StudyQuery
from tests.gui.driver import Driver
from tests.support.pacs import TestPacs
from viewer import phantom
from viewer.app.files import OPEN_FILES, OPEN_FOLDER, SAVE_PNG
from viewer.app.shell import menu_tag
from viewer.app.studies_page import series_tag, study_tag
from viewer.phantom import read_slice_code

MakeApp = Callable[..., Driver]
SMALL = {"slices": 12, "rows": 96, "cols": 96, "variants": ("uncompressed",)}


@pytest.fixture(scope="module")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> phantom.StudyManifest:
    root = tmp_path_factory.mktemp("local")
    manifest = phantom.generate_study(root / "study", **SMALL)  # type: ignore[arg-type]
    (root / "study" / "README.txt").write_text("not DICOM")
    return manifest


def _fresh_copy(manifest: phantom.StudyManifest, folder: Path) -> tuple[str, list[Path]]:
    """The study with new UIDs and another patient (never on the PACS before); its
    UID and files."""
    folder.mkdir(parents=True)
    study_uid, series_uid = generate_uid(), generate_uid()
    paths = []
    for n, source in enumerate(manifest.series["uncompressed"].paths):
        ds = pydicom.dcmread(source)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        # Another patient too: the session's PACS is shared, and other tests expect
        # exactly one phantom study there.
        ds.PatientID, ds.PatientName = "ZHIVA-STOW-TEST", "Stow^Test"
        ds.StudyDescription = ds.AccessionNumber = "STOW test"
        path = folder / f"{n:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return study_uid, paths


def _answer(dialog: str, app_data: dict[str, Any]) -> None:
    """What dearpygui does on the dialog's OK: hide it, call back with `app_data`."""
    dpg.configure_item(dialog, show=False)
    callback = dpg.get_item_callback(dialog)
    assert callback is not None
    callback(dialog, app_data)


def _menu(ui: Driver, action: str) -> None:
    ui.menu("shell/menu/file", menu_tag(action))


def _open_and_view(ui: Driver, study_uid: str, tmp_path: Path) -> None:
    """Click the study, then its first series; the viewer shows that series' slice."""
    app = ui.app
    studies = app.studies
    assert studies is not None
    ui.frames_until(lambda: dpg.does_item_exist(study_tag(study_uid)), what="the study row")
    ui.click(study_tag(study_uid))
    ui.frames_until(
        lambda: studies.opened is not None and not studies.opened.loading, what="the series"
    )
    assert studies.opened is not None
    series_uid = studies.opened.series[0].series_uid
    ui.frames_until(lambda: dpg.does_item_exist(series_tag(series_uid)), what="the series row")
    ui.click(series_tag(series_uid))
    ui.frames_until(lambda: app.state.page == "viewer", what="the viewer")
    ui.frames_until(ui.slice_ready, what="the first slice")
    code, _ = ui.shown_slice(tmp_path / "viewer.png")
    assert code == ui.slice_content(app.viewer.index)


def test_file_open_folder_lists_the_local_study_and_views_it(
    make_app: MakeApp, small_study: phantom.StudyManifest, tmp_path: Path
) -> None:
    ui = make_app()
    app = ui.app
    # No server saved: the first launch shows the demo; its loader goes once unused.
    ui.frames_until(lambda: app.demo_study is not None, what="the demo")
    demo_loader = app.loaders[-1]
    _menu(ui, "open-folder")
    ui.frames_until(lambda: dpg.is_item_shown(OPEN_FOLDER), what="the folder dialog")
    folder = small_study.series["uncompressed"].paths[0].parents[1]
    _answer(OPEN_FOLDER, {"file_path_name": str(folder), "current_path": str(folder.parent)})
    studies = app.studies
    assert studies is not None
    ui.frames_until(lambda: studies.status == "ready", what="the folder's studies")
    assert app.state.page == "studies"
    assert [s.study_uid for s in studies.rows] == [small_study.study_uid]
    assert dpg.get_value("studies/source") == f"Local files: {folder}"
    # No server is selected: nothing to store on, nothing to go back to.
    assert not dpg.is_item_shown("studies/store/row")
    assert not dpg.is_item_shown("studies/back")
    _open_and_view(ui, small_study.study_uid, tmp_path)
    # Only the folder's loader is left: the demo's stopped (threads, frame cache).
    assert app.loaders == [app.local_loader] and app.viewer_page is not None
    assert app.viewer_page.handle is not None
    assert app.viewer_page.handle.loader is app.local_loader
    with pytest.raises(RuntimeError, match="shut down"):
        demo_loader.open_series("1.2.3", study_uid="1.2.3")


def test_file_open_files_and_a_folder_without_dicom(
    make_app: MakeApp, small_study: phantom.StudyManifest, tmp_path: Path
) -> None:
    ui = make_app()
    app = ui.app
    studies = app.studies
    assert studies is not None
    picked = small_study.series["uncompressed"].paths[:3]
    _menu(ui, "open-files")
    ui.frames_until(lambda: dpg.is_item_shown(OPEN_FILES), what="the files dialog")
    _answer(
        OPEN_FILES,
        {"file_path_name": "3 files Selected.*", "selections": {p.name: str(p) for p in picked}},
    )
    ui.frames_until(lambda: studies.status == "ready", what="the files' study")
    assert studies.rows[0].instance_count == 3
    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    app.open_local([empty])
    ui.frames_until(lambda: studies.status == "empty", what="the empty folder")
    assert studies.message == f"No DICOM files were found in {empty} (1 other files skipped)."
    assert dpg.get_value("studies/status") == studies.message


@pytest.mark.integration
def test_store_on_server_sends_the_local_study_to_the_pacs(
    make_app: MakeApp,
    select_pacs: Callable[..., ServerConfig],
    pacs: TestPacs,
    small_study: phantom.StudyManifest,
    tmp_path: Path,
) -> None:
    config = select_pacs(can_store=True)
    study_uid, paths = _fresh_copy(small_study, tmp_path / "fresh")
    check = DicomWebClient(config, httpx.BasicAuth("zhiva-admin", pacs.users["zhiva-admin"]))
    assert check.search_studies(StudyQuery(study_uid=study_uid)) == []

    ui = make_app()
    app = ui.app
    ui.frames_until(lambda: app.server_client is not None, what="the server connection")
    app.open_local([tmp_path / "fresh"])
    studies = app.studies
    assert studies is not None
    ui.frames_until(lambda: studies.status == "ready", what="the local study")
    assert dpg.is_item_shown("studies/back")
    assert dpg.get_item_label("studies/back") == f"Back to {config.name}"
    ui.click(study_tag(study_uid))
    ui.frames_until(lambda: dpg.is_item_shown("studies/store"), what="the Store button")
    assert dpg.get_item_label("studies/store") == f"Store study on {config.name}"
    ui.click("studies/store")
    ui.frames_until(lambda: not studies.storing, what="the upload", timeout=60)
    assert (
        studies.store_status == f"Stored {len(paths)} of {len(paths)} instances on {config.name}."
    )
    assert app.state.notice is not None and app.state.notice.level == "success"

    # On the PACS now, byte for byte the same pixels.
    (found,) = check.search_studies(StudyQuery(study_uid=study_uid))
    assert found.instance_count == len(paths)
    local = pydicom.dcmread(paths[5])
    remote = check.retrieve_instance(study_uid, str(local.SeriesInstanceUID), local.SOPInstanceUID)
    assert remote.PixelData == local.PixelData

    # "Back to" the server lists the server's studies again.
    ui.click("studies/back")
    ui.frames(3)
    assert not studies.local and studies.source_name == config.name
    assert not dpg.is_item_shown("studies/store/row")
    check.close()


@pytest.mark.integration
def test_store_is_not_offered_when_the_server_cannot_store(
    make_app: MakeApp,
    select_pacs: Callable[..., ServerConfig],
    small_study: phantom.StudyManifest,
) -> None:
    select_pacs(can_store=False)
    ui = make_app()
    app = ui.app
    ui.frames_until(lambda: app.server_client is not None, what="the server connection")
    app.open_local([small_study.series["uncompressed"].paths[0].parents[1]])
    studies = app.studies
    assert studies is not None
    ui.frames_until(lambda: studies.status == "ready", what="the local study")
    ui.click(study_tag(small_study.study_uid))
    ui.frames_until(lambda: studies.opened is not None, what="the series")
    ui.frames(3)
    assert studies.store_target is None
    assert not dpg.is_item_shown("studies/store/row")


def test_export_asks_where_and_confirms_before_replacing(make_app: MakeApp, tmp_path: Path) -> None:
    ui = make_app(demo=True)
    app = ui.app
    ui.frames_until(ui.slice_ready, what="a slice on screen")
    page = app.viewer_page
    assert page is not None
    page.export_dir = tmp_path / "exports"
    ui.click("viewer/export")
    ui.frames_until(lambda: dpg.is_item_shown(SAVE_PNG), what="the save dialog")
    config = dpg.get_item_configuration(SAVE_PNG)
    assert config["default_path"] == str(tmp_path / "exports")
    name = config["default_filename"]
    assert name.startswith("zhiva-") and name.endswith(f"slice-{app.viewer.index + 1:04d}")
    # The series and the slice, never who the patient is.
    assert name == f"zhiva-1-phantom-ct-1-25-mm-slice-{app.viewer.index + 1:04d}"
    text = app.viewer.text
    assert text.patient and text.patient_id
    for detail in (text.patient, text.patient_id):
        assert re.sub(r"[^0-9a-z]+", "-", detail.lower()) not in name

    target = tmp_path / "picked" / "my slice"
    target.parent.mkdir()
    _answer(SAVE_PNG, {"file_path_name": str(target), "current_filter": ".png"})
    written = target.with_name("my slice.png")
    ui.frames_until(written.exists, what="the PNG")
    with Image.open(written) as image:
        assert image.size == (256, 256)  # the image's own pixels, not the screen's
        code = read_slice_code(np.asarray(image.convert("RGB")))
    assert code == ui.slice_content(app.viewer.index)
    assert page.export_dir == written.parent  # the next export starts there

    # The same name again: asked first, and Cancel keeps the file.
    before = written.stat().st_mtime_ns
    written.write_bytes(b"keep me")
    _answer(SAVE_PNG, {"file_path_name": str(written)})
    ui.frames_until(lambda: ui.shown("shell/confirm"), what="the replace question")
    ui.click("shell/confirm/no")
    ui.frames(2)
    assert written.read_bytes() == b"keep me"
    _answer(SAVE_PNG, {"file_path_name": str(written)})
    ui.frames_until(lambda: ui.shown("shell/confirm"), what="the replace question")
    ui.click("shell/confirm/yes")
    ui.frames_until(lambda: written.read_bytes()[:4] == b"\x89PNG", what="the replaced PNG")
    assert written.stat().st_mtime_ns >= before
