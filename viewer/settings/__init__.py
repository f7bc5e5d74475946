"""Settings that never lose a server: storage, migrations, organisation lists, secrets, logs.

Plain Python shared by the GUI and the command line (no dearpygui here). The usual
entry point is `ServerRegistry.open(resolve_paths(config_dir))`; `setup_logging` starts
the redacted rotating log. The public surface is `__all__`; a test pins it.
Names are imported on first use (PEP 562): the window's first frame needs only the
paths and the log, not the registry and what it pulls in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._atomic import ENV_TEST_PAUSE_AT, atomic_write, ensure_private_dir
    from ._errors import (
        AmbiguousServer,
        CorruptSettings,
        DuplicateServer,
        InvalidServer,
        ManagedServer,
        NewerSettings,
        SecretStoreError,
        ServerListError,
        ServerNotFound,
        SettingsConflict,
        SettingsError,
        SettingsLocked,
        SettingsReadOnly,
    )
    from ._logging import (
        REDACTED,
        RedactingFilter,
        forget_secrets,
        hide_patient_details,
        redact,
        register_secret,
        setup_logging,
        shutdown_logging,
    )
    from ._org import (
        ENV_SERVERS_CA_FILE,
        ENV_SERVERS_FILE,
        ENV_SERVERS_URL,
        OrganisationServers,
        fetch_server_list,
        load_organisation_servers,
    )
    from ._org import ManagedServer as OrganisationServer
    from ._paths import (
        APP_NAME,
        ENV_CONFIG_DIR,
        AppPaths,
        find_assets_dir,
        resolve_paths,
        system_config_dirs,
    )
    from ._presets import LOCAL_SERVER_PRESET_ID, load_presets
    from ._registry import EntryKind, ImportReport, ServerEntry, ServerRegistry
    from ._schema import (
        DEFAULT_DISK_MIB,
        DEFAULT_MEMORY_MIB,
        MAX_DISK_MIB,
        MAX_MEMORY_MIB,
        MIGRATIONS,
        MIN_MEMORY_MIB,
        SCHEMA_VERSION,
        CacheSettings,
        DecodedSettings,
        Settings,
        decode_settings,
        encode_settings,
    )
    from ._secrets import (
        ENV_SECRET_STORE,
        SECRET_KINDS,
        FileSecretStore,
        KeyringSecretStore,
        SecretKind,
        SecretStore,
        open_secret_store,
    )
    from ._serverlist import (
        SERVER_LIST_FORMAT,
        SERVER_LIST_VERSION,
        ServerList,
        decode_server_list,
        encode_server_list,
    )
    from ._store import LoadedSettings, SettingsStore

_WHERE: dict[str, tuple[str, str]] = {
    "APP_NAME": ("._paths", "APP_NAME"),
    "AmbiguousServer": ("._errors", "AmbiguousServer"),
    "AppPaths": ("._paths", "AppPaths"),
    "CacheSettings": ("._schema", "CacheSettings"),
    "DEFAULT_DISK_MIB": ("._schema", "DEFAULT_DISK_MIB"),
    "DEFAULT_MEMORY_MIB": ("._schema", "DEFAULT_MEMORY_MIB"),
    "MAX_DISK_MIB": ("._schema", "MAX_DISK_MIB"),
    "MAX_MEMORY_MIB": ("._schema", "MAX_MEMORY_MIB"),
    "MIN_MEMORY_MIB": ("._schema", "MIN_MEMORY_MIB"),
    "CorruptSettings": ("._errors", "CorruptSettings"),
    "DecodedSettings": ("._schema", "DecodedSettings"),
    "DuplicateServer": ("._errors", "DuplicateServer"),
    "ENV_CONFIG_DIR": ("._paths", "ENV_CONFIG_DIR"),
    "ENV_SECRET_STORE": ("._secrets", "ENV_SECRET_STORE"),
    "ENV_SERVERS_CA_FILE": ("._org", "ENV_SERVERS_CA_FILE"),
    "ENV_SERVERS_FILE": ("._org", "ENV_SERVERS_FILE"),
    "ENV_SERVERS_URL": ("._org", "ENV_SERVERS_URL"),
    "ENV_TEST_PAUSE_AT": ("._atomic", "ENV_TEST_PAUSE_AT"),
    "EntryKind": ("._registry", "EntryKind"),
    "FileSecretStore": ("._secrets", "FileSecretStore"),
    "ImportReport": ("._registry", "ImportReport"),
    "InvalidServer": ("._errors", "InvalidServer"),
    "KeyringSecretStore": ("._secrets", "KeyringSecretStore"),
    "LOCAL_SERVER_PRESET_ID": ("._presets", "LOCAL_SERVER_PRESET_ID"),
    "LoadedSettings": ("._store", "LoadedSettings"),
    "MIGRATIONS": ("._schema", "MIGRATIONS"),
    "ManagedServer": ("._errors", "ManagedServer"),
    "NewerSettings": ("._errors", "NewerSettings"),
    "OrganisationServer": ("._org", "ManagedServer"),
    "OrganisationServers": ("._org", "OrganisationServers"),
    "REDACTED": ("._logging", "REDACTED"),
    "RedactingFilter": ("._logging", "RedactingFilter"),
    "SCHEMA_VERSION": ("._schema", "SCHEMA_VERSION"),
    "SECRET_KINDS": ("._secrets", "SECRET_KINDS"),
    "SERVER_LIST_FORMAT": ("._serverlist", "SERVER_LIST_FORMAT"),
    "SERVER_LIST_VERSION": ("._serverlist", "SERVER_LIST_VERSION"),
    "SecretKind": ("._secrets", "SecretKind"),
    "SecretStore": ("._secrets", "SecretStore"),
    "SecretStoreError": ("._errors", "SecretStoreError"),
    "ServerEntry": ("._registry", "ServerEntry"),
    "ServerList": ("._serverlist", "ServerList"),
    "ServerListError": ("._errors", "ServerListError"),
    "ServerNotFound": ("._errors", "ServerNotFound"),
    "ServerRegistry": ("._registry", "ServerRegistry"),
    "Settings": ("._schema", "Settings"),
    "SettingsConflict": ("._errors", "SettingsConflict"),
    "SettingsError": ("._errors", "SettingsError"),
    "SettingsLocked": ("._errors", "SettingsLocked"),
    "SettingsReadOnly": ("._errors", "SettingsReadOnly"),
    "SettingsStore": ("._store", "SettingsStore"),
    "atomic_write": ("._atomic", "atomic_write"),
    "decode_server_list": ("._serverlist", "decode_server_list"),
    "decode_settings": ("._schema", "decode_settings"),
    "encode_server_list": ("._serverlist", "encode_server_list"),
    "encode_settings": ("._schema", "encode_settings"),
    "ensure_private_dir": ("._atomic", "ensure_private_dir"),
    "fetch_server_list": ("._org", "fetch_server_list"),
    "find_assets_dir": ("._paths", "find_assets_dir"),
    "forget_secrets": ("._logging", "forget_secrets"),
    "hide_patient_details": ("._logging", "hide_patient_details"),
    "load_organisation_servers": ("._org", "load_organisation_servers"),
    "load_presets": ("._presets", "load_presets"),
    "open_secret_store": ("._secrets", "open_secret_store"),
    "redact": ("._logging", "redact"),
    "register_secret": ("._logging", "register_secret"),
    "resolve_paths": ("._paths", "resolve_paths"),
    "setup_logging": ("._logging", "setup_logging"),
    "shutdown_logging": ("._logging", "shutdown_logging"),
    "system_config_dirs": ("._paths", "system_config_dirs"),
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'viewer.settings' has no attribute {name!r}")
    value = getattr(importlib.import_module(where[0], __name__), where[1])
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "APP_NAME",
    "DEFAULT_DISK_MIB",
    "DEFAULT_MEMORY_MIB",
    "ENV_CONFIG_DIR",
    "ENV_SECRET_STORE",
    "ENV_SERVERS_CA_FILE",
    "ENV_SERVERS_FILE",
    "ENV_SERVERS_URL",
    "ENV_TEST_PAUSE_AT",
    "LOCAL_SERVER_PRESET_ID",
    "MAX_DISK_MIB",
    "MAX_MEMORY_MIB",
    "MIGRATIONS",
    "MIN_MEMORY_MIB",
    "REDACTED",
    "SCHEMA_VERSION",
    "SECRET_KINDS",
    "SERVER_LIST_FORMAT",
    "SERVER_LIST_VERSION",
    "AmbiguousServer",
    "AppPaths",
    "CacheSettings",
    "CorruptSettings",
    "DecodedSettings",
    "DuplicateServer",
    "EntryKind",
    "FileSecretStore",
    "ImportReport",
    "InvalidServer",
    "KeyringSecretStore",
    "LoadedSettings",
    "ManagedServer",
    "NewerSettings",
    "OrganisationServer",
    "OrganisationServers",
    "RedactingFilter",
    "SecretKind",
    "SecretStore",
    "SecretStoreError",
    "ServerEntry",
    "ServerList",
    "ServerListError",
    "ServerNotFound",
    "ServerRegistry",
    "Settings",
    "SettingsConflict",
    "SettingsError",
    "SettingsLocked",
    "SettingsReadOnly",
    "SettingsStore",
    "atomic_write",
    "decode_server_list",
    "decode_settings",
    "encode_server_list",
    "encode_settings",
    "ensure_private_dir",
    "fetch_server_list",
    "find_assets_dir",
    "forget_secrets",
    "hide_patient_details",
    "load_organisation_servers",
    "load_presets",
    "open_secret_store",
    "redact",
    "register_secret",
    "resolve_paths",
    "setup_logging",
    "shutdown_logging",
    "system_config_dirs",
]
