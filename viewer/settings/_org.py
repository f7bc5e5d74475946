"""Organisation-provided (managed) servers: read-only lists an administrator hands out.

Sources, in order of precedence (the first one that lists a server id wins):

1. the file named by ``ZHIVA_SERVERS_FILE`` — one machine or session, set by a script;
2. the list at the organisation's https URL: ``ZHIVA_SERVERS_URL``, else the
   ``servers_url`` of the env file or of the first system file that names one
   (``ZHIVA_SERVERS_CA_FILE`` / ``servers_ca_file`` for a private CA). It is fetched
   with TLS verification; the last good copy is kept in the config dir, so the app
   starts offline with the list it saw last;
3. the system-wide files ``servers.json`` in `system_config_dirs()` (Linux:
   ``/etc/xdg/zhiva-viewer/servers.json`` and the other ``$XDG_CONFIG_DIRS``), most
   preferred directory first.

All use the export format (`_serverlist`). A source that is missing is skipped
silently; one that is broken or unreachable is skipped with a notice — a bad file from
an administrator must never stop the app from starting. Nor may a slow URL: loading
waits `URL_WAIT` for it, then goes on with the last good copy while the fetch finishes
in the background (keeping the new list for the next start). The answer is read
streamed, refused as soon as it passes `MAX_SERVER_LIST_BYTES`, and given up after
`FETCH_DEADLINE` in all. Entries without an id get one derived from their name,
identical across sources, so the same server listed in the file and at the URL counts
once.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from net import DicomWebError, RetryPolicy, ServerConfig, validate_url

from ._atomic import atomic_write, read_bytes
from ._errors import ServerListError
from ._paths import ENV_SERVERS_FILE, ENV_SERVERS_URL, AppPaths, system_config_dirs
from ._serverlist import MAX_SERVER_LIST_BYTES, ServerList, decode_server_list

__all__ = [
    "ENV_SERVERS_CA_FILE",
    "ENV_SERVERS_FILE",
    "ENV_SERVERS_URL",
    "ORGANISATION_ID_NAMESPACE",
    "SYSTEM_FILE_NAME",
    "ManagedServer",
    "OrganisationServers",
    "fetch_server_list",
    "load_organisation_servers",
]

log = logging.getLogger("viewer.settings.org")

ENV_SERVERS_CA_FILE = "ZHIVA_SERVERS_CA_FILE"
SYSTEM_FILE_NAME = "servers.json"
ORGANISATION_ID_NAMESPACE = "organisation"
FETCH_CONNECT_TIMEOUT = 5.0
FETCH_READ_TIMEOUT = 10.0
#: The whole fetch, however the server dribbles: a list is a few KB.
FETCH_DEADLINE = 60.0
#: How long loading the settings waits for the URL before using the last good copy.
URL_WAIT = 3.0


@dataclass(frozen=True)
class ManagedServer:
    config: ServerConfig
    #: Where it came from, for "managed by ..." in the UI.
    source: str


@dataclass(frozen=True)
class OrganisationServers:
    servers: tuple[ManagedServer, ...] = ()
    notices: tuple[str, ...] = ()
    #: Set when a fetch that outlived `URL_WAIT` has finished in the background (its
    #: list, if good, is kept for the next start); None when nothing is pending.
    refreshed: threading.Event | None = None

    def by_id(self) -> dict[str, ManagedServer]:
        return {m.config.id: m for m in self.servers}


class _Cache(msgspec.Struct, kw_only=True):
    url: str
    fetched_at: str
    body: str


def fetch_server_list(url: str, *, ca_file: str = "", transport: object = None) -> bytes:
    """GET the organisation list over verified TLS; `ServerListError` on any failure."""
    from net._http import HttpSession  # the project's one HTTP policy: https-only, TLS

    if (problem := validate_url(url, what="Organisation servers URL")) is not None:
        raise ServerListError(problem)
    config = ServerConfig(
        name="the organisation's server list",
        url=url,
        ca_file=ca_file,
        connect_timeout=FETCH_CONNECT_TIMEOUT,
        read_timeout=FETCH_READ_TIMEOUT,
    )
    deadline = time.monotonic() + FETCH_DEADLINE
    try:
        with (
            HttpSession(
                config,
                transport=transport,  # type: ignore[arg-type]  # tests only
                retry=RetryPolicy(max_attempts=2),
            ) as session,
            session.stream(
                "GET",
                url,
                # Uncompressed: the cap then holds for what is kept, not what is sent.
                headers={"Accept": "application/json", "Accept-Encoding": "identity"},
            ) as response,
        ):
            return _read_capped(response, url, deadline, session.map_error)
    except DicomWebError as exc:
        raise ServerListError(str(exc)) from exc


def _too_large(url: str) -> ServerListError:
    limit = MAX_SERVER_LIST_BYTES // (1024 * 1024)
    return ServerListError(f"{url} sent more than {limit} MiB: that is not a server list.")


def _read_capped(
    response: Any, url: str, deadline: float, map_error: Callable[[Any, str], Exception]
) -> bytes:
    """The body, read piece by piece: refused past the size cap or the deadline."""
    import httpx

    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise ServerListError(f"{url} answered {encoding}-compressed, which was not asked for.")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_SERVER_LIST_BYTES:
        raise _too_large(url)
    body = bytearray()
    try:
        for piece in response.iter_raw(65536):
            body += piece
            if len(body) > MAX_SERVER_LIST_BYTES:
                raise _too_large(url)
            if time.monotonic() > deadline:
                raise ServerListError(
                    f"{url} is too slow: the list did not arrive within {FETCH_DEADLINE:g} s."
                )
    except httpx.HTTPError as exc:
        raise ServerListError(str(map_error(exc, url))) from exc
    return bytes(body)


def _read_file(path: Path, notices: list[str]) -> ServerList | None:
    try:
        data = read_bytes(path)
        if data is None:
            return None
        return decode_server_list(data, source=str(path), id_namespace=ORGANISATION_ID_NAMESPACE)
    except OSError as exc:
        notices.append(f"Organisation servers in {path} were skipped: cannot read it ({exc}).")
    except ServerListError as exc:
        notices.append(f"Organisation servers in {path} were skipped: {exc}")
    return None


class _UrlFetch(threading.Thread):
    """One fetch of the URL's list, kept in the cache when good; `done` when over."""

    def __init__(self, url: str, ca_file: str, cache_path: Path, transport: object) -> None:
        super().__init__(name="zhiva-organisation-list", daemon=True)
        self.url, self.ca_file, self.cache_path, self.transport = (
            url,
            ca_file,
            cache_path,
            transport,
        )
        self.done = threading.Event()
        self.listed: ServerList | None = None
        self.problem = ""

    def run(self) -> None:
        try:
            data = fetch_server_list(self.url, ca_file=self.ca_file, transport=self.transport)
            listed = decode_server_list(
                data, source=self.url, id_namespace=ORGANISATION_ID_NAMESPACE
            )
        except ServerListError as exc:
            self.problem = str(exc)
            log.warning("the organisation list was not fetched: %s", exc)
        except Exception as exc:  # a background thread must report, not vanish
            log.exception("fetching the organisation list failed")
            self.problem = f"{type(exc).__name__}: {exc}"
        else:
            cache = _Cache(
                url=self.url,
                fetched_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                body=data.decode("utf-8", errors="replace"),
            )
            try:
                atomic_write(self.cache_path, msgspec.json.encode(cache))
            except OSError as exc:
                log.warning("could not keep the organisation list in %s: %s", self.cache_path, exc)
            self.listed = listed
        finally:
            self.done.set()


