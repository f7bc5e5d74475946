"""The HTTP core under the DICOMweb client: one pooled `httpx.Client` per server.

It owns what every request needs and no DICOMweb endpoint should repeat: https-only
URLs, the verifying TLS context, timeouts and pool limits, retries of idempotent
requests, redirects that drop credentials when they leave the server's origin, and
the mapping of `httpx` failures and error statuses to `net.errors`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from ._backend import install as install_coalescing
from ._config import ServerConfig, origin_of
from ._errors import (
    AuthError,
    DicomWebError,
    InsecureUrl,
    NotFound,
    ProtocolError,
    ServerError,
    TlsError,
    TransportError,
)
from ._retry import DEFAULT_RETRY, RetryPolicy
from ._tls import classify_tls_error, make_ssl_context

__all__ = ["DEFAULT_LIMITS", "MAX_REDIRECTS", "USER_AGENT", "HttpSession"]

log = logging.getLogger("net.http")

USER_AGENT = "ZhivaViewer/0.1"
#: A viewer prefetching one series needs a handful of connections; more only adds
#: TLS handshakes and load on a small PACS.
DEFAULT_LIMITS = httpx.Limits(max_connections=16, max_keepalive_connections=8, keepalive_expiry=5.0)
MAX_REDIRECTS = 5
#: Headers that carry credentials; dropped when a redirect leaves the server's origin.
CREDENTIAL_HEADERS = ("authorization", "authentication", "cookie", "proxy-authorization", "origin")
_RETRIABLE_TRANSPORT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)


#: Characters sent literally in a query string. Orthanc 1.10 does not percent-decode
#: query values (measured: ``PatientName=%2Ahantom%2A`` matches nothing, and WADO-URI
#: refuses ``contentType=application%2Fdicom``), so wildcards, the commas of
#: ``includefield``/``viewport`` lists and ``/`` must stay literal. All are legal in a
#: query (RFC 3986 sub-delims, ":", "@", "/", "?") and other servers read them the same.
_QUERY_SAFE = "*?,-._~!$'():@/"


def encode_query(params: Mapping[str, str]) -> str:
    """A query string that keeps DICOMweb's wildcards and lists literal (`_QUERY_SAFE`)."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe=_QUERY_SAFE)}" for k, v in params.items())


def _server_message(response: httpx.Response) -> str:
    """The server's own short explanation of an error, if it gave one."""
    try:
        text = response.text
    except (httpx.HTTPError, UnicodeDecodeError):
        return ""
    text = text.strip()
    if not text:
        return ""
    if text[:1] in "{[":
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, Mapping):
            parts = [
                str(body[k]) for k in ("Message", "message", "error", "Details") if body.get(k)
            ]
            if parts:
                text = " — ".join(dict.fromkeys(parts))
    if "<html" in text[:200].lower():
        return ""  # an error page says nothing a user can act on
    return text[:300]


