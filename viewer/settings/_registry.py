"""`ServerRegistry`: every server a user can pick, and the operations on them.

This is the one implementation behind both Settings > Servers and ``zhiva-viewer
servers ...``. It merges three kinds of entries:

* ``user`` — saved in the user's settings file; editable;
* ``managed`` — from the organisation's lists (`_org`); read-only, never written into
  the user's file; a copy can be made and edited;
* ``preset`` — shipped presets (the Local Server) not saved yet; offered, not selected.

Merge rules (each one is tested in tests/settings/test_registry.py):

1. **Same id, user and managed**: both are shown; the managed entry is listed under an
   id of its own, derived from its listed id (stable across starts), and a notice says
   so. Secrets are keyed by id, and an organisation list is not trusted with the user's:
   a list (from a URL, or a file any administrator wrote) naming a user's server id with
   another URL must not receive that server's password or session. This happens when an
   administrator hands out a list exported from their own settings; they sign in to the
   managed entry once.
2. **Same name, different ids**: both are shown. New names from add, edit, copy and
   import must be unique among all shown entries (case-insensitively); a clash that an
   organisation list introduces later makes that name ambiguous, and the id must be used.
3. **Presets** are shown only while no user or managed entry has the preset's id.
   Selecting or editing one saves it into the user's settings under that id.
4. **Selection** may name a user or a managed server. If it names nothing shown (the
   organisation dropped the server, or its list is unreachable without a cached copy),
   nothing is selected and a notice says so — but the id stays in the file, so the
   selection comes back with the list.
5. **Import** never changes an existing server: an identical entry is skipped; a
   different entry with a taken id gets a new id; a taken name gets " (2)", " (3)"...
   Managed ids are taken too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from net import ServerConfig, new_server_id, validate_config

from ._errors import (
    AmbiguousServer,
    DuplicateServer,
    InvalidServer,
    ManagedServer,
    SecretStoreError,
    ServerNotFound,
    SettingsConflict,
)
from ._org import ManagedServer as OrganisationServer
from ._org import OrganisationServers, load_organisation_servers
from ._paths import AppPaths
from ._presets import load_presets
from ._schema import CacheSettings, Settings, derive_server_id
from ._secrets import SecretStore, open_secret_store
from ._serverlist import decode_server_list, encode_server_list
from ._store import LoadedSettings, SettingsStore

__all__ = ["EntryKind", "ImportReport", "ServerEntry", "ServerRegistry"]

EntryKind = Literal["user", "managed", "preset"]


@dataclass(frozen=True)
class ServerEntry:
    config: ServerConfig
    kind: EntryKind
    #: "your settings", the organisation source, or "preset".
    source: str

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def read_only(self) -> bool:
        return self.kind == "managed"


@dataclass(frozen=True)
class ImportReport:
    added: tuple[ServerConfig, ...] = ()
    #: Names of entries already present unchanged.
    skipped: tuple[str, ...] = ()
    #: Renames and new ids, one sentence each.
    notes: tuple[str, ...] = ()
    #: Fields `validate_config` objects to (e.g. a CA file missing on this machine):
    #: imported anyway, to be fixed in the form.
    warnings: tuple[str, ...] = ()


@dataclass
class _ImportPlan:
    added: list[ServerConfig] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _key(name: str) -> str:
    return name.strip().casefold()


#: Namespace of the ids given to managed entries whose listed id is a user server's.
_CLASH_ID_NAMESPACE = "organisation-id-clash"


class ServerRegistry:
    """The user's servers, the organisation's and the presets, over one settings store."""

    def __init__(
        self,
        store: SettingsStore,
        secrets: SecretStore,
        *,
        organisation: OrganisationServers | None = None,
        presets: Sequence[ServerConfig] = (),
    ) -> None:
        self.store = store
        self.secrets = secrets
        self.organisation = organisation or OrganisationServers()
        self.presets = tuple(presets)
        self._settings = Settings()
        self._loaded: LoadedSettings | None = None

    @classmethod
    def open(
        cls,
        paths: AppPaths,
        *,
        fetch_organisation: bool = True,
        env: Mapping[str, str] | None = None,
        secret_backend: Literal["auto", "keyring", "file"] | None = None,
    ) -> ServerRegistry:
        """Everything for `paths`, loaded: settings, organisation lists, presets, secrets."""
        registry = cls(
            SettingsStore(paths.settings_file),
            open_secret_store(paths, backend=secret_backend, env=env),
            organisation=load_organisation_servers(paths, env=env, fetch=fetch_organisation),
            presets=load_presets(),
        )
        registry.load()
        return registry

    # -- reading --------------------------------------------------------------------

    def load(self) -> LoadedSettings:
        self._loaded = self.store.load()
        self._settings = self._loaded.settings
        return self._loaded

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def first_launch(self) -> bool:
        return self._loaded is not None and self._loaded.first_launch

    @property
    def notices(self) -> tuple[str, ...]:
        """Everything the user should be told about their settings, one sentence each."""
        out: list[str] = []
        if self._loaded is not None:
            out.extend(self._loaded.notices)
        out.extend(self.organisation.notices)
        listed = self.organisation.by_id()
        for config in self._settings.servers:
            if config.id in listed:
                out.append(
                    f"The organisation's server {listed[config.id].config.name!r} has the "
                    f"same id as your server {config.name!r}; it is listed separately and does "
                    "not use your server's passwords or tokens."
                )
        selected = self._settings.selected_server_id
        if selected is not None and self._visible(selected) is None:
            out.append(
                "The selected server is no longer offered (removed from the organisation's "
                "list, or the list is unavailable): no server is selected."
            )
        return tuple(out)

    def entries(self) -> tuple[ServerEntry, ...]:
        """The merged list: your servers, then managed ones, then unsaved presets."""
        return self._entries_for(self._settings)

    def _managed_for(self, settings: Settings) -> dict[str, OrganisationServer]:
        """The managed entries by the id they are shown under (rule 1)."""
        user_ids = {c.id for c in settings.servers}
        out: dict[str, OrganisationServer] = {}
        for managed in self.organisation.servers:
            if managed.config.id in user_ids:
                own_id = derive_server_id(_CLASH_ID_NAMESPACE, managed.config.id)
                managed = OrganisationServer(
                    msgspec.structs.replace(managed.config, id=own_id), managed.source
                )
            out[managed.config.id] = managed
        return out

    def _entries_for(self, settings: Settings) -> tuple[ServerEntry, ...]:
        # The merge for any `settings` (inside update() it is the latest on disk).
        managed = self._managed_for(settings)
        out = [ServerEntry(c, "user", "your settings") for c in settings.servers]
        out.extend(ServerEntry(m.config, "managed", m.source) for m in managed.values())
        taken = {e.id for e in out}
        out.extend(ServerEntry(p, "preset", "preset") for p in self.presets if p.id not in taken)
        return tuple(out)

    def _visible(self, server_id: str) -> ServerEntry | None:
        return next((e for e in self.entries() if e.id == server_id), None)

    def revision(self, server_id: str) -> tuple[ServerConfig | None, int]:
        """What a connection to a server is made from: its config as shown now and the
        revision of its secrets. A connection made at another revision is stale (an
        edited URL, a new password, a sign-out), whoever made the change."""
        entry = self._visible(server_id)
        return (None if entry is None else entry.config, self.secrets.revision(server_id))

    def selected(self) -> ServerEntry | None:
        """The saved selection, if it is offered. None on first launch: nothing is chosen."""
        selected = self._settings.selected_server_id
        return None if selected is None else self._visible(selected)

    def find(self, name_or_id: str, *, among: Sequence[ServerEntry] | None = None) -> ServerEntry:
        """The entry with this id, else the one with this name (exact, then ignoring case)."""
        entries = self.entries() if among is None else among
        for entry in entries:
            if entry.id == name_or_id:
                return entry
        for matches in (
            [e for e in entries if e.name == name_or_id],
            [e for e in entries if _key(e.name) == _key(name_or_id)],
        ):
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                listed = ", ".join(f"{e.id} ({e.kind})" for e in matches)
                raise AmbiguousServer(
                    f"Several servers are called {name_or_id!r}: {listed}. Use the id instead."
                )
        raise ServerNotFound(f"No server called {name_or_id!r}.")

    def find_editable(self, name_or_id: str) -> ServerEntry:
        """A user entry or a preset; managed ones are refused."""
        user = [ServerEntry(c, "user", "your settings") for c in self._settings.servers]
        try:
            return self.find(name_or_id, among=user)
        except ServerNotFound:
            pass
        entry = self.find(name_or_id)
        if entry.kind == "managed":
            raise ManagedServer(
                f"{entry.name!r} is managed by your organisation ({entry.source}) and cannot "
                "be changed or removed here; make a copy to edit it."
            )
        return entry

    # -- validation -------------------------------------------------------------------

    def _check(self, config: ServerConfig, settings: Settings, *, check_name: bool = True) -> None:
        errors = dict(validate_config(config))
        if check_name and "name" not in errors:
            for entry in self._entries_for(settings):
                if entry.id != config.id and _key(entry.name) == _key(config.name):
                    errors["name"] = (
                        f"A server called {entry.name!r} already exists ({entry.kind})."
                    )
                    break
        if errors:
            fields = "; ".join(f"{k}: {v}" for k, v in errors.items())
            raise InvalidServer(f"{config.name or 'The server'} is not valid: {fields}", errors)

    # -- changing ---------------------------------------------------------------------

    def _update(self, change: Callable[[Settings], Settings]) -> Settings:
        self._settings = self.store.update(change)
        return self._settings

    def _store_secrets(self, server_id: str, password: str | None, token: str | None) -> None:
        if password is not None:
            self.secrets.set(server_id, "password", password)
        if token is not None:
            self.secrets.set(server_id, "token", token)

    def add(
        self, config: ServerConfig, *, password: str | None = None, token: str | None = None
    ) -> ServerConfig:
        """Save a new server (validated as the form does) and its secrets."""

        def change(settings: Settings) -> Settings:
            managed = set(self.organisation.by_id()) | set(self._managed_for(settings))
            if any(c.id == config.id for c in settings.servers) or config.id in managed:
                raise DuplicateServer(f"A server with the id {config.id} already exists.")
            self._check(config, settings)
            return msgspec.structs.replace(settings, servers=(*settings.servers, config))

        self._update(change)
        self._store_secrets(config.id, password, token)
        return config

    def copy(self, name_or_id: str, new_name: str | None = None) -> ServerConfig:
        """ "Duplicate to edit": save a copy of any entry (managed ones too) with a new id.

        The default name is "<name> (copy)", numbered when that is taken. Secrets are
        not copied: they belong to the original server.
        """
        source = self.find(name_or_id).config
        if new_name is None:
            names = {_key(e.name) for e in self.entries()}
            new_name, n = f"{source.name} (copy)", 2
            while _key(new_name) in names:
                new_name, n = f"{source.name} (copy {n})", n + 1
        return self.add(msgspec.structs.replace(source, id=new_server_id(), name=new_name))

    def edit(
        self,
        name_or_id: str,
        changes: Mapping[str, Any],
        *,
        expected: ServerConfig | None = None,
        password: str | None = None,
        token: str | None = None,
    ) -> ServerConfig:
        """Change fields of a user server (a preset is saved first).

        With `expected` (the server as the form loaded it), the edit is refused with
        `SettingsConflict` if another instance changed that server in the meantime;
        changes to other servers merge.
        """
        if "id" in changes:
            raise ValueError("a server's id cannot be changed")
        entry = self.find_editable(name_or_id)
        result: list[ServerConfig] = []

        def change(settings: Settings) -> Settings:
            current = next((c for c in settings.servers if c.id == entry.id), None)
            if current is None:
                if entry.kind != "preset":
                    raise ServerNotFound(
                        f"{entry.name!r} was removed by another Zhiva Viewer in the meantime."
                    )
                current = entry.config
            if expected is not None and current != expected:
                raise SettingsConflict(
                    f"{entry.name!r} was changed by another Zhiva Viewer since you opened it; "
                    "your change was not saved. Reload it and make the change again."
                )
            updated = msgspec.structs.replace(current, **changes)
            # A clash an organisation list introduced later must not block other edits:
            # only a new name has to be unique.
            self._check(updated, settings, check_name=_key(updated.name) != _key(current.name))
            if any(c.id == entry.id for c in settings.servers):
                servers = tuple(updated if c.id == entry.id else c for c in settings.servers)
            else:
                servers = (*settings.servers, updated)
            result.append(updated)
            return msgspec.structs.replace(settings, servers=servers)

        self._update(change)
        self._store_secrets(entry.id, password, token)
        return result[-1]

    def remove(self, name_or_id: str) -> ServerConfig:
        """Remove a user server and delete its secrets; clears the selection if it was it."""
        entry = self.find_editable(name_or_id)
        if entry.kind == "preset":
            raise ServerNotFound(f"{entry.name!r} is a preset that is not saved in your settings.")

        def change(settings: Settings) -> Settings:
            servers = tuple(c for c in settings.servers if c.id != entry.id)
            if len(servers) == len(settings.servers):
                raise ServerNotFound(f"{entry.name!r} was already removed.")
            selected = settings.selected_server_id
            # replace(), not Settings(...): fields later versions add must survive.
            return msgspec.structs.replace(
                settings,
                servers=servers,
                selected_server_id=None if selected == entry.id else selected,
            )

        self._update(change)
        try:
            self.secrets.delete_server(entry.id)
        except SecretStoreError as exc:
            raise SecretStoreError(
                f"{entry.name!r} was removed, but its passwords and tokens could not be "
                f"deleted: {exc}"
            ) from exc
        return entry.config

    def select(self, name_or_id: str) -> ServerEntry:
        """Save the selection; a preset is saved into the user's servers first."""
        entry = self.find(name_or_id)

        def change(settings: Settings) -> Settings:
            servers = settings.servers
            if entry.kind == "preset" and not any(c.id == entry.id for c in servers):
                self._check(entry.config, settings)
                servers = (*servers, entry.config)
            elif entry.kind == "user" and not any(c.id == entry.id for c in servers):
                raise ServerNotFound(f"{entry.name!r} was removed by another Zhiva Viewer.")
            return msgspec.structs.replace(settings, servers=servers, selected_server_id=entry.id)

        self._update(change)
        return ServerEntry(
            entry.config, "user" if entry.kind == "preset" else entry.kind, entry.source
        )

    def clear_selection(self) -> None:
        self._update(lambda s: msgspec.structs.replace(s, selected_server_id=None))

    # -- Settings > Cache -------------------------------------------------------------

    def set_cache_settings(self, cache: CacheSettings) -> CacheSettings:
        """Save the cache budgets (merged with what another instance saved meanwhile)."""
        return self._update(lambda s: msgspec.structs.replace(s, cache=cache)).cache

    # -- import / export --------------------------------------------------------------

    def export_servers(self, *, include_managed: bool = False) -> bytes:
        """Your servers (and optionally the managed ones) as a server list. No secrets."""
        servers = list(self._settings.servers)
        if include_managed:
            servers.extend(m.config for m in self._managed_for(self._settings).values())
        return encode_server_list(servers)

    def import_servers(self, data: bytes, *, source: str) -> ImportReport:
        """Add the servers of a server list (rules in the module docstring); all or nothing."""
        listed = decode_server_list(data, source=source, id_namespace="import")
        plan = _ImportPlan()

        def change(settings: Settings) -> Settings:
            plan.notes.extend(listed.notes)
            existing = {c.id: c for c in settings.servers}
            taken_ids = set(existing) | set(self.organisation.by_id())
            taken_ids |= set(self._managed_for(settings))
            taken_names = {_key(e.name) for e in self._entries_for(settings)}
            # The next " (n)" to try per name: a list repeating one name 20k times must
            # not try " (2)", " (3)", ... from the start for each repeat.
            next_suffix: dict[str, int] = {}
            added: list[ServerConfig] = []
            for config in listed.servers:
                if existing.get(config.id) == config:
                    plan.skipped.append(config.name)
                    continue
                if config.id in taken_ids:
                    config = msgspec.structs.replace(config, id=new_server_id())
                    plan.notes.append(f"{config.name!r}: its id was taken, so it got a new one.")
                name = config.name
                if _key(name) in taken_names:
                    base = _key(config.name)
                    n = next_suffix.get(base, 2)
                    while _key(name := f"{config.name} ({n})") in taken_names:
                        n += 1
                    next_suffix[base] = n + 1
                if name != config.name:
                    plan.notes.append(f"{config.name!r} already exists: imported as {name!r}.")
                    config = msgspec.structs.replace(config, name=name)
                taken_ids.add(config.id)
                taken_names.add(_key(config.name))
                plan.warnings.extend(
                    f"{config.name!r}: {field_name}: {message}"
                    for field_name, message in validate_config(config).items()
                )
                added.append(config)
            plan.added.extend(added)
            return msgspec.structs.replace(settings, servers=(*settings.servers, *added))

        self._update(change)
        return ImportReport(
            tuple(plan.added), tuple(plan.skipped), tuple(plan.notes), tuple(plan.warnings)
        )
