"""The settings layer's one exception tree.

::

    SettingsError                 anything the user must be told about settings
     +-- CorruptSettings          a file that cannot be read as settings (bad JSON, bad types,
     |                            a failed migration); the loader moves it aside
     +-- NewerSettings            written by a newer Zhiva Viewer: read, never overwritten
     +-- SettingsReadOnly         saving is refused (newer file, a bad file that could not be
     |                            moved aside, ...)
     +-- SettingsConflict         another instance changed the file since it was loaded
     +-- SettingsLocked           another instance is writing right now
     +-- ServerListError          an import / organisation file is not a server list
     +-- ServerNotFound           no server by that name or id
     +-- AmbiguousServer          several servers answer to that name
     +-- ManagedServer            the server belongs to the organisation: read-only
     +-- InvalidServer            `net.validate_config` rejected fields (all of them listed)
     +-- DuplicateServer          the name or id is already taken
     +-- SecretStoreError         the keyring or the secrets file failed

Every message names the file or server and says what to do; callers (the CLI, the GUI)
print ``str(exc)`` and never need to catch `OSError` or msgspec errors themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "AmbiguousServer",
    "CorruptSettings",
    "DuplicateServer",
    "InvalidServer",
    "ManagedServer",
    "NewerSettings",
    "SecretStoreError",
    "ServerListError",
    "ServerNotFound",
    "SettingsConflict",
    "SettingsError",
    "SettingsLocked",
    "SettingsReadOnly",
]


class SettingsError(Exception):
    """A settings problem with a message a user can act on."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: The file concerned, when there is one.
        self.path = path


class CorruptSettings(SettingsError):
    """The bytes are not settings this version understands (never raised for I/O)."""


class NewerSettings(SettingsError):
    """The file's ``schema_version`` is newer than this version knows."""

    def __init__(self, message: str, *, path: Path | None = None, version: int = 0) -> None:
        super().__init__(message, path=path)
        self.version = version


class SettingsReadOnly(SettingsError):
    """Saving is refused; the reason is the message."""


class SettingsConflict(SettingsError):
    """The file changed on disk since it was loaded: saving would clobber it."""


class SettingsLocked(SettingsError):
    """Another process held the settings lock for longer than we were willing to wait."""


class ServerListError(SettingsError):
    """A server-list file (import, organisation, preset) is not usable as a whole."""


class ServerNotFound(SettingsError):
    pass


class AmbiguousServer(SettingsError):
    pass


class ManagedServer(SettingsError):
    """Organisation servers are read-only; a copy can be edited."""


class DuplicateServer(SettingsError):
    pass


class InvalidServer(SettingsError):
    """Field-by-field validation failed; `errors` maps each field to its message."""

    def __init__(self, message: str, errors: Mapping[str, str]) -> None:
        super().__init__(message)
        self.errors = dict(errors)


class SecretStoreError(SettingsError):
    pass
