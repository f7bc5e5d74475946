"""Server configuration: the typed value behind the Settings > Servers form.

`ServerConfig` holds every field of a DICOMweb server as the Zhiva documentation
describes it, plus what real deployments need (a CA file, timeouts); `net._fields`
describes and checks each field (`validate_config`). The `*_root` helpers turn a
config into the URL roots of QIDO-RS, WADO-RS and WADO-URI (DESIGN.md §3: a postfix
that starts with ``/`` is a path from the host's root).
"""

from __future__ import annotations

import ipaddress
import re
import uuid as _uuid
from typing import Literal
from urllib.parse import urlsplit

import msgspec

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "AuthType",
    "RenderingProtocol",
    "ServerConfig",
    "join_url",
    "new_server_id",
    "origin_of",
    "qido_root",
    "validate_url",
    "wado_rs_root",
    "wado_uri_root",
]

AuthType = Literal["none", "basic", "token", "zhiva"]
#: ``wadors``: WADO-RS frames/instances decoded locally; ``wado``: WADO-URI;
#: ``https``: images the server renders itself (``/rendered``).
RenderingProtocol = Literal["wadors", "wado", "https"]

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0


def new_server_id() -> str:
    """A stable internal id: secrets and the selection are keyed by it, not by the name."""
    return _uuid.uuid4().hex


class ServerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """One DICOMweb server, as the user (or their organisation) configured it.

    Secrets (passwords, tokens) are never fields here: they live in the secret store,
    keyed by `id`.
    """

    id: str = msgspec.field(default_factory=new_server_id)
    name: str = ""
    url: str = ""
    auth_type: AuthType = "none"
    username: str = ""
    auth_server_url: str = ""
    token_server: str = ""
    refresh_server: str = ""
    uuid: str = ""
    postfix: str = ""
    wado_uri_postfix: str = "wado"
    wado_postfix: str = ""
    qido_postfix: str = ""
    qido_supports_include_field: bool = False
    image_rendering: RenderingProtocol = "wadors"
    thumbnail_rendering: RenderingProtocol = "wadors"
    lazy_load: bool = True
    fuzzy_matching: bool = False
    can_store: bool = False
    #: Quote ``type``/``boundary`` in multipart Accept and Content-Type headers.
    multipart_quotes: bool = True
    #: Ask for whole series in one request; off: instance by instance (AWS HealthImaging).
    series_retrieve: bool = True
    ca_file: str = ""
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT


# --- URL roots -------------------------------------------------------------------------


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased, with the default port dropped."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    default = {"https": 443, "http": 80}.get(scheme)
    netloc = host if port in (None, default) else f"{host}:{port}"
    return f"{scheme}://{netloc}"


def join_url(base: str, postfix: str) -> str:
    """Join a postfix to a base URL.

    Empty parts are skipped and slashes normalised; a postfix starting with ``/`` is a
    path from the host's root (so ``https://h/zhiva/pacs`` + ``/zhiva/wado`` gives
    ``https://h/zhiva/wado``).
    """
    postfix = postfix.strip()
    if not postfix:
        return base.rstrip("/")
    if postfix.startswith("/"):
        return origin_of(base) + "/" + postfix.strip("/")
    return base.rstrip("/") + "/" + postfix.strip("/")


def _base(config: ServerConfig) -> str:
    return join_url(config.url.strip(), config.postfix)


def qido_root(config: ServerConfig) -> str:
    """Root of the QIDO-RS endpoints (``{root}/studies``...)."""
    return join_url(_base(config), config.qido_postfix)


def wado_rs_root(config: ServerConfig) -> str:
    """Root of the WADO-RS endpoints (``{root}/studies/{uid}/series``...)."""
    return join_url(_base(config), config.wado_postfix)


def wado_uri_root(config: ServerConfig) -> str:
    """The WADO-URI endpoint (``{root}?requestType=WADO&...``)."""
    return join_url(_base(config), config.wado_uri_postfix)


# --- validation ----------------------------------------------------------------------

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def _valid_hostname(host: str) -> bool:
    if not host or len(host) > 253:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", host):  # looks like an IPv4 address but is not one
        return False
    return all(_LABEL.match(label) for label in host.rstrip(".").split("."))


def validate_url(url: str, *, what: str = "URL", required: bool = True) -> str | None:
    """Return a message saying what is wrong with an https URL, or None when it is fine."""
    url = url.strip()
    if not url:
        return f"{what} is required." if required else None
    if any(ch.isspace() for ch in url):
        return f"{what} must not contain spaces."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        if "port" in str(exc).lower():
            return f"{what} port must be a number between 1 and 65535."
        return f"{what} is not a valid URL ({exc})."
    scheme = parts.scheme.lower()
    if scheme == "http":
        return f"{what} must start with https:// — plain http would send images and credentials unencrypted."
    if scheme != "https":
        return f"{what} must start with https://"
    if parts.username is not None or parts.password is not None:
        return f"{what} must not contain a user name or password; use the authentication fields."
    host = parts.hostname or ""
    if not host:
        return f"{what} has no host name (e.g. https://pacs.example.org/dicom-web)."
    if not _valid_hostname(host):
        return f"{what} host '{host}' is not a valid host name or IP address."
    if port is not None and not (1 <= port <= 65535):
        return f"{what} port must be between 1 and 65535."
    if parts.query or parts.fragment:
        return f"{what} must not contain '?' or '#'; put path parts in the postfix fields."
    return None
