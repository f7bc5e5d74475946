"""Fixtures for the settings tests: an isolated config dir, file secrets, no real keyring.

Every test here runs with ``ZHIVA_CONFIG_DIR`` in its own temp dir,
``ZHIVA_SECRET_STORE=file`` (the user's real keyring is never touched), an empty
``XDG_CONFIG_DIRS`` (no system-wide organisation file of this machine leaks in) and no
organisation variables, so tests and the subprocesses they start see only what they set.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from net import ServerConfig
from viewer.settings import (
    AppPaths,
    FileSecretStore,
    OrganisationServer,
    OrganisationServers,
    ServerRegistry,
    SettingsStore,
    forget_secrets,
    load_presets,
    resolve_paths,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    config_dir = tmp_path / "config"
    monkeypatch.setenv("ZHIVA_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("ZHIVA_SECRET_STORE", "file")
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg"))
    for name in ("ZHIVA_SERVERS_FILE", "ZHIVA_SERVERS_URL", "ZHIVA_SERVERS_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ZHIVA_TEST_PAUSE_AT", raising=False)
    yield config_dir
    forget_secrets()


@pytest.fixture
def paths(isolated_env: Path) -> AppPaths:
    return resolve_paths(isolated_env)


@pytest.fixture
def store(paths: AppPaths) -> SettingsStore:
    return SettingsStore(paths.settings_file, lock_timeout=1.0)


@pytest.fixture
def secrets(paths: AppPaths) -> FileSecretStore:
    return FileSecretStore(paths.secrets_file)


def server(name: str, **fields: object) -> ServerConfig:
    """A valid server named `name` (tests override what they are about)."""
    values: dict[str, object] = {
        "name": name,
        "url": f"https://{name.lower().replace(' ', '-')}.example.org/dicom-web",
    }
    values.update(fields)
    return ServerConfig(**values)  # type: ignore[arg-type]


def managed(
    *configs: ServerConfig, source: str = "/etc/xdg/zhiva-viewer/servers.json"
) -> OrganisationServers:
    return OrganisationServers(tuple(OrganisationServer(c, source) for c in configs))


@pytest.fixture
def make_registry(store: SettingsStore, secrets: FileSecretStore):  # type: ignore[no-untyped-def]
    def make(*org: ServerConfig, presets: tuple[ServerConfig, ...] | None = None) -> ServerRegistry:
        registry = ServerRegistry(
            store,
            secrets,
            organisation=managed(*org),
            presets=load_presets() if presets is None else presets,
        )
        registry.load()
        return registry

    return make


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: this test's isolation plus `extra`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


PYTHON = sys.executable
