"""Where Zhiva Viewer keeps its files: config, logs, cache, system-wide lists, assets.

By default the platform's user directories (platformdirs). ``--config-dir DIR`` or the
environment variable ``ZHIVA_CONFIG_DIR`` make the install portable: then logs and
cache live under that directory as well, so a USB stick or a test run carries
everything in one place and never touches the user's real settings.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

__all__ = [
    "APP_NAME",
    "ENV_CONFIG_DIR",
    "AppPaths",
    "ensure_private_dir",
    "find_assets_dir",
    "resolve_paths",
    "system_config_dirs",
]

APP_NAME = "zhiva-viewer"
#: Organisation server lists (read by `_org`; here so the command line can name them
#: without importing the list machinery).
ENV_SERVERS_FILE = "ZHIVA_SERVERS_FILE"
ENV_SERVERS_URL = "ZHIVA_SERVERS_URL"
ENV_CONFIG_DIR = "ZHIVA_CONFIG_DIR"
#: Lets a packaged or relocated build point at its assets explicitly.
ENV_ASSETS_DIR = "ZHIVA_ASSETS_DIR"


@dataclass(frozen=True)
class AppPaths:
    """The directories of one run. Nothing is created until something is written."""

    config_dir: Path
    log_dir: Path
    cache_dir: Path
    #: True when the directories come from ``--config-dir`` / ``ZHIVA_CONFIG_DIR``.
    portable: bool = False

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def secrets_file(self) -> Path:
        return self.config_dir / "secrets.json"

    @property
    def organisation_cache(self) -> Path:
        """The last good copy of the organisation's server list fetched from a URL."""
        return self.config_dir / "organisation-servers.json"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "zhiva-viewer.log"

    @property
    def instance_cache_dir(self) -> Path:
        """The on-disk instance cache (Settings > Cache, ``zhiva-viewer cache``)."""
        return self.cache_dir / "instances"

    @property
    def demo_dir(self) -> Path:
        """Where the demo study is generated (once) and read from."""
        return self.cache_dir / "demo"

    @property
    def reports_dir(self) -> Path:
        """Measurement reports (DICOM SR) saved when the server may not store them:
        user data, not cache (never cleared with it), under the config dir when portable."""
        if self.portable:
            return self.config_dir / "reports"
        return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "reports"


def resolve_paths(
    config_dir: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> AppPaths:
    """The paths for this run: ``config_dir`` (the flag) beats the env var beats the platform."""
    env = os.environ if env is None else env
    chosen = config_dir if config_dir is not None else env.get(ENV_CONFIG_DIR) or None
    if chosen is not None:
        root = Path(chosen).expanduser().absolute()
        return AppPaths(
            config_dir=root, log_dir=root / "logs", cache_dir=root / "cache", portable=True
        )
    dirs = platformdirs.PlatformDirs(APP_NAME, appauthor=False)
    return AppPaths(
        config_dir=Path(dirs.user_config_dir),
        log_dir=Path(dirs.user_log_dir),
        cache_dir=Path(dirs.user_cache_dir),
    )


def system_config_dirs() -> list[Path]:
    """System-wide config directories of the app, most preferred first.

    Linux: ``$XDG_CONFIG_DIRS`` (default ``/etc/xdg``) + ``/zhiva-viewer``, as the XDG spec
    says (a set ``XDG_CONFIG_DIRS`` replaces the default, which is how tests isolate
    themselves); macOS: ``/Library/Application Support/zhiva-viewer``; Windows:
    ``%PROGRAMDATA%\\zhiva-viewer``.
    """
    joined = platformdirs.PlatformDirs(APP_NAME, appauthor=False, multipath=True).site_config_dir
    return [Path(p) for p in joined.split(os.pathsep) if p]


def find_assets_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """The ``assets/`` directory: env override, a PyInstaller bundle, or the source tree."""
    env = os.environ if env is None else env
    candidates: list[Path] = []
    if env.get(ENV_ASSETS_DIR):
        candidates.append(Path(env[ENV_ASSETS_DIR]))
    bundle = getattr(sys, "_MEIPASS", None)  # set by PyInstaller's bootloader
    if bundle:
        candidates.append(Path(bundle) / "assets")
    # viewer/settings/_paths.py -> the repository (or sdist) root holds assets/.
    candidates.append(Path(__file__).resolve().parents[2] / "assets")
    candidates.append(Path(sys.prefix) / "share" / APP_NAME / "assets")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


def ensure_private_dir(directory: Path) -> None:
    """Create `directory` and any missing parents, each readable only by the user.

    (``mkdir(parents=True)`` would give the parents the default mode, and the config
    dir is usually such a parent of the log or lock path.) Existing dirs are left alone.
    """
    missing: list[Path] = []
    current = directory
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            path.mkdir(mode=0o700)
