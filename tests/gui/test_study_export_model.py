"""File > Export study… without a display: as-is and de-identified exports of a local study.

De-identification is checked attribute by attribute against the profile's table —
DICOM PS3.15 Table E.1-1 as dicom-anonymizer generates it from the standard
(`viewer.deid.PROFILE_TABLE`) — on instances that carry every attribute of the table
pydicom knows, at the top level and again inside a sequence the table does not name.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.datadict import dictionary_has_tag, dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from viewer.app.study_export import ExportRequest, export_study
from viewer.app.ui_thread import CancelToken
from viewer.deid import profile_actions
from viewer.loader import LocalFolderSource

_VALUES: dict[str, object] = {
    "AE": "SECRETAE", "AS": "042Y", "CS": "SECRET", "DA": "19700102", "DT": "19700102120000",
    "TM": "120000", "DS": "1.5", "IS": "7", "FL": 1.5, "FD": 1.5, "SL": 7, "SS": 7, "UL": 7,
    "US": 7, "SV": 7, "UV": 7, "LO": "Secret Jane Doe", "LT": "Secret Jane Doe",
    "SH": "SecretJD", "ST": "Secret Jane Doe", "UT": "Secret Jane Doe", "UC": "Secret Jane",
    "PN": "Doe^Jane^Secret", "UR": "http://secret.example/jane", "OB": b"SECRET!!",
    "OW": b"SECRET!!", "OD": b"SECRET!!", "OF": b"SECRET!!", "OL": b"SECRET!!",
    "OV": b"SECRET!!", "UN": b"SECRET!!",
}  # fmt: skip
#: The table's attributes that pydicom knows (bar the command and file meta groups) and
#: the action for each.
_TABLE = {
    tag: action.__name__
    for tag, action in profile_actions().items()
    if len(tag) == 2 and dictionary_has_tag(Tag(*tag)) and tag[0] not in (0x0000, 0x0002)
}
#: Kept by the test, not by the profile: what makes the file an image of this study.
_STRUCTURE = {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"}


def _value(tag: tuple[int, int]) -> object:
    vr = dictionary_VR(Tag(*tag)).split(" or ")[0]
    if vr == "SQ":
        item = Dataset()
        item.PatientName = "Doe^Jane^Nested"
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "1", "99X", "Jane"
        return Sequence([item])
    if vr == "UI":
        return generate_uid()
    return _VALUES[vr]


def _fill(ds: Dataset) -> None:
    for tag in _TABLE:
        keyword = keyword_for_tag(Tag(*tag))
        if keyword in _STRUCTURE or Tag(*tag) in ds:
            continue
        vr = dictionary_VR(Tag(*tag)).split(" or ")[0]
        ds.add_new(Tag(*tag), vr, _value(tag))


def _instance(
    study: str, series: str, frame_of_reference: str, n: int, *, burned: bool = False
) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.FrameOfReferenceUID = frame_of_reference
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 1 + n // 3, n % 3 + 1
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = (np.arange(64, dtype=np.uint16) * (n + 1)).tobytes()
    ds.BurnedInAnnotation = "YES" if burned else "NO"
    _fill(ds)
    # Every table attribute again, nested where the table does not look itself.
    nested = Dataset()
    _fill(nested)
    ds.SharedFunctionalGroupsSequence = Sequence([nested])
    block = ds.private_block(0x0009, "ZHIVA SECRET", create=True)
    block.add_new(0x01, "LO", "private Jane Doe")
    return ds


@pytest.fixture
def study(tmp_path: Path) -> tuple[Path, list[Dataset]]:
    folder = tmp_path / "study"
    folder.mkdir()
    study_uid, frame = generate_uid(), generate_uid()
    series = [generate_uid(), generate_uid()]
    datasets = [_instance(study_uid, series[n // 3], frame, n, burned=n == 4) for n in range(6)]
    # Instance 5 refers to instance 0 from a sequence the table does not name.
    reference = Dataset()
    reference.ReferencedSOPClassUID = CTImageStorage
    reference.ReferencedSOPInstanceUID = datasets[0].SOPInstanceUID
    referenced_series = Dataset()
    referenced_series.SeriesInstanceUID = series[0]
    referenced_series.ReferencedInstanceSequence = Sequence([reference])
    datasets[5].ReferencedSeriesSequence = Sequence([referenced_series])
    for n, ds in enumerate(datasets):
        ds.save_as(folder / f"{n}.dcm", enforce_file_format=True)
    return folder, datasets


def _exported(destination: Path) -> list[Dataset]:
    if destination.suffix == ".zip":
        with zipfile.ZipFile(destination) as archive:
            names = sorted(n for n in archive.namelist() if not n.endswith("/"))
            return [pydicom.dcmread(archive.open(n)) for n in names]
    return [pydicom.dcmread(p) for p in sorted(destination.rglob("*.dcm"))]


def _check_profile(original: Dataset, exported: Dataset, where: str) -> None:
    """Every attribute of the table is gone, emptied or replaced (never the original)."""
    for tag, action in _TABLE.items():
        if Tag(*tag) not in original:
            continue
        keyword = keyword_for_tag(Tag(*tag))
        before = original[Tag(*tag)].value
        if Tag(*tag) not in exported:
            continue  # gone
        after = exported[Tag(*tag)].value
        if action == "delete":
            # X: removed; dicom-anonymizer writes a dummy date instead for DA.
            assert exported[Tag(*tag)].VR == "DA", f"{where}{keyword} (X) is still there"
        assert after != before, f"{where}{keyword} ({action}) kept its value {before!r}"
        if isinstance(after, Sequence):
            for item in after:
                assert "Doe^Jane^Nested" not in str(item), f"{where}{keyword} kept its items"


@pytest.mark.parametrize("to_zip", [False, True])
def test_a_deidentified_export_follows_the_basic_profile(
    study: tuple[Path, list[Dataset]], tmp_path: Path, to_zip: bool
) -> None:
    folder, originals = study
    assert len(_TABLE) > 500  # the table as the library has it, not a handful
    source = LocalFolderSource(folder)
    (summary,) = source.search_studies()
    destination = tmp_path / ("out.zip" if to_zip else "out")
    progress: list[tuple[int, int]] = []
    report = export_study(
        source, ExportRequest(summary.study_uid, None, destination, deidentify=True),
        progress=lambda done, total: progress.append((done, total)),
    )  # fmt: skip
    assert (report.written, report.failed, report.burned_in) == (6, (), 1)
    assert progress[-1] == (6, 6)
    level, text = report.summary()
    assert level == "warning" and "1 of them are marked Burned In Annotation = YES" in text
    exported = _exported(destination)
    by_pixels = {bytes(ds.PixelData): ds for ds in exported}
    assert len(by_pixels) == 6
    new_sops: dict[str, str] = {}
    for original in originals:
        ds = by_pixels[bytes(original.PixelData)]  # pixel data unchanged, byte for byte
        _check_profile(original, ds, "")
        _check_profile(
            original.SharedFunctionalGroupsSequence[0], ds.SharedFunctionalGroupsSequence[0],
            "SharedFunctionalGroupsSequence > ",
        )  # fmt: skip
        assert not any(element.tag.is_private for element in ds)
        assert "Jane" not in str(ds) and "SECRET" not in str(ds).upper()
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        new_sops[str(original.SOPInstanceUID)] = str(ds.SOPInstanceUID)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    # New UIDs, consistent across the export: one study, two series, one frame of
    # reference, every instance its own, and a reference to instance 0 follows it.
    assert len({str(ds.StudyInstanceUID) for ds in exported}) == 1
    assert str(exported[0].StudyInstanceUID) != str(originals[0].StudyInstanceUID)
    assert len({str(ds.SeriesInstanceUID) for ds in exported}) == 2
    assert len({str(ds.FrameOfReferenceUID) for ds in exported}) == 1
    assert not set(new_sops) & set(new_sops.values()) and len(set(new_sops.values())) == 6
    last = by_pixels[bytes(originals[5].PixelData)]
    reference = last.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
    assert reference.ReferencedSOPInstanceUID == new_sops[str(originals[0].SOPInstanceUID)]
    assert last.ReferencedSeriesSequence[0].SeriesInstanceUID == (
        by_pixels[bytes(originals[0].PixelData)].SeriesInstanceUID
    )
    # Names say series number, modality and position, nothing of the patient.
    names = (
        zipfile.ZipFile(destination).namelist()
        if to_zip
        else [str(p.relative_to(destination)) for p in destination.rglob("*.dcm")]
    )
    assert sorted(names) == [f"S00{s}-CT/I0000{i}.dcm" for s in (1, 2) for i in (1, 2, 3)]


def test_two_exports_get_different_uids_and_private_tags_can_be_kept(
    study: tuple[Path, list[Dataset]], tmp_path: Path
) -> None:
    folder, _ = study
    source = LocalFolderSource(folder)
    (summary,) = source.search_studies()
    first = export_study(source, ExportRequest(summary.study_uid, None, tmp_path / "a"))
    second = export_study(
        source, ExportRequest(summary.study_uid, None, tmp_path / "b", keep_private=True)
    )
    assert first.written == second.written == 6
    a, b = _exported(tmp_path / "a"), _exported(tmp_path / "b")
    assert a[0].StudyInstanceUID != b[0].StudyInstanceUID
    block = b[0].private_block(0x0009, "ZHIVA SECRET")
    assert block[0x01].value == "private Jane Doe"
    assert b[0].PatientIdentityRemoved == "NO"


def test_an_export_as_is_copies_the_files_and_one_series_alone(
    study: tuple[Path, list[Dataset]], tmp_path: Path
) -> None:
    folder, originals = study
    source = LocalFolderSource(folder)
    (summary,) = source.search_studies()
    series_uid = str(originals[3].SeriesInstanceUID)
    report = export_study(
        source,
        ExportRequest(summary.study_uid, series_uid, tmp_path / "s.zip", deidentify=False),
    )
    assert report.written == 3 and not report.deidentified
    with zipfile.ZipFile(tmp_path / "s.zip") as archive:
        data = [archive.read(n) for n in sorted(archive.namelist())]
    assert data == [(folder / f"{n}.dcm").read_bytes() for n in (3, 4, 5)]
    assert report.summary()[0] == "success"


def test_a_cancelled_or_refused_export_leaves_nothing(
    study: tuple[Path, list[Dataset]], tmp_path: Path
) -> None:
    folder, _ = study
    source = LocalFolderSource(folder)
    (summary,) = source.search_studies()
    token = CancelToken()
    report = export_study(
        source, ExportRequest(summary.study_uid, None, tmp_path / "c.zip"), cancel=token,
        progress=lambda done, total: token.cancel(),
    )  # fmt: skip
    assert report.cancelled and not list(tmp_path.glob("c.zip*"))
    report = export_study(
        source, ExportRequest(summary.study_uid, None, tmp_path / "d"), cancel=token
    )
    assert report.cancelled and not (tmp_path / "d").exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    report = export_study(source, ExportRequest(summary.study_uid, None, busy))
    assert report.stopped is not None and "not empty" in report.stopped
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
