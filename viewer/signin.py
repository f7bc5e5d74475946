"""Sign-in glue between `net` (the protocol) and `viewer.settings` (servers, secrets).

Shared by the command line and the GUI: which `httpx.Auth` a saved server uses, setting
a server up from a configuration link, and signing out. Tokens live only in the secret
store (kinds ``access_token`` and ``refresh_token``, with ``refresh_origin``, the site
that issued the refresh token; ``token`` is a pasted auth token not yet exchanged); a
refreshed access token is written back as soon as it arrives.

A link is not signed as far as the client can tell, so it never takes over a server
silently: its token endpoints must be on its PACS's site (`net.decode_token`), and when
it matches an existing server whose authentication type, token endpoints or CA file it
would change, `ServerChangeNeedsConfirmation` lists the changes before anything is sent;
the user confirms (GUI) or passes ``--replace`` (CLI), and the same call with
``replace=True`` goes ahead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from net import (
    DEFAULT_LOGIN_TIMEOUT,
    AuthError,
    LoopbackLogin,
    ServerConfig,
    SignInRequired,
    TokenClaims,
    TokenError,
    TokenSet,
    ZhivaTokenAuth,
    auth_base_url,
    configuration_link_origin,
    decode_token,
    exchange_auth_token,
    origin_of,
    parse_configuration_link,
    server_from_claims,
    sign_user,
)
from viewer.settings import ServerRegistry, SettingsError, register_secret

__all__ = [
    "FieldChange",
    "LinkResult",
    "ServerChangeNeedsConfirmation",
    "auth_for",
    "configure_from_link",
    "configure_from_token",
    "same_server_url",
    "sign_in_with_browser",
    "sign_in_with_password",
    "sign_out",
    "store_session",
]

SignInHandler = Callable[[SignInRequired], TokenSet | None]


def store_session(
    registry: ServerRegistry, server_id: str, tokens: TokenSet, *, renewal: bool = False
) -> None:
    """Keep a session's tokens; the one-off auth token that made them is used up.

    A session without a refresh token drops the stored one: it belonged to an earlier
    session (perhaps of another token server) and must not be sent for this one. A
    `renewal` is a connection writing back its own refreshed tokens: no reason for the
    app to reconnect (`SecretStore.revision`).
    """
    secrets = registry.secrets
    register_secret(tokens.access_token)
    secrets.set(server_id, "access_token", tokens.access_token, renewal=renewal)
    if tokens.refresh_token:
        register_secret(tokens.refresh_token)
        secrets.set(server_id, "refresh_token", tokens.refresh_token, renewal=renewal)
        if tokens.issuer:
            secrets.set(server_id, "refresh_origin", tokens.issuer, renewal=renewal)
    else:
        secrets.delete(server_id, "refresh_token", renewal=renewal)
        secrets.delete(server_id, "refresh_origin", renewal=renewal)
    secrets.delete(server_id, "token", renewal=renewal)


def sign_out(registry: ServerRegistry, server_id: str) -> None:
    """Forget a server's session (its password, if Basic, stays)."""
    for kind in ("access_token", "refresh_token", "refresh_origin", "token"):
        registry.secrets.delete(server_id, kind)


def _session_of(registry: ServerRegistry, config: ServerConfig) -> TokenSet | None:
    access = registry.secrets.get(config.id, "access_token")
    if not access:
        return None
    register_secret(access)
    refresh = registry.secrets.get(config.id, "refresh_token") or ""
    register_secret(refresh)
    issuer = registry.secrets.get(config.id, "refresh_origin") or ""
    if refresh and not issuer and config.refresh_server:
        # A session stored before origins were kept: bind it to the endpoint it was
        # used with until now, so a later change of that endpoint cannot take it along.
        try:
            issuer = origin_of(config.refresh_server)
        except ValueError:
            issuer = ""
        if issuer:
            registry.secrets.set(config.id, "refresh_origin", issuer, renewal=True)
    try:
        aud = TokenSet(access_token=access).access_claims().aud
    except TokenError:
        aud = ""
    return TokenSet(
        access_token=access,
        refresh_token=refresh,
        refresh_server=config.refresh_server,
        aud=aud,
        can_edit=config.can_store,
        issuer=issuer,
    )


