"""The study on screen's measurement reports: listed, shown, and saved, in the background.

A study's reports are where its images come from (its server's SR series through
QIDO, or a local folder's SR files: `measure.list_reports` over either) and in the
folder this viewer writes reports to when the server may not store (`reports_dir`,
read by header only). `StudyReports` lists both for the study of the active viewport,
loads one on request and adds its measurements to the session's set, read-only until
unlocked (`unlock`), and saves the study's editable measurements as a new report.

What a save holds: the study's measurements that are not read-only, on stored
instances (MPR planes are the session's only), with the values last computed from the
pixels. A report of a study keeps one SR series for the session (instance numbers
count up); it names as its predecessors the reports whose measurements it carries
(unlocked and edited) and this session's previous save, so each save replaces the
last rather than adding a copy. The request is captured on the UI thread (headers
copied) and written on a worker; plain Python, no dearpygui.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from viewer.measure import (
    SR_SOP_CLASSES,
    ImageRef,
    MeasuredValues,
    Measurement,
    ReadReport,
    ReportInfo,
    ReportSource,
    ReportStore,
    SaveResult,
)

from ..state import Signal

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from ..ui_thread import BackgroundTasks
    from .measuring import Measuring

__all__ = [
    "ReportEntry",
    "ReportsTopic",
    "SaveRequest",
    "StudyReports",
    "list_folder",
    "read_file",
    "write_and_save",
]

log = logging.getLogger("viewer.app")

ReportsTopic = Literal["list", "shown", "save"]
ListStatus = Literal["idle", "listing", "ready", "error"]
#: The series number of this viewer's reports (OHIF and others use high numbers too,
#: so reports sort after the images).
REPORT_SERIES_NUMBER = 9001
#: Files of the reports folder read at most (each by its header only).
_MAX_FOLDER_FILES = 2000


@dataclass(frozen=True, slots=True)
class ReportEntry:
    """One report of the study: on its source ("source": the server or a local
    folder the study was opened from) or in this viewer's reports folder ("file")."""

    sop_instance_uid: str
    label: str
    where: Literal["source", "file"]
    info: ReportInfo | None = None
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class SaveRequest:
    """Everything a save needs, captured on the UI thread (headers are copies)."""

    study_uid: str
    measurements: tuple[Measurement, ...]
    values: dict[str, MeasuredValues]
    evidence: tuple[Dataset, ...]
    series_uid: str
    sop_instance_uid: str
    instance_number: int
    previous: tuple[Dataset, ...]
    store: ReportStore | None
    folder: Path
    observer: str = ""


def write_and_save(request: SaveRequest) -> tuple[SaveResult, Dataset]:
    """Build the report and store it (server) or write it (file). On a worker."""
    from viewer.measure import save_report, write_report

    report = write_report(
        request.measurements, request.values, request.evidence,
        series_uid=request.series_uid, sop_instance_uid=request.sop_instance_uid,
        series_number=REPORT_SERIES_NUMBER, instance_number=request.instance_number,
        observer=request.observer, previous_versions=request.previous,
    )  # fmt: skip
    if request.store is None:
        from viewer.settings import ensure_private_dir

        # Reports name the patient: the folder is the user's alone, as the config is.
        ensure_private_dir(request.folder)
    result = save_report(
        report, client=request.store, can_store=request.store is not None, folder=request.folder
    )
    return result, _identity(report)


def _identity(ds: Dataset) -> Dataset:
    """What a later report needs to name `ds` as its predecessor."""
    from pydicom.dataset import Dataset

    stub = Dataset()
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID", "SOPInstanceUID"):
        setattr(stub, keyword, str(ds.get(keyword) or ""))
    return stub


def _label(date: str, description: str, number: int | None, where: str) -> str:
    when = f"{date[:4]}-{date[4:6]}-{date[6:8]}" if len(date) == 8 and date.isdigit() else ""
    parts = [p for p in (when, description or "Measurement report") if p]
    if number is not None:
        parts.append(f"#{number}")
    return f"{' '.join(parts)} ({where})"


