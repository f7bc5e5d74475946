"""The server-list JSON format shared by export, import, organisation lists and presets.

::

    {
      "format": "zhiva-viewer/servers",
      "format_version": 1,
      "servers": [ {"id": "...", "name": "...", "url": "https://...", ...}, ... ],
      "servers_url": "https://...",      (organisation files only, optional)
      "servers_ca_file": "/etc/..."      (organisation files only, optional)
    }

Each server is a `net.ServerConfig` in JSON (fields named as in the class; missing
fields take their defaults). Secrets are never part of it: `ServerConfig` has no
secret fields, and export writes only `ServerConfig`'s fields. Reading also accepts a
bare list of servers and a settings file (it has ``servers`` too), which is what
people hand-write or send around.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from net import ServerConfig

from ._errors import ServerListError
from ._schema import normalise_server_ids

__all__ = [
    "SERVER_LIST_FORMAT",
    "SERVER_LIST_VERSION",
    "ServerList",
    "decode_server_list",
    "encode_server_list",
]

SERVER_LIST_FORMAT = "zhiva-viewer/servers"
SERVER_LIST_VERSION = 1
#: A server list is a few KB; anything this large is not one (and must not eat memory).
MAX_SERVER_LIST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ServerList:
    servers: tuple[ServerConfig, ...]
    #: Organisation files may name a URL to fetch the organisation's list from.
    servers_url: str = ""
    servers_ca_file: str = ""
    #: Things worth telling (ids given to servers, a newer format version, ...).
    notes: tuple[str, ...] = ()


def encode_server_list(servers: Iterable[ServerConfig]) -> bytes:
    document = {
        "format": SERVER_LIST_FORMAT,
        "format_version": SERVER_LIST_VERSION,
        "servers": [msgspec.to_builtins(s) for s in servers],
    }
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"


def _optional_str(document: dict[str, Any], key: str, source: str) -> str:
    value = document.get(key, "")
    if not isinstance(value, str):
        raise ServerListError(f"{source}: '{key}' must be a string.")
    return value.strip()


def decode_server_list(data: bytes, *, source: str, id_namespace: str) -> ServerList:
    """Parse a server list; raise `ServerListError` naming `source` and every bad entry.

    All or nothing: a list with one broken entry is refused whole, so an import never
    half-happens. Servers without an id get one derived from `id_namespace` and the name.
    """
    if len(data) > MAX_SERVER_LIST_BYTES:
        raise ServerListError(f"{source} is {len(data)} bytes: too large for a server list.")
    try:
        raw: Any = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise ServerListError(f"{source} is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ServerListError(f"{source} is nested too deeply to be a server list.") from exc
    notes: list[str] = []
    servers_url = servers_ca_file = ""
    if isinstance(raw, list):
        entries: Any = raw
    elif isinstance(raw, dict):
        fmt = raw.get("format", SERVER_LIST_FORMAT)
        if fmt != SERVER_LIST_FORMAT:
            raise ServerListError(
                f"{source} is a {fmt!r} file, not a Zhiva Viewer server list "
                f"(format {SERVER_LIST_FORMAT!r})."
            )
        version = raw.get("format_version", SERVER_LIST_VERSION)
        if isinstance(version, int) and not isinstance(version, bool):
            if version > SERVER_LIST_VERSION:
                notes.append(
                    f"{source} is format version {version} (this version knows "
                    f"{SERVER_LIST_VERSION}); fields it does not know were ignored."
                )
        else:
            raise ServerListError(f"{source}: format_version must be a whole number.")
        entries = raw.get("servers", [])
        servers_url = _optional_str(raw, "servers_url", source)
        servers_ca_file = _optional_str(raw, "servers_ca_file", source)
    else:
        raise ServerListError(f"{source} must hold a JSON object or list of servers.")
    if not isinstance(entries, list):
        raise ServerListError(f"{source}: 'servers' must be a list.")
    entries = [dict(e) if isinstance(e, dict) else e for e in entries]
    notes.extend(f"{source}: {n}" for n in normalise_server_ids(entries, id_namespace))
    servers: list[ServerConfig] = []
    problems: list[str] = []
    for index, entry in enumerate(entries):
        label = f"server #{index + 1}"
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]:
            label += f" ({entry['name']!r})"
        try:
            servers.append(msgspec.convert(entry, ServerConfig))
        except msgspec.ValidationError as exc:
            problems.append(f"{label}: {exc}")
    if problems:
        raise ServerListError(f"{source} has invalid servers: " + "; ".join(problems))
    return ServerList(tuple(servers), servers_url, servers_ca_file, tuple(notes))
