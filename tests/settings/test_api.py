"""The public surface of `viewer.settings`, and the layering rule: no GUI imports here."""

from __future__ import annotations

import subprocess

import viewer.settings

from .conftest import PYTHON, child_env

EXPECTED = {
    "APP_NAME", "DEFAULT_DISK_MIB", "DEFAULT_MEMORY_MIB", "MAX_DISK_MIB", "MAX_MEMORY_MIB",
    "MIN_MEMORY_MIB", "CacheSettings", "ENV_CONFIG_DIR", "ENV_SECRET_STORE", "ENV_SERVERS_CA_FILE", "ENV_SERVERS_FILE",
    "ENV_SERVERS_URL", "ENV_TEST_PAUSE_AT", "LOCAL_SERVER_PRESET_ID", "MIGRATIONS", "REDACTED",
    "SCHEMA_VERSION", "SECRET_KINDS", "SERVER_LIST_FORMAT", "SERVER_LIST_VERSION",
    "AmbiguousServer", "AppPaths", "CorruptSettings", "DecodedSettings", "DuplicateServer",
    "EntryKind", "FileSecretStore", "ImportReport", "InvalidServer", "KeyringSecretStore",
    "LoadedSettings", "ManagedServer", "NewerSettings", "OrganisationServer",
    "OrganisationServers", "RedactingFilter", "SecretKind", "SecretStore", "SecretStoreError",
    "ServerEntry", "ServerList", "ServerListError", "ServerNotFound", "ServerRegistry",
    "Settings", "SettingsConflict", "SettingsError", "SettingsLocked", "SettingsReadOnly",
    "SettingsStore", "atomic_write", "decode_server_list", "decode_settings",
    "encode_server_list", "encode_settings", "ensure_private_dir", "fetch_server_list",
    "find_assets_dir", "forget_secrets", "hide_patient_details", "load_organisation_servers", "load_presets",
    "open_secret_store", "redact", "register_secret", "resolve_paths", "setup_logging",
    "shutdown_logging", "system_config_dirs",
}  # fmt: skip


def test_public_surface_changes_only_on_purpose() -> None:
    assert set(viewer.settings.__all__) == EXPECTED
    for name in EXPECTED:
        assert hasattr(viewer.settings, name), name


def test_every_exported_error_is_a_settings_error() -> None:
    errors = [
        obj
        for obj in (getattr(viewer.settings, n) for n in EXPECTED)
        if isinstance(obj, type) and issubclass(obj, Exception)
    ]
    assert len(errors) == 13
    assert all(issubclass(e, viewer.settings.SettingsError) for e in errors)


def test_settings_and_cli_never_import_dearpygui_or_keyring_eagerly() -> None:
    code = (
        "import sys, viewer.cli, viewer.settings;"
        "bad = [m for m in ('dearpygui', 'keyring') if m in sys.modules];"
        "assert not bad, bad"
    )
    run = subprocess.run(
        [PYTHON, "-c", code], capture_output=True, text=True, env=child_env(), check=False
    )
    assert run.returncode == 0, run.stderr
