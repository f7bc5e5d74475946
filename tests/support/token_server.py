"""A Zhiva token server for the tests, run as a separate process behind the test nginx.

It follows zhiva-ai/pacs-token-server (DESIGN.md §4) where the client can see the
difference, with the status codes that server answers:

``POST /auth/generate-access-token`` (``Authorization: Bearer <auth token>``)
    200: the access token in the ``Authorization: Bearer`` response header, the refresh
    token as the text body (``text/html``, as Express sends a string). 401 without the
    header; 500 for a token that is malformed, badly signed or expired (the reference's
    JWT library throws, which it maps to 500); 403 when the token has ``aud`` and the
    request's ``Origin`` differs, or when it is not an auth token this server issued or
    was already exchanged (one-time). The new tokens' ``aud`` is the request's Origin.
``POST /auth/refresh-token`` (``Authorization: Bearer <refresh token>``)
    200: a new access token in the ``Authorization`` header, empty body; the refresh token
    is not rotated. 401 without the header; 403 for an unknown or revoked refresh token or
    when ``Origin`` differs from its ``aud`` (strictly: no aud needs no Origin); 500 when
    it is expired or malformed.
``GET /auth/sign-in?return_uri=&state=&response_type=``
    The login page: a form that posts back to ``/auth/sign-in`` (served without script,
    so an HTTP client can play the browser).
``POST /auth/sign-in`` (form: username, password, return_uri, state, response_type, referer)
    302 to ``<return_uri>?token=<auth token>&state=<state>``; the bad-credentials status
    (401, or 400 as the reference answers) with the form again; 400 without return_uri.
``POST /auth/sign-user`` (JSON ``{username, password, referer}``)
    200 ``{"token": <auth token>}`` whose ``aud`` is ``referer`` when the body has one;
    400 ``{"message"}`` for a missing name or password; the bad-credentials status
    (default 401; the reference answers 400 "Invalid data") for a wrong one.
``GET /auth/verify`` (nginx ``auth_request``; ``X-Original-Method``, ``Origin``)
    204 for a valid access token; 401 when the token is missing, not a Bearer JWT, badly
    signed or not an access token of this server; the expired status (default 401) when
    it is past ``exp`` on this server's clock or expired by the admin; 403 when it has
    ``aud`` and Origin differs, or for a method other than GET/HEAD without
    ``canEditResource``.

Test-control endpoints under ``/admin/`` are reachable only on the loopback port (nginx
proxies ``/auth/`` alone): see `TokenService.admin` and tests/support/token_admin.py.

Run: ``python -m tests.support.token_server --keys DIR --users FILE --port-file FILE``.
It binds 127.0.0.1 on a kernel-chosen port (``--port 0``) and writes that port to
``--port-file`` once it listens, so no other process can take it in between.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import secrets
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "ACCESS_LIFETIME",
    "AUTH_LIFETIME",
    "ISSUER",
    "REFRESH_LIFETIME",
    "Reply",
    "Request",
    "TokenService",
    "UserRecord",
    "bearer_token",
    "generate_keys",
    "load_users",
    "redirect_location",
    "reference_state",
    "write_users",
]

ISSUER = "zhiva.ai"
AUTH_LIFETIME = 24 * 3600  # the reference's default "24h"
ACCESS_LIFETIME = 24 * 3600  # ACCESS_TOKEN_EXPIRATION = "24h"
REFRESH_LIFETIME = 30 * 24 * 3600  # REFRESH_TOKEN_EXPIRATION = "30d"

# The reference's messages (utils/jwt.ts, db/schemas/user.ts).
INVALID_TOKEN = "Invalid Token"
MISSING_TOKEN = "Missing Token"
EXPIRED_TOKEN = "Token Expired"
UNAUTHORIZED = "Unauthorized"
OTHER_ERROR = "Unexpected error"
INVALID_DATA = "Invalid data"
USERNAME_MISSING = "username not valid"

TokenKind = Literal["auth", "access", "refresh"]
READ_METHODS = frozenset({"GET", "HEAD"})
PRIVATE_KEY_FILE = "private.pem"
PUBLIC_KEY_FILE = "public.pem"


# --- pure helpers -----------------------------------------------------------------------


def bearer_token(header: str | None) -> str | None:
    """The token of an Authorization header, as the reference's ``trimJWT`` reads it.

    ``Bearer x`` (any case) gives ``x``; a bare value is taken as the token; no header
    or an empty one gives None.
    """
    if header is None:
        return None
    value = header.strip()
    if value.lower().startswith("bearer"):
        value = value[len("bearer") :].strip()
    return value or None


def reference_state(response_type: str | None) -> str:
    """The ``state`` the reference login page returns: it ignores the caller's ``state``.

    ``JSON.stringify({context: "zhiva_auth", state: "", params: returnParams})`` where
    ``returnParams`` comes from the ``response_type`` query parameter (JSON), if any.
    """
    params: object = {}
    if response_type:
        try:
            parsed = json.loads(response_type)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            params = parsed.get("returnParams", {})
    return json.dumps(
        {"context": "zhiva_auth", "state": "", "params": params},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def redirect_location(return_uri: str, token: str, state: str) -> str:
    """``return_uri?token=..&state=..`` (``&`` if return_uri already has a query).

    Encoded like the page's ``URLSearchParams`` (spaces as ``+``).
    """
    separator = "&" if "?" in return_uri else "?"
    return f"{return_uri}{separator}{urlencode({'token': token, 'state': state})}"


@dataclass(frozen=True)
class UserRecord:
    username: str
    password: str
    name: str
    can_edit: bool


def write_users(path: Path, users: Mapping[str, UserRecord]) -> None:
    """Write the users file the server reads (passwords in clear: test users only)."""
    data = {
        u.username: {"password": u.password, "name": u.name, "canEditResource": u.can_edit}
        for u in users.values()
    }
    path.write_text(json.dumps(data, indent=2))
    path.chmod(0o600)


def load_users(path: Path) -> dict[str, UserRecord]:
    raw = json.loads(path.read_text())
    return {
        name: UserRecord(
            username=name,
            password=str(entry["password"]),
            name=str(entry.get("name", name)),
            can_edit=bool(entry.get("canEditResource", False)),
        )
        for name, entry in raw.items()
    }


def generate_keys(directory: Path) -> tuple[Path, Path]:
    """A fresh RS256 key pair as PEM files in ``directory``: (private, public)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = directory / PRIVATE_KEY_FILE
    public = directory / PUBLIC_KEY_FILE
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    private.chmod(0o600)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


