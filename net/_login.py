"""Zhiva login: through the system browser (RFC 8252 loopback redirect) or a form.

`LoopbackLogin` listens on 127.0.0.1 on a random port for exactly one redirect that
carries the `state` it generated, and hands back the auth token; the browser is sent to
``<auth server>/sign-in?return_uri=http://127.0.0.1:<port>/callback&state=<state>``.
`sign_user` posts a user name and password to the auth server's ``sign-user`` endpoint,
for machines without a browser. Both can be cancelled and time out.
"""

from __future__ import annotations

import html
import http.server
import secrets
import threading
import webbrowser
from collections.abc import Callable
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import msgspec

from ._auth import _session_for
from ._config import validate_url
from ._errors import AuthError, DicomWebError, ServerError, TokenError

__all__ = ["DEFAULT_LOGIN_TIMEOUT", "LoginCancelled", "LoopbackLogin", "auth_base_url", "sign_user"]

DEFAULT_LOGIN_TIMEOUT = 300.0
#: How long one connection to the loopback listener may take to send its request: any
#: local process can connect, and one that sends nothing must not hold the port.
CALLBACK_CONNECTION_TIMEOUT = 10.0
_DONE_PAGE = (
    "<!doctype html><meta charset=utf-8><title>Zhiva Viewer</title>"
    "<body style='font-family:sans-serif;background:#1e1e1e;color:#ddd'>"
    "<h2>{title}</h2><p>{text}</p></body>"
)


class LoginCancelled(AuthError):
    """The user cancelled the sign-in, or it timed out."""


def auth_base_url(auth_server_url: str) -> str:
    """``https://host/auth`` from what users paste (``.../auth/sign-in`` or ``.../auth``)."""
    url = auth_server_url.strip().rstrip("/")
    for suffix in ("/sign-in", "/sign-user"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    if problem := validate_url(url, what="Auth Server URL"):
        raise TokenError(problem)
    return url


def sign_user(
    auth_server_url: str,
    username: str,
    password: str,
    *,
    referer: str = "",
    ca_file: str = "",
    transport: httpx.BaseTransport | None = None,
) -> str:
    """Sign in with a user name and password; returns the one-off auth token."""
    url = auth_base_url(auth_server_url) + "/sign-user"
    body = msgspec.json.encode({"username": username, "password": password, "referer": referer})
    with _session_for(url, ca_file, transport) as session:
        try:
            response = session.request(
                "POST", url, headers={"Content-Type": "application/json"}, content=body
            )
        except (AuthError, ServerError) as exc:
            # The Zhiva auth server answers a wrong password with 400 "Invalid data".
            if exc.status_code in (400, 401, 403):
                raise AuthError(
                    "Wrong user name or password.",
                    server=session.server,
                    hint="Check them and try again.",
                ) from exc
            raise AuthError(
                f"The auth server refused the sign-in ({exc.message}).", server=session.server
            ) from exc
    try:
        token = msgspec.json.decode(response.content).get("token", "")
    except (msgspec.DecodeError, AttributeError) as exc:
        raise TokenError("The auth server's answer has no token.", server=session.server) from exc
    if not isinstance(token, str) or not token:
        raise TokenError("The auth server's answer has no token.", server=session.server)
    return token


class _OneShotServer(http.server.ThreadingHTTPServer):
    """One thread per connection, so an idle or slow client (any local process can
    connect) never delays the browser's redirect, the timeout or Cancel."""

    daemon_threads = True
    block_on_close = False  # close() must not wait for a client that sends nothing
    login: LoopbackLogin

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that misbehaves is ignored: no traceback on stderr, no token in it


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    server: _OneShotServer
    timeout = CALLBACK_CONNECTION_TIMEOUT

    def do_GET(self) -> None:
        login = self.server.login
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        state = query.get("state", [""])[0]
        token = query.get("token", [""])[0]
        if parts.path != "/callback" or not login.state_matches(state):
            # Not our redirect (another page, or a forged one): ignore it and keep waiting.
            self._page(
                400, "Not a Zhiva Viewer sign-in", "This address is used by Zhiva Viewer only."
            )
            return
        if not token:
            self._page(400, "Sign-in failed", "The sign-in page sent no token. Try again.")
            login._finish(error=TokenError("The sign-in page returned no token."))
            return
        self._page(200, "Signed in", "You can close this tab and return to Zhiva Viewer.")
        login._finish(token=token)

    def _page(self, status: int, title: str, text: str) -> None:
        body = _DONE_PAGE.format(title=html.escape(title), text=html.escape(text)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the query string holds the token: never log it


class LoopbackLogin:
    """One browser sign-in: `start()`, then `wait()` for the token (or `cancel()`)."""

    def __init__(
        self,
        auth_server_url: str,
        *,
        open_browser: Callable[[str], object] = webbrowser.open,
    ) -> None:
        self.auth_base = auth_base_url(auth_server_url)
        self.state = secrets.token_urlsafe(24)
        self._open_browser = open_browser
        self._done = threading.Event()
        self._token = ""
        self._error: DicomWebError | None = None
        self._server = _OneShotServer(("127.0.0.1", 0), _CallbackHandler)
        self._server.login = self
        self.port = int(self._server.server_address[1])
        self.return_uri = f"http://127.0.0.1:{self.port}/callback"
        response_type = msgspec.json.encode({"returnParams": {"state": self.state}}).decode()
        self.url = (
            f"{self.auth_base}/sign-in?return_uri={quote(self.return_uri, safe='')}"
            f"&state={quote(self.state, safe='')}"
            f"&response_type={quote(response_type, safe='')}"
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="zhiva-login", daemon=True
        )

    def state_matches(self, returned: str) -> bool:
        """Whether the redirect carries our state.

        Servers that echo `state` return it as sent. The Zhiva login page instead returns
        ``{"context": "zhiva_auth", "state": "", "params": <returnParams>}`` with the
        ``returnParams`` of the ``response_type`` parameter, where we put it too.
        """
        if self._is_our_state(returned):
            return True
        try:
            wrapped = msgspec.json.decode(returned)
        except msgspec.DecodeError:
            return False
        params = wrapped.get("params") if isinstance(wrapped, dict) else None
        nested = params.get("state") if isinstance(params, dict) else None
        return isinstance(nested, str) and self._is_our_state(nested)

    def _is_our_state(self, returned: str) -> bool:
        # compare_digest refuses non-ASCII str (TypeError): compare bytes, so a forged
        # state of any characters is simply "not ours".
        ours = self.state.encode("ascii")
        return secrets.compare_digest(returned.encode("utf-8", "surrogatepass"), ours)

    def start(self) -> str:
        """Start listening and open the browser at the sign-in page; returns its URL."""
        self._thread.start()
        self._open_browser(self.url)
        return self.url

    def _finish(self, *, token: str = "", error: DicomWebError | None = None) -> None:
        if self._done.is_set():
            return
        self._token, self._error = token, error
        self._done.set()

    def cancel(self) -> None:
        self._finish(error=LoginCancelled("Sign-in cancelled."))

    def wait(self, timeout: float = DEFAULT_LOGIN_TIMEOUT) -> str:
        """Block until the browser comes back; the auth token, or an error."""
        try:
            if not self._done.wait(timeout):
                raise LoginCancelled(
                    f"No sign-in within {timeout:g} s.", hint="Start the sign-in again."
                )
            if self._error is not None:
                raise self._error
            return self._token
        finally:
            self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
