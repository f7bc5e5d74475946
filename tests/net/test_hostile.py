"""Hostile servers: every answer bounded in size and time, only our errors escape.

Against the suite's hostile HTTPS server (tests/support/hostile.py, real TLS on
loopback). Memory is measured with tracemalloc (every Python buffer of the client is
counted); the bounds asserted are the issue's: under 300 MB above normal.
"""

from __future__ import annotations

import io
import json
import tracemalloc
from collections.abc import Callable
from typing import TypeVar

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from net import (
    AnswerTooLarge,
    Deadlines,
    DicomWebClient,
    ProtocolError,
    RetryPolicy,
    ServerConfig,
    SizeLimits,
    TransportError,
)
from tests.support.hostile import (
    HostileServer,
    endless_part,
    flood,
    gzip_bomb,
    gzip_bomb_body,
    multipart,
    reply,
    stall,
    trickle,
)
from tests.support.pacs import Certificates

MiB = 1024**2
MEMORY_BOUND = 300 * MiB
T = TypeVar("T")
QIDO = "/pacs/studies"
SERIES = "/pacs/studies/1.2.3/series/4.5.6"


def client(
    hostile: HostileServer,
    certificates: Certificates,
    *,
    sizes: SizeLimits | None = None,
    deadlines: Deadlines | None = None,
    read_timeout: float = 60.0,
) -> DicomWebClient:
    config = ServerConfig(
        name="Hostile",
        url=f"{hostile.origin}/pacs",
        ca_file=str(certificates.ca_file),
        read_timeout=read_timeout,
    )
    return DicomWebClient(
        config,
        retry=RetryPolicy(sleep=lambda s: None, max_attempts=2),
        size_limits=sizes or SizeLimits(),
        deadlines=deadlines or Deadlines(),
    )


def peak_memory(call: Callable[[], T]) -> tuple[T | BaseException, int]:
    """What `call` returned or raised, and the peak of Python memory it allocated."""
    tracemalloc.start()
    try:
        try:
            result: T | BaseException = call()
        except Exception as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def instance(number: int) -> bytes:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    ds.InstanceNumber = number
    ds.add_new(0x7FE00010, "OB", bytes(range(256)) * 64)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = io.BytesIO()
    pydicom.dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue()


# --- size -------------------------------------------------------------------------------


def test_a_1_gib_search_answer_stops_at_the_json_limit(
    hostile: HostileServer, hostile_certificates: Certificates
) -> None:
    item = b'{"0020000D": {"vr": "UI", "Value": ["1.2.3"]}},'
    hostile.route(QIDO, flood(b"[", item, 1024 * MiB))
    with client(hostile, hostile_certificates) as c:
        error, peak = peak_memory(c.search_studies)
    assert isinstance(error, AnswerTooLarge), error  # a ProtocolError that names its limit
    assert error.limit == "json_bytes" and error.max_bytes == 64 * MiB
    assert "larger than 64 MiB" in error.message and "search answer" in error.message
    assert peak < MEMORY_BOUND
    assert hostile.sent[0] < 200 * MiB  # the client hung up, it did not drain 1 GiB


def test_an_announced_oversize_answer_is_refused_before_it_is_read(
    hostile: HostileServer, hostile_certificates: Certificates
) -> None:
    hostile.route(QIDO, flood(b"[", b" ", 1024 * MiB, announce=True))
    with client(hostile, hostile_certificates) as c, pytest.raises(ProtocolError) as info:
        c.search_studies()
    assert "larger than 64 MiB" in info.value.message
    assert hostile.sent[0] < 64 * MiB


def test_a_gzip_bomb_is_decoded_only_up_to_the_limit(
    hostile: HostileServer, hostile_certificates: Certificates
) -> None:
    body = gzip_bomb_body(2 * 1024 * MiB)  # ~2 MB that would expand to 2 GiB
    assert len(body) < 3 * MiB
    hostile.route(QIDO, gzip_bomb(body))
    hostile.route(f"{SERIES}/metadata", gzip_bomb(body))
    with client(hostile, hostile_certificates) as c:
        error, peak = peak_memory(c.search_studies)
        assert isinstance(error, ProtocolError) and "larger than 64 MiB" in error.message
        assert peak < MEMORY_BOUND
        with pytest.raises(ProtocolError, match="metadata answer is larger than 64 MiB"):
            c.series_metadata("1.2.3", "4.5.6")


