"""The coalescing network backend: fewer, larger reads, never waiting for more data."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from net._backend import COALESCE_BYTES, CoalescingBackend, _CoalescingStream, install


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * COALESCE_BYTES)
    yield a, b
    a.close()
    b.close()


def test_reads_what_has_arrived_in_one_go(pair: tuple[socket.socket, socket.socket]) -> None:
    reader, writer = pair
    payload = bytes(range(256)) * 400  # 100 KiB, sent in pieces before the read
    for i in range(0, len(payload), 16384):
        writer.sendall(payload[i : i + 16384])
    stream = _CoalescingStream(reader)
    got = b""
    reads = 0
    while len(got) < len(payload):
        got += stream.read(16384, timeout=5)
        reads += 1
    assert got == payload
    assert reads < len(payload) // 16384  # fewer reads than the pieces sent


def test_does_not_wait_for_data_that_has_not_arrived(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    reader, writer = pair
    writer.sendall(b"x" * 10000)
    # Nothing more is coming; a read that waited would hit the timeout and raise.
    assert _CoalescingStream(reader).read(65536, timeout=5) == b"x" * 10000


def test_small_reads_are_returned_as_is(pair: tuple[socket.socket, socket.socket]) -> None:
    reader, writer = pair
    writer.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
    assert _CoalescingStream(reader).read(65536, timeout=5) == b"HTTP/1.1 200 OK\r\n\r\n"


def test_install_finds_httpx_connection_pools() -> None:
    # If an httpx/httpcore upgrade moves these internals, this fails instead of the
    # speed silently going away.
    with httpx.Client() as client:
        assert install(client) >= 1
        assert isinstance(client._transport._pool._network_backend, CoalescingBackend)  # type: ignore[attr-defined]
