"""`_scan`: the header scan agrees with pydicom's reader on every test file, or stands aside.

Every file pydicom bundles and the phantom's variants: where the scan answers, the
pixel element is where ``stop_before_pixels`` stops, the same top-level elements are
there with the same values, and the loader's `Instance` is the same as through
pydicom. Where it cannot (big endian, compressed, deflated, no preamble) it returns
None. Truncated or damaged bytes never raise.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.errors import InvalidDicomError

from tests.support.testdata import pydicom_test_files
from viewer import phantom
from viewer.loader import _instance
from viewer.loader._instance import Instance, instance_from_part10
from viewer.loader._scan import EXPLICIT_LE, IMPLICIT_LE, scan_part10

SMALL = {"slices": 4, "rows": 48, "cols": 48, "multiframe_frames": 3, "multiframe_size": 48}


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's complaints about odd test files
        yield


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("scan")
    variants: tuple[phantom.Variant, ...] = ("uncompressed", "multiframe")
    if phantom.j2k_available():
        variants = (*variants, "j2k")
    manifest = phantom.generate_study(root, variants=variants, **SMALL)  # type: ignore[arg-type]
    ours = [p for s in manifest.series.values() for p in s.paths]
    return ours + pydicom_test_files()


def _synthetic(implicit: bool, undefined: bool) -> bytes:
    """Every VR with a long length field, private elements and nested sequences
    (of defined or undefined length), before 16-bit pixel data."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence

    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.add_new(0x00081030, "LO", "study")
    ds.add_new(0x00180010, "LO", "agent")
    ds.add_new(0x00081190, "UR", "https://example.org/x")
    ds.add_new(0x00400280, "ST", "comment")
    ds.add_new(0x00081080, "LO", ["a", "b"])
    ds.add_new(0x00209158, "LT", "long text")
    ds.add_new(0x0040A160, "UT", "unlimited " * 30)
    ds.add_new(0x00080119, "UC", "code value")
    ds.add_new(0x00660040, "OL", b"\x01\x00\x00\x00" * 3)
    ds.add_new(0x00720075, "OV", b"\x02" * 16)
    ds.add_new(0x00720082, "SV", [1, -2])
    ds.add_new(0x00720083, "UV", [3, 4])
    ds.add_new(0x00091010, "UN", b"private bytes!")
    inner = Dataset()
    inner.add_new(0x00081150, "UI", "1.2.3")
    deeper = Dataset()
    deeper.add_new(0x00080100, "SH", "code")
    inner.add_new(0x00400260, "SQ", Sequence([deeper]))
    ds.add_new(0x00081140, "SQ", Sequence([inner, inner]))
    ds.add_new(0x00082112, "SQ", Sequence([]))
    ds.Rows, ds.Columns = 4, 3
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 1
    ds.ImagePositionPatient = [0, 0, 5]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.InstanceNumber = 7
    ds.PixelData = np.arange(12, dtype="<i2").tobytes()
    if undefined:
        for keyword in ("ReferencedImageSequence", "SourceImageSequence"):
            element = ds[keyword]
            element.is_undefined_length = True
            for item in element.value:
                item.is_undefined_length_sequence_item = True
        ds.ReferencedImageSequence[0][0x00400260].is_undefined_length = True
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = IMPLICIT_LE if implicit else EXPLICIT_LE
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize("undefined", [False, True])
def test_every_long_vr_and_nested_sequences(implicit: bool, undefined: bool) -> None:
    data = _synthetic(implicit, undefined)
    if undefined:
        assert b"\xfe\xff\xdd\xe0" in data  # the sequences really have delimiters
    scan = scan_part10(data)
    assert scan is not None
    expected = _pydicom_header(data)
    assert expected is not None
    ds, position = expected
    assert scan.position == position
    assert set(scan.dataset.keys()) - {scan.pixel_tag} == set(ds.keys())
    for tag in list(ds.keys()):
        if ds[tag].VR != "SQ":
            assert scan.dataset[tag].value == ds[tag].value, tag
    instance = instance_from_part10(data)
    assert instance.native is not None
    assert bytes(instance.native) == np.arange(12, dtype="<i2").tobytes()
    assert instance.header.dataset.ReferencedImageSequence[0].ReferencedSOPClassUID == "1.2.3"


