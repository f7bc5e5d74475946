"""The index of a local source: one entry per SOP Instance UID, summaries kept up to date.

Entries come from headers read while scanning (or from DICOMDIR records) and are
added one by one, so the study list can be asked while a large folder is still being
read. Two files with the same SOP Instance UID are one instance for every server
and for the viewer: the index keeps one — the one with more frames (a multi-frame
object and the single-frame object it was made from, or the reverse), else the first
seen — and counts the others as duplicates, which the UI reports instead of dropping
them silently.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import BinaryIO

import msgspec
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from net import SeriesSummary, StudySummary, dicom_text

from ._members import Member
from ._quick_index import PREFIX_BYTES, quick_header

__all__ = [
    "LocalIndex",
    "LocalInstance",
    "Summaries",
    "instance_from_header",
    "read_index_header",
]

DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_MIN_PART10_SIZE = 132  # preamble + "DICM"
_READ_ERRORS = (InvalidDicomError, OSError, ValueError, EOFError, AttributeError, KeyError)


@dataclass(frozen=True, slots=True)
class LocalInstance:
    member: Member
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    instance_number: int | None
    rows: int | None
    columns: int | None
    frames: int | None
    burned_in_annotation: bool
    study: StudySummary
    series: SeriesSummary

    @property
    def frame_count(self) -> int:
        return self.frames or 1


def _int(value: object) -> int | None:
    try:
        return int(value) if value not in (None, "") else None  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _date(value: object) -> dt.date | None:
    text = str(value or "").replace(".", "")
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8])) if len(text) >= 8 else None
    except ValueError:
        return None


def _text(ds: Dataset, keyword: str, *, person_name: bool = False) -> str:
    """A value as DICOM writes it (several joined by a backslash), readable names."""
    try:
        return dicom_text(ds.get(keyword), person_names=person_name)
    except _READ_ERRORS:
        return ""


def study_of(ds: Dataset, study_uid: str) -> StudySummary:
    return StudySummary(
        study_uid=study_uid,
        patient_name=_text(ds, "PatientName", person_name=True),
        patient_id=_text(ds, "PatientID"),
        birth_date=_date(_text(ds, "PatientBirthDate")),
        sex=_text(ds, "PatientSex"),
        study_date=_date(_text(ds, "StudyDate")),
        study_time=_text(ds, "StudyTime"),
        accession_number=_text(ds, "AccessionNumber"),
        description=_text(ds, "StudyDescription"),
    )


def series_of(ds: Dataset, study_uid: str, series_uid: str) -> SeriesSummary:
    return SeriesSummary(
        study_uid=study_uid,
        series_uid=series_uid,
        modality=_text(ds, "Modality"),
        series_number=_int(_text(ds, "SeriesNumber")),
        description=_text(ds, "SeriesDescription"),
        body_part=_text(ds, "BodyPartExamined"),
        series_date=_date(_text(ds, "SeriesDate")),
    )


def _ascii(ds: Dataset, tag: int) -> str:
    """A value of an ASCII-only VR (UI, CS, IS) as stored, without pydicom's conversion:
    converting values was most of a scan's time, and these need none."""
    try:
        element = ds.get_item(tag)
    except _READ_ERRORS:
        return ""
    if element is None:
        return ""
    value = element.value
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip(" \x00")
    if isinstance(value, pydicom.multival.MultiValue):
        return "\\".join(str(v) for v in value).strip()
    return str(value or "").strip()


def _us(ds: Dataset, tag: int) -> int | None:
    """An unsigned short (Rows, Columns) from its stored bytes, in the data set's byte
    order; pydicom's conversion otherwise."""
    try:
        element = ds.get_item(tag)
    except _READ_ERRORS:
        return None
    if element is None:
        return None
    value = element.value
    if isinstance(value, bytes) and len(value) == 2:
        little = ds.original_encoding[1] is not False
        return int.from_bytes(value, "little" if little else "big")
    return _int(value if isinstance(value, int) else _text(ds, str(element.keyword)))


class Summaries:
    """The study and series summaries a scan has made, so each is made once: a study
    of 300 instances has its patient and study attributes converted once, not 300 times."""

    def __init__(self) -> None:
        self.studies: dict[str, StudySummary] = {}
        self.series: dict[str, SeriesSummary] = {}


def instance_from_header(
    member: Member, ds: Dataset, summaries: Summaries | None = None
) -> LocalInstance | None:
    """The index entry of an instance header; None without the three UIDs."""
    study_uid = _ascii(ds, 0x0020000D)
    series_uid = _ascii(ds, 0x0020000E)
    sop_uid = _ascii(ds, 0x00080018)
    if not (study_uid and series_uid and sop_uid):
        return None
    summaries = summaries or Summaries()
    study = summaries.studies.get(study_uid)
    if study is None:
        study = summaries.studies[study_uid] = study_of(ds, study_uid)
    series = summaries.series.get(series_uid)
    if series is None:
        series = summaries.series[series_uid] = series_of(ds, study_uid, series_uid)
    return LocalInstance(
        member=member,
        study_uid=study_uid,
        series_uid=series_uid,
        sop_uid=sop_uid,
        sop_class_uid=_ascii(ds, 0x00080016),
        instance_number=_int(_ascii(ds, 0x00200013)),
        rows=_us(ds, 0x00280010),
        columns=_us(ds, 0x00280011),
        frames=_int(_ascii(ds, 0x00280008)),
        burned_in_annotation=_ascii(ds, 0x00280301).upper() == "YES",
        study=study,
        series=series,
    )


