"""The scan's quick header reader agrees with pydicom, and never raises on bad bytes."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from viewer.loader._index import Summaries, instance_from_header
from viewer.loader._members import FileMember
from viewer.loader._quick_index import PREFIX_BYTES, quick_header

TEST_FILES = sorted((Path(pydicom.__file__).parent / "data" / "test_files").glob("*.dcm"))
KEYWORDS = (
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID",
    "InstanceNumber", "Rows", "Columns", "NumberOfFrames", "PatientName", "PatientID",
    "StudyDate", "StudyDescription", "Modality", "SeriesNumber", "AccessionNumber",
)  # fmt: skip


def _entry(ds: Dataset, path: Path) -> object:
    instance = instance_from_header(FileMember(path, 0), ds, Summaries())
    if instance is None:
        return None
    return (
        instance.study_uid, instance.series_uid, instance.sop_uid, instance.sop_class_uid,
        instance.instance_number, instance.rows, instance.columns, instance.frames,
        instance.study, instance.series,
    )  # fmt: skip


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_the_quick_reader_indexes_what_pydicom_reads(path: Path) -> None:
    data = path.read_bytes()
    quick = quick_header(data[:PREFIX_BYTES], complete=len(data) <= PREFIX_BYTES)
    if quick is None:
        return  # left to pydicom (no preamble, big endian, deflated, a long header)
    full = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    assert _entry(quick, path) == _entry(full, path)


def test_most_test_files_take_the_quick_road() -> None:
    quick = sum(
        quick_header(p.read_bytes()[:PREFIX_BYTES], complete=p.stat().st_size <= PREFIX_BYTES)
        is not None
        for p in TEST_FILES
    )
    assert quick > len(TEST_FILES) // 2


def _with_sequences(undefined: bool) -> bytes:
    ds = pydicom.dcmread(next(p for p in TEST_FILES if p.name == "CT_small.dcm"))
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    inner = Dataset()
    inner.CodeValue = "X"
    item.ConceptNameCodeSequence = Sequence([inner])
    ds.ReferencedImageSequence = Sequence([item, item])  # (0008,1140), before group 0028
    if undefined:
        ds["ReferencedImageSequence"].is_undefined_length = True
        for element in (item["ConceptNameCodeSequence"],):
            element.is_undefined_length = True
        item.is_undefined_length_sequence_item = True
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize("undefined", [False, True])
def test_sequences_before_the_image_group_are_skipped(undefined: bool) -> None:
    data = _with_sequences(undefined)
    quick = quick_header(data[:PREFIX_BYTES], complete=len(data) <= PREFIX_BYTES)
    assert quick is not None
    assert "ReferencedImageSequence" not in quick and quick.Rows == 128
    full = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    assert str(quick.SOPInstanceUID) == str(full.SOPInstanceUID)


def test_a_header_longer_than_the_prefix_is_left_to_pydicom() -> None:
    data = _with_sequences(False)
    assert quick_header(data[:600], complete=False) is None


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0), st.binary(min_size=1, max_size=8), st.booleans())
def test_the_quick_reader_never_raises_on_damaged_bytes(
    where: int, junk: bytes, complete: bool
) -> None:
    data = bytearray(_with_sequences(True)[:PREFIX_BYTES])
    at = 132 + where % (len(data) - 132)
    data[at : at + len(junk)] = junk
    result = quick_header(bytes(data), complete=complete)
    assert result is None or isinstance(result, Dataset)
