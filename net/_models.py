"""Typed values for what a DICOMweb server returns, parsed from DICOM JSON (PS3.18 F.2).

Raw DICOM JSON stays inside `net/`: callers get `StudySummary`, `SeriesSummary`,
`InstanceSummary`, `StudyQuery`, `Frame`, `RenderedImage` and `StoreResult`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

__all__ = [
    "Frame",
    "InstanceSummary",
    "RenderedImage",
    "SeriesSummary",
    "StoreFailure",
    "StoreResult",
    "StudyQuery",
    "StudySummary",
    "dicom_text",
    "format_person_name",
    "sniff_media_type",
]

DicomJson = Mapping[str, Any]


class StudyQuery(msgspec.Struct, frozen=True, kw_only=True):
    """What the user searches studies by; empty fields are not sent."""

    patient_name: str = ""
    patient_id: str = ""
    birth_date: dt.date | None = None
    study_date_from: dt.date | None = None
    study_date_to: dt.date | None = None
    modality: str = ""
    accession_number: str = ""
    description: str = ""
    study_uid: str = ""


class StudySummary(msgspec.Struct, frozen=True, kw_only=True):
    study_uid: str
    patient_name: str = ""
    patient_id: str = ""
    birth_date: dt.date | None = None
    sex: str = ""
    study_date: dt.date | None = None
    study_time: str = ""
    accession_number: str = ""
    description: str = ""
    modalities: tuple[str, ...] = ()
    referring_physician: str = ""
    series_count: int | None = None
    instance_count: int | None = None


class SeriesSummary(msgspec.Struct, frozen=True, kw_only=True):
    study_uid: str
    series_uid: str
    modality: str = ""
    series_number: int | None = None
    description: str = ""
    body_part: str = ""
    series_date: dt.date | None = None
    instance_count: int | None = None


class InstanceSummary(msgspec.Struct, frozen=True, kw_only=True):
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str = ""
    instance_number: int | None = None
    rows: int | None = None
    columns: int | None = None
    number_of_frames: int | None = None


class Frame(msgspec.Struct, frozen=True, kw_only=True):
    """One frame's pixel data as the server sent it (possibly still compressed)."""

    number: int
    data: bytes
    media_type: str
    transfer_syntax_uid: str = ""


class RenderedImage(msgspec.Struct, frozen=True, kw_only=True):
    """A server-rendered picture (JPEG/PNG/GIF): the media type is sniffed from the bytes."""

    data: bytes
    media_type: str
    source: str = ""  # "thumbnail", "rendered" or "wado-uri": the endpoint that answered


class StoreFailure(msgspec.Struct, frozen=True, kw_only=True):
    sop_instance_uid: str
    reason: int | None = None
    message: str = ""


class StoreResult(msgspec.Struct, frozen=True, kw_only=True):
    """Per-instance outcome of a STOW-RS request."""

    stored: tuple[str, ...] = ()
    failed: tuple[StoreFailure, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failed


# --- DICOM JSON helpers ------------------------------------------------------------


def _values(attrs: DicomJson, tag: str) -> list[Any]:
    element = attrs.get(tag)
    if not isinstance(element, Mapping):
        return []
    value = element.get("Value")
    return value if isinstance(value, list) else []


def _str(attrs: DicomJson, tag: str) -> str:
    """The first value, as text: for UIDs, dates and times, which have one."""
    values = _values(attrs, tag)
    return dicom_text(values[0]) if values else ""


def _text(attrs: DicomJson, tag: str) -> str:
    """Every value, as DICOM writes them (``PR\\US``); person names made readable."""
    element, values = attrs.get(tag), _values(attrs, tag)
    # PN values are objects in DICOM JSON (PS3.18 F.2.2); the VR says so too.
    names = (isinstance(element, Mapping) and element.get("vr") == "PN") or any(
        isinstance(v, Mapping) for v in values
    )
    return dicom_text(values, person_names=names)


def _int(attrs: DicomJson, tag: str) -> int | None:
    values = _values(attrs, tag)
    if not values:
        return None
    try:
        return int(values[0])
    except (TypeError, ValueError):
        return None


def _date(attrs: DicomJson, tag: str) -> dt.date | None:
    text = _str(attrs, tag).replace(".", "")  # ACR-NEMA style 1999.01.31 still appears
    if len(text) < 8 or not text[:8].isdigit():
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def dicom_text(value: Any, *, person_names: bool = False) -> str:
    """A DICOM value as text, the way DICOM writes it: the values of a multi-valued
    element joined by a backslash (PS3.5 6.4), ``PR\\US``, never a Python list
    (``['PR', 'US']``).

    Takes what pydicom and DICOM JSON hand out: None, text, numbers, pydicom's
    MultiValue and PersonName, JSON value lists and JSON PN objects
    (``{"Alphabetic": ...}``, written ``Alphabetic=Ideographic=Phonetic`` as in
    PS3.5 6.2.1). With `person_names` every value is made readable by
    `format_person_name`. Padding (spaces, NULs) is trimmed from each value.
    """
    if value is None:
        return ""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray):
        return "\\".join(dicom_text(item, person_names=person_names) for item in value)
    if isinstance(value, Mapping):
        groups = [str(value.get(key) or "") for key in ("Alphabetic", "Ideographic", "Phonetic")]
        text = "=".join(groups).rstrip("=")
    elif isinstance(value, bytes | bytearray):
        text = bytes(value).decode("ascii", "replace")
    else:
        text = str(value)
    text = text.strip(" \x00\t\r\n")
    return format_person_name(text) if person_names and text else text