def list_folder(folder: Path | None, study_uid: str) -> list[ReportEntry]:
    """The reports of `study_uid` this viewer wrote into `folder` (headers only)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    if folder is None or not folder.is_dir():
        return []
    found: list[tuple[str, ReportEntry]] = []
    for path in sorted(folder.glob("*.dcm"))[:_MAX_FOLDER_FILES]:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
            log.warning("a file of the reports folder could not be read: %s", exc)
            continue
        if str(ds.get("StudyInstanceUID") or "") != study_uid:
            continue
        if str(ds.get("SOPClassUID") or "") not in SR_SOP_CLASSES:
            continue
        date = str(ds.get("ContentDate") or "") + str(ds.get("ContentTime") or "")[:6]
        number = ds.get("InstanceNumber")
        label = _label(
            str(ds.get("ContentDate") or ""), str(ds.get("SeriesDescription") or ""),
            int(number) if number not in (None, "") else None, "on this computer",
        )  # fmt: skip
        uid = str(ds.get("SOPInstanceUID") or "")
        found.append((date, ReportEntry(uid, label, "file", path=path)))
    found.sort(key=lambda item: item[0])
    return [entry for _, entry in found]


def read_file(path: Path) -> ReadReport:
    """A report file of the reports folder, read (raises `ReportError` or `OSError`)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    from viewer.measure import ReportError, read_report

    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, EOFError, ValueError) as exc:
        raise ReportError(f"{path.name} is not a DICOM file this viewer can read.") from exc
    return read_report(ds)


def _list(source: ReportSource | None, folder: Path | None, study_uid: str) -> list[ReportEntry]:
    from viewer.measure import list_reports

    entries: list[ReportEntry] = []
    where = "server" if source is not None and _is_server(source) else "folder"
    if source is not None:
        for info in list_reports(source, study_uid):
            label = _label("", info.series_description, info.instance_number, where)
            entries.append(ReportEntry(info.sop_instance_uid, label, "source", info=info))
    known = {e.sop_instance_uid for e in entries}
    entries += [e for e in list_folder(folder, study_uid) if e.sop_instance_uid not in known]
    return entries


def _is_server(source: object) -> bool:
    return hasattr(source, "store")


def _load(source: ReportSource | None, entry: ReportEntry) -> ReadReport:
    from viewer.measure import ReportError, load_report

    if entry.path is not None:
        return read_file(entry.path)
    if source is None or entry.info is None:
        raise ReportError("The report's source is closed: open the study again.")
    return load_report(source, entry.info)


@dataclass(slots=True)
class _StudySaves:
    """This session's saves of one study: its SR series and what was saved last."""

    series_uid: str
    count: int = 0
    last: Dataset | None = None
    saved: tuple[Measurement, ...] = ()
    #: Reports whose measurements were unlocked here: what a save replaces.
    replaces: dict[str, Dataset] = field(default_factory=dict)


