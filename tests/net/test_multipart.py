"""multipart/related parsing and encoding (RFC 2046 §5.1, RFC 2387, PS3.18 §8.7)."""

from __future__ import annotations

import contextlib
import io
import itertools
from unittest import mock

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from net._errors import ProtocolError
from net._multipart import (
    MAX_HEADER_BLOCK,
    MAX_PREAMBLE,
    MultipartParser,
    Part,
    PartReader,
    encode_multipart,
    iter_parts,
    parse_content_type,
)

BOUNDARY = "b0undary"
CT = f"multipart/related; type=application/dicom; boundary={BOUNDARY}"
FRAMES_CT = (
    'multipart/related; type="application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"; '
    f"boundary={BOUNDARY}"
)

# Two parts as a server sends them: no preamble, CRLF everywhere, close delimiter + CRLF.
SIMPLE = (
    b"--b0undary\r\n"
    b"Content-Type: application/dicom\r\n"
    b"Content-Location: /studies/1/series/2/instances/3\r\n"
    b"\r\n"
    b"first body\r\n"
    b"--b0undary\r\n"
    b"Content-Type: application/dicom\r\n"
    b"\r\n"
    b"second\r\nbody\r\n"
    b"--b0undary--\r\n"
)
SIMPLE_PARTS = [
    Part(
        headers={
            "content-type": "application/dicom",
            "content-location": "/studies/1/series/2/instances/3",
        },
        body=b"first body",
    ),
    Part(headers={"content-type": "application/dicom"}, body=b"second\r\nbody"),
]


def parse(chunks: list[bytes], content_type: str = CT) -> list[Part]:
    return list(iter_parts(chunks, content_type))


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# -- parse_content_type ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "media_type", "params"),
    [
        ("application/dicom", "application/dicom", {}),
        ("Application/DICOM+JSON", "application/dicom+json", {}),
        (
            FRAMES_CT,
            "multipart/related",
            {
                "type": "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1",
                "boundary": BOUNDARY,
            },
        ),
        (
            'multipart/related; boundary="a b:c=d"; type="application/dicom"',
            "multipart/related",
            {"boundary": "a b:c=d", "type": "application/dicom"},
        ),
        (
            "  multipart/related ;TYPE = application/dicom ;  Boundary=AbC-123 ; ",
            "multipart/related",
            {"type": "application/dicom", "boundary": "AbC-123"},
        ),
        (
            r'multipart/related; boundary="quote\"back\\slash;semi"',
            "multipart/related",
            {"boundary": 'quote"back\\slash;semi'},
        ),
        ('text/plain; charset="utf-8"junk; x=1', "text/plain", {"charset": "utf-8", "x": "1"}),
        ("text/plain; flag; charset=ascii", "text/plain", {"charset": "ascii"}),
        ("text/plain; a=1; A=2", "text/plain", {"a": "1"}),
        ('text/plain; empty=""', "text/plain", {"empty": ""}),
    ],
)
def test_parse_content_type(value: str, media_type: str, params: dict[str, str]) -> None:
    assert parse_content_type(value) == (media_type, params)


def test_frames_transfer_syntax_is_read_from_the_quoted_type() -> None:
    _, params = parse_content_type(FRAMES_CT)
    part_type, part_params = parse_content_type(params["type"])
    assert part_type == "application/octet-stream"
    assert part_params == {"transfer-syntax": "1.2.840.10008.1.2.1"}


@pytest.mark.parametrize(
    "value", ["", "   ", "multipart", "/related", "a b/c", 'multipart/related; boundary="open']
)
def test_parse_content_type_rejects_malformed(value: str) -> None:
    with pytest.raises(ProtocolError):
        parse_content_type(value)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/dicom; boundary=x",
        "multipart/related; type=application/dicom",
        'multipart/related; boundary=""',
        "multipart/related; boundary=" + "x" * 71,
        "multipart/related; boundary=gr\u00fc\u00df",
        "text/html",
    ],
)
def test_parser_needs_a_multipart_type_with_a_boundary(content_type: str) -> None:
    with pytest.raises(ProtocolError):
        MultipartParser(content_type)


