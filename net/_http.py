"""The HTTP core under the DICOMweb client: one pooled `httpx.Client` per server.

It owns what every request needs and no DICOMweb endpoint should repeat: https-only
URLs, the verifying TLS context, timeouts and pool limits, a deadline per request
(`net._body.Watch`), bodies read within a size limit and decoded incrementally,
retries of idempotent requests within a time budget, redirects that drop credentials
when they leave the server's origin, and the mapping of `httpx` failures and error
statuses to `net.errors`.
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
from ._backend import watched
from ._body import ACCEPT_ENCODING, Watch, describe_size, make_decoder
from ._config import ServerConfig, origin_of
from ._errors import (
    AnswerTooLarge,
    AuthError,
    DicomWebError,
    InsecureUrl,
    NotFound,
    ProtocolError,
    ServerError,
    TlsError,
    TransportError,
)
from ._limits import DEFAULT_DEADLINES, DEFAULT_SIZE_LIMITS, Deadlines, SizeLimits
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
    except (httpx.HTTPError, UnicodeDecodeError, LookupError):
        return ""
    text = text.strip()
    if not text:
        return ""
    if text[:1] in "{[":
        try:
            body = json.loads(text)
        except (ValueError, RecursionError):  # nested 10,000 deep is still not a message
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
        size_limits: SizeLimits = DEFAULT_SIZE_LIMITS,
        deadlines: Deadlines = DEFAULT_DEADLINES,
    ) -> None:
        self.config = config
        self.server = config.name.strip() or origin_of(config.url)
        self.origin = origin_of(config.url)
        self.retry = retry
        self.size_limits = size_limits
        self.deadlines = deadlines
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
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
            trust_env=True,  # HTTPS_PROXY / NO_PROXY
        )
        if transport is None:
            install_coalescing(self._client)

    # -- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        self._client.close()

    @property
    def closed(self) -> bool:
        return self._client.is_closed

    @property
    def auth(self) -> httpx.Auth | None:
        return self._auth

    def __enter__(self) -> HttpSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- deadlines --------------------------------------------------------------------

    def request_watch(self) -> Watch:
        """The deadline of a request that must be complete in `Deadlines.request`."""
        return Watch(total=self.deadlines.request, clock=self.retry.clock)

    def stream_watch(self) -> Watch:
        """The progress rule of a long stream: no total deadline, but no stall either."""
        d = self.deadlines
        return Watch(
            window=d.progress_window, window_bytes=d.progress_bytes, clock=self.retry.clock
        )

    # -- requests ---------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        limit: str = "json_bytes",
        max_bytes: int | None = None,
        what: str = "The answer",
        watch: Watch | None = None,
    ) -> httpx.Response:
        """Send a request and read the whole answer; raise `DicomWebError` for failures.

        The body may be at most the `SizeLimits` field named `limit` once decoded (or
        `max_bytes`, a cap of the caller's own that `limit` then names); more raises
        `AnswerTooLarge` (`what` names the answer). The request is bounded by `watch`
        (default: the total deadline `Deadlines.request`).
        """
        watch = watch or self.request_watch()
        cap = int(getattr(self.size_limits, limit)) if max_bytes is None else max_bytes
        response = self._send(
            method, url, params=params, headers=headers, content=content, watch=watch
        )
        try:
            declared = _declared_length(response)
            if declared is not None and declared > cap:
                raise self._too_large(what, limit, cap, response)
            pieces: list[bytes] = []
            size = 0
            for piece in self.iter_body(response, watch, url):
                size += len(piece)
                if size > cap:
                    raise self._too_large(what, limit, cap, response)
                pieces.append(piece)
            try:
                body = b"".join(pieces)
            except MemoryError:
                raise self._too_large(what, limit, size, response) from None
        finally:
            response.close()
        # What `Response.read()` would have stored: callers use `.content` and `.text`.
        response._content = body
        return response

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        watch: Watch | None = None,
    ) -> Iterator[httpx.Response]:
        """Send a request and hand over the open response; read it with `iter_body`."""
        watch = watch or self.request_watch()
        response = self._send(
            method, url, params=params, headers=headers, content=None, watch=watch
        )
        try:
            yield response
        finally:
            response.close()

    def iter_body(self, response: httpx.Response, watch: Watch, url: str) -> Iterator[bytes]:
        """The decoded body in pieces as they arrive, within `watch`; errors mapped.

        Pieces are what the network delivered (the coalescing backend makes them up to
        256 KiB); a compressed body is decoded at most 1 MiB per piece.
        """
        if hasattr(response, "_content"):
            # Read already: by an auth flow that needed the body, or a mock transport.
            yield response.content
            return
        decoder = make_decoder(response.headers.get("content-encoding", ""), server=self.server)
        raw = response.iter_raw()
        clock = watch.clock
        try:
            while True:
                with watched(watch):
                    chunk = next(raw, None)
                if chunk is None:
                    break
                watch.received(len(chunk))
                if watch.expired():  # also without the coalescing backend (other transports)
                    raise self._deadline_error(watch, url)
                away = clock()
                if decoder is None:
                    yield chunk
                else:
                    yield from decoder.feed(chunk)
                watch.paused(clock() - away)
            if decoder is not None:
                yield from decoder.flush()
        except httpx.HTTPError as exc:
            raise self._map_transport(exc, url, watch) from exc

    def _too_large(
        self, what: str, limit: str, max_bytes: int, response: httpx.Response
    ) -> AnswerTooLarge:
        return AnswerTooLarge(
            f"{what} is larger than {describe_size(max_bytes)}, the most this viewer reads "
            f"(size limit {limit}); reading stopped.",
            server=self.server,
            hint="Narrow the request (e.g. a smaller search); if the answer is genuine, "
            "ask for the limit to be raised.",
            limit=limit,
            max_bytes=max_bytes,
            request=response.request,
            response=response,
        )

    def _deadline_error(self, watch: Watch, url: str) -> TransportError:
        host = httpx.URL(url).host
        return TransportError(
            watch.describe(host),
            server=self.server,
            hint="The server or the network is too slow right now: try again later.",
        )

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        watch: Watch,
    ) -> httpx.Response:
        if not url.lower().startswith("https://"):
            raise InsecureUrl(f"Refusing plain-http URL {url}.", server=self.server)
        if params:
            url += ("&" if "?" in url else "?") + encode_query(params)
        # Logs name the endpoint, never the query (patient names, tokens in links).
        where = url.split("?", 1)[0]
        attempt = 0
        retry = self.retry
        first_try = retry.clock()
        while True:
            attempt += 1
            request = self._client.build_request(method, url, headers=headers, content=content)
            started = time.perf_counter()
            try:
                with watched(watch):
                    response = self._send_following_redirects(request)
            except httpx.HTTPError as exc:
                mapped = self._map_transport(exc, url, watch)
                retriable = isinstance(exc, _RETRIABLE_TRANSPORT) and not isinstance(
                    mapped, TlsError
                )
                if retriable and retry.may_retry(method, attempt):
                    wait = self._retry_wait(attempt, None, first_try, watch)
                    if wait is not None:
                        log.info(
                            "%s %s: %s; retry %d in %.2fs",
                            method,
                            where,
                            mapped.message,
                            attempt,
                            wait,
                        )
                        retry.sleep(wait)
                        watch.paused(wait)
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
            if status in retry.statuses and retry.may_retry(method, attempt):
                wait = self._retry_wait(
                    attempt, response.headers.get("Retry-After"), first_try, watch
                )
                if wait is not None:
                    response.close()
                    log.info(
                        "%s %s: HTTP %d; retry %d in %.2fs", method, where, status, attempt, wait
                    )
                    retry.sleep(wait)
                    watch.paused(wait)
                    continue
            if status >= 400:
                self._read_error_body(response, watch, url)
                raise self._map_status(response)
            return response

    def _retry_wait(
        self, attempt: int, retry_after: str | None, first_try: float, watch: Watch
    ) -> float | None:
        """How long to wait before the next attempt; None when the budget is spent: the
        policy's total retry time, and the request's own deadline."""
        wait = self.retry.delay(attempt, retry_after)
        if wait is None:
            return None
        if self.retry.clock() - first_try + wait > self.retry.max_retry_time:
            return None
        if watch.total_at is not None and self.retry.clock() + wait >= watch.total_at:
            return None
        return wait

    def _read_error_body(self, response: httpx.Response, watch: Watch, url: str) -> None:
        """Keep the start of an error answer for its message; never more than
        `SizeLimits.error_bytes`, never an error of its own."""
        limit = self.size_limits.error_bytes
        pieces: list[bytes] = []
        size = 0
        try:
            for piece in self.iter_body(response, watch, url):
                pieces.append(piece[: limit - size])
                size += len(pieces[-1])
                if size >= limit:
                    break
        except DicomWebError:
            pass  # the status says enough
        finally:
            response.close()
        response._content = b"".join(pieces)

    def _send_following_redirects(self, request: httpx.Request) -> httpx.Response:
        auth: httpx.Auth | None = self._auth
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = self._client.send(request, auth=auth, stream=True)
            except httpx.RemoteProtocolError as exc:
                # httpx reads every Location, even when it follows none itself.
                if "location header" not in str(exc).lower():
                    raise
                raise ProtocolError(
                    "The server redirected to an invalid address.",
                    server=self.server,
                    hint="Check the Server URL, or ask the administrator to fix the redirect.",
                ) from None
            if not response.is_redirect:
                return response
            location = response.headers["Location"]
            response.close()
            target = self._redirect_target(request.url, location)
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

    def _redirect_target(self, base: httpx.URL, location: str) -> httpx.URL:
        """Where a redirect leads, refused unless it is a usable https address."""
        try:
            target = base.join(location)
            port = target.port
        except (httpx.InvalidURL, ValueError) as exc:
            raise ProtocolError(
                f"The server redirected to an invalid address ({exc}).",
                server=self.server,
                hint="Check the Server URL, or ask the administrator to fix the redirect.",
            ) from None
        if target.scheme != "https":
            raise InsecureUrl(
                f"The server redirected to a plain-http address ({target.copy_with(query=None)}); "
                "refused.",
                server=self.server,
                hint="Ask the administrator to redirect to https, or use the final https URL.",
            )
        if target.userinfo:
            # A user name and password in the address would be sent to wherever it names.
            raise InsecureUrl(
                "The server redirected to an address that carries a user name or password; "
                "refused.",
                server=self.server,
                hint="Ask the administrator to fix the redirect; credentials never belong in a URL.",
            )
        if (port is not None and not 0 < port < 65536) or not target.host:
            raise ProtocolError(
                f"The server redirected to an invalid address (host {target.host!r}, port {port}).",
                server=self.server,
                hint="Check the Server URL, or ask the administrator to fix the redirect.",
            )
        return target

    # -- error mapping ----------------------------------------------------------------

    def map_error(self, exc: httpx.HTTPError, url: str) -> DicomWebError:
        """Map an `httpx` error raised outside this session's own reads."""
        return self._map_transport(exc, url)

    def _map_transport(
        self, exc: BaseException, url: str, watch: Watch | None = None
    ) -> DicomWebError:
        if isinstance(exc, DicomWebError):
            return exc
        if watch is not None and isinstance(exc, httpx.TimeoutException) and watch.expired():
            return self._deadline_error(watch, url)
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


def _declared_length(response: httpx.Response) -> int | None:
    """The Content-Length of an identity body, when the server announced one."""
    if response.headers.get("content-encoding", "identity").lower() not in ("", "identity"):
        return None
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None