class StudyReports:
    """See the module docstring. UI thread only (the work runs on `tasks`' workers)."""

    def __init__(
        self, measuring: Measuring, tasks: BackgroundTasks | None, folder: Path | None
    ) -> None:
        self.measuring = measuring
        self.tasks = tasks
        #: Where reports go when the server may not store (and are listed from).
        self.folder = folder
        self.changed: Signal[ReportsTopic] = Signal()
        self.study_uid: str | None = None
        self.source: ReportSource | None = None
        self.status: ListStatus = "idle"
        self.message = ""
        self.entries: tuple[ReportEntry, ...] = ()
        #: Reports shown in this session, by SOP Instance UID.
        self.shown: dict[str, ReadReport] = {}
        self.loading: str | None = None
        self.saving = False
        self.save_message = ""
        self._saves: dict[str, _StudySaves] = {}

    # -- listing ------------------------------------------------------------------------

    def show_study(self, study_uid: str | None, source: ReportSource | None) -> None:
        """The study on screen (None: none); its reports are listed in the background."""
        if study_uid == self.study_uid and source is self.source:
            return
        self.study_uid, self.source = study_uid, source
        self.entries, self.message = (), ""
        self.refresh()

    def refresh(self) -> None:
        study_uid, source, folder, tasks = self.study_uid, self.source, self.folder, self.tasks
        if study_uid is None or tasks is None:
            self.status = "idle"
            self.changed.emit("list")
            return
        self.status = "listing"
        self.changed.emit("list")

        def listed(entries: list[ReportEntry]) -> None:
            if study_uid != self.study_uid:
                return
            self.entries, self.status = tuple(entries), "ready"
            self.message = "" if entries else "No measurement reports."
            self.changed.emit("list")

        def failed(exc: BaseException) -> None:
            if study_uid != self.study_uid:
                return
            log.warning("the study's reports could not be listed: %s", exc)
            self.status = "error"
            self.message = f"The reports could not be listed: {_reason(exc)}"
            self.changed.emit("list")

        tasks.submit(
            "reports-list", "Looking for measurement reports…",
            lambda cancel: _list(source, folder, study_uid), on_done=listed, on_error=failed,
        )  # fmt: skip

    # -- showing ------------------------------------------------------------------------

    def open(self, entry: ReportEntry, on_shown: Callable[[ReadReport], None]) -> None:
        """Load `entry` and add its measurements (read-only); `on_shown` jumps to them."""
        tasks, source = self.tasks, self.source
        if tasks is None:
            return
        known = self.shown.get(entry.sop_instance_uid)
        if known is not None:
            on_shown(known)
            return
        self.loading = entry.sop_instance_uid
        self.changed.emit("shown")

        def loaded(report: ReadReport) -> None:
            self.loading = None
            self.shown[report.sop_instance_uid] = report
            added = self.measuring.measurements.add_many(report.measurements)
            skipped = (
                f"; {len(report.skipped)} not understood were left out" if report.skipped else ""
            )
            self.measuring.notify(
                "info" if report.measurements else "warning",
                f"Report shown: {added} measurement(s), read-only until you edit them{skipped}.",
            )
            self.changed.emit("shown")
            if report.measurements:
                on_shown(report)

        def failed(exc: BaseException) -> None:
            self.loading = None
            self.changed.emit("shown")
            self.measuring.notify("error", f"The report could not be shown: {_reason(exc)}")

        tasks.submit(
            "report-load", "Loading the measurement report…",
            lambda cancel: _load(source, entry), on_done=loaded, on_error=failed,
        )  # fmt: skip

    def unlock(self, report_uid: str) -> int:
        """Make a shown report's measurements editable; a save then replaces it."""
        report = self.shown.get(report_uid)
        count = self.measuring.measurements.unlock(report_uid)
        if report is not None and count:
            from pydicom.dataset import Dataset

            stub = Dataset()
            stub.StudyInstanceUID = report.study_uid
            stub.SeriesInstanceUID = report.series_uid
            stub.SOPClassUID = report.sop_class_uid
            stub.SOPInstanceUID = report.sop_instance_uid
            self._saves_of(report.study_uid).replaces[report_uid] = stub
            self.changed.emit("shown")
        return count

    def locked(self, report_uid: str) -> bool:
        return any(
            m.locked and m.source_report == report_uid for m in self.measuring.measurements.items
        )

    # -- saving -------------------------------------------------------------------------

    def _saves_of(self, study_uid: str) -> _StudySaves:
        saves = self._saves.get(study_uid)
        if saves is None:
            from pydicom.uid import generate_uid

            saves = self._saves[study_uid] = _StudySaves(generate_uid())
        return saves

    def to_save(self, study_uid: str) -> tuple[tuple[Measurement, ...], int]:
        """The study's measurements a save would hold, and how many are left out
        because they are on MPR planes (session only)."""
        study = self.measuring.measurements.in_study(study_uid)
        editable = [m for m in study if not m.locked]
        savable = tuple(m for m in editable if self.measuring.savable(m))
        return savable, len(editable) - len(savable)

    def unsaved(self, study_uid: str) -> bool:
        """The study has measurements that differ from its last save in this session."""
        measurements, _ = self.to_save(study_uid)
        saves = self._saves.get(study_uid)
        return measurements != (saves.saved if saves is not None else ())

    def save(
        self,
        study_uid: str,
        store: ReportStore | None,
        *,
        header_of: Callable[[ImageRef], Dataset | None] = lambda ref: None,
        observer: str = "",
    ) -> bool:
        """Save the study's measurements as a new report (see the module docstring):
        stored through `store` when given (the server may store), else into `folder`."""
        tasks, folder = self.tasks, self.folder
        measurements, planes = self.to_save(study_uid)
        if not measurements:
            text = (
                "Measurements on MPR planes are kept for this session only: their images "
                "exist in no PACS, so no report can point at them."
                if planes
                else "There are no measurements of this study to save."
            )
            self._saved_message("warning", text)
            return False
        if tasks is None or (store is None and folder is None):
            self._saved_message("error", "Measurements cannot be saved here.")
            return False
        headers: dict[str, Dataset] = {}
        kept: list[Measurement] = []
        for m in measurements:
            header = self.measuring.header_of(m.image) or header_of(m.image)
            if header is None:
                continue  # never on screen and no open series has it
            headers.setdefault(m.image.sop_instance_uid, header)
            kept.append(m)
        if not kept:
            self._saved_message("error", "The measured images are not open: open the series.")
            return False
        values: dict[str, MeasuredValues] = {}
        for m in kept:
            found = self.measuring.values(m)
            if found is not None:
                values[m.uid] = found
        saves = self._saves_of(study_uid)
        previous = list(saves.replaces.values())
        if saves.last is not None:
            previous.append(saves.last)
        from pydicom.uid import generate_uid

        request = SaveRequest(
            study_uid=study_uid,
            measurements=tuple(kept),
            values=values,
            # Copies: the worker reads them while the viewports read the originals.
            evidence=tuple(copy.deepcopy(h) for h in headers.values()),
            series_uid=saves.series_uid,
            sop_instance_uid=generate_uid(),
            instance_number=saves.count + 1,
            previous=tuple(previous),
            store=store,
            folder=folder if folder is not None else Path("."),
            observer=observer,
        )
        left_out = len(measurements) - len(kept) + planes
        self.saving, self.save_message = True, "Saving the measurements…"
        self.changed.emit("save")

        def saved(done: tuple[SaveResult, Dataset]) -> None:
            result, identity = done
            saves.count += 1
            saves.last = identity
            saves.saved = measurements
            saves.replaces.clear()
            where = f"on {result.where}" if result.target == "server" else f"to {result.where}"
            note = f" ({left_out} on MPR planes or closed images not included)" if left_out else ""
            self.saving = False
            self._saved_message(
                "success", f"Saved {len(kept)} measurement(s) as a report {where}{note}."
            )
            if study_uid == self.study_uid:
                self.refresh()

        def failed(exc: BaseException) -> None:
            log.error("the measurement report could not be saved", exc_info=exc)
            self.saving = False
            self._saved_message("error", f"The measurements could not be saved: {_reason(exc)}")

        tasks.submit(
            "report-save", "Saving the measurements…",
            lambda cancel: write_and_save(request), on_done=saved, on_error=failed,
        )  # fmt: skip
        return True

    def _saved_message(self, level: Literal["success", "warning", "error"], text: str) -> None:
        self.save_message = text
        self.measuring.notify(level, text)
        self.changed.emit("save")


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc or type(exc).__name__)


def headers_in(sources: Sequence[object], ref: ImageRef) -> Dataset | None:
    """The header of `ref`'s image from whichever open source holds it."""
    for source in sources:
        index_of = getattr(source, "index_of", None)
        index = index_of(ref.sop_instance_uid, ref.frame) if callable(index_of) else None
        header = getattr(source, "header", None)
        if index is not None and callable(header):
            found = header(index)
            if found is not None:
                return found  # type: ignore[no-any-return]
    return None
