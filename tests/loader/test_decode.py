"""Parsing and decoding: the zero-copy fast path must give exactly what pydicom gives.

Every uncompressed file bundled with pydicom and the phantom are decoded both ways;
compressed ones must still go through `render` (and come out the same too).
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset

import render
from net import RenderedImage
from viewer import phantom
from viewer.loader import build_layout, fit_within, to_rgba
from viewer.loader._decode import decode_rendered
from viewer.loader._instance import (
    decode_instance_frame,
    instance_from_dataset,
    instance_from_part10,
)
from viewer.loader._layout import InstanceHeader, header_of
from viewer.loader._quick import quick_geometry, quick_pixel_format, quick_sop_uid

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _decodable(path: Path) -> tuple[bytes, Dataset] | None:
    try:
        data = path.read_bytes()
        ds = pydicom.dcmread(io.BytesIO(data))
        render.pixel_format(ds)
        render.decode_frame(ds, 0)
    except Exception:
        return None
    return data, ds


with warnings.catch_warnings():  # pydicom warns about the odd files; they are the point
    warnings.simplefilter("ignore")
    CASES = [
        p
        for p in sorted(TEST_FILES.rglob("*"))
        if p.is_file() and p.stat().st_size < 8_000_000 and _decodable(p) is not None
    ]


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_both_parsers_decode_like_pydicom(path: Path) -> None:
    found = _decodable(path)
    assert found is not None
    data, ds = found
    frames = render.pixel_format(ds).number_of_frames
    for frame in sorted({0, frames - 1}):
        expected = render.decode_frame(ds, frame)
        for instance in (instance_from_dataset(ds), instance_from_part10(data)):
            got = decode_instance_frame(instance, frame)
            assert got.pixels.dtype == expected.pixels.dtype
            assert np.array_equal(got.pixels, expected.pixels)
            assert not got.pixels.flags.writeable  # cached frames are shared: read-only
            header = instance.header.dataset  # parsed from the bytes before the pixels
            assert "PixelData" not in header or len(header.PixelData) == 0
            assert header.get("SOPInstanceUID") == ds.get("SOPInstanceUID")


def test_fast_path_is_taken_for_plain_ct_and_keeps_the_received_buffer(
    small_study: phantom.StudyManifest,
) -> None:
    data = small_study.series["uncompressed"].paths[5].read_bytes()
    instance = instance_from_part10(data)
    assert instance.native is not None and instance.dataset is None
    assert instance.raw is data  # the disk cache gets the bytes as received, no copy
    frame = decode_instance_frame(instance, 0)
    assert frame.pixels.base is not None  # a view: pixel data not copied again
    assert frame.nbytes == 64 * 64 * 2
    assert np.array_equal(frame.pixels, pydicom.dcmread(io.BytesIO(data)).pixel_array)
    info = render.image_info(frame.header)  # the header alone describes the image
    assert info.format.rows == 64


def test_multiframe_frames_are_copies_so_one_frame_costs_one_frame(
    small_study: phantom.StudyManifest,
) -> None:
    instance = instance_from_part10(small_study.series["multiframe"].paths[0].read_bytes())
    assert instance.frames == 8
    frames = [decode_instance_frame(instance, f) for f in range(8)]
    assert all(f.pixels.base is None or f.pixels.base.nbytes == f.nbytes for f in frames)
    assert len({f.pixels.tobytes() for f in frames}) == 8


def test_compressed_instances_go_through_render(small_study: phantom.StudyManifest) -> None:
    if "j2k" not in small_study.series:
        pytest.skip("no JPEG 2000 encoder to make the phantom's J2K series")
    data = small_study.series["j2k"].paths[2].read_bytes()
    instance = instance_from_part10(data)
    assert instance.native is None and instance.dataset is not None
    expected = pydicom.dcmread(small_study.series["uncompressed"].paths[2]).pixel_array
    assert np.array_equal(decode_instance_frame(instance, 0).pixels, expected)


def test_header_of_keeps_everything_but_the_pixel_bytes() -> None:
    ds = pydicom.dcmread(TEST_FILES / "CT_small.dcm")
    header = header_of(ds)
    assert header.PixelData == b""
    assert ds.PixelData != b""  # the original is untouched
    assert header.PatientName == ds.PatientName
    assert not hasattr(header, "buffer") or getattr(header, "buffer", None) is None
    without = pydicom.dcmread(TEST_FILES / "CT_small.dcm", stop_before_pixels=True)
    assert header_of(without).PixelData == b""  # read without pixels: still an image


def test_layout_orders_by_geometry_and_skips_non_images(small_study: phantom.StudyManifest) -> None:
    unc = small_study.series["uncompressed"]
    headers = [header_of(pydicom.dcmread(p, stop_before_pixels=True)) for p in unc.paths]
    report = Dataset()
    report.SOPInstanceUID = "1.2.3.4"  # a structured report filed in the series
    shuffled = [headers[7], report, *headers[::-1], headers[7]]  # duplicates, any order
    layout = build_layout(small_study.study_uid, unc.series_uid, shuffled)
    assert len(layout) == len(unc.sop_uids)
    zs = [ref.geometry.distance for ref in layout.slices]
    assert zs == sorted(zs)  # feet to head along the normal
    assert layout.stacks == (range(0, len(unc.sop_uids)),)
    assert layout.index_of(unc.sop_uids[0]) == len(unc.sop_uids) - 1  # instance 1 is the head
    assert layout.slices[0].stream_rank == 2  # server order is kept for predictions
    assert layout.image_info(0).format.columns == 64
    assert layout.frame_nbytes(0) == 64 * 64 * 2


def test_server_rendered_images_and_thumbnails_scale() -> None:
    grey = np.tile(np.arange(0, 256, 2, dtype=np.uint8), (64, 1))
    buffer = io.BytesIO()
    Image.fromarray(grey, "L").save(buffer, format="PNG")
    image = RenderedImage(data=buffer.getvalue(), media_type="image/png", source="rendered")
    frame = decode_rendered(image, InstanceHeader("", dataset=Dataset()), 0, (40.0, 400.0))
    assert frame.server_rendered and frame.window == (40.0, 400.0)
    rgba = to_rgba(frame)
    assert rgba.shape == (64, 128, 4) and rgba.dtype == np.float32
    assert rgba[0, -1, 0] == pytest.approx(254 / 255)
    small = fit_within(rgba, (32, 32))
    assert small.shape == (16, 32, 4) and small.flags.c_contiguous
    assert fit_within(rgba, (500, 500)).shape == rgba.shape  # never scaled up
    with pytest.raises(render.DecodeError):
        decode_rendered(
            RenderedImage(data=b"nope", media_type="image/png"),
            InstanceHeader("", dataset=Dataset()),
            0,
            None,
        )


def _readable(path: Path) -> bool:
    try:
        pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:
        return False
    return True


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    HEADER_CASES = [
        p
        for p in sorted(TEST_FILES.rglob("*"))
        if p.is_file() and p.stat().st_size < 8_000_000 and _readable(p)
    ]


@pytest.mark.parametrize("path", HEADER_CASES, ids=[p.name for p in HEADER_CASES])
def test_quick_readers_agree_with_render(path: Path) -> None:
    """The raw-element fast path says exactly what render says, or stands aside."""
    quick_ds = pydicom.dcmread(path, stop_before_pixels=True)
    slow_ds = pydicom.dcmread(path, stop_before_pixels=True)
    quick_header, slow_header = header_of(quick_ds), header_of(slow_ds)
    fmt = quick_pixel_format(quick_header)
    if fmt is not None:
        assert fmt == render.pixel_format(slow_header)
    geometry = quick_geometry(quick_header)
    if geometry is not None:
        assert geometry == render.slice_geometries(slow_header)
    sop = quick_sop_uid(quick_ds)
    if sop is not None:
        assert sop == str(slow_ds.get("SOPInstanceUID", "") or "")


def test_quick_readers_cover_the_common_case(small_study: phantom.StudyManifest) -> None:
    header = header_of(
        pydicom.dcmread(small_study.series["uncompressed"].paths[0], stop_before_pixels=True)
    )
    assert quick_pixel_format(header) is not None
    assert quick_geometry(header) is not None
    multi = header_of(
        pydicom.dcmread(small_study.series["multiframe"].paths[0], stop_before_pixels=True)
    )
    assert quick_geometry(multi) is None  # functional groups: render's job


def _twelve_bits_in_sixteen(values: np.ndarray, signed: bool) -> Dataset:
    """A one-frame dataset of `values`' bytes as 12 bits stored in 16 allocated."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPInstanceUID = "1.2.3.4"
    ds.Rows, ds.Columns = values.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = int(signed)
    ds.PixelData = values.tobytes()
    return ds


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_bits_above_bits_stored_are_cleared_as_pydicom_does(signed: bool) -> None:
    # 12 bits stored in 16 with garbage above (PS3.5 8.1.1): the fast path's one
    # pass must give pydicom's values, for negative numbers too.
    rng = np.random.default_rng(7)
    raw = rng.integers(0, 65536, size=(16, 24), dtype=np.uint16)
    ds = _twelve_bits_in_sixteen(raw, signed)
    got = decode_instance_frame(instance_from_dataset(ds), 0).pixels
    expected = ds.pixel_array
    assert got.dtype == expected.dtype and np.array_equal(got, expected)
    assert (int(got.min()) < 0) == signed and int(np.abs(got.astype(np.int32)).max()) < 4096
    assert not got.flags.writeable and bytes(ds.PixelData) == raw.tobytes()  # not in place


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_clean_bits_above_bits_stored_leave_the_frame_as_received_and_one_stray_bit_is_cleared(
    signed: bool,
) -> None:
    # The usual file has nothing above Bits Stored (or the sign's copies): the frame is
    # then the received bytes, not a copy; a single pixel with a stray high bit makes
    # the whole frame be cleared as pydicom clears it.
    rng = np.random.default_rng(11)
    low, high = (-2048, 2047) if signed else (0, 4095)
    values = rng.integers(low, high + 1, size=(16, 24)).astype(np.int16 if signed else np.uint16)
    values.flat[0], values.flat[1] = low, high  # the range's own ends are clean
    ds = _twelve_bits_in_sixteen(values, signed)
    got = decode_instance_frame(instance_from_dataset(ds), 0).pixels
    assert np.array_equal(got, ds.pixel_array) and np.array_equal(got, values)
    received = np.frombuffer(ds.PixelData, dtype=got.dtype)
    assert np.shares_memory(got, received) and not got.flags.writeable

    stray = values.view(np.uint16).copy()
    stray.flat[5] ^= 0x4000  # one pixel with a bit above Bits Stored wrong
    ds.PixelData = stray.tobytes()
    got = decode_instance_frame(instance_from_dataset(ds), 0).pixels
    assert np.array_equal(got, ds.pixel_array) and np.array_equal(got, values)
    assert not np.shares_memory(got, np.frombuffer(ds.PixelData, dtype=got.dtype))
