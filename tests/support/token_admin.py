"""Test control of the token server (tests/support/token_server.py) over its admin API.

The admin endpoints listen only on the token server's loopback HTTP port; nginx does not
proxy them. The `token_admin` fixture is a `TokenServerAdmin` for the session's server.
The server is shared by the session: a test that moves its clock or changes a setting
puts it back (`clock_offset`, `settings` are context managers) or calls `reset`.
"""

from __future__ import annotations

import contextlib
import html.parser
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urljoin

import httpx

__all__ = ["TokenServerAdmin", "TokenServerStats", "login_form", "play_browser_login"]


@dataclass(frozen=True)
class TokenServerStats:
    """Calls per endpoint and status since the last reset.

    Endpoints: ``exchange`` (generate-access-token), ``refresh``, ``verify`` (nginx's
    auth_request), ``sign_user``, ``sign_in`` (the form post), ``sign_in_page``.
    """

    counts: Mapping[str, Mapping[int, int]]

    def count(self, endpoint: str, status: int | None = None) -> int:
        """Calls of ``endpoint`` that answered ``status`` (every status if None)."""
        by_status = self.counts.get(endpoint, {})
        if status is None:
            return sum(by_status.values())
        return by_status.get(status, 0)

    def ok(self, endpoint: str) -> int:
        """Successful calls (2xx, and the login form's 302)."""
        return sum(n for s, n in self.counts.get(endpoint, {}).items() if 200 <= s < 400)

    @property
    def exchanges(self) -> int:
        """Successful auth-token exchanges."""
        return self.ok("exchange")

    @property
    def refreshes(self) -> int:
        """Successful refreshes (new access tokens from a refresh token)."""
        return self.ok("refresh")

    def since(self, before: TokenServerStats) -> TokenServerStats:
        """What happened between ``before`` and this snapshot."""
        counts: dict[str, dict[int, int]] = {}
        for endpoint, by_status in self.counts.items():
            earlier = before.counts.get(endpoint, {})
            diff = {s: n - earlier.get(s, 0) for s, n in by_status.items()}
            if any(diff.values()):
                counts[endpoint] = {s: n for s, n in diff.items() if n}
        return TokenServerStats(counts)


