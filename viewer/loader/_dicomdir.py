"""DICOMDIR media (CDs, DVDs, USB sticks): the studies listed from the directory records.

A DICOMDIR (PS3.10 7.3, PS3.3 F.3) describes its file-set as a tree of directory
records — PATIENT, STUDY, SERIES, then one record per instance (IMAGE, SR DOCUMENT,
PRESENTATION, …) — linked by byte offsets. Reading the tree lists every study,
series and instance without opening any of the instance files, which on a CD is
the difference between a second and minutes. Each instance record's Referenced File
ID names its file relative to the DICOMDIR; media written on Windows (or copied
through a file system that changed case) name ``IMAGES\\IM0001`` where the disk has
``images/im0001``, so components are matched case-insensitively (and an ISO 9660
version suffix ``;1`` is ignored).

A DICOMDIR that cannot be read, whose offsets lead nowhere or in a circle, or that
names a file not on the medium raises `BrokenDicomDir`; the caller scans the folder
instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from ._index import DICOMDIR_CLASS, LocalInstance, Summaries, instance_from_header
from ._members import FileMember

__all__ = ["BrokenDicomDir", "DicomDir", "find_dicomdir", "is_dicomdir_name", "read_dicomdir"]

_FIRST = "OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity"
_NEXT = "OffsetOfTheNextDirectoryRecord"
_LOWER = "OffsetOfReferencedLowerLevelDirectoryEntity"
#: Records that carry what the levels above an instance contribute to its header.
_LEVELS = ("PATIENT", "STUDY", "SERIES")
_MALFORMED = (AttributeError, KeyError, TypeError, ValueError, OSError, EOFError, IndexError)


class BrokenDicomDir(Exception):
    """The DICOMDIR does not describe its medium; scan the folder instead."""


@dataclass(frozen=True)
class DicomDir:
    path: Path
    instances: list[LocalInstance]


def is_dicomdir_name(name: str) -> bool:
    return name.upper().split(";")[0].rstrip(".") == "DICOMDIR"


def find_dicomdir(folder: Path) -> Path | None:
    """The DICOMDIR at the top of `folder` (any case), if there is one."""
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if is_dicomdir_name(entry.name) and entry.is_file():
                    return Path(entry.path)
    except OSError:
        return None
    return None


class _CaseInsensitiveResolver:
    """Referenced File IDs to paths, matching each component regardless of case."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._listings: dict[Path, dict[str, str]] = {}

    def _listing(self, folder: Path) -> dict[str, str]:
        listing = self._listings.get(folder)
        if listing is None:
            listing = {}
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        listing.setdefault(_normal(entry.name), entry.name)
            except OSError:
                pass
            self._listings[folder] = listing
        return listing

    def resolve(self, components: list[str]) -> Path | None:
        path = self.root
        for component in components:
            if component in ("", ".", ".."):
                return None  # a file ID names a file inside the file-set, nothing else
            actual = self._listing(path).get(_normal(component))
            if actual is None:
                return None
            path = path / actual
        return path if path.is_file() else None


def _normal(name: str) -> str:
    return name.split(";")[0].rstrip(".").upper()


def _file_id(record: Dataset) -> list[str] | None:
    value = record.get("ReferencedFileID")
    if value is None:
        return None
    if isinstance(value, str):
        value = value.replace("/", "\\").split("\\")
    return [str(v).strip() for v in value]


def read_dicomdir(path: Path) -> DicomDir:
    """Every instance a DICOMDIR lists, with its patient, study and series."""
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, *_MALFORMED) as exc:
        raise BrokenDicomDir(f"{path} cannot be read ({exc})") from exc
    meta = getattr(ds, "file_meta", None)
    sop_class = str(meta.get("MediaStorageSOPClassUID", "")) if meta is not None else ""
    if sop_class and sop_class != DICOMDIR_CLASS:
        raise BrokenDicomDir(f"{path} is not a DICOMDIR")
    try:
        return _read_records(path, ds)
    except _MALFORMED as exc:
        # pydicom parses sequences when first used: a cut or garbled record shows here.
        raise BrokenDicomDir(f"{path} has unreadable directory records ({exc})") from exc


def _read_records(path: Path, ds: Dataset) -> DicomDir:
    try:
        records = {int(r.seq_item_tell): r for r in ds.DirectoryRecordSequence}
        first = int(ds[_FIRST].value)
    except _MALFORMED as exc:
        raise BrokenDicomDir(f"{path} has no directory records") from exc
    resolver = _CaseInsensitiveResolver(path.parent)
    summaries = Summaries()
    instances: list[LocalInstance] = []
    for record, context in _walk(records, first):
        components = _file_id(record)
        if components is None:
            continue
        file = resolver.resolve(components)
        if file is None:
            raise BrokenDicomDir(f"{path} names {'/'.join(components)}, which is not there")
        header = _header(record, context)
        try:
            size = file.stat().st_size
        except OSError as exc:
            raise BrokenDicomDir(f"{file} cannot be read ({exc})") from exc
        instance = instance_from_header(FileMember(file, size), header, summaries)
        if instance is None:
            raise BrokenDicomDir(f"{path}: the record of {file.name} lacks its UIDs")
        instances.append(instance)
    if not instances:
        raise BrokenDicomDir(f"{path} lists no instances")
    return DicomDir(path, instances)


def _walk(records: dict[int, Dataset], first: int) -> Iterator[tuple[Dataset, list[Dataset]]]:
    """Each record with the records above it, depth first; BrokenDicomDir on an
    offset that names no record or a loop."""
    seen: set[int] = set()
    stack: list[tuple[int, list[Dataset]]] = [(first, [])]
    while stack:
        offset, context = stack.pop()
        while offset:
            if offset in seen or offset not in records:
                raise BrokenDicomDir(f"the directory record offset {offset} is invalid")
            seen.add(offset)
            record = records[offset]
            yield record, context
            lower = int(record.get(_LOWER, 0) or 0)
            following = int(record.get(_NEXT, 0) or 0)
            if lower:
                # Siblings after the children: push the sibling chain back first.
                stack.append((following, context))
                context, offset = [*context, record], lower
                continue
            offset = following


def _header(record: Dataset, context: list[Dataset]) -> Dataset:
    """What an instance's header would say at the patient/study/series level, from
    the records above it, plus the instance record's own values."""
    header = Dataset()
    for level in context:
        if str(level.get("DirectoryRecordType", "")).upper() not in _LEVELS:
            continue
        for element in level:
            if element.tag.group not in (0x0004,):
                header[element.tag] = element
    for element in record:
        if element.tag.group != 0x0004:
            header[element.tag] = element
    header.SOPInstanceUID = str(record.get("ReferencedSOPInstanceUIDInFile", "") or "")
    header.SOPClassUID = str(record.get("ReferencedSOPClassUIDInFile", "") or "")
    return header