def auth_for(
    registry: ServerRegistry, config: ServerConfig, *, sign_in: SignInHandler | None = None
) -> httpx.Auth | None:
    """The `httpx.Auth` for a saved server, from its stored secrets.

    Raises `AuthError` (with what to do) when the server needs credentials that are not
    stored. A pasted auth token that was never exchanged is exchanged here.
    """
    if config.auth_type == "none":
        return None
    if config.auth_type == "basic":
        password = registry.secrets.get(config.id, "password")
        if password is None:
            raise AuthError(
                f"No password is stored for {config.name!r}.",
                hint=f"Store one with `zhiva-viewer servers edit {config.name!r} --password-stdin`.",
            )
        register_secret(password)
        return httpx.BasicAuth(config.username, password)
    tokens = _session_of(registry, config)
    if tokens is None:
        pasted = registry.secrets.get(config.id, "token")
        if not pasted:
            raise SignInRequired(
                f"{config.name!r} has no sign-in session.",
                hint="Sign in (or paste a token / open a configuration link) in Settings > Servers.",
            )
        register_secret(pasted)
        _, tokens = exchange_auth_token(pasted, ca_file=config.ca_file)
        # The session the pasted token stood for: connecting, not a change of credentials.
        store_session(registry, config.id, tokens, renewal=True)
    server_id = config.id
    return ZhivaTokenAuth(
        tokens,
        ca_file=config.ca_file,
        sign_in=sign_in,
        on_change=lambda fresh: store_session(registry, server_id, fresh, renewal=True),
    )


@dataclass(frozen=True)
class LinkResult:
    config: ServerConfig
    claims: TokenClaims
    created: bool


#: What a link may not change on an existing server without the user's say-so: how it
#: signs in, where tokens go, which CA it trusts.
_GUARDED_FIELDS: tuple[tuple[str, str], ...] = (
    ("auth_type", "Authentication Type"),
    ("token_server", "Token server"),
    ("refresh_server", "Refresh server"),
    ("ca_file", "CA file"),
)


@dataclass(frozen=True)
class FieldChange:
    field: str
    label: str
    old: str
    new: str

    def line(self) -> str:
        return f"{self.label}: {self.old or '(none)'} -> {self.new or '(none)'}"


class ServerChangeNeedsConfirmation(SettingsError):
    """A link (or sign-in) would change how an existing server signs in: ask first.

    Raised before the one-off token is sent anywhere, so it can still be used: call
    again with ``replace=True`` once the user agreed.
    """

    def __init__(
        self,
        server: ServerConfig,
        changes: tuple[FieldChange, ...],
        auth_token: str,
        link_origin: str = "",
    ) -> None:
        lines = "\n".join(f"  {c.line()}" for c in changes)
        super().__init__(
            f"The link is for your server {server.name!r} ({server.url}) and would change "
            f"how it signs in:\n{lines}"
        )
        self.server = server
        self.changes = changes
        #: The unused one-off token and the site it came from, for the confirmed retry
        #: (``configure_from_token(..., replace=True)``); the token is a registered secret.
        self.auth_token = auth_token
        self.link_origin = link_origin


def _guarded_changes(current: ServerConfig, updated: ServerConfig) -> tuple[FieldChange, ...]:
    changes = []
    for name, label in _GUARDED_FIELDS:
        old, new = str(getattr(current, name)), str(getattr(updated, name))
        # Filling in endpoints a server did not have yet hands nothing of it elsewhere.
        if old != new and not (name in ("token_server", "refresh_server") and not old):
            changes.append(FieldChange(name, label, old, new))
    return tuple(changes)


def same_server_url(a: str, b: str) -> bool:
    """Whether two server URLs name the same DICOMweb root (origin and path)."""

    def normal(url: str) -> str:
        try:
            return origin_of(url) + urlsplit(url).path.rstrip("/")
        except ValueError:  # a port out of range: compared as typed
            return url.strip().rstrip("/")

    return normal(a) == normal(b)


