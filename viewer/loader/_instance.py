"""One retrieved instance, parsed just as far as the loader needs.

An instance arrives as Part 10 bytes (the network, the disk cache) or as a pydicom
dataset (a local folder). Either way the loader wants its header (everything but
pixel data), its pixel format and geometry, and its pixels. For uncompressed
little-endian data, parsing the bytes with ``stop_before_pixels`` and pointing a
numpy view at the pixel element inside the received buffer avoids pydicom copying
158 MB per series into fresh memory (~50 ms of a ~0.5 s series here); anything else
(JPEG 2000, big endian, odd layouts) is read in full and decoded through `render`.
The header keeps only its bytes (see `InstanceHeader`).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

import render

from ._cache import CachedFrame
from ._decode import decode_dataset_frame, decode_native_frame, is_fast, transfer_syntax_of
from ._layout import PIXEL_KEYWORDS, InstanceHeader, instance_geometries, sop_uid_of
from ._quick import quick_geometry, quick_pixel_format, quick_sop_uid
from ._scan import LONG_VRS, UNDEFINED_LENGTH, Malformed, element_header, scan_part10
from ._sources import raw_bytes

__all__ = [
    "Instance",
    "UnreadableInstance",
    "decode_instance_frame",
    "instance_from_dataset",
    "instance_from_part10",
]


class UnreadableInstance(render.RenderError):
    """Nothing could be read from an instance: an empty or truncated file (pydicom
    reads a truncated JPEG 2000 file as an empty dataset). Asking again will not help."""


@dataclass(frozen=True, slots=True, eq=False)
class Instance:
    """A retrieved instance: its header, and pixels from either `native` (raw
    little-endian samples, zero-copy) or `dataset` (the instance read in full)."""

    sop_uid: str
    header: InstanceHeader
    fmt: render.PixelFormat | None  # None: not an image
    transfer_syntax_uid: str
    native: bytes | bytearray | memoryview | None = None
    dataset: Dataset | None = None
    #: The Part 10 bytes as received, for the disk cache (None when read from disk).
    raw: bytes | None = None

    @property
    def frames(self) -> int:
        if self.fmt is not None:
            return self.fmt.number_of_frames
        # Listed in the layout (it has Rows and Columns) but not decodable, e.g. a
        # malformed value: its slices must fail with the reason, not wait for ever.
        return len(self.header.geometries())


def _format(ds: Dataset) -> render.PixelFormat | None:
    quick = quick_pixel_format(ds)
    if quick is not None:
        return quick
    try:
        return render.pixel_format(ds)
    except render.UnsupportedImage:
        return None  # not an image (a report filed in the series): nothing to show


def instance_from_dataset(ds: Dataset) -> Instance:
    """From a dataset read in full (local folder, WADO-URI, a single retrieval)."""
    if not len(ds):
        where = getattr(ds, "filename", None)
        named = f" ({Path(where).name})" if isinstance(where, str) and where else ""
        raise UnreadableInstance(
            f"An instance{named} is empty or damaged: nothing in it could be read."
        )
    fmt = _format(ds)
    ts = transfer_syntax_of(ds)
    header = InstanceHeader.of(ds)
    header.pixel_format = fmt
    header.geometry = instance_geometries(header.dataset)
    raw = raw_bytes(ds)
    native = ds.get("PixelData") if fmt is not None and is_fast(fmt, ts) else None
    if isinstance(native, bytes | bytearray | memoryview):
        return Instance(header.sop_uid, header, fmt, ts, native=native, raw=raw)
    return Instance(header.sop_uid, header, fmt, ts, dataset=ds, raw=raw)


def _pixel_element(data: bytes, position: int) -> int | None:
    """The pixel data tag (PixelData, Float..., DoubleFloat...) starting at `position`."""
    if len(data) < position + 8:
        return None
    group, element = struct.unpack_from("<HH", data, position)
    tag = (group << 16) | element
    return tag if tag in PIXEL_KEYWORDS else None


def _pixel_value_span(data: bytes, position: int, implicit: bool) -> tuple[int, int] | None:
    """(offset, length) of the Pixel Data value whose element starts at `position`."""
    try:
        _, vr, length, offset = element_header(data, position, implicit)
    except Malformed:
        return None
    if vr is not None and vr not in LONG_VRS:
        return None
    if length == UNDEFINED_LENGTH or offset + length > len(data):
        return None  # encapsulated, or truncated: pydicom will say what is wrong
    return offset, length


def _native_instance(
    data: bytes, header: InstanceHeader, ts: str, position: int, *, keep_raw: bool
) -> Instance | None:
    """The instance with its pixels as a view into `data`, if they can be one."""
    fmt = header.pixel_format
    if fmt is None or not is_fast(fmt, ts):
        return None
    span = _pixel_value_span(data, position, ts == pydicom.uid.ImplicitVRLittleEndian)
    if span is None:
        return None
    offset, length = span
    native = memoryview(data)[offset : offset + length]
    return Instance(header.sop_uid, header, fmt, ts, native=native, raw=data if keep_raw else None)


def instance_from_part10(data: bytes, *, keep_raw: bool = True) -> Instance:
    """From Part 10 bytes; uncompressed little-endian pixels stay in `data` (a view).

    Raises pydicom's errors for bytes that are not DICOM.
    """
    quick = _quick_instance(data, keep_raw=keep_raw)
    if quick is not None:
        return quick
    stream = io.BytesIO(data)
    try:
        ds = pydicom.dcmread(stream, stop_before_pixels=True)
    except InvalidDicomError:
        stream = io.BytesIO(data)
        ds = pydicom.dcmread(stream, force=True, stop_before_pixels=True)
    position = stream.tell()
    raw = data if keep_raw else None
    ts = transfer_syntax_of(ds)
    pixel_tag = _pixel_element(data, position)
    if pixel_tag is None:  # no pixel element where expected: let pydicom read it all
        full = pydicom.dcmread(io.BytesIO(data), force=True)
        return instance_from_dataset_with_raw(full, raw)
    # stop_before_pixels left the pixel element out; an empty one says which it is.
    ds.add_new(pixel_tag, PIXEL_KEYWORDS[pixel_tag], b"")
    fmt = _format(ds)
    header = InstanceHeader(
        quick_sop_uid(ds) or sop_uid_of(ds),
        raw=data[:position],  # a copy of the few KB before the pixels: no view on `data`
        pixel_format=fmt,
        geometry=instance_geometries(ds),
    )
    native = _native_instance(data, header, ts, position, keep_raw=keep_raw)
    if native is not None:
        return native
    full = pydicom.dcmread(io.BytesIO(data), force=True)
    return Instance(header.sop_uid, header, fmt, ts, dataset=full, raw=raw)


def _quick_instance(data: bytes, *, keep_raw: bool) -> Instance | None:
    """The common case without pydicom's reader (see `_scan`): an uncompressed
    little-endian classic image whose pixel format, geometry and SOP UID `_quick`
    reads. None for anything else, which the pydicom path handles."""
    scan = scan_part10(data)
    if scan is None:
        return None
    ds = scan.dataset
    # Only `_quick`: its fallbacks in `render` would read the sequences the scan skipped.
    fmt, sop, geometry = quick_pixel_format(ds), quick_sop_uid(ds), quick_geometry(ds)
    if fmt is None or not sop or geometry is None:
        return None
    header = InstanceHeader(sop, raw=data[: scan.position], pixel_format=fmt, geometry=geometry)
    return _native_instance(
        data, header, scan.transfer_syntax_uid, scan.position, keep_raw=keep_raw
    )


def instance_from_dataset_with_raw(ds: Dataset, raw: bytes | None) -> Instance:
    instance = instance_from_dataset(ds)
    return Instance(
        instance.sop_uid,
        instance.header,
        instance.fmt,
        instance.transfer_syntax_uid,
        native=instance.native,
        dataset=instance.dataset,
        raw=raw,
    )


def decode_instance_frame(instance: Instance, frame: int) -> CachedFrame:
    """Frame `frame` (0-based) of an instance as stored values.

    Raises `render.RenderError` subclasses when it cannot be decoded.
    """
    if instance.fmt is None:
        # The full dataset when there is one: a header always has (empty) pixel data.
        full = instance.dataset
        render.pixel_format(full if full is not None else instance.header.dataset)  # raises why
        raise render.UnsupportedImage("the object has no pixel data")
    if instance.native is not None:
        return decode_native_frame(
            instance.native, instance.fmt, instance.transfer_syntax_uid, instance.header, frame
        )
    assert instance.dataset is not None
    return decode_dataset_frame(instance.dataset, frame, instance.header, instance.fmt)
