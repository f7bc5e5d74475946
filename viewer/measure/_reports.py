"""A study's measurement reports on the server, and saving one (STOW or a file).

Listing is two QIDO steps: the study's series with Modality SR, then their
instances; only SR storage classes are offered. Loading retrieves one instance
(WADO-RS) and parses it with `read_report`. Saving stores through STOW-RS when the
server may store (the server's "Can Store/Update Data", and for Zhiva tokens the
user's canEditResource), else writes a Part 10 file into a folder. Runs on a worker
thread; nothing here touches the GUI.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from pydicom.dataset import Dataset

from ._sr import SR_SOP_CLASSES, ReadReport, read_report

if TYPE_CHECKING:
    from net import InstanceSummary, SeriesSummary, ServerConfig, StoreResult

__all__ = [
    "ReportInfo",
    "ReportSource",
    "ReportStore",
    "SaveResult",
    "list_reports",
    "load_report",
    "may_store",
    "save_report",
]

log = logging.getLogger("viewer.measure")


class ReportSource(Protocol):
    """What listing and loading need of a study source: a `net.DicomWebClient`, or a
    local folder (`viewer.loader.LocalFolderSource`), whose SR files are listed too."""

    @property
    def server(self) -> str: ...

    def search_series(self, study_uid: str, *, modality: str = "") -> list[SeriesSummary]: ...

    def search_instances(self, study_uid: str, series_uid: str) -> list[InstanceSummary]: ...

    def retrieve_instance(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset: ...


class ReportStore(Protocol):
    """What storing needs: a `net.DicomWebClient` (STOW-RS)."""

    @property
    def server(self) -> str: ...

    def store(
        self, instances: Sequence[Dataset | bytes], study_uid: str | None = None
    ) -> StoreResult: ...


@dataclass(frozen=True, slots=True)
class ReportInfo:
    """One SR instance of a study, as listed (before it is retrieved)."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    series_description: str = ""
    series_number: int | None = None
    instance_number: int | None = None


def list_reports(client: ReportSource, study_uid: str) -> list[ReportInfo]:
    """The study's structured reports, newest series number last."""
    reports: list[ReportInfo] = []
    for series in client.search_series(study_uid, modality="SR"):
        if series.modality and series.modality.upper() != "SR":
            continue  # a server that ignores the Modality filter
        for instance in client.search_instances(study_uid, series.series_uid):
            if instance.sop_class_uid and instance.sop_class_uid not in SR_SOP_CLASSES:
                continue
            reports.append(
                ReportInfo(
                    study_uid=study_uid,
                    series_uid=series.series_uid,
                    sop_instance_uid=instance.sop_instance_uid,
                    sop_class_uid=instance.sop_class_uid,
                    series_description=series.description,
                    series_number=series.series_number,
                    instance_number=instance.instance_number,
                )
            )
    reports.sort(key=lambda r: (r.series_number or 0, r.instance_number or 0))
    return reports


def load_report(client: ReportSource, info: ReportInfo) -> ReadReport:
    """Retrieve one report and read its measurements (raises `ReportError` if it has none)."""
    ds = client.retrieve_instance(info.study_uid, info.series_uid, info.sop_instance_uid)
    return read_report(ds)


@dataclass(frozen=True, slots=True)
class SaveResult:
    """Where a report went: "server" (stored, `where` names it) or "file" (a path)."""

    target: Literal["server", "file"]
    where: str
    sop_instance_uid: str


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def may_store(config: ServerConfig | None, auth: object | None = None) -> bool:
    """The can_store / canEditResource rule: the server is set up to store, and a Zhiva
    token (whose `can_edit` says canEditResource) does not forbid it."""
    if config is None or not config.can_store:
        return False
    return getattr(auth, "can_edit", True) is not False


def save_report(
    report: Dataset,
    *,
    client: ReportStore | None,
    can_store: bool,
    folder: Path,
) -> SaveResult:
    """Store `report` on the server when it may store, else write it under `folder`.

    A server that refuses the instance raises `net.DicomWebError` (the caller shows
    it); the file name holds no patient data: ``SR_<SOP Instance UID>.dcm``.
    """
    uid = str(report.SOPInstanceUID)
    if client is not None and can_store:
        from net import ProtocolError

        result = client.store([report], str(report.StudyInstanceUID))
        if result.failed or (result.stored and uid not in result.stored):
            failure = result.failed[0] if result.failed else None
            why = (failure.message or f"status {failure.reason}") if failure else "not listed"
            raise ProtocolError(
                f"The server did not store the report: {why}.", server=client.server
            )
        return SaveResult("server", client.server, uid)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"SR_{_UNSAFE.sub('_', uid)}.dcm"
    buffer = io.BytesIO()
    report.save_as(buffer, enforce_file_format=True)
    # Written beside and renamed: a crash never leaves half a report under the name.
    partial = path.with_suffix(".partial")
    partial.write_bytes(buffer.getvalue())
    partial.replace(path)
    log.info("measurement report written to a file (%d bytes)", len(buffer.getvalue()))
    return SaveResult("file", str(path), uid)
