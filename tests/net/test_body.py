"""Bounded decoding (`net._body.Decoder`) and request deadlines (`net._body.Watch`)."""

from __future__ import annotations

import contextlib
import gzip
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net import ProtocolError
from net._body import _DECODE_STEP, Watch, describe_size, make_decoder

PAYLOAD = bytes(range(256)) * 4096 + b"tail"


def decode(encoding: str, body: bytes, step: int) -> bytes:
    decoder = make_decoder(encoding)
    assert decoder is not None
    out = []
    for i in range(0, len(body), step):
        for piece in decoder.feed(body[i : i + step]):
            assert len(piece) <= _DECODE_STEP
            out.append(piece)
    out.extend(decoder.flush())
    return b"".join(out)


@pytest.mark.parametrize("step", [1, 7, 65536, 10**9])
@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, as RFC 9110 says
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw, as some servers send it
    ],
)
def test_decodes_in_bounded_steps_from_chunks_of_any_size(
    encoding: str, encode: object, step: int
) -> None:
    body = encode(PAYLOAD)  # type: ignore[operator]
    assert decode(encoding, body, step) == PAYLOAD


def test_a_bomb_is_decoded_a_step_at_a_time() -> None:
    bomb = gzip.compress(bytes(64 * 1024**2))  # 64 MiB of zeros in ~64 KB
    decoder = make_decoder("gzip")
    assert decoder is not None
    first = next(decoder.feed(bomb))  # one step of output, not 64 MiB
    assert len(first) == _DECODE_STEP


def test_concatenated_gzip_members_are_all_decoded() -> None:
    assert decode("gzip", gzip.compress(b"one ") + gzip.compress(b"two"), 5) == b"one two"


@pytest.mark.parametrize("encoding", ["identity", "", "Identity, identity"])
def test_identity_needs_no_decoder(encoding: str) -> None:
    assert make_decoder(encoding) is None


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, gzip", "compress"])
def test_encodings_we_did_not_ask_for_are_refused(encoding: str) -> None:
    with pytest.raises(ProtocolError, match="did not ask for"):
        make_decoder(encoding)


@given(st.binary(max_size=200))
def test_corrupt_compressed_bodies_raise_only_protocol_errors(data: bytes) -> None:
    for encoding in ("gzip", "deflate"):
        with contextlib.suppress(ProtocolError):
            decode(encoding, data, 3)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_total_deadline() -> None:
    clock = Clock()
    watch = Watch(total=30.0, clock=clock)
    assert watch.due() == 130.0 and not watch.expired()
    clock.now = 130.0
    assert (
        watch.expired()
        and watch.describe("pacs") == "The request to pacs did not complete within 30 s."
    )


def test_progress_window_slides_with_enough_bytes_and_ignores_time_away() -> None:
    clock = Clock()
    watch = Watch(window=30.0, window_bytes=65536, clock=clock)
    clock.now = 120.0
    watch.received(65535)
    assert watch.due() == 130.0  # not enough yet
    watch.received(1)
    assert watch.due() == 150.0  # a new window from now
    watch.paused(5.0)  # the caller decoded for 5 s
    assert watch.due() == 155.0
    clock.now = 155.0
    assert watch.expired()
    assert watch.describe("pacs") == "pacs sent less than 64 KiB in 30 s: the transfer stalled."


def test_a_watch_without_limits_is_never_due() -> None:
    watch = Watch()
    watch.received(10)
    assert watch.due() is None and not watch.expired()


def test_describe_size() -> None:
    assert [describe_size(n) for n in (64 * 1024, 2 * 1024**3, 32 * 1024**2, 1000)] == [
        "64 KiB",
        "2 GiB",
        "32 MiB",
        "1000 bytes",
    ]