def test_a_gzip_bomb_in_a_thumbnail_stops_at_the_image_limit(
    hostile: HostileServer, hostile_certificates: Certificates
) -> None:
    hostile.route("/pacs/", gzip_bomb(gzip_bomb_body(256 * MiB), content_type="image/jpeg"))
    with client(hostile, hostile_certificates) as c, pytest.raises(AnswerTooLarge) as info:
        c.rendered("1.2.3", "4.5.6")
    assert "rendered image is larger than 32 MiB" in info.value.message
    assert info.value.limit == "image_bytes"


def test_an_endless_multipart_part_stops_at_the_part_limit_on_disk_not_in_memory(
    hostile: HostileServer, hostile_certificates: Certificates
) -> None:
    hostile.route(SERIES, endless_part())
    sizes = SizeLimits(part_bytes=96 * MiB, spool_bytes=16 * MiB)
    with client(hostile, hostile_certificates, sizes=sizes) as c:
        error, peak = peak_memory(lambda: list(c.iter_series_parts("1.2.3", "4.5.6")))
    assert isinstance(error, AnswerTooLarge), error
    assert error.limit == "part_bytes" and error.max_bytes == 96 * MiB
    assert "larger than 96 MiB" in error.message and "raise the part limit" in error.hint
    assert peak < 64 * MiB  # spooled past 16 MiB: memory does not grow with the part


