"""Local media: duplicates, files without a preamble, DICOMDIRs, zip archives, large scans.

Test data is made here with pydicom (tiny 8x8 images, one file per instance), a
DICOMDIR with pydicom's own FileSet API, zip archives with the standard library.
"""

from __future__ import annotations

import io
import os
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.fileset import FileSet
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from viewer.loader import LocalFolderSource, ScanProgress, _local


def make_instance(
    study_uid: str,
    series_uid: str,
    *,
    sop_uid: str | None = None,
    number: int = 1,
    patient: str = "Doe^Jane",
    frames: int = 1,
    value: int = 0,
    burned_in: str | None = None,
) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.PatientName, ds.PatientID = patient, f"ID-{patient}"
    ds.StudyDate, ds.StudyTime, ds.StudyDescription = "20240102", "101500", "Chest"
    ds.StudyID, ds.AccessionNumber = "S1", "ACC1"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 1, number
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in
    pixels = np.full((frames, 8, 8), value + number, dtype=np.uint16)
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = pixels.tobytes()
    return ds


def write(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def part10(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def studies_of(source: LocalFolderSource) -> dict[str, int | None]:
    return {s.study_uid: s.instance_count for s in source.search_studies()}


# -- item 15: duplicates, multi-frame, no preamble -------------------------------------


def test_duplicate_sop_instance_uids_are_counted_and_reported(tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    one = make_instance(study, series, number=1)
    write(one, tmp_path / "a" / "1.dcm")
    for n in range(3):  # three more copies of the same instance
        write(one, tmp_path / f"copy{n}" / "1.dcm")
    write(make_instance(study, series, number=2), tmp_path / "a" / "2.dcm")
    source = LocalFolderSource(tmp_path)
    assert studies_of(source) == {study: 2}
    assert source.duplicates == 3
    assert source.notes() == "3 duplicates not listed"


@pytest.mark.parametrize("multiframe_first", [True, False])
def test_a_multi_frame_and_a_single_frame_object_sharing_a_uid_keep_the_multi_frame(
    tmp_path: Path, multiframe_first: bool
) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    names = ("a.dcm", "b.dcm") if multiframe_first else ("b.dcm", "a.dcm")
    write(make_instance(study, series, sop_uid=sop, frames=5), tmp_path / names[0])
    write(make_instance(study, series, sop_uid=sop, frames=1), tmp_path / names[1])
    source = LocalFolderSource(tmp_path)
    (instance,) = source.search_instances(study, series)
    assert instance.number_of_frames == 5
    assert source.duplicates == 1
    assert int(source.retrieve_instance(study, series, sop).NumberOfFrames) == 5


def test_files_without_the_part10_preamble_are_listed(tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    ds = make_instance(study, series)
    # The bare data set, as old ACR-NEMA style exports write it: no preamble, no "DICM".
    bare = make_instance(study, series, number=2)
    del bare.file_meta
    buffer = io.BytesIO()
    bare.save_as(buffer, implicit_vr=True, little_endian=True)
    raw = buffer.getvalue()
    assert raw[128:132] != b"DICM" and raw[:2] == b"\x08\x00"
    (tmp_path / "IM0").write_bytes(raw)
    # Part 10 without its 128-byte preamble and "DICM": the file meta group first.
    (tmp_path / "IM1").write_bytes(part10(ds)[132:])
    (tmp_path / "notes.txt").write_text("Patient said hello\n" * 20)
    (tmp_path / "noise.bin").write_bytes(bytes(range(256)) * 4)
    source = LocalFolderSource(tmp_path)
    assert studies_of(source) == {study: 2}
    assert source.skipped == 2
    for original in (ds, bare):
        shown = source.retrieve_instance(study, series, str(original.SOPInstanceUID))
        assert shown.PixelData == original.PixelData
        assert shown.pixel_array[0, 0] == int(original.InstanceNumber)


# -- DICOMDIR ---------------------------------------------------------------------------


def _fileset(root: Path, studies: int = 2, per_series: int = 3) -> dict[str, int]:
    fs = FileSet()
    expected: dict[str, int] = {}
    for s in range(studies):
        study = generate_uid()
        expected[study] = 2 * per_series
        for _ in range(2):
            series = generate_uid()
            for n in range(per_series):
                fs.add(make_instance(study, series, number=n + 1, patient=f"Patient{s}^Test"))
    fs.write(root)
    return expected


def _lower_everything(root: Path) -> None:
    """What copying a Windows-made CD onto a case-sensitive disk can do."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in [*filenames, *dirnames]:
            if name != "DICOMDIR":
                os.rename(Path(dirpath, name), Path(dirpath, name.lower()))


def test_a_dicomdir_lists_its_studies_from_the_records_with_the_files_case_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    media = tmp_path / "cd"
    expected = _fileset(media)
    _lower_everything(media)
    names = {p.name for p in media.rglob("*") if p.is_file()}
    assert "DICOMDIR" in names and all(n == n.lower() for n in names - {"DICOMDIR"})
    read: list[str] = []
    real = _local.read_index_header

    def counting(member: object) -> object:
        read.append(str(member))
        return real(member)  # type: ignore[arg-type]

    monkeypatch.setattr(_local, "read_index_header", counting)
    for opened in (media, media / "DICOMDIR"):  # the folder, or the DICOMDIR itself
        source = LocalFolderSource(opened)
        assert studies_of(source) == expected
        assert read == []  # listed from the records: no instance file opened
        assert source.notes() == ""
    names_listed = {s.patient_name for s in source.search_studies()}
    assert names_listed == {"Patient0, Test", "Patient1, Test"}
    study = next(iter(expected))
    (series, _) = source.search_series(study)
    headers = source.series_metadata(study, series.series_uid)  # now the files are read
    assert [int(h.InstanceNumber) for h in headers] == [1, 2, 3]


def test_a_broken_dicomdir_falls_back_to_scanning(tmp_path: Path) -> None:
    media = tmp_path / "cd"
    expected = _fileset(media, studies=1)
    dicomdir = media / "DICOMDIR"
    dicomdir.write_bytes(dicomdir.read_bytes()[:400])  # cut short
    source = LocalFolderSource(media)
    assert studies_of(source) == expected
    assert "the DICOMDIR could not be used" in source.notes()


def test_a_dicomdir_naming_a_missing_file_falls_back_to_scanning(tmp_path: Path) -> None:
    media = tmp_path / "cd"
    expected = _fileset(media, studies=1, per_series=2)
    victim = next(p for p in media.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    victim.unlink()
    source = LocalFolderSource(media)
    (study,) = expected
    assert studies_of(source) == {study: expected[study] - 1}
    assert "which is not there" in source.notes()


# -- zip archives ---------------------------------------------------------------------


def _zip_with_problems(path: Path) -> tuple[str, str, list[Dataset]]:
    study, series = generate_uid(), generate_uid()
    datasets = [make_instance(study, series, number=n + 1, value=100) for n in range(4)]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("export/", b"")
        archive.writestr("export/CT/1.dcm", part10(datasets[0]))
        archive.writestr("export/CT/deeper/2.dcm", part10(datasets[1]))
        archive.writestr("export/3", part10(datasets[2]))
        archive.writestr("4.dcm", part10(datasets[3]), compress_type=zipfile.ZIP_STORED)
        archive.writestr("README.txt", "not DICOM")
        archive.writestr("viewer.exe", b"MZ" + bytes(500))
        archive.writestr("../evil", part10(make_instance(study, series, number=9)))
        # 20 MiB of zeros in a few hundred bytes: far past 10,000:1.
        archive.writestr("bomb.dcm", bytes(20 << 20), compress_type=zipfile.ZIP_BZIP2)
    return study, series, datasets


def test_a_zip_is_listed_in_place_refusing_escapes_and_bombs(tmp_path: Path) -> None:
    archive = tmp_path / "study.zip"
    study, series, datasets = _zip_with_problems(archive)
    with zipfile.ZipFile(archive) as check:
        bomb = check.getinfo("bomb.dcm")
        assert bomb.file_size >= 10_000 * bomb.compress_size
    before = sorted(tmp_path.rglob("*"))
    source = LocalFolderSource(archive)
    assert studies_of(source) == {study: 4}
    assert source.skipped == 2  # README.txt and viewer.exe
    notes = source.notes()
    assert "study.zip: 2 members refused" in notes
    assert "../evil: its path leads outside the archive" in notes
    assert "and 1 more" in notes
    problems = " ".join(source.problems)
    assert "../evil" in problems
    # Nothing was extracted next to the archive (or anywhere under it).
    assert sorted(tmp_path.rglob("*")) == before
    instances = source.search_instances(study, series)
    assert [i.instance_number for i in instances] == [1, 2, 3, 4]
    for ds in datasets:
        shown = source.retrieve_instance(study, series, str(ds.SOPInstanceUID))
        assert np.array_equal(shown.pixel_array, ds.pixel_array)
    headers = source.series_metadata(study, series)
    assert all(h.PixelData == b"" for h in headers)
    members = source.members(study)
    assert [m.read_bytes() for m in members] == [part10(ds) for ds in datasets]
    source.close()


def test_a_zip_member_refused_for_its_reason(tmp_path: Path) -> None:
    from viewer.loader._members import ZipArchive

    path = tmp_path / "odd.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("/etc/passwd", b"x")
        archive.writestr("C:/Windows/x.dcm", b"x")
        archive.writestr("a\\..\\..\\b", b"x")
        archive.writestr("fine.dcm", b"x")
    zipped = ZipArchive.open_path(path)
    assert [m.info.filename for m in zipped.members()] == ["fine.dcm"]
    assert {r.name for r in zipped.refused} == {"/etc/passwd", "C:/Windows/x.dcm", "a\\..\\..\\b"}
    zipped.close()


def test_a_zip_found_in_a_folder_is_read_too_and_a_broken_one_is_named(tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    write(make_instance(study, series, number=1), tmp_path / "loose.dcm")
    with zipfile.ZipFile(tmp_path / "more.zip", "w") as archive:
        archive.writestr("2.dcm", part10(make_instance(study, series, number=2)))
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04" + bytes(100))
    source = LocalFolderSource(tmp_path)
    assert studies_of(source) == {study: 2}
    assert "broken.zip is not a readable zip archive" in source.notes()


# -- large folders: progress, partial results, cancel -----------------------------------


def _many_studies(root: Path, count: int) -> list[str]:
    uids = []
    for n in range(count):
        study = generate_uid()
        uids.append(study)
        write(make_instance(study, generate_uid(), patient=f"P{n:03d}"), root / f"{n:03d}.dcm")
    return uids


def test_a_background_scan_lists_studies_before_it_ends_and_can_be_cancelled(
    tmp_path: Path,
) -> None:
    _many_studies(tmp_path, 30)
    source = LocalFolderSource(tmp_path)
    seen_while_scanning: list[int] = []
    reports: list[ScanProgress] = []
    finished = threading.Event()

    def on_progress(progress: ScanProgress) -> None:
        reports.append(progress)
        if not progress.done:
            # Asked from the scan's own thread, mid-scan: the list so far.
            seen_while_scanning.append(len(source.search_studies()))
            source.cancel_scan(wait=False)
        else:
            finished.set()

    source.start_scan(on_progress)
    assert finished.wait(30)
    first = reports[0]
    assert not first.done and first.studies == 1 and seen_while_scanning[0] >= 1
    final = reports[-1]
    assert final.done and final.cancelled and final.found < 30
    assert len(source.search_studies()) == final.studies  # what was found stays listed
    assert "cancelled" in final.line()
    source.close()


def test_a_full_background_scan_reports_every_file(tmp_path: Path) -> None:
    uids = _many_studies(tmp_path, 12)
    (tmp_path / "readme.txt").write_text("hello")
    source = LocalFolderSource(tmp_path)
    done: list[ScanProgress] = []
    finished = threading.Event()

    def on_progress(progress: ScanProgress) -> None:
        if progress.done:
            done.append(progress)
            finished.set()

    source.start_scan(on_progress)
    assert finished.wait(30)
    (final,) = done
    assert (final.files, final.found, final.studies, final.skipped) == (13, 12, 12, 1)
    assert final.line() == "13 files scanned, 12 DICOM instances found in 12 studies (done)"
    assert set(studies_of(source)) == set(uids)
    source.close()


def test_close_stops_a_running_scan(tmp_path: Path) -> None:
    _many_studies(tmp_path, 10)
    source = LocalFolderSource(tmp_path)
    entered = threading.Event()
    release = threading.Event()

    def on_progress(progress: ScanProgress) -> None:
        if not progress.done:
            entered.set()
            release.wait(10)

    source.start_scan(on_progress)
    assert entered.wait(10)
    release.set()
    source.close()  # joins the scan thread
    assert not source.scanning


def _iter_paths(root: Path) -> Iterator[Path]:
    yield from sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "name", ["MR_small_bigendian.dcm", "MR_small_implicit.dcm", "CT_small.dcm"]
)
def test_image_sizes_are_read_in_each_byte_order(tmp_path: Path, name: str) -> None:
    # pydicom's own test files (DESIGN.md §5): read from its wheel, never downloaded.
    original = Path(pydicom.__file__).parent / "data" / "test_files" / name
    (tmp_path / name).write_bytes(original.read_bytes())
    ds = pydicom.dcmread(original, stop_before_pixels=True)
    source = LocalFolderSource(tmp_path)
    (instance,) = source.search_instances(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID))
    assert (instance.rows, instance.columns) == (ds.Rows, ds.Columns)
    assert instance.instance_number == (int(ds.InstanceNumber) if "InstanceNumber" in ds else None)
