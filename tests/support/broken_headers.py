"""Real files with header values out of the ordinary: malformed, or several values
where the standard allows one (seen in the wild)."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import generate_uid

__all__ = ["PYDICOM_TEST_FILES", "malformed_frames_series", "multi_valued_instance"]

PYDICOM_TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def malformed_frames_series(
    folder: Path, source: Path, count: int, broken: int | None = None
) -> tuple[str, str]:
    """`count` copies of `source` in one new series under `folder`, Number of Frames
    ``1A`` in the first `broken` of them (default: all); the (study, series) UIDs.

    The value goes in as a raw element, as a file brings it, so pydicom's reading
    rules (warn, keep the text) apply when it is read back.
    """
    folder.mkdir(parents=True)
    study_uid, series_uid = generate_uid(), generate_uid()
    tag = Tag("NumberOfFrames")
    for n in range(count):
        ds = pydicom.dcmread(source)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = n + 1
        if broken is None or n < broken:
            ds[tag] = RawDataElement(tag, "IS", 2, b"1A", 0, False, True)
        ds.save_as(folder / f"{n}.dcm", enforce_file_format=True)
    return study_uid, series_uid


def multi_valued_instance() -> Dataset:
    """pydicom's MR_small in a new study and series, with two values in each of
    Accession Number (``PR\\US``), Patient's Name, Patient ID, Study Description and
    Series Description (Series Number 7)."""
    ds = pydicom.dcmread(PYDICOM_TEST_FILES / "MR_small.dcm")
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.AccessionNumber = ["PR", "US"]
    ds.PatientName = ["Doe^John", "Roe^Ann"]
    ds.PatientID = ["ID-1", "ID-2"]
    ds.StudyDescription = ["HEAD", "NECK"]
    ds.SeriesNumber = 7
    ds.SeriesDescription = ["T1", "AX"]
    return ds
