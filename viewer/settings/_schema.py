"""The settings file's schema: the `Settings` value, its JSON form, and migrations.

The file is a JSON object with ``schema_version``, ``servers`` (a list of
`net.ServerConfig` objects), ``selected_server_id`` (null until the user saves a
selection), ``cache`` (Settings > Cache: the memory and disk budgets in MiB, since
version 2) and whatever sections later versions add. Decoding goes bytes -> raw JSON ->
migrations (one small function per version step, on plain dicts) -> `Settings`;
anything that fails on the way is a `CorruptSettings` with a message that says where.

Forward compatibility: keys this version does not know, at the top level or inside a
server, are kept in the raw document and written back unchanged (`encode_settings`
overlays the known fields on the raw document that was read). A file whose
``schema_version`` is newer than `SCHEMA_VERSION` is decoded leniently for reading, and
the store refuses to write over it.

Adding a section (e.g. ``ui``) later: add a field with a default to `Settings`, bump
`SCHEMA_VERSION`, and register a migration from the previous version (a no-op that
returns the dict is fine when the default is right) — and a test for it.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from net import ServerConfig

from ._errors import CorruptSettings, NewerSettings

__all__ = [
    "DEFAULT_DISK_MIB",
    "DEFAULT_MEMORY_MIB",
    "MAX_DISK_MIB",
    "MAX_MEMORY_MIB",
    "MIGRATIONS",
    "MIN_MEMORY_MIB",
    "SCHEMA_VERSION",
    "CacheSettings",
    "DecodedSettings",
    "Migration",
    "Settings",
    "decode_settings",
    "derive_server_id",
    "encode_settings",
    "normalise_server_ids",
    "server_fields",
]

SCHEMA_VERSION = 2

_MiB = 1024**2
#: Settings > Cache defaults: 1 GiB of decoded images in memory (a 300-slice 512x512
#: CT is 158 MB), 4 GiB of retrieved instances on disk (about 25 such series).
DEFAULT_MEMORY_MIB = 1024
DEFAULT_DISK_MIB = 4096
#: Below this one large series cannot be scrolled; above the maxima it is a typo.
MIN_MEMORY_MIB = 64
MAX_MEMORY_MIB = 1024 * 1024
MAX_DISK_MIB = 16 * 1024 * 1024


class CacheSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Settings > Cache: how much the app keeps, in MiB (a disk budget of 0 is off).

    A hand-edited value out of range is clamped where it is used (`memory_budget`,
    `disk_budget`), never a reason to set the whole settings file aside.
    """

    memory_mib: int = DEFAULT_MEMORY_MIB
    disk_mib: int = DEFAULT_DISK_MIB

    @property
    def memory_budget(self) -> int:
        """Bytes of decoded images the app's frame cache may hold."""
        return max(MIN_MEMORY_MIB, min(self.memory_mib, MAX_MEMORY_MIB)) * _MiB

    @property
    def disk_budget(self) -> int:
        """Bytes of retrieved instances the disk cache may hold (0: nothing is kept)."""
        return max(0, min(self.disk_mib, MAX_DISK_MIB)) * _MiB


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """What the user saved. Organisation servers and presets are never part of it."""

    servers: tuple[ServerConfig, ...] = ()
    #: The server the app opens with. None means "no server configured" (first launch),
    #: even when presets or organisation servers are offered.
    selected_server_id: str | None = None
    cache: CacheSettings = CacheSettings()


Migration = Callable[[Any], dict[str, Any]]


def _v0_to_v1(raw: Any) -> dict[str, Any]:
    """Version 0: a hand-written file with no ``schema_version``.

    Administrators write these by hand, as ``{"servers": [...]}`` or as a bare list of
    servers; both become a version 1 document with no selection unless one was given.
    """
    if isinstance(raw, list):
        return {"servers": raw}
    if not isinstance(raw, dict):
        raise TypeError(f"expected a JSON object or list, got {type(raw).__name__}")
    return dict(raw)


def _v1_to_v2(raw: Any) -> dict[str, Any]:
    """Version 2 adds the ``cache`` section; its defaults are the budgets version 1 used."""
    return dict(raw)


#: ``MIGRATIONS[n]`` turns a version-n document into a version n+1 document.
MIGRATIONS: Mapping[int, Migration] = {0: _v0_to_v1, 1: _v1_to_v2}

#: Namespace of ids derived for servers that were written without one.
_ID_NAMESPACE = uuid.UUID("6f1d8c52-3c1e-4f4a-9a57-7d7e1b0f2a10")


def server_fields() -> frozenset[str]:
    return frozenset(f.encode_name for f in msgspec.structs.fields(ServerConfig))


def derive_server_id(namespace: str, name: str) -> str:
    """A stable id for a server written without one (hand-written and organisation lists).

    A random id would change at every start, orphaning the server's secrets and the
    selection; derived from the name, it survives restarts and URL edits.
    """
    return uuid.uuid5(_ID_NAMESPACE, f"{namespace}\0{name}").hex


def normalise_server_ids(entries: list[Any], namespace: str) -> list[str]:
    """Give every server dict in `entries` a unique, stable ``id`` in place.

    Missing or empty ids are derived from the name. A repeated id (a copy-pasted entry)
    is re-derived for the later entry, so both servers survive with their own secrets.
    Returns one note per change made.
    """
    notes: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue  # conversion reports it with its position
        current = entry.get("id")
        name = entry.get("name") if isinstance(entry.get("name"), str) else ""
        if not isinstance(current, str) or not current.strip():
            entry["id"] = derive_server_id(namespace, str(name))
        if entry["id"] in seen:
            old = entry["id"]
            entry["id"] = derive_server_id(namespace, f"{old}#{index}")
            notes.append(f"server {name!r} repeated the id {old}; it was given {entry['id']}")
        seen.add(entry["id"])
    return notes


