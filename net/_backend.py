"""A network backend for httpcore that hands h11 fewer, larger reads.

A TLS socket returns at most one record (16 KiB) per read, so a 158 MB series means
~10,000 trips through h11 and httpx in Python — most of the client's CPU time here.
After a full read, this stream keeps reading whatever has already arrived (without
waiting for more) up to `COALESCE_BYTES`, so each trip carries ~256 KiB instead.
Measured with the test PACS: see bench/retrieve.py.

It relies on private attributes of httpx/httpcore (the transport's `_pool` and the
pool's `_network_backend`); `install` checks what it finds and leaves the client as it
is when they change, and a unit test notices that.
"""

from __future__ import annotations

import select
import ssl
from typing import Any

import httpcore
from httpcore._backends.sync import SyncBackend, SyncStream

__all__ = ["COALESCE_BYTES", "CoalescingBackend", "install"]

COALESCE_BYTES = 256 * 1024
#: Reads shorter than this are headers or small answers: returned at once.
_SMALL = 8192


class _CoalescingStream(SyncStream):
    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = super().read(max_bytes, timeout)
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

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        stream = super().start_tls(ssl_context, server_hostname, timeout)
        if type(stream) is SyncStream:
            return _CoalescingStream(stream._sock)
        return stream


class CoalescingBackend(SyncBackend):
    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        stream = super().connect_tcp(*args, **kwargs)
        if type(stream) is SyncStream:
            return _CoalescingStream(stream._sock)
        return stream


def install(client: Any) -> int:
    """Give every connection pool of an `httpx.Client` the coalescing backend.

    Returns how many pools were changed (0 when httpx's internals are not as expected).
    """
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    changed = 0
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        if pool is not None and type(getattr(pool, "_network_backend", None)) is SyncBackend:
            pool._network_backend = CoalescingBackend()
            changed += 1
    return changed
