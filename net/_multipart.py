"""Streaming multipart/related: the body format of WADO-RS answers and STOW-RS requests.

`MultipartParser` turns a multipart body that arrives in chunks of any size into `Part`s
(RFC 2046 §5.1, RFC 2387, DICOM PS3.18 §8.7) while it streams in, copying each body byte
once: a chunk is searched where it lies and a part's body is a single `bytes.join` of
views into the chunks it spans; only the few bytes around a chunk border pass through a
small carry buffer. A part is bounded: by its own Content-Length when it announces one
and by the parser's `max_part_bytes`; a part larger than `spool_bytes` goes to a
temporary file while it arrives, and a `check_part` hook sees each part's first bytes
(the client rejects a part that is not DICOM there, not after megabytes of it).
`parse_content_type` reads Content-Type headers, including DICOMweb's
``type="application/octet-stream; transfer-syntax=..."`` with its quoted ``;``, and
`encode_multipart` builds STOW-RS request bodies. Malformed input raises `ProtocolError`.
"""

from __future__ import annotations

import bisect
import io
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, Any, Final

from ._errors import AnswerTooLarge, ProtocolError
from ._limits import DEFAULT_SIZE_LIMITS

__all__ = [
    "SNIFF_BYTES",
    "MultipartParser",
    "Part",
    "PartBuffer",
    "encode_multipart",
    "iter_parts",
    "parse_content_type",
]

#: RFC 2046 §5.1.1: a boundary is 1 to 70 characters.
MAX_BOUNDARY_LENGTH: Final = 70
#: A part's header block larger than this is not a header block (a server that sends
#: parts without headers and without the blank line would otherwise be buffered whole).
MAX_HEADER_BLOCK: Final = 64 * 1024
#: DICOMweb servers send no preamble; this much without a boundary means the body is not
#: multipart at all, and we say so before downloading the rest.
MAX_PREAMBLE: Final = 64 * 1024
#: Transport padding (whitespace after a boundary, RFC 2046 §5.1.1) we wait for.
MAX_TRANSPORT_PADDING: Final = 1024
#: How much of a part's body `check_part` sees: a Part 10 preamble and ``DICM``.
SNIFF_BYTES: Final = 132
#: Bytes of a new chunk copied into the carry buffer to settle what straddles the border
#: with the previous chunk: enough for a delimiter line and a usual header block.
_JUNCTION: Final = 1024

_HINT: Final = (
    "The server's multipart answer is malformed; try again or report it to the PACS admin."
)

# Parser states.
_PREAMBLE: Final = 0
_HEADERS: Final = 1
_BODY: Final = 2
_EPILOGUE: Final = 3

# What follows a ``CRLF--boundary`` candidate.
_NEED_MORE: Final = 0
_NOT_DELIMITER: Final = 1
_DELIMITER: Final = 2
_CLOSE: Final = 3

_CR: Final = 0x0D
_LF: Final = 0x0A
_DASH: Final = 0x2D

_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_MEDIA_TYPE = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+/[!#$%&'*+\-.^_`|~0-9a-z]+")
#: RFC 2046 §5.1.1 ``bchars``; the last character may not be a space.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


Piece = bytes | memoryview


class Part:
    """One body part: its headers (names lower-cased) and its body.

    A part parsed from a stream keeps its body as views into the received chunks until
    `body` is asked for; `open()` reads it as a file without joining it first, so a
    DICOM reader copies each byte of the pixel data once instead of twice.
    """

    __slots__ = ("_body", "_default_type", "_pieces", "_spool", "headers")

    def __init__(
        self,
        headers: dict[str, str],
        body: bytes = b"",
        *,
        pieces: Sequence[Piece] | None = None,
        spool: IO[bytes] | None = None,
        default_type: str = "",
    ) -> None:
        self.headers = headers
        self._pieces: tuple[Piece, ...] | None = tuple(pieces) if pieces is not None else None
        #: A large part's body, in a temporary file (deleted when the part is).
        self._spool = spool
        self._body: bytes | None = None if pieces is not None or spool is not None else body
        self._default_type = default_type

    @property
    def body(self) -> bytes:
        if self._body is None:
            if self._spool is not None:
                self._spool.seek(0)
                self._body = self._spool.read()
                self._spool.close()
                self._spool = None
                return self._body
            pieces = self._pieces or ()
            self._body = (
                pieces[0] if len(pieces) == 1 and type(pieces[0]) is bytes else b"".join(pieces)
            )
            self._pieces = None
        return self._body

    def __len__(self) -> int:
        if self._body is not None:
            return len(self._body)
        if self._spool is not None:
            return self._spool.seek(0, io.SEEK_END)
        return sum(len(p) for p in self._pieces or ())

    def open(self) -> IO[bytes]:
        """A read-only, seekable file over the body (one reader at a time)."""
        if self._spool is not None:
            # Its own file object (closing it leaves the part intact); the offset is
            # shared with the spool, which `body` and `__len__` seek anyway.
            self._spool.seek(0)
            return open(os.dup(self._spool.fileno()), "rb")
        if self._body is not None:
            return PartReader((self._body,))  # type: ignore[return-value]
        return PartReader(self._pieces or ())  # type: ignore[return-value]

    @property
    def content_type(self) -> str:
        """The part's Content-Type; for a part without one, the multipart answer's
        ``type`` parameter (RFC 2387 §3.1), or ``""`` when neither says."""
        return self.headers.get("content-type", "") or self._default_type

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Part):
            return NotImplemented
        return self.headers == other.headers and self.body == other.body

    __hash__ = None  # type: ignore[assignment]  # headers are a dict: not hashable

    def __repr__(self) -> str:
        return f"Part(content_type={self.content_type!r}, body=<{len(self)} bytes>)"


