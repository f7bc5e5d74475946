"""The study's reports as a model: saved to the reports folder, listed, shown, replaced.

Real files and real background tasks (`BackgroundTasks` over a `UiQueue`, drained by
`wait_until_idle`); the study is a small phantom written by `viewer.phantom`, listed
through a `LocalFolderSource` as File > Open does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest

from viewer import phantom
from viewer.app.model.measuring import MeasuredImage, Measuring
from viewer.app.model.reports import StudyReports, list_folder
from viewer.app.ui_thread import BackgroundTasks, UiQueue
from viewer.loader import LocalFolderSource
from viewer.loader._layout import header_of
from viewer.measure import ImageRef, image_data

TOLERANCE = 1.0


@pytest.fixture
def tasks() -> Iterator[BackgroundTasks]:
    running = BackgroundTasks(UiQueue())
    yield running
    running.shutdown(cancel_futures=True)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> phantom.StudyManifest:
    root = tmp_path_factory.mktemp("reports-study")
    return phantom.generate_study(root, slices=4, rows=64, cols=64, variants=("uncompressed",))


def _image(study: phantom.StudyManifest, index: int = 1, *, savable: bool = True) -> MeasuredImage:
    series = study["uncompressed"]
    ds = pydicom.dcmread(series.paths[index])
    stored = ds.pixel_array
    header = header_of(ds)  # as the loader keeps it: pixel data empty
    ref = ImageRef(
        str(ds.SOPInstanceUID), 0, str(ds.SOPClassUID), str(ds.SeriesInstanceUID),
        str(ds.StudyInstanceUID),
    )  # fmt: skip
    if not savable:
        ref = ImageRef(f"2.25.{index}77", 0, "", f"{ref.series_uid}/mpr/coronal", ref.study_uid)
    return MeasuredImage(ref, image_data(header, stored), header, savable)


def _draw(
    tools: Measuring,
    image: MeasuredImage,
    kind: str,
    a: tuple[float, float],
    b: tuple[float, float],
) -> None:
    tools.set_tool(kind)  # type: ignore[arg-type]
    tools.press(image, a, TOLERANCE)
    tools.move(b, TOLERANCE)
    tools.release(b, moved=True, tolerance=TOLERANCE)
    tools.escape()
    tools.values(tools.measurements.items[-1], image)  # as the viewport draws it


def _notices(tools: Measuring) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    tools.notify = lambda level, text: seen.append((level, text))
    return seen


def _session(
    tasks: BackgroundTasks, folder: Path
) -> tuple[Measuring, list[tuple[str, str]], StudyReports]:
    """A session's tools, the notices they give, and its reports (saved into `folder`)."""
    tools = Measuring()
    return tools, _notices(tools), StudyReports(tools, tasks, folder)


def test_a_save_writes_a_report_that_lists_and_reads_back_the_same(
    study: phantom.StudyManifest, tasks: BackgroundTasks, tmp_path: Path
) -> None:
    folder = tmp_path / "reports"
    tools, notices, reports = _session(tasks, folder)
    image = _image(study)
    _draw(tools, image, "length", (10.0, 10.0), (40.0, 10.0))
    _draw(tools, image, "ellipse", (20.0, 20.0), (30.0, 34.0))
    drawn = tools.measurements.items
    assert reports.unsaved(study.study_uid)
    assert reports.save(study.study_uid, None)
    assert tasks.wait_until_idle(30)
    assert notices[-1][0] == "success" and "Saved 2 measurement(s)" in notices[-1][1]
    (path,) = folder.glob("SR_*.dcm")
    assert str(path) in notices[-1][1]
    assert (folder.stat().st_mode & 0o777) == 0o700  # it names the patient
    assert not reports.unsaved(study.study_uid)

    # Another session: listed from the folder, shown read-only with the same values.
    again = Measuring()
    shown = StudyReports(again, tasks, folder)
    shown.show_study(study.study_uid, None)
    assert tasks.wait_until_idle(30)
    (entry,) = shown.entries
    assert entry.where == "file" and entry.path == path and "on this computer" in entry.label
    opened: list[str] = []
    shown.open(entry, lambda report: opened.append(report.sop_instance_uid))
    assert tasks.wait_until_idle(30)
    assert opened == [entry.sop_instance_uid]
    back = again.measurements.items
    assert [m.uid for m in back] == [m.uid for m in drawn] and all(m.locked for m in back)
    for original, read in zip(drawn, back, strict=True):
        assert read.image == original.image
        assert np.allclose(read.points, original.points, atol=1e-4)
        assert again.lines(read, image) == tools.lines(original, image)
    assert shown.locked(entry.sop_instance_uid)
    # Read-only: nothing of it is saved until it is unlocked.
    assert not shown.save(study.study_uid, None)