def _plausible_data_set(head: bytes) -> bool:
    """Whether bytes without a Part 10 preamble start like a DICOM data set.

    Files written without the preamble (old ACR-NEMA style, some exports) begin with
    their first element: an even group number no higher than the image group (0028)
    in little endian, then a VR of two capital letters (explicit VR) or a 4-byte
    length that fits (implicit VR). Text, images and archives do not.
    """
    if len(head) < 8:
        return False
    group = int.from_bytes(head[0:2], "little")
    if group == 0 or group % 2 or group > 0x0028:
        return False
    if head[4:6].isalpha() and head[4:6].isupper():
        return True
    return int.from_bytes(head[4:8], "little") < 1 << 20


def read_index_header(member: Member, stream: BinaryIO | None = None) -> Dataset | None:
    """The header of a member up to its pixel data, or None when it is not DICOM.

    `stream`: the member already open (at any position). A Part 10 file is read as
    such; one without the preamble and "DICM" prefix is read with ``force=True`` only
    when its first bytes look like a data set (see `_plausible_data_set`), so
    megabytes of something else are never parsed. A zip member is read through its
    decompressing stream, which stops with the header: the pixels are not inflated.
    """
    try:
        if stream is not None:
            return _read_header(stream)
        with member.open() as opened:
            return _read_header(opened)
    except _READ_ERRORS:
        return None


def _read_header(stream: BinaryIO) -> Dataset | None:
    stream.seek(0)
    head = stream.read(_MIN_PART10_SIZE)
    if len(head) == _MIN_PART10_SIZE and head[128:132] == b"DICM":
        force = False
        data = head + stream.read(PREFIX_BYTES - _MIN_PART10_SIZE)
        quick = quick_header(data, complete=len(data) < PREFIX_BYTES)
        if quick is not None:
            return quick
    elif _plausible_data_set(head):
        force = True
    else:
        return None
    stream.seek(0)
    return pydicom.dcmread(stream, stop_before_pixels=True, force=force)


class LocalIndex:
    """Instances by SOP Instance UID with their studies and series (not thread-safe:
    the source guards it with its lock)."""

    def __init__(self) -> None:
        self.instances: dict[str, LocalInstance] = {}
        self.duplicates = 0
        self._studies: dict[str, StudySummary] = {}
        self._series: dict[str, SeriesSummary] = {}
        self._series_of_study: dict[str, dict[str, None]] = {}
        self._members_of_series: dict[str, dict[str, None]] = {}

    def add(self, instance: LocalInstance) -> bool:
        """Add an entry; False when it only counted as a duplicate."""
        existing = self.instances.get(instance.sop_uid)
        if existing is not None:
            self.duplicates += 1
            if instance.frame_count <= existing.frame_count:
                return False
            self._remove(existing)
        self.instances[instance.sop_uid] = instance
        study = self._studies.get(instance.study_uid)
        if study is None:
            self._studies[instance.study_uid] = instance.study
        series_uid = instance.series_uid
        if series_uid not in self._series:
            self._series[series_uid] = instance.series
        self._series_of_study.setdefault(instance.study_uid, {})[series_uid] = None
        self._members_of_series.setdefault(series_uid, {})[instance.sop_uid] = None
        return True

    def _remove(self, instance: LocalInstance) -> None:
        del self.instances[instance.sop_uid]
        members = self._members_of_series.get(instance.series_uid, {})
        members.pop(instance.sop_uid, None)

    def study_count(self) -> int:
        return len(self._studies)

    def studies(self) -> list[StudySummary]:
        """Every study with its modalities and counts as they stand now."""
        result = []
        for uid, study in self._studies.items():
            series = [self._series[s] for s in self._series_of_study.get(uid, {})]
            counts = [len(self._members_of_series.get(s.series_uid, {})) for s in series]
            modalities = tuple(dict.fromkeys(s.modality for s in series if s.modality))
            result.append(
                msgspec.structs.replace(
                    study,
                    modalities=modalities,
                    series_count=sum(1 for c in counts if c),
                    instance_count=sum(counts),
                )
            )
        return result

    def series(self, study_uid: str) -> list[SeriesSummary]:
        result = []
        for uid in self._series_of_study.get(study_uid, {}):
            count = len(self._members_of_series.get(uid, {}))
            if count:
                result.append(msgspec.structs.replace(self._series[uid], instance_count=count))
        return result

    def series_instances(self, series_uid: str) -> list[LocalInstance]:
        return [self.instances[s] for s in self._members_of_series.get(series_uid, {})]

    def study_instances(self, study_uid: str) -> list[LocalInstance]:
        found = []
        for series_uid in self._series_of_study.get(study_uid, {}):
            found.extend(self.series_instances(series_uid))
        return found