class HttpSession:
    """A pooled, verifying, retrying HTTP session bound to one configured server."""

    def __init__(
        self,
        config: ServerConfig,
        auth: httpx.Auth | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        limits: httpx.Limits = DEFAULT_LIMITS,
    ) -> None:
        self.config = config
        self.server = config.name.strip() or origin_of(config.url)
        self.origin = origin_of(config.url)
        self.retry = retry
        self._auth = auth
        if not config.url.strip().lower().startswith("https://"):
            raise InsecureUrl(
                "Only https:// servers can be used: plain http would expose images and "
                "credentials.",
                server=self.server,
                hint="Change the Server URL to https://.",
            )
        verify = make_ssl_context(config.ca_file.strip()) if transport is None else True
        timeout = httpx.Timeout(
            connect=config.connect_timeout,
            read=config.read_timeout,
            write=config.read_timeout,
            pool=config.connect_timeout,
        )
        self._client = httpx.Client(
            verify=verify,
            timeout=timeout,
            limits=limits,
            follow_redirects=False,  # done here, so credentials never follow to another origin
            transport=transport,
            headers={"User-Agent": USER_AGENT},
            trust_env=True,  # HTTPS_PROXY / NO_PROXY
        )
        if transport is None:
            install_coalescing(self._client)

    # -- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """Send a request and read the whole answer; raise `DicomWebError` for failures."""
        response = self._send(method, url, params=params, headers=headers, content=content)
        try:
            response.read()
        except httpx.HTTPError as exc:
            raise self._map_transport(exc, url) from exc
        finally:
            response.close()
        return response

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[httpx.Response]:
        """Send a request and hand over the open response for streaming its body."""
        response = self._send(method, url, params=params, headers=headers, content=None)
        try:
            yield response
        finally:
            response.close()

    def map_error(self, exc: httpx.HTTPError, url: str) -> DicomWebError:
        """Map an `httpx` error raised while a streamed body is read."""
        return self._map_transport(exc, url)

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        content: bytes | None,
    ) -> httpx.Response:
        if not url.lower().startswith("https://"):
            raise InsecureUrl(f"Refusing plain-http URL {url}.", server=self.server)
        if params:
            url += ("&" if "?" in url else "?") + encode_query(params)
        # Logs name the endpoint, never the query (patient names, tokens in links).
        where = url.split("?", 1)[0]
        attempt = 0
        while True:
            attempt += 1
            request = self._client.build_request(method, url, headers=headers, content=content)
            started = time.perf_counter()
            try:
                response = self._send_following_redirects(request)
            except httpx.HTTPError as exc:
                mapped = self._map_transport(exc, url)
                retriable = isinstance(exc, _RETRIABLE_TRANSPORT) and not isinstance(
                    mapped, TlsError
                )
                if retriable and self.retry.may_retry(method, attempt):
                    wait = self.retry.delay(attempt)
                    if wait is not None:
                        log.info(
                            "%s %s: %s; retry %d in %.2fs",
                            method,
                            where,
                            mapped.message,
                            attempt,
                            wait,
                        )
                        self.retry.sleep(wait)
                        continue
                raise mapped from exc
            log.debug(
                "%s %s -> %d in %.0f ms",
                method,
                where,
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )
            status = response.status_code
            if status in self.retry.statuses and self.retry.may_retry(method, attempt):
                wait = self.retry.delay(attempt, response.headers.get("Retry-After"))
                if wait is not None:
                    response.close()
                    log.info(
                        "%s %s: HTTP %d; retry %d in %.2fs", method, where, status, attempt, wait
                    )
                    self.retry.sleep(wait)
                    continue
            if status >= 400:
                try:
                    response.read()
                except httpx.HTTPError:
                    pass
                finally:
                    response.close()
                raise self._map_status(response)
            return response

    def _send_following_redirects(self, request: httpx.Request) -> httpx.Response:
        auth: httpx.Auth | None = self._auth
        for _ in range(MAX_REDIRECTS + 1):
            response = self._client.send(request, auth=auth, stream=True)
            if not response.is_redirect:
                return response
            target = request.url.join(response.headers["Location"])
            response.close()
            if target.scheme != "https":
                raise InsecureUrl(
                    f"The server redirected to a plain-http address ({target.copy_with(query=None)}); "
                    "refused.",
                    server=self.server,
                    hint="Ask the administrator to redirect to https, or use the final https URL.",
                )
            headers = httpx.Headers(request.headers)
            headers.pop("host", None)
            if origin_of(str(target)) != self.origin:
                # Credentials are for this server only (RFC 9110 §15.4): never forward them.
                auth = None
                for name in CREDENTIAL_HEADERS:
                    headers.pop(name, None)
            method = request.method
            content: bytes | None = request.content if method not in ("GET", "HEAD") else None
            if response.status_code == 303 and method != "HEAD":
                method, content = "GET", None
            request = self._client.build_request(method, target, headers=headers, content=content)
        raise ProtocolError(
            f"Too many redirects (more than {MAX_REDIRECTS}).",
            server=self.server,
            hint="Check the Server URL; the server may be redirecting in a loop.",
        )

    # -- error mapping ----------------------------------------------------------------

    def _map_transport(self, exc: BaseException, url: str) -> DicomWebError:
        if isinstance(exc, DicomWebError):
            return exc
        host = httpx.URL(url).host
        tls = classify_tls_error(exc, url, server=self.server)
        if tls is not None and isinstance(exc, httpx.ConnectError):
            return tls
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return TransportError(
                f"Timed out connecting to {host}.",
                server=self.server,
                hint="Check the Server URL, that the server is running and that your network/VPN allows it.",
            )
        if isinstance(exc, httpx.TimeoutException):
            return TransportError(
                f"The server did not answer within {self.config.read_timeout:g} s.",
                server=self.server,
                hint="It may be busy: try again, or raise the read timeout in Settings > Servers.",
            )
        if isinstance(exc, httpx.ProxyError):
            return TransportError(
                f"The proxy refused the connection to {host} ({exc}).",
                server=self.server,
                hint="Check HTTPS_PROXY / NO_PROXY.",
            )
        if isinstance(exc, httpx.ConnectError):
            return TransportError(
                f"Could not connect to {host} ({exc}).",
                server=self.server,
                hint="Check the Server URL (host and port), that the server is running and that your network/VPN allows it.",
            )
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
            return TransportError(
                f"The connection to {host} was dropped ({type(exc).__name__}).",
                server=self.server,
                hint="Try again; if it keeps happening, the server or a proxy is closing connections.",
            )
        if isinstance(exc, httpx.UnsupportedProtocol):
            return InsecureUrl(f"Unsupported URL {url}.", server=self.server)
        if isinstance(exc, httpx.DecodingError):
            return ProtocolError(f"The answer could not be decoded ({exc}).", server=self.server)
        return TransportError(f"Request to {host} failed ({exc}).", server=self.server)

    def _map_status(self, response: httpx.Response) -> DicomWebError:
        status = response.status_code
        said = _server_message(response)
        what = f"HTTP {status} {response.reason_phrase}".strip()
        detail = f"{what}: {said}" if said else what
        kwargs: dict[str, Any] = {
            "server": self.server,
            "request": response.request,
            "response": response,
        }
        if status in (401, 403):
            return AuthError(
                f"The server refused access ({detail}).",
                hint=(
                    "Check the user name and password, or sign in again."
                    if status == 401
                    else "Your account may not be allowed to do this, or your sign-in expired: sign in again."
                ),
                **kwargs,
            )
        if status == 404:
            return NotFound(
                f"Not found ({detail}).", hint="Check the URL and postfix fields.", **kwargs
            )
        if status >= 500:
            return ServerError(
                f"The server failed ({detail}).",
                hint="Try again later; if it persists, the server's log has the cause.",
                **kwargs,
            )
        return ServerError(
            f"The server did not accept the request ({detail}).",
            hint="The server may not support this DICOMweb feature; check the server settings.",
            **kwargs,
        )