def test_parser_errors_name_the_server() -> None:
    with pytest.raises(ProtocolError) as info:
        MultipartParser("text/html", server="PACS 1")
    assert info.value.server == "PACS 1"
    assert str(info.value).startswith("PACS 1: ")


def test_boundary_of_70_characters_is_accepted() -> None:
    boundary = "x" * 70
    data = f"--{boundary}\r\n\r\nbody\r\n--{boundary}--".encode()
    assert parse([data], f"multipart/related; boundary={boundary}") == [Part({}, b"body")]


# -- parsing -----------------------------------------------------------------------------


def test_two_parts_in_one_chunk() -> None:
    parts = parse([SIMPLE])
    assert parts == SIMPLE_PARTS
    assert parts[0].content_type == "application/dicom"
    assert all(type(part.body) is bytes for part in parts)


def test_feed_returns_parts_as_soon_as_their_delimiter_is_complete() -> None:
    parser = MultipartParser(CT)
    cut = SIMPLE.index(b"\r\n--b0undary\r\nContent-Type: application/dicom\r\n\r\nsecond")
    assert parser.feed(SIMPLE[: cut + len(b"\r\n--b0undary")]) == []
    assert parser.feed(b"\r") == []
    assert parser.feed(b"\n") == SIMPLE_PARTS[:1]
    assert parser.feed(SIMPLE[cut + len(b"\r\n--b0undary\r\n") :]) == SIMPLE_PARTS[1:]
    parser.close()


def test_preamble_and_epilogue_are_ignored() -> None:
    data = (
        b"This is a preamble; --b0undary here is not at a line start.\r\n"
        b"--b0undaryX is a different boundary line.\r\n"
        b"\r\n" + SIMPLE + b"epilogue\r\n--b0undary\r\nmore junk"
    )
    assert parse([data]) == SIMPLE_PARTS


@pytest.mark.parametrize("junction", [1, 5, 1024])
def test_every_single_split_point(junction: int) -> None:
    with mock.patch("net._multipart._JUNCTION", junction):
        for cut in range(len(SIMPLE) + 1):
            assert parse(split_at(SIMPLE, [cut])) == SIMPLE_PARTS, cut


def test_every_pair_of_split_points_around_a_delimiter() -> None:
    start = SIMPLE.index(b"first body") + 5
    stop = SIMPLE.index(b"second")
    for a in range(start, stop):
        for b in range(a, stop + 1):
            assert parse(split_at(SIMPLE, [a, b])) == SIMPLE_PARTS, (a, b)


def test_one_byte_chunks() -> None:
    assert parse([SIMPLE[i : i + 1] for i in range(len(SIMPLE))]) == SIMPLE_PARTS


def test_chunks_may_be_bytearray_or_memoryview_and_bodies_are_copies() -> None:
    source = bytearray(SIMPLE)
    parser = MultipartParser(CT)
    parts = parser.feed(source) + parser.feed(memoryview(b""))
    parser.close()
    source[:] = b"x" * len(source)
    assert parts == SIMPLE_PARTS


def test_parts_without_headers_and_empty_bodies() -> None:
    data = (
        b"--b0undary\r\n\r\nno headers\r\n"
        b"--b0undary\r\n\r\n\r\n"
        b"--b0undary\r\nContent-Type: application/dicom\r\n\r\n\r\n"
        b"--b0undary\r\n\r\n\r\n\r\n"
        b"--b0undary--"
    )
    expected = [
        Part({}, b"no headers"),
        Part({}, b""),
        Part({"content-type": "application/dicom"}, b""),
        Part({}, b"\r\n"),
    ]
    for cut in range(len(data) + 1):
        assert parse(split_at(data, [cut])) == expected, cut
    assert expected[0].content_type == ""