# --- requests and replies -----------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query, as in the request line
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        query = parse_qs(urlsplit(self.target).query, keep_blank_values=True)
        return {k: v[0] for k, v in query.items()}

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, status: int, value: object, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
        return cls(status, json.dumps(value).encode(), "application/json; charset=utf-8", headers)

    @classmethod
    def message(cls, status: int, text: str) -> Reply:
        """The reference's error body: ``{"message": text}``."""
        return cls.json(status, {"message": text})

    @classmethod
    def html(cls, status: int, text: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
        return cls(status, text.encode(), "text/html; charset=utf-8", headers)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


# --- the service --------------------------------------------------------------------------


@dataclass
class TokenRecord:
    """A token this server issued (the reference keeps them in MongoDB)."""

    kind: TokenKind
    username: str
    claims: dict[str, Any]
    used: bool = False  # auth tokens: exchanged already
    expired: bool = False  # access tokens: expired by the admin
    revoked: bool = False  # refresh tokens: revoked by the admin


@dataclass
class Settings:
    """Where the tests may choose between the reference's behaviour and a stricter one."""

    # Status of an expired access token at the gate (the reference's verify answers 403).
    verify_expired_status: int = 401
    # Status of a wrong user name or password (the reference answers 400 "Invalid data").
    bad_credentials_status: int = 401
    # "echo": the login redirect carries the caller's `state`, or the reference's JSON
    # when there is none; "reference": always the reference's JSON (it ignores `state`).
    sign_in_state: str = "echo"
    # Lifetime of the access tokens issued from now on, in seconds (None: the default).
    access_lifetime: float | None = None

    def update(self, values: Mapping[str, object]) -> None:
        for key, value in values.items():
            if key == "access_lifetime" and (
                value is None or (isinstance(value, int | float) and value > 0)
            ):
                self.access_lifetime = None if value is None else float(value)
            elif key == "verify_expired_status" and isinstance(value, int) and value in (401, 403):
                self.verify_expired_status = value
            elif key == "bad_credentials_status" and isinstance(value, int) and value in (400, 401):
                self.bad_credentials_status = value
            elif (
                key == "sign_in_state" and isinstance(value, str) and value in ("echo", "reference")
            ):
                self.sign_in_state = value
            else:
                raise ValueError(f"unknown setting or value: {key}={value!r}")

    def as_dict(self) -> dict[str, object]:
        return {
            "verify_expired_status": self.verify_expired_status,
            "bad_credentials_status": self.bad_credentials_status,
            "sign_in_state": self.sign_in_state,
            "access_lifetime": self.access_lifetime,
        }


@dataclass
class Lifetimes:
    auth: float = AUTH_LIFETIME
    access: float = ACCESS_LIFETIME
    refresh: float = REFRESH_LIFETIME


class BadRequest(Exception):
    pass


class TokenService:
    """The token server's logic, without HTTP: `handle` maps a `Request` to a `Reply`.

    Thread-safe: one lock around the token registry, clock, settings and counters.
    """

    def __init__(
        self,
        private_key_pem: bytes,
        public_key_pem: bytes,
        users: Mapping[str, UserRecord],
        *,
        auth_url: str = "https://localhost/auth",
        pacs_url: str = "https://localhost/zhiva/pacs",
        lifetimes: Lifetimes | None = None,
        time_source: Callable[[], float] = time.time,
    ) -> None:
        self._private_key = serialization.load_pem_private_key(private_key_pem, password=None)
        self._public_key = serialization.load_pem_public_key(public_key_pem)
        self._public_pem = public_key_pem
        self._users = dict(users)
        self.auth_url = auth_url.rstrip("/")
        self.pacs_url = pacs_url.rstrip("/")
        self.lifetimes = lifetimes or Lifetimes()
        self._time = time_source
        self._lock = threading.RLock()
        self._tokens: dict[str, TokenRecord] = {}
        self._clock_offset = 0.0
        self._settings = Settings()
        self._stats: dict[str, Counter[int]] = {}

    # --- clock and tokens

    def now(self) -> float:
        """This server's clock: real time plus the offset the tests set."""
        return self._time() + self._clock_offset

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._private_key, algorithm="RS256")  # type: ignore[arg-type]

    def _decode(self, token: str) -> dict[str, Any]:
        """Signature and issuer; times are checked by the callers, on this server's clock."""
        claims: dict[str, Any] = jwt.decode(
            token,
            self._public_key,  # type: ignore[arg-type]
            algorithms=["RS256"],
            issuer=ISSUER,
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
                "require": ["exp", "iat", "iss"],
            },
        )
        return claims

    def _expired(self, claims: Mapping[str, Any]) -> bool:
        # jsonwebtoken: expired once now >= exp.
        return self.now() >= float(claims["exp"])

    def _issue(
        self, kind: TokenKind, username: str, claims: dict[str, Any], lifetime: float
    ) -> str:
        now = int(self.now())
        payload = {
            **claims,
            "iat": now,
            "exp": int(now + lifetime),
            "iss": ISSUER,
            "jti": secrets.token_hex(8),  # unique, even for equal claims in one second
        }
        payload = {k: v for k, v in payload.items() if v is not None}
        token = self._sign(payload)
        self._tokens[token] = TokenRecord(kind, username, payload)
        return token

    def mint_auth_token(
        self,
        username: str,
        *,
        can_edit: bool | None = None,
        aud: str | None = None,
        pacs: str | None = None,
        lifetime: float | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A one-off auth token for a known user, registered for one exchange.

        ``claims`` overrides or (with None) removes claims after the defaults.
        """
        user = self._users.get(username)
        if user is None:
            raise KeyError(f"no user {username!r}")
        base: dict[str, Any] = {
            "name": user.name,
            "username": user.username,
            "canEditResource": user.can_edit if can_edit is None else can_edit,
            "tokenServer": f"{self.auth_url}/generate-access-token",
            "refreshServer": f"{self.auth_url}/refresh-token",
            "pacs": self.pacs_url if pacs is None else pacs,
            "aud": aud,
        }
        with self._lock:
            now = int(self.now())
            payload = {
                **base,
                "iat": now,
                "exp": int(now + (self.lifetimes.auth if lifetime is None else lifetime)),
                "iss": ISSUER,
                "jti": secrets.token_hex(8),
            }
            payload.update(claims or {})
            payload = {k: v for k, v in payload.items() if v is not None}
            token = self._sign(payload)
            self._tokens[token] = TokenRecord("auth", username, payload)
            return token

    def _access_lifetime(self) -> float:
        return self._settings.access_lifetime or self.lifetimes.access

    def _session_claims(self, record: TokenRecord, origin: str | None) -> dict[str, Any]:
        # The reference copies name, username and canEditResource, and sets aud to the
        # request's Origin (absent without one).
        return {
            "name": record.claims.get("name"),
            "username": record.username,
            "canEditResource": bool(record.claims.get("canEditResource", False)),
            "aud": origin,
        }

    # --- the protocol

    def exchange(self, request: Request) -> Reply:
        header = request.header("authorization")
        if not header:
            return Reply.message(401, MISSING_TOKEN)
        token = bearer_token(header) or ""
        origin = request.header("origin")
        with self._lock:
            try:
                claims = self._decode(token)
            except jwt.InvalidTokenError:
                return Reply.message(500, OTHER_ERROR)
            if self._expired(claims):
                return Reply.message(500, OTHER_ERROR)  # "jwt expired" is not a known code
            if claims.get("aud") and origin != claims["aud"]:
                return Reply.message(403, INVALID_TOKEN)
            record = self._tokens.get(token)
            if record is None or record.kind != "auth" or record.used:
                return Reply.message(403, INVALID_TOKEN)
            record.used = True
            session = self._session_claims(record, origin)
            access = self._issue("access", record.username, session, self._access_lifetime())
            refresh = self._issue("refresh", record.username, session, self.lifetimes.refresh)
        return Reply(
            200,
            refresh.encode(),
            "text/html; charset=utf-8",
            (("Authorization", f"Bearer {access}"),),
        )

    def refresh(self, request: Request) -> Reply:
        header = request.header("authorization")
        if not header:
            return Reply.message(401, MISSING_TOKEN)
        token = bearer_token(header) or ""
        origin = request.header("origin")
        with self._lock:
            record = self._tokens.get(token)
            if record is None or record.kind != "refresh" or record.revoked:
                return Reply.message(403, INVALID_TOKEN)
            try:
                claims = self._decode(token)
            except jwt.InvalidTokenError:
                return Reply.message(500, OTHER_ERROR)
            if self._expired(claims):  # the JWT library's "jwt expired": 500
                return Reply.message(500, OTHER_ERROR)
            if origin != claims.get("aud"):
                return Reply.message(403, INVALID_TOKEN)
            session = self._session_claims(record, origin)
            access = self._issue("access", record.username, session, self._access_lifetime())
        return Reply(200, b"", None, (("Authorization", f"Bearer {access}"),))

    def verify(self, request: Request) -> Reply:
        challenge = (("WWW-Authenticate", 'Bearer realm="zhiva"'),)
        invalid = (("WWW-Authenticate", 'Bearer realm="zhiva", error="invalid_token"'),)
        header = request.header("authorization")
        token = bearer_token(header) if header and header.lower().startswith("bearer") else None
        if token is None:
            return Reply(401, headers=challenge)
        origin = request.header("origin")
        method = (request.header("x-original-method") or "GET").upper()
        with self._lock:
            try:
                claims = self._decode(token)
            except jwt.InvalidTokenError:
                return Reply(401, headers=invalid)
            record = self._tokens.get(token)
            if record is None or record.kind != "access":
                return Reply(401, headers=invalid)
            if claims.get("aud") and origin != claims["aud"]:
                return Reply(403)
            if record.expired or self._expired(claims):
                status = self._settings.verify_expired_status
                return Reply(status, headers=invalid if status == 401 else ())
            if method not in READ_METHODS and not claims.get("canEditResource"):
                return Reply(403)
        return Reply(204)

    def _check_user(self, username: str, password: str) -> UserRecord | None:
        user = self._users.get(username)
        if user is None or not secrets.compare_digest(user.password, password):
            return None
        return user

    def sign_user(self, request: Request) -> Reply:
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return Reply.message(400, USERNAME_MISSING)
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not username:
            return Reply.message(400, USERNAME_MISSING)
        if not isinstance(password, str) or not password:
            return Reply.message(400, INVALID_DATA)
        if self._check_user(username, password) is None:
            return Reply.message(self._settings.bad_credentials_status, INVALID_DATA)
        referer = body.get("referer")
        # aud = referer, even "" (the page sends document.referrer, often empty).
        token = self.mint_auth_token(username, aud=referer if isinstance(referer, str) else None)
        return Reply.json(200, {"token": token})

    def sign_in_page(self, request: Request) -> Reply:
        return Reply.html(200, _login_page(request.query, ""))

    def sign_in_submit(self, request: Request) -> Reply:
        text = request.body.decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
        fields = {k: form.get(k, "") for k in ("return_uri", "state", "response_type")}
        return_uri = fields["return_uri"]
        user = self._check_user(form.get("username", ""), form.get("password", ""))
        if user is None:
            status = self._settings.bad_credentials_status
            return Reply.html(status, _login_page(fields, INVALID_DATA))
        if not return_uri:
            return Reply.html(400, _login_page(fields, "return_uri is missing"))
        token = self.mint_auth_token(user.username, aud=form.get("referer", ""))
        if self._settings.sign_in_state == "echo" and "state" in form:
            state = form["state"]
        else:
            state = reference_state(fields["response_type"] or None)
        location = redirect_location(return_uri, token, state)
        return Reply.html(
            302,
            f'<p>Redirecting to <a href="{html.escape(location)}">the application</a>.</p>',
            (("Location", location), ("Cache-Control", "no-store")),
        )

    # --- dispatch

    _ROUTES: Mapping[tuple[str, str], tuple[str, str]] = {
        ("POST", "/auth/generate-access-token"): ("exchange", "exchange"),
        ("POST", "/auth/refresh-token"): ("refresh", "refresh"),
        ("POST", "/auth/sign-user"): ("sign_user", "sign_user"),
        ("GET", "/auth/sign-in"): ("sign_in_page", "sign_in_page"),
        ("POST", "/auth/sign-in"): ("sign_in", "sign_in_submit"),
    }

    def handle(self, request: Request) -> Reply:
        path = request.path
        if path.startswith("/admin/"):
            return self.admin(request)
        if path == "/auth/verify":  # nginx subrequests are GETs; accept any method
            name, handler = "verify", self.verify
        elif (request.method, path) in self._ROUTES:
            name, method = self._ROUTES[(request.method, path)]
            handler = getattr(self, method)
        else:
            return Reply.message(404, f"Cannot {request.method} {path}")
        reply: Reply = handler(request)
        with self._lock:
            self._stats.setdefault(name, Counter())[reply.status] += 1
        return reply

    # --- test control

    def stats(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                name: {str(status): n for status, n in sorted(counts.items())}
                for name, counts in sorted(self._stats.items())
            }

    def reset(self) -> None:
        """Clock offset, settings and counters back to the start (tokens stay)."""
        with self._lock:
            self._clock_offset = 0.0
            self._settings = Settings()
            self._stats.clear()

    def _select(self, kind: TokenKind, body: Mapping[str, Any]) -> list[TokenRecord]:
        token, username = body.get("token"), body.get("username")
        if token is not None:
            record = self._tokens.get(bearer_token(str(token)) or "")
            return [record] if record is not None and record.kind == kind else []
        return [
            r
            for r in self._tokens.values()
            if r.kind == kind and (username is None or r.username == username)
        ]

    def admin(self, request: Request) -> Reply:
        """The test-control API (loopback only): JSON in, JSON out."""
        action = request.path.removeprefix("/admin/")
        try:
            body = json.loads(request.body) if request.body else {}
            if not isinstance(body, dict):
                raise BadRequest("the body must be a JSON object")
            return self._admin(request.method, action, body)
        except (BadRequest, KeyError, ValueError, TypeError) as exc:
            return Reply.json(400, {"error": f"{type(exc).__name__}: {exc}"})

    def _admin(self, method: str, action: str, body: dict[str, Any]) -> Reply:
        get, post = method == "GET", method == "POST"
        if get and action == "health":
            return Reply.json(200, {"ok": True, "pid": os.getpid()})
        if get and action == "public-key":
            return Reply(200, self._public_pem, "application/x-pem-file")
        if get and action == "stats":
            return Reply.json(200, self.stats())
        if action == "clock" and (get or post):
            with self._lock:
                if post:
                    self._clock_offset = float(body["offset"])
                return Reply.json(200, {"offset": self._clock_offset, "now": self.now()})
        if action == "settings" and (get or post):
            with self._lock:
                if post:
                    self._settings.update(body)
                return Reply.json(200, self._settings.as_dict())
        if post and action == "urls":
            with self._lock:
                self.auth_url = str(body.get("auth_url", self.auth_url)).rstrip("/")
                self.pacs_url = str(body.get("pacs_url", self.pacs_url)).rstrip("/")
                return Reply.json(200, {"auth_url": self.auth_url, "pacs_url": self.pacs_url})
        if post and action == "reset":
            self.reset()
            return Reply.json(200, {"ok": True})
        if post and action == "auth-token":
            can_edit = body.get("canEditResource")
            token = self.mint_auth_token(
                str(body["username"]),
                can_edit=None if can_edit is None else bool(can_edit),
                aud=body.get("aud"),
                pacs=body.get("pacs"),
                lifetime=None if body.get("lifetime") is None else float(body["lifetime"]),
                claims=body.get("claims"),
            )
            with self._lock:
                claims = self._tokens[token].claims
            return Reply.json(200, {"token": token, "claims": claims})
        if post and action == "expire-access":
            with self._lock:
                records = [r for r in self._select("access", body) if not r.expired]
                for record in records:
                    record.expired = True
            return Reply.json(200, {"expired": len(records)})
        if post and action == "revoke-refresh":
            with self._lock:
                records = [r for r in self._select("refresh", body) if not r.revoked]
                for record in records:
                    record.revoked = True
            return Reply.json(200, {"revoked": len(records)})
        return Reply.json(404, {"error": f"no admin endpoint {method} /admin/{action}"})


_LOGIN_PAGE = """\
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Token Form | zhiva.ai (test server)</title></head>
<body>
<h1>Login with zhiva.ai</h1>
{error}<form id="loginForm" method="post" action="/auth/sign-in">
<label for="username">Username</label>
<input type="text" required id="username" name="username">
<label for="password">Password</label>
<input type="password" required id="password" name="password">
{hidden}<input type="submit" value="Sign in">
</form>
</body>
</html>
"""


def _login_page(fields: Mapping[str, str], error: str) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(fields[name])}">\n'
        for name in ("return_uri", "state", "response_type")
        if name in fields
    )
    shown = f'<p id="formError">{html.escape(error)}</p>\n' if error else ""
    return _LOGIN_PAGE.format(error=shown, hidden=hidden)


# --- HTTP ---------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive with nginx's upstream pool
    server_version = "ZhivaTestTokenServer/1.0"
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        request = Request(
            method=self.command,
            target=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            reply = self.server.service.handle(request)
        except Exception:
            traceback.print_exc()
            reply = Reply.message(500, OTHER_ERROR)
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD" and reply.body:
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        # Paths only: never log tokens (they travel in headers and the 302's Location).
        sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], service: TokenService) -> None:
        super().__init__(address, _Handler)
        self.service = service


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: the kernel picks one")
    parser.add_argument("--port-file", type=Path, help="written with the port once listening")
    parser.add_argument("--keys", type=Path, required=True, help="directory of the RS256 keys")
    parser.add_argument("--users", type=Path, required=True, help="JSON users file")
    parser.add_argument("--auth-url", default="https://localhost/auth")
    parser.add_argument("--pacs-url", default="https://localhost/zhiva/pacs")
    parser.add_argument("--auth-lifetime", type=float, default=AUTH_LIFETIME)
    parser.add_argument("--access-lifetime", type=float, default=ACCESS_LIFETIME)
    parser.add_argument("--refresh-lifetime", type=float, default=REFRESH_LIFETIME)
    args = parser.parse_args(argv)

    private, public = args.keys / PRIVATE_KEY_FILE, args.keys / PUBLIC_KEY_FILE
    if not (private.is_file() and public.is_file()):
        private, public = generate_keys(args.keys)
    service = TokenService(
        private.read_bytes(),
        public.read_bytes(),
        load_users(args.users),
        auth_url=args.auth_url,
        pacs_url=args.pacs_url,
        lifetimes=Lifetimes(args.auth_lifetime, args.access_lifetime, args.refresh_lifetime),
    )
    server = _Server((args.host, args.port), service)
    port = server.server_address[1]
    if args.port_file is not None:
        partial = args.port_file.with_name(args.port_file.name + ".partial")
        partial.write_text(f"{port}\n")
        partial.replace(args.port_file)  # atomic: readers see the whole number or nothing
    print(f"token server listening on http://{args.host}:{port}", file=sys.stderr, flush=True)
    server.serve_forever()  # until SIGTERM (default action: exit)


if __name__ == "__main__":
    main()
