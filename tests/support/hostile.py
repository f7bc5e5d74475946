"""A small hostile HTTPS server of the suite's own: answers that try to hurt the client.

It listens on 127.0.0.1 only, with a certificate for ``localhost`` from the suite's
test CA (`tests.support.pacs.make_certificates`), and answers each path with the
behaviour a test gave it (`HostileServer.route`): a search answer of 1 GiB, a gzip
bomb, a multipart part that never ends, a body trickling in byte by byte, an answer
that stalls until the test releases it, redirects to impossible addresses. Every
behaviour stops by itself: when the client hangs up, when the server is stopped
(`release` is set then, so stalled answers end), or at a byte ceiling of its own.

Not a real HTTP server: one request per connection (``Connection: close``), request
bodies read by Content-Length, nothing else of HTTP/1.1 that the tests do not need.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import ssl
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .pacs import Certificates, make_certificates

__all__ = [
    "Exchange",
    "HostileServer",
    "certificates_in",
    "endless_part",
    "flood",
    "gzip_bomb",
    "gzip_bomb_body",
    "multipart",
    "redirect",
    "reply",
    "run_hostile_server",
    "stall",
    "trickle",
]

#: No behaviour sends more than this, whatever the client does (it stops by itself).
MAX_SENT = 8 * 1024**3
_CHUNK = 64 * 1024
_MAX_REQUEST_HEAD = 64 * 1024


class _Closed(Exception):
    """The client hung up, or the server is stopping."""


@dataclass
class Exchange:
    """One request as the behaviour sees it, and the means to answer."""

    method: str
    target: str  # path and query as sent
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    sock: ssl.SSLSocket
    release: threading.Event
    sent: int = 0

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def send(self, data: bytes) -> None:
        if self.release.is_set() and self.sent:
            raise _Closed
        if self.sent + len(data) > MAX_SENT:
            raise _Closed
        try:
            self.sock.sendall(data)
        except (OSError, ValueError) as exc:
            raise _Closed from exc
        self.sent += len(data)

    def head(self, status: int, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        items = headers.items() if isinstance(headers, Mapping) else headers
        lines = [f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}"]
        lines += [f"{k}: {v}" for k, v in items]
        lines.append("Connection: close")
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def wait(self, seconds: float) -> None:
        """Pause the answer (behaviour, not synchronisation); ends early on stop."""
        if self.release.wait(seconds):
            raise _Closed


Behaviour = Callable[[Exchange], None]


# --- behaviours -------------------------------------------------------------------------


def reply(
    status: int = 200, body: bytes = b"", headers: Mapping[str, str] | None = None
) -> Behaviour:
    """An ordinary answer with a Content-Length."""

    def behaviour(ex: Exchange) -> None:
        ex.head(status, {**(headers or {}), "Content-Length": str(len(body))})
        ex.send(body)

    return behaviour


def flood(
    first: bytes,
    repeat: bytes,
    total: int,
    *,
    status: int = 200,
    content_type: str = "application/dicom+json",
    announce: bool = False,
) -> Behaviour:
    """`first`, then `repeat` again and again up to `total` bytes; without `announce`
    the length is not said (the body ends when the connection does)."""

    def behaviour(ex: Exchange) -> None:
        headers = {"Content-Type": content_type}
        if announce:
            headers["Content-Length"] = str(total)
        ex.head(status, headers)
        ex.send(first)
        block = repeat * max(1, _CHUNK // len(repeat))
        while ex.sent < total:
            ex.send(block)

    return behaviour


def gzip_bomb_body(decoded: int) -> bytes:
    """A gzip stream of `decoded` zero bytes in ~1/1000 of the size (no trailer: no
    client of ours reads that far)."""
    segment_size = 16 * 1024**2
    zeros = bytes(segment_size)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    # After a full flush every further segment compresses to the same bytes.
    segment = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    return first + segment * (decoded // segment_size - 1)


def gzip_bomb(body: bytes, *, content_type: str = "application/dicom+json") -> Behaviour:
    def behaviour(ex: Exchange) -> None:
        ex.head(
            200,
            {
                "Content-Type": content_type,
                "Content-Encoding": "gzip",
                "Content-Length": str(len(body)),
            },
        )
        ex.send(body)

    return behaviour


def multipart(
    bodies: Iterable[bytes],
    *,
    boundary: str = "hostile",
    part_type: str = "application/dicom",
    content_type: str | None = None,
    part_headers: bool = True,
    pause: float = 0.0,
) -> Behaviour:
    """A multipart/related answer of `bodies`, `pause` seconds between parts."""

    def behaviour(ex: Exchange) -> None:
        ex.head(
            200,
            {
                "Content-Type": content_type
                or f'multipart/related; type="{part_type}"; boundary={boundary}'
            },
        )
        for body in bodies:
            if pause:
                ex.wait(pause)
            head = f"--{boundary}\r\n"
            if part_headers:
                head += f"Content-Type: {part_type}\r\n"
            ex.send((head + "\r\n").encode() + body + b"\r\n")
        ex.send(f"--{boundary}--\r\n".encode())

    return behaviour


def endless_part(*, start: bytes = bytes(128) + b"DICM", boundary: str = "hostile") -> Behaviour:
    """A multipart answer whose first part starts like DICOM and never ends."""

    def behaviour(ex: Exchange) -> None:
        ex.head(
            200,
            {"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'},
        )
        ex.send(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + start)
        block = bytes(_CHUNK)
        while True:
            ex.send(block)

    return behaviour


def trickle(body: bytes, *, interval: float, headers: Mapping[str, str] | None = None) -> Behaviour:
    """Announce `body`, then send it one byte every `interval` seconds."""

    def behaviour(ex: Exchange) -> None:
        ex.head(200, {**(headers or {}), "Content-Length": str(len(body))})
        for i in range(len(body)):
            ex.send(body[i : i + 1])
            ex.wait(interval)

    return behaviour


def stall(
    prefix: bytes = b"", *, headers: Mapping[str, str] | None = None, length: int = 1 << 20
) -> Behaviour:
    """Send the head (announcing `length`) and `prefix`, then nothing until released."""

    def behaviour(ex: Exchange) -> None:
        ex.head(200, {**(headers or {}), "Content-Length": str(length)})
        if prefix:
            ex.send(prefix)
        ex.release.wait()

    return behaviour


def redirect(location: str, status: int = 302) -> Behaviour:
    return reply(status, headers={"Location": location})


# --- the server ---------------------------------------------------------------------------


@dataclass
class HostileServer:
    """The running server: its URL, its routes, and what it saw."""

    port: int
    release: threading.Event
    routes: dict[str, Behaviour | list[Behaviour]] = field(default_factory=dict)
    #: (method, target) of every request, in arrival order.
    seen: list[tuple[str, str]] = field(default_factory=list)
    #: Bytes each answer sent, by request number.
    sent: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fallback: Behaviour = field(default_factory=lambda: reply(404, b"no such route"))

    @property
    def origin(self) -> str:
        return f"https://localhost:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path

    def route(self, path: str, *behaviours: Behaviour) -> None:
        """Answer `path` with `behaviours`: one for every request, or one per request in
        turn (the last one repeats)."""
        with self.lock:
            self.routes[path] = behaviours[0] if len(behaviours) == 1 else list(behaviours)

    def _behaviour(self, path: str) -> Behaviour:
        with self.lock:
            found = self.routes.get(path)
            if found is None:
                # The longest route that is a prefix of the path, for "every URL under".
                prefixes = [p for p in self.routes if p.endswith("/") and path.startswith(p)]
                found = self.routes[max(prefixes, key=len)] if prefixes else self.fallback
            if isinstance(found, list):
                return found.pop(0) if len(found) > 1 else found[0]
            return found


def _read_request(sock: ssl.SSLSocket) -> tuple[str, str, dict[str, str], bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk or len(data) > _MAX_REQUEST_HEAD:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        rest += chunk
    return method, target, headers, rest[:length]


@contextlib.contextmanager
def run_hostile_server(certificates: Certificates) -> Iterator[HostileServer]:
    """Serve on a free loopback port until the block ends; then release every stalled
    answer, close the listener and wait for the handler threads."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certificates.leaf_cert), str(certificates.leaf_key))
    release = threading.Event()
    server_ref: list[HostileServer] = []

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            raw: socket.socket = self.request
            raw.settimeout(30)  # a stuck client does not keep a thread forever
            try:
                sock = context.wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError):
                return
            try:
                request = _read_request(sock)
                if request is None:
                    return
                method, target, headers, body = request
                hostile = server_ref[0]
                with hostile.lock:
                    hostile.seen.append((method, target))
                    number = len(hostile.sent)
                    hostile.sent.append(0)
                ex = Exchange(method, target, headers, body, sock, release)
                try:
                    hostile._behaviour(ex.path)(ex)
                except _Closed:
                    pass
                finally:
                    with hostile.lock:
                        hostile.sent[number] = ex.sent
            except (OSError, ValueError):
                pass
            finally:
                with contextlib.suppress(OSError):
                    sock.close()

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        block_on_close = True

    with Server(("127.0.0.1", 0), Handler) as tcp:
        hostile = HostileServer(port=tcp.server_address[1], release=release)
        server_ref.append(hostile)
        thread = threading.Thread(target=tcp.serve_forever, name="hostile-server", daemon=True)
        thread.start()
        try:
            yield hostile
        finally:
            release.set()
            tcp.shutdown()
            thread.join(10)


def certificates_in(directory: Path) -> Certificates:
    """The suite's test CA and a localhost certificate, made in `directory` (openssl)."""
    return make_certificates(directory)