def test_boundary_text_inside_a_body_is_not_a_delimiter() -> None:
    bodies = [
        b"--b0undary at the start",
        b"in the--b0undary middle",
        b"after LF\n--b0undary\r\nstill body",
        b"after CR\r--b0undary\r\nstill body",
        b"longer boundary\r\n--b0undaryX\r\nstill body",
        b"almost close\r\n--b0undary-x\r\n",
        b"bare CR after it\r\n--b0undary\rstill body",
        b"at the end --b0undary",
        b"--b0undary--",
    ]
    data = b"".join(b"--b0undary\r\n\r\n" + body + b"\r\n" for body in bodies) + b"--b0undary--"
    expected = [Part({}, body) for body in bodies]
    assert parse([data]) == expected
    assert parse([data[i : i + 1] for i in range(len(data))]) == expected


def test_transport_padding_after_boundaries() -> None:
    data = (
        b"--b0undary \t \r\n\r\none\r\n"
        b"--b0undary\t\r\nContent-Type: text/plain\r\n\r\ntwo\r\n"
        b"--b0undary--  \r\n"
    )
    expected = [Part({}, b"one"), Part({"content-type": "text/plain"}, b"two")]
    for cut in range(len(data) + 1):
        assert parse(split_at(data, [cut])) == expected, cut


def test_bare_lf_in_boundary_lines_and_headers_is_tolerated() -> None:
    data = (
        b"--b0undary\nContent-Type: application/dicom\nX-Id: 1\n\nbody one\r\n"
        b"--b0undary\n\nbody two\r\n"
        b"--b0undary\r\nContent-Type: a/b\n\r\nbody three\r\n"
        b"--b0undary--"
    )
    expected = [
        Part({"content-type": "application/dicom", "x-id": "1"}, b"body one"),
        Part({}, b"body two"),
        Part({"content-type": "a/b"}, b"body three"),
    ]
    for cut in range(len(data) + 1):
        assert parse(split_at(data, [cut])) == expected, cut


def test_header_folding_repeats_and_case() -> None:
    data = (
        b"--b0undary\r\n"
        b"CONTENT-TYPE : application/octet-stream;\r\n"
        b"\ttransfer-syntax=1.2.840.10008.1.2.1\r\n"
        b"X-Tag: a\r\nx-tag: b\r\n"
        b"\r\nbody\r\n--b0undary--\r\n"
    )
    (part,) = parse([data])
    assert part.content_type == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    assert part.headers["x-tag"] == "a, b"


def test_missing_crlf_after_the_close_delimiter_is_fine() -> None:
    assert parse([SIMPLE.removesuffix(b"\r\n")]) == SIMPLE_PARTS


def test_close_delimiter_only_means_no_parts() -> None:
    assert parse([b"--b0undary--\r\n"]) == []


def test_nothing_after_close_is_parsed() -> None:
    parser = MultipartParser(CT)
    assert parser.feed(SIMPLE) == SIMPLE_PARTS
    assert parser.feed(b"--b0undary\r\n\r\nlate\r\n--b0undary--") == []
    parser.close()


def test_frames_response_from_orthanc() -> None:
    frame = bytes(range(256)) * 8
    data = (
        b"--b0undary\r\n"
        b"Content-Type: application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1\r\n"
        b"Content-Location: http://pacs/dicom-web/studies/1/series/2/instances/3/frames/1\r\n"
        b"\r\n" + frame + b"\r\n--b0undary--\r\n"
    )
    (part,) = parse([data[i : i + 100] for i in range(0, len(data), 100)], FRAMES_CT)
    assert part.body == frame
    assert parse_content_type(part.content_type)[1]["transfer-syntax"] == "1.2.840.10008.1.2.1"


def test_long_header_block_across_many_chunks() -> None:
    # Longer than the carry buffer's junction, so a header block straddles several chunks.
    value = "v" * 5000
    body = bytes(range(256)) * 40
    data = (
        f"--{BOUNDARY}\r\nX-Long: {value}\r\n\r\n".encode()
        + body
        + f"\r\n--{BOUNDARY}\r\nX-Long: {value}\r\n\r\n".encode()
        + body
        + f"\r\n--{BOUNDARY}--".encode()
    )
    expected = [Part({"x-long": value}, body)] * 2
    for size in (1, 7, 700, 1023, 1024, 1025, 3000, 6000, 70000):
        assert parse([data[i : i + size] for i in range(0, len(data), size)]) == expected, size


