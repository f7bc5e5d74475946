"""Sign-in for Zhiva servers: token claims, the exchange, and a refreshing `httpx.Auth`.

The protocol is the Zhiva token server's (DESIGN.md §4): a one-off *auth token* (JWT)
is exchanged at `tokenServer` for an access token (response header) and a refresh
token (text body); PACS requests carry the access token; `refreshServer` turns the
refresh token into a new access token. The client has no key, so tokens are decoded
without verifying signatures — only what can be checked locally is (structure, expiry,
https URLs); the servers verify the rest.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Generator, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import msgspec

from ._config import ServerConfig, origin_of, validate_url
from ._errors import (
    AuthError,
    DicomWebError,
    ServerError,
    SignInRequired,
    TokenError,
    TokenExpired,
)
from ._http import HttpSession

__all__ = [
    "CLOCK_SKEW",
    "EARLY_REFRESH_FRACTION",
    "LINK_SCHEME",
    "TokenClaims",
    "TokenSet",
    "ZhivaTokenAuth",
    "configuration_link_origin",
    "decode_token",
    "exchange_auth_token",
    "parse_configuration_link",
    "refresh_access_token",
    "server_from_claims",
]

#: Refresh this long before the access token expires, and tolerate this much
#: difference between our clock and the server's.
CLOCK_SKEW = 60.0
#: ... but never more than this share of the token's lifetime: a server that issues
#: 20 s access tokens would otherwise get a refresh before every request.
EARLY_REFRESH_FRACTION = 0.1
#: How far in the future `iat` may lie before we blame this computer's clock.
_MAX_FUTURE_IAT = 300.0
LINK_SCHEME = "zhiva-viewer"

Clock = Callable[[], float]


class TokenClaims(msgspec.Struct, frozen=True, kw_only=True):
    """What a Zhiva token says about the user and where to use it."""

    name: str = ""
    username: str = ""
    can_edit: bool = False
    token_server: str = ""
    refresh_server: str = ""
    pacs: str = ""
    aud: str = ""
    iss: str = ""
    iat: float | None = None
    exp: float | None = None

    def expires_at(self) -> dt.datetime | None:
        return dt.datetime.fromtimestamp(self.exp, dt.UTC) if self.exp is not None else None


class TokenSet(msgspec.Struct, frozen=True, kw_only=True):
    """The session after an exchange: kept in the secret store, never in settings."""

    access_token: str
    refresh_token: str = ""
    refresh_server: str = ""
    aud: str = ""
    can_edit: bool = False
    #: The origin of the token server that issued `refresh_token`: the refresh token is
    #: sent to a refresh endpoint of that origin only, whatever a config says later.
    issuer: str = ""

    def access_claims(self) -> TokenClaims:
        return _claims(_raw_claims(self.access_token))


def _strip_bearer(token: str) -> str:
    token = token.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    return token


_NOT_A_TOKEN_HINT = "Copy the whole token (three parts separated by dots) or ask for a new one."
#: Times a token may name: from 1970 to the end of 9999 (what `datetime` can show).
_LATEST_TIME = 253402300799.0


def _raw_claims(token: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(
            _strip_bearer(token),
            options={"verify_signature": False, "verify_exp": False, "verify_aud": False},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(
            f"This is not a valid sign-in token ({exc}).", hint=_NOT_A_TOKEN_HINT
        ) from exc
    # The payload is anyone's JSON: nested past the parser's depth (RecursionError),
    # numbers past int-to-str limits (ValueError), claims PyJWT itself type-checks
    # (TypeError) all mean the same to the user.
    except (RecursionError, ValueError, TypeError, OverflowError) as exc:
        raise TokenError(
            f"This is not a valid sign-in token ({type(exc).__name__}).", hint=_NOT_A_TOKEN_HINT
        ) from exc
    if not isinstance(claims, dict):
        raise TokenError("This sign-in token has no claims.")
    return claims


def _time(raw: Mapping[str, Any], name: str) -> float | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError(f"This token's '{name}' claim is not a time.", hint=_NOT_A_TOKEN_HINT)
    try:
        seconds = float(value)
    except OverflowError:
        seconds = float("inf")
    if not 0 <= seconds <= _LATEST_TIME:  # also false for NaN
        raise TokenError(
            f"This token's '{name}' claim is not a possible time.", hint=_NOT_A_TOKEN_HINT
        )
    return seconds


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _claims(raw: Mapping[str, Any]) -> TokenClaims:
    aud = raw.get("aud", "")
    if isinstance(aud, list):
        aud = aud[0] if aud else ""
    return TokenClaims(
        name=_text(raw.get("name")),
        username=_text(raw.get("username")),
        can_edit=raw.get("canEditResource") is True,
        token_server=_text(raw.get("tokenServer")),
        refresh_server=_text(raw.get("refreshServer")),
        pacs=_text(raw.get("pacs")),
        aud=_text(aud),
        iss=_text(raw.get("iss")),
        iat=_time(raw, "iat"),
        exp=_time(raw, "exp"),
    )


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def decode_token(
    token: str, *, auth_token: bool = True, clock: Clock = time.time, link_origin: str = ""
) -> TokenClaims:
    """Decode and check what the client can check of a Zhiva token.

    With `auth_token`, the claims needed to set up a server (`tokenServer`, `pacs`) are
    required, every URL claim must be https, and the token endpoints must be on the
    PACS's origin (or on `link_origin`, the site of the configuration link it came in):
    the token is unsigned as far as we can tell, and one naming another site's token
    server would send the sign-in there. Expiry is checked before anything is sent,
    since the reference server answers an expired token with HTTP 500.
    """
    claims = _claims(_raw_claims(token))
    now = clock()
    if claims.exp is not None and claims.exp <= now:
        raise TokenExpired(
            f"This sign-in token expired on {_when(claims.exp)}.",
            hint="Ask for a new token or configuration link (they are valid for 24 hours).",
        )
    if claims.iat is not None and claims.iat > now + _MAX_FUTURE_IAT:
        raise TokenError(
            f"This token was issued in the future ({_when(claims.iat)}); this computer's clock "
            "is probably wrong.",
            hint="Set the correct date and time (automatic time), then try again.",
        )
    if auth_token:
        for field, label in (("token_server", "tokenServer"), ("pacs", "pacs")):
            if not getattr(claims, field):
                raise TokenError(
                    f"This token has no '{label}' claim: it is not a Zhiva sign-in token."
                )
        for field, label in (
            ("token_server", "tokenServer"),
            ("refresh_server", "refreshServer"),
            ("pacs", "pacs"),
        ):
            value = getattr(claims, field)
            if value and (problem := validate_url(value, what=f"The token's {label}")):
                raise TokenError(problem)
        _check_token_sites(claims, link_origin)
    return claims


def _check_token_sites(claims: TokenClaims, link_origin: str) -> None:
    """Refuse a token whose endpoints are on another site than its PACS (or link)."""
    pacs = origin_of(claims.pacs)
    allowed = {pacs, link_origin} - {""}
    where = pacs if link_origin in ("", pacs) else f"{pacs} (or the link's {link_origin})"
    for url, label in (
        (claims.token_server, "tokenServer"),
        (claims.refresh_server, "refreshServer"),
    ):
        if url and origin_of(url) not in allowed:
            raise TokenError(
                f"This token's {label} is {origin_of(url)}, but its PACS is at {where}: "
                "a sign-in token must name the servers of one site, so it was refused and "
                "nothing was sent.",
                hint="Ask your administrator for a new configuration link.",
            )
    if claims.refresh_server and origin_of(claims.refresh_server) != origin_of(claims.token_server):
        raise TokenError(
            f"This token's refreshServer ({origin_of(claims.refresh_server)}) is on another "
            f"site than its tokenServer ({origin_of(claims.token_server)}): the refresh token "
            "would go to a server that did not issue it, so the token was refused.",
            hint="Ask your administrator for a new configuration link.",
        )


def configuration_link_origin(link: str) -> str:
    """The site an https configuration link points to ("" for ``zhiva-viewer://``)."""
    link = link.strip()
    try:
        https = urlsplit(link).scheme.lower() == "https"
        return origin_of(link) if https else ""
    except ValueError:
        return ""  # parse_configuration_link explains what is wrong with it


def parse_configuration_link(link: str) -> str:
    """The auth token inside a configuration link.

    Accepts ``https://<host>/auth/oauth?token=...`` and the app's own
    ``zhiva-viewer://oauth?token=...``.
    """
    link = link.strip()
    try:
        parts = urlsplit(link)
    except ValueError as exc:
        raise TokenError(f"This is not a configuration link ({exc}).") from exc
    scheme = parts.scheme.lower()
    if scheme == "http":
        raise TokenError(
            "Configuration links must use https:// — a token sent over plain http can be stolen."
        )
    if scheme == "https":
        if not parts.path.rstrip("/").endswith("/auth/oauth"):
            raise TokenError(
                "This is not a configuration link: it should look like "
                "https://<host>/auth/oauth?token=..."
            )
    elif scheme == LINK_SCHEME:
        if (parts.netloc + parts.path).strip("/") != "oauth":
            raise TokenError(f"This is not a configuration link ({LINK_SCHEME}://oauth?token=...).")
    else:
        raise TokenError(
            "This is not a configuration link: it should look like https://<host>/auth/oauth?token=..."
        )
    tokens = parse_qs(parts.query).get("token", [])
    if not tokens or not tokens[0].strip():
        raise TokenError("The configuration link has no token in it; copy the whole link.")
    return tokens[0].strip()


def server_from_claims(claims: TokenClaims, existing: ServerConfig | None = None) -> ServerConfig:
    """The server a Zhiva token points at: URL = the `pacs` claim, Token auth.

    An existing server with the same URL keeps its id, name and other settings.
    """
    url = claims.pacs.rstrip("/")
    host = urlsplit(url).hostname or url
    changes: dict[str, Any] = {
        "url": url,
        "auth_type": "token",
        "token_server": claims.token_server,
        "refresh_server": claims.refresh_server,
        "can_store": claims.can_edit,
    }
    if existing is not None:
        return msgspec.structs.replace(existing, **changes)
    # The Zhiva local PACS serves WADO-URI beside the DICOMweb root (DESIGN.md §4).
    wado_uri = "/zhiva/wado" if urlsplit(url).path.rstrip("/").endswith("/zhiva/pacs") else "wado"
    return ServerConfig(name=f"Zhiva ({host})", wado_uri_postfix=wado_uri, **changes)


# --- exchange and refresh --------------------------------------------------------------


def _session_for(url: str, ca_file: str, transport: httpx.BaseTransport | None) -> HttpSession:
    config = ServerConfig(name=f"Token server {origin_of(url)}", url=url, ca_file=ca_file)
    return HttpSession(config, transport=transport)


def _bearer_headers(token: str, aud: str) -> dict[str, str]:
    # The Zhiva documentation names the header "Authentication"; servers read either.
    headers = {"Authorization": f"Bearer {token}", "Authentication": f"Bearer {token}"}
    if aud:
        headers["Origin"] = aud  # the reference server requires Origin == aud
    return headers


def _access_token_from(response: httpx.Response, server: str) -> str:
    for name in ("authorization", "authentication"):
        value = response.headers.get(name, "")
        if value.strip():
            return _strip_bearer(value)
    raise TokenError(
        "The token server answered without an access token (no Authorization header).",
        server=server,
        hint="Check that the token server URL in the token is the Zhiva token server.",
    )


def exchange_auth_token(
    auth_token: str,
    *,
    ca_file: str = "",
    transport: httpx.BaseTransport | None = None,
    clock: Clock = time.time,
    link_origin: str = "",
) -> tuple[TokenClaims, TokenSet]:
    """Exchange a one-off auth token for an access and a refresh token (works once)."""
    auth_token = _strip_bearer(auth_token)
    claims = decode_token(auth_token, clock=clock, link_origin=link_origin)
    with _session_for(claims.token_server, ca_file, transport) as session:
        try:
            response = session.request(
                "POST", claims.token_server, headers=_bearer_headers(auth_token, claims.aud)
            )
        except (AuthError, ServerError) as exc:
            raise TokenError(
                f"The token server refused the sign-in token ({exc.message}).",
                server=session.server,
                hint=(
                    "A sign-in token can be used only once and for 24 hours: ask for a new "
                    "token or configuration link."
                ),
                request=exc.request,
                response=exc.response,
            ) from exc
        access = _access_token_from(response, session.server)
    refresh = response.text.strip().strip('"')
    return claims, TokenSet(
        access_token=access,
        refresh_token=_strip_bearer(refresh) if refresh else "",
        refresh_server=claims.refresh_server,
        aud=claims.aud,
        can_edit=claims.can_edit,
        issuer=origin_of(claims.token_server),
    )


def refresh_access_token(
    tokens: TokenSet,
    *,
    ca_file: str = "",
    transport: httpx.BaseTransport | None = None,
) -> TokenSet:
    """A new access token from the refresh token; raises `SignInRequired` when impossible."""
    if not tokens.refresh_token or not tokens.refresh_server:
        raise SignInRequired("The session expired and cannot be renewed.", hint="Sign in again.")
    if problem := validate_url(tokens.refresh_server, what="The refresh server URL"):
        raise SignInRequired(f"The session cannot be renewed: {problem}", hint="Sign in again.")
    if tokens.issuer and origin_of(tokens.refresh_server) != tokens.issuer:
        # The server's refresh endpoint was changed to another site after sign-in (an
        # edit, an organisation list): the refresh token stays with its issuer.
        raise SignInRequired(
            f"The session was issued by {tokens.issuer}, but the refresh server is now "
            f"{origin_of(tokens.refresh_server)}; the refresh token is not sent there.",
            hint="Sign in again.",
        )
    with _session_for(tokens.refresh_server, ca_file, transport) as session:
        try:
            response = session.request(
                "POST",
                tokens.refresh_server,
                headers=_bearer_headers(tokens.refresh_token, tokens.aud),
            )
        except (AuthError, ServerError) as exc:
            raise SignInRequired(
                f"The session could not be renewed ({exc.message}).",
                server=session.server,
                hint="Sign in again (the refresh token expired or was revoked).",
            ) from exc
        access = _access_token_from(response, session.server)
    body = response.text.strip().strip('"')
    # The reference server does not rotate refresh tokens; accept one if a server does.
    refresh = _strip_bearer(body) if body.count(".") == 2 else tokens.refresh_token
    return msgspec.structs.replace(tokens, access_token=access, refresh_token=refresh)


# --- the auth flow -----------------------------------------------------------------------

Refresher = Callable[[TokenSet], TokenSet]
SignInHandler = Callable[[SignInRequired], TokenSet | None]


class ZhivaTokenAuth(httpx.Auth):
    """Bearer access tokens on PACS requests, renewed before expiry and once on 401/403.

    Shared by every worker thread of a client: a lock makes N threads that meet an
    expired token cause exactly one refresh. When renewal fails, `sign_in` (the app's
    handler: ask the user, wait for a new session) is called once for all waiting
    requests; they are then retried, so none is lost (request bodies are kept). Without
    a handler, or if the user cancels, `SignInRequired` is raised.
    """

    def __init__(
        self,
        tokens: TokenSet,
        *,
        refresher: Refresher | None = None,
        sign_in: SignInHandler | None = None,
        on_change: Callable[[TokenSet], None] | None = None,
        clock: Clock = time.time,
        skew: float = CLOCK_SKEW,
        ca_file: str = "",
    ) -> None:
        self._tokens = tokens
        self._refresher = refresher or (lambda t: refresh_access_token(t, ca_file=ca_file))
        self._sign_in = sign_in
        self._on_change = on_change
        self._clock = clock
        self._skew = skew
        self._lock = threading.Lock()
        self.refresh_count = 0

    @property
    def tokens(self) -> TokenSet:
        return self._tokens

    @property
    def can_edit(self) -> bool:
        return self._tokens.can_edit

    def replace_tokens(self, tokens: TokenSet) -> None:
        """Use a new session (after the user signed in again)."""
        with self._lock:
            self._set(tokens)

    def _set(self, tokens: TokenSet) -> None:
        self._tokens = tokens
        if self._on_change is not None:
            self._on_change(tokens)

    def _expiring(self, tokens: TokenSet) -> bool:
        try:
            claims = tokens.access_claims()
        except TokenError:
            return False  # an opaque token: let the server decide
        if claims.exp is None:
            return False
        margin = self._skew
        if claims.iat is not None and claims.exp > claims.iat:
            # Both times are the server's: the lifetime holds whatever our clock says.
            margin = min(margin, (claims.exp - claims.iat) * EARLY_REFRESH_FRACTION)
        return claims.exp - margin <= self._clock()

    def _renew(self, stale: TokenSet) -> TokenSet:
        """Refresh unless another thread already replaced `stale`; then sign in if needed."""
        with self._lock:
            if self._tokens.access_token != stale.access_token:
                return self._tokens  # someone else refreshed while we waited
            try:
                fresh = self._refresher(self._tokens)
                self.refresh_count += 1
            except SignInRequired as exc:
                if self._sign_in is None:
                    raise
                signed_in = self._sign_in(exc)
                if signed_in is None:
                    raise
                fresh = signed_in
            except DicomWebError as exc:
                raise SignInRequired(
                    f"The session could not be renewed ({exc.message}).",
                    server=exc.server,
                    hint="Check the connection to the token server, then sign in again.",
                ) from exc
            self._set(fresh)
            return fresh

    def _apply(self, request: httpx.Request, tokens: TokenSet) -> None:
        request.headers["Authorization"] = f"Bearer {tokens.access_token}"
        if tokens.aud:
            request.headers["Origin"] = tokens.aud

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        tokens = self._tokens
        if self._expiring(tokens):
            tokens = self._renew(tokens)
        self._apply(request, tokens)
        response = yield request
        if response.status_code not in (401, 403):
            return
        # Expired tokens come back as 401 or 403 (DESIGN.md §4): renew once and retry.
        # A 403 that survives a fresh token is a real refusal (no canEditResource).
        response.read()
        tokens = self._renew(tokens)
        self._apply(request, tokens)
        yield request

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("ZhivaTokenAuth works with the synchronous httpx.Client only")
