"""`SettingsStore`: the settings file on disk, never lost, never clobbered.

* Writes are atomic (`atomic_write`) and the bytes being replaced are first saved to
  ``settings.json.bak`` (itself written atomically).
* A file that cannot be read as settings is moved aside to
  ``settings.json.corrupt-<time>`` (never overwritten, never deleted), the backup is
  loaded if it is good, and the user is told both things through `notices`.
* A file from an older schema is migrated in memory; the original is also kept as
  ``settings.json.v<N>.bak`` the first time, before anything overwrites it.
* A file from a newer schema is read leniently and never written (`read_only_reason`).
* Every read-modify-write runs under an inter-process `FileLock`. `update` applies a
  change to what is on disk *now* (so two instances' changes merge); `save` writes a
  whole `Settings` only if the file still has the bytes that were loaded
  (compare-before-replace) and raises `SettingsConflict` otherwise.
* A folder that cannot be written (read-only, no permission) is no crash: loading
  reads without the lock and marks the settings read-only; a save raises
  `SettingsReadOnly` saying which folder and why.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._atomic import (
    FileLock,
    atomic_write,
    digest,
    move_aside,
    read_bytes,
    remove_stale_temp_files,
)
from ._errors import (
    CorruptSettings,
    NewerSettings,
    SettingsConflict,
    SettingsReadOnly,
)
from ._schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    DecodedSettings,
    Migration,
    Settings,
    decode_settings,
    encode_settings,
)

__all__ = ["DEFAULT_LOCK_TIMEOUT", "LoadedSettings", "SettingsStore"]

log = logging.getLogger("viewer.settings")

#: Long enough to wait out another instance's write (milliseconds), short enough that a
#: stuck instance produces a message instead of a frozen window.
DEFAULT_LOCK_TIMEOUT = 5.0


@dataclass(frozen=True)
class LoadedSettings:
    """The outcome of reading the settings: the value plus what the user must be told."""

    settings: Settings
    #: One sentence each: a file moved aside, a backup loaded, a migration, ...
    notices: tuple[str, ...] = ()
    #: Set when saving is refused; the sentence says why.
    read_only_reason: str | None = None
    #: True when nothing was on disk: the first launch ("no server configured").
    first_launch: bool = False


@dataclass
class _Snapshot:
    settings: Settings
    raw: dict[str, Any] | None
    fingerprint: str | None
    notices: list[str] = field(default_factory=list)
    read_only_reason: str | None = None
    first_launch: bool = False


class SettingsStore:
    """The settings file at `path`, with its backup, lock and aside copies next to it."""

    def __init__(
        self,
        path: Path,
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        migrations: Mapping[int, Migration] = MIGRATIONS,
        schema_version: int = SCHEMA_VERSION,
    ) -> None:
        self.path = Path(path)
        self.backup_path = self.path.with_name(self.path.name + ".bak")
        self.lock_timeout = lock_timeout
        self._migrations = migrations
        self._schema_version = schema_version
        self._mutex = threading.Lock()  # guards the fields below within this process
        self._fingerprint: str | None = None
        self._raw: dict[str, Any] | None = None
        self._read_only_reason: str | None = None
        self._loaded = False

    # -- public API -------------------------------------------------------------------

    @property
    def fingerprint(self) -> str | None:
        """Digest of the file as last loaded or saved by this store (None: no file)."""
        return self._fingerprint

    @property
    def read_only_reason(self) -> str | None:
        return self._read_only_reason

    def load(self) -> LoadedSettings:
        """Read the settings; never raises for a bad file (see the module docstring).

        Raises `SettingsLocked` if another instance holds the lock for too long.
        """
        with self._mutex:
            try:
                with self._locked():
                    snap = self._read_locked()
            except SettingsReadOnly as exc:
                # Reading needs no lock (writes are atomic renames); saving will say why not.
                snap = self._read_locked()
                snap.read_only_reason = snap.read_only_reason or exc.message
                snap.notices.append(exc.message)
            self._adopt(snap)
        return LoadedSettings(
            settings=snap.settings,
            notices=tuple(snap.notices),
            read_only_reason=snap.read_only_reason,
            first_launch=snap.first_launch,
        )

    def update(self, change: Callable[[Settings], Settings]) -> Settings:
        """Apply `change` to the settings on disk now and save the result, under the lock.

        This is the merge path: `change` sees another instance's latest save, so two
        instances adding servers both keep theirs. Errors raised by `change` propagate
        and nothing is written.
        """
        with self._mutex, self._locked():
            snap = self._read_locked()
            self._adopt(snap)
            if snap.read_only_reason:
                raise SettingsReadOnly(snap.read_only_reason, path=self.path)
            new = change(snap.settings)
            self._write_locked(new, current=read_bytes(self.path), base_raw=snap.raw)
            return new

    def save(self, settings: Settings) -> None:
        """Write `settings` if the file is unchanged since this store loaded or saved it.

        Raises `SettingsConflict` (another instance saved in between: reload, or use
        `update`), `SettingsReadOnly`, `SettingsLocked`.
        """
        with self._mutex, self._locked():
            if not self._loaded:
                raise SettingsConflict("Load the settings before saving them.", path=self.path)
            if self._read_only_reason:
                raise SettingsReadOnly(self._read_only_reason, path=self.path)
            current = read_bytes(self.path)
            if digest(current) != self._fingerprint:
                raise SettingsConflict(
                    f"The settings in {self.path} were changed by another Zhiva Viewer "
                    "since they were loaded; your change was not saved, to avoid "
                    "overwriting theirs. Reload the settings and make the change again.",
                    path=self.path,
                )
            self._write_locked(settings, current=current, base_raw=self._raw)

    # -- internals --------------------------------------------------------------------

    def _lock(self) -> FileLock:
        return FileLock(self.path, timeout=self.lock_timeout)

    def _unwritable(self, exc: OSError) -> SettingsReadOnly:
        return SettingsReadOnly(
            f"The settings cannot be saved in {self.path.parent} "
            f"({exc.strerror or exc}): check that you may write to that folder, or use "
            "another one with --config-dir.",
            path=self.path,
        )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The file lock; a folder where it cannot be made is `SettingsReadOnly`."""
        lock = self._lock()
        try:
            lock.__enter__()
        except OSError as exc:
            raise self._unwritable(exc) from exc
        try:
            yield
        finally:
            lock.__exit__(None, None, None)

    def _adopt(self, snap: _Snapshot) -> None:
        self._fingerprint = snap.fingerprint
        self._raw = snap.raw
        self._read_only_reason = snap.read_only_reason
        self._loaded = True

    def _decode(self, data: bytes) -> DecodedSettings:
        return decode_settings(data, migrations=self._migrations, current=self._schema_version)

    def _read_locked(self) -> _Snapshot:
        remove_stale_temp_files(self.path)
        remove_stale_temp_files(self.backup_path)
        try:
            data = read_bytes(self.path)
        except OSError as exc:
            return self._recover(None, f"{self.path} cannot be read ({exc.strerror or exc})")
        if data is None:
            if self.backup_path.exists():
                snap = self._from_backup()
                if snap is not None:
                    snap.notices.insert(
                        0, f"{self.path} was missing; the settings were restored from its backup."
                    )
                    return snap
            return _Snapshot(Settings(), None, None, first_launch=True)
        try:
            decoded = self._decode(data)
        except NewerSettings as exc:
            # Not corrupt, just newer: leave it where the newer version will find it.
            return _Snapshot(
                Settings(),
                None,
                digest(data),
                notices=[exc.message],
                read_only_reason=exc.message + " Changes cannot be saved with this version.",
            )
        except CorruptSettings as exc:
            return self._recover(data, f"{self.path} is not usable ({exc.message})")
        snap = _Snapshot(decoded.settings, decoded.raw, digest(data), list(decoded.notes))
        if decoded.newer:
            reason = (
                f"The settings were written by a newer Zhiva Viewer (schema {decoded.version}; "
                f"this version knows {self._schema_version}). They are shown, but changes "
                "cannot be saved with this version, so the newer file is never downgraded."
            )
            snap.notices.append(reason)
            snap.read_only_reason = reason
        elif decoded.version < self._schema_version:
            self._keep_original(data, decoded.version, snap)
        return snap

    def _keep_original(self, data: bytes, version: int, snap: _Snapshot) -> None:
        """Keep the pre-migration file once, before a save replaces it."""
        keep = self.path.with_name(f"{self.path.name}.v{version}.bak")
        if keep.exists():
            return
        try:
            atomic_write(keep, data)
        except OSError as exc:  # the .bak written at save time still keeps it
            log.warning("could not keep the schema %d settings as %s: %s", version, keep, exc)
            return
        snap.notices.append(
            f"The settings were upgraded from schema {version} to {self._schema_version}; "
            f"the original file is kept as {keep}."
        )

    def _from_backup(self) -> _Snapshot | None:
        try:
            data = read_bytes(self.backup_path)
            if data is None:
                return None
            decoded = self._decode(data)
        except (OSError, CorruptSettings, NewerSettings) as exc:
            log.warning("settings backup %s is not usable: %s", self.backup_path, exc)
            return None
        snap = _Snapshot(decoded.settings, decoded.raw, None, list(decoded.notes))
        if decoded.newer:
            snap.read_only_reason = (
                f"The settings backup {self.backup_path} was written by a newer Zhiva Viewer; "
                "changes cannot be saved with this version."
            )
        return snap

    def _recover(self, data: bytes | None, problem: str) -> _Snapshot:
        """Move a bad settings file aside and fall back to the backup or to defaults."""
        notices: list[str] = []
        try:
            moved = move_aside(self.path, "corrupt")
        except OSError as exc:
            # It stays where it is, so it must not be overwritten: saving is refused.
            reason = (
                f"{problem}, and it could not be moved aside ({exc}). Saving is disabled so "
                f"it is not overwritten; move or repair {self.path} and restart."
            )
            backup = self._from_backup()
            settings = backup.settings if backup else Settings()
            return _Snapshot(
                settings,
                backup.raw if backup else None,
                digest(data),
                notices=[reason],
                read_only_reason=reason,
            )
        notices.append(f"{problem}. It was moved to {moved} so nothing is lost.")
        backup = self._from_backup()
        if backup is not None:
            backup.notices[:0] = [
                *notices,
                f"Loaded the previous settings from {self.backup_path}.",
            ]
            return backup
        notices.append("There is no usable backup: starting with no saved servers.")
        return _Snapshot(Settings(), None, None, notices=notices)

    def _write_locked(
        self, settings: Settings, *, current: bytes | None, base_raw: Mapping[str, Any] | None
    ) -> None:
        payload = encode_settings(settings, base_raw)
        if payload == current:
            return
        try:
            if current is not None:
                atomic_write(self.backup_path, current)
            atomic_write(self.path, payload)
        except OSError as exc:
            raise self._unwritable(exc) from exc
        self._fingerprint = digest(payload)
        self._raw = self._decode(payload).raw