def test_part_repr_does_not_dump_the_body() -> None:
    part = Part({"content-type": "application/dicom"}, b"x" * 1_000_000)
    assert repr(part) == "Part(content_type='application/dicom', body=<1000000 bytes>)"


# -- malformed input ---------------------------------------------------------------------


def test_truncated_stream_fails_on_close() -> None:
    end = SIMPLE.index(b"--b0undary--") + len(b"--b0undary--")
    for cut in range(end):
        parser = MultipartParser(CT)
        parser.feed(SIMPLE[:cut])
        with pytest.raises(ProtocolError, match=r"truncated|no boundary"):
            parser.close()


def test_truncation_inside_a_body_says_so() -> None:
    parser = MultipartParser(CT)
    parser.feed(SIMPLE[: SIMPLE.index(b"body")])
    with pytest.raises(ProtocolError, match="truncated"):
        parser.close()


def test_no_boundary_at_all() -> None:
    parser = MultipartParser(CT)
    assert parser.feed(b"\x00\x01DICM" * 100) == []
    with pytest.raises(ProtocolError, match="no boundary"):
        parser.close()


def test_a_body_without_boundary_fails_before_it_is_all_read() -> None:
    parser = MultipartParser(CT)
    with pytest.raises(ProtocolError, match="No multipart boundary"):
        for _ in range(MAX_PREAMBLE // 1000 + 2):
            parser.feed(b"\x00" * 1000)


@pytest.mark.parametrize(
    "block",
    [
        b"this is not a header\r\n\r\n",
        b"Content-Type: a/b\r\nno colon here\r\n\r\n",
        b"Bad Name: x\r\n\r\n",
        b": no name\r\n\r\n",
        b"\x00\x01\x02\x03binary\n\x04\x05",  # a body without headers or blank line
    ],
)
def test_garbage_in_place_of_headers(block: bytes) -> None:
    data = b"--b0undary\r\n" + block + b"body\r\n--b0undary--\r\n"
    with pytest.raises(ProtocolError):
        parse([data])
    with pytest.raises(ProtocolError):
        parse([data[i : i + 1] for i in range(len(data))])


def test_header_block_without_end_fails_when_too_long() -> None:
    parser = MultipartParser(CT)
    parser.feed(b"--b0undary\r\nX-Big: ")
    with pytest.raises(ProtocolError, match="header block"):
        for _ in range(MAX_HEADER_BLOCK // 4096 + 2):
            parser.feed(b"y" * 4096)


def test_endless_transport_padding_fails() -> None:
    parser = MultipartParser(CT)
    with pytest.raises(ProtocolError, match="whitespace"):
        parser.feed(b"--b0undary" + b" " * 5000)


# -- encoding ----------------------------------------------------------------------------


def test_encode_multipart_layout() -> None:
    body, content_type = encode_multipart([b"one", b"two"], "application/dicom", "xyz")
    assert content_type == 'multipart/related; type="application/dicom"; boundary=xyz'
    assert body == (
        b"--xyz\r\nContent-Type: application/dicom\r\n\r\none\r\n"
        b"--xyz\r\nContent-Type: application/dicom\r\n\r\ntwo\r\n"
        b"--xyz--\r\n"
    )


def test_encode_multipart_random_boundary_round_trips() -> None:
    bodies = [b"\x00DICM" * 50, b"", b"\r\n--\r\n"]
    body, content_type = encode_multipart(bodies, "application/dicom")
    media_type, params = parse_content_type(content_type)
    assert media_type == "multipart/related"
    assert params["type"] == "application/dicom"
    assert 1 <= len(params["boundary"]) <= 70
    assert [p.body for p in parse([body], content_type)] == bodies
    assert encode_multipart(bodies, "application/dicom")[1] != content_type


def test_encode_multipart_avoids_a_random_boundary_found_in_a_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tokens = iter(["clash", "fresh"])
    monkeypatch.setattr("net._multipart.secrets.token_hex", lambda _n: next(tokens))
    body, content_type = encode_multipart([b"a --zhiva-clash b"], "application/dicom")
    assert content_type.endswith("boundary=zhiva-fresh")
    assert [p.body for p in parse([body], content_type)] == [b"a --zhiva-clash b"]


def test_encode_multipart_quotes_what_needs_quoting() -> None:
    body, content_type = encode_multipart([b"x"], 'application/x"y', "a b:c")
    assert content_type == r'multipart/related; type="application/x\"y"; boundary="a b:c"'
    _, params = parse_content_type(content_type)
    assert params == {"type": 'application/x"y', "boundary": "a b:c"}
    assert parse([body], content_type) == [Part({"content-type": 'application/x"y'}, b"x")]


@pytest.mark.parametrize(
    ("bodies", "content_type", "boundary"),
    [
        ([], "application/dicom", None),
        ([b"x --abc y"], "application/dicom", "abc"),
        ([b"x"], "application/dicom", ""),
        ([b"x"], "application/dicom", "x" * 71),
        ([b"x"], "application/dicom", "trailing "),
        ([b"x"], "application/dicom", "semi;colon"),
        ([b"x"], "application/dicom\r\nX-Evil: 1", None),
    ],
)
def test_encode_multipart_rejects(
    bodies: list[bytes], content_type: str, boundary: str | None
) -> None:
    with pytest.raises(ValueError):
        encode_multipart(bodies, content_type, boundary)


# -- properties --------------------------------------------------------------------------

BCHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'()+_,-./:=?"
boundaries = st.text(BCHARS, min_size=1, max_size=70)
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def tricky_bytes(draw: st.DrawFn, boundary: str, max_pieces: int = 12) -> bytes:
    """Binary with CRLFs, dashes and fragments of the boundary mixed in."""
    fragments = [boundary.encode()[: i + 1] for i in range(len(boundary))]
    piece = st.one_of(
        st.binary(max_size=40),
        st.sampled_from([b"\r\n", b"\r", b"\n", b"-", b"--", b"\r\n--", b"\r\n-", b" ", b"\t"]),
        st.sampled_from(fragments),
    )
    return b"".join(draw(st.lists(piece, max_size=max_pieces)))


#: Sizes of the carry buffer's junction: small ones send bytes of these short bodies
#: through the zero-copy path that real 64 KiB chunks take.
junctions = st.sampled_from([1, 2, 3, 8, 40, 1024])


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    if draw(st.booleans()):
        size = draw(st.integers(1, max(1, len(data))))
        return [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=12))
    return split_at(data, cuts)


@PROPERTY_SETTINGS
@given(st.data(), boundaries)
def test_round_trip_through_encode_multipart(data: st.DataObject, boundary: str) -> None:
    bodies = data.draw(st.lists(tricky_bytes(boundary), min_size=1, max_size=5))
    assume(not any(b"--" + boundary.encode() in body for body in bodies))
    encoded, content_type = encode_multipart(bodies, "application/dicom", boundary)
    chunks = data.draw(chunked(encoded))
    with mock.patch("net._multipart._JUNCTION", data.draw(junctions)):
        parts = parse(chunks, content_type)
    assert [part.body for part in parts] == bodies
    assert all(part.content_type == "application/dicom" for part in parts)


@PROPERTY_SETTINGS
@given(st.data(), boundaries)
def test_parse_of_hand_built_bodies(data: st.DataObject, boundary: str) -> None:
    """Preamble, epilogue, padding, parts with and without headers, bodies holding
    ``--boundary`` anywhere but right after a CRLF."""
    b = boundary.encode()
    delimiter = b"\r\n--" + b

    def body_ok(body: bytes) -> bool:
        return delimiter not in body

    preamble = data.draw(tricky_bytes(boundary, 6))
    assume(delimiter not in b"\r\n" + preamble)
    header_sets = st.lists(
        st.tuples(st.sampled_from(["content-type", "content-location", "x-a"]), st.text("ab/;= ")),
        max_size=3,
        unique_by=lambda kv: kv[0],
    )
    parts = data.draw(
        st.lists(st.tuples(header_sets, tricky_bytes(boundary).filter(body_ok)), max_size=5)
    )
    pad = st.sampled_from([b"", b" ", b"\t ", b"  "])
    newline = st.sampled_from([b"\r\n", b"\r\n", b"\n"])
    pieces = [preamble + b"\r\n" if preamble else b""]
    for headers, body in parts:
        pieces.append(b"--" + b + data.draw(pad) + data.draw(newline))
        for name, value in headers:
            pieces.append(f"{name}: {value.strip()}".encode() + data.draw(newline))
        pieces.append(data.draw(newline) + body + b"\r\n")
    pieces.append(b"--" + b + b"--" + data.draw(pad))
    pieces.append(data.draw(st.sampled_from([b"", b"\r\n", b"\r\nepilogue --" + b + b"\r\n"])))
    encoded = b"".join(pieces)
    chunks = data.draw(chunked(encoded))
    quoted = boundary.replace("\\", "\\\\").replace('"', '\\"')
    with mock.patch("net._multipart._JUNCTION", data.draw(junctions)):
        got = parse(chunks, f'multipart/related; boundary="{quoted}"')
    assert got == [
        Part({name: value.strip() for name, value in headers}, body) for headers, body in parts
    ]


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(st.binary(min_size=0, max_size=40), min_size=0, max_size=6),
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("read"), st.integers(min_value=-1, max_value=50)),
            st.tuples(st.just("readinto"), st.integers(min_value=0, max_value=50)),
            st.tuples(st.just("seek"), st.integers(min_value=0, max_value=250)),
        ),
        max_size=40,
    ),
)
def test_part_reader_reads_like_a_file_over_the_joined_pieces(
    pieces: list[bytes], ops: list[tuple[str, int]]
) -> None:
    # pydicom reads a header in hundreds of small reads: the reader's fast path for reads
    # inside one piece must agree with a plain file at every piece boundary and seek.
    reader = PartReader(pieces)
    reference = io.BytesIO(b"".join(pieces))
    for op, n in ops:
        if op == "read":
            assert reader.read(n) == reference.read(n)
        elif op == "readinto":
            mine, theirs = bytearray(n), bytearray(n)
            assert reader.readinto(mine) == reference.readinto(theirs)
            assert mine == theirs
        else:
            assert reader.seek(n) == reference.seek(n)
        assert reader.tell() == reference.tell()


