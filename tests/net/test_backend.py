"""The coalescing network backend: fewer, larger reads, never waiting for more data."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator

import h11
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from net._backend import (
    COALESCE_BYTES,
    CoalescingBackend,
    _CoalescingStream,
    _install_batch_chunked_reader,
    install,
)


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


def test_reads_of_4_kib_records_are_coalesced_too(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    # A proxy with default buffers sends 4 KiB at a time (DESIGN.md §7).
    reader, writer = pair
    for _ in range(16):
        writer.sendall(b"r" * 4096)
    assert len(_CoalescingStream(reader).read(4096, timeout=5)) == 16 * 4096


def test_install_finds_httpx_connection_pools() -> None:
    # If an httpx/httpcore upgrade moves these internals, this fails instead of the
    # speed silently going away.
    with httpx.Client() as client:
        assert install(client) >= 1
        assert isinstance(client._transport._pool._network_backend, CoalescingBackend)  # type: ignore[attr-defined]


# --- h11: all complete chunks of a read in one event -------------------------------------


def chunked_response(chunks: list[bytes], extension: bytes = b"") -> bytes:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"".join(b"%x%s\r\n%s\r\n" % (len(c), extension, c) for c in chunks if c)
    return head + body + b"0\r\nX-Trailer: yes\r\n\r\n"


def receive(wire: bytes, splits: list[int]) -> tuple[bytes, int]:
    """The body h11 (with our reader installed) makes of `wire` cut at `splits`."""
    assert _install_batch_chunked_reader()
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    body = bytearray()
    events = 0
    bounds = [0, *sorted(set(splits)), len(wire)]
    for a, b in itertools.pairwise(bounds):
        conn.receive_data(wire[a:b])
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                break
            if isinstance(event, h11.Data):
                body += event.data
                events += 1
            if isinstance(event, h11.EndOfMessage):
                assert event.headers == [(b"x-trailer", b"yes")]
                return bytes(body), events
    raise AssertionError("no end of message")


def test_complete_chunks_of_one_read_become_one_event() -> None:
    chunks = [bytes([i]) * 4096 for i in range(64)]
    body, events = receive(chunked_response(chunks), [])
    assert body == b"".join(chunks)
    assert events == 1  # h11 alone: 64


def test_chunk_extensions_and_partial_chunks_are_handled_by_h11s_reader() -> None:
    chunks = [b"a" * 10, b"b" * 3000, b"c"]
    wire = chunked_response(chunks, extension=b";name=value")
    body, _ = receive(wire, [70, 71, 2000, 3060])
    assert body == b"".join(chunks)


@given(
    st.lists(st.binary(min_size=1, max_size=300), max_size=12),
    st.lists(st.integers(min_value=0, max_value=5000), max_size=6),
)
def test_any_chunking_and_any_read_sizes_give_the_same_body(
    chunks: list[bytes], splits: list[int]
) -> None:
    wire = chunked_response(chunks)
    body, _ = receive(wire, [s for s in splits if 0 < s < len(wire)])
    assert body == b"".join(chunks)


def test_a_malformed_chunk_header_is_still_an_error() -> None:
    wire = chunked_response([b"abc", b"def"]).replace(b"\r\n3\r\ndef", b"\r\nzz\r\ndef")
    with pytest.raises(h11.RemoteProtocolError):
        receive(wire, [])
