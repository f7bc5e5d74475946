"""Where a local instance's bytes live: a file on disk, or a member of a zip archive.

PACS portals and research archives hand studies out as zip files. They are read in
place: the central directory lists the members, a member's header is read by
decompressing only its first bytes, and a member is decompressed whole only when it
is viewed — nothing is extracted to disk. Before any member is read the archive is
checked as a whole: a member whose name leaves the archive (``../evil``, ``/etc``,
``C:\\``), one that would expand more than `MAX_RATIO` times (a zip bomb: deflate
itself cannot pass ~1032:1, so more means another method or a lying header), one
larger than `MAX_MEMBER_BYTES`, an encrypted one, or members whose data overlap
(the "overlapping files" bomb) are refused with a reason, and the rest are listed.
"""

from __future__ import annotations

import itertools
import re
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "MAX_MEMBER_BYTES",
    "MAX_RATIO",
    "FileMember",
    "Member",
    "RefusedMember",
    "ZipArchive",
    "ZipMember",
    "is_zip",
]

#: Largest expansion (uncompressed / compressed size) of a member that is read.
MAX_RATIO = 1500
#: Members that small are never refused for their ratio (a few KB of zeros are harmless).
_RATIO_FLOOR_BYTES = 1 << 20
#: The largest member read into memory: the largest plausible single instance
#: (whole-slide images aside), the same bound as the network layer's parts.
MAX_MEMBER_BYTES = 2 << 30
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local header, or an empty archive
_LOCAL_HEADER = 30
_DRIVE = re.compile(r"^[A-Za-z]:")


def is_zip(head: bytes) -> bool:
    """Whether the first bytes of a file are those of a zip archive."""
    return head[:4] in _ZIP_MAGIC


class FileMember:
    """An instance stored as a file of its own."""

    __slots__ = ("path", "size")

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size

    @property
    def name(self) -> str:
        return str(self.path)

    def open(self) -> BinaryIO:
        return self.path.open("rb")

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()

    def __repr__(self) -> str:
        return f"FileMember({self.path!s})"


class ZipMember:
    """An instance stored in a zip archive; read on demand, never extracted."""

    __slots__ = ("archive", "info", "size")

    def __init__(self, archive: ZipArchive, info: zipfile.ZipInfo) -> None:
        self.archive = archive
        self.info = info
        self.size = info.file_size

    @property
    def name(self) -> str:
        return f"{self.archive.path}!{self.info.filename}"

    def open(self) -> BinaryIO:
        return self.archive.open(self.info)

    def read_bytes(self) -> bytes:
        with self.open() as stream:
            return stream.read()

    def __repr__(self) -> str:
        return f"ZipMember({self.name})"


Member = FileMember | ZipMember


@dataclass(frozen=True, slots=True)
class RefusedMember:
    """A member that is not read, and why (in words for the user)."""

    name: str
    reason: str


def _escapes(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or bool(_DRIVE.match(name)) or ".." in parts


@dataclass(eq=False)
class ZipArchive:
    """One zip file, opened once; members are listed by `members` after the checks."""

    path: Path
    _zip: zipfile.ZipFile = field(repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    refused: list[RefusedMember] = field(default_factory=list)

    @classmethod
    def open_path(cls, path: Path) -> ZipArchive:
        """Open `path`; zipfile.BadZipFile/OSError when it is not a readable zip."""
        return cls(path, zipfile.ZipFile(path))

    def members(self) -> Iterator[ZipMember]:
        """The files of the archive that may be read, in name order; the refused ones
        are recorded in `refused` (directories are neither)."""
        self.refused.clear()
        infos = [i for i in self._zip.infolist() if not i.is_dir()]
        overlapping = _overlapping(infos)
        for info in sorted(infos, key=lambda i: i.filename):
            reason = self._refusal(info, overlapping)
            if reason is not None:
                self.refused.append(RefusedMember(info.filename, reason))
                continue
            yield ZipMember(self, info)

    @staticmethod
    def _refusal(info: zipfile.ZipInfo, overlapping: set[int]) -> str | None:
        if _escapes(info.filename):
            return "its path leads outside the archive"
        if info.flag_bits & 0x1:
            return "it is encrypted"
        if info.file_size > MAX_MEMBER_BYTES:
            return f"it is larger than {MAX_MEMBER_BYTES >> 30} GiB"
        if info.file_size > _RATIO_FLOOR_BYTES and info.file_size > MAX_RATIO * max(
            info.compress_size, 1
        ):
            ratio = info.file_size // max(info.compress_size, 1)
            return f"it would expand {ratio:,} times (a zip bomb?)"
        if id(info) in overlapping:
            return "its data overlaps another member's (a zip bomb?)"
        return None

    def open(self, info: zipfile.ZipInfo) -> BinaryIO:
        # ZipFile shares one file object between members; its own lock makes reads
        # from several threads safe, ours keeps opening and closing in order.
        with self._lock:
            return self._zip.open(info)  # type: ignore[return-value]

    def close(self) -> None:
        with self._lock:
            self._zip.close()


def _overlapping(infos: list[zipfile.ZipInfo]) -> set[int]:
    """Members whose compressed data run into the next member's local header."""
    ordered = sorted(infos, key=lambda i: i.header_offset)
    bad: set[int] = set()
    for current, following in itertools.pairwise(ordered):
        end = current.header_offset + _LOCAL_HEADER + current.compress_size
        if following.header_offset < end:
            bad.update((id(current), id(following)))
    return bad