# -- bounds: part size, Content-Length, spooling, the first-bytes check ---------------


def test_a_part_larger_than_the_limit_is_refused_while_it_arrives() -> None:
    parser = MultipartParser(CT, max_part_bytes=1000)
    parser.feed(b"--b0undary\r\n\r\n" + b"x" * 1000)  # exactly the limit: fine
    # (The last bytes of a chunk wait for the next: they may start a delimiter.)
    with pytest.raises(ProtocolError, match="larger than 1000 bytes"):
        parser.feed(b"x" * 100)


def test_a_part_is_held_to_its_content_length() -> None:
    def body(length: int, size: int) -> bytes:
        head = f"--b0undary\r\nContent-Length: {length}\r\n\r\n".encode()
        return head + b"x" * size + b"\r\n--b0undary--\r\n"

    assert parse([body(10, 10)])[0].body == b"x" * 10
    with pytest.raises(ProtocolError, match="shorter than its Content-Length"):
        parse([body(10, 9)])
    with pytest.raises(ProtocolError, match="longer than its Content-Length"):
        parse([body(10, 11)])
    with pytest.raises(ProtocolError, match="larger than 2 GiB"):
        parse([body(3 * 1024**3, 1)])
    with pytest.raises(ProtocolError, match="unreadable Content-Length"):
        parse([b"--b0undary\r\nContent-Length: -1\r\n\r\nx\r\n--b0undary--"])