@dataclass(frozen=True)
class DecodedSettings:
    settings: Settings
    #: The migrated JSON document, unknown keys included: the base `encode_settings`
    #: writes over, so nothing this version does not understand is dropped.
    raw: dict[str, Any]
    #: The ``schema_version`` found in the file (0 when it had none).
    version: int
    notes: tuple[str, ...] = ()

    @property
    def migrated(self) -> bool:
        return self.version < SCHEMA_VERSION

    @property
    def newer(self) -> bool:
        return self.version > SCHEMA_VERSION


def _version_of(raw: Any) -> int:
    if isinstance(raw, list):
        return 0
    if not isinstance(raw, dict):
        raise CorruptSettings(
            f"The settings are a JSON {type(raw).__name__}, not an object with servers."
        )
    version = raw.get("schema_version", 0)
    # bool is an int in Python; `true` is not a version.
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise CorruptSettings(f"schema_version must be a whole number, not {version!r}.")
    return version


def _convert(raw: dict[str, Any], *, lenient: bool) -> tuple[Settings, list[str]]:
    notes: list[str] = []
    servers = raw.get("servers", [])
    if not isinstance(servers, list):
        raise CorruptSettings(f"'servers' must be a list, not a JSON {type(servers).__name__}.")
    # Copies: normalising ids must not alter a dict the caller still holds.
    servers = [dict(s) if isinstance(s, dict) else s for s in servers]
    raw["servers"] = servers
    notes.extend(normalise_server_ids(servers, "settings"))
    selected = raw.get("selected_server_id")
    if selected is not None and not isinstance(selected, str):
        if not lenient:
            raise CorruptSettings(f"selected_server_id must be a string, not {selected!r}.")
        selected = None
    converted: list[ServerConfig] = []
    for index, entry in enumerate(servers):
        try:
            converted.append(msgspec.convert(entry, ServerConfig))
        except msgspec.ValidationError as exc:
            if not lenient:
                raise CorruptSettings(f"Server #{index + 1} is not valid: {exc}") from exc
            notes.append(f"server #{index + 1} was skipped: {exc}")
    cache = CacheSettings()
    if raw.get("cache") is not None:
        try:
            cache = msgspec.convert(raw["cache"], CacheSettings)
        except msgspec.ValidationError as exc:
            # The budgets are not worth losing the servers over: defaults, and a note.
            notes.append(f"the cache settings were not valid ({exc}); the defaults are used")
    settings = Settings(servers=tuple(converted), selected_server_id=selected, cache=cache)
    return settings, notes


def decode_settings(
    data: bytes,
    *,
    migrations: Mapping[int, Migration] = MIGRATIONS,
    current: int = SCHEMA_VERSION,
) -> DecodedSettings:
    """Decode a settings file's bytes.

    Raises only `CorruptSettings` (not settings, or a migration failed) and
    `NewerSettings` (a newer version's file that cannot even be read leniently).
    """
    try:
        raw: Any = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise CorruptSettings(f"The settings file is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # msgspec's own limit on nesting depth
        raise CorruptSettings("The settings file is nested too deeply to be settings.") from exc
    version = _version_of(raw)
    if version > current:
        try:
            if not isinstance(raw, dict):
                raise CorruptSettings("not a JSON object")
            settings, notes = _convert(raw, lenient=True)
        except CorruptSettings as exc:
            raise NewerSettings(
                f"The settings were written by a newer Zhiva Viewer (schema {version}; this "
                f"version knows {current}) and cannot be read here: {exc}",
                version=version,
            ) from exc
        return DecodedSettings(settings, raw, version, tuple(notes))
    document: Any = raw
    for step in range(version, current):
        migrate = migrations.get(step)
        if migrate is None:
            raise CorruptSettings(f"No migration from settings schema {step} to {step + 1}.")
        try:
            # Migrations get a deep copy: a half-applied migration must not leave a
            # mangled document behind for the error path to report on.
            document = migrate(copy.deepcopy(document))
        # A migration runs on untrusted JSON: any failure inside it means "this file
        # cannot be upgraded", which the caller handles by keeping the file aside.
        except Exception as exc:
            raise CorruptSettings(
                f"Upgrading the settings from schema {step} to {step + 1} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(document, dict):
            raise CorruptSettings(f"The migration to schema {step + 1} did not give an object.")
        document["schema_version"] = step + 1
    settings, notes = _convert(document, lenient=False)
    return DecodedSettings(settings, document, version, tuple(notes))


def _overlay_server(known: dict[str, Any], base: Mapping[str, Any] | None) -> dict[str, Any]:
    if not base:
        return known
    fields = server_fields()
    extras = {k: v for k, v in base.items() if k not in fields}
    return {**extras, **known}


def encode_settings(settings: Settings, base_raw: Mapping[str, Any] | None = None) -> bytes:
    """The file's bytes: `settings` over `base_raw`, so unknown keys survive a save.

    Unknown keys of a server are carried over by the server's id (a removed server's
    extras go with it).
    """
    base = dict(base_raw or {})
    base_servers: dict[str, Mapping[str, Any]] = {}
    for entry in base.get("servers") or []:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            base_servers.setdefault(entry["id"], entry)
    known = msgspec.to_builtins(settings)
    known["servers"] = [_overlay_server(s, base_servers.get(s["id"])) for s in known["servers"]]
    document: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    document.update({k: v for k, v in base.items() if k not in known and k != "schema_version"})
    document.update(known)
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"
