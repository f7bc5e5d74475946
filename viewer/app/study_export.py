"""File > Export study…: a study (or one series) to a folder or a zip file, as it is or
de-identified (`viewer.deid`, DICOM PS3.15 Basic Profile).

Runs on a worker (`BackgroundTasks`), no dearpygui here, from any `net.StudySource`:
a local source's files are copied byte for byte when exported as they are; every
other instance is read through the source (`iter_series`) and written as Part 10.
Files are named by series number, modality and position only (``S001-CT/I00001.dcm``),
never after the patient or a description. A zip is written under a temporary name
and renamed at the end; a cancelled or failed export removes what it wrote, so a
half-written export is never mistaken for a whole one.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .state import Level
from .ui_thread import CancelToken

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from net import SeriesSummary, StudySource

__all__ = ["ExportReport", "ExportRequest", "export_name", "export_study"]

log = logging.getLogger("viewer.app.study_export")


@dataclass(frozen=True)
class ExportRequest:
    study_uid: str
    #: One series, or None for the whole study.
    series_uid: str | None
    #: A folder to create (or an empty one), or a file ending in ``.zip``.
    destination: Path
    deidentify: bool = True
    keep_private: bool = False

    @property
    def as_zip(self) -> bool:
        return self.destination.suffix.lower() == ".zip"


@dataclass(frozen=True)
class ExportReport:
    destination: Path
    written: int = 0
    #: (what, why) for each instance that could not be exported.
    failed: tuple[tuple[str, str], ...] = ()
    #: Instances whose Burned In Annotation is YES (their pixels may show identity).
    burned_in: int = 0
    deidentified: bool = False
    cancelled: bool = False
    #: Why the export stopped before the end (nothing is left behind), if it did.
    stopped: str | None = None

    def summary(self) -> tuple[Level, str]:
        if self.cancelled:
            return "warning", "The export was cancelled; nothing was left behind."
        if self.stopped is not None:
            return "error", f"The export failed: {self.stopped}"
        how = " de-identified" if self.deidentified else ""
        text = f"Exported {self.written} instances{how} to {self.destination}."
        level: Level = "success"
        if self.failed:
            first, why = self.failed[0]
            more = f" (and {len(self.failed) - 1} more)" if len(self.failed) > 1 else ""
            text += f" {first} could not be exported: {why}{more}."
            level = "error"
        if self.burned_in and self.deidentified:
            text += (
                f" {self.burned_in} of them are marked Burned In Annotation = YES: their "
                "pixels may still show patient details."
            )
            level = "warning" if level == "success" else level
        return level, text


def export_name(series: SeriesSummary, index: int) -> str:
    """Where an instance goes inside the export: series number, modality, position."""
    number = series.series_number if series.series_number is not None else 0
    modality = "".join(c for c in series.modality.upper() if c.isalnum()) or "OT"
    return f"S{number:03d}-{modality}/I{index + 1:05d}.dcm"


class _Writer:
    """Files into a folder, or members into a zip written under a temporary name."""

    def __init__(self, destination: Path, *, as_zip: bool) -> None:
        self.destination = destination
        self.written: list[Path] = []
        self._zip: zipfile.ZipFile | None = None
        if as_zip:
            destination.parent.mkdir(parents=True, exist_ok=True)
            self._partial = destination.with_name(destination.name + ".partial")
            self._zip = zipfile.ZipFile(self._partial, "w", zipfile.ZIP_DEFLATED)
        else:
            if destination.exists() and any(destination.iterdir()):
                raise FileExistsError(f"{destination} is not empty: choose a new or empty folder")
            destination.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, data: bytes) -> None:
        if self._zip is not None:
            self._zip.writestr(name, data)
            return
        path = self.destination / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.written.append(path)

    def finish(self) -> None:
        if self._zip is not None:
            self._zip.close()
            os.replace(self._partial, self.destination)

    def discard(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._partial.unlink(missing_ok=True)
            return
        for path in self.written:
            path.unlink(missing_ok=True)
        # Folders are removed only when empty: anything else in them is not ours.
        for folder in [*sorted({p.parent for p in self.written}, reverse=True), self.destination]:
            with contextlib.suppress(OSError):
                folder.rmdir()


def _same(ds: Dataset) -> Dataset:
    return ds


def _part10(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _instances(
    source: StudySource, request: ExportRequest, series: list[SeriesSummary]
) -> Iterator[tuple[SeriesSummary, int, Callable[[], bytes | Dataset]]]:
    """(series, position, a reader of the instance) in series then instance order."""
    members = getattr(source, "members", None)
    for summary in series:
        if members is not None:
            for n, member in enumerate(members(request.study_uid, summary.series_uid)):
                yield summary, n, member.read_bytes
            continue
        for n, ds in enumerate(source.iter_series(request.study_uid, summary.series_uid)):
            yield summary, n, functools.partial(_same, ds)


def export_study(
    source: StudySource,
    request: ExportRequest,
    *,
    cancel: CancelToken | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExportReport:
    """Write the study (or series) of `request`; never raises for what the instances
    or the disk do: the report says it."""
    import pydicom

    from net import DicomWebError
    from viewer.deid import Deidentifier, burned_in

    destination = request.destination
    series = source.search_series(request.study_uid)
    if request.series_uid is not None:
        series = [s for s in series if s.series_uid == request.series_uid]
    total = sum(s.instance_count or 0 for s in series)
    deidentify = Deidentifier(keep_private=request.keep_private) if request.deidentify else None
    try:
        writer = _Writer(destination, as_zip=request.as_zip)
    except OSError as exc:
        return ExportReport(destination, stopped=str(exc))
    written = burned = 0
    failed: list[tuple[str, str]] = []
    try:
        for summary, n, read in _instances(source, request, series):
            if cancel is not None and cancel.cancelled:
                writer.discard()
                return ExportReport(destination, cancelled=True)
            name = export_name(summary, n)
            try:
                item = read()
                if deidentify is None and isinstance(item, bytes):
                    data = item
                    burned += burned_in(pydicom.dcmread(io.BytesIO(item), stop_before_pixels=True))
                else:
                    ds = pydicom.dcmread(io.BytesIO(item)) if isinstance(item, bytes) else item
                    burned += burned_in(ds)
                    if deidentify is not None:
                        deidentify(ds)
                    data = _part10(ds)
                writer.write(name, data)
                written += 1
            except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
                log.warning("export: an instance failed: %s", type(exc).__name__)
                failed.append((name, str(exc) or type(exc).__name__))
            if progress is not None:
                progress(written + len(failed), total)
        writer.finish()
    except DicomWebError as exc:
        writer.discard()
        return ExportReport(destination, stopped=getattr(exc, "message", None) or str(exc))
    except OSError as exc:
        writer.discard()
        return ExportReport(destination, stopped=f"{destination} could not be written ({exc})")
    return ExportReport(
        destination, written, tuple(failed), burned, deidentified=deidentify is not None
    )