def test_an_edited_report_is_saved_as_a_new_one_that_replaces_it(
    study: phantom.StudyManifest, tasks: BackgroundTasks, tmp_path: Path
) -> None:
    folder = tmp_path / "reports"
    tools = Measuring()
    reports = StudyReports(tools, tasks, folder)
    image = _image(study)
    _draw(tools, image, "length", (10.0, 10.0), (40.0, 10.0))
    reports.save(study.study_uid, None)
    assert tasks.wait_until_idle(30)
    (first,) = folder.glob("SR_*.dcm")

    again = Measuring()
    shown = StudyReports(again, tasks, folder)
    shown.show_study(study.study_uid, None)
    assert tasks.wait_until_idle(30)
    shown.open(shown.entries[0], lambda report: None)
    assert tasks.wait_until_idle(30)
    assert shown.unlock(shown.entries[0].sop_instance_uid) == 1
    again.see(image)
    (m,) = again.measurements.items
    again.measurements.move_handle(m.uid, 1, (50.0, 10.0))
    assert shown.unsaved(study.study_uid)
    assert shown.save(study.study_uid, None)
    assert tasks.wait_until_idle(30)
    second = next(p for p in folder.glob("SR_*.dcm") if p != first)
    ds = pydicom.dcmread(second)
    predecessors = [
        sop.ReferencedSOPInstanceUID
        for study_item in ds.PredecessorDocumentsSequence
        for series in study_item.ReferencedSeriesSequence
        for sop in series.ReferencedSOPSequence
    ]
    assert predecessors == [pydicom.dcmread(first).SOPInstanceUID]
    # A second save in the same session replaces the first of the session.
    again.measurements.move_handle(m.uid, 1, (55.0, 10.0))
    shown.save(study.study_uid, None)
    assert tasks.wait_until_idle(30)
    third = next(p for p in folder.glob("SR_*.dcm") if p not in (first, second))
    ds3 = pydicom.dcmread(third)
    assert ds3.SeriesInstanceUID == ds.SeriesInstanceUID and ds3.InstanceNumber == 2
    assert ds.SOPInstanceUID in {
        sop.ReferencedSOPInstanceUID
        for item in ds3.PredecessorDocumentsSequence
        for series in item.ReferencedSeriesSequence
        for sop in series.ReferencedSOPSequence
    }
    # The folder lists all three, oldest first.
    assert len(list_folder(folder, study.study_uid)) == 3
    assert list_folder(folder, "1.2.3.4") == []


def test_mpr_plane_measurements_are_never_saved(
    study: phantom.StudyManifest, tasks: BackgroundTasks, tmp_path: Path
) -> None:
    folder = tmp_path / "reports"
    tools, notices, reports = _session(tasks, folder)
    plane = _image(study, savable=False)
    _draw(tools, plane, "length", (10.0, 10.0), (40.0, 10.0))
    assert not reports.save(study.study_uid, None)
    assert notices[-1][0] == "warning" and "MPR planes" in notices[-1][1]
    assert not folder.exists()
    # With a measurement on a stored image beside it: that one is saved, the plane's noted.
    _draw(tools, _image(study), "length", (5.0, 5.0), (25.0, 5.0))
    assert reports.save(study.study_uid, None)
    assert tasks.wait_until_idle(30)
    assert notices[-1][0] == "success" and "Saved 1 measurement(s)" in notices[-1][1]
    assert "1 on MPR planes" in notices[-1][1]
    (path,) = folder.glob("SR_*.dcm")
    assert b"/mpr/" not in path.read_bytes() and b"2.25.177" not in path.read_bytes()


def test_reports_of_the_study_source_and_a_broken_file_in_the_folder(
    study: phantom.StudyManifest, tasks: BackgroundTasks, tmp_path: Path
) -> None:
    # A report saved into the study's own folder is listed from the source (as an
    # opened folder or a server lists it); junk in the reports folder is skipped.
    tools = Measuring()
    writer = StudyReports(tools, tasks, study["uncompressed"].paths[0].parent.parent / "sr")
    _draw(tools, _image(study), "length", (10.0, 10.0), (40.0, 10.0))
    writer.save(study.study_uid, None)
    assert tasks.wait_until_idle(30)
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "broken.dcm").write_bytes(b"not dicom at all")
    source = LocalFolderSource([study["uncompressed"].paths[0].parent.parent])
    try:
        listing = StudyReports(Measuring(), tasks, folder)
        listing.show_study(study.study_uid, source)
        assert tasks.wait_until_idle(60)
        (entry,) = listing.entries
        assert entry.where == "source" and entry.info is not None and "folder" in entry.label
        listing.open(entry, lambda report: None)
        assert tasks.wait_until_idle(30)
        assert len(listing.measuring.measurements) == 1
    finally:
        source.close()
        for path in (study["uncompressed"].paths[0].parent.parent / "sr").glob("*"):
            path.unlink()
        (study["uncompressed"].paths[0].parent.parent / "sr").rmdir()


def test_a_store_that_fails_says_why_and_keeps_the_measurements(
    study: phantom.StudyManifest, tasks: BackgroundTasks, tmp_path: Path
) -> None:
    from net import ServerError

    class RefusingStore:
        server = "Test PACS"

        def store(self, instances: object, study_uid: str | None = None) -> object:
            raise ServerError("The server answered 503 Service Unavailable.", server=self.server)

    tools = Measuring()
    notices = _notices(tools)
    reports = StudyReports(tools, tasks, tmp_path / "reports")
    _draw(tools, _image(study), "length", (10.0, 10.0), (40.0, 10.0))
    assert reports.save(study.study_uid, RefusingStore())  # type: ignore[arg-type]
    assert tasks.wait_until_idle(30)
    level, text = notices[-1]
    assert level == "error" and "503" in text and "could not be saved" in text
    assert reports.unsaved(study.study_uid) and len(tools.measurements) == 1
    assert not (tmp_path / "reports").exists()  # not silently written elsewhere
