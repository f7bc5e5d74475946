"""The one catalogue of a server's fields, and the validation that follows from it.

Every field of `ServerConfig` (and the two secrets the form asks for) is described
once in `SERVER_FIELDS`: its label and one-line help, what kind of value it holds
(which decides both the widget and the check), its command-line flag, where in the form
it sits and for which authentication types it matters. Settings > Servers, the
``zhiva-viewer servers add/edit`` flags and `validate_config` are all derived from it,
so a new field is added here and nowhere else (a test checks the catalogue against
`ServerConfig`).
"""

from __future__ import annotations

import os
import re
import uuid as _uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, get_args

from ._config import AuthType, RenderingProtocol, ServerConfig, validate_url

__all__ = [
    "AUTH_NAMES",
    "SECRET_FIELDS",
    "SERVER_FIELDS",
    "FieldKind",
    "ServerField",
    "field_named",
    "validate_config",
]

#: What a field holds. ``url`` and ``postfix`` are text with their own checks;
#: ``secret`` is typed into the form (or read from stdin) and kept in the secret store.
FieldKind = Literal["text", "url", "postfix", "choice", "bool", "path", "seconds", "uuid", "secret"]

#: How an authentication type is named in a message ("... for Basic authentication").
AUTH_NAMES: Mapping[AuthType, str] = MappingProxyType(
    {"none": "no", "basic": "Basic", "token": "Token", "zhiva": "Zhiva login"}
)

_POSTFIX = re.compile(r"^[A-Za-z0-9._~\-/:@!$&'()*+,;=%]*$")
_MAX_SECONDS = 3600.0


@dataclass(frozen=True)
class ServerField:
    """One field of a server: how it is shown, asked for on the command line, checked."""

    name: str
    label: str
    #: One line (under 100 characters) shown under the widget and in ``--help``.
    help: str
    kind: FieldKind = "text"
    choices: tuple[str, ...] = ()
    #: The ``servers add/edit`` flag; empty: none (the name is positional).
    flag: str = ""
    metavar: str = "VALUE"
    #: Shown (and required, if `required_for`) only for these authentication types.
    auth: tuple[AuthType, ...] = ()
    section: str = "Server"
    required: bool = False
    #: Required when the server uses one of these authentication types.
    required_for: tuple[AuthType, ...] = ()

    @property
    def is_secret(self) -> bool:
        return self.kind == "secret"

    def check(self, value: Any, *, auth_type: AuthType = "none") -> str | None:
        """What is wrong with `value` for this field, or None when it is fine."""
        needed = self.required or auth_type in self.required_for
        if self.kind == "url":
            return validate_url(str(value), what=self.label, required=needed)
        if self.kind in ("text", "secret"):
            if needed and not str(value).strip():
                if self.required:
                    return f"{self.label} is required."
                what = self.label[:1].lower() + self.label[1:]
                return f"A {what} is required for {AUTH_NAMES[auth_type]} authentication."
            return None
        if self.kind == "postfix":
            return _check_postfix(str(value), self.label)
        if self.kind == "choice":
            if value not in self.choices:
                return f"{self.label} must be one of {', '.join(self.choices)}."
            return None
        if self.kind == "uuid":
            return _check_uuid(str(value), self.label)
        if self.kind == "path":
            return _check_file(str(value), self.label)
        if self.kind == "seconds":
            if not isinstance(value, int | float) or not (0 < value <= _MAX_SECONDS):
                return f"Timeout must be between 0 and {_MAX_SECONDS:g} seconds."
            return None
        return None


def _check_postfix(value: str, label: str) -> str | None:
    if not _POSTFIX.match(value):
        return f"{label} may contain only letters, digits and - . _ ~ / (no spaces, '?' or '#')."
    if any(seg in (".", "..") for seg in value.split("/")):
        return f"{label} must not contain '.' or '..' path segments."
    return None