@pytest.mark.parametrize("chunk", [1, 100, 10**6])
def test_a_large_part_goes_to_a_temporary_file_and_reads_back_whole(chunk: int) -> None:
    payload = bytes(range(256)) * 40  # 10 KiB, spooled past 1 KiB
    data = b"--b0undary\r\n\r\n" + payload + b"\r\n--b0undary\r\n\r\nsmall\r\n--b0undary--"
    parts = list(
        iter_parts(split_at(data, list(range(chunk, len(data), chunk))), CT, spool_bytes=1024)
    )
    assert [len(p) for p in parts] == [len(payload), 5]
    with parts[0].open() as f:
        assert f.read(4) == payload[:4]
        f.seek(-4, io.SEEK_END)
        assert f.read() == payload[-4:]
    assert parts[0].body == payload and parts[1].body == b"small"


def test_the_check_sees_the_first_bytes_of_each_part_before_the_rest_arrives() -> None:
    seen: list[tuple[str, bytes]] = []

    def check(headers: object, head: bytes) -> None:
        seen.append((dict(headers).get("content-type", ""), head))  # type: ignore[call-overload]
        if head.startswith(b"bad"):
            raise ProtocolError("not good")

    parser = MultipartParser(CT, check_part=check)
    assert parser.feed(b"--b0undary\r\nContent-Type: a/b\r\n\r\ngood" + b"." * 200) == []
    assert seen == [("a/b", b"good" + b"." * 128)]  # SNIFF_BYTES, before the part is complete
    parser.feed(b"\r\n--b0undary\r\n\r\nshort\r\n--b0undary\r\n\r\n")
    assert seen[1] == ("", b"short")  # a short part is checked when it ends
    with pytest.raises(ProtocolError, match="not good"):
        parser.feed(b"bad" * 100)