def test_a_part_announcing_more_than_the_limit_is_refused_at_its_headers(
    hostile: HostileServer, hostile_certificates: Certificates
) -> None:
    def behaviour(ex):  # type: ignore[no-untyped-def]
        ex.head(200, {"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'})
        ex.send(b"--b\r\nContent-Type: application/dicom\r\nContent-Length: 99999999999\r\n\r\n")
        ex.release.wait()

    hostile.route(SERIES, behaviour)
    with client(hostile, hostile_certificates) as c, pytest.raises(ProtocolError) as info:
        list(c.iter_series_parts("1.2.3", "4.5.6"))
    assert "larger than 2 GiB" in info.value.message


def test_a_part_longer_than_its_content_length_is_refused(
    hostile: HostileServer, hostile_certificates: Certificates
) -> None:
    body = instance(1)

    def behaviour(ex):  # type: ignore[no-untyped-def]
        ex.head(200, {"Content-Type": "multipart/related; boundary=b"})
        ex.send(b"--b\r\nContent-Length: 200\r\n\r\n" + body + b"\r\n--b--\r\n")

    hostile.route(SERIES, behaviour)
    with client(hostile, hostile_certificates) as c, pytest.raises(ProtocolError) as info:
        list(c.iter_series_parts("1.2.3", "4.5.6"))
    assert "longer than its Content-Length (200 bytes)" in info.value.message


def test_a_part_that_is_not_dicom_is_refused_after_its_first_bytes(
    hostile: HostileServer, hostile_certificates: Certificates
) -> None:
    garbage = b"<html>" + b"x" * (32 * MiB)
    hostile.route(SERIES, multipart([garbage]))
    with client(hostile, hostile_certificates) as c, pytest.raises(ProtocolError) as info:
        list(c.iter_series("1.2.3", "4.5.6"))
    assert "is not DICOM (it starts with b'<html>" in info.value.message
    assert hostile.sent[0] < 16 * MiB


def test_a_wado_uri_answer_that_is_not_dicom_is_not_parsed_with_force(
    hostile: HostileServer, hostile_certificates: Certificates
) -> None:
    hostile.route(
        "/pacs/wado", reply(200, b"GARBAGE" * 100000, {"Content-Type": "application/dicom"})
    )
    with client(hostile, hostile_certificates) as c, pytest.raises(ProtocolError) as info:
        c.wado_uri("1.2.3", "4.5.6", "7.8.9")
    assert "is not DICOM" in info.value.message


def test_an_error_body_is_read_only_for_its_message(
    hostile: HostileServer, hostile_certificates: Certificates
) -> None:
    hostile.route(QIDO, flood(b"Busy: ", b"x", 1024 * MiB, status=500, content_type="text/plain"))
    with client(hostile, hostile_certificates) as c:
        error, peak = peak_memory(c.search_studies)
    assert error.__class__.__name__ == "ServerError" and "Busy: xxx" in str(error)
    assert peak < 16 * MiB and hostile.sent[0] < 64 * MiB


# --- time -------------------------------------------------------------------------------


def test_a_body_trickling_byte_by_byte_fails_at_the_request_deadline(
    hostile: HostileServer, hostile_certificates: Certificates
) -> None:
    hostile.route(QIDO, trickle(b"[" + b" " * 10000 + b"]", interval=0.01))
    deadlines = Deadlines(request=0.5)
    with client(hostile, hostile_certificates, deadlines=deadlines) as c:
        with pytest.raises(TransportError) as info:
            c.search_studies()
    assert "did not complete within 0.5 s" in info.value.message
    assert hostile.sent[0] < 10000  # it gave up long before the trickle ended


def test_a_stalled_answer_fails_at_the_deadline_not_at_the_read_timeout(
    hostile: HostileServer, hostile_certificates: Certificates
) -> None:
    hostile.route("/pacs/", stall(b"\xff\xd8\xff", headers={"Content-Type": "image/jpeg"}))
    deadlines = Deadlines(request=0.3)
    with client(hostile, hostile_certificates, deadlines=deadlines, read_timeout=600) as c:
        with pytest.raises(TransportError, match=r"did not complete within 0\.3 s"):
            c.thumbnail("1.2.3", "4.5.6")
        with pytest.raises(TransportError, match=r"did not complete within 0\.3 s"):
            c.retrieve_instance("1.2.3", "4.5.6", "7.8.9")


def test_a_series_stream_has_no_total_deadline_while_it_makes_progress(
    hostile: HostileServer, hostile_certificates: Certificates
) -> None:
    bodies = [instance(i) for i in range(8)]
    hostile.route(SERIES, multipart(bodies, pause=0.05))  # ~0.4 s in all
    deadlines = Deadlines(request=0.1, progress_window=5.0, progress_bytes=1024)
    with client(hostile, hostile_certificates, deadlines=deadlines) as c:
        got = [ds.InstanceNumber for ds in c.iter_series("1.2.3", "4.5.6")]
    assert got == list(range(8))


def test_a_stalled_series_stream_fails_and_is_resumed(
    hostile: HostileServer, hostile_certificates: Certificates
) -> None:
    bodies = [instance(i) for i in range(4)]

    def stalls_after_two(ex):  # type: ignore[no-untyped-def]
        ex.head(200, {"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'})
        for body in bodies[:2]:
            ex.send(b"--b\r\nContent-Type: application/dicom\r\n\r\n" + body + b"\r\n")
        ex.release.wait()

    full = multipart(bodies, boundary="b")
    hostile.route(SERIES, stalls_after_two, full)
    deadlines = Deadlines(progress_window=0.3, progress_bytes=64 * 1024)
    with client(hostile, hostile_certificates, deadlines=deadlines) as c:
        got = [ds.InstanceNumber for ds in c.iter_series("1.2.3", "4.5.6")]
        assert got == [0, 1, 2, 3]  # the first two once, the rest from the second request
        assert len(hostile.seen) == 2
        with pytest.raises(TransportError, match=r"sent less than 64 KiB in 0\.3 s"):
            hostile.route(SERIES, stalls_after_two)
            list(c.iter_series_parts("1.2.3", "4.5.6"))  # the loader resumes these itself


# --- shapes (DESIGN.md §8) and check_server -------------------------------------------


def test_a_single_part_dicom_answer_to_a_multipart_request(
    hostile: HostileServer, hostile_certificates: Certificates
) -> None:
    hostile.route(SERIES, reply(200, instance(7), {"Content-Type": "application/dicom"}))
    with client(hostile, hostile_certificates) as c:
        assert [ds.InstanceNumber for ds in c.iter_series("1.2.3", "4.5.6")] == [7]
        (part,) = c.iter_series_parts("1.2.3", "4.5.6")
    assert part.content_type == "application/dicom"


def test_frames_take_their_syntax_from_each_part_or_from_the_answer(
    hostile: HostileServer, hostile_certificates: Certificates
) -> None:
    def frames(ex):  # type: ignore[no-untyped-def]
        ex.head(
            200,
            {
                "Content-Type": "multipart/related; type=application/octet-stream; "
                "transfer-syntax=1.2.840.10008.1.2.1; boundary=f"
            },
        )
        ex.send(
            b"--f\r\n\r\nRAW1\r\n"  # no headers: the answer's type and syntax
            b"--f\r\nContent-Type: image/jp2\r\n\r\nJ2K2\r\n"
            b"--f\r\nContent-Type: application/octet-stream; transfer-syntax=1.2.840.10008.1.2.5\r\n\r\nRLE3\r\n"
            b"--f--\r\n"
        )

    hostile.route("/pacs/studies/1/series/2/instances/3/frames/1,2,3", frames)
    with client(hostile, hostile_certificates) as c:
        got = c.retrieve_frames("1", "2", "3", [1, 2, 3])
    assert [(f.data, f.media_type, f.transfer_syntax_uid) for f in got] == [
        (b"RAW1", "application/octet-stream", "1.2.840.10008.1.2.1"),
        # Only a media type: the syntax it names (docs/server-quirks.md, quirk 6).
        (b"J2K2", "image/jp2", "1.2.840.10008.1.2.4.90"),
        (b"RLE3", "application/octet-stream", "1.2.840.10008.1.2.5"),
    ]


HOSTILE_ANSWERS = {
    "1 GiB of JSON": flood(b"[", b"[1],", 1024 * MiB),
    "a gzip bomb": gzip_bomb(gzip_bomb_body(256 * MiB)),
    "nested JSON": reply(200, b"[" * 50000, {"Content-Type": "application/dicom+json"}),
    "a stall": stall(b"[", headers={"Content-Type": "application/dicom+json"}),
    "garbage": reply(200, b"\x00\xff" * 1000, {"Content-Type": "application/dicom+json"}),
    "an endless part": endless_part(),
    "a redirect to port 99999": reply(302, headers={"Location": "https://localhost:99999/x"}),
    "a redirect with credentials": reply(302, headers={"Location": "https://u:p@localhost/x"}),
    "a wrong encoding": reply(200, b"x", {"Content-Encoding": "br"}),
}


@pytest.mark.parametrize("name", list(HOSTILE_ANSWERS))
def test_check_server_never_raises_for_anything_a_server_sends(
    name: str, hostile: HostileServer, hostile_certificates: Certificates
) -> None:
    from net import check_server

    search = [{"0020000D": {"vr": "UI", "Value": ["1.2.3"]}}]
    series = [{"0020000E": {"vr": "UI", "Value": ["4.5.6"]}}]
    instances = [{"00080018": {"vr": "UI", "Value": ["7.8.9"]}}]
    json_type = {"Content-Type": "application/dicom+json"}
    # The searches answer well, so the later checks reach the hostile answers too.
    hostile.route("/pacs/", HOSTILE_ANSWERS[name])
    hostile.route(QIDO, HOSTILE_ANSWERS[name], reply(200, json.dumps(search).encode(), json_type))
    hostile.route("/pacs/studies/1.2.3/series", reply(200, json.dumps(series).encode(), json_type))
    hostile.route(f"{SERIES}/instances", reply(200, json.dumps(instances).encode(), json_type))
    config = ServerConfig(
        name="Hostile",
        url=f"{hostile.origin}/pacs",
        ca_file=str(hostile_certificates.ca_file),
        thumbnail_rendering="https",
    )
    from net import _check

    result = _check.check_server(
        config,
        size_limits=SizeLimits(part_bytes=32 * MiB, spool_bytes=8 * MiB),
        deadlines=Deadlines(request=1.0, progress_window=1.0),
        retry=RetryPolicy(max_attempts=1),
    )
    assert not result.ok
    assert any(r.status == "fail" and r.detail for r in result.results)
    assert check_server is _check.check_server
