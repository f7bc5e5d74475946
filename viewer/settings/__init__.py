"""Settings that never lose a server: storage, migrations, organisation lists, secrets, logs.

Plain Python shared by the GUI and the command line (no dearpygui here). The usual
entry point is `ServerRegistry.open(resolve_paths(config_dir))`; `setup_logging` starts
the redacted rotating log. The public surface is `__all__`; a test pins it.
"""

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
    MIGRATIONS,
    SCHEMA_VERSION,
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

__all__ = [
    "APP_NAME",
    "ENV_CONFIG_DIR",
    "ENV_SECRET_STORE",
    "ENV_SERVERS_CA_FILE",
    "ENV_SERVERS_FILE",
    "ENV_SERVERS_URL",
    "ENV_TEST_PAUSE_AT",
    "LOCAL_SERVER_PRESET_ID",
    "MIGRATIONS",
    "REDACTED",
    "SCHEMA_VERSION",
    "SECRET_KINDS",
    "SERVER_LIST_FORMAT",
    "SERVER_LIST_VERSION",
    "AmbiguousServer",
    "AppPaths",
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
