"""How much a server may send and how long it may take: the named defaults, in one place.

Every body the client reads is bounded in size (`SizeLimits`) and every request in time
(`Deadlines`), so a hostile or broken server can neither exhaust memory (a 1 GiB search
answer, a gzip bomb, a multipart part that never ends) nor hang the viewer (a body
trickling in at one byte per second). The limits are generous for real DICOM — the
largest plausible instance is a whole-slide image — and a library user raises them by
passing other values to `DicomWebClient`; tests pass short deadlines instead of waiting.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_DEADLINES", "DEFAULT_SIZE_LIMITS", "Deadlines", "SizeLimits"]

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True, kw_only=True)
class SizeLimits:
    """The most bytes (after decompression) one answer may bring; more is a `ProtocolError`."""

    #: A QIDO search, a metadata or a STOW answer. The metadata of a 5,000-instance study
    #: is ~50 MB of DICOM JSON; decoded, 64 MiB of JSON already takes ~10x in objects.
    json_bytes: int = 64 * MiB
    #: What is read of an error answer for its message (the rest is not needed).
    error_bytes: int = 64 * KiB
    #: A thumbnail, a server-rendered image, a WADO-URI image.
    image_bytes: int = 32 * MiB
    #: One instance or frame: a multipart part or a single-part answer. The largest
    #: plausible instance (a whole-slide image level can be larger: raise it for those).
    part_bytes: int = 2 * GiB
    #: A part larger than this is kept in a temporary file while it arrives, so a part
    #: that never ends costs disk up to `part_bytes`, not memory.
    spool_bytes: int = 128 * MiB


@dataclass(frozen=True, kw_only=True)
class Deadlines:
    """Time limits over whole requests; per-read timeouts stay in `ServerConfig`.

    A search, metadata, a thumbnail, a frame or a single instance must be complete within
    `request` seconds (retries included). A series stream may take as long as it needs
    but fails (and is then resumed like a dropped connection) when fewer than
    `progress_bytes` arrive within `progress_window` seconds.
    """

    request: float = 30.0
    progress_window: float = 30.0
    progress_bytes: int = 64 * KiB


DEFAULT_SIZE_LIMITS = SizeLimits()
DEFAULT_DEADLINES = Deadlines()