class PartReader(io.RawIOBase):
    """A seekable file over a part's pieces; `read` copies only what it returns."""

    def __init__(self, pieces: Sequence[Piece]) -> None:
        super().__init__()
        self._pieces: list[memoryview] = [
            p if isinstance(p, memoryview) else memoryview(p) for p in pieces
        ]
        self._starts: list[int] = []
        total = 0
        for piece in self._pieces:
            self._starts.append(total)
            total += len(piece)
        self._size = total
        self._pos = 0
        #: The piece `read` last took from: pydicom reads a header in hundreds of small
        #: reads (tag, VR, length, value), nearly all inside one piece.
        self._current = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _slices(self, size: int) -> list[memoryview]:
        start = self._pos
        stop = self._size if size < 0 else min(self._size, start + size)
        out: list[memoryview] = []
        index = max(0, bisect.bisect_right(self._starts, start) - 1)
        while start < stop and index < len(self._pieces):
            piece_start = self._starts[index]
            piece = self._pieces[index]
            lo = start - piece_start
            hi = min(len(piece), stop - piece_start)
            if hi > lo:
                out.append(piece[lo:hi])
                start += hi - lo
                self._current = index
            index += 1
        self._pos = start
        return out

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size >= 0 and self._pieces:
            # Fast path: the whole read inside the current piece.
            piece = self._pieces[self._current]
            lo = self._pos - self._starts[self._current]
            if lo >= 0 and lo + size <= len(piece):
                self._pos += size
                return piece[lo : lo + size].tobytes()
        slices = self._slices(-1 if size is None else size)
        if len(slices) == 1:
            return slices[0].tobytes()
        return b"".join(slices)

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        written = 0
        for piece in self._slices(len(target)):
            target[written : written + len(piece)] = piece
            written += len(piece)
        return written


PartCheck = Callable[[Mapping[str, str], bytes], None]


