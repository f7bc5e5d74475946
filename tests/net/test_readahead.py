"""read_ahead: order kept, errors re-raised in the caller, the reader stops when closed."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from net._readahead import read_ahead


def test_yields_every_chunk_in_order() -> None:
    chunks = [bytes([i]) * i for i in range(200)]
    assert list(read_ahead(iter(chunks), depth=3)) == chunks


def test_reader_error_is_raised_in_the_caller_after_earlier_chunks() -> None:
    def source() -> Iterator[bytes]:
        yield b"a"
        yield b"b"
        raise ConnectionResetError("dropped")

    got = []
    with pytest.raises(ConnectionResetError):
        for chunk in read_ahead(source()):
            got.append(chunk)
    assert got == [b"a", b"b"]


def test_closing_stops_the_reader_thread() -> None:
    produced = []
    finished = threading.Event()

    def endless() -> Iterator[bytes]:
        try:
            while True:
                produced.append(1)
                yield b"x" * 10
        finally:
            finished.set()

    stream = read_ahead(endless(), depth=2)
    assert next(stream) == b"x" * 10
    stream.close()  # joins the reader, which returns after its current chunk
    assert not any(t.name == "net-read-ahead" and t.is_alive() for t in threading.enumerate())
    assert len(produced) < 10  # bounded: it did not run ahead without limit
