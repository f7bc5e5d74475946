"""Reading answers within bounds: a request's deadline, and bodies decoded incrementally.

`Watch` is one request's time limit: a total deadline (a search must be complete in
30 s), a progress rule (a series stream must bring 64 KiB every 30 s), or both; the
coalescing backend applies it to every socket operation (`net._backend.watched`).
`Decoder` undoes gzip/deflate a bounded piece at a time, so a 2 MB gzip bomb is
stopped at the caller's size limit instead of expanding to 4 GB in one call.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator

from ._errors import ProtocolError

__all__ = ["ACCEPT_ENCODING", "Decoder", "Watch", "describe_size", "make_decoder"]

#: What we can decode piece by piece. httpx would also offer br and zstd when their
#: packages happen to be installed, which we could not bound the same way.
ACCEPT_ENCODING = "gzip, deflate"
#: The most decoded bytes one step of a decoder produces (zlib's ``max_length``).
_DECODE_STEP = 1024 * 1024


def describe_size(n: int) -> str:
    """``64 MiB``, ``2 GiB``, ``64 KiB``: a limit as a user reads it."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


class Watch:
    """The time limits of one request, on the monotonic clock.

    `total` seconds for the whole request; or, for a stream, at least `window_bytes`
    within every `window` seconds spent waiting for the network (time the caller spends
    between reads, decoding what arrived, is not the server's fault and does not count).
    """

    __slots__ = ("_count", "_start", "clock", "total", "total_at", "window", "window_bytes")

    def __init__(
        self,
        *,
        total: float | None = None,
        window: float | None = None,
        window_bytes: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        now = clock()
        self.clock = clock
        self.total = total
        self.total_at = None if total is None else now + total
        self.window = window
        self.window_bytes = window_bytes
        self._start = now
        self._count = 0

    def due(self) -> float | None:
        """When the next limit falls, or None for a request without limits."""
        due = self.total_at
        if self.window is not None:
            window_due = self._start + self.window
            due = window_due if due is None else min(due, window_due)
        return due

    def remaining(self) -> float | None:
        due = self.due()
        return None if due is None else due - self.clock()

    def expired(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0

    def received(self, n: int) -> None:
        """Count bytes that arrived; enough of them open a new progress window."""
        if self.window is not None:
            self._count += n
            if self._count >= self.window_bytes:
                self._start = self.clock()
                self._count = 0

    def paused(self, seconds: float) -> None:
        """Time spent away from the network (the caller's work, a retry's wait) does not
        count against the progress window."""
        self._start += seconds

    def describe(self, host: str = "the server") -> str:
        """What was exceeded, as a sentence for the error message."""
        now = self.clock()
        if self.total_at is not None and now >= self.total_at:
            return f"The request to {host} did not complete within {self.total:g} s."
        return (
            f"{host} sent less than {describe_size(self.window_bytes)} in {self.window:g} s:"
            " the transfer stalled."
        )


class Decoder:
    """Undo a Content-Encoding (gzip or deflate) in steps of at most `_DECODE_STEP` bytes."""

    def __init__(self, encoding: str, *, server: str = "") -> None:
        self.encoding = encoding
        self._server = server
        self._gzip = encoding == "gzip"
        # deflate is meant to be zlib-wrapped (RFC 9110 §8.4.1.2); some servers send it
        # raw: decided on the first bytes, as browsers do.
        self._inflate: zlib._Decompress | None = (
            zlib.decompressobj(16 + zlib.MAX_WBITS) if self._gzip else None
        )
        self._first = b""  # deflate: a first chunk of one byte, until the second comes

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decoded pieces of `data`, each at most `_DECODE_STEP` bytes."""
        try:
            while data:
                inflate = self._inflate
                if inflate is None:
                    if len(data) < 2 and not self._first:
                        self._first = data
                        return
                    data, self._first = self._first + data, b""
                    raw = (data[0] & 0x0F) != 8 or ((data[0] << 8) | data[1]) % 31 != 0
                    inflate = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
                    self._inflate = inflate
                out = inflate.decompress(data, _DECODE_STEP)
                if out:
                    yield out
                data = inflate.unconsumed_tail
                if inflate.eof:
                    rest = inflate.unused_data
                    if not (self._gzip and rest.strip(b"\0")):
                        return  # the end; trailing zero padding is tolerated
                    # Another gzip member follows (RFC 1952 §2.2).
                    self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    data = rest + data
        except (zlib.error, IndexError) as exc:
            raise ProtocolError(
                f"The answer's {self.encoding} encoding is corrupt ({exc}).",
                server=self._server,
                hint="Try again; if it persists, the server or a proxy is damaging answers.",
            ) from exc

    def flush(self) -> Iterator[bytes]:
        inflate = self._inflate
        if inflate is not None and not inflate.eof:
            # `feed` consumed all input: what zlib still holds is at most its window.
            tail = inflate.flush()
            if tail:
                yield tail


def make_decoder(content_encoding: str, *, server: str = "") -> Decoder | None:
    """A decoder for the response's Content-Encoding; None for an identity body."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
        return Decoder("gzip" if codings[0] != "deflate" else "deflate", server=server)
    raise ProtocolError(
        f"The answer uses a content encoding we did not ask for ({content_encoding!r}).",
        server=server,
        hint="A proxy may be compressing answers; it should honour Accept-Encoding.",
    )