def format_person_name(value: Mapping[str, Any] | str) -> str:
    """A readable person name from a DICOM PN (PS3.5 6.2): ``Family, Given Middle``.

    The ideographic or phonetic form, when present, follows in parentheses so
    ``Yamada^Tarou=山田^太郎`` reads ``Yamada, Tarou (山田 太郎)``.
    """
    if isinstance(value, str):
        groups = value.split("=")
        alphabetic = groups[0]
        others = groups[1:]
    else:
        alphabetic = str(value.get("Alphabetic", "") or "")
        others = [str(value.get(k, "") or "") for k in ("Ideographic", "Phonetic")]

    def one(group: str) -> str:
        parts = [p.strip() for p in group.split("^")] + [""] * 5
        family, given, middle, prefix, suffix = parts[:5]
        first = " ".join(p for p in (prefix, given, middle) if p)
        name = f"{family}, {first}" if family and first else family or first
        return f"{name} {suffix}".strip() if suffix else name

    main = one(alphabetic)
    extra = next((one(g) for g in others if g.strip("^ ")), "")
    if extra and main:
        return f"{main} ({extra})"
    return main or extra


def study_from_json(attrs: DicomJson) -> StudySummary:
    modalities = tuple(str(v) for v in _values(attrs, "00080061") if v)
    return StudySummary(
        study_uid=_str(attrs, "0020000D"),
        patient_name=_text(attrs, "00100010"),
        patient_id=_text(attrs, "00100020"),
        birth_date=_date(attrs, "00100030"),
        sex=_text(attrs, "00100040"),
        study_date=_date(attrs, "00080020"),
        study_time=_str(attrs, "00080030"),
        accession_number=_text(attrs, "00080050"),
        description=_text(attrs, "00081030"),
        modalities=modalities,
        referring_physician=_text(attrs, "00080090"),
        series_count=_int(attrs, "00201206"),
        instance_count=_int(attrs, "00201208"),
    )


def series_from_json(attrs: DicomJson, study_uid: str = "") -> SeriesSummary:
    return SeriesSummary(
        study_uid=_str(attrs, "0020000D") or study_uid,
        series_uid=_str(attrs, "0020000E"),
        modality=_text(attrs, "00080060"),
        series_number=_int(attrs, "00200011"),
        description=_text(attrs, "0008103E"),
        body_part=_text(attrs, "00180015"),
        series_date=_date(attrs, "00080021"),
        instance_count=_int(attrs, "00201209"),
    )


def instance_from_json(
    attrs: DicomJson, study_uid: str = "", series_uid: str = ""
) -> InstanceSummary:
    return InstanceSummary(
        study_uid=_str(attrs, "0020000D") or study_uid,
        series_uid=_str(attrs, "0020000E") or series_uid,
        sop_instance_uid=_str(attrs, "00080018"),
        sop_class_uid=_str(attrs, "00080016"),
        instance_number=_int(attrs, "00200013"),
        rows=_int(attrs, "00280010"),
        columns=_int(attrs, "00280011"),
        number_of_frames=_int(attrs, "00280008"),
    )


def store_result_from_json(attrs: DicomJson) -> StoreResult:
    stored = tuple(
        _str(item, "00081155") for item in _values(attrs, "00081199") if isinstance(item, Mapping)
    )
    failed = tuple(
        StoreFailure(
            sop_instance_uid=_str(item, "00081155"),
            reason=_int(item, "00081197"),
            message=_text(item, "00081196"),
        )
        for item in _values(attrs, "00081198")
        if isinstance(item, Mapping)
    )
    warnings = tuple(str(v) for v in _values(attrs, "00081196") if v)
    return StoreResult(stored=stored, failed=failed, warnings=warnings)


_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "image/jp2"),
    (b"\xff\x4f\xff\x51", 0, "image/jp2"),  # raw J2K codestream
    (b"DICM", 128, "application/dicom"),
)


def sniff_media_type(data: bytes, declared: str = "") -> str:
    """The media type the bytes really are (Orthanc labels JPEG as PNG, DESIGN.md §5)."""
    for magic, offset, media_type in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return media_type
    return declared.split(";")[0].strip().lower() or "application/octet-stream"
