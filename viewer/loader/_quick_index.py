"""The header elements a scan indexes, read from the first bytes of a Part 10 file.

A scan needs a dozen values of each file (its UIDs, numbers, the patient, study and
series attributes), all in groups 0002 to 0028, which come first in the file. pydicom's
reader builds the whole header element by element (~0.2 ms a file here, most of a
scan of small files); this walks the element headers of one prefix (`PREFIX_BYTES`),
keeps the top-level elements before group 0029 as the `RawDataElement`s pydicom
itself makes (values are converted by pydicom when asked, character sets included),
and skips sequences — nested to any depth, defined or undefined length — without
parsing them. Anything it does not read returns None and the caller uses pydicom:
no "DICM" prefix, big endian or deflated data sets, a header longer than the prefix,
a length that runs past it, a VR that is not two capital letters.
"""

from __future__ import annotations

import struct

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import BaseTag
from pydicom.uid import UID

# The scanner of streamed instances skips sequences the same way (nested, any length).
from ._scan import UNDEFINED_LENGTH, Malformed, element_header
from ._scan import _skip_items as _skip_sequence

__all__ = ["PREFIX_BYTES", "quick_header"]

#: Read at once: more than the header of nearly every file before its group 0029.
PREFIX_BYTES = 16 * 1024
_IMPLICIT_LE = "1.2.840.10008.1.2"
#: Data sets these encode are read by pydicom (PS3.5 A.3 big endian, A.5 deflate).
_NOT_HERE = {"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1"}
_TRANSFER_SYNTAX = 0x00020010
_SOP_CLASS = 0x00020002
_LAST_TAG = 0x0028FFFF


def _text(data: bytes, start: int, length: int) -> str:
    return data[start : start + length].decode("ascii").strip(" \x00")


def quick_header(data: bytes, *, complete: bool) -> Dataset | None:
    """The header elements up to group 0028 of the Part 10 file starting with `data`;
    `complete`: `data` is the whole file (a short file may end before group 0029)."""
    if len(data) < 140 or data[128:132] != b"DICM":
        return None
    try:
        pos, syntax, sop_class = 132, "", ""
        while pos + 8 <= len(data) and data[pos : pos + 2] == b"\x02\x00":
            tag, _, length, start = element_header(data, pos, False)
            if length == UNDEFINED_LENGTH or start + length > len(data):
                return None
            if tag == _TRANSFER_SYNTAX:
                syntax = _text(data, start, length)
            elif tag == _SOP_CLASS:
                sop_class = _text(data, start, length)
            pos = start + length
        if not syntax or syntax in _NOT_HERE:
            return None
        implicit = syntax == _IMPLICIT_LE
        elements: dict[BaseTag, DataElement | RawDataElement] = {}
        while True:
            if pos >= len(data):
                if complete and pos == len(data):
                    break  # a file with nothing after its header (no pixels)
                return None
            tag, vr, length, start = element_header(data, pos, implicit)
            if tag > _LAST_TAG:
                break
            if length == UNDEFINED_LENGTH:
                pos = _skip_sequence(data, start, implicit)
                continue
            end = start + length
            if end > len(data):
                return None
            if vr != b"SQ":  # nothing indexed is a sequence: not even parsed
                key = BaseTag(tag)
                elements[key] = RawDataElement(
                    key, None if vr is None else vr.decode("ascii"), length,
                    data[start:end], start, implicit, True, True, False,
                )  # fmt: skip
            pos = end
    except (Malformed, UnicodeDecodeError, struct.error):
        return None
    ds = Dataset(elements)
    ds.set_original_encoding(implicit, True)
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = UID(syntax)
    if sop_class:
        meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta = meta
    return ds
