"""Has this image been through lossy compression? The viewer must say so.

PS3.3 C.7.6.1.1.5: Lossy Image Compression (0028,2110) "01" means the image
has at some point been lossy compressed, even if it is stored losslessly now;
"00" means it has not. The transfer syntax tells the rest: some are always
lossy (JPEG DCT, MPEG), some may be either (JPEG 2000, HTJ2K, JPEG-LS near
lossless, JPEG XL), and for those we believe an explicit "00".
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom import uid as uids
from pydicom.dataset import Dataset

__all__ = ["LossyStatus", "lossy_status"]

# Transfer syntaxes whose pixel data are lossy by construction.
ALWAYS_LOSSY = frozenset(
    {
        uids.JPEGBaseline8Bit,
        uids.JPEGExtended12Bit,
        "1.2.840.10008.1.2.4.100",  # MPEG2 MP@ML
        "1.2.840.10008.1.2.4.100.1",
        "1.2.840.10008.1.2.4.101",  # MPEG2 MP@HL
        "1.2.840.10008.1.2.4.101.1",
        "1.2.840.10008.1.2.4.102",  # MPEG-4 AVC/H.264
        "1.2.840.10008.1.2.4.102.1",
        "1.2.840.10008.1.2.4.103",
        "1.2.840.10008.1.2.4.103.1",
        "1.2.840.10008.1.2.4.104",
        "1.2.840.10008.1.2.4.104.1",
        "1.2.840.10008.1.2.4.105",
        "1.2.840.10008.1.2.4.105.1",
        "1.2.840.10008.1.2.4.106",
        "1.2.840.10008.1.2.4.106.1",
        "1.2.840.10008.1.2.4.107",  # HEVC/H.265
        "1.2.840.10008.1.2.4.108",
    }
)

# Transfer syntaxes that allow lossy coding without requiring it.
MAYBE_LOSSY = frozenset(
    {
        uids.JPEGLSNearLossless,
        uids.JPEG2000,
        uids.HTJ2K,
        "1.2.840.10008.1.2.4.92",  # JPEG 2000 Part 2 multi-component
        "1.2.840.10008.1.2.4.93",
        "1.2.840.10008.1.2.4.110",  # JPEG XL
        "1.2.840.10008.1.2.4.112",  # JPEG XL JPEG recompression
    }
)


@dataclass(frozen=True, slots=True)
class LossyStatus:
    """`lossy` is what the viewer marks; `reason` is the text to show with it."""

    lossy: bool
    reason: str
    ratio: str = ""
    method: str = ""


def _text(value: object) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return value
    try:
        return "\\".join(str(v) for v in value)  # type: ignore[attr-defined]
    except TypeError:
        return str(value)


def lossy_status(ds: Dataset, *, transfer_syntax_uid: str | None = None) -> LossyStatus:
    """Whether `ds` has been lossy compressed, with the reason.

    `transfer_syntax_uid` overrides the file meta (WADO-RS frames may arrive in
    a different syntax from the one stored).
    """
    flag = str(ds.get("LossyImageCompression") or "").strip()
    ratio = _text(ds.get("LossyImageCompressionRatio"))
    method = _text(ds.get("LossyImageCompressionMethod"))
    meta = getattr(ds, "file_meta", None)
    ts = transfer_syntax_uid or (
        str(meta.get("TransferSyntaxUID") or "") if meta is not None else ""
    )
    name = uids.UID(ts).name if ts else ""
    if flag == "01":
        return LossyStatus(True, "Lossy Image Compression is 01", ratio, method)
    if ts in ALWAYS_LOSSY:
        return LossyStatus(True, f"transfer syntax {name} is lossy", ratio, method)
    if ts in MAYBE_LOSSY and flag != "00":
        return LossyStatus(True, f"transfer syntax {name} may be lossy", ratio, method)
    return LossyStatus(False, "no lossy compression recorded", ratio, method)
