"""What a dataset says about its pixels, read once into plain frozen values.

`PixelFormat` is the Image Pixel module (PS3.3 C.7.6.3) as far as rendering
needs it. `frame_attribute` looks an attribute up the way enhanced multi-frame
objects (PS3.3 C.7.6.16) store it: the frame's own functional group, then the
shared one, then the top level of the dataset, so the same code reads a classic
CT slice and one frame of an enhanced MR.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydicom.datadict import dictionary_description, tag_for_keyword
from pydicom.dataset import Dataset

from ._errors import MalformedElement, UnsupportedImage

__all__ = [
    "PixelFormat",
    "element_float",
    "element_int",
    "frame_attribute",
    "malformed",
    "number_of_frames",
    "pixel_format",
]

PixelKeyword = Literal["PixelData", "FloatPixelData", "DoubleFloatPixelData"]
_PIXEL_KEYWORDS: tuple[PixelKeyword, ...] = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@dataclass(frozen=True, slots=True)
class PixelFormat:
    """How the samples of one frame are laid out (PS3.3 C.7.6.3.1).

    `photometric_interpretation` is the value in the dataset; a decoder may
    hand back a different one (YBR_FULL_422 JPEG comes back RGB), which
    `DecodedFrame.photometric_interpretation` reports.
    """

    rows: int
    columns: int
    samples_per_pixel: int = 1
    bits_allocated: int = 16
    bits_stored: int = 16
    signed: bool = False
    photometric_interpretation: str = "MONOCHROME2"
    planar_configuration: int = 0
    pixel_keyword: PixelKeyword = "PixelData"
    number_of_frames: int = 1

    @property
    def is_float(self) -> bool:
        """Float Pixel Data or Double Float Pixel Data (e.g. parametric maps)."""
        return self.pixel_keyword != "PixelData"


_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
_SHOWN = 64  # characters of a malformed value quoted in its error


def malformed(keyword: str, value: Any) -> MalformedElement:
    """The error for `keyword` holding `value`, which does not parse."""
    tag = tag_for_keyword(keyword)
    label = f"({tag >> 16:04X},{tag & 0xFFFF:04X})" if tag is not None else ""
    name = dictionary_description(tag) if tag is not None else keyword
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("ascii", "replace")
    elif isinstance(value, Iterable) and not isinstance(value, str):
        text = "\\".join(str(v) for v in value)  # as DICOM writes a multi-value
    else:
        text = str(value)
    text = text.strip(" \x00")
    if len(text) > _SHOWN:
        text = text[: _SHOWN - 1] + "…"
    return MalformedElement(keyword, label, name, text)


def _get(ds: Dataset, keyword: str) -> Any:
    """`ds.get(keyword)`, with pydicom's conversion errors (strict reading) named."""
    try:
        return ds.get(keyword)
    except (ValueError, TypeError, OverflowError):
        element = ds.get_item(keyword)
        raise malformed(keyword, getattr(element, "value", "")) from None