class PartBuffer:
    """One part's body while it arrives: bounded, spooled when large, checked early.

    The body may not exceed its announced Content-Length nor `max_bytes`; past
    `spool_bytes` it moves to a temporary file; `check(headers, first_bytes)` runs as
    soon as `SNIFF_BYTES` have arrived (or at the end of a shorter part) and may raise.
    """

    __slots__ = (
        "_announced", "_check", "_checked", "_limit", "_max", "_pieces", "_server", "_size",
        "_spool", "_spool_bytes", "headers",
    )  # fmt: skip

    def __init__(
        self,
        headers: dict[str, str],
        *,
        max_bytes: int = DEFAULT_SIZE_LIMITS.part_bytes,
        spool_bytes: int = DEFAULT_SIZE_LIMITS.spool_bytes,
        check: PartCheck | None = None,
        server: str = "",
    ) -> None:
        self.headers = headers
        self._server = server
        self._max = max_bytes
        self._spool_bytes = spool_bytes
        self._check = check
        self._checked = check is None
        self._pieces: list[Piece] = []
        self._spool: IO[bytes] | None = None
        self._size = 0
        announced = headers.get("content-length", "").strip()
        self._announced: int | None = None
        if announced:
            if not announced.isdigit():
                raise ProtocolError(
                    f"A multipart part has an unreadable Content-Length {announced[:40]!r}.",
                    server=server,
                    hint=_HINT,
                )
            self._announced = int(announced)
            if self._announced > max_bytes:
                raise self._too_large(self._announced)
        self._limit = max_bytes if self._announced is None else self._announced

    def add(self, piece: Piece) -> None:
        size = self._size + len(piece)
        if size > self._limit:
            if self._announced is not None and size <= self._max:
                raise ProtocolError(
                    f"A multipart part is longer than its Content-Length ({self._announced} bytes).",
                    server=self._server,
                    hint=_HINT,
                )
            raise self._too_large(size)
        if self._spool is not None:
            self._spool.write(piece)
        else:
            self._pieces.append(piece)
            if size > self._spool_bytes:
                self._spill()
        self._size = size
        if not self._checked and size >= SNIFF_BYTES:
            self._run_check()

    def __len__(self) -> int:
        return self._size

    def finish(self, default_type: str = "") -> Part:
        """The complete part (the buffer is empty afterwards)."""
        if not self._checked:
            self._run_check()
        if self._announced is not None and self._size != self._announced:
            raise ProtocolError(
                f"A multipart part is shorter than its Content-Length "
                f"({self._size} of {self._announced} bytes).",
                server=self._server,
                hint="The answer was probably cut off; try again.",
            )
        spool, self._spool = self._spool, None
        if spool is not None:
            part = Part(self.headers, spool=spool, default_type=default_type)
        else:
            part = Part(self.headers, pieces=self._pieces, default_type=default_type)
        self._pieces = []
        return part

    def discard(self) -> None:
        self._pieces = []
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def _spill(self) -> None:
        spool = tempfile.TemporaryFile(prefix="zhiva-part-")  # noqa: SIM115 - kept open
        for piece in self._pieces:
            spool.write(piece)
        self._pieces = []
        self._spool = spool

    def _run_check(self) -> None:
        self._checked = True
        assert self._check is not None
        head = bytearray()
        for piece in self._pieces:
            head += piece[: SNIFF_BYTES - len(head)]
            if len(head) >= SNIFF_BYTES:
                break
        self._check(self.headers, bytes(head))

    def _too_large(self, size: int) -> AnswerTooLarge:
        from ._body import describe_size

        return AnswerTooLarge(
            f"A part of the answer is larger than {describe_size(self._max)} "
            f"({size} bytes or more), the most this viewer reads for one instance "
            "(size limit part_bytes); reading stopped.",
            server=self._server,
            hint="If the server really holds instances this large (e.g. whole-slide images), "
            "raise the part limit; otherwise report the server's answer to its administrator.",
            limit="part_bytes",
            max_bytes=self._max,
        )


def parse_content_type(value: str, *, server: str = "") -> tuple[str, dict[str, str]]:
    """Split a Content-Type value into its lower-cased media type and its parameters.

    Parameter names are lower-cased, values kept as sent (boundaries are case-sensitive).
    Quoted values may hold ``;`` and backslash escapes (RFC 9110 §5.6.4). Lenient where it
    costs nothing: parameters without ``=`` and text after a closing quote are ignored,
    and the first of repeated parameters wins.
    """
    media_type, _, rest = value.partition(";")
    media_type = media_type.strip().lower()
    if not _MEDIA_TYPE.fullmatch(media_type):
        raise ProtocolError(f"Unreadable Content-Type {value!r}.", server=server, hint=_HINT)
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t;":
            i += 1
        j = i
        while j < n and rest[j] not in "=;":
            j += 1
        name = rest[i:j].strip().lower()
        if j >= n or rest[j] == ";":
            i = j
            continue
        i = j + 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            i += 1
            chars: list[str] = []
            while True:
                if i >= n:
                    raise ProtocolError(
                        f"Unterminated quoted string in Content-Type {value!r}.",
                        server=server,
                        hint=_HINT,
                    )
                c = rest[i]
                if c == "\\" and i + 1 < n:
                    chars.append(rest[i + 1])
                    i += 2
                elif c == '"':
                    i += 1
                    break
                else:
                    chars.append(c)
                    i += 1
            param_value = "".join(chars)
            j = rest.find(";", i)
            i = n if j < 0 else j
        else:
            j = rest.find(";", i)
            j = n if j < 0 else j
            param_value = rest[i:j].strip()
            i = j
        if name and name not in params:
            params[name] = param_value
    return media_type, params


