"""`LocalFolderSource`: a folder of DICOM files as a `net.StudySource`.

File > Open and the demo study go through the same loader as a PACS, so the folder
answers the same questions: studies, series and instances found by scanning the
folder (headers only, once, on first use or `rescan`), metadata as headers whose
pixel data is empty (as WADO-RS metadata leaves bulk data out), and instances read
in full on demand. Files that are not DICOM, DICOMDIRs and unreadable files are
skipped. Searching follows the DICOMweb client's rules where they make sense
locally: case-insensitive, ``*``/``?`` wildcards, every word of a name matching.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import msgspec
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from net import (
    InstanceSummary,
    NotFound,
    ProtocolError,
    SeriesSummary,
    StudyQuery,
    StudySummary,
    dicom_text,
)

from ._layout import header_of

__all__ = ["LocalFolderSource"]

log = logging.getLogger("viewer.loader.local")

_DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
_MIN_DICOM_SIZE = 132  # preamble + "DICM"; smaller files cannot be Part 10


@dataclass(frozen=True, slots=True)
class _Instance:
    path: Path
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    instance_number: int | None
    rows: int | None
    columns: int | None
    frames: int | None
    study: StudySummary
    series: SeriesSummary


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


def _text(ds: Dataset, keyword: str) -> str:
    return dicom_text(ds.get(keyword))


def _matches(pattern: str, *values: str) -> bool:
    """Case-insensitive: ``*``/``?`` wildcards as written, else every word as a substring."""
    pattern = pattern.strip().lower()
    if not pattern:
        return True
    haystacks = [v.lower() for v in values if v]
    if "*" in pattern or "?" in pattern:
        return any(fnmatch.fnmatchcase(h, pattern) for h in haystacks)
    words = pattern.replace(",", " ").replace("^", " ").split()
    return any(all(word in h for word in words) for h in haystacks)


class LocalFolderSource:
    """DICOM files under `root` (recursively) as studies, series and instances.

    `root` is a folder or a file, or several of them (File > Open files).
    """

    def __init__(self, root: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> None:
        paths = [root] if isinstance(root, str | os.PathLike) else list(root)
        if not paths:
            raise ValueError("LocalFolderSource needs at least one folder or file")
        self.roots = tuple(dict.fromkeys(Path(p) for p in paths))
        self.root = self.roots[0]
        self.server = describe_paths(self.roots)
        #: Files the last scan passed over (not DICOM, a DICOMDIR, unreadable).
        self.skipped = 0
        self._lock = threading.Lock()
        self._instances: dict[str, _Instance] | None = None

    # -- scanning -------------------------------------------------------------------

    def rescan(self) -> int:
        """Read the folder again; returns how many instances were found."""
        found: dict[str, _Instance] = {}
        studies: dict[str, StudySummary] = {}
        series: dict[str, SeriesSummary] = {}
        counts: dict[str, int] = {}
        skipped = 0
        for path in _files(self.roots):
            instance = self._index_file(path, studies, series)
            if instance is None:
                skipped += 1
                continue
            if instance.sop_uid in found:
                continue
            found[instance.sop_uid] = instance
            counts[instance.series_uid] = counts.get(instance.series_uid, 0) + 1
        # Counts are known only once every file was read.
        final_series = {
            uid: _replace_series(summary, instance_count=counts.get(uid, 0))
            for uid, summary in series.items()
        }
        final = {
            sop: dataclasses.replace(i, series=final_series[i.series_uid])
            for sop, i in found.items()
        }
        with self._lock:
            self._instances = final
            self.skipped = skipped
        return len(final)

    def _index_file(
        self, path: Path, studies: dict[str, StudySummary], series: dict[str, SeriesSummary]
    ) -> _Instance | None:
        try:
            if path.stat().st_size < _MIN_DICOM_SIZE:
                return None
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError, AttributeError) as exc:
            log.debug("skipping %s: %s", path, exc)
            return None
        meta = getattr(ds, "file_meta", None)
        if meta is not None and str(meta.get("MediaStorageSOPClassUID", "")) == _DICOMDIR_CLASS:
            return None
        study_uid = _text(ds, "StudyInstanceUID")
        series_uid = _text(ds, "SeriesInstanceUID")
        sop_uid = _text(ds, "SOPInstanceUID")
        if not (study_uid and series_uid and sop_uid):
            return None
        study = studies.get(study_uid)
        if study is None:
            study = studies[study_uid] = StudySummary(
                study_uid=study_uid,
                patient_name=dicom_text(ds.get("PatientName"), person_names=True),
                patient_id=_text(ds, "PatientID"),
                birth_date=_date(ds.get("PatientBirthDate")),
                sex=_text(ds, "PatientSex"),
                study_date=_date(ds.get("StudyDate")),
                study_time=_text(ds, "StudyTime"),
                accession_number=_text(ds, "AccessionNumber"),
                description=_text(ds, "StudyDescription"),
            )
        modality = _text(ds, "Modality")
        if modality and modality not in study.modalities:
            studies[study_uid] = study = _replace_study(
                study, modalities=(*study.modalities, modality)
            )
        summary = series.get(series_uid)
        if summary is None:
            summary = series[series_uid] = SeriesSummary(
                study_uid=study_uid,
                series_uid=series_uid,
                modality=modality,
                series_number=_int(ds.get("SeriesNumber")),
                description=_text(ds, "SeriesDescription"),
                body_part=_text(ds, "BodyPartExamined"),
                series_date=_date(ds.get("SeriesDate")),
            )
        return _Instance(
            path=path,
            study_uid=study_uid,
            series_uid=series_uid,
            sop_uid=sop_uid,
            sop_class_uid=_text(ds, "SOPClassUID"),
            instance_number=_int(ds.get("InstanceNumber")),
            rows=_int(ds.get("Rows")),
            columns=_int(ds.get("Columns")),
            frames=_int(ds.get("NumberOfFrames")),
            study=study,
            series=summary,
        )

    def _all(self) -> dict[str, _Instance]:
        with self._lock:
            instances = self._instances
        if instances is None:
            self.rescan()
            with self._lock:
                instances = self._instances
        assert instances is not None
        return instances

    def _studies(self) -> dict[str, StudySummary]:
        studies: dict[str, StudySummary] = {}
        series_per_study: dict[str, set[str]] = {}
        instances_per_study: dict[str, int] = {}
        modalities: dict[str, list[str]] = {}
        for instance in self._all().values():
            uid = instance.study_uid
            studies.setdefault(uid, instance.study)
            series_per_study.setdefault(uid, set()).add(instance.series_uid)
            instances_per_study[uid] = instances_per_study.get(uid, 0) + 1
            mods = modalities.setdefault(uid, [])
            if instance.series.modality and instance.series.modality not in mods:
                mods.append(instance.series.modality)
        return {
            uid: _replace_study(
                study,
                modalities=tuple(modalities[uid]),
                series_count=len(series_per_study[uid]),
                instance_count=instances_per_study[uid],
            )
            for uid, study in studies.items()
        }

    def _series_instances(self, study_uid: str, series_uid: str) -> list[_Instance]:
        found = [
            i
            for i in self._all().values()
            if i.study_uid == study_uid and i.series_uid == series_uid
        ]
        if not found:
            raise NotFound(f"No series {series_uid} in study {study_uid}.", server=self.server)
        # Server order: instance number, then file name (what a PACS would list).
        found.sort(key=lambda i: (i.instance_number is None, i.instance_number or 0, str(i.path)))
        return found

    # -- StudySource ----------------------------------------------------------------

    def search_studies(
        self,
        query: StudyQuery | None = None,
        *,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[StudySummary]:
        query = query or StudyQuery()
        result = []
        for study in sorted(
            self._studies().values(), key=lambda s: (s.study_date or dt.date.min, s.study_uid)
        ):
            if not _matches(query.patient_name, study.patient_name):
                continue
            if not _matches(query.patient_id, study.patient_id):
                continue
            if not _matches(query.accession_number, study.accession_number):
                continue
            if not _matches(query.description, study.description):
                continue
            if query.study_uid.strip() and study.study_uid != query.study_uid.strip():
                continue
            if query.modality.strip() and query.modality.strip().upper() not in study.modalities:
                continue
            if query.birth_date is not None and study.birth_date != query.birth_date:
                continue
            if query.study_date_from is not None and (
                study.study_date is None or study.study_date < query.study_date_from
            ):
                continue
            if query.study_date_to is not None and (
                study.study_date is None or study.study_date > query.study_date_to
            ):
                continue
            result.append(study)
        return _page(result, limit, offset)

    def search_series(
        self,
        study_uid: str,
        *,
        modality: str = "",
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[SeriesSummary]:
        series: dict[str, SeriesSummary] = {}
        for instance in self._all().values():
            if instance.study_uid == study_uid:
                series.setdefault(instance.series_uid, instance.series)
        found = [
            s for s in series.values() if not modality or s.modality == modality.strip().upper()
        ]
        found.sort(key=lambda s: (s.series_number is None, s.series_number or 0, s.series_uid))
        return _page(found, limit, offset)

    def search_instances(
        self,
        study_uid: str,
        series_uid: str,
        *,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[InstanceSummary]:
        try:
            found = self._series_instances(study_uid, series_uid)
        except NotFound:
            return []
        summaries = [
            InstanceSummary(
                study_uid=i.study_uid,
                series_uid=i.series_uid,
                sop_instance_uid=i.sop_uid,
                sop_class_uid=i.sop_class_uid,
                instance_number=i.instance_number,
                rows=i.rows,
                columns=i.columns,
                number_of_frames=i.frames,
            )
            for i in found
        ]
        return _page(summaries, limit, offset)

    def files(self, study_uid: str, series_uid: str | None = None) -> list[Path]:
        """The files of a study (or one of its series), in series then instance order."""
        found = [
            i
            for i in self._all().values()
            if i.study_uid == study_uid and (series_uid is None or i.series_uid == series_uid)
        ]
        if not found:
            raise NotFound(f"No study {study_uid} in {self.server}.", server=self.server)
        found.sort(
            key=lambda i: (
                i.series.series_number is None,
                i.series.series_number or 0,
                i.series_uid,
                i.instance_number is None,
                i.instance_number or 0,
                str(i.path),
            )
        )
        return [i.path for i in found]

    def _read(self, instance: _Instance, *, pixels: bool) -> Dataset:
        try:
            return pydicom.dcmread(instance.path, stop_before_pixels=not pixels)
        except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
            raise ProtocolError(
                f"{instance.path} can no longer be read ({exc}).", server=self.server
            ) from exc

    def _header(self, instance: _Instance) -> Dataset:
        # Pixels skipped; the header gets an empty pixel element, as DICOMweb
        # metadata has (bulk data left out).
        return header_of(self._read(instance, pixels=False))

    def series_metadata(self, study_uid: str, series_uid: str) -> list[Dataset]:
        return [self._header(i) for i in self._series_instances(study_uid, series_uid)]

    def study_metadata(self, study_uid: str) -> list[Dataset]:
        series = {i.series_uid for i in self._all().values() if i.study_uid == study_uid}
        if not series:
            raise NotFound(f"No study {study_uid}.", server=self.server)
        headers: list[Dataset] = []
        for series_uid in sorted(series):
            headers.extend(self.series_metadata(study_uid, series_uid))
        return headers

    def iter_series(self, study_uid: str, series_uid: str) -> Iterator[Dataset]:
        for instance in self._series_instances(study_uid, series_uid):
            yield self._read(instance, pixels=True)

    def retrieve_instance(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
        instance = self._all().get(sop_uid)
        if instance is None or instance.study_uid != study_uid or instance.series_uid != series_uid:
            raise NotFound(f"No instance {sop_uid}.", server=self.server)
        return self._read(instance, pixels=True)

    def close(self) -> None:
        with self._lock:
            self._instances = None


_T = TypeVar("_T")


def describe_paths(paths: Sequence[Path]) -> str:
    """How the UI names a set of opened paths: the folder, the file, or "N files in DIR"."""
    if len(paths) == 1:
        return str(paths[0])
    parents = {p.parent for p in paths}
    where = str(parents.pop()) if len(parents) == 1 else os.path.commonpath([str(p) for p in paths])
    what = "files" if all(p.is_file() for p in paths) else "files and folders"
    return f"{len(paths)} {what} in {where}"


def _files(roots: Sequence[Path]) -> Iterator[Path]:
    """Every file under `roots` once, folders walked recursively, in name order."""
    seen: set[Path] = set()
    for root in roots:
        candidates = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in candidates:
            if path not in seen and path.is_file():
                seen.add(path)
                yield path


def _page(items: list[_T], limit: int | None, offset: int | None) -> list[_T]:
    start = offset or 0
    return items[start : start + limit] if limit is not None else items[start:]


def _replace_series(summary: SeriesSummary, **changes: object) -> SeriesSummary:
    return msgspec.structs.replace(summary, **changes)


def _replace_study(study: StudySummary, **changes: object) -> StudySummary:
    return msgspec.structs.replace(study, **changes)
