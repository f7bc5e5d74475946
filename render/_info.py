"""What a dataset says about its pixels, read once into plain frozen values.

`PixelFormat` is the Image Pixel module (PS3.3 C.7.6.3) as far as rendering
needs it. `frame_attribute` looks an attribute up the way enhanced multi-frame
objects (PS3.3 C.7.6.16) store it: the frame's own functional group, then the
shared one, then the top level of the dataset, so the same code reads a classic
CT slice and one frame of an enhanced MR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydicom.dataset import Dataset

from ._errors import UnsupportedImage

__all__ = ["PixelFormat", "frame_attribute", "number_of_frames", "pixel_format"]

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


def _required_int(ds: Dataset, keyword: str) -> int:
    value = ds.get(keyword)
    if value is None or value == "":
        raise UnsupportedImage(f"the image has no {keyword}")
    return int(value)


def number_of_frames(ds: Dataset) -> int:
    """Number of Frames (0028,0008); 1 when absent or empty (single-frame objects)."""
    value = ds.get("NumberOfFrames")
    try:
        frames = int(value) if value not in (None, "") else 1
    except (TypeError, ValueError):
        frames = 1
    return max(frames, 1)


def pixel_format(ds: Dataset) -> PixelFormat:
    """Read the Image Pixel module; raise `UnsupportedImage` if it cannot describe pixels."""
    keyword = next((kw for kw in _PIXEL_KEYWORDS if kw in ds), None)
    if keyword is None:
        raise UnsupportedImage("the object has no pixel data")
    samples = int(ds.get("SamplesPerPixel") or 1)
    rows = _required_int(ds, "Rows")
    columns = _required_int(ds, "Columns")
    if keyword == "PixelData":
        bits_allocated = _required_int(ds, "BitsAllocated")
        bits_stored = int(ds.get("BitsStored") or bits_allocated)
        signed = int(ds.get("PixelRepresentation") or 0) == 1
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
        planar_configuration=int(ds.get("PlanarConfiguration") or 0),
        pixel_keyword=keyword,
        number_of_frames=number_of_frames(ds),
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
