"""The top-level elements of a Part 10 instance up to its pixel data, without pydicom's reader.

`pydicom.dcmread(..., stop_before_pixels=True)` costs ~0.2 ms an instance here (its
element generator, tag and keyword lookups, a `Dataset` built element by element):
~60 ms of a 300-slice series, all on the stream thread that every slice waits for.
The loader needs much less from the header of an uncompressed little-endian instance:
where the pixel element starts, and a dozen values `_quick` reads from the undecoded
bytes. This walks the element headers (tag, VR, length) and keeps each top-level
value as the `RawDataElement` pydicom itself would make, skipping sequences (their
items and delimiters, nested to any depth) without parsing them.

Anything else returns None and the caller reads the instance with pydicom: another
transfer syntax, a missing "DICM" prefix, a length running past the end, a VR that is
not two capital letters.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from ._layout import PIXEL_KEYWORDS

__all__ = ["LONG_VRS", "UNDEFINED_LENGTH", "Malformed", "Scan", "element_header", "scan_part10"]

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
_TRANSFER_SYNTAX_UID = 0x00020010
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
UNDEFINED_LENGTH = 0xFFFFFFFF
#: VRs with a 2-byte reserved field and a 4-byte length in explicit VR (PS3.5 7.1.2).
LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_HEADER = struct.Struct("<HH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class Malformed(Exception):
    """Not what this scanner reads: the caller uses pydicom."""


@dataclass(frozen=True, slots=True)
class Scan:
    transfer_syntax_uid: str
    #: The top-level elements before the pixel data, plus an empty pixel element.
    dataset: Dataset
    #: Offset of the pixel element's tag (what ``stop_before_pixels`` leaves `tell()` at).
    position: int
    pixel_tag: int


def element_header(data: bytes, pos: int, implicit: bool) -> tuple[int, bytes | None, int, int]:
    """(tag, VR, value length, value offset) of the element at `pos`."""
    if pos + 8 > len(data):
        raise Malformed
    group, element = _HEADER.unpack_from(data, pos)
    tag = (group << 16) | element
    if implicit or group == 0xFFFE:  # item and delimiter tags never have a VR
        return tag, None, _U32.unpack_from(data, pos + 4)[0], pos + 8
    vr = data[pos + 4 : pos + 6]
    if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
        raise Malformed
    if vr in LONG_VRS:
        if pos + 12 > len(data):
            raise Malformed
        return tag, vr, _U32.unpack_from(data, pos + 8)[0], pos + 12
    return tag, vr, _U16.unpack_from(data, pos + 6)[0], pos + 8


def _skip_items(data: bytes, pos: int, implicit: bool) -> int:
    """Past a value of undefined length: items up to and including the sequence
    delimiter (encapsulated pixel data fragments are items too)."""
    while True:
        tag, _, length, start = element_header(data, pos, True)
        if tag == _SEQUENCE_END:
            return start
        if tag != _ITEM:
            raise Malformed
        pos = _skip_item(data, start, implicit) if length == UNDEFINED_LENGTH else start + length
        if pos > len(data):
            raise Malformed


def _skip_item(data: bytes, pos: int, implicit: bool) -> int:
    """Past the elements of an item of undefined length and its delimiter."""
    while True:
        tag, _, length, start = element_header(data, pos, implicit)
        if tag == _ITEM_END:
            return start
        pos = _skip_items(data, start, implicit) if length == UNDEFINED_LENGTH else start + length
        if pos > len(data):
            raise Malformed


def _file_meta(data: bytes) -> tuple[str, int]:
    """The transfer syntax and where the data set starts."""
    pos = 132
    syntax = ""
    while pos + 8 <= len(data) and _U16.unpack_from(data, pos)[0] == 0x0002:
        tag, _, length, start = element_header(data, pos, False)
        if length == UNDEFINED_LENGTH or start + length > len(data):
            raise Malformed
        if tag == _TRANSFER_SYNTAX_UID:
            syntax = data[start : start + length].decode("ascii").strip(" \x00")
        pos = start + length
    return syntax, pos


def scan_part10(data: bytes) -> Scan | None:
    """The scan of an uncompressed little-endian Part 10 instance, or None."""
    if len(data) < 140 or data[128:132] != b"DICM":
        return None
    try:
        syntax, pos = _file_meta(data)
        if syntax not in (EXPLICIT_LE, IMPLICIT_LE):
            return None
        implicit = syntax == IMPLICIT_LE
        elements: dict[BaseTag, DataElement | RawDataElement] = {}
        while True:
            tag, vr, length, start = element_header(data, pos, implicit)
            if tag in PIXEL_KEYWORDS:
                key = BaseTag(tag)
                vr_text = None if vr is None else vr.decode("ascii")
                elements[key] = RawDataElement(
                    key, vr_text, 0, b"", start, implicit, True, True, False
                )
                return Scan(syntax, Dataset(elements), pos, tag)
            if length == UNDEFINED_LENGTH:
                end = _skip_items(data, start, implicit)
                value = None
            else:
                end = start + length
                if end > len(data):
                    return None
                value = data[start:end]
            key = BaseTag(tag)
            elements[key] = RawDataElement(
                key, None if vr is None else vr.decode("ascii"), length, value,
                start, implicit, True, True, False,
            )  # fmt: skip
            pos = end
    except (Malformed, UnicodeDecodeError, struct.error):
        return None