class TokenServerAdmin:
    """A client of the token server's ``/admin/`` API."""

    def __init__(self, admin_url: str, *, timeout: float = 10.0) -> None:
        self.admin_url = admin_url.rstrip("/")
        self._client = httpx.Client(base_url=self.admin_url, timeout=timeout, trust_env=False)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> TokenServerAdmin:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, method: str, action: str, body: Mapping[str, Any] | None = None) -> Any:
        response = self._client.request(method, f"/{action}", json=body)
        if response.status_code != 200:
            raise RuntimeError(
                f"token server admin {method} /admin/{action} answered"
                f" {response.status_code}: {response.text}"
            )
        return response.json()

    # --- tokens

    def mint_auth_token(
        self,
        user: str,
        *,
        lifetime: float | None = None,
        aud: str | None = None,
        pacs: str | None = None,
        can_edit: bool | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A one-off auth token for ``user``, as the server's sign-in would issue it.

        ``lifetime`` in seconds (default 24 h; negative: already expired); ``aud`` sets the
        audience the exchange checks Origin against; ``pacs`` replaces the DICOMweb URL;
        ``can_edit`` overrides the user's ``canEditResource`` (carried into the access
        token); ``claims`` overrides any claim last (None removes it, e.g.
        ``{"refreshServer": None}``). Tokens whose claims were changed still exchange.
        """
        body: dict[str, Any] = {"username": user, "claims": dict(claims or {})}
        if lifetime is not None:
            body["lifetime"] = lifetime
        if aud is not None:
            body["aud"] = aud
        if pacs is not None:
            body["pacs"] = pacs
        if can_edit is not None:
            body["canEditResource"] = can_edit
        return str(self._call("POST", "auth-token", body)["token"])

    def expire_access_tokens(self, token: str | None = None, *, user: str | None = None) -> int:
        """Expire ``token``, or every access token of ``user``, or all; returns how many.

        The gate then answers them as expired (401 by default, see `configure`).
        """
        return int(self._call("POST", "expire-access", _selection(token, user))["expired"])

    def revoke_refresh_tokens(self, token: str | None = None, *, user: str | None = None) -> int:
        """Revoke ``token``, or every refresh token of ``user``, or all; returns how many.

        The refresh endpoint then answers 403 ``{"message": "Invalid Token"}``.
        """
        return int(self._call("POST", "revoke-refresh", _selection(token, user))["revoked"])

    # --- clock, settings, counters

    def set_clock_offset(self, seconds: float) -> float:
        """Move the server's clock (tokens issued and checked on it); returns its time."""
        return float(self._call("POST", "clock", {"offset": seconds})["now"])

    def server_time(self) -> float:
        """The server's clock (real time plus the offset)."""
        return float(self._call("GET", "clock")["now"])

    @contextlib.contextmanager
    def clock_offset(self, seconds: float) -> Iterator[float]:
        """The server's clock moved by ``seconds`` for a ``with`` block, then put back."""
        previous = float(self._call("GET", "clock")["offset"])
        try:
            yield self.set_clock_offset(seconds)
        finally:
            self.set_clock_offset(previous)

    def configure(
        self,
        *,
        verify_expired_status: int | None = None,
        bad_credentials_status: int | None = None,
        sign_in_state: str | None = None,
        access_lifetime: float | None = None,
    ) -> dict[str, Any]:
        """Switch behaviours between the brief's defaults and the reference server's.

        ``verify_expired_status``: 401 (default) or 403 (the reference's gate) for an
        expired access token. ``bad_credentials_status``: 401 (default) or 400 (the
        reference) for a wrong password. ``sign_in_state``: ``"echo"`` (default: the
        login redirect returns the caller's ``state``) or ``"reference"`` (always
        ``{"context":"zhiva_auth","state":"","params":<response_type.returnParams>}``).
        ``access_lifetime``: seconds the access tokens issued from now on live (default
        24 h). Returns every setting; `reset` restores the defaults.
        """
        values = {
            "verify_expired_status": verify_expired_status,
            "bad_credentials_status": bad_credentials_status,
            "sign_in_state": sign_in_state,
            "access_lifetime": access_lifetime,
        }
        body = {k: v for k, v in values.items() if v is not None}
        return dict(self._call("POST", "settings", body))

    @contextlib.contextmanager
    def settings(self, **values: Any) -> Iterator[dict[str, Any]]:
        """`configure` for a ``with`` block, then the previous settings again."""
        previous = dict(self._call("GET", "settings"))
        try:
            yield self.configure(**values)
        finally:
            self._call("POST", "settings", previous)

    def stats(self) -> TokenServerStats:
        raw = self._call("GET", "stats")
        return TokenServerStats(
            {name: {int(s): int(n) for s, n in by.items()} for name, by in raw.items()}
        )

    def reset(self) -> None:
        """Clock offset 0, default settings, counters zero (issued tokens stay valid)."""
        self._call("POST", "reset")

    def public_key(self) -> str:
        response = self._client.get("/public-key")
        response.raise_for_status()
        return response.text

    def set_urls(self, *, auth_url: str, pacs_url: str) -> None:
        """Where new auth tokens say the token server and the PACS are (claims)."""
        self._call("POST", "urls", {"auth_url": auth_url, "pacs_url": pacs_url})


def _selection(token: str | None, user: str | None) -> dict[str, str]:
    body = {}
    if token is not None:
        body["token"] = token
    if user is not None:
        body["username"] = user
    return body


# --- playing the browser ------------------------------------------------------------------


def login_form(page: str) -> tuple[str, dict[str, str]]:
    """The login page's form: its action and hidden fields (what a browser posts back)."""
    action = ""
    hidden: dict[str, str] = {}

    class Parser(html.parser.HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            nonlocal action
            values = dict(attrs)
            if tag == "form":
                action = values.get("action") or ""
            elif tag == "input" and values.get("type") == "hidden" and values.get("name"):
                hidden[str(values["name"])] = values.get("value") or ""

    Parser().feed(page)
    return action, hidden


def play_browser_login(
    sign_in_url: str,
    username: str,
    password: str,
    *,
    ca_file: str,
    follow_redirect: bool = True,
    timeout: float = 10.0,
) -> httpx.Response:
    """Do what the user's browser does with the URL the app opened.

    Loads ``sign_in_url`` (``<auth>/sign-in?return_uri=...&state=...``), submits the
    login form, and (``follow_redirect``) follows the 302 to ``return_uri``, typically
    the app's loopback listener, returning that last response. With a wrong password,
    or with ``follow_redirect=False``, returns the form post's own response.
    """
    context = ssl.create_default_context(cafile=ca_file)
    with httpx.Client(verify=context, timeout=timeout, trust_env=False) as browser:
        page = browser.get(sign_in_url)
        page.raise_for_status()
        action, fields = login_form(page.text)
        form = {**fields, "username": username, "password": password}
        submitted = browser.post(urljoin(str(page.url), action), data=form)
        if not follow_redirect or submitted.status_code != 302:
            return submitted
        return browser.get(submitted.headers["location"])