class MultipartParser:
    """Incremental parser of one multipart body; `feed` chunks, then `close`.

    Chunks may be split anywhere, down to single bytes. Preamble and epilogue are
    ignored, as is transport padding after a boundary. Delimiters need CRLF (RFC 2046);
    part headers may end lines with bare LF. ``CRLF--boundary`` followed by anything but
    ``--``, whitespace or a line end is body text. After a `ProtocolError` the parser
    is unusable.
    """

    def __init__(
        self,
        content_type: str,
        *,
        server: str = "",
        max_part_bytes: int = DEFAULT_SIZE_LIMITS.part_bytes,
        spool_bytes: int = DEFAULT_SIZE_LIMITS.spool_bytes,
        check_part: PartCheck | None = None,
    ) -> None:
        media_type, params = parse_content_type(content_type, server=server)
        if not media_type.startswith("multipart/"):
            raise ProtocolError(
                f"Expected a multipart answer, got {media_type!r}.", server=server, hint=_HINT
            )
        boundary = params.get("boundary", "")
        if not 1 <= len(boundary) <= MAX_BOUNDARY_LENGTH or "\r" in boundary or "\n" in boundary:
            raise ProtocolError(
                f"The multipart Content-Type has no usable boundary ({content_type!r}).",
                server=server,
                hint=_HINT,
            )
        try:
            self._delimiter = b"\r\n--" + boundary.encode("ascii")
        except UnicodeEncodeError:
            raise ProtocolError(
                f"The multipart boundary is not ASCII ({content_type!r}).",
                server=server,
                hint=_HINT,
            ) from None
        self.boundary: Final = boundary
        self._server = server
        self._state = _PREAMBLE
        # Bytes not yet settled, kept between chunks: a possible delimiter start, an
        # incomplete header block. It starts with the CRLF that RFC 2046 lets the first
        # delimiter omit, so one search finds every delimiter.
        self._carry = bytearray(b"\r\n")
        # How far into the carried bytes a search already looked.
        self._skip = 0
        self._preamble_length = 0
        self._first_line_checked = False
        self._headers: dict[str, str] = {}
        self._max_part_bytes = max_part_bytes
        self._spool_bytes = spool_bytes
        self._check_part = check_part
        self._part: PartBuffer | None = None
        #: For parts without a Content-Type: the root's ``type``, and a top-level
        #: ``transfer-syntax`` that a server wrote beside an unquoted ``type``.
        default_type = params.get("type", "")
        syntax = params.get("transfer-syntax", "")
        if default_type and syntax and "transfer-syntax" not in default_type.lower():
            default_type = f"{default_type}; transfer-syntax={syntax}"
        self.default_type: Final = default_type

    def feed(self, chunk: bytes) -> list[Part]:
        """Parse the next chunk; returns the parts it completed, in order."""
        if self._state == _EPILOGUE or not chunk:
            return []
        data = chunk if type(chunk) is bytes else bytes(chunk)
        parts: list[Part] = []
        pos = 0
        carry = self._carry
        if carry:
            # Settle the border with the previous chunk in the small carry buffer, then go
            # on in the chunk itself from where the carried bytes end.
            j = min(len(data), _JUNCTION)
            carry += memoryview(data)[:j]
            stop = self._process(carry, 0, parts)
            retained = len(carry) - stop
            if j == len(data):
                del carry[:stop]
                return parts
            if retained > j:  # still unsettled (long header block, padding): go slow
                carry += memoryview(data)[j:]
                stop = self._process(carry, stop, parts)
                del carry[:stop]
                return parts
            carry.clear()
            pos = j - retained
        stop = self._process(data, pos, parts)
        carry += memoryview(data)[stop:]
        return parts

    def abort(self) -> None:
        """Drop what is buffered (the reading stopped early); the parser is unusable."""
        self._carry.clear()
        if self._part is not None:
            self._part.discard()
            self._part = None

    def close(self) -> None:
        """Check that the body ended with the close delimiter (``--boundary--``)."""
        state = self._state
        self.abort()
        if state == _EPILOGUE:
            return
        if state == _PREAMBLE:
            raise ProtocolError(
                f"The multipart answer contains no boundary {self.boundary!r}.",
                server=self._server,
                hint=_HINT,
            )
        raise ProtocolError(
            "The multipart answer ended before its closing boundary (truncated).",
            server=self._server,
            hint="The connection was probably cut; try again.",
        )

    # -- internals ---------------------------------------------------------------------

    def _process(self, data: bytes | bytearray, pos: int, parts: list[Part]) -> int:
        """Run the state machine over ``data[pos:]``; returns where the unsettled bytes
        start (they must be offered again, followed by the next bytes)."""
        end = len(data)
        delimiter = self._delimiter
        dlen = len(delimiter)
        while True:
            state = self._state
            if state == _BODY:
                start = pos + self._skip
                self._skip = 0
                while True:
                    s = data.find(delimiter, start)
                    if s < 0:
                        stop = max(pos, end - dlen + 1)
                        if stop > pos:
                            self._add_piece(data, pos, stop)
                        return stop
                    kind, after = self._classify(data, s + dlen, end)
                    if kind == _NOT_DELIMITER:
                        start = s + 1
                        continue
                    if s > pos:
                        self._add_piece(data, pos, s)
                    if kind == _NEED_MORE:
                        return s
                    assert self._part is not None
                    parts.append(self._part.finish(self.default_type))
                    self._part = None
                    self._headers = {}
                    pos = after
                    self._state = _EPILOGUE if kind == _CLOSE else _HEADERS
                    break
            elif state == _HEADERS:
                if pos >= end:
                    return pos
                first = data[pos]
                if first in (_LF, _CR):
                    if first == _CR and pos + 1 >= end:
                        return pos
                    if first == _LF or data[pos + 1] == _LF:
                        pos += 1 if first == _LF else 2
                        self._begin_part()
                        continue
                match = _BLANK_LINE.search(data, pos + self._skip, pos + MAX_HEADER_BLOCK)
                if match is None:
                    self._check_partial_headers(data, pos, end)
                    self._skip = max(0, end - pos - 3)
                    return pos
                self._skip = 0
                self._first_line_checked = False
                self._headers = self._parse_headers(data[pos : match.start()])
                pos = match.end()
                self._begin_part()
            elif state == _PREAMBLE:
                start = pos + self._skip
                self._skip = 0
                while True:
                    s = data.find(delimiter, start)
                    if s < 0:
                        stop = max(pos, end - dlen + 1)
                        self._count_preamble(stop - pos)
                        return stop
                    kind, after = self._classify(data, s + dlen, end)
                    if kind == _NOT_DELIMITER:
                        start = s + 1
                        continue
                    self._count_preamble(s - pos)
                    if kind == _NEED_MORE:
                        return s
                    pos = after
                    self._state = _EPILOGUE if kind == _CLOSE else _HEADERS
                    break
            else:
                return end

    def _classify(self, data: bytes | bytearray, i: int, end: int) -> tuple[int, int]:
        """What the bytes after a ``CRLF--boundary`` at ``data[i:]`` make of it, and where
        the next part's header block starts."""
        if i >= end:
            return _NEED_MORE, i
        c = data[i]
        if c == _DASH:
            if i + 1 >= end:
                return _NEED_MORE, i
            return (_CLOSE, i + 2) if data[i + 1] == _DASH else (_NOT_DELIMITER, i)
        j = i
        while j < end and (data[j] == 0x20 or data[j] == 0x09):
            j += 1
            if j - i > MAX_TRANSPORT_PADDING:
                raise ProtocolError(
                    "Endless whitespace after a multipart boundary.",
                    server=self._server,
                    hint=_HINT,
                )
        if j >= end:
            return _NEED_MORE, i
        c = data[j]
        if c == _LF:
            return _DELIMITER, j + 1
        if c == _CR:
            if j + 1 >= end:
                return _NEED_MORE, i
            if data[j + 1] == _LF:
                return _DELIMITER, j + 2
        return _NOT_DELIMITER, i

    def _begin_part(self) -> None:
        self._state = _BODY
        self._part = PartBuffer(
            self._headers,
            max_bytes=self._max_part_bytes,
            spool_bytes=self._spool_bytes,
            check=self._check_part,
            server=self._server,
        )

    def _add_piece(self, data: bytes | bytearray, start: int, stop: int) -> None:
        assert self._part is not None
        if type(data) is bytes:
            # A view: the body is copied once, when the part is joined.
            self._part.add(memoryview(data)[start:stop])
        else:
            # The carry buffer changes under a view; copy (it holds few bytes).
            with memoryview(data) as view:
                self._part.add(view[start:stop].tobytes())

    def _count_preamble(self, length: int) -> None:
        self._preamble_length += length
        if self._preamble_length > MAX_PREAMBLE:
            raise ProtocolError(
                f"No multipart boundary {self.boundary!r} in the first "
                f"{MAX_PREAMBLE // 1024} KiB of the answer.",
                server=self._server,
                hint=_HINT,
            )

    def _check_partial_headers(self, data: bytes | bytearray, pos: int, end: int) -> None:
        """Fail early on a header block that cannot become one, instead of buffering."""
        if end - pos > MAX_HEADER_BLOCK:
            raise ProtocolError(
                f"A multipart part's header block exceeds {MAX_HEADER_BLOCK // 1024} KiB.",
                server=self._server,
                hint=_HINT,
            )
        if self._first_line_checked:
            return
        # A first newline would have been seen in the bytes searched before.
        newline = data.find(b"\n", pos + self._skip, end)
        if newline < 0:
            return
        if data.find(b":", pos, newline) < 0:
            raise ProtocolError(
                "A multipart part does not start with headers.", server=self._server, hint=_HINT
            )
        self._first_line_checked = True

    def _parse_headers(self, block: bytes | bytearray) -> dict[str, str]:
        headers: dict[str, str] = {}
        name = ""
        for raw_line in block.decode("latin-1").split("\n"):
            line = raw_line.removesuffix("\r")
            if line[:1] in (" ", "\t") and name:
                # An obsolete folded continuation line (RFC 5322 §2.2.3).
                headers[name] = f"{headers[name]} {line.strip()}".strip()
                continue
            field, colon, value = line.partition(":")
            name = field.rstrip(" \t").lower()
            if not colon or not _TOKEN.fullmatch(name):
                raise ProtocolError(
                    f"Malformed multipart part header {line[:80]!r}.",
                    server=self._server,
                    hint=_HINT,
                )
            value = value.strip()
            # Repeated fields join as a list (RFC 9110 §5.3).
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return headers


