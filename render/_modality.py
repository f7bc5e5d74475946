"""Modality LUT stage: stored values to modality values (HU, SUV, ...).

PS3.3 C.11.1: either a linear Rescale Slope/Intercept or a Modality LUT
Sequence maps stored pixel values to meaningful units before any windowing.
Pixel Padding Value (PS3.3 C.7.5.1.1.2) marks stored values that are not part
of the image; it is read here because it, too, is defined on stored values.
Everything is pure: frozen values in, numpy out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from ._errors import UnsupportedImage
from ._info import PixelFormat, element_float, element_int, frame_attribute

__all__ = [
    "ModalityLUT",
    "ModalityTransform",
    "Rescale",
    "apply_modality",
    "modality_transform",
    "padding_range",
]


@dataclass(frozen=True, slots=True)
class Rescale:
    """Linear modality transform: ``slope * stored + intercept`` (PS3.3 C.11.1.1.2)."""

    slope: float = 1.0
    intercept: float = 0.0
    rescale_type: str = ""


@dataclass(frozen=True, slots=True)
class ModalityLUT:
    """A Modality LUT Sequence item (PS3.3 C.11.1.1.1).

    Stored values below `first_mapped` map to the first entry, values past the
    end to the last. `data` holds the entries as little-endian uint16 so the
    value is hashable and can key a LUT cache.
    """

    first_mapped: int
    bits: int
    data: bytes
    lut_type: str = ""

    @property
    def table(self) -> np.ndarray:
        """The entries as a read-only uint16 array."""
        return np.frombuffer(self.data, dtype="<u2")


ModalityTransform = Rescale | ModalityLUT

IDENTITY = Rescale()


def _is_little_endian(ds: Dataset) -> bool:
    encoding = getattr(ds, "original_encoding", None)
    if encoding and encoding[1] is not None:
        return bool(encoding[1])
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    return syntax != "1.2.840.10008.1.2.2"


def read_lut_data(
    item: Dataset, ds: Dataset, entries: int, *, keyword: str = "LUTData"
) -> np.ndarray:
    """LUT Data (0028,3006) or Palette Color LUT Data as uint16, whichever VR it came in.

    OW bytes are words in the transfer syntax's byte order (PS3.5 7.3), so a big
    endian file's tables are read big endian. Fewer bytes than two per entry are
    8-bit entries, one per byte, padded to an even length: what the standard
    asks of 8-bit palettes (PS3.3 C.7.6.3.1.5) and what some writers do for
    other LUTs too.
    """
    value = item.get(keyword)
    if value is None:
        raise ValueError(f"the LUT has no {keyword}")
    if isinstance(value, bytes | bytearray):
        if entries <= len(value) < 2 * entries:
            return np.frombuffer(value, dtype=np.uint8, count=entries).astype(np.uint16)
        dtype = "<u2" if _is_little_endian(ds) else ">u2"
        words = np.frombuffer(value, dtype=dtype, count=min(len(value) // 2, entries))
        return words.astype(np.uint16)
    values = [value] if isinstance(value, int) else list(value)
    return np.asarray(values, dtype=np.int64).astype(np.uint16)[:entries]


def lut_descriptor(
    item: Dataset, *, signed: bool, keyword: str = "LUTDescriptor"
) -> tuple[int, int, int]:
    """(entries, first mapped value, bits) from LUT Descriptor (0028,3002) or the like.

    0 entries means 65536; the first mapped value is US or SS, so for signed
    images a US reading of 32768+ is a negative number (PS3.3 C.11.1.1.1).
    """
    descriptor = [int(v) for v in item.get(keyword)]
    entries, first, bits = descriptor[0], descriptor[1], descriptor[2]
    if entries == 0:
        entries = 65536
    if signed and first >= 32768:
        first -= 65536
    return entries, first, bits


def modality_transform(
    ds: Dataset, frame: int = 0, *, fmt: PixelFormat | None = None
) -> ModalityTransform:
    """The modality transform for `frame` of `ds` (PS3.3 C.11.1, C.7.6.16.2.9).

    A Modality LUT Sequence wins over Rescale Slope/Intercept, as it must when
    both are (wrongly) present; colour images get the identity, since the
    Modality LUT applies to grayscale only.
    """
    if fmt is not None:
        signed = fmt.signed
    else:
        signed = element_int(ds.get("PixelRepresentation"), "PixelRepresentation") == 1
    if fmt is not None and fmt.samples_per_pixel != 1:
        return IDENTITY
    sequence = ds.get("ModalityLUTSequence")
    if sequence:
        item = sequence[0]
        try:
            entries, first, bits = lut_descriptor(item, signed=signed)
            table = read_lut_data(item, ds, entries)
        except (TypeError, ValueError, IndexError) as exc:
            raise UnsupportedImage(f"the Modality LUT Sequence is unusable: {exc}") from exc
        return ModalityLUT(
            first_mapped=first,
            bits=bits,
            data=table.astype("<u2").tobytes(),
            lut_type=str(item.get("ModalityLUTType") or ""),
        )
    group = "PixelValueTransformationSequence"
    slope = element_float(frame_attribute(ds, frame, group, "RescaleSlope"), "RescaleSlope")
    intercept = element_float(
        frame_attribute(ds, frame, group, "RescaleIntercept"), "RescaleIntercept"
    )
    rescale_type = frame_attribute(ds, frame, group, "RescaleType")
    if slope is None and intercept is None:
        return IDENTITY
    if slope is None or slope == 0.0:
        # A zero slope would flatten the image to one grey: treat as absent.
        slope = 1.0
    return Rescale(
        slope=slope,
        intercept=intercept if intercept is not None else 0.0,
        rescale_type=str(rescale_type or ""),
    )


def apply_modality(stored: np.ndarray, transform: ModalityTransform) -> np.ndarray:
    """Modality values (float64) for stored values (PS3.3 C.11.1)."""
    values = np.asarray(stored)
    if isinstance(transform, Rescale):
        out = values.astype(np.float64)
        if transform.slope != 1.0:
            out *= transform.slope
        if transform.intercept != 0.0:
            out += transform.intercept
        return out
    table = transform.table
    index = np.clip(values.astype(np.int64) - transform.first_mapped, 0, len(table) - 1)
    return table[index].astype(np.float64)


def modality_range(fmt: PixelFormat, transform: ModalityTransform) -> tuple[float, float]:
    """Lowest and highest modality value the stored bit depth can produce."""
    if fmt.signed:
        low, high = -(2 ** (fmt.bits_stored - 1)), 2 ** (fmt.bits_stored - 1) - 1
    else:
        low, high = 0, 2**fmt.bits_stored - 1
    if isinstance(transform, ModalityLUT):
        table = transform.table
        return float(table.min()), float(table.max())
    ends = apply_modality(np.array([low, high]), transform)
    return float(ends.min()), float(ends.max())


def padding_range(ds: Dataset, fmt: PixelFormat) -> tuple[int, int] | None:
    """Stored values that are padding, inclusive, or None (PS3.3 C.7.5.1.1.2).

    Pixel Padding Value alone marks one value; with Pixel Padding Range Limit
    every value between the two (in either order) is padding. Only grayscale
    images are padded.
    """
    if fmt.samples_per_pixel != 1 or fmt.is_float:
        return None
    if not fmt.photometric_interpretation.startswith("MONOCHROME"):
        return None
    value = element_int(ds.get("PixelPaddingValue"), "PixelPaddingValue")
    if value is None:
        return None
    limit = element_int(ds.get("PixelPaddingRangeLimit"), "PixelPaddingRangeLimit")
    first = _as_stored(value, fmt)
    last = _as_stored(limit, fmt) if limit is not None else first
    return (min(first, last), max(first, last))


def _as_stored(value: int, fmt: PixelFormat) -> int:
    # US/SS is ambiguous in the header; a signed image's padding read as US
    # (e.g. from DICOM JSON) shows up as 32768+ and means a negative value.
    if fmt.signed and fmt.bits_allocated <= 16 and value >= 1 << (fmt.bits_allocated - 1):
        return value - (1 << fmt.bits_allocated)
    return value