def _from_url(
    url: str,
    ca_file: str,
    cache_path: Path,
    *,
    fetch: bool,
    transport: object,
    notices: list[str],
    wait: float,
) -> tuple[ServerList | None, str, threading.Event | None]:
    """The URL's list and the source label: fresh if `fetch` works within `wait`, else
    the cached copy; plus the event of a fetch still running in the background."""
    problem = ""
    pending: threading.Event | None = None
    if fetch:
        attempt = _UrlFetch(url, ca_file, cache_path, transport)
        attempt.start()
        if not attempt.done.wait(wait):
            pending = attempt.done
        elif attempt.listed is not None:
            return attempt.listed, url, None
        else:
            problem = attempt.problem
    cached = _read_cache(cache_path, url)
    if pending is not None:
        copy = f"using the copy from {cached[1]}" if cached else "they are not offered yet"
        notices.append(
            f"The organisation's server list ({url}) is slow to answer; {copy}. It is "
            "still being fetched and will be used from the next start."
        )
    if cached is None:
        if fetch and pending is None:
            notices.append(f"The organisation's servers could not be loaded: {problem}")
        return None, "", pending
    listed, fetched_at = cached
    if fetch and pending is None:
        notices.append(
            f"The organisation's servers could not be refreshed ({problem}); "
            f"using the copy from {fetched_at}."
        )
    return listed, f"{url} (copy from {fetched_at})", pending


