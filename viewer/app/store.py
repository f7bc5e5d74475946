"""Store local files on the selected server (STOW-RS), in batches, with a report.

Runs on a worker (`BackgroundTasks`), no dearpygui here. The files are sent as they are
on disk (Part 10 bytes, never re-encoded, so the server gets exactly what the user
opened), a batch per request so a large study neither builds one huge body in memory
nor loses everything to one failed request. Each answer says per instance what was
stored; a failure that ends the upload (refused, signed out, server down) stops it
there and the report says how many were sent before, and why.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .state import Level
from .ui_thread import CancelToken

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from net import StoreResult

__all__ = ["BATCH_BYTES", "StoreReport", "Storer", "store_files"]

log = logging.getLogger("viewer.app.store")

#: Bytes per STOW request: large enough that the per-request cost is small, small
#: enough that the body (held in memory while it is sent) stays modest.
BATCH_BYTES = 32 * 1024 * 1024

#: Failure reasons of PS3.4 Annex GG.4 / PS3.18 Table 10.5.3-1, in words.
_REASONS = {
    0xA700: "the server is out of resources",
    0xA900: "the data set does not match its SOP class",
    0xC000: "the server cannot understand it",
    0xC122: "the server refused the transfer syntax",
    0x0110: "processing failure",
    0x0122: "the server does not support this SOP class",
    0x0124: "not authorised",
}


class StoredFile(Protocol):
    """A file to send: a `Path`, or a local source's member (a file or a zip member)."""

    @property
    def name(self) -> str: ...

    def read_bytes(self) -> bytes: ...


def _length(item: StoredFile) -> int:
    size = getattr(item, "size", None)
    if isinstance(size, int):
        return size
    try:
        return item.stat().st_size if isinstance(item, Path) else 0
    except OSError:
        return 0  # reported when it is read


class Storer(Protocol):
    """What storing needs of a `net.DicomWebClient`."""

    server: str

    def store(
        self, instances: Sequence[Dataset | bytes], study_uid: str | None = None
    ) -> StoreResult: ...


@dataclass(frozen=True)
class StoreReport:
    """What happened to each file of one "Store on server"."""

    server: str
    total: int
    stored: int = 0
    #: (file name or SOP Instance UID, why) for each instance that was not stored.
    failed: tuple[tuple[str, str], ...] = ()
    #: Sent, and the server answered success without listing them.
    unconfirmed: int = 0
    warnings: int = 0
    #: Why the upload stopped before the end (the rest was not sent), if it did.
    stopped: str | None = None
    cancelled: bool = False

    @property
    def unsent(self) -> int:
        return self.total - self.stored - len(self.failed) - self.unconfirmed

    def summary(self) -> tuple[Level, str]:
        """(notice level, text) for the status bar."""
        if self.cancelled:
            return "warning", (
                f"Storing on {self.server} was cancelled: {self.stored} of {self.total} "
                "instances stored."
            )
        if self.stopped is not None:
            return "error", (
                f"Storing on {self.server} stopped after {self.stored} of {self.total} "
                f"instances: {self.stopped}"
            )
        if self.failed:
            first, why = self.failed[0]
            more = f" (and {len(self.failed) - 1} more)" if len(self.failed) > 1 else ""
            return "error", (
                f"{self.server} stored {self.stored} of {self.total} instances; "
                f"{first} was refused: {why}{more}."
            )
        text = f"Stored {self.stored} of {self.total} instances on {self.server}."
        if self.unconfirmed:
            text = (
                f"Sent {self.total} instances to {self.server}; it confirmed "
                f"{self.stored} and answered nothing about {self.unconfirmed}."
            )
        if self.warnings:
            text += f" {self.warnings} with warnings (the server changed something)."
        return ("warning" if self.unconfirmed or self.warnings else "success"), text


def _reason(code: int | None, message: str) -> str:
    if message:
        return message
    if code is None:
        return "no reason given"
    return _REASONS.get(code, f"status 0x{code:04X}")


def _batches(paths: Sequence[StoredFile], limit: int) -> list[list[StoredFile]]:
    batches: list[list[StoredFile]] = []
    current: list[StoredFile] = []
    size = 0
    for path in paths:
        length = _length(path)
        if current and size + length > limit:
            batches.append(current)
            current, size = [], 0
        current.append(path)
        size += length
    if current:
        batches.append(current)
    return batches


def store_files(
    client: Storer,
    paths: Sequence[StoredFile],
    study_uid: str | None = None,
    *,
    cancel: CancelToken | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch_bytes: int = BATCH_BYTES,
) -> StoreReport:
    """Send `paths` (Part 10 files of one study, on disk or in a zip) to `client`'s server; never raises for
    what the server or the files do: the report says it."""
    from net import DicomWebError

    total = len(paths)
    stored = unconfirmed = warnings = 0
    failed: list[tuple[str, str]] = []
    done = 0
    for batch in _batches(paths, batch_bytes):
        if cancel is not None and cancel.cancelled:
            return StoreReport(
                client.server, total, stored, tuple(failed), unconfirmed, warnings,
                cancelled=True,
            )  # fmt: skip
        bodies: list[bytes] = []
        for path in batch:
            try:
                bodies.append(path.read_bytes())
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                why = getattr(exc, "strerror", None) or exc
                failed.append((Path(path.name).name, f"it could not be read ({why})"))
        if bodies:
            try:
                result = client.store(bodies, study_uid)
            except DicomWebError as exc:
                log.warning("store on %s stopped: %s", client.server, exc)
                return StoreReport(
                    client.server, total, stored, tuple(failed), unconfirmed, warnings,
                    stopped=getattr(exc, "message", None) or str(exc),
                )  # fmt: skip
            stored += len(result.stored)
            warnings += len(result.warnings)
            failed.extend((f.sop_instance_uid, _reason(f.reason, f.message)) for f in result.failed)
            unconfirmed += max(0, len(bodies) - len(result.stored) - len(result.failed))
        done += len(batch)
        if progress is not None:
            progress(done, total)
    return StoreReport(client.server, total, stored, tuple(failed), unconfirmed, warnings)
