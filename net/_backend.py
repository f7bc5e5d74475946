"""A network backend for httpcore that hands h11 fewer, larger reads, within deadlines.

A TLS socket returns at most one record (16 KiB) per read, so a 158 MB series means
~10,000 trips through h11 and httpx in Python — most of the client's CPU time here.
After a full read, this stream keeps reading whatever has already arrived (without
waiting for more) up to `COALESCE_BYTES`, so each trip carries ~256 KiB instead.
Measured with the test PACS: see bench/retrieve.py.

It is also where a request's deadline (`net._body.Watch`) reaches the socket: while a
thread works under `watched(watch)`, every connect, TLS handshake, read and write of
that thread waits at most until the watch is due, so a server that trickles one byte
per second cannot stretch a request past its deadline one short read at a time.

A proxy that relays small pieces (nginx with its default 4 KiB buffers and
``proxy_buffering off``) sends 4 KiB TLS records and a chunked body of 4 KiB chunks:
~39,000 of them for that series. Coalescing the reads is then not enough, since h11
still makes one event of every chunk, and each event travels up through httpcore,
httpx and our reader. `BatchChunkedReader` makes one event of all the complete chunks
a read brought, so the cost per byte no longer depends on the server's chunk size.

It relies on private attributes of httpx/httpcore/h11 (the transport's `_pool`, the
pool's `_network_backend`, h11's `READERS` table and `ReceiveBuffer._data`); `install`
checks what it finds and leaves things as they are when they change, and unit tests
notice that.
"""

from __future__ import annotations

import select
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import h11
import h11._readers
import h11._receivebuffer
import httpcore
from httpcore._backends.sync import SyncBackend, SyncStream

__all__ = [
    "COALESCE_BYTES",
    "BatchChunkedReader",
    "CoalescingBackend",
    "Due",
    "install",
    "watched",
]

COALESCE_BYTES = 256 * 1024
#: Reads shorter than this are a response head or a small answer: returned at once
#: (4 KiB TLS records are not small: a proxy with default buffers sends only those).
_SMALL = 1024


class Due(Protocol):
    """What the backend needs of a deadline: when it is due (monotonic), if ever."""

    def due(self) -> float | None: ...


_scope = threading.local()


class watched:  # a context manager named like a function, used as one
    """Bound this thread's socket operations by `watch` for the duration of the block."""

    __slots__ = ("_previous", "_watch")

    def __init__(self, watch: Due | None) -> None:
        self._watch = watch
        self._previous: Due | None = None

    def __enter__(self) -> None:
        self._previous = getattr(_scope, "watch", None)
        _scope.watch = self._watch

    def __exit__(self, *exc_info: object) -> None:
        _scope.watch = self._previous


def _bounded(timeout: float | None, expired: Callable[[str], Exception]) -> float | None:
    """`timeout`, shortened to what is left of this thread's deadline."""
    watch: Due | None = getattr(_scope, "watch", None)
    if watch is None:
        return timeout
    due = watch.due()
    if due is None:
        return timeout
    left = due - time.monotonic()
    if left <= 0:
        raise expired("the request's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _CoalescingStream(SyncStream):
    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = super().read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))
        if len(data) < _SMALL:
            return data
        sock = self._sock
        # What else has arrived is received straight into one buffer (recv_into), not
        # into pieces joined afterwards: one copy of every byte fewer.
        buffer: bytearray | None = None
        size = len(data)
        try:
            while size < COALESCE_BYTES:
                buffered = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
                if not buffered and not select.select([sock], [], [], 0)[0]:
                    break  # nothing more has arrived: hand over what we have
                if buffer is None:
                    buffer = bytearray(COALESCE_BYTES)
                    buffer[:size] = data
                received = sock.recv_into(memoryview(buffer)[size:], COALESCE_BYTES - size)
                if not received:
                    break
                size += received
        except OSError:
            pass  # a failure here shows up again on the next read; nothing read is lost
        if buffer is None:
            return data
        del buffer[size:]  # shrinks in place
        return buffer  # type: ignore[return-value]  # h11 takes any bytes-like

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        super().write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _bounded(timeout, httpcore.ConnectTimeout)
        stream = super().start_tls(ssl_context, server_hostname, timeout)
        if type(stream) is SyncStream:
            return _CoalescingStream(stream._sock)
        return stream


class CoalescingBackend(SyncBackend):
    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        timeout = _bounded(timeout, httpcore.ConnectTimeout)
        try:
            stream = super().connect_tcp(host, port, timeout, local_address, socket_options)
        except (OverflowError, ValueError) as exc:
            # socket.create_connection's answer to port 99999 (a redirect can name it).
            raise httpcore.ConnectError(f"invalid address {host}:{port} ({exc})") from exc
        if type(stream) is SyncStream:
            return _CoalescingStream(stream._sock)
        return stream


class BatchChunkedReader(h11._readers.ChunkedReader):
    """h11's chunked-body reader, returning every complete chunk in the buffer at once.

    After h11's own reader has returned the end of a chunk, the complete chunks that
    follow in the receive buffer are appended to that event's data in one pass; what
    is left (a partial chunk, the last chunk, trailers) goes to h11's reader as before.
    Chunk boundaries carry no meaning in HTTP (RFC 9112 §7.1) and httpcore ignores them.
    """

    def __call__(self, buf: Any) -> h11.Data | h11.EndOfMessage | None:
        event = super().__call__(buf)
        if type(event) is not h11.Data or not event.chunk_end:
            return event
        data: bytearray = buf._data
        end = len(data)
        pos = 0
        out: bytearray | None = None
        header = h11._readers.chunk_header_re
        with memoryview(data) as view:
            while end - pos > 2 and data[pos] == 0x0D and data[pos + 1] == 0x0A:
                eol = data.find(b"\r\n", pos + 2, pos + 2 + 1024)
                if eol < 0:
                    break
                match = header.fullmatch(data, pos + 2, eol + 2)
                if match is None:
                    break  # h11's reader reports it
                size = int(match["chunk_size"], 16)
                start = eol + 2
                if size == 0 or start + size > end:
                    break  # the last chunk, or one still arriving: h11's reader
                if out is None:
                    out = bytearray(event.data)
                out += view[start : start + size]
                pos = start + size
        if out is None:
            return event
        # The reader's state is as after the chunk h11 returned: a chunk's CRLF is next.
        del data[:pos]
        buf._next_line_search = 0
        buf._multiple_lines_search = 0
        # h11 itself hands over bytearrays (typed bytes); httpcore takes either.
        return h11.Data(data=out, chunk_start=event.chunk_start, chunk_end=True)  # type: ignore[arg-type]


def _install_batch_chunked_reader() -> bool:
    readers = getattr(h11._readers, "READERS", None)
    table = readers.get(h11.SEND_BODY) if isinstance(readers, dict) else None
    if not isinstance(table, dict):
        return False
    current = table.get("chunked")
    if current is BatchChunkedReader:
        return True
    probe = h11._receivebuffer.ReceiveBuffer()
    if current is not h11._readers.ChunkedReader or not isinstance(
        getattr(probe, "_data", None), bytearray
    ):
        return False
    table["chunked"] = BatchChunkedReader
    return True


def install(client: Any) -> int:
    """Give every connection pool of an `httpx.Client` the coalescing backend (and h11
    the batch chunked reader, once per process).

    Returns how many pools were changed (0 when httpx's internals are not as expected).
    """
    _install_batch_chunked_reader()
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    changed = 0
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        if pool is not None and type(getattr(pool, "_network_backend", None)) is SyncBackend:
            pool._network_backend = CoalescingBackend()
            changed += 1
    return changed
