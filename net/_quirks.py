"""What real DICOMweb servers do differently, and what the client learned about each.

Servers differ in ways a request can find out (docs/server-quirks.md has the sources):
AWS HealthImaging has no series-level retrieve, dcm4chee and others answer 406 to some
Accept headers, some .NET servers refuse unquoted ``type=`` parameters and some Java
servers quoted ones. This module holds

* the **Accept ladder**: what to ask for first (``transfer-syntax=*``, the stored bytes,
  decoded here), then an explicit list of the syntaxes the viewer decodes (HTJ2K
  included), then no transfer syntax at all (the server's default);
* the **media types** of compressed frames (PS3.18 Table 8.7.3-5), so a part that names
  only its media type still gets a transfer syntax;
* `ServerMemory`: what was learned about one server (series retrieve refused, which
  rung of the ladder it accepts, the largest ``limit`` it takes), kept for as long as
  the process runs so the second series does not pay for the first one's discovery.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from ._config import ServerConfig, wado_rs_root

__all__ = [
    "ACCEPT_STEPS",
    "DECODABLE_SYNTAXES",
    "FRAME_MEDIA_TYPES",
    "QIDO_RECORD_CEILING",
    "REFUSED_STATUSES",
    "RetrieveKind",
    "ServerMemory",
    "accept_header",
    "forget_servers",
    "memory_of",
    "multipart_type",
    "syntax_of_media_type",
]

RetrieveKind = Literal["dicom", "frames"]

#: The most records a QIDO search lists on AWS HealthImaging; past it the rest of the
#: results cannot be paged to, so the user is asked to narrow the search.
QIDO_RECORD_CEILING: Final = 10_000

#: Statuses that mean "this server does not offer that resource" rather than "it broke"
#: (AWS HealthImaging and static DICOMweb answer one of these to a series retrieve).
REFUSED_STATUSES: Final = frozenset({400, 404, 405, 406, 501})

EXPLICIT_LE: Final = "1.2.840.10008.1.2.1"
#: Transfer syntaxes the viewer decodes (render's plugins: pydicom, imagecodecs,
#: pylibjpeg-openjpeg, pyjpegls, python-gdcm), most compact first; a test in
#: tests/render checks each has an available decoder. Explicit little endian comes
#: last: servers that pick the last listed range (Orthanc) then never have to transcode
#: to a compressed syntax they may not support.
DECODABLE_SYNTAXES: Final[tuple[str, ...]] = (
    "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless (AWS HealthImaging stores this)
    "1.2.840.10008.1.2.4.202",  # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203",  # HTJ2K
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51",  # JPEG Extended
    "1.2.840.10008.1.2.5",  # RLE Lossless
    EXPLICIT_LE,
)
#: Media type of a compressed frame by transfer syntax (PS3.18 Table 8.7.3-5).
FRAME_MEDIA_TYPES: Final[dict[str, str]] = {
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
    EXPLICIT_LE: "application/octet-stream",
}
#: A transfer syntax for a part that names only its media type. Both JPEG 2000 kinds
#: decode with either UID (OpenJPEG reads the codestream, HT or not); ``image/jph`` and
#: ``image/j2c`` are the HTJ2K file format and a bare JPEG 2000 codestream, which AWS
#: HealthImaging also names.
_SYNTAX_OF_MEDIA_TYPE: Final[dict[str, str]] = {
    "image/jphc": "1.2.840.10008.1.2.4.201",
    "image/jph": "1.2.840.10008.1.2.4.201",
    "image/j2c": "1.2.840.10008.1.2.4.90",
    "image/jp2": "1.2.840.10008.1.2.4.90",
    "image/jpx": "1.2.840.10008.1.2.4.92",
    "image/jls": "1.2.840.10008.1.2.4.80",
    "image/x-jls": "1.2.840.10008.1.2.4.80",
    "image/jpeg": "1.2.840.10008.1.2.4.50",
    "image/dicom-rle": "1.2.840.10008.1.2.5",
    "image/x-dicom-rle": "1.2.840.10008.1.2.5",
    "application/octet-stream": EXPLICIT_LE,
}

#: The rungs of the Accept ladder, tried in this order after a 406.
ACCEPT_STEPS: Final = ("any", "listed", "default")


def syntax_of_media_type(media_type: str) -> str:
    """The transfer syntax a part of this media type most likely carries ("" if unknown)."""
    return _SYNTAX_OF_MEDIA_TYPE.get(media_type.strip().lower(), "")


def multipart_type(media_type: str, params: Sequence[tuple[str, str]], *, quoted: bool) -> str:
    """``multipart/related; type=...; ...`` with the parameters quoted or not.

    Some .NET servers refuse ``type=application/dicom``, some Java servers refuse
    ``type="application/dicom"`` (OHIF's ``omitQuotationForMultipartRequest``). Only
    ``type`` and ``boundary`` follow the switch: a ``transfer-syntax`` value is a UID or
    ``*``, which every server reads bare.
    """
    text = (
        f'multipart/related; type="{media_type}"'
        if quoted
        else f"multipart/related; type={media_type}"
    )
    for name, value in params:
        if name == "boundary" and quoted:
            text += f'; boundary="{value}"'
        else:
            text += f"; {name}={value}"
    return text


def accept_header(
    kind: RetrieveKind,
    step: int,
    *,
    quoted: bool,
    syntaxes: Sequence[str] = DECODABLE_SYNTAXES,
) -> str:
    """The Accept header of a retrieve on rung `step` of the ladder (`ACCEPT_STEPS`).

    ``dicom`` asks for Part 10 instances, ``frames`` for bare pixel data. The listed rung
    names each decodable syntax once (frames with their own media type), so a server
    that cannot send the stored bytes transcodes to something the viewer can show.
    """
    rung = ACCEPT_STEPS[step]
    if kind == "dicom":
        if rung == "any":
            return multipart_type("application/dicom", [("transfer-syntax", "*")], quoted=quoted)
        if rung == "default":
            return multipart_type("application/dicom", [], quoted=quoted)
        return ", ".join(
            multipart_type("application/dicom", [("transfer-syntax", ts)], quoted=quoted)
            for ts in syntaxes
        )
    if rung == "any":
        return multipart_type("application/octet-stream", [("transfer-syntax", "*")], quoted=quoted)
    if rung == "default":
        return multipart_type("application/octet-stream", [], quoted=quoted)
    return ", ".join(
        multipart_type(FRAME_MEDIA_TYPES[ts], [("transfer-syntax", ts)], quoted=quoted)
        for ts in syntaxes
        if ts in FRAME_MEDIA_TYPES
    )


@dataclass
class ServerMemory:
    """What the client learned about one server; shared by its clients in this process."""

    #: False once the server refused a series-level retrieve.
    series_retrieve: bool = True
    #: False once it refused an instance retrieve (static DICOMweb: frames + metadata).
    instance_retrieve: bool = True
    #: The Accept ladder's rung that worked, per kind of retrieve.
    accept_step: dict[RetrieveKind, int] = field(default_factory=lambda: {"dicom": 0, "frames": 0})
    #: The largest QIDO ``limit`` the server took after refusing a larger one.
    limit_cap: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


_MEMORY: dict[tuple[str, str], ServerMemory] = {}
_MEMORY_LOCK = threading.Lock()


def memory_of(config: ServerConfig) -> ServerMemory:
    """The memory of a configured server (keyed by its id and WADO-RS root)."""
    key = (config.id, wado_rs_root(config))
    with _MEMORY_LOCK:
        memory = _MEMORY.get(key)
        if memory is None:
            memory = _MEMORY[key] = ServerMemory()
        return memory


def forget_servers() -> None:
    """Forget everything learned (tests; a user's "test connection" starts afresh)."""
    with _MEMORY_LOCK:
        _MEMORY.clear()
