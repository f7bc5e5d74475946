"""Sign-in glue between `net` (the protocol) and `viewer.settings` (servers, secrets).

Shared by the command line and the GUI: which `httpx.Auth` a saved server uses, setting
a server up from a configuration link, and signing out. Tokens live only in the secret
store (kinds ``access_token`` and ``refresh_token``; ``token`` is a pasted auth token not
yet exchanged); a refreshed access token is written back as soon as it arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
    decode_token,
    exchange_auth_token,
    origin_of,
    parse_configuration_link,
    server_from_claims,
    sign_user,
)
from viewer.settings import ServerRegistry, register_secret

__all__ = [
    "LinkResult",
    "auth_for",
    "configure_from_link",
    "configure_from_token",
    "sign_in_with_browser",
    "sign_in_with_password",
    "sign_out",
    "store_session",
]

SignInHandler = Callable[[SignInRequired], TokenSet | None]


def store_session(registry: ServerRegistry, server_id: str, tokens: TokenSet) -> None:
    """Keep a session's tokens; the one-off auth token that made them is used up."""
    register_secret(tokens.access_token)
    registry.secrets.set(server_id, "access_token", tokens.access_token)
    if tokens.refresh_token:
        register_secret(tokens.refresh_token)
        registry.secrets.set(server_id, "refresh_token", tokens.refresh_token)
    registry.secrets.delete(server_id, "token")


def sign_out(registry: ServerRegistry, server_id: str) -> None:
    """Forget a server's session (its password, if Basic, stays)."""
    for kind in ("access_token", "refresh_token", "token"):
        registry.secrets.delete(server_id, kind)


def _session_of(registry: ServerRegistry, config: ServerConfig) -> TokenSet | None:
    access = registry.secrets.get(config.id, "access_token")
    if not access:
        return None
    register_secret(access)
    refresh = registry.secrets.get(config.id, "refresh_token") or ""
    register_secret(refresh)
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
        store_session(registry, config.id, tokens)
    server_id = config.id
    return ZhivaTokenAuth(
        tokens,
        ca_file=config.ca_file,
        sign_in=sign_in,
        on_change=lambda fresh: store_session(registry, server_id, fresh),
    )


@dataclass(frozen=True)
class LinkResult:
    config: ServerConfig
    claims: TokenClaims
    created: bool


def _same_server(a: str, b: str) -> bool:
    def normal(url: str) -> str:
        return origin_of(url) + urlsplit(url).path.rstrip("/")

    return normal(a) == normal(b)


def configure_from_link(
    registry: ServerRegistry, link: str, *, ca_file: str = "", select: bool = True
) -> LinkResult:
    """Set a server up from ``https://<host>/auth/oauth?token=...`` in one step."""
    return configure_from_token(
        registry, parse_configuration_link(link), ca_file=ca_file, select=select
    )


def configure_from_token(
    registry: ServerRegistry, auth_token: str, *, ca_file: str = "", select: bool = True
) -> LinkResult:
    """Set a server up from a one-off auth token (link, paste or Zhiva login).

    Decodes the token (checking expiry before anything is sent), exchanges it, creates
    the server (URL = the token's `pacs` claim, Token auth) or updates the user's server
    with that URL, stores the session and selects the server.
    """
    register_secret(auth_token)
    claims = decode_token(auth_token)
    existing = next(
        (
            e
            for e in registry.entries()
            if e.kind == "user" and _same_server(e.config.url, claims.pacs)
        ),
        None,
    )
    ca = ca_file or (existing.config.ca_file if existing else "")
    _, tokens = exchange_auth_token(auth_token, ca_file=ca)
    if existing is not None:
        updated = server_from_claims(claims, existing.config)
        changes = {
            name: getattr(updated, name)
            for name in ("url", "auth_type", "token_server", "refresh_server", "can_store")
        }
        if existing.config.auth_type == "zhiva":
            changes["auth_type"] = "zhiva"  # signed in through the auth server: stay so
        if ca_file:
            changes["ca_file"] = ca_file
        config = registry.edit(existing.id, changes)
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
    return configure_from_token(registry, token, ca_file=ca_file)


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
    return configure_from_token(registry, token, ca_file=ca_file)