# -- shapes real servers send (DESIGN.md §8) --------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/related; type="application/dicom"; boundary="b0undary"',
        "multipart/related; type=application/dicom; boundary=b0undary",
        'multipart/related; boundary=b0undary; type="application/dicom"',
        'Multipart/Related;Type=application/dicom;Boundary="b0undary"',
    ],
)
def test_quoted_and_unquoted_type_and_boundary(content_type: str) -> None:
    assert parse([SIMPLE], content_type) == SIMPLE_PARTS
    assert MultipartParser(content_type).default_type == "application/dicom"


def test_parts_without_headers_take_the_answers_type_and_its_transfer_syntax() -> None:
    data = b"--b0undary\r\n\r\nframe one\r\n--b0undary\r\n\r\nframe two\r\n--b0undary--"
    parts = parse([data], FRAMES_CT)
    assert [p.body for p in parts] == [b"frame one", b"frame two"]
    assert all(p.headers == {} for p in parts)
    assert parse_content_type(parts[0].content_type)[1]["transfer-syntax"] == "1.2.840.10008.1.2.1"
    # An unquoted type with the syntax as a parameter of its own beside it.
    unquoted = "multipart/related; type=application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.90; boundary=b0undary"
    (first, _) = parse([data], unquoted)
    assert parse_content_type(first.content_type) == (
        "application/octet-stream",
        {"transfer-syntax": "1.2.840.10008.1.2.4.90"},
    )


def test_each_part_keeps_its_own_content_type() -> None:
    data = (
        b"--b0undary\r\nContent-Type: image/jp2\r\n\r\nJ2K\r\n"
        b"--b0undary\r\nContent-Type: application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1\r\n\r\nRAW\r\n"
        b"--b0undary--"
    )
    parts = parse([data], FRAMES_CT)
    assert [parse_content_type(p.content_type)[0] for p in parts] == [
        "image/jp2",
        "application/octet-stream",
    ]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=300), max_size=8), st.sampled_from([CT, FRAMES_CT]))
def test_garbage_raises_only_protocol_errors(chunks: list[bytes], content_type: str) -> None:
    def check(headers: object, head: bytes) -> None:
        if head[:1] == b"!":
            raise ProtocolError("refused")

    with contextlib.suppress(ProtocolError):
        list(iter_parts(chunks, content_type, max_part_bytes=500, spool_bytes=64, check_part=check))