def _read_cache(cache_path: Path, url: str) -> tuple[ServerList, str] | None:
    try:
        data = read_bytes(cache_path)
        if data is None:
            return None
        cache = msgspec.json.decode(data, type=_Cache)
        if cache.url != url:  # the administrator moved the list: the old one is stale
            return None
        listed = decode_server_list(
            cache.body.encode("utf-8"), source=url, id_namespace=ORGANISATION_ID_NAMESPACE
        )
    except (OSError, msgspec.DecodeError, RecursionError, ServerListError) as exc:
        log.warning("ignoring the cached organisation list %s: %s", cache_path, exc)
        return None
    return listed, cache.fetched_at


def load_organisation_servers(
    paths: AppPaths,
    *,
    env: Mapping[str, str] | None = None,
    system_dirs: Sequence[Path] | None = None,
    fetch: bool = True,
    transport: object = None,
    url_wait: float = URL_WAIT,
) -> OrganisationServers:
    """Every managed server, merged by the precedence in the module docstring.

    `fetch=False` uses the cached copy of the URL's list without going to the network
    (a fast start; the GUI can refresh in the background). A fetch that takes longer
    than `url_wait` goes on in the background (`OrganisationServers.refreshed`). Never
    raises for a bad source.
    """
    env = os.environ if env is None else env
    dirs = system_config_dirs() if system_dirs is None else list(system_dirs)
    notices: list[str] = []
    ordered: list[tuple[ServerList, str]] = []

    env_list: ServerList | None = None
    if env.get(ENV_SERVERS_FILE):
        env_path = Path(env[ENV_SERVERS_FILE]).expanduser()
        if not env_path.exists():
            notices.append(f"{ENV_SERVERS_FILE} names {env_path}, which does not exist.")
        env_list = _read_file(env_path, notices)
    system_lists = [
        (listed, str(d / SYSTEM_FILE_NAME))
        for d in dirs
        if (listed := _read_file(d / SYSTEM_FILE_NAME, notices)) is not None
    ]

    url, ca_file = env.get(ENV_SERVERS_URL, "").strip(), env.get(ENV_SERVERS_CA_FILE, "").strip()
    if not url:
        for listed in [env_list, *(s for s, _ in system_lists)]:
            if listed is not None and listed.servers_url:
                url, ca_file = listed.servers_url, ca_file or listed.servers_ca_file
                break
    url_list: ServerList | None = None
    url_label = ""
    pending: threading.Event | None = None
    if url:
        url_list, url_label, pending = _from_url(
            url,
            ca_file,
            paths.organisation_cache,
            fetch=fetch,
            transport=transport,
            notices=notices,
            wait=url_wait,
        )

    if env_list is not None:
        ordered.append((env_list, str(Path(env[ENV_SERVERS_FILE]).expanduser())))
    if url_list is not None:
        ordered.append((url_list, url_label))
    ordered.extend(system_lists)

    merged: dict[str, ManagedServer] = {}
    for listed, label in ordered:
        notices.extend(listed.notes)
        for config in listed.servers:
            # Precedence: a higher source's entry for the same id replaces a lower one's.
            merged.setdefault(config.id, ManagedServer(config, label))
    return OrganisationServers(tuple(merged.values()), tuple(notices), pending)
