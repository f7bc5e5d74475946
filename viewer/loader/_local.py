"""`LocalFolderSource`: DICOM files on disk — folders, files, DICOMDIR media, zip archives —
as a `net.StudySource`.

File > Open, paths on the command line and the demo study go through the same loader
as a PACS, so local files answer the same questions: studies, series and instances
found by scanning (headers only, once, on first use, `rescan` or `start_scan`),
metadata as headers whose pixel data is empty (as WADO-RS metadata leaves bulk data
out), and instances read in full on demand. What is scanned:

* a folder, recursively, in name order — unless a DICOMDIR sits at its top: then its
  directory records list the studies without opening the instance files
  (`_dicomdir`; a broken DICOMDIR falls back to scanning the folder);
* a DICOMDIR named directly, the same way;
* a zip archive (named, or found in a folder): its members are read in place, never
  extracted (`_members`); members that would escape the archive or expand like a
  zip bomb are refused, each with its reason in `problems`;
* any other file, as one instance.

Files that are not DICOM are skipped and counted; a file without the Part 10
preamble that still reads as a data set with its UIDs is listed; files sharing a SOP
Instance UID are counted as `duplicates` (the index keeps the one with more frames).
The scan can run on its own thread (`start_scan`) reporting `ScanProgress` and
answering searches from what it found so far, so a folder of 50,000 files lists its
first studies at once; a series read meanwhile has the files found so far, and
`grown_series` names those the scan has found more of since (to be read again). Searching follows the DICOMweb client's rules where they make
sense locally: case-insensitive, ``*``/``?`` wildcards, every word of a name matching.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import io
import logging
import os
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

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
)

from ._dicomdir import BrokenDicomDir, find_dicomdir, is_dicomdir_name, read_dicomdir
from ._index import (
    DICOMDIR_CLASS,
    LocalIndex,
    LocalInstance,
    Summaries,
    instance_from_header,
    read_index_header,
)
from ._layout import header_of
from ._members import (
    FileMember,
    Member,
    RefusedMember,
    ZipArchive,
    ZipMember,
    is_zip,
)

__all__ = ["LocalFolderSource", "ScanProgress", "describe_paths"]

log = logging.getLogger("viewer.loader.local")

#: How often a running scan reports progress (and the study list refreshes).
PROGRESS_INTERVAL_S = 0.1


@dataclass(frozen=True, slots=True)
class ScanProgress:
    """How far a scan has got: files looked at, instances found, studies so far."""

    files: int = 0
    found: int = 0
    studies: int = 0
    skipped: int = 0
    duplicates: int = 0
    done: bool = False
    cancelled: bool = False

    def line(self) -> str:
        """The progress line the study list shows."""
        state = "cancelled" if self.cancelled else ("done" if self.done else "scanning")
        return (
            f"{self.files:,} files scanned, {self.found:,} DICOM instances found "
            f"in {self.studies:,} {'study' if self.studies == 1 else 'studies'} ({state})"
        )


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


class _Cancelled(Exception):
    pass


class LocalFolderSource:
    """DICOM files under `root` (recursively) as studies, series and instances.

    `root` is a folder, a file, a DICOMDIR or a zip archive, or several of them.
    """

    def __init__(self, root: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> None:
        paths = [root] if isinstance(root, str | os.PathLike) else list(root)
        if not paths:
            raise ValueError("LocalFolderSource needs at least one folder or file")
        self.roots = tuple(dict.fromkeys(Path(p) for p in paths))
        self.root = self.roots[0]
        self.server = describe_paths(self.roots)
        self._lock = threading.Lock()
        self._first_scan = threading.Lock()
        self._index: LocalIndex | None = None
        self._progress = ScanProgress()
        #: Problems the user should hear about: refused zip members, broken DICOMDIRs.
        self._problems: list[str] = []
        self._archives: list[ZipArchive] = []
        self._scan_thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._scanning = False
        self._summaries = Summaries()
        #: Instances of each series (study UID, series UID) that its headers were last
        #: read from (`series_metadata`, `iter_series`): a layout holds at most these.
        self._served: dict[tuple[str, str], int] = {}

    # -- what the last scan found ---------------------------------------------------

    @property
    def skipped(self) -> int:
        """Files the last scan passed over (not DICOM, a DICOMDIR, unreadable)."""
        return self._progress.skipped

    @property
    def duplicates(self) -> int:
        """Files not listed because another file has the same SOP Instance UID."""
        return self._progress.duplicates

    @property
    def progress(self) -> ScanProgress:
        return self._progress

    @property
    def problems(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._problems)

    @property
    def scanning(self) -> bool:
        return self._scanning

    def grown_series(self) -> list[tuple[str, str, int]]:
        """Series read (`series_metadata`, `iter_series`) before the scan had found all
        of their instances: (study UID, series UID, instances found now) each, for a
        loader to read again (`SeriesLoader.refresh_series`)."""
        with self._lock:
            index = self._index
            if index is None:
                return []
            grown = []
            for (study_uid, series_uid), served in self._served.items():
                found = sum(i.study_uid == study_uid for i in index.series_instances(series_uid))
                if found > served:
                    grown.append((study_uid, series_uid, found))
            return grown

    def notes(self) -> str:
        """What the study list adds to its count: duplicates, skipped files, problems."""
        parts = []
        if self.duplicates:
            parts.append(
                f"{self.duplicates} duplicate{'s' if self.duplicates != 1 else ''} not listed"
            )
        if self.skipped:
            parts.append(f"{self.skipped} other files skipped")
        parts.extend(self.problems)
        return "; ".join(parts)

    # -- scanning -------------------------------------------------------------------

    def rescan(self) -> int:
        """Read the files again; returns how many instances were found."""
        return self.scan().found

    def scan(
        self,
        on_progress: Callable[[ScanProgress], None] | None = None,
        *,
        cancel: threading.Event | None = None,
        incremental: bool = False,
    ) -> ScanProgress:
        """Scan every root now, on this thread. `on_progress` is called every
        `PROGRESS_INTERVAL_S`, when the first study turns up, and at the end.

        `incremental`: searches made meanwhile (from other threads) see what was found
        so far; otherwise they see the previous scan's results until this one ends.
        """
        index = LocalIndex()
        self._summaries = Summaries()
        with self._lock:
            if incremental:
                self._close_archives()
                self._index = index
            self._problems = []
            self._progress = ScanProgress()
        self._scanning = True
        files = found = skipped = 0
        last_report = time.monotonic()
        reported_studies = 0
        cancelled = False

        def progress(done: bool = False) -> ScanProgress:
            with self._lock:
                state = ScanProgress(
                    files, found, index.study_count(), skipped, index.duplicates, done,
                    cancelled,
                )  # fmt: skip
                self._progress = state
            return state

        try:
            for item in self._entries(cancel):
                files += 1
                if item is None:
                    skipped += 1
                else:
                    with self._lock:
                        if index.add(item):
                            found += 1
                now = time.monotonic()
                first_study = reported_studies == 0 and index.study_count() > 0
                if on_progress is not None and (
                    first_study or now - last_report >= PROGRESS_INTERVAL_S
                ):
                    last_report = now
                    state = progress()
                    reported_studies = state.studies
                    on_progress(state)
        except _Cancelled:
            cancelled = True
        finally:
            self._scanning = False
        with self._lock:
            found = len(index.instances)
            if not incremental:
                self._close_archives(keep=index)
                self._index = index
        final = progress(done=True)
        if on_progress is not None:
            on_progress(final)
        return final

    def start_scan(self, on_progress: Callable[[ScanProgress], None] | None = None) -> None:
        """Scan on a thread of its own (`cancel_scan`, `close` stop it)."""
        self.cancel_scan()
        self._cancel = threading.Event()
        cancel = self._cancel
        # The index is in place before the thread starts: a search made right after
        # this call sees an empty list that fills up, instead of scanning a second time.
        with self._lock:
            self._index = LocalIndex()
        self._scanning = True
        thread = threading.Thread(
            target=self._scan_quietly, args=(on_progress, cancel), name="zhiva-local-scan",
            daemon=True,
        )  # fmt: skip
        self._scan_thread = thread
        thread.start()

    def _scan_quietly(
        self, on_progress: Callable[[ScanProgress], None] | None, cancel: threading.Event
    ) -> None:
        try:
            self.scan(on_progress, cancel=cancel, incremental=True)
        except Exception:  # the thread's end must reach the UI whatever happened
            log.exception("scanning local files failed")
            self._scanning = False
            if on_progress is not None:
                on_progress(ScanProgress(done=True))

    def cancel_scan(self, *, wait: bool = True) -> None:
        self._cancel.set()
        thread = self._scan_thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()
        self._scan_thread = None if wait else thread

    def _entries(self, cancel: threading.Event | None) -> Iterator[LocalInstance | None]:
        """Every instance of every root (None for each file that is not one)."""
        seen: set[Path] = set()
        for root in self.roots:
            if root.is_dir():
                dicomdir = find_dicomdir(root)
                if dicomdir is not None and self._from_dicomdir(dicomdir) is not None:
                    seen.add(dicomdir)
                    yield from self._dicomdir_entries(dicomdir, cancel)
                    continue
                paths: Iterator[Path] = _walk(root, cancel)
            else:
                paths = iter([root])
            for path in paths:
                if path in seen:
                    continue
                seen.add(path)
                yield from self._file_entries(path, cancel)

    def _from_dicomdir(self, path: Path) -> list[LocalInstance] | None:
        try:
            return read_dicomdir(path).instances
        except BrokenDicomDir as exc:
            log.debug("DICOMDIR not used, scanning instead: %s", exc)
            with self._lock:
                self._problems.append(f"the DICOMDIR could not be used ({exc}), files were scanned")
            return None

    def _dicomdir_entries(
        self, path: Path, cancel: threading.Event | None
    ) -> Iterator[LocalInstance | None]:
        instances = self._from_dicomdir(path)
        if instances is None:
            yield from (
                e for p in _walk(path.parent, cancel) for e in self._file_entries(p, cancel)
            )
            return
        for instance in instances:
            _check(cancel)
            yield instance

    def _file_entries(
        self, path: Path, cancel: threading.Event | None
    ) -> Iterator[LocalInstance | None]:
        _check(cancel)
        named = is_dicomdir_name(path.name)
        try:
            # One open per file: its first bytes say what it is, its header follows.
            with path.open("rb") as stream:
                head = stream.read(132)
                if not (is_zip(head) or named or path in self.roots):
                    member = FileMember(path, os.fstat(stream.fileno()).st_size)
                    yield _instance(member, self._summaries, stream)
                    return
        except OSError as exc:
            log.debug("skipping %s: %s", path, exc)
            yield None
            return
        if is_zip(head):
            yield from self._zip_entries(path, cancel)
        elif named or (head[128:132] == b"DICM" and _is_dicomdir(path)):
            if path in self.roots:
                yield from self._dicomdir_entries(path, cancel)
            else:
                yield None  # the walk of its folder already reads the files it lists
        else:
            try:
                size = path.stat().st_size
            except OSError:
                yield None
                return
            yield _instance(FileMember(path, size), self._summaries)

    def _zip_entries(
        self, path: Path, cancel: threading.Event | None
    ) -> Iterator[LocalInstance | None]:
        try:
            archive = ZipArchive.open_path(path)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            with self._lock:
                self._problems.append(f"{path.name} is not a readable zip archive ({exc})")
            yield None
            return
        with self._lock:
            self._archives.append(archive)
        try:
            for member in archive.members():
                _check(cancel)
                if is_dicomdir_name(Path(member.info.filename).name):
                    yield None
                    continue
                yield _instance(member, self._summaries)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            with self._lock:
                self._problems.append(f"{path.name} could not be read to the end ({exc})")
        finally:
            if archive.refused:
                with self._lock:
                    self._problems.append(_refusals(path, archive.refused))

    def _index_now(self) -> LocalIndex:
        """The index, scanning first when nothing was scanned yet (once: callers on
        other threads wait for that scan rather than see half of it)."""
        with self._lock:
            index = self._index
        if index is None:
            with self._first_scan:
                with self._lock:
                    index = self._index
                if index is None:
                    self.scan()
                    with self._lock:
                        index = self._index
        assert index is not None
        return index

    def _studies(self) -> list[StudySummary]:
        index = self._index_now()
        with self._lock:
            return index.studies()

    def _series_instances(
        self, study_uid: str, series_uid: str, *, serving: bool = False
    ) -> list[LocalInstance]:
        """The series' instances found so far; `serving`: their headers are being read
        for a layout (`grown_series` compares with what the scan finds later)."""
        index = self._index_now()
        with self._lock:
            found = [i for i in index.series_instances(series_uid) if i.study_uid == study_uid]
            if serving:
                self._served[(study_uid, series_uid)] = len(found)
        if not found:
            raise NotFound(f"No series {series_uid} in study {study_uid}.", server=self.server)
        # Server order: instance number, then file name (what a PACS would list).
        found.sort(key=lambda i: (i.instance_number is None, i.instance_number or 0, i.member.name))
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
            self._studies(), key=lambda s: (s.study_date or dt.date.min, s.study_uid)
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
        index = self._index_now()
        with self._lock:
            series = index.series(study_uid)
        found = [s for s in series if not modality or s.modality == modality.strip().upper()]
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

    def instances(self, study_uid: str, series_uid: str | None = None) -> list[LocalInstance]:
        """The instances of a study (or one of its series), in series then instance order."""
        index = self._index_now()
        with self._lock:
            found = [
                i
                for i in index.study_instances(study_uid)
                if series_uid is None or i.series_uid == series_uid
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
                i.member.name,
            )
        )
        return found

    def members(self, study_uid: str, series_uid: str | None = None) -> list[Member]:
        """Where the instances of a study (or series) are: files or zip members."""
        return [i.member for i in self.instances(study_uid, series_uid)]

    def files(self, study_uid: str, series_uid: str | None = None) -> list[Path]:
        """The files of a study (or one of its series) that are files of their own."""
        return [m.path for m in self.members(study_uid, series_uid) if isinstance(m, FileMember)]

    def _read(self, instance: LocalInstance, *, pixels: bool) -> Dataset:
        member = instance.member
        try:
            # A file is read by name, a zip member from its bytes in memory: that
            # buffer stays open, as pydicom keeps it as the data set's `buffer`.
            source: Path | io.BytesIO = (
                member.path if isinstance(member, FileMember) else io.BytesIO(member.read_bytes())
            )
            try:
                return pydicom.dcmread(source, stop_before_pixels=not pixels)
            except InvalidDicomError:
                # Listed, so it read as a data set without the Part 10 preamble.
                if isinstance(source, io.BytesIO):
                    source.seek(0)
                ds = pydicom.dcmread(source, stop_before_pixels=not pixels, force=True)
                return _with_transfer_syntax(ds)
        except (InvalidDicomError, OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ProtocolError(
                f"{member.name} can no longer be read ({exc}).", server=self.server
            ) from exc

    def _header(self, instance: LocalInstance) -> Dataset:
        # Pixels skipped; the header gets an empty pixel element, as DICOMweb
        # metadata has (bulk data left out).
        return header_of(self._read(instance, pixels=False))

    def series_metadata(self, study_uid: str, series_uid: str) -> list[Dataset]:
        found = self._series_instances(study_uid, series_uid, serving=True)
        return [self._header(i) for i in found]

    def study_metadata(self, study_uid: str) -> list[Dataset]:
        series = [s.series_uid for s in self.search_series(study_uid)]
        if not series:
            raise NotFound(f"No study {study_uid}.", server=self.server)
        headers: list[Dataset] = []
        for series_uid in sorted(series):
            headers.extend(self.series_metadata(study_uid, series_uid))
        return headers

    def iter_series(self, study_uid: str, series_uid: str) -> Iterator[Dataset]:
        for instance in self._series_instances(study_uid, series_uid, serving=True):
            yield self._read(instance, pixels=True)

    def retrieve_instance(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
        index = self._index_now()
        with self._lock:
            instance = index.instances.get(sop_uid)
        if instance is None or instance.study_uid != study_uid or instance.series_uid != series_uid:
            raise NotFound(f"No instance {sop_uid}.", server=self.server)
        return self._read(instance, pixels=True)

    def close(self) -> None:
        self.cancel_scan()
        with self._lock:
            self._index = None
            self._close_archives()

    def _close_archives(self, keep: LocalIndex | None = None) -> None:
        """Close the archives that no index (but `keep`) reads from any more."""
        used = set()
        if keep is not None:
            used = {
                id(i.member.archive)
                for i in keep.instances.values()
                if isinstance(i.member, ZipMember)
            }
        for archive in self._archives:
            if id(archive) not in used:
                archive.close()
        self._archives = [a for a in self._archives if id(a) in used]


_T = TypeVar("_T")


def describe_paths(paths: Sequence[Path]) -> str:
    """How the UI names a set of opened paths: the folder, the file, or "N files in DIR"."""
    if len(paths) == 1:
        return str(paths[0])
    parents = {p.parent for p in paths}
    where = str(parents.pop()) if len(parents) == 1 else os.path.commonpath([str(p) for p in paths])
    what = "files" if all(p.is_file() for p in paths) else "files and folders"
    return f"{len(paths)} {what} in {where}"


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise _Cancelled


def _walk(root: Path, cancel: threading.Event | None) -> Iterator[Path]:
    """Every file under `root`, in name order, a folder at a time: the first files are
    read while the rest of a large tree is still unlisted."""
    try:
        with os.scandir(root) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        log.debug("cannot list %s: %s", root, exc)
        return
    for entry in entries:
        _check(cancel)
        try:
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(Path(entry.path), cancel)
            elif entry.is_file():
                yield Path(entry.path)
        except OSError:
            continue


def _with_transfer_syntax(ds: Dataset) -> Dataset:
    """A data set read without file meta names the encoding pydicom found, so its
    pixels can be decoded like any other's (PS3.5 A.1, A.2)."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        ds.file_meta = meta = pydicom.dataset.FileMetaDataset()
    if "TransferSyntaxUID" not in meta:
        implicit, little = ds.original_encoding
        if little is not False:
            meta.TransferSyntaxUID = (
                pydicom.uid.ImplicitVRLittleEndian
                if implicit is not False
                else pydicom.uid.ExplicitVRLittleEndian
            )
        else:
            meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
    return ds


def _is_dicomdir(path: Path) -> bool:
    try:
        meta = pydicom.filereader.read_file_meta_info(path)
    except (InvalidDicomError, OSError, ValueError, EOFError):
        return False
    return str(meta.get("MediaStorageSOPClassUID", "")) == DICOMDIR_CLASS


def _instance(
    member: Member, summaries: Summaries, stream: BinaryIO | None = None
) -> LocalInstance | None:
    header = read_index_header(member, stream)
    if header is None:
        return None
    meta = getattr(header, "file_meta", None)
    if meta is not None and str(meta.get("MediaStorageSOPClassUID", "")) == DICOMDIR_CLASS:
        return None
    return instance_from_header(member, header, summaries)


def _refusals(path: Path, refused: Sequence[RefusedMember]) -> str:
    first = refused[0]
    more = f" and {len(refused) - 1} more" if len(refused) > 1 else ""
    return (
        f"{path.name}: {len(refused)} member{'s' if len(refused) != 1 else ''} refused "
        f"({first.name}: {first.reason}{more})"
    )


def _page(items: list[_T], limit: int | None, offset: int | None) -> list[_T]:
    start = offset or 0
    return items[start : start + limit] if limit is not None else items[start:]
