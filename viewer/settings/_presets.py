"""Server presets shipped in ``assets/servers/*.json`` (the "Local Server" of Zhiva).

Presets are offered, never silently selected: they appear in the server list until the
user saves one (selecting or editing it copies it into their settings under the
preset's stable id, so a preset saved twice is still one server).
"""

from __future__ import annotations

import logging
from pathlib import Path

from net import ServerConfig

from ._errors import ServerListError
from ._paths import find_assets_dir
from ._serverlist import decode_server_list

__all__ = ["LOCAL_SERVER_PRESET_ID", "load_presets", "presets_dir"]

log = logging.getLogger("viewer.settings.presets")

#: The id of the "Local Server" preset: stable, so its secrets and the selection
#: survive upgrades of the preset file.
LOCAL_SERVER_PRESET_ID = "zhiva-local-server"


def presets_dir(assets_dir: Path | None = None) -> Path | None:
    root = assets_dir if assets_dir is not None else find_assets_dir()
    return None if root is None else root / "servers"


def load_presets(assets_dir: Path | None = None) -> tuple[ServerConfig, ...]:
    """Every preset server, in file-name order; a broken preset file is logged and skipped."""
    directory = presets_dir(assets_dir)
    if directory is None or not directory.is_dir():
        log.warning("no server presets: assets/servers not found")
        return ()
    presets: dict[str, ServerConfig] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            listed = decode_server_list(path.read_bytes(), source=str(path), id_namespace="preset")
        except (OSError, ServerListError) as exc:
            log.warning("skipping the server preset %s: %s", path, exc)
            continue
        for config in listed.servers:
            presets.setdefault(config.id, config)
    return tuple(presets.values())
