"""What the loader needs from a source beyond `net.StudySource`, and raw-byte helpers.

`StudySource` covers search, metadata and instance retrieval — enough for a local
folder. Frames, server-rendered images, thumbnails and WADO-URI are HTTP-only:
`RenderingSource` names them, and the loader uses a protocol other than ``wadors``
only when the source has them (`DicomWebClient` does).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from pydicom.dataset import Dataset

from net import (
    AnswerTooLarge,
    AuthError,
    DicomWebClient,
    Frame,
    InsecureUrl,
    NotFound,
    ProtocolError,
    RenderedImage,
    ServerError,
    StudySource,
    TlsError,
    TransportError,
)

__all__ = ["RenderingSource", "is_transient", "namespace_of", "raw_bytes"]


@runtime_checkable
class RenderingSource(Protocol):
    def retrieve_frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frames: Sequence[int]
    ) -> list[Frame]: ...

    def rendered(
        self,
        study_uid: str,
        series_uid: str | None = None,
        sop_uid: str | None = None,
        *,
        frame: int | None = None,
        viewport: tuple[int, int] | None = None,
        window: tuple[float, float] | None = None,
        quality: int | None = None,
    ) -> RenderedImage: ...

    def thumbnail(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str | None = None,
        *,
        viewport: tuple[int, int] = (128, 128),
    ) -> RenderedImage: ...

    def wado_uri(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        *,
        content_type: str = "application/dicom",
        frame: int | None = None,
    ) -> Dataset | RenderedImage: ...


def namespace_of(source: StudySource) -> str:
    """The disk-cache namespace of a source: its WADO-RS root for a DICOMweb client.

    Other sources get none (a local folder is its own cache), so nothing is written
    to disk for them unless the caller names a namespace.
    """
    if isinstance(source, DicomWebClient):
        return source.wado_rs_root
    return ""


def raw_bytes(ds: Dataset) -> bytes | None:
    """The Part 10 bytes `ds` was parsed from, when it was read from a memory buffer.

    pydicom keeps the buffer it read as `FileDataset.buffer`: a `BytesIO` (whose
    `getvalue()` of unchanged contents is the original bytes, no copy), or the
    network layer's file over a part's received pieces (read once more: one copy,
    only for single requests). Datasets read from files give None: nothing to cache.
    """
    buffer = getattr(ds, "buffer", None)
    if isinstance(buffer, io.BytesIO):
        return buffer.getvalue()
    if buffer is None or not all(hasattr(buffer, name) for name in ("seek", "read")):
        return None
    try:
        buffer.seek(0)
        data = buffer.read()
    except (OSError, ValueError):
        return None
    return bytes(data) if isinstance(data, bytes | bytearray | memoryview) else None


def is_transient(error: BaseException) -> bool:
    """Whether asking again may help: a dropped connection, a gateway, a broken body.

    Not a refused login, a missing object, a certificate problem, a 4xx answer or an
    answer over a size limit: those fail the same way every time.
    """
    if isinstance(error, TlsError | AuthError | NotFound | InsecureUrl | AnswerTooLarge):
        return False
    if isinstance(error, ServerError):
        return (error.status_code or 0) >= 500
    return isinstance(error, TransportError | ProtocolError)
