"""Paths on the command line (a file, a folder, a DICOMDIR, a zip) through the real window.

`zhiva-viewer PATH...` hands the paths to `App(paths=...)` (tests/gui/test_entry.py
checks that hand-over); here the app opens them as File > Open does and goes to
the study — straight to the viewer, whose screenshot must show the right phantom
slice, when the study has one series; to the study's series list when it has
several — or stays on the list when there are several studies. The duplicate and scan
reports are checked on the same page.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import dearpygui.dearpygui as dpg
import pydicom
import pytest
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid

from tests.gui.driver import Driver
from viewer import phantom
from viewer.app.studies_page import series_tag

MakeApp = Callable[..., Driver]
SMALL = {"slices": 10, "rows": 64, "cols": 64, "variants": ("uncompressed",)}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> phantom.StudyManifest:
    root = tmp_path_factory.mktemp("paths")
    return phantom.generate_study(root / "study", **SMALL)  # type: ignore[arg-type]


def _series(manifest: phantom.StudyManifest) -> phantom.SeriesManifest:
    return manifest.series["uncompressed"]


def _viewer_shows_the_study(ui: Driver, manifest: phantom.StudyManifest, tmp_path: Path) -> None:
    app = ui.app
    ui.frames_until(lambda: app.state.page == "viewer" and ui.slice_ready(), what="the viewer")
    page = app.viewer_page
    assert page is not None and page.handle is not None
    assert page.handle.loader is app.local_loader
    studies = app.studies
    assert studies is not None and studies.opened is not None
    assert studies.opened.study.study_uid == manifest.study_uid
    assert app.viewer.count == len(_series(manifest).sop_uids)
    code, _ = ui.shown_slice(tmp_path / "shown.png")
    assert code == ui.slice_content(app.viewer.index)


def _dicomdir(manifest: phantom.StudyManifest, media: Path) -> Path:
    fs = FileSet()
    for path in _series(manifest).paths:
        fs.add(pydicom.dcmread(path))
    fs.write(media)
    return media / "DICOMDIR"


def _zip(manifest: phantom.StudyManifest, path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for n, source in enumerate(_series(manifest).paths):
            archive.write(source, f"download/{manifest.study_uid[-6:]}/CT/{n:04d}")
        archive.writestr("download/index.html", "<html></html>")
    return path


@pytest.mark.parametrize("kind", ["folder", "dicomdir", "zip"])
def test_a_path_on_the_command_line_opens_its_single_series_in_the_viewer(
    make_app: MakeApp, study: phantom.StudyManifest, tmp_path: Path, kind: str
) -> None:
    if kind == "folder":
        target = _series(study).paths[0].parent
    elif kind == "dicomdir":
        target = _dicomdir(study, tmp_path / "cd")
    else:
        target = _zip(study, tmp_path / "download.zip")
    ui = make_app(paths=[target])
    _viewer_shows_the_study(ui, study, tmp_path)
    assert ui.app.demo_study is None  # paths given: no demo


def test_a_single_file_on_the_command_line_is_shown(
    make_app: MakeApp, study: phantom.StudyManifest, tmp_path: Path
) -> None:
    picked = _series(study).paths[4]
    ui = make_app(paths=[picked])
    app = ui.app
    ui.frames_until(lambda: app.state.page == "viewer" and ui.slice_ready(), what="the viewer")
    assert app.viewer.count == 1
    code, _ = ui.shown_slice(tmp_path / "one.png")
    assert code == int(pydicom.dcmread(picked).InstanceNumber) - 1


def test_one_study_of_several_series_opens_its_series_list(
    make_app: MakeApp, tmp_path: Path
) -> None:
    # Two series of images in one study: which to view is the user's choice.
    manifest = phantom.generate_study(
        tmp_path / "study", slices=4, rows=48, cols=48,
        variants=("uncompressed", "multiframe"), multiframe_frames=3, multiframe_size=48,
    )  # fmt: skip
    ui = make_app(paths=[tmp_path / "study"])
    app = ui.app
    studies = app.studies
    assert studies is not None

    def listed() -> bool:
        opened = studies.opened
        return opened is not None and not opened.loading and len(opened.series) == 2

    ui.frames_until(listed, what="the study's series")
    ui.frames(3)
    assert app.state.page == "studies"
    assert app.viewer_page is None or app.viewer_page.handle is None
    opened = studies.opened
    assert opened is not None and opened.study.study_uid == manifest.study_uid
    assert [row.study_uid for row in studies.rows] == [manifest.study_uid]
    for series in manifest.series.values():
        assert ui.shown(series_tag(series.series_uid))
        label = dpg.get_item_label(series_tag(series.series_uid))
        assert label is not None and series.description in label
    counts = {s.series_uid: s.instance_count for s in opened.series}
    assert counts == {s.series_uid: len(s.sop_uids) for s in manifest.series.values()}


def test_several_studies_stay_on_the_list_with_duplicates_reported(
    make_app: MakeApp, study: phantom.StudyManifest, tmp_path: Path
) -> None:
    # The phantom, three duplicate files of it, and a second study (new UIDs).
    folder = tmp_path / "mixed"
    shutil.copytree(_series(study).paths[0].parent, folder / "a")
    for n, source in enumerate(_series(study).paths[:3]):
        shutil.copy(source, folder / f"dup{n}.dcm")
    other_study = generate_uid()
    series_uid = generate_uid()
    (folder / "b").mkdir()
    for n, source in enumerate(_series(study).paths[:2]):
        ds = pydicom.dcmread(source)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = other_study, series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(folder / "b" / f"{n}.dcm", enforce_file_format=True)
    ui = make_app(paths=[folder])
    app = ui.app
    studies = app.studies
    assert studies is not None
    ui.frames_until(lambda: studies.status == "ready" and not studies.scanning, what="the list")
    ui.frames(3)
    assert app.state.page == "studies" and studies.opened is None
    assert {s.study_uid for s in studies.rows} == {study.study_uid, other_study}
    assert studies.message == "2 studies · 3 duplicates not listed"
    assert dpg.get_value("studies/status") == studies.message
    assert dpg.get_value("studies/scan") == (
        "15 files scanned, 12 DICOM instances found in 2 studies (done)"
    )
    assert not dpg.is_item_shown("studies/scan/cancel")