def iter_parts(
    chunks: Iterable[bytes], content_type: str, *, server: str = "", **bounds: Any
) -> Iterator[Part]:
    """Parts of a multipart body given as chunks, each as soon as it is complete.

    `bounds` are `MultipartParser`'s ``max_part_bytes``, ``spool_bytes`` and ``check_part``.
    """
    parser = MultipartParser(content_type, server=server, **bounds)
    for chunk in chunks:
        yield from parser.feed(chunk)
    parser.close()


def encode_multipart(
    bodies: Sequence[bytes], content_type: str, boundary: str | None = None
) -> tuple[bytes, str]:
    """A multipart/related body with one part of ``content_type`` per body (STOW-RS).

    Returns the body and its Content-Type header value, e.g.
    ``multipart/related; type="application/dicom"; boundary=...``. Without ``boundary``
    a random one is chosen that occurs in no body; a given one that occurs raises
    `ValueError` (PS3.18 §8.6.1.2, RFC 2046 §5.1.1).
    """
    if not bodies:
        raise ValueError("a multipart body needs at least one part")
    if "\r" in content_type or "\n" in content_type:
        raise ValueError(f"line break in content type {content_type!r}")
    if boundary is None:
        while True:
            boundary = f"zhiva-{secrets.token_hex(16)}"
            if not any(b"--" + boundary.encode("ascii") in body for body in bodies):
                break
    else:
        if not _BOUNDARY.fullmatch(boundary):
            raise ValueError(f"invalid multipart boundary {boundary!r} (RFC 2046 §5.1.1)")
        if any(b"--" + boundary.encode("ascii") in body for body in bodies):
            raise ValueError(f"boundary {boundary!r} occurs in a part body")
    dash_boundary = b"--" + boundary.encode("ascii")
    part_start = (
        dash_boundary + b"\r\nContent-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    )
    pieces: list[bytes] = []
    for body in bodies:
        pieces += (b"\r\n" if pieces else b"", part_start, body)
    pieces += (b"\r\n", dash_boundary, b"--\r\n")
    quoted_type = content_type.replace("\\", "\\\\").replace('"', '\\"')
    boundary_value = boundary if _TOKEN.fullmatch(boundary) else f'"{boundary}"'
    header = f'multipart/related; type="{quoted_type}"; boundary={boundary_value}'
    return b"".join(pieces), header