def element_int(value: Any, keyword: str) -> int | None:
    """An integer value (US, SS, IS) read from `keyword`; None when absent or empty.

    A value that is not one integer (``1A``, ``2.5``, ``1\\2``) raises
    `MalformedElement` naming `keyword`: better a clear error than a guess
    that shows the wrong pixels.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise malformed(keyword, value)
    if isinstance(value, int):  # pydicom's IS is an int
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    raise malformed(keyword, value)


def element_float(value: Any, keyword: str) -> float | None:
    """A finite decimal value (DS, FL, FD) read from `keyword`; None when absent or empty.

    Anything else raises `MalformedElement` naming `keyword`.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool) or (isinstance(value, Iterable) and not isinstance(value, str)):
        raise malformed(keyword, value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise malformed(keyword, value) from None
    if not math.isfinite(number):
        raise malformed(keyword, value)
    return number


def _int(ds: Dataset, keyword: str, default: int) -> int:
    value = element_int(_get(ds, keyword), keyword)
    return default if value is None else value


def _required_int(ds: Dataset, keyword: str) -> int:
    value = element_int(_get(ds, keyword), keyword)
    if value is None:
        raise UnsupportedImage(f"the image has no {keyword}")
    return value


def number_of_frames(ds: Dataset) -> int:
    """Number of Frames (0028,0008); 1 when absent, empty or malformed.

    Lenient, because this counts slices for a series' layout: one broken
    instance must not hide the others. `pixel_format`, which decoding goes
    through, raises `MalformedElement` for a malformed value instead, so the
    slice shows why it cannot be displayed.
    """
    try:
        frames = element_int(_get(ds, "NumberOfFrames"), "NumberOfFrames")
    except MalformedElement:
        frames = None
    return max(frames or 1, 1)


def _no_pixels(ds: Dataset) -> str:
    """Why `ds` has no pixel data, as far as it shows."""
    # pydicom reads a file cut short without complaint: what it got before the end
    # (the file meta alone, or an image's header) is all that says so.
    if len(ds) == 0:
        return "the file holds no data set (only its file meta, if that): it may be truncated"
    if "Rows" in ds or "Columns" in ds:
        return "the image has no pixel data: the file may be truncated"
    return "the object has no pixel data"


def pixel_format(ds: Dataset) -> PixelFormat:
    """Read the Image Pixel module; raise `UnsupportedImage` if it cannot describe pixels.

    A value that does not parse raises `MalformedElement` naming the element.
    """
    keyword = next((kw for kw in _PIXEL_KEYWORDS if kw in ds), None)
    if keyword is None:
        raise UnsupportedImage(_no_pixels(ds))
    samples = _int(ds, "SamplesPerPixel", 1) or 1
    rows = _required_int(ds, "Rows")
    columns = _required_int(ds, "Columns")
    # Read here, strictly, though the layout counts frames leniently: pydicom's
    # decoder would otherwise fail on it with "invalid literal for int()".
    frames = max(_int(ds, "NumberOfFrames", 1), 1)
    if keyword == "PixelData":
        bits_allocated = _required_int(ds, "BitsAllocated")
        bits_stored = _int(ds, "BitsStored", bits_allocated) or bits_allocated
        signed = _int(ds, "PixelRepresentation", 0) == 1
    else:
        bits_allocated = 32 if keyword == "FloatPixelData" else 64
        bits_stored = bits_allocated
        signed = True
    photometric = str(ds.get("PhotometricInterpretation") or "").strip().upper()
    if not photometric:
        # Absent only in broken objects; the sample count is the best guess.
        photometric = "MONOCHROME2" if samples == 1 else "RGB"
    return PixelFormat(
        rows=rows,
        columns=columns,
        samples_per_pixel=samples,
        bits_allocated=bits_allocated,
        bits_stored=bits_stored,
        signed=signed,
        photometric_interpretation=photometric,
        planar_configuration=_int(ds, "PlanarConfiguration", 0),
        pixel_keyword=keyword,
        number_of_frames=frames,
    )


def frame_item(ds: Dataset, frame: int, sequence_keyword: str) -> Dataset | None:
    """The first item of a functional-group macro for `frame` (PS3.3 C.7.6.16).

    Per-frame groups override shared ones, as the standard requires.
    """
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and 0 <= frame < len(per_frame):
        sequence = per_frame[frame].get(sequence_keyword)
        if sequence:
            item: Dataset = sequence[0]
            return item
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        sequence = shared[0].get(sequence_keyword)
        if sequence:
            shared_item: Dataset = sequence[0]
            return shared_item
    return None


def frame_attribute(ds: Dataset, frame: int, sequence_keyword: str, keyword: str) -> Any:
    """`keyword` for `frame`: from its functional group if there, else the top level."""
    item = frame_item(ds, frame, sequence_keyword)
    if item is not None:
        value = item.get(keyword)
        if value not in (None, ""):
            return value
    value = ds.get(keyword)
    return None if value == "" else value