def configure_from_link(
    registry: ServerRegistry,
    link: str,
    *,
    ca_file: str = "",
    select: bool = True,
    replace: bool = False,
) -> LinkResult:
    """Set a server up from ``https://<host>/auth/oauth?token=...`` in one step."""
    return configure_from_token(
        registry,
        parse_configuration_link(link),
        ca_file=ca_file,
        select=select,
        replace=replace,
        link_origin=configuration_link_origin(link),
    )


def configure_from_token(
    registry: ServerRegistry,
    auth_token: str,
    *,
    ca_file: str = "",
    select: bool = True,
    replace: bool = False,
    link_origin: str = "",
) -> LinkResult:
    """Set a server up from a one-off auth token (link, paste or Zhiva login).

    Decodes the token (checking expiry and its sites before anything is sent),
    exchanges it, creates the server (URL = the token's `pacs` claim, Token auth) or
    updates the user's server with that URL, stores the session and selects the server.
    An update that would change the server's sign-in (`_GUARDED_FIELDS`) raises
    `ServerChangeNeedsConfirmation` unless `replace`. A Basic server that becomes a
    token server loses its password: nothing would use it, and it should not linger.
    """
    register_secret(auth_token)
    claims = decode_token(auth_token, link_origin=link_origin)
    existing = next(
        (
            e
            for e in registry.entries()
            if e.kind == "user" and same_server_url(e.config.url, claims.pacs)
        ),
        None,
    )
    changes: dict[str, Any] = {}
    if existing is not None:
        updated = server_from_claims(claims, existing.config)
        if existing.config.auth_type == "zhiva":
            # Signed in through the auth server: stay so.
            updated = msgspec.structs.replace(updated, auth_type="zhiva")
        if ca_file:
            updated = msgspec.structs.replace(updated, ca_file=ca_file)
        guarded = _guarded_changes(existing.config, updated)
        if guarded and not replace:
            raise ServerChangeNeedsConfirmation(existing.config, guarded, auth_token, link_origin)
        changes = {
            name: value
            for name, value in msgspec.structs.asdict(updated).items()
            if value != getattr(existing.config, name)
        }
    ca = ca_file or (existing.config.ca_file if existing else "")
    _, tokens = exchange_auth_token(auth_token, ca_file=ca, link_origin=link_origin)
    if existing is not None:
        config = registry.edit(existing.id, changes) if changes else existing.config
        if existing.config.auth_type == "basic" and config.auth_type != "basic":
            registry.secrets.delete(config.id, "password")
        created = False
    else:
        config = server_from_claims(claims)
        if ca_file:
            config = msgspec.structs.replace(config, ca_file=ca_file)
        taken = {e.name.casefold() for e in registry.entries()}
        name, n = config.name, 2
        while name.casefold() in taken:
            name, n = f"{config.name} ({n})", n + 1
        config = registry.add(msgspec.structs.replace(config, name=name))
        created = True
    store_session(registry, config.id, tokens)
    if select:
        registry.select(config.id)
    return LinkResult(config=config, claims=claims, created=created)


def sign_in_with_browser(
    registry: ServerRegistry,
    auth_server_url: str,
    *,
    ca_file: str = "",
    open_browser: Callable[[str], object] | None = None,
    timeout: float = DEFAULT_LOGIN_TIMEOUT,
    started: Callable[[LoopbackLogin], None] | None = None,
) -> LinkResult:
    """Zhiva login in the system browser (RFC 8252 loopback), then set the server up.

    `started` receives the login while it waits, so the UI can offer Cancel.
    """
    login = LoopbackLogin(
        auth_server_url, **({"open_browser": open_browser} if open_browser else {})
    )
    login.start()
    if started is not None:
        started(login)
    token = login.wait(timeout)
    # The token came straight from the auth server the user chose: its site may host
    # the token endpoints.
    return configure_from_token(
        registry, token, ca_file=ca_file, link_origin=origin_of(login.auth_base)
    )


def sign_in_with_password(
    registry: ServerRegistry,
    auth_server_url: str,
    username: str,
    password: str,
    *,
    ca_file: str = "",
) -> LinkResult:
    """Zhiva login without a browser: the auth server's sign-user form."""
    register_secret(password)
    token = sign_user(auth_server_url, username, password, ca_file=ca_file)
    return configure_from_token(
        registry, token, ca_file=ca_file, link_origin=origin_of(auth_base_url(auth_server_url))
    )
