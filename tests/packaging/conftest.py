"""Fixtures of the packaging tests: the built binary (when there is one) and isolation.

The spec tests need only PyInstaller. The binary tests run the executable named in
``ZHIVA_BINARY`` (scripts/test.sh builds the one-folder binary and sets it; locally:
``build/build.sh onedir && ZHIVA_BINARY=dist/zhiva-viewer-dir/zhiva-viewer pytest
tests/packaging``) and are skipped, saying so, when it is not set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    config_dir = tmp_path / "config"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("ZHIVA_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("ZHIVA_SECRET_STORE", "file")
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg"))
    for name in ("ZHIVA_SERVERS_FILE", "ZHIVA_SERVERS_URL", "ZHIVA_SERVERS_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    yield config_dir


@pytest.fixture
def binary() -> Path:
    value = os.environ.get("ZHIVA_BINARY")
    if not value:
        pytest.skip("ZHIVA_BINARY is not set (scripts/test.sh builds the binary and sets it)")
    path = Path(value)
    if not path.is_absolute():
        path = ROOT / path
    assert path.is_file() and os.access(path, os.X_OK), f"ZHIVA_BINARY={value} is not executable"
    return path