def _pydicom_header(data: bytes) -> tuple[pydicom.Dataset, int] | None:
    stream = io.BytesIO(data)
    try:
        ds = pydicom.dcmread(stream, stop_before_pixels=True)
    except (InvalidDicomError, Exception):
        return None
    return ds, stream.tell()


def test_the_scan_agrees_with_pydicom_where_it_answers(files: list[Path]) -> None:
    answered = 0
    for path in files:
        data = path.read_bytes()
        scan = scan_part10(data)
        if scan is None:
            continue
        expected = _pydicom_header(data)
        assert expected is not None, path
        ds, position = expected
        answered += 1
        assert scan.position == position, path
        assert scan.transfer_syntax_uid == str(ds.file_meta.TransferSyntaxUID), path
        assert scan.transfer_syntax_uid in (EXPLICIT_LE, IMPLICIT_LE)
        ours = scan.dataset
        assert set(ours.keys()) - {scan.pixel_tag} == set(ds.keys()), path
        for tag in list(ds.keys()):  # a Dataset iterates over elements, not tags
            if ds[tag].VR == "SQ":
                continue  # sequences are skipped, not parsed: only their presence counts
            assert ours[tag].value == ds[tag].value, (path, tag)
    # Not vacuous: the phantom and a good share of pydicom's files take the scan.
    assert answered >= 40


def test_what_the_scan_does_not_read_is_left_to_pydicom(files: list[Path]) -> None:
    refused = 0
    for path in files:
        data = path.read_bytes()
        if scan_part10(data) is not None:
            continue
        refused += 1
        expected = _pydicom_header(data)
        if expected is None or data[128:132] != b"DICM":
            continue  # not Part 10 at all
        syntax = str(expected[0].file_meta.get("TransferSyntaxUID", ""))
        if syntax in (EXPLICIT_LE, IMPLICIT_LE):
            # The only such files it refuses are those without pixel data
            # (DICOMDIRs, reports, plans): nothing for the quick path to do.
            assert "PixelData" not in pydicom.dcmread(io.BytesIO(data), force=True), path
    assert refused >= 40  # big endian, deflated, compressed, not DICOM


def _same(a: Instance, b: Instance) -> None:
    assert a.sop_uid == b.sop_uid
    assert a.fmt == b.fmt
    assert a.transfer_syntax_uid == b.transfer_syntax_uid
    assert a.header.geometry == b.header.geometry
    assert a.header.pixel_format == b.header.pixel_format
    assert a.header.dataset == b.header.dataset
    if b.native is not None:
        assert a.native is not None and bytes(a.native) == bytes(b.native)
    else:
        assert a.native is None and a.dataset is not None


def test_the_loader_gets_the_same_instance_either_way(
    files: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    quick = 0
    for path in files:
        data = path.read_bytes()
        if scan_part10(data) is None:
            continue
        try:
            fast = instance_from_part10(data)
        except Exception:
            fast = None
        with monkeypatch.context() as patch:
            patch.setattr(_instance, "scan_part10", lambda data: None)
            try:
                slow = instance_from_part10(data)
            except Exception:
                assert fast is None, path  # the quick path must not accept what pydicom refuses
                continue
        assert fast is not None, path
        _same(fast, slow)
        quick += fast.native is not None
    assert quick >= 20


def test_the_phantom_takes_the_scan_and_its_pixels_are_a_view(files: list[Path]) -> None:
    path = next(p for p in files if p.parent.name == "uncompressed")
    data = path.read_bytes()
    instance = instance_from_part10(data)
    assert isinstance(instance.native, memoryview) and instance.native.obj is data
    pixels = np.frombuffer(instance.native, dtype="<i2").reshape(48, 48)
    assert np.array_equal(pixels, pydicom.dcmread(path).pixel_array)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cut=st.integers(min_value=0, max_value=2000), flips=st.lists(st.integers(0, 1999), max_size=4)
)
def test_damaged_bytes_never_raise(files: list[Path], cut: int, flips: list[int]) -> None:
    data = bytearray(next(p for p in files if p.parent.name == "uncompressed").read_bytes())
    for at in flips:
        if at < len(data):
            data[at] ^= 0xFF
    damaged = bytes(data[: len(data) - cut] if cut else data)
    scan = scan_part10(damaged)  # None or a scan: never an exception
    if scan is not None:
        assert 132 < scan.position <= len(damaged) - 8