def _check_uuid(value: str, label: str) -> str | None:
    if not value.strip():
        return None
    try:
        parsed = _uuid.UUID(value.strip())
    except ValueError:
        return f"{label} is not a UUID (e.g. 0b5d3c4e-...); use Generate."
    if parsed.version != 4:
        return f"{label} must be a version 4 UUID (this one is version {parsed.version})."
    return None


def _check_file(value: str, label: str) -> str | None:
    if not value.strip():
        return None
    path = os.path.expanduser(value.strip())
    if not os.path.isfile(path):
        return f"{label} file '{path}' does not exist."
    if not os.access(path, os.R_OK):
        return f"{label} file '{path}' is not readable."
    return None


_AUTH = tuple(get_args(AuthType))
_RENDERING = tuple(get_args(RenderingProtocol))

#: Every field of `ServerConfig` except `id`, plus the two secrets, in form order.
SERVER_FIELDS: tuple[ServerField, ...] = (
    ServerField(
        "name",
        "Server Name",
        "How this server is called in the Selected Server list.",
        required=True,
    ),
    ServerField(
        "url",
        "Server URL",
        "The server's DICOMweb address; must start with https://.",
        kind="url",
        flag="--url",
        metavar="URL",
        required=True,
    ),
    ServerField(
        "auth_type",
        "Authentication Type",
        "How the viewer signs in to this server.",
        kind="choice",
        choices=_AUTH,
        flag="--auth",
    ),
    ServerField(
        "username",
        "User name",
        "Your user name on this server.",
        flag="--username",
        metavar="USER",
        auth=("basic",),
        section="Sign-in",
        required_for=("basic",),
    ),
    ServerField(
        "password",
        "Password",
        "Kept in the OS keyring (or a file only you can read), never in the settings file.",
        kind="secret",
        flag="--password-stdin",
        auth=("basic",),
        section="Sign-in",
    ),
    ServerField(
        "token",
        "Token",
        "Paste the sign-in token (JWT) you were given; it is exchanged for a session once.",
        kind="secret",
        flag="--token-stdin",
        auth=("token",),
        section="Sign-in",
    ),
    ServerField(
        "auth_server_url",
        "Auth Server URL",
        "The Zhiva auth server, e.g. https://host/auth; Sign in opens its page in your browser.",
        kind="url",
        flag="--auth-server-url",
        metavar="URL",
        auth=("zhiva",),
        section="Sign-in",
        required_for=("zhiva",),
    ),
    ServerField(
        "token_server",
        "Token server",
        "Where a sign-in token is exchanged (the token's tokenServer; filled in from it).",
        kind="url",
        flag="--token-server",
        metavar="URL",
        auth=("token", "zhiva"),
        section="Sign-in",
    ),
    ServerField(
        "refresh_server",
        "Refresh server",
        "Where the session is renewed (the token's refreshServer; filled in from it).",
        kind="url",
        flag="--refresh-server",
        metavar="URL",
        auth=("token", "zhiva"),
        section="Sign-in",
    ),
    ServerField(
        "uuid",
        "Server UUID",
        "A version 4 UUID sent along with inference requests; Generate makes one.",
        kind="uuid",
        flag="--uuid",
        metavar="UUID",
        section="Paths",
    ),
    ServerField(
        "postfix",
        "Server Postfix",
        "Added to the Server URL before the QIDO and WADO postfixes (e.g. aets/DCM4CHEE).",
        kind="postfix",
        flag="--postfix",
        metavar="P",
        section="Paths",
    ),
    ServerField(
        "qido_postfix",
        "QIDO Postfix",
        "Where searches (QIDO-RS) live under the base; often rs, may be empty.",
        kind="postfix",
        flag="--qido-postfix",
        metavar="P",
        section="Paths",
    ),
    ServerField(
        "wado_postfix",
        "WADO Postfix",
        "Where images (WADO-RS) live under the base; often rs, may be empty.",
        kind="postfix",
        flag="--wado-postfix",
        metavar="P",
        section="Paths",
    ),
    ServerField(
        "wado_uri_postfix",
        "WADO URI Postfix",
        "Where WADO-URI lives, usually wado; a leading / starts at the host (/zhiva/wado).",
        kind="postfix",
        flag="--wado-uri-postfix",
        metavar="P",
        section="Paths",
    ),
    ServerField(
        "qido_supports_include_field",
        "QIDO Supports Include Field",
        "Ask for extra attributes in searches with includefield.",
        kind="bool",
        flag="--qido-supports-include-field",
        section="Behaviour",
    ),
    ServerField(
        "image_rendering",
        "Image rendering protocol",
        "wadors: frames decoded here; wado: WADO-URI; https: images the server renders.",
        kind="choice",
        choices=_RENDERING,
        flag="--image-rendering",
        section="Behaviour",
    ),
    ServerField(
        "thumbnail_rendering",
        "Thumbnail rendering protocol",
        "wadors: made here from a frame; wado: WADO-URI; https: the server's thumbnails.",
        kind="choice",
        choices=_RENDERING,
        flag="--thumbnail-rendering",
        section="Behaviour",
    ),
    ServerField(
        "lazy_load",
        "Enable Study LazyLoad",
        "Load only the selected series' metadata instead of the whole study's.",
        kind="bool",
        flag="--lazy-load",
        section="Behaviour",
    ),
    ServerField(
        "fuzzy_matching",
        "Supports Fuzzy Matching",
        "Ask the server to match similar spellings of names in searches.",
        kind="bool",
        flag="--fuzzy-matching",
        section="Behaviour",
    ),
    ServerField(
        "can_store",
        "Can Store/Update Data",
        "Allow sending and changing data on this server (STOW).",
        kind="bool",
        flag="--can-store",
        section="Behaviour",
    ),
    ServerField(
        "multipart_quotes",
        "Quote multipart parameters",
        'Send type="..." quoted; off for servers that refuse quotes (some Java servers).',
        kind="bool",
        flag="--multipart-quotes",
        section="Behaviour",
    ),
    ServerField(
        "series_retrieve",
        "Series retrieve",
        "Fetch a series in one request; off for servers without it (AWS HealthImaging).",
        kind="bool",
        flag="--series-retrieve",
        section="Behaviour",
    ),
    ServerField(
        "ca_file",
        "CA certificate",
        "For a self-signed server: the CA certificate (PEM) to trust, e.g. trusted.crt.",
        kind="path",
        flag="--ca-file",
        metavar="FILE",
        section="Connection",
    ),
    ServerField(
        "connect_timeout",
        "Connect timeout (s)",
        "Seconds to wait for the server to accept a connection.",
        kind="seconds",
        flag="--connect-timeout",
        metavar="SECONDS",
        section="Connection",
    ),
    ServerField(
        "read_timeout",
        "Read timeout (s)",
        "Seconds to wait for the server to answer a request.",
        kind="seconds",
        flag="--read-timeout",
        metavar="SECONDS",
        section="Connection",
    ),
)
_BY_NAME = {f.name: f for f in SERVER_FIELDS}
#: The form fields that are secrets, not `ServerConfig` fields.
SECRET_FIELDS: tuple[str, ...] = tuple(f.name for f in SERVER_FIELDS if f.is_secret)


def field_named(name: str) -> ServerField:
    """The catalogue entry of a field (KeyError for a name that is not a field)."""
    return _BY_NAME[name]


def validate_config(config: ServerConfig) -> dict[str, str]:
    """Check every field; return ``{field_name: message}`` for the ones that are invalid.

    An empty dict means the server can be saved. Cheap enough to run on every keystroke.
    """
    errors: dict[str, str] = {}
    auth_type = config.auth_type if config.auth_type in _AUTH else "none"
    for spec in SERVER_FIELDS:
        if spec.is_secret:
            continue
        message = spec.check(getattr(config, spec.name), auth_type=auth_type)
        if message is not None:
            errors[spec.name] = message
    return errors
